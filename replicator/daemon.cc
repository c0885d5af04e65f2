#include "replicator/daemon.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "protocol/config.h"
#include "replicator/api_json.h"
#include "replicator/logger.h"
#include "replicator/published_tail.h"
#include "replicator/readiness.h"

namespace xdc {
namespace {

// The API bearer token: api.bearer_token, or read now from api.bearer_token_file ("": none).
absl::StatusOr<std::string> ReadApiToken(const ApiConfig& api) {
  if (api.bearer_token_file().empty()) return api.bearer_token();
  const std::string& path = api.bearer_token_file();
  auto unreadable = [&path](const std::string& why) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "cannot read api.bearer_token_file %s (%s): check the path and that xdcd may read it", path,
        why));
  };
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return unreadable("it is a directory");
  std::ifstream in(path);
  if (!in) return unreadable(std::strerror(errno));
  std::string first_line;
  std::getline(in, first_line);
  if (in.bad()) return unreadable("read error");
  return ApiTokenFromFile(first_line, path);
}

}  // namespace

Daemon::Daemon(DaemonConfig config, Tunables tunables, Clock clock)
    : config_(std::move(config)), tunables_(tunables), clock_(std::move(clock)) {}

Daemon::~Daemon() { Stop(); }

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Start(DaemonConfig config, Tunables tunables,
                                                      Clock clock) {
  if (absl::Status s = ValidateConfig(config); !s.ok()) return s;
  std::unique_ptr<Daemon> daemon(new Daemon(std::move(config), tunables, std::move(clock)));
  if (absl::Status s = daemon->Init(); !s.ok()) return s;
  return daemon;
}

