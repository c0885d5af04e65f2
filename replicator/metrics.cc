#include "replicator/metrics.h"

#include <algorithm>
#include <array>
#include <string>

#include "absl/strings/str_cat.h"
#include "prometheus/histogram.h"
#include "prometheus/text_serializer.h"
#include "replicator/kafka_statistics.h"
#include "replicator/logger.h"

namespace xdc {

namespace {
// Upper bounds (seconds) of the API latency histogram: reads and appends take milliseconds; a
// failover that waits for its decision can take seconds.
constexpr std::array<double, 14> kApiLatencyBuckets = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
// Upper bounds (seconds) of the failover histograms: a graceful handover under load takes tens of
// milliseconds to seconds; a forced failover's refused time is how long the old active was gone.
constexpr std::array<double, 14> kFailoverBuckets = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                                     2.5,  5,     10,   30,  60,   300, 1800};
constexpr double kMicrosPerSecond = 1e6;

template <typename Builder>
auto& Build(Builder builder, const char* name, const char* help, const std::string& cluster,
            prometheus::Registry& registry) {
  return builder.Name(name).Help(help).Labels({{"cluster", cluster}}).Register(registry);
}
}  // namespace

Metrics::Metrics(const std::string& cluster)
    : registry_(std::make_shared<prometheus::Registry>()),
      appends_(Build(
          prometheus::BuildCounter(), "xdc_appends_total",
          "Appends (each of a batch too) and signals by result (replayed: a retry answered with "
          "the outcome of its request id)",
          cluster, *registry_)),
      events_appended_(Build(prometheus::BuildCounter(), "xdc_events_appended_total",
                             "Events durably appended on this cluster", cluster, *registry_)),
      published_(Build(prometheus::BuildCounter(), "xdc_tasks_published_total",
                       "Replication tasks delivered to Kafka", cluster, *registry_)),
      delivery_errors_(Build(prometheus::BuildCounter(), "xdc_publish_delivery_errors_total",
                             "Kafka delivery failures (the task is resent)", cluster, *registry_)),
      applied_(Build(prometheus::BuildCounter(), "xdc_events_applied_total",
                     "Events applied from a peer", cluster, *registry_)),
      duplicates_(Build(prometheus::BuildCounter(), "xdc_duplicate_events_dropped_total",
                        "Replicated events dropped because they were already applied", cluster,
                        *registry_)),
      parked_(Build(prometheus::BuildCounter(), "xdc_tasks_parked_total",
                    "Replication tasks parked in the DLQ", cluster, *registry_)),
      corrupt_(Build(prometheus::BuildCounter(), "xdc_corrupt_messages_total",
                     "Kafka messages that failed the frame or checksum check", cluster,
                     *registry_)),
      gaps_(Build(prometheus::BuildCounter(), "xdc_replication_gaps_total",
                  "Replication tasks that arrived with events missing before them", cluster,
                  *registry_)),
      halted_(Build(
          prometheus::BuildGauge(), "xdc_applier_halted",
          "1 when a peer's applier halted: store error, or the peer's partition lost applied data",
          cluster, *registry_)),
      forked_(Build(prometheus::BuildCounter(), "xdc_branches_forked_total",
                    "Replicated tasks that started a new branch of a workflow", cluster,
                    *registry_)),
      switches_(Build(prometheus::BuildCounter(), "xdc_branch_switches_total",
                      "Times a workflow's current branch changed to a higher-version branch",
                      cluster, *registry_)),
      reapplied_(Build(prometheus::BuildCounter(), "xdc_events_reapplied_total",
                       "Signals, cancel requests and terminations copied from losing branches",
                       cluster, *registry_)),
      reapply_dropped_(
          Build(prometheus::BuildCounter(), "xdc_reapply_dropped_total",
                "Losing-branch input not reapplied because the run had closed (counted again at "
                "each later branch change of that run)",
                cluster, *registry_)),
      resend_requests_(Build(prometheus::BuildCounter(), "xdc_resend_requests_total",
                             "Resend requests sent to a peer for missing events", cluster,
                             *registry_)),
      resends_served_(Build(prometheus::BuildCounter(), "xdc_resend_tasks_served_total",
                            "Tasks published from the store to answer a peer's resend request",
                            cluster, *registry_)),
      parked_resumed_(Build(prometheus::BuildCounter(), "xdc_parked_tasks_resumed_total",
                            "Parked tasks applied after a resend or a retry", cluster, *registry_)),
      dead_lettered_(Build(prometheus::BuildCounter(), "xdc_gaps_dead_lettered_total",
                           "Gaps given up on after resend_max_attempts (left in the DLQ)", cluster,
                           *registry_)),
      dlq_depth_(Build(prometheus::BuildGauge(), "xdc_dlq_entries",
                       "Entries in the DLQ, by whether they wait for a resend", cluster,
                       *registry_)),
      lag_tasks_(Build(prometheus::BuildGauge(), "xdc_replication_lag_tasks",
                       "Tasks in the peer's partition not yet applied", cluster, *registry_)),
      lag_seconds_(Build(prometheus::BuildGauge(), "xdc_replication_lag_seconds",
                         "Age of the newest applied task while behind, else 0", cluster,
                         *registry_)),
      missing_tasks_(Build(prometheus::BuildGauge(), "xdc_replication_missing_tasks",
                           "Task ids the peer's stream skipped over and that have not arrived",
                           cluster, *registry_)),
      outbox_backlog_(Build(prometheus::BuildGauge(), "xdc_outbox_backlog_tasks",
                            "Committed tasks not yet delivered to Kafka", cluster, *registry_)),
      publish_failures_(
          Build(prometheus::BuildGauge(), "xdc_publish_consecutive_failures",
                "Times in a row Kafka refused the shard's oldest undelivered task (0: publishing "
                "works); the shard's stream stands still while it is above 0",
                cluster, *registry_)),
      producer_recreations_(
          Build(prometheus::BuildCounter(), "xdc_publish_producer_recreations_total",
                "Kafka producers replaced after a fatal error (every shard then sent again from "
                "its first unacknowledged task)",
                cluster, *registry_)),
      store_write_failed_(Build(prometheus::BuildGauge(), "xdc_store_write_failed",
                                "1 once a store write failed: appends are refused until restart",
                                cluster, *registry_)),
      store_bytes_(Build(prometheus::BuildGauge(), "xdc_store_bytes",
                         "RocksDB data size: kind=sst (files on disk) or memtable (in memory)",
                         cluster, *registry_)),
      store_pending_compaction_(
          Build(prometheus::BuildGauge(), "xdc_store_pending_compaction_bytes",
                "Bytes RocksDB estimates compaction still has to rewrite", cluster, *registry_)),
      store_write_stalled_(
          Build(prometheus::BuildGauge(), "xdc_store_write_stalled",
                "1 while RocksDB stops or slows writes until compaction catches up", cluster,
                *registry_)),
      unauthenticated_(Build(prometheus::BuildCounter(), "xdc_api_unauthenticated_total",
                             "Mutating API calls refused for a missing or wrong bearer token",
                             cluster, *registry_)),
      api_requests_(Build(prometheus::BuildCounter(), "xdc_api_requests_total",
                          "HTTP API requests answered, by route, method and HTTP status code",
                          cluster, *registry_)),
      api_latency_(
          Build(prometheus::BuildHistogram(), "xdc_api_request_duration_seconds",
                "Time from a request's arrival to its answer being ready, by route and method",
                cluster, *registry_)),
      namespace_active_(Build(prometheus::BuildGauge(), "xdc_namespace_active",
                              "1 when this cluster accepts writes for the namespace", cluster,
                              *registry_)),
      namespace_version_(Build(prometheus::BuildGauge(), "xdc_namespace_failover_version",
                               "The namespace's failover version as this cluster knows it", cluster,
                               *registry_)),
      handover_seconds_(Build(prometheus::BuildGauge(), "xdc_namespace_handover_seconds",
                              "Seconds this cluster has refused writes in an undecided handover "
                              "it is the source of (0: none)",
                              cluster, *registry_)),
      failovers_(Build(prometheus::BuildGauge(), "xdc_namespace_failovers",
                       "Failovers in the namespace's history (the newest kMaxFailoverHistory), "
                       "by kind",
                       cluster, *registry_)),
      failover_duration_(
          Build(prometheus::BuildHistogram(), "xdc_failover_duration_seconds",
                "Failovers this cluster completed, from start (source stopped writes, or the "
                "forced request) to completion, by kind",
                cluster, *registry_)),
      failover_writes_refused_(
          Build(prometheus::BuildHistogram(), "xdc_failover_writes_refused_seconds",
                "How long no cluster accepted writes, per failover this cluster completed, by kind",
                cluster, *registry_)),
      kafka_broker_up_(Build(prometheus::BuildGauge(), "xdc_kafka_broker_up",
                             "1 while a Kafka client is connected to the broker (librdkafka "
                             "statistics), by client (producer, consumer) and peer",
                             cluster, *registry_)),
      kafka_broker_rtt_(Build(prometheus::BuildGauge(), "xdc_kafka_broker_rtt_seconds",
                              "Broker round-trip time over librdkafka's last statistics window",
                              cluster, *registry_)),
      kafka_broker_in_flight_(Build(prometheus::BuildGauge(), "xdc_kafka_broker_requests_in_flight",
                                    "Requests to the broker waiting to be sent or answered",
                                    cluster, *registry_)),
      kafka_broker_errors_(Build(prometheus::BuildCounter(), "xdc_kafka_broker_errors_total",
                                 "Kafka client errors with a broker: kind=send, receive, timeout "
                                 "or disconnect",
                                 cluster, *registry_)),
      kafka_producer_queue_messages_(
          Build(prometheus::BuildGauge(), "xdc_kafka_producer_queue_messages",
                "Messages in the producer's queues, not yet delivered", cluster, *registry_)),
      kafka_producer_queue_bytes_(Build(prometheus::BuildGauge(), "xdc_kafka_producer_queue_bytes",
                                        "Bytes of the messages in the producer's queues", cluster,
                                        *registry_)),
      kafka_statistics_unparsable_(
          Build(prometheus::BuildCounter(), "xdc_kafka_statistics_unparsable_total",
                "librdkafka statistics that could not be parsed (the Kafka metrics keep their "
                "last values)",
                cluster, *registry_)),
      write_{&appends_.Add({{"result", "ok"}}), &appends_.Add({{"result", "rejected"}}),
             &events_appended_.Add({}), &appends_.Add({{"result", "replayed"}})},
      publisher_{&published_.Add({}), &delivery_errors_.Add({}), &producer_recreations_.Add({}),
                 KafkaStatisticsFor("producer", "")},
      api_{&unauthenticated_.Add({}),
           [this](const std::string& route, const std::string& method, int status, double seconds) {
             api_requests_
                 .Add({{"route", route}, {"method", method}, {"code", std::to_string(status)}})
                 .Increment();
             api_latency_
                 .Add({{"route", route}, {"method", method}},
                      prometheus::Histogram::BucketBoundaries(kApiLatencyBuckets.begin(),
                                                              kApiLatencyBuckets.end()))
                 .Observe(seconds);
           }} {}

