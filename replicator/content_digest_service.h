// The content-digest API of one cluster (docs/migration.md, docs/api.md):
//
//   GET /v1/digest-tree?namespace=NS&shard=S                  -> DigestTreeResponse
//   GET /v1/digest-leaves?namespace=NS&shard=S[&buckets=1,7][&page_token=T][&limit=N]
//                                                             -> DigestLeavesResponse
//
// A shard's tree (protocol/content_digest.h) is computed on request from the store: every run of
// the namespace is listed (its state read) and the runs of the shard are digested (every branch's
// events read). A run that cannot be read becomes an unreadable leaf; the scan goes on.
//
// Thread-safe: holds no mutable state; reads the store, whose reads are thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "protocol/xdc.pb.h"
#include "replicator/namespace_registry.h"
#include "store/store.h"

namespace xdc {

// Leaves per /v1/digest-leaves page: the default and the most a caller may ask for.
inline constexpr size_t kDigestLeavesDefaultLimit = 256;  // runs
inline constexpr size_t kDigestLeavesMaxLimit = 1000;     // runs

class ContentDigestService {
 public:
  using Query = std::map<std::string, std::string>;
  ContentDigestService(const Store& store, const NamespaceRegistry& namespaces,
                       int32_t shard_count);

  [[nodiscard]] absl::StatusOr<DigestTreeResponse> Tree(const Query& query) const;
  [[nodiscard]] absl::StatusOr<DigestLeavesResponse> Leaves(const Query& query) const;

 private:
  // A run of the shard, listed before it is digested.
  struct Listed {
    int32_t bucket = 0;
    WorkflowKey key;
    absl::StatusOr<WorkflowMutableState> state;
  };
  // The runs of `shard` whose bucket is in `buckets` (every bucket when empty), in (bucket,
  // workflow id, run id) order.
  [[nodiscard]] absl::StatusOr<std::vector<Listed>> List(const std::string& namespace_id,
                                                         int32_t shard,
                                                         const std::set<int32_t>& buckets) const;
  // The leaf of one listed run (unreadable when its state or a branch cannot be read).
  [[nodiscard]] RunDigest Digest(const Listed& run) const;

  const Store& store_;
  const NamespaceRegistry& namespaces_;
  const int32_t shard_count_;
};

}  // namespace xdc
