#include "replicator/namespace_registry.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include "absl/random/random.h"
#include "absl/strings/str_format.h"
#include "protocol/config.h"
#include "protocol/failover_version.h"
#include "protocol/namespace_record.h"

namespace xdc {

NamespaceRegistry::NamespaceRegistry(Store& store, const DaemonConfig& config)
    : store_(store), config_(config) {}

absl::Status NamespaceRegistry::Load() {
  absl::StatusOr<std::vector<NamespaceRecord>> records = store_.ListNamespaces();
  if (!records.ok()) return records.status();
  absl::MutexLock lock(&mu_);
  for (NamespaceRecord& record : *records) {
    MapName(record);
    by_id_[record.id()] = std::move(record);
  }
  return absl::OkStatus();
}

void NamespaceRegistry::MapName(const NamespaceRecord& record) {
  auto [it, inserted] = id_by_name_.emplace(record.name(), record.id());
  if (inserted || it->second == record.id()) return;
  // Two clusters registered the same name before either heard of the other. Both records are
  // kept; the name means the record with the lower id on every cluster, whatever the order.
  const std::string& winner = std::min(it->second, record.id());
  std::fprintf(
      stderr,
      "xdcd: namespace name '%s' was registered twice (ids %s and %s); the name refers "
      "to %s on every cluster. Rename one namespace (see runbooks/register-namespace.md)\n",
      record.name().c_str(), it->second.c_str(), record.id().c_str(), winner.c_str());
  it->second = winner;
}

absl::StatusOr<NamespaceRecord> NamespaceRegistry::Register(
    const RegisterNamespaceRequest& request) {
  if (absl::Status s = ValidateNamespaceName(request.name()); !s.ok()) return s;
  if (request.clusters_size() == 0) {
    return absl::InvalidArgumentError("clusters is empty: list the namespace's member clusters");
  }
  std::set<std::string> members;
  for (const std::string& cluster : request.clusters()) {
    if (FindCluster(config_, cluster) == nullptr) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "cluster '%s' is not in this daemon's config; known clusters are listed there", cluster));
    }
    if (!members.insert(cluster).second) {
      return absl::InvalidArgumentError(absl::StrFormat("cluster '%s' is listed twice", cluster));
    }
  }
  if (!members.contains(config_.cluster_name())) {
    return absl::InvalidArgumentError(
        absl::StrFormat("register the namespace on one of its member clusters; this is '%s'",
                        config_.cluster_name()));
  }
  const ClusterConfig* active = FindCluster(config_, request.active_cluster());
  if (active == nullptr || !members.contains(request.active_cluster())) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "active_cluster '%s' must be one of the namespace's clusters", request.active_cluster()));
  }
  NamespaceRecord record;
  {
    absl::MutexLock lock(&mu_);
    if (id_by_name_.contains(request.name())) {
      return absl::AlreadyExistsError(
          absl::StrFormat("namespace '%s' already exists", request.name()));
    }
    absl::BitGen gen;
    record.set_id(
        absl::StrFormat("%016x%016x", absl::Uniform<uint64_t>(gen), absl::Uniform<uint64_t>(gen)));
    record.set_name(request.name());
    *record.mutable_clusters() = request.clusters();
    record.set_active_cluster(request.active_cluster());
    record.set_failover_version(active->initial_failover_version());
    record.set_state(NAMESPACE_STATE_ACTIVE);
    record.set_config_version(1);
    if (absl::Status s = store_.PutNamespace(record); !s.ok()) return s;
    id_by_name_[record.name()] = record.id();
    by_id_[record.id()] = record;
  }
  if (listener_) listener_(record);
  return record;
}

