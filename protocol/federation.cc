#include "protocol/federation.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "protocol/config.h"

namespace xdc {

absl::Status ValidateNewCluster(const DaemonConfig& config, const AddClusterRequest& request) {
  const std::string& name = request.name();
  // The config's own rules for a cluster entry (name characters, version range) apply as they
  // are: check the config with the new entry added.
  if (const ClusterConfig* existing = FindCluster(config, name)) {
    if (existing->initial_failover_version() == request.initial_failover_version()) {
      return absl::AlreadyExistsError(
          absl::StrFormat("cluster '%s' (initial_failover_version %d) is already in the federation",
                          name, existing->initial_failover_version()));
    }
    return absl::FailedPreconditionError(absl::StrFormat(
        "cluster '%s' is already in the federation with initial_failover_version %d, not %d: a "
        "cluster's version never changes; pick another name for a new cluster",
        name, existing->initial_failover_version(), request.initial_failover_version()));
  }
  if (request.failover_version_increment() != config.failover_version_increment()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "cluster '%s' has failover_version_increment %d but this federation uses %d: every "
        "cluster must use the same increment (set it to %d in the new cluster's config)",
        name, request.failover_version_increment(), config.failover_version_increment(),
        config.failover_version_increment()));
  }
  if (request.shard_count() != config.shard_count()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "cluster '%s' has shard_count %d but this federation uses %d: every cluster must use the "
        "same shard count (set it to %d in the new cluster's config)",
        name, request.shard_count(), config.shard_count(), config.shard_count()));
  }
  for (const ClusterConfig& cluster : config.clusters()) {
    if (cluster.initial_failover_version() == request.initial_failover_version()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "initial_failover_version %d is already used by cluster '%s': give '%s' a version no "
          "other cluster uses (1..%d)",
          request.initial_failover_version(), cluster.name(), name,
          config.failover_version_increment() - 1));
    }
  }
  if (config.clusters_size() >= kMaxFederationClusters) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "the federation already has %d clusters, the most it may have (kMaxFederationClusters)",
        config.clusters_size()));
  }
  DaemonConfig with_new = config;
  ClusterConfig* added = with_new.add_clusters();
  added->set_name(name);
  added->set_initial_failover_version(request.initial_failover_version());
  if (absl::Status s = ValidateConfig(with_new); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("cannot add cluster '%s': %s", name, std::string(s.message())));
  }
  return absl::OkStatus();
}

namespace {

void RemoveAwaiting(NamespaceRecord& record, const std::string& cluster) {
  auto& awaiting = *record.mutable_members_awaiting_history();
  awaiting.erase(std::remove(awaiting.begin(), awaiting.end(), cluster), awaiting.end());
}

}  // namespace

bool IsNamespaceMember(const NamespaceRecord& record, const std::string& cluster) {
  return std::find(record.clusters().begin(), record.clusters().end(), cluster) !=
         record.clusters().end();
}

absl::StatusOr<std::optional<NamespaceRecord>> ChangeNamespaceMembers(
    const NamespaceRecord& current, const NamespaceClustersRequest& request,
    const std::string& self, const DaemonConfig& config) {
  if (request.add().empty() == request.remove().empty()) {
    return absl::InvalidArgumentError(
        "set exactly one of add or remove (one member cluster per request)");
  }
  if (current.active_cluster() != self) {
    absl::Status error = absl::FailedPreconditionError(absl::StrFormat(
        "namespace '%s' is active on '%s': change its member clusters there (only the active "
        "cluster changes them, so two changes never race)",
        current.name(), current.active_cluster()));
    return error;
  }
  NamespaceRecord next = current;
  next.set_config_version(current.config_version() + 1);
  next.set_config_failover_version(current.failover_version());
  if (!request.add().empty()) {
    const std::string& cluster = request.add();
    if (FindCluster(config, cluster) == nullptr) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "cluster '%s' is not in the federation as '%s' knows it: add it first with `xdcctl "
          "cluster add` on every existing cluster (runbooks/add-cluster.md)",
          cluster, self));
    }
    if (IsNamespaceMember(current, cluster)) return std::optional<NamespaceRecord>();
    next.add_clusters(cluster);
    // It skipped the namespace's tasks while it was not a member (a removed and re-added member
    // too): what it holds is unknown until a content verification compares it.
    if (!AwaitsHistory(next, cluster)) next.add_members_awaiting_history(cluster);
    return std::optional<NamespaceRecord>(std::move(next));
  }
  const std::string& cluster = request.remove();
  if (!IsNamespaceMember(current, cluster)) return std::optional<NamespaceRecord>();
  if (cluster == current.active_cluster()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "cluster '%s' is the active cluster of namespace '%s': fail the namespace over to another "
        "member first",
        cluster, current.name()));
  }
  if (current.state() == NAMESPACE_STATE_HANDOVER &&
      current.handover().target_cluster() == cluster) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "namespace '%s' is handing over to '%s': wait for the handover to finish or cancel it "
        "(xdcctl namespace cancel %s) before removing '%s'",
        current.name(), cluster, current.name(), cluster));
  }
  next.clear_clusters();
  for (const std::string& member : current.clusters()) {
    if (member != cluster) next.add_clusters(member);
  }
  RemoveAwaiting(next, cluster);
  return std::optional<NamespaceRecord>(std::move(next));
}

bool AwaitsHistory(const NamespaceRecord& record, const std::string& cluster) {
  const auto& awaiting = record.members_awaiting_history();
  return std::find(awaiting.begin(), awaiting.end(), cluster) != awaiting.end();
}

absl::Status CheckTargetHoldsHistory(const NamespaceRecord& record, const std::string& target,
                                     bool verified_identical) {
  if (verified_identical || !AwaitsHistory(record, target)) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrFormat(
      "'%s' joined namespace '%s' after it was registered and skipped its tasks until then, so "
      "it may lack runs '%s' acknowledged: a handover could activate it without them. Backfill "
      "it (`xdcctl migration start --namespace %s --target %s`, until `xdcctl migration status` "
      "shows COMPLETED), then hand over with `xdcctl migration cutover --namespace %s --source "
      "ADDR --target ADDR`, which verifies by content first (runbooks/migration.md); or force a "
      "failover if '%s' is gone",
      target, record.name(), record.active_cluster(), record.name(), target, record.name(),
      record.active_cluster()));
}

std::optional<NamespaceRecord> HistoryVerified(const NamespaceRecord& record,
                                               const std::string& cluster) {
  if (!AwaitsHistory(record, cluster)) return std::nullopt;
  NamespaceRecord next = record;
  RemoveAwaiting(next, cluster);
  next.set_config_version(record.config_version() + 1);
  next.set_config_failover_version(record.failover_version());
  return next;
}

}  // namespace xdc