absl::Status Daemon::Init() {
  absl::StatusOr<std::string> api_token = ReadApiToken(config_.api());
  if (!api_token.ok()) return api_token.status();
  const ClusterConfig* self = FindCluster(config_, config_.cluster_name());
  std::error_code ec;
  std::filesystem::create_directories(config_.data_dir(), ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrFormat("cannot create data_dir %s: %s", config_.data_dir(), ec.message()));
  }
  StoreOptions store_options;
  store_options.path = config_.data_dir();
  store_options.max_commit_group = tunables_.max_commit_group;
  store_options.identity.set_cluster_name(config_.cluster_name());
  store_options.identity.set_shard_count(config_.shard_count());
  store_options.identity.set_initial_failover_version(self->initial_failover_version());
  store_options.identity.set_failover_version_increment(config_.failover_version_increment());
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(store_options);
  if (!store.ok()) return store.status();
  store_ = *std::move(store);
  std::set<std::string> from_config;
  for (const ClusterConfig& cluster : config_.clusters()) from_config.insert(cluster.name());
  // Clusters added online since the config file was written (nothing else runs yet).
  if (absl::Status s = MembershipService::MergePersisted(*store_, config_); !s.ok()) return s;

  bootstrap_ = config_.kafka().bootstrap_servers();
  if (bootstrap_.empty()) {
    if (absl::Status s = StartEmbeddedKafka(); !s.ok()) return s;
  }
  // Our own topics, on our own Kafka; a peer's are the peer's to create on its Kafka (except on
  // an embedded Kafka the peer shares, which cannot serve CreateTopics: EnsureClusterTopics).
  for (const ClusterConfig& cluster : config_.clusters()) {
    if (absl::Status s = EnsureClusterTopics(cluster.name()); !s.ok()) return s;
  }

  metrics_ = std::make_unique<Metrics>(config_.cluster_name());
  metrics_->SetStartTime(clock_());
  namespaces_ = std::make_unique<NamespaceRegistry>(*store_, config_, clock_);
  if (absl::Status s = namespaces_->Load(); !s.ok()) return s;

  writer_ = std::make_unique<WorkflowWriter>(*store_, config_.shard_count());
  startup_ = std::make_unique<StartupChecker>(
      config_, tunables_, *store_, *namespaces_, clock_,
      StartupChecker::Io{
          .send_control = [this](ControlMessage m) { publisher_->SendControl(std::move(m)); },
          .read_tails = [this] { return ReadPublishedTails(config_, tunables_, bootstrap_); },
          .writes_allowed =
              [this] {
                // Reapplication waited for the check too.
                for (const NamespaceRecord& record : namespaces_->List()) {
                  if (record.active_cluster() == config_.cluster_name()) {
                    sweeper_->Request(record.id());
                  }
                }
              }});
  task_applier_ = std::make_unique<TaskApplier>(config_, *namespaces_, clock_);
  task_applier_->SetWriteGate(
      [this](const NamespaceRecord& ns) { return startup_->Gate(ns).ok(); });
  sweeper_ = std::make_unique<ReapplySweeper>(config_, *store_, *writer_, *task_applier_);
  task_applier_->SetReapplyLeftListener(
      [this](const std::string& namespace_id) { sweeper_->Request(namespace_id); });
  sweeper_->Start();
  publisher_ =
      std::make_unique<Publisher>(config_, tunables_, *store_, metrics_->publisher_probe(), clock_);
  store_->SetOutboxListener([this](const std::vector<int32_t>&) { publisher_->Notify(); });
  namespaces_->SetChangeListener([this](const NamespaceRecord& record) {
    publisher_->Announce(record);
    metrics_->ObserveFailovers(record.id(), FailoversCompletedBy(record, config_.cluster_name()));
    // Runs a standby left reapply_pending are reapplied once the namespace is active here.
    if (record.active_cluster() == config_.cluster_name()) sweeper_->Request(record.id());
  });
  for (const NamespaceRecord& record : namespaces_->List()) {
    if (record.active_cluster() == config_.cluster_name()) sweeper_->Request(record.id());
  }
  if (absl::Status s = publisher_->Start(bootstrap_, namespaces_->List()); !s.ok()) return s;
  handover_ = std::make_unique<HandoverCoordinator>(
      config_, tunables_, *store_, *writer_, *namespaces_, clock_,
      [this](ControlMessage message) { publisher_->SendControl(std::move(message)); });
  if (absl::Status s = handover_->Start(); !s.ok()) return s;
  control_ = std::make_unique<ControlApplier>(config_, tunables_, *store_, *namespaces_, *handover_,
                                              *startup_, clock_);
  dlq_ = std::make_unique<DlqService>(*store_, *writer_, *task_applier_, *control_);

  for (const ClusterConfig& cluster : config_.clusters()) {
    if (cluster.name() == config_.cluster_name()) continue;
    if (absl::Status s = StartPeer(cluster.name()); !s.ok()) return s;
  }
  startup_->Start();  // after the publisher (its probe) and the appliers (the answers)
  backfill_ =
      std::make_unique<BackfillPublisher>(config_, tunables_, *store_, *namespaces_, clock_);
  if (absl::Status s = backfill_->Start(bootstrap_); !s.ok()) return s;
  membership_ = std::make_unique<MembershipService>(
      config_, config_mu_, std::move(from_config), *store_, *namespaces_, clock_,
      MembershipService::PeerHooks{
          .ensure_topics = [this](const std::string& c) { return EnsureClusterTopics(c); },
          .start_appliers = [this](const std::string& c) { return StartPeer(c); },
          .stop_appliers = [this](const std::string& c) { StopPeer(c); }});
  migration_api_ = std::make_unique<MigrationApi>(*membership_, *backfill_);

  writes_ = std::make_unique<WriteService>(config_, tunables_, *writer_, *namespaces_, *startup_,
                                           metrics_->write_probe(), clock_);
  content_digests_ =
      std::make_unique<ContentDigestService>(*store_, *namespaces_, config_.shard_count());
  repairer_ = std::make_unique<RunRepairer>(config_, tunables_, *namespaces_, *writer_,
                                            *task_applier_, clock_);
  api_ = std::make_unique<ApiHandler>(
      tunables_, *store_, *namespaces_, *writes_, *dlq_, *handover_, [this] { return Status(); },
      [this] { return Readiness(); },
      [this](const AcknowledgeMissingTasksRequest& r) { return AcknowledgeMissingTasks(r); },
      *metrics_, *content_digests_, *repairer_);
  http_ = std::make_unique<HttpServer>(
      [this](const ApiRequest& r) { return HandleRequest(r); },
      HttpServerLimits{.max_connections = tunables_.max_http_connections,
                       .max_body_bytes = tunables_.max_request_body_bytes,
                       .idle_timeout_ms = tunables_.http_idle_timeout_ms,
                       .request_read_timeout_ms = tunables_.http_request_read_timeout_ms});
  http_->SetProbe(metrics_->api_probe());
  http_->RequireBearerToken(*api_token);
  if (api_token->empty()) {
    log::Write(log::Level::kWarning, "",
               absl::StrFormat("cluster %s: WARNING: no api.bearer_token or api.bearer_token_file "
                               "in the config: mutating API calls are not authenticated",
                               config_.cluster_name().c_str()));
  }
  absl::StatusOr<HostPort> listen = ParseHostPort(config_.http_listen_address());
  if (!listen.ok()) return listen.status();
  absl::StatusOr<uint16_t> port = http_->Start(listen->host, listen->port);
  if (!port.ok()) return port.status();
  http_port_ = *port;
  return absl::OkStatus();
}