absl::StatusOr<NamespaceRecord> NamespaceRegistry::Failover(const std::string& name,
                                                            const std::string& target_cluster,
                                                            bool force) {
  if (!force) {
    return absl::FailedPreconditionError(
        "graceful handover is not available yet; a forced failover (force) activates the target "
        "at once and resolves divergent writes afterwards");
  }
  if (target_cluster != config_.cluster_name()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "a forced failover activates the cluster that receives it: send it to '%s', not to '%s'",
        target_cluster, config_.cluster_name()));
  }
  const ClusterConfig* self = FindCluster(config_, config_.cluster_name());
  NamespaceRecord record;
  {
    absl::MutexLock lock(&mu_);
    auto name_it = id_by_name_.find(name);
    if (name_it == id_by_name_.end()) {
      return absl::NotFoundError(absl::StrFormat("namespace '%s' is not registered on cluster '%s'",
                                                 name, config_.cluster_name()));
    }
    record = by_id_.at(name_it->second);
    if (std::find(record.clusters().begin(), record.clusters().end(), config_.cluster_name()) ==
        record.clusters().end()) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "cluster '%s' is not a member of namespace '%s'", config_.cluster_name(), name));
    }
    if (record.active_cluster() == config_.cluster_name() &&
        record.state() == NAMESPACE_STATE_ACTIVE) {
      return record;  // already active here: nothing to do
    }
    absl::StatusOr<int64_t> version =
        NextVersionFor(record.failover_version() + 1, self->initial_failover_version(),
                       config_.failover_version_increment());
    if (!version.ok()) return version.status();
    record.set_failover_version(*version);
    record.set_active_cluster(config_.cluster_name());
    record.set_state(NAMESPACE_STATE_ACTIVE);
    if (absl::Status s = store_.PutNamespace(record); !s.ok()) return s;
    by_id_[record.id()] = record;
  }
  std::fprintf(stderr,
               "xdcd: forced failover: namespace '%s' is now active on '%s' at failover "
               "version %lld\n",
               name.c_str(), config_.cluster_name().c_str(),
               static_cast<long long>(record.failover_version()));
  if (listener_) listener_(record);
  return record;
}

absl::StatusOr<bool> NamespaceRegistry::Merge(const NamespaceRecord& incoming) {
  std::optional<NamespaceRecord> merged;
  {
    absl::MutexLock lock(&mu_);
    std::optional<NamespaceRecord> local;
    if (auto it = by_id_.find(incoming.id()); it != by_id_.end()) local = it->second;
    merged = MergeNamespaceRecord(local, incoming);
    if (!merged.has_value()) return false;
    if (absl::Status s = store_.PutNamespace(*merged); !s.ok()) return s;
    MapName(*merged);
    by_id_[merged->id()] = *merged;
  }
  if (listener_) listener_(*merged);
  return true;
}

std::optional<NamespaceRecord> NamespaceRegistry::FindByName(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = id_by_name_.find(name);
  if (it == id_by_name_.end()) return std::nullopt;
  return by_id_.at(it->second);
}

absl::StatusOr<NamespaceRecord> NamespaceRegistry::Get(const std::string& name) const {
  std::optional<NamespaceRecord> record = FindByName(name);
  if (!record.has_value()) {
    return absl::NotFoundError(absl::StrFormat(
        "namespace '%s' is not registered on cluster '%s' (register it, or check the name)", name,
        config_.cluster_name()));
  }
  return *std::move(record);
}

absl::StatusOr<std::string> NamespaceRegistry::CurrentRun(const NamespaceRecord& ns,
                                                          const std::string& workflow_id) const {
  absl::StatusOr<std::optional<std::string>> run = store_.GetCurrentRun(ns.id(), workflow_id);
  if (!run.ok()) return run.status();
  if (!run->has_value()) {
    return absl::NotFoundError(
        absl::StrFormat("workflow '%s' has no run in namespace '%s'", workflow_id, ns.name()));
  }
  return **run;
}

std::optional<NamespaceRecord> NamespaceRegistry::FindById(const std::string& id) const {
  absl::MutexLock lock(&mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return std::nullopt;
  return it->second;
}

std::vector<NamespaceRecord> NamespaceRegistry::List() const {
  absl::MutexLock lock(&mu_);
  std::vector<NamespaceRecord> records;
  for (const auto& [id, record] : by_id_) records.push_back(record);
  return records;
}

void NamespaceRegistry::SetChangeListener(std::function<void(const NamespaceRecord&)> listener) {
  listener_ = std::move(listener);
}

}  // namespace xdc
