// Content digests for migration verification: a per-shard Merkle-style tree over a namespace's
// workflow runs, so that two clusters compare root -> differing buckets -> differing runs and
// only the differing ranges are listed in detail (docs/migration.md).
//
//   leaf    one run: a digest over its status, next event id, whether it is the current run of
//           its workflow id, and every branch (version history
//           and all its events: HistoryDigest's canonical byte layout, plus the origin of each
//           reapplied event), in canonical branch order
//   bucket  kDigestBucketsPerShard buckets per shard; a run's bucket is DigestBucketFor(workflow
//           id, run id) (stable: FNV-1a + fmix64, the same in every process and build); a
//           bucket's digest covers its leaves in (workflow id, run id) order
//   root    over the non-empty buckets in bucket order
//
// A run that could not be read is a leaf with an error and no digest: it still counts in its
// bucket (so the trees differ) and is reported, never skipped.
//
// Pure: no I/O, clock or threads. Thread-compatible.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "google/protobuf/repeated_ptr_field.h"
#include "protocol/xdc.pb.h"

namespace xdc {

// Buckets per shard. Part of the comparison contract: both sides must use the same count (the
// tree response names it, and a client refuses to compare trees with different counts).
inline constexpr int32_t kDigestBucketsPerShard = 64;

// The bucket of a run: fmix64(Fnv1a64(workflow_id, '\0', run_id)) mod kDigestBucketsPerShard.
[[nodiscard]] int32_t DigestBucketFor(std::string_view workflow_id, std::string_view run_id);

// One branch, as read from a store: its version history and its events (1 .. last).
struct BranchContent {
  const VersionHistory* branch = nullptr;
  const google::protobuf::RepeatedPtrField<HistoryEvent>* events = nullptr;
  bool current = false;
};

// The leaf of a readable run: status, next event id, whether it is its workflow id's current run
// (`current_run`: clusters must agree on which run a write without a run id continues) and every
// branch's digest in canonical order (by version-history items, so the clusters' local branch
// numbering does not matter), and the run's content digest over all of it.
[[nodiscard]] RunDigest MakeRunDigest(const WorkflowMutableState& state,
                                      const std::vector<BranchContent>& branches,
                                      bool current_run);

// The leaf of a run that could not be read: no digest, `error` says why.
[[nodiscard]] RunDigest MakeUnreadableRunDigest(std::string workflow_id, std::string run_id,
                                                std::string error);

// A shard's tree built from its leaves (any order).
class DigestTree {
 public:
  explicit DigestTree(std::vector<RunDigest> leaves);

  [[nodiscard]] const std::string& root() const { return root_; }
  // Non-empty buckets, ascending, with their digests and run counts.
  [[nodiscard]] const std::vector<DigestBucket>& buckets() const { return buckets_; }
  // Leaves in (bucket, workflow id, run id) order.
  [[nodiscard]] const std::vector<RunDigest>& leaves() const { return leaves_; }
  [[nodiscard]] int64_t unreadable_runs() const { return unreadable_; }

 private:
  std::vector<RunDigest> leaves_;
  std::vector<DigestBucket> buckets_;
  std::string root_;
  int64_t unreadable_ = 0;
};

// The root over bucket digests (as DigestTree computes it), for a tree received as buckets.
[[nodiscard]] std::string DigestRoot(
    const google::protobuf::RepeatedPtrField<DigestBucket>& buckets);

// Buckets whose digest differs, or that exist on one side only, ascending.
[[nodiscard]] std::vector<int32_t> DifferingBuckets(
    const google::protobuf::RepeatedPtrField<DigestBucket>& source,
    const google::protobuf::RepeatedPtrField<DigestBucket>& target);

// Runs that differ between two sides' leaves of the same buckets (any order): missing on one
// side, unreadable on either, in flight (one current branch extends the other's by its version
// history, nothing else differs: lag or a concurrent write), or with different content (the
// detail names the status, the current branch, or the branches present on one side only or with
// different events). Ordered by
// (bucket, workflow id, run id). `shard` is copied into each difference.
[[nodiscard]] std::vector<RunDifference> DiffRuns(const std::vector<RunDigest>& source,
                                                  const std::vector<RunDigest>& target,
                                                  int32_t shard);

// How DiffRuns' detail of an UNREADABLE difference starts, by side.
inline constexpr std::string_view kUnreadableOnSource = "unreadable on source";
inline constexpr std::string_view kUnreadableOnTarget = "unreadable on target";

// "[(2,1) (5,2)]": a version history in the form the CLI prints.
[[nodiscard]] std::string FormatItems(
    const google::protobuf::RepeatedPtrField<VersionHistoryItem>& items);

}  // namespace xdc
