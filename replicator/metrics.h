// Prometheus metrics: every metric of xdcd is registered here, and only here.
//
// Components get a probe (a small struct of metric references) so they never touch
// prometheus-cpp directly. Thread-safe (prometheus-cpp metrics are atomic).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "replicator/kafka_statistics.pb.h"

namespace xdc {

struct WriteProbe {
  prometheus::Counter* appends_ok;
  prometheus::Counter* appends_rejected;
  prometheus::Counter* events_appended;
  prometheus::Counter* appends_replayed;  // retries answered from their request id
};

// Takes one librdkafka statistics JSON of a client (KafkaStatisticsSink::on_json).
using KafkaStatisticsFn = std::function<void(std::string_view json)>;

struct PublisherProbe {
  prometheus::Counter* tasks_published;
  prometheus::Counter* delivery_errors;
  prometheus::Counter* producer_recreations;  // producers replaced after a fatal error
  KafkaStatisticsFn kafka_statistics;         // of the producer
};

struct ApplierProbe {
  prometheus::Counter* events_applied;
  prometheus::Counter* duplicate_events_dropped;
  prometheus::Counter* tasks_parked;
  prometheus::Counter* corrupt_messages;
  prometheus::Counter* gaps;
  prometheus::Gauge* halted;  // 1 once the applier halted (see PeerApplier)
  prometheus::Counter* branches_forked;
  prometheus::Counter* branch_switches;
  prometheus::Counter* events_reapplied;
  prometheus::Counter* reapply_dropped;  // losing-branch input the closed run could not take
  prometheus::Counter* resend_requests;  // asked this peer to resend
  prometheus::Counter* resends_served;   // tasks published to answer this peer's requests
  prometheus::Counter* parked_resumed;   // parked tasks applied after all (resend or retry)
  prometheus::Counter* dead_lettered;    // gaps given up on after resend_max_attempts
  KafkaStatisticsFn kafka_statistics;    // of the consumer of this peer's topics
};

struct ApiProbe {
  prometheus::Counter* unauthenticated;  // mutating calls refused: bearer token missing or wrong
  // Counts one answered request and observes how long it took, by route template (e.g.
  // "/v1/namespaces/{name}/failover"; "unmatched" for unknown paths), method and HTTP status.
  std::function<void(const std::string& route, const std::string& method, int status,
                     double seconds)>
      observe_request;
};

// One namespace as this cluster sees it (refreshed before each scrape).
struct NamespaceGauges {
  std::string name;
  bool active_here = false;  // accepts writes here now
  int64_t failover_version = 0;
  double handover_seconds = 0;  // writes refused here in an undecided handover it started
  std::map<std::string, int64_t> failovers_by_kind;  // "graceful", "forced", "cancelled"
};

// A failover this cluster completed (graceful, forced: it became active; cancelled: it resumed
// as the source of the handover), from the namespace's failover history.
struct CompletedFailover {
  std::string kind;  // "graceful", "forced" or "cancelled"
  int64_t completed_unix_micros = 0;
  double duration_seconds = 0;        // started to completed
  double writes_refused_seconds = 0;  // no cluster accepted writes
};

class Metrics {
 public:
  explicit Metrics(const std::string& cluster);

  [[nodiscard]] WriteProbe& write_probe() { return write_; }
  [[nodiscard]] PublisherProbe& publisher_probe() { return publisher_; }
  [[nodiscard]] ApiProbe& api_probe() { return api_; }
  [[nodiscard]] ApplierProbe MakeApplierProbe(const std::string& peer);

  // Failover durations are histograms of the failovers completed after `start_unix_micros`
  // (the daemon's start, by this cluster's clock).
  void SetStartTime(int64_t start_unix_micros);
  // Observes each failover of `completed` (all of a namespace's, as in its record) that is newer
  // than the daemon's start and than every one observed before for that namespace: call it with
  // every stored version of the record, each failover is counted once.
  void ObserveFailovers(const std::string& namespace_id,
                        const std::vector<CompletedFailover>& completed);