absl::Status Daemon::StartEmbeddedKafka() {
  absl::StatusOr<std::unique_ptr<EmbeddedKafka>> kafka =
      EmbeddedKafka::Start(tunables_.embedded_kafka_brokers);
  if (!kafka.ok()) return kafka.status();
  embedded_kafka_ = *std::move(kafka);
  bootstrap_ = embedded_kafka_->bootstrap();
  const std::string& fixed = config_.kafka().embedded_listen_address();
  if (fixed.empty()) return absl::OkStatus();
  // The mock's brokers listen on ports picked at start; peers bootstrap through the fixed
  // address and learn the brokers' own addresses from the metadata (all on loopback).
  absl::StatusOr<HostPort> listen = ParseHostPort(fixed);
  if (!listen.ok()) return listen.status();
  const std::string first_broker = bootstrap_.substr(0, bootstrap_.find(','));
  absl::StatusOr<HostPort> broker = ParseHostPort(first_broker);
  if (!broker.ok()) return broker.status();
  absl::StatusOr<std::unique_ptr<TcpRelay>> relay =
      TcpRelay::Start(listen->host, listen->port, broker->host, broker->port);
  if (!relay.ok()) {
    return absl::UnavailableError(absl::StrCat(
        "kafka.embedded_listen_address: ", relay.status().message(),
        " (another process, or another xdcd's embedded Kafka, holds it: pick a free port)"));
  }
  embedded_relay_ = *std::move(relay);
  bootstrap_ = absl::StrFormat("%s:%d", listen->host, embedded_relay_->port());
  return absl::OkStatus();
}

bool Daemon::SharesOurKafka(const std::string& cluster) const {
  const ClusterConfig* entry = FindCluster(config_, cluster);
  return entry == nullptr || !entry->has_kafka();
}

absl::Status Daemon::EnsureClusterTopics(const std::string& cluster) {
  const bool own = cluster == config_.cluster_name();
  // A peer on a Kafka of its own creates its topics there itself.
  if (!own && !SharesOurKafka(cluster)) return absl::OkStatus();
  // A peer that shares a real Kafka with us creates its own topics too; one that shares our
  // embedded Kafka cannot (the mock does not serve CreateTopics), so its host creates them.
  if (!own && embedded_kafka_ == nullptr) return absl::OkStatus();
  const std::string& prefix = config_.kafka().topic_prefix();
  const std::vector<TopicSpec> topics = {{HistoryTopic(cluster, prefix), config_.shard_count()},
                                         {ControlTopic(cluster, prefix), 1},
                                         {BackfillTopic(cluster, prefix), config_.shard_count()}};
  if (embedded_kafka_ != nullptr) {
    for (const TopicSpec& topic : topics) {
      if (absl::Status s = embedded_kafka_->CreateTopic(topic.name, topic.partitions); !s.ok()) {
        return s;
      }
    }
  }
  return EnsureTopics(bootstrap_, topics, tunables_.topic_create_timeout_ms,
                      KafkaPropertiesOf(config_.kafka()), config_.kafka());
}

PeerKafka Daemon::PeerKafkaOf(const std::string& peer) const {
  const ClusterConfig* entry = FindCluster(config_, peer);
  if (entry == nullptr || !entry->has_kafka()) {
    return PeerKafka{.bootstrap = bootstrap_,
                     .properties = KafkaPropertiesOf(config_.kafka()),
                     .configured = false};
  }
  return PeerKafka{.bootstrap = entry->kafka().bootstrap_servers(),
                   .properties = KafkaPropertiesOf(entry->kafka()),
                   .configured = true};
}

