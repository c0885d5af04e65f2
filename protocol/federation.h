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
// target cannot be removed.
[[nodiscard]] absl::StatusOr<std::optional<NamespaceRecord>> ChangeNamespaceMembers(
    const NamespaceRecord& current, const NamespaceClustersRequest& request,
    const std::string& self, const DaemonConfig& config);

}  // namespace xdc
