#include "protocol/content_digest.h"

#include <algorithm>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "protocol/history_digest.h"
#include "protocol/shard_hash.h"
#include "protocol/version_history.h"

namespace xdc {
namespace {

// A string in the canonical layout: its length, then its bytes (so ("ab","c") != ("a","bc")).
uint64_t MixString(uint64_t h, std::string_view bytes) {
  return Fnv1a64(bytes, Fnv1a64Int(static_cast<int64_t>(bytes.size()), h));
}

std::string Hex(uint64_t h) { return absl::StrFormat("%016x", h); }

bool ItemsLess(const google::protobuf::RepeatedPtrField<VersionHistoryItem>& a,
               const google::protobuf::RepeatedPtrField<VersionHistoryItem>& b) {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(),
                                      [](const VersionHistoryItem& x, const VersionHistoryItem& y) {
                                        return std::make_pair(x.event_id(), x.version()) <
                                               std::make_pair(y.event_id(), y.version());
                                      });
}

bool LeafLess(const RunDigest& a, const RunDigest& b) {
  if (a.bucket() != b.bucket()) return a.bucket() < b.bucket();
  return std::tie(a.workflow_id(), a.run_id()) < std::tie(b.workflow_id(), b.run_id());
}

const char* StatusName(WorkflowStatus status) {
  switch (status) {
    case WORKFLOW_STATUS_RUNNING:
      return "running";
    case WORKFLOW_STATUS_COMPLETED:
      return "completed";
    case WORKFLOW_STATUS_TERMINATED:
      return "terminated";
    default:
      return "unknown";
  }
}

const BranchDigest* CurrentOf(const RunDigest& run) {
  for (const BranchDigest& branch : run.branches()) {
    if (branch.current()) return &branch;
  }
  return nullptr;
}

VersionHistory BranchOf(const BranchDigest& digest) {
  VersionHistory branch;
  *branch.mutable_items() = digest.items();
  return branch;
}

// The non-current branches as (items, digest) pairs, for comparing sets.
std::set<std::pair<std::string, std::string>> OtherBranches(const RunDigest& run) {
  std::set<std::pair<std::string, std::string>> others;
  for (const BranchDigest& branch : run.branches()) {
    if (!branch.current()) others.insert({FormatItems(branch.items()), branch.digest()});
  }
  return others;
}

// Set when one side's current branch extends the other's and nothing else differs: the detail.
std::optional<std::string> InFlightDetail(const RunDigest& source, const RunDigest& target) {
  const BranchDigest* source_current = CurrentOf(source);
  const BranchDigest* target_current = CurrentOf(target);
  if (source_current == nullptr || target_current == nullptr) return std::nullopt;
  if (OtherBranches(source) != OtherBranches(target)) return std::nullopt;
  const VersionHistory a = BranchOf(*source_current);
  const VersionHistory b = BranchOf(*target_current);
  const int64_t a_last = LastEventId(a);
  const int64_t b_last = LastEventId(b);
  if (a_last == b_last) return std::nullopt;
  const VersionHistory& longer = a_last > b_last ? a : b;
  const VersionHistory& shorter = a_last > b_last ? b : a;
  absl::StatusOr<VersionHistory> cut = TruncateHistory(longer, LastEventId(shorter));
  if (!cut.ok() || FormatItems(cut->items()) != FormatItems(shorter.items())) return std::nullopt;
  return absl::StrFormat(
      "target %s: its current branch ends at event %d, the source's at %d (a write in flight "
      "between the two reads, or replication lag; verify again once it is quiet)",
      b_last < a_last ? "behind" : "ahead", b_last, a_last);
}

// HistoryDigest (items, and each event's id, version, time, type and attributes) continued with
// the origin of every reapplied event, so that no stored field of an event escapes the digest.
std::string BranchContentDigest(const VersionHistory& branch,
                                const google::protobuf::RepeatedPtrField<HistoryEvent>& events) {
  uint64_t h = MixString(kFnv1a64Offset, HistoryDigest(branch, events));
  for (const HistoryEvent& event : events) {
    if (!event.has_reapplied_from()) continue;
    h = Fnv1a64Int(event.event_id(), h);
    h = MixString(h, event.reapplied_from().run_id());
    h = Fnv1a64Int(event.reapplied_from().event_id(), h);
    h = Fnv1a64Int(event.reapplied_from().version(), h);
  }
  return Hex(h);
}

// What differs between two readable leaves with different digests, in words.
std::string ContentDetail(const RunDigest& source, const RunDigest& target) {
  std::vector<std::string> parts;
  if (source.status() != target.status()) {
    parts.push_back(absl::StrFormat("status %s on source, %s on target",
                                    StatusName(source.status()), StatusName(target.status())));
  }
  if (source.current_run() != target.current_run()) {
    parts.push_back(absl::StrFormat(
        "the workflow's current run on %s only (the other points the workflow id at another run)",
        source.current_run() ? "source" : "target"));
  }
  if (source.next_event_id() != target.next_event_id()) {
    parts.push_back(absl::StrFormat("next event %d on source, %d on target", source.next_event_id(),
                                    target.next_event_id()));
  }
  std::map<std::string, const BranchDigest*> on_target;
  for (const BranchDigest& branch : target.branches()) {
    on_target[FormatItems(branch.items())] = &branch;
  }
  std::map<std::string, const BranchDigest*> on_source;
  for (const BranchDigest& branch : source.branches()) {
    const std::string items = FormatItems(branch.items());
    on_source[items] = &branch;
    auto it = on_target.find(items);
    if (it == on_target.end()) {
      parts.push_back(absl::StrCat("branch ", items, " only on source"));
    } else if (it->second->digest() != branch.digest()) {
      parts.push_back(absl::StrCat("branch ", items, " has different events (digest ",
                                   branch.digest(), " on source, ", it->second->digest(),
                                   " on target)"));
    }
  }
  for (const auto& [items, branch] : on_target) {
    if (!on_source.contains(items))
      parts.push_back(absl::StrCat("branch ", items, " only on target"));
  }
  const BranchDigest* source_current = CurrentOf(source);
  const BranchDigest* target_current = CurrentOf(target);
  if (source_current != nullptr && target_current != nullptr &&
      FormatItems(source_current->items()) != FormatItems(target_current->items())) {
    parts.push_back(absl::StrCat("current branch ", FormatItems(source_current->items()),
                                 " on source, ", FormatItems(target_current->items()),
                                 " on target"));
  }
  if (parts.empty()) parts.push_back("content digests differ");
  return absl::StrJoin(parts, "; ");
}

}  // namespace