absl::Status Daemon::StartPeer(const std::string& peer) {
  // Called at start and, for a cluster that joins online, by MembershipService after it added
  // the cluster (no other writer of the config then).
  if (const ClusterConfig* cluster = FindCluster(config_, peer)) {
    task_applier_->AddPeer(peer, cluster->initial_failover_version());
  }
  for (PeerStream stream : {PeerStream::kLive, PeerStream::kBackfill}) {
    auto applier = std::make_shared<PeerApplier>(
        config_, tunables_, peer, *store_, *writer_, *task_applier_, *namespaces_, *handover_,
        *control_, metrics_->MakeApplierProbe(StreamProgressKey(peer, stream)), clock_,
        [this](ControlMessage message) { publisher_->SendControl(std::move(message)); }, stream);
    if (absl::Status s = applier->Start(PeerKafkaOf(peer)); !s.ok()) return s;
    absl::MutexLock lock(&appliers_mu_);
    appliers_.push_back(std::move(applier));
  }
  return absl::OkStatus();
}

void Daemon::StopPeer(const std::string& peer) {
  std::vector<std::shared_ptr<PeerApplier>> stopped;
  {
    absl::MutexLock lock(&appliers_mu_);
    for (auto it = appliers_.begin(); it != appliers_.end();) {
      if ((*it)->peer() == peer) {
        stopped.push_back(std::move(*it));
        it = appliers_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& applier : stopped) applier->Stop();
}

ApiResponse Daemon::HandleRequest(const ApiRequest& request) {
  if (std::optional<ApiResponse> answered = migration_api_->Handle(request)) return *answered;
  if (request.target == kSkipStartupCheckPath) return SkipStartupCheck(request);
  absl::ReaderMutexLock lock(&config_mu_);
  return api_->Handle(request);
}

ApiResponse Daemon::SkipStartupCheck(const ApiRequest& request) {
  absl::StatusOr<StartupCheck> result = [&]() -> absl::StatusOr<StartupCheck> {
    if (request.method != "POST") {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s takes POST", std::string(kSkipStartupCheckPath)));
    }
    SkipStartupCheckRequest skip;
    if (absl::Status s = ParseJsonBody(request.body, skip); !s.ok()) return s;
    if (skip.reason().empty()) {
      return absl::InvalidArgumentError(
          "reason is required: say why this cluster may write without hearing its peers");
    }
    return startup_->Skip(skip.reason());
  }();
  ApiResponse response = result.ok() ? JsonResponse(*result) : ErrorResponseFor(result.status());
  if (request.method != "POST") response.status = 405;
  response.route = std::string(kSkipStartupCheckPath);
  return response;
}

absl::StatusOr<AcknowledgeMissingTasksResponse> Daemon::AcknowledgeMissingTasks(
    const AcknowledgeMissingTasksRequest& request) {
  std::shared_ptr<PeerApplier> applier;
  std::vector<std::string> peers;
  {
    absl::MutexLock lock(&appliers_mu_);
    for (const std::shared_ptr<PeerApplier>& candidate : appliers_) {
      if (candidate->stream() != PeerStream::kLive) continue;
      peers.push_back(candidate->peer());
      if (candidate->peer() == request.peer()) applier = candidate;
    }
  }
  const std::string streams = peers.empty() ? "no cluster" : absl::StrJoin(peers, ", ");
  if (request.peer().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "peer is required: the cluster whose tasks are missing here (one of ", streams, ")"));
  }
  if (applier == nullptr) {
    return absl::NotFoundError(
        absl::StrFormat("no stream of cluster '%s' here: this cluster applies those of %s",
                        request.peer(), streams));
  }
  absl::StatusOr<std::vector<MissingTasksAcknowledged>> acknowledged = applier->AcknowledgeMissing(
      {request.shards().begin(), request.shards().end()}, tunables_.acknowledge_missing_timeout_ms);
  if (!acknowledged.ok()) return acknowledged.status();
  AcknowledgeMissingTasksResponse response;
  response.set_peer(request.peer());
  for (MissingTasksAcknowledged& shard : *acknowledged) *response.add_shards() = std::move(shard);
  return response;
}

