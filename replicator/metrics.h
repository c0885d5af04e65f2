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

#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace xdc {

struct WriteProbe {
  prometheus::Counter* appends_ok;
  prometheus::Counter* appends_rejected;
  prometheus::Counter* events_appended;
};

struct PublisherProbe {
  prometheus::Counter* tasks_published;
  prometheus::Counter* delivery_errors;
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

class Metrics {
 public:
  explicit Metrics(const std::string& cluster);

  [[nodiscard]] WriteProbe& write_probe() { return write_; }
  [[nodiscard]] PublisherProbe& publisher_probe() { return publisher_; }
  [[nodiscard]] ApiProbe& api_probe() { return api_; }
  [[nodiscard]] ApplierProbe MakeApplierProbe(const std::string& peer);

  // Gauges refreshed from a status snapshot just before each scrape.
  void SetPeerShard(const std::string& peer, int shard, double lag_tasks, double lag_seconds,
                    double missing_tasks);
  void SetOutboxBacklog(int shard, double tasks);
  void SetStoreWriteFailed(bool failed);
  // RocksDB's sizes (bytes) and whether it is holding writes back (stopped or delayed).
  void SetStoreEngine(double sst_bytes, double memtable_bytes, double pending_compaction_bytes,
                      bool write_stalled);
  void SetNamespace(const NamespaceGauges& gauges);
  void SetDlqDepth(double entries, double awaiting_resend);

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
  WriteProbe write_;
  PublisherProbe publisher_;
  ApiProbe api_;
};

}  // namespace xdc
