// Everything one xdc-bench run measured, and its JSON form (report.json). Field names in the JSON
// are the struct fields'; rates are events per second unless the name says requests; times are
// in the unit their name ends with.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "bench/lag_calculator.h"
#include "bench/options.h"
#include "bench/phase_runner.h"
#include "bench/raw_kafka.h"
#include "bench/raw_rocksdb.h"

namespace xdc::bench {

// Lag of the events acknowledged in one kTimelineBucket of a phase.
struct TimelinePoint {
  double at_seconds = 0;  // bucket start, since the phase started
  Percentiles lag_ms;
};

// One phase, reduced to its figures.
struct PhaseSummary {
  std::string name;
  double offered_requests_per_second = 0;  // 0: closed loop
  double duration_seconds = 0;             // of the load
  int64_t ok = 0, refused = 0, redirected = 0, failed = 0, events_ok = 0;
  double ack_events_per_second = 0;
  double replicated_events_per_second = 0;
  Percentiles lag_ms, latency_ms;
  int64_t not_observed = 0;
  std::vector<double> cpu_seconds;            // east, west
  double cpu_seconds_per_million_events = 0;  // both daemons together
  std::vector<int64_t> peak_rss_kib;          // east, west (VmHWM: whole process lifetime)
  std::vector<int64_t> max_sampled_rss_kib;   // east, west, during the phase
  std::vector<TimelinePoint> timeline;        // lag per kTimelineBucket of acknowledgement time
  std::string first_error;
};

// The bucket of PhaseSummary.timeline.
inline constexpr absl::Duration kTimelineBucket = absl::Seconds(1);

[[nodiscard]] PhaseSummary Summarize(const PhaseResult& phase, double offered_requests_per_second);

struct ShardScalePoint {
  int32_t shards = 0;
  PhaseSummary saturation, half_load;
  std::string error;  // set when the point could not run
};

struct WorkflowScalePoint {
  int64_t workflows = 0;
  int64_t started = 0;  // workflows that exist at the end of the fill
  PhaseSummary fill, half_load;
  std::vector<int64_t> data_dir_bytes;  // east, west
  std::string error;
};

struct GracefulHandover {
  double handover_ms = 0;               // client: request sent -> source shows the target active
  double daemon_writes_refused_ms = 0;  // FailoverEvent.writes_refused_micros
  double client_unavailable_ms = 0;     // request sent -> first write acknowledged by the target
  int64_t writes_refused = 0;           // 503 retryable (in handover)
  int64_t writes_redirected = 0;        // 409 naming the new active cluster
  PhaseSummary phase;
  std::string error;
};

struct ForcedFailover {
  double rto_ms = 0;  // client: SIGKILL of the active -> first write acknowledged by the new one
  double daemon_writes_refused_ms = 0;
  int64_t writes_failed = 0;
  PhaseSummary phase;
  std::string error;
};

struct Backpressure {
  double burst_offered_requests_per_second = 0;
  double recovery_offered_requests_per_second = 0;
  std::vector<int64_t> rss_before_kib, rss_peak_kib, rss_end_kib;  // east, west (sampled)
  double catch_up_seconds = 0;       // burst end -> last event acknowledged in the burst applied
  Percentiles burst_lag_ms;          // events acknowledged during the burst
  Percentiles recovery_tail_lag_ms;  // events acknowledged in the last half of the recovery
  PhaseSummary phase;
  std::string error;
};

struct Report {
  std::string command;
  std::string machine;  // CPU model, cores, memory, kernel
  std::string broker;   // "real (Apache Kafka 3.9.1)" or "mock (...)"
  BenchOptions options;
  int message_bytes = 0;  // one replication message (= raw Kafka message = raw RocksDB record)
  RawKafkaResult raw_kafka;
  RawRocksDbResult raw_rocksdb;
  double raw_kafka_events_per_second = 0;
  double raw_rocksdb_events_per_second = 0;
  // The first appends after the daemons started (sections.h kWarmupRequests), kept out of the
  // measured phases.
  PhaseSummary cold_start;
  PhaseSummary saturation;
  double max_sustainable_events_per_second = 0;
  double ratio_to_raw_kafka = 0;
  double ratio_to_raw_rocksdb = 0;
  std::vector<PhaseSummary> loads;
  GracefulHandover graceful;
  ForcedFailover forced;
  Backpressure backpressure;
  std::vector<ShardScalePoint> shard_scaling;
  std::vector<WorkflowScalePoint> workflow_scaling;
  std::vector<std::string> notes;  // sections or points that did not run, and why
  double total_seconds = 0;
};

[[nodiscard]] std::string ReportJson(const Report& report);

// The few lines xdc-bench prints at the end: the raw limits, then only the sections that ran
// (report.options.run_*): end to end, failover, and the scaling points (one line each).
[[nodiscard]] std::string SummaryText(const Report& report);

}  // namespace xdc::bench