ApplierProbe Metrics::MakeApplierProbe(const std::string& peer) {
  const prometheus::Labels labels{{"peer", peer}};
  return ApplierProbe{&applied_.Add(labels),
                      &duplicates_.Add(labels),
                      &parked_.Add(labels),
                      &corrupt_.Add(labels),
                      &gaps_.Add(labels),
                      &halted_.Add(labels),
                      &forked_.Add(labels),
                      &switches_.Add(labels),
                      &reapplied_.Add(labels),
                      &reapply_dropped_.Add(labels),
                      &resend_requests_.Add(labels),
                      &resends_served_.Add(labels),
                      &parked_resumed_.Add(labels),
                      &dead_lettered_.Add(labels),
                      KafkaStatisticsFor("consumer", peer)};
}

KafkaStatisticsFn Metrics::KafkaStatisticsFor(std::string client, std::string peer) {
  return [this, client = std::move(client), peer = std::move(peer)](std::string_view json) {
    absl::StatusOr<RdKafkaStatistics> statistics = ParseKafkaStatistics(json);
    if (!statistics.ok()) {
      kafka_statistics_unparsable_.Add({{"client", client}}).Increment();
      log::Write(log::Level::kWarning, "kafka.statistics_unparsable",
                 absl::StrCat("kafka ", client, " statistics: ", statistics.status().ToString()),
                 log::Fields().Peer(peer));
      return;
    }
    SetKafkaStatistics(client, peer, *statistics);
  };
}

