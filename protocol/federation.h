// Federation membership: which clusters may join, and changes to a namespace's member list.
// Pure functions (no I/O); replicator/membership_service.h applies them.
#pragma once

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "protocol/xdc.pb.h"

namespace xdc {

// Clusters one federation may have (each needs its own initial failover version below the
// increment, and a consumer per peer on every daemon).
inline constexpr int kMaxFederationClusters = 64;

// OK if `request` may join the federation `config` describes: a valid, new name; the same
// failover_version_increment and shard_count; an initial_failover_version in [1, increment) that
// no cluster uses. ALREADY_EXISTS if the same cluster (name and version) is already a member.
// Errors name the field and what to do.
[[nodiscard]] absl::Status ValidateNewCluster(const DaemonConfig& config,
                                              const AddClusterRequest& request);

// Whether `cluster` is among the namespace's member clusters.
[[nodiscard]] bool IsNamespaceMember(const NamespaceRecord& record, const std::string& cluster);

// The record after `request` (add or remove one member), with config_version + 1; nullopt if it
// changes nothing (the member is already there, or already gone: a retried request). Only the
// active cluster changes the members (`self` must be active), so two changes never race. A
// cluster that is not in the federation cannot be added; the active cluster and a handover's
// target cannot be removed. An added member joins members_awaiting_history: until then its
// appliers skipped the namespace's tasks whole, so it may lack the namespace's earlier history.
[[nodiscard]] absl::StatusOr<std::optional<NamespaceRecord>> ChangeNamespaceMembers(
    const NamespaceRecord& current, const NamespaceClustersRequest& request,
    const std::string& self, const DaemonConfig& config);

// Whether `cluster` joined the namespace after it was registered and has not been shown to hold
// its earlier history yet (NamespaceRecord.members_awaiting_history).
[[nodiscard]] bool AwaitsHistory(const NamespaceRecord& record, const std::string& cluster);

// OK if a graceful handover of `record` to `target` cannot activate a cluster that lacks what
// this cluster acknowledged because it joined late: `target` is not awaiting history, or the
// caller verified by content that it holds the same runs (`verified_identical`). Otherwise
// FAILED_PRECONDITION naming the commands that fix it (a completed backfill, then a cutover,
// which verifies first).
[[nodiscard]] absl::Status CheckTargetHoldsHistory(const NamespaceRecord& record,
                                                   const std::string& target,
                                                   bool verified_identical);

// `record` without `cluster` in members_awaiting_history, with config_version + 1 (a settings
// change: only the active cluster makes it); nullopt if `cluster` was not awaiting.
[[nodiscard]] std::optional<NamespaceRecord> HistoryVerified(const NamespaceRecord& record,
                                                             const std::string& cluster);

}  // namespace xdc
