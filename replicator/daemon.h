// xdcd assembled: store, Kafka, publisher, one applier per peer, write service and HTTP API.
//
// Peers can join and leave while it runs (replicator/membership_service.h): `clusters` of the
// config changes only under config_mu_ held exclusively, and API requests (the only readers of
// `clusters` after start) are served under it held shared. The appliers never take config_mu_
// (an append holds it, then a shard's lock; an applier holds a shard's lock): what they need of
// a new peer, TaskApplier gets through AddPeer.
//
// Thread-safety: Start/Stop from one thread; Status() from any.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "protocol/xdc.pb.h"
#include "replicator/api_handler.h"
#include "replicator/backfill_publisher.h"
#include "replicator/clock.h"
#include "replicator/control_applier.h"
#include "replicator/dlq_service.h"
#include "replicator/handover_coordinator.h"
#include "replicator/http_server.h"
#include "replicator/kafka_client.h"
#include "replicator/membership_service.h"
#include "replicator/metrics.h"
#include "replicator/migration_api.h"
#include "replicator/namespace_registry.h"
#include "replicator/peer_applier.h"
#include "replicator/reapply_sweeper.h"
#include "replicator/shard_publisher.h"
#include "replicator/startup_checker.h"
#include "replicator/task_applier.h"
#include "replicator/tcp_relay.h"
#include "replicator/tunables.h"
#include "replicator/workflow_writer.h"
#include "replicator/write_service.h"
#include "store/store.h"

namespace xdc {

// GET /v1/status lists, per namespace, at most this many of its runs that are reapply_pending
// (the first in key order; the count covers them all).
inline constexpr size_t kMaxReapplyPendingListed = 10;

class Daemon {
 public:
  // Validates `config`, opens the store, connects to Kafka (starting the embedded mock cluster
  // when no bootstrap is configured), creates missing topics and starts serving.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Daemon>> Start(DaemonConfig config,
                                                                     Tunables tunables = {},
                                                                     Clock clock = SystemNowMicros);
  ~Daemon();
  void Stop();

  [[nodiscard]] uint16_t http_port() const { return http_port_; }
  [[nodiscard]] std::string http_address() const;
  [[nodiscard]] const std::string& kafka_bootstrap() const { return bootstrap_; }
  [[nodiscard]] bool embedded_kafka() const { return embedded_kafka_ != nullptr; }
  [[nodiscard]] StatusResponse Status() const;
  // GET /readyz (replicator/readiness.h); asks Kafka, so it may take readyz_kafka_timeout_ms.
  [[nodiscard]] ReadinessResponse Readiness() const;
  [[nodiscard]] Store& store() { return *store_; }

 private:
  Daemon(DaemonConfig config, Tunables tunables, Clock clock);
  [[nodiscard]] absl::Status Init();
  // Starts the embedded Kafka (no kafka.bootstrap_servers), behind a TcpRelay on
  // kafka.embedded_listen_address when one is set; sets bootstrap_.
  [[nodiscard]] absl::Status StartEmbeddedKafka();
  // Creates `cluster`'s history, control and backfill topics if missing, where this cluster is
  // their creator: its own topics on its own Kafka, and the topics of a peer that shares this
  // cluster's embedded Kafka (which cannot serve CreateTopics). Others: nothing to do.
  [[nodiscard]] absl::Status EnsureClusterTopics(const std::string& cluster);
  // True when `cluster`'s entry names no Kafka of its own (it shares ours).
  [[nodiscard]] bool SharesOurKafka(const std::string& cluster) const;
  // Where `peer`'s topics are read: its entry's kafka block, or our own Kafka.
  [[nodiscard]] PeerKafka PeerKafkaOf(const std::string& peer) const;
  // Starts the live and backfill appliers of `peer`; StopPeer stops and drops them.
  [[nodiscard]] absl::Status StartPeer(const std::string& peer);
  void StopPeer(const std::string& peer);
  [[nodiscard]] ApiResponse HandleRequest(const ApiRequest& request);
  // POST /v1/startup-check/skip (StartupChecker::Skip).
  static constexpr std::string_view kSkipStartupCheckPath = "/v1/startup-check/skip";
  [[nodiscard]] ApiResponse SkipStartupCheck(const ApiRequest& request);
  // POST /v1/missing-tasks/acknowledge: through the live applier of the named peer.
  [[nodiscard]] absl::StatusOr<AcknowledgeMissingTasksResponse> AcknowledgeMissingTasks(
      const AcknowledgeMissingTasksRequest& request);

  DaemonConfig config_;  // `clusters` guarded by config_mu_ (see the class comment)
  mutable absl::Mutex config_mu_;
  const Tunables tunables_;
  Clock clock_;
  std::unique_ptr<EmbeddedKafka> embedded_kafka_;
  std::unique_ptr<TcpRelay> embedded_relay_;  // kafka.embedded_listen_address
  std::string bootstrap_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<NamespaceRegistry> namespaces_;
  std::unique_ptr<WorkflowWriter> writer_;
  std::unique_ptr<HandoverCoordinator> handover_;
  std::unique_ptr<TaskApplier> task_applier_;
  std::unique_ptr<ControlApplier> control_;
  std::unique_ptr<DlqService> dlq_;
  std::unique_ptr<ReapplySweeper> sweeper_;
  std::unique_ptr<StartupChecker> startup_;
  std::unique_ptr<Publisher> publisher_;
  mutable absl::Mutex appliers_mu_;
  // shared: an acknowledgement (AcknowledgeMissingTasks) may still hold one that StopPeer dropped.
  std::vector<std::shared_ptr<PeerApplier>> appliers_ ABSL_GUARDED_BY(appliers_mu_);
  std::unique_ptr<BackfillPublisher> backfill_;
  std::unique_ptr<MembershipService> membership_;
  std::unique_ptr<MigrationApi> migration_api_;
  std::unique_ptr<WriteService> writes_;
  std::unique_ptr<ContentDigestService> content_digests_;
  std::unique_ptr<RunRepairer> repairer_;
  std::unique_ptr<ApiHandler> api_;
  std::unique_ptr<HttpServer> http_;
  uint16_t http_port_ = 0;
};

}  // namespace xdc