void Metrics::SetKafkaStatistics(const std::string& client, const std::string& peer,
                                 const RdKafkaStatistics& statistics) {
  prometheus::Labels labels{{"client", client}};
  if (!peer.empty()) labels["peer"] = peer;
  if (client == "producer") {
    kafka_producer_queue_messages_.Add(labels).Set(static_cast<double>(statistics.msg_cnt()));
    kafka_producer_queue_bytes_.Add(labels).Set(static_cast<double>(statistics.msg_size()));
  }
  absl::MutexLock lock(&mu_);
  for (const auto& [name, broker] : statistics.brokers()) {
    prometheus::Labels broker_labels = labels;
    broker_labels["broker"] = name;
    kafka_broker_up_.Add(broker_labels).Set(broker.state() == "UP" ? 1 : 0);
    kafka_broker_in_flight_.Add(broker_labels)
        .Set(static_cast<double>(broker.outbuf_cnt() + broker.waitresp_cnt()));
    if (broker.rtt().cnt() > 0) {
      for (const auto& [quantile, micros] :
           {std::pair{"0.5", broker.rtt().p50()}, std::pair{"0.99", broker.rtt().p99()}}) {
        prometheus::Labels rtt_labels = broker_labels;
        rtt_labels["quantile"] = quantile;
        kafka_broker_rtt_.Add(rtt_labels).Set(static_cast<double>(micros) / kMicrosPerSecond);
      }
    }
    for (const auto& [kind, count] :
         {std::pair{"send", broker.txerrs()}, std::pair{"receive", broker.rxerrs()},
          std::pair{"timeout", broker.req_timeouts()},
          std::pair{"disconnect", broker.disconnects()}}) {
      int64_t& last = kafka_counts_[absl::StrCat(client, "/", peer, "/", name, "/", kind)];
      const int64_t increment = count >= last ? count - last : count;  // lower: a new client
      last = count;
      prometheus::Labels error_labels = broker_labels;
      error_labels["kind"] = kind;
      kafka_broker_errors_.Add(error_labels).Increment(static_cast<double>(increment));
    }
  }
}

