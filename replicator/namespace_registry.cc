#include "replicator/namespace_registry.h"

#include <cstdio>
#include <set>

#include "absl/random/random.h"
#include "absl/strings/str_format.h"
#include "protocol/config.h"
#include "protocol/namespace_record.h"

namespace xdc {

NamespaceRegistry::NamespaceRegistry(Store& store, const DaemonConfig& config, Clock clock)
    : store_(store), config_(config), clock_(std::move(clock)) {}

absl::Status NamespaceRegistry::Load() {
  absl::StatusOr<std::vector<NamespaceRecord>> records = store_.ListNamespaces();
  if (!records.ok()) return records.status();
  absl::StatusOr<std::vector<NamespaceRecordLearned>> learned = store_.ListNamespacesLearned();
  if (!learned.ok()) return learned.status();
  absl::MutexLock lock(&mu_);
  for (NamespaceRecord& record : *records) {
    MapName(record);
    by_id_[record.id()] = std::move(record);
  }
  for (NamespaceRecordLearned& entry : *learned) {
    learned_by_id_[entry.namespace_id()] = std::move(entry);
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
  StoreWrite write;
  Store::WriteTicket ticket;
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
    record.set_config_failover_version(record.failover_version());
    write.namespace_record = record;
    if (absl::Status s = QueueRecord(write, ticket, config_.cluster_name()); !s.ok()) return s;
  }
  if (absl::Status s = WaitAndAnnounce(write, ticket); !s.ok()) return s;
  return record;
}

absl::Status NamespaceRegistry::QueueRecord(StoreWrite& write, Store::WriteTicket& ticket,
                                            const std::string& from) {
  write.durability = Durability::kSynced;
  NamespaceRecordLearned learned;
  learned.set_namespace_id(write.namespace_record->id());
  learned.set_learned_unix_micros(clock_());
  learned.set_learned_from(from);
  write.namespace_learned = learned;
  if (absl::Status s = store_.QueueWrite(write, ticket); !s.ok()) return s;
  const NamespaceRecord& record = *write.namespace_record;
  MapName(record);
  by_id_[record.id()] = record;
  learned_by_id_[record.id()] = std::move(learned);
  return absl::OkStatus();
}

absl::Status NamespaceRegistry::WaitAndAnnounce(StoreWrite& write, Store::WriteTicket& ticket) {
  absl::StatusOr<int64_t> written = store_.WaitWrite(write, ticket);
  if (!written.ok()) return written.status();
  if (listener_) listener_(*write.namespace_record);
  return absl::OkStatus();
}

absl::StatusOr<bool> NamespaceRegistry::Merge(const NamespaceRecord& incoming,
                                              const std::string& from) {
  // The appliers park such a record before they get here (protocol/input_bounds.h); this keeps
  // any other caller from storing a record no failover could go above.
  if (absl::Status s = ValidateRecordVersions(incoming); !s.ok()) return s;
  StoreWrite write;
  Store::WriteTicket ticket;
  {
    absl::MutexLock lock(&mu_);
    std::optional<NamespaceRecord> local;
    if (auto it = by_id_.find(incoming.id()); it != by_id_.end()) local = it->second;
    write.namespace_record = MergeNamespaceRecord(local, incoming);
    if (!write.namespace_record.has_value()) return false;
    if (absl::Status s = QueueRecord(write, ticket, from); !s.ok()) return s;
  }
  if (absl::Status s = WaitAndAnnounce(write, ticket); !s.ok()) return s;
  return true;
}

absl::StatusOr<NamespaceRecord> NamespaceRegistry::Change(const std::string& id,
                                                          const ChangeFn& change) {
  StoreWrite write;
  Store::WriteTicket ticket;
  {
    absl::MutexLock lock(&mu_);
    auto it = by_id_.find(id);
    if (it == by_id_.end()) {
      return absl::NotFoundError(
          absl::StrFormat("namespace id %s is not registered on '%s'", id, config_.cluster_name()));
    }
    absl::StatusOr<std::optional<NamespaceRecord>> next = change(it->second, write);
    if (!next.ok()) return next.status();
    if (!next->has_value()) return it->second;
    write.namespace_record = **next;
    if (absl::Status s = QueueRecord(write, ticket, config_.cluster_name()); !s.ok()) return s;
  }
  if (absl::Status s = WaitAndAnnounce(write, ticket); !s.ok()) return s;
  return *write.namespace_record;
}

absl::Status NamespaceRegistry::NotRegistered(const std::string& name) const {
  return absl::NotFoundError(absl::StrFormat(
      "namespace '%s' is not registered on cluster '%s' (register it, or check the name)", name,
      config_.cluster_name()));
}

std::optional<NamespaceRecord> NamespaceRegistry::FindByName(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = id_by_name_.find(name);
  if (it == id_by_name_.end()) return std::nullopt;
  return by_id_.at(it->second);
}

absl::StatusOr<NamespaceRecord> NamespaceRegistry::Get(const std::string& name) const {
  std::optional<NamespaceRecord> record = FindByName(name);
  if (!record.has_value()) return NotRegistered(name);
  return *std::move(record);
}

absl::StatusOr<NamespaceRegistry::LearnedRecord> NamespaceRegistry::GetLearned(
    const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto id = id_by_name_.find(name);
  if (id == id_by_name_.end()) return NotRegistered(name);
  LearnedRecord found;
  found.record = by_id_.at(id->second);
  if (auto it = learned_by_id_.find(id->second); it != learned_by_id_.end()) {
    found.learned = it->second;
  }
  return found;
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
