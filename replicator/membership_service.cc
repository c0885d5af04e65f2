#include "replicator/membership_service.h"

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "protocol/config.h"
#include "protocol/federation.h"
#include "replicator/logger.h"

namespace xdc {

absl::Status MembershipService::MergePersisted(const Store& store, DaemonConfig& config) {
  absl::StatusOr<std::vector<FederationMember>> members = store.ListFederationMembers();
  if (!members.ok()) return members.status();
  for (const FederationMember& member : *members) {
    const ClusterConfig& cluster = member.cluster();
    if (const ClusterConfig* listed = FindCluster(config, cluster.name())) {
      if (listed->initial_failover_version() != cluster.initial_failover_version()) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "cluster '%s' was added online with initial_failover_version %d but the config file "
            "lists it with %d: a cluster's version never changes; fix the config file",
            cluster.name(), cluster.initial_failover_version(),
            listed->initial_failover_version()));
      }
      continue;
    }
    *config.add_clusters() = cluster;
  }
  if (absl::Status s = ValidateConfig(config); !s.ok()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "the config file and the clusters added online (xdcctl cluster list) disagree: %s",
        std::string(s.message())));
  }
  return absl::OkStatus();
}

MembershipService::MembershipService(DaemonConfig& config, absl::Mutex& config_mu,
                                     std::set<std::string> from_config, Store& store,
                                     NamespaceRegistry& namespaces, Clock clock, PeerHooks hooks)
    : config_(config),
      config_mu_(config_mu),
      from_config_(std::move(from_config)),
      store_(store),
      namespaces_(namespaces),
      clock_(std::move(clock)),
      hooks_(std::move(hooks)) {}

ListClustersResponse MembershipService::ListLocked() const {
  ListClustersResponse response;
  response.set_cluster(config_.cluster_name());
  response.set_failover_version_increment(config_.failover_version_increment());
  response.set_shard_count(config_.shard_count());
  for (const ClusterConfig& cluster : config_.clusters()) {
    ClusterMember* member = response.add_clusters();
    member->set_name(cluster.name());
    member->set_initial_failover_version(cluster.initial_failover_version());
    member->set_from_config(from_config_.contains(cluster.name()));
    member->set_self(cluster.name() == config_.cluster_name());
  }
  return response;
}

ListClustersResponse MembershipService::List() const {
  absl::ReaderMutexLock lock(&config_mu_);
  return ListLocked();
}

absl::StatusOr<ListClustersResponse> MembershipService::Add(const AddClusterRequest& request) {
  absl::MutexLock change(&change_mu_);
  {
    absl::ReaderMutexLock lock(&config_mu_);
    absl::Status valid = ValidateNewCluster(config_, request);
    if (absl::IsAlreadyExists(valid)) return ListLocked();  // a retried request
    if (!valid.ok()) return valid;
  }
  // Topics first (slow, and harmless if the rest fails), then the durable record, then the
  // config: a crash after the record keeps the cluster (MergePersisted at the next start).
  if (absl::Status s = hooks_.ensure_topics(request.name()); !s.ok()) return s;
  FederationMember member;
  member.mutable_cluster()->set_name(request.name());
  member.mutable_cluster()->set_initial_failover_version(request.initial_failover_version());
  member.set_added_unix_micros(clock_());
  if (absl::Status s = store_.PutFederationMember(member); !s.ok()) return s;
  {
    absl::WriterMutexLock lock(&config_mu_);
    *config_.add_clusters() = member.cluster();
  }
  if (absl::Status s = hooks_.start_appliers(request.name()); !s.ok()) {
    return absl::UnavailableError(absl::StrFormat(
        "cluster '%s' was added to the federation (and is kept across restarts) but its "
        "appliers did not start: %s; restart xdcd after fixing the cause",
        request.name(), s.ToString()));
  }
  log::Write(log::Level::kInfo, "",
             absl::StrFormat("cluster '%s' (initial_failover_version %lld) joined the federation; "
                             "replicating from it",
                             request.name().c_str(),
                             static_cast<long long>(request.initial_failover_version())));
  return List();
}

absl::StatusOr<ListClustersResponse> MembershipService::Remove(const std::string& name) {
  absl::MutexLock change(&change_mu_);
  {
    absl::ReaderMutexLock lock(&config_mu_);
    if (FindCluster(config_, name) == nullptr) return ListLocked();  // already gone
    if (name == config_.cluster_name()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "'%s' is this cluster: remove it from the federation on the other clusters", name));
    }
    if (from_config_.contains(name)) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "cluster '%s' is listed in this daemon's config file: remove it there and restart "
          "xdcd (only clusters added online are removed online)",
          name));
    }
  }
  std::vector<std::string> holding;
  for (const NamespaceRecord& record : namespaces_.List()) {
    if (IsNamespaceMember(record, name)) holding.push_back(record.name());
  }
  if (!holding.empty()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "cluster '%s' is still a member of namespace(s) %s: remove it from them first (xdcctl "
        "namespace remove-cluster NAME --cluster %s)",
        name, absl::StrJoin(holding, ", "), name));
  }
  hooks_.stop_appliers(name);
  {
    absl::WriterMutexLock lock(&config_mu_);
    auto* clusters = config_.mutable_clusters();
    for (int i = 0; i < clusters->size(); ++i) {
      if (clusters->Get(i).name() == name) {
        clusters->DeleteSubrange(i, 1);
        break;
      }
    }
  }
  if (absl::Status s = store_.DeleteFederationMember(name); !s.ok()) return s;
  log::Write(
      log::Level::kInfo, "",
      absl::StrFormat("cluster '%s' left the federation; its appliers stopped", name.c_str()));
  return List();
}

absl::StatusOr<NamespaceRecord> MembershipService::ChangeNamespaceMembers(
    const std::string& name, const NamespaceClustersRequest& request) {
  absl::StatusOr<NamespaceRecord> record = namespaces_.Get(name);
  if (!record.ok()) return record.status();
  absl::ReaderMutexLock lock(&config_mu_);
  return namespaces_.Change(record->id(),
                            [&](const NamespaceRecord& current,
                                StoreWrite&) -> absl::StatusOr<std::optional<NamespaceRecord>> {
                              return xdc::ChangeNamespaceMembers(current, request,
                                                                 config_.cluster_name(), config_);
                            });
}

}  // namespace xdc