void Metrics::SetStartTime(int64_t start_unix_micros) {
  absl::MutexLock lock(&mu_);
  start_unix_micros_ = start_unix_micros;
}

void Metrics::SetPeerShard(const std::string& peer, int shard, double lag_tasks, double lag_seconds,
                           double missing_tasks) {
  const prometheus::Labels labels{{"peer", peer}, {"shard", std::to_string(shard)}};
  lag_tasks_.Add(labels).Set(lag_tasks);
  lag_seconds_.Add(labels).Set(lag_seconds);
  missing_tasks_.Add(labels).Set(missing_tasks);
}

void Metrics::SetDlqDepth(double entries, double awaiting_resend) {
  dlq_depth_.Add({{"state", "awaiting_resend"}}).Set(awaiting_resend);
  dlq_depth_.Add({{"state", "dead_letter"}}).Set(entries - awaiting_resend);
}

void Metrics::SetOutboxBacklog(int shard, double tasks) {
  outbox_backlog_.Add({{"shard", std::to_string(shard)}}).Set(tasks);
}

void Metrics::SetPublishFailures(int shard, double failures) {
  publish_failures_.Add({{"shard", std::to_string(shard)}}).Set(failures);
}

void Metrics::SetStoreWriteFailed(bool failed) { store_write_failed_.Add({}).Set(failed ? 1 : 0); }

void Metrics::SetStoreEngine(double sst_bytes, double memtable_bytes,
                             double pending_compaction_bytes, bool write_stalled) {
  store_bytes_.Add({{"kind", "sst"}}).Set(sst_bytes);
  store_bytes_.Add({{"kind", "memtable"}}).Set(memtable_bytes);
  store_pending_compaction_.Add({}).Set(pending_compaction_bytes);
  store_write_stalled_.Add({}).Set(write_stalled ? 1 : 0);
}

void Metrics::SetNamespace(const NamespaceGauges& gauges) {
  const std::map<std::string, std::string> labels = {{"namespace", gauges.name}};
  namespace_active_.Add(labels).Set(gauges.active_here ? 1 : 0);
  namespace_version_.Add(labels).Set(static_cast<double>(gauges.failover_version));
  handover_seconds_.Add(labels).Set(gauges.handover_seconds);
  for (const auto& [kind, count] : gauges.failovers_by_kind) {
    failovers_.Add({{"namespace", gauges.name}, {"kind", kind}}).Set(static_cast<double>(count));
  }
}

void Metrics::ObserveFailovers(const std::string& namespace_id,
                               const std::vector<CompletedFailover>& completed) {
  absl::MutexLock lock(&mu_);
  int64_t& observed_until = failovers_observed_until_[namespace_id];
  observed_until = std::max(observed_until, start_unix_micros_);
  int64_t newest = observed_until;
  for (const CompletedFailover& failover : completed) {
    if (failover.completed_unix_micros <= observed_until) continue;
    newest = std::max(newest, failover.completed_unix_micros);
    const prometheus::Labels labels{{"kind", failover.kind}};
    const auto buckets =
        prometheus::Histogram::BucketBoundaries(kFailoverBuckets.begin(), kFailoverBuckets.end());
    failover_duration_.Add(labels, buckets).Observe(failover.duration_seconds);
    failover_writes_refused_.Add(labels, buckets).Observe(failover.writes_refused_seconds);
  }
  observed_until = newest;
}

std::string Metrics::Serialize() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

}  // namespace xdc
