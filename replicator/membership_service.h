// Federation membership online: clusters join (POST /v1/clusters) and leave (POST
// /v1/clusters/{name}/remove) without a restart, and namespaces gain or lose member clusters
// (POST /v1/namespaces/{name}/clusters). See docs/migration.md.
//
// A cluster added online is validated (protocol/federation.h), persisted in the store (so a
// restart keeps it: MergePersisted adds it back to the config before anything starts), added to
// the daemon's config (its `clusters` list is what the registry, the handover coordinator and
// the version layout read), and its peer appliers are started. Removing one is allowed only for a
// cluster added online that no namespace lists: its appliers stop and the entry is deleted.
//
// Thread-safety: the daemon config's `clusters` is changed only here, under `config_mu` held
// exclusively; every other reader of `clusters` after start-up runs inside an API request, which
// the daemon serves under `config_mu` held shared. Membership changes are serialised by change_mu_.
#pragma once

#include <functional>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "protocol/xdc.pb.h"
#include "replicator/clock.h"
#include "replicator/namespace_registry.h"
#include "store/store.h"

namespace xdc {

class MembershipService {
 public:
  // What the daemon does for a peer joining or leaving: create its topics, start and stop its
  // appliers. Called without config_mu held.
  struct PeerHooks {
    std::function<absl::Status(const std::string& cluster)> ensure_topics;
    std::function<absl::Status(const std::string& cluster)> start_appliers;
    std::function<void(const std::string& cluster)> stop_appliers;
  };

  // Adds the clusters persisted by earlier online additions to `config` (at start, before any
  // component reads it). FAILED_PRECONDITION if the config file lists one of them with another
  // initial_failover_version.
  [[nodiscard]] static absl::Status MergePersisted(const Store& store, DaemonConfig& config);

  // `from_config`: the cluster names the config file lists (they cannot be removed online).
  MembershipService(DaemonConfig& config, absl::Mutex& config_mu, std::set<std::string> from_config,
                    Store& store, NamespaceRegistry& namespaces, Clock clock, PeerHooks hooks);

  [[nodiscard]] ListClustersResponse List() const;
  // Validates, persists, adds to the config and starts the peer's appliers. Adding a cluster
  // that is already a member with the same version answers the list (a retried request).
  [[nodiscard]] absl::StatusOr<ListClustersResponse> Add(const AddClusterRequest& request);
  [[nodiscard]] absl::StatusOr<ListClustersResponse> Remove(const std::string& name);
  // Adds or removes one member cluster of namespace `name` (sent to its active cluster).
  [[nodiscard]] absl::StatusOr<NamespaceRecord> ChangeNamespaceMembers(
      const std::string& name, const NamespaceClustersRequest& request);

 private:
  [[nodiscard]] ListClustersResponse ListLocked() const ABSL_SHARED_LOCKS_REQUIRED(config_mu_);

  DaemonConfig& config_;
  absl::Mutex& config_mu_;
  const std::set<std::string> from_config_;
  Store& store_;
  NamespaceRegistry& namespaces_;
  Clock clock_;
  PeerHooks hooks_;
  absl::Mutex change_mu_;  // one membership change at a time
};

}  // namespace xdc