  // Gauges refreshed from a status snapshot just before each scrape.
  void SetPeerShard(const std::string& peer, int shard, double lag_tasks, double lag_seconds,
                    double missing_tasks);
  void SetOutboxBacklog(int shard, double tasks);
  // Refusals in a row of the shard's oldest undelivered task (ShardStatus.publish_failures).
  void SetPublishFailures(int shard, double failures);
  void SetStoreWriteFailed(bool failed);
  // RocksDB's sizes (bytes) and whether it is holding writes back (stopped or delayed).
  void SetStoreEngine(double sst_bytes, double memtable_bytes, double pending_compaction_bytes,
                      bool write_stalled);
  void SetNamespace(const NamespaceGauges& gauges);
  void SetDlqDepth(double entries, double awaiting_resend);
  // A Kafka client's health from librdkafka's statistics: `client` is "producer" or "consumer",
  // `peer` the cluster whose topics a consumer reads ("" for the producer). Cumulative librdkafka
  // counts become counter increments (a new client's lower count starts over from it).
  void SetKafkaStatistics(const std::string& client, const std::string& peer,
                          const RdKafkaStatistics& statistics);
  // A KafkaStatisticsFn that parses the JSON and calls SetKafkaStatistics (JSON it cannot parse
  // is counted in xdc_kafka_statistics_unparsable_total and logged).
  [[nodiscard]] KafkaStatisticsFn KafkaStatisticsFor(std::string client, std::string peer);

  // Prometheus text exposition format.
  [[nodiscard]] std::string Serialize() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& appends_;
  prometheus::Family<prometheus::Counter>& events_appended_;
  prometheus::Family<prometheus::Counter>& published_;
  prometheus::Family<prometheus::Counter>& delivery_errors_;
  prometheus::Family<prometheus::Counter>& applied_;
  prometheus::Family<prometheus::Counter>& duplicates_;
  prometheus::Family<prometheus::Counter>& parked_;
  prometheus::Family<prometheus::Counter>& corrupt_;
  prometheus::Family<prometheus::Counter>& gaps_;
  prometheus::Family<prometheus::Gauge>& halted_;
  prometheus::Family<prometheus::Counter>& forked_;
  prometheus::Family<prometheus::Counter>& switches_;
  prometheus::Family<prometheus::Counter>& reapplied_;
  prometheus::Family<prometheus::Counter>& reapply_dropped_;
  prometheus::Family<prometheus::Counter>& resend_requests_;
  prometheus::Family<prometheus::Counter>& resends_served_;
  prometheus::Family<prometheus::Counter>& parked_resumed_;
  prometheus::Family<prometheus::Counter>& dead_lettered_;
  prometheus::Family<prometheus::Gauge>& dlq_depth_;
  prometheus::Family<prometheus::Gauge>& lag_tasks_;
  prometheus::Family<prometheus::Gauge>& lag_seconds_;
  prometheus::Family<prometheus::Gauge>& missing_tasks_;
  prometheus::Family<prometheus::Gauge>& outbox_backlog_;
  prometheus::Family<prometheus::Gauge>& publish_failures_;
  prometheus::Family<prometheus::Counter>& producer_recreations_;
  prometheus::Family<prometheus::Gauge>& store_write_failed_;
  prometheus::Family<prometheus::Gauge>& store_bytes_;
  prometheus::Family<prometheus::Gauge>& store_pending_compaction_;
  prometheus::Family<prometheus::Gauge>& store_write_stalled_;
  prometheus::Family<prometheus::Counter>& unauthenticated_;
  prometheus::Family<prometheus::Counter>& api_requests_;
  prometheus::Family<prometheus::Histogram>& api_latency_;
  prometheus::Family<prometheus::Gauge>& namespace_active_;
  prometheus::Family<prometheus::Gauge>& namespace_version_;
  prometheus::Family<prometheus::Gauge>& handover_seconds_;
  prometheus::Family<prometheus::Gauge>& failovers_;
  prometheus::Family<prometheus::Histogram>& failover_duration_;
  prometheus::Family<prometheus::Histogram>& failover_writes_refused_;
  prometheus::Family<prometheus::Gauge>& kafka_broker_up_;
  prometheus::Family<prometheus::Gauge>& kafka_broker_rtt_;
  prometheus::Family<prometheus::Gauge>& kafka_broker_in_flight_;
  prometheus::Family<prometheus::Counter>& kafka_broker_errors_;
  prometheus::Family<prometheus::Gauge>& kafka_producer_queue_messages_;
  prometheus::Family<prometheus::Gauge>& kafka_producer_queue_bytes_;
  prometheus::Family<prometheus::Counter>& kafka_statistics_unparsable_;
  // The last cumulative librdkafka counts seen, per (client, peer, broker, kind), and the newest
  // failover observed per namespace.
  absl::Mutex mu_;
  std::map<std::string, int64_t> kafka_counts_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> failovers_observed_until_ ABSL_GUARDED_BY(mu_);
  int64_t start_unix_micros_ ABSL_GUARDED_BY(mu_) = 0;
  WriteProbe write_;
  PublisherProbe publisher_;
  ApiProbe api_;
};

}  // namespace xdc