int32_t DigestBucketFor(std::string_view workflow_id, std::string_view run_id) {
  uint64_t h = Fnv1a64(workflow_id);
  h = Fnv1a64(std::string_view("\0", 1), h);
  h = Fnv1a64(run_id, h);
  return static_cast<int32_t>(Fmix64(h) % static_cast<uint64_t>(kDigestBucketsPerShard));
}

std::string FormatItems(const google::protobuf::RepeatedPtrField<VersionHistoryItem>& items) {
  std::vector<std::string> parts;
  for (const VersionHistoryItem& item : items) {
    parts.push_back(absl::StrFormat("(%d,%d)", item.event_id(), item.version()));
  }
  return absl::StrCat("[", absl::StrJoin(parts, " "), "]");
}

RunDigest MakeRunDigest(const WorkflowMutableState& state,
                        const std::vector<BranchContent>& branches, bool current_run) {
  RunDigest leaf;
  leaf.set_workflow_id(state.key().workflow_id());
  leaf.set_run_id(state.key().run_id());
  leaf.set_bucket(DigestBucketFor(leaf.workflow_id(), leaf.run_id()));
  leaf.set_status(state.status());
  leaf.set_next_event_id(state.next_event_id());
  for (const BranchContent& content : branches) {
    BranchDigest* branch = leaf.add_branches();
    *branch->mutable_items() = content.branch->items();
    branch->set_digest(BranchContentDigest(*content.branch, *content.events));
    branch->set_current(content.current);
  }
  std::sort(
      leaf.mutable_branches()->begin(), leaf.mutable_branches()->end(),
      [](const BranchDigest& a, const BranchDigest& b) { return ItemsLess(a.items(), b.items()); });
  uint64_t h = kFnv1a64Offset;
  h = Fnv1a64Int(leaf.status(), h);
  h = Fnv1a64Int(leaf.next_event_id(), h);
  leaf.set_current_run(current_run);
  h = Fnv1a64Int(current_run ? 1 : 0, h);
  h = Fnv1a64Int(leaf.branches_size(), h);
  for (const BranchDigest& branch : leaf.branches()) {
    h = Fnv1a64Int(branch.current() ? 1 : 0, h);
    h = MixString(h, branch.digest());  // covers the branch's items and events
  }
  leaf.set_digest(Hex(h));
  return leaf;
}

RunDigest MakeUnreadableRunDigest(std::string workflow_id, std::string run_id, std::string error) {
  RunDigest leaf;
  leaf.set_bucket(DigestBucketFor(workflow_id, run_id));
  leaf.set_workflow_id(std::move(workflow_id));
  leaf.set_run_id(std::move(run_id));
  leaf.set_error(std::move(error));
  return leaf;
}