void Daemon::Stop() {
  // Front to back: stop taking requests, then stop moving data, then close the store.
  if (http_ != nullptr) http_->Stop();
  // Detach the publisher before it stops, so nothing calls into it afterwards. Appliers, the
  // sweeper and handovers still write until stopped below; the store's listener lock makes the
  // commit thread finish a call in progress first and call nothing after this returns (the
  // publisher's drain finds what they queue: it reads the outbox, not the notifications).
  if (store_ != nullptr) store_->SetOutboxListener(nullptr);
  if (backfill_ != nullptr) backfill_->Stop();
  {
    absl::MutexLock lock(&appliers_mu_);
    for (auto& applier : appliers_) applier->Stop();
  }
  if (handover_ != nullptr) handover_->Stop();
  if (startup_ != nullptr) startup_->Stop();
  if (sweeper_ != nullptr) sweeper_->Stop();
  if (publisher_ != nullptr) publisher_->Stop();
}

std::string Daemon::http_address() const {
  absl::StatusOr<HostPort> listen = ParseHostPort(config_.http_listen_address());
  return absl::StrFormat("%s:%d", listen.ok() ? listen->host : "127.0.0.1", http_port_);
}

ReadinessResponse Daemon::Readiness() const {
  return EvaluateReadiness(Status(), publisher_->CheckKafka(tunables_.readyz_kafka_timeout_ms),
                           tunables_.readyz_max_lag_seconds);
}

StatusResponse Daemon::Status() const {
  StatusResponse status;
  status.set_cluster(config_.cluster_name());
  status.set_shard_count(config_.shard_count());
  status.set_kafka_bootstrap(bootstrap_);
  *status.mutable_startup_check() = startup_->Status();
  absl::MutexLock lock(&appliers_mu_);
  std::vector<std::vector<PeerShardStatus>> peers;
  for (const auto& applier : appliers_) peers.push_back(applier->Snapshot());
  const std::vector<ShardPublishHealth> publishing = publisher_->Health();
  int64_t total_lag = 0;
  for (int32_t shard = 0; shard < config_.shard_count(); ++shard) {
    ShardStatus* s = status.add_shards();
    s->set_shard(shard);
    s->set_outbox_next_task_id(store_->OutboxNextTaskId(shard));
    s->set_published_task_id(store_->PublishedTaskId(shard));
    s->set_publish_error(publishing[shard].error);
    s->set_publish_failures(publishing[shard].failures);
    s->set_publish_failing_since_unix_micros(publishing[shard].failing_since_unix_micros);
    for (const auto& peer : peers) {
      *s->add_peers() = peer[shard];
      total_lag += peer[shard].lag_tasks();
    }
  }
  status.set_total_lag_tasks(total_lag);
  status.set_parked_tasks(store_->ParkedCount());
  status.set_dlq_awaiting_resend(store_->AwaitingResendCount());
  int64_t corrupt = 0;
  for (const auto& applier : appliers_) {
    corrupt += applier->corrupt_messages();
    if (std::string reason = applier->halt_reason(); !reason.empty()) {
      status.add_halted_appliers(reason);
    }
  }
  status.set_corrupt_messages(corrupt);
  for (const auto& applier : appliers_) *status.add_peer_kafka() = applier->KafkaStatus();
  status.set_producer_recreations(publisher_->producer_recreations());
  status.set_committed_appends(static_cast<int64_t>(store_->SyncedWrites()));
  status.set_commit_groups(static_cast<int64_t>(store_->SyncedGroups()));
  if (absl::Status error = store_->WriteError(); !error.ok()) {
    status.set_store_write_error(std::string(error.message()));
  }
  // From the store's reapply_pending index and its counts: no scan of the workflows.
  status.set_reapply_pending_runs(store_->ReapplyPendingCount());
  absl::StatusOr<std::vector<ReapplyPendingRuns>> pending =
      store_->ListReapplyPending(kMaxReapplyPendingListed);
  if (!pending.ok()) {
    log::Write(log::Level::kWarning, "status.reapply_pending",
               absl::StrFormat("listing the reapply_pending runs failed: %s",
                               pending.status().ToString().c_str()));
  } else {
    for (ReapplyPendingRuns& runs : *pending) {
      ReapplyPendingNamespace* entry = status.add_reapply_pending();
      entry->set_namespace_id(runs.namespace_id);
      if (std::optional<NamespaceRecord> record = namespaces_->FindById(runs.namespace_id)) {
        entry->set_namespace_(record->name());
      }
      entry->set_runs(runs.runs);
      for (WorkflowKey& key : runs.listed) *entry->add_listed() = std::move(key);
    }
  }
  return status;
}

}  // namespace xdc