DigestTree::DigestTree(std::vector<RunDigest> leaves) : leaves_(std::move(leaves)) {
  std::sort(leaves_.begin(), leaves_.end(), LeafLess);
  uint64_t h = kFnv1a64Offset;
  DigestBucket* bucket = nullptr;
  auto close = [&] {
    if (bucket != nullptr) bucket->set_digest(Hex(h));
  };
  for (const RunDigest& leaf : leaves_) {
    if (bucket == nullptr || bucket->bucket() != leaf.bucket()) {
      close();
      bucket = &buckets_.emplace_back();
      bucket->set_bucket(leaf.bucket());
      h = kFnv1a64Offset;
    }
    bucket->set_runs(bucket->runs() + 1);
    h = MixString(h, leaf.workflow_id());
    h = MixString(h, leaf.run_id());
    // An unreadable run mixes a marker instead of a digest: its bucket differs from any side
    // that could read the run, so the comparison reaches it.
    h = MixString(h, leaf.error().empty() ? leaf.digest() : "unreadable");
    if (!leaf.error().empty()) ++unreadable_;
  }
  close();
  google::protobuf::RepeatedPtrField<DigestBucket> all(buckets_.begin(), buckets_.end());
  root_ = DigestRoot(all);
}

std::string DigestRoot(const google::protobuf::RepeatedPtrField<DigestBucket>& buckets) {
  uint64_t h = Fnv1a64Int(kDigestBucketsPerShard, kFnv1a64Offset);
  for (const DigestBucket& bucket : buckets) {
    h = Fnv1a64Int(bucket.bucket(), h);
    h = MixString(h, bucket.digest());
  }
  return Hex(h);
}

std::vector<int32_t> DifferingBuckets(
    const google::protobuf::RepeatedPtrField<DigestBucket>& source,
    const google::protobuf::RepeatedPtrField<DigestBucket>& target) {
  std::map<int32_t, std::pair<std::string, std::string>> digests;  // bucket -> (source, target)
  for (const DigestBucket& bucket : source) digests[bucket.bucket()].first = bucket.digest();
  for (const DigestBucket& bucket : target) digests[bucket.bucket()].second = bucket.digest();
  std::vector<int32_t> differing;
  for (const auto& [bucket, pair] : digests) {
    if (pair.first != pair.second) differing.push_back(bucket);
  }
  return differing;
}

std::vector<RunDifference> DiffRuns(const std::vector<RunDigest>& source,
                                    const std::vector<RunDigest>& target, int32_t shard) {
  using Key = std::tuple<int32_t, std::string, std::string>;
  std::map<Key, std::pair<const RunDigest*, const RunDigest*>> runs;
  for (const RunDigest& run : source) {
    runs[{run.bucket(), run.workflow_id(), run.run_id()}].first = &run;
  }
  for (const RunDigest& run : target) {
    runs[{run.bucket(), run.workflow_id(), run.run_id()}].second = &run;
  }
  std::vector<RunDifference> differences;
  for (const auto& [key, pair] : runs) {
    const auto& [on_source, on_target] = pair;
    RunDifference difference;
    difference.set_shard(shard);
    difference.set_bucket(std::get<0>(key));
    difference.set_workflow_id(std::get<1>(key));
    difference.set_run_id(std::get<2>(key));
    if (on_source != nullptr) difference.set_source_status(on_source->status());
    if (on_target != nullptr) difference.set_target_status(on_target->status());
    if (on_source != nullptr && !on_source->error().empty()) {
      difference.set_kind(RUN_DIFFERENCE_KIND_UNREADABLE);
      difference.set_detail(
          absl::StrCat(std::string(kUnreadableOnSource), ": ", on_source->error()));
    } else if (on_target != nullptr && !on_target->error().empty()) {
      difference.set_kind(RUN_DIFFERENCE_KIND_UNREADABLE);
      difference.set_detail(
          absl::StrCat(std::string(kUnreadableOnTarget), ": ", on_target->error()));
    } else if (on_target == nullptr) {
      difference.set_kind(RUN_DIFFERENCE_KIND_MISSING_ON_TARGET);
      difference.set_detail(absl::StrFormat(
          "only on source (%s there, next event %d): never replicated, or deleted or retained "
          "out on target",
          StatusName(on_source->status()), on_source->next_event_id()));
    } else if (on_source == nullptr) {
      difference.set_kind(RUN_DIFFERENCE_KIND_MISSING_ON_SOURCE);
      difference.set_detail(absl::StrFormat(
          "only on target (%s there, next event %d): deleted or retained out on source",
          StatusName(on_target->status()), on_target->next_event_id()));
    } else if (on_source->digest() != on_target->digest()) {
      if (std::optional<std::string> in_flight = InFlightDetail(*on_source, *on_target)) {
        difference.set_kind(RUN_DIFFERENCE_KIND_IN_FLIGHT);
        difference.set_detail(*std::move(in_flight));
      } else {
        difference.set_kind(RUN_DIFFERENCE_KIND_CONTENT_DIFFERS);
        difference.set_detail(ContentDetail(*on_source, *on_target));
      }
    } else {
      continue;
    }
    differences.push_back(std::move(difference));
  }
  return differences;
}

}  // namespace xdc
