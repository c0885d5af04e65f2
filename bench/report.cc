#include "bench/report.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "bench/json_writer.h"

namespace xdc::bench {
namespace {

void WritePercentiles(JsonWriter& w, std::string_view key, const Percentiles& p) {
  w.Key(key).BeginObject();
  w.Field("events", p.count)
      .Field("p50", p.p50_ms)
      .Field("p99", p.p99_ms)
      .Field("p999", p.p999_ms)
      .Field("max", p.max_ms)
      .Field("mean", p.mean_ms);
  w.EndObject();
}

template <typename T>
void WritePair(JsonWriter& w, std::string_view key, const std::vector<T>& values) {
  w.Key(key).BeginObject();
  const char* names[] = {"east", "west"};
  for (size_t i = 0; i < values.size() && i < 2; ++i) {
    if constexpr (std::is_floating_point_v<T>) {
      w.Field(names[i], static_cast<double>(values[i]));
    } else {
      w.Field(names[i], static_cast<int64_t>(values[i]));
    }
  }
  w.EndObject();
}

void WritePhase(JsonWriter& w, std::string_view key, const PhaseSummary& p) {
  w.Key(key).BeginObject();
  w.Field("name", p.name)
      .Field("offered_requests_per_second", p.offered_requests_per_second)
      .Field("duration_seconds", p.duration_seconds)
      .Field("requests_ok", p.ok)
      .Field("requests_refused", p.refused)
      .Field("requests_redirected", p.redirected)
      .Field("requests_failed", p.failed)
      .Field("events_ok", p.events_ok)
      .Field("ack_events_per_second", p.ack_events_per_second)
      .Field("replicated_events_per_second", p.replicated_events_per_second);
  WritePercentiles(w, "lag_ms", p.lag_ms);
  WritePercentiles(w, "latency_ms", p.latency_ms);
  w.Field("not_observed", p.not_observed);
  WritePair(w, "cpu_seconds", p.cpu_seconds);
  w.Field("cpu_seconds_per_million_events", p.cpu_seconds_per_million_events);
  WritePair(w, "peak_rss_kib", p.peak_rss_kib);
  WritePair(w, "max_sampled_rss_kib", p.max_sampled_rss_kib);
  w.Key("timeline").BeginArray();
  for (const TimelinePoint& point : p.timeline) {
    w.BeginObject();
    w.Field("at_seconds", point.at_seconds);
    WritePercentiles(w, "lag_ms", point.lag_ms);
    w.EndObject();
  }
  w.EndArray();
  w.Field("first_error", p.first_error);
  w.EndObject();
}

}  // namespace

PhaseSummary Summarize(const PhaseResult& phase, double offered_requests_per_second) {
  PhaseSummary s;
  s.name = phase.name;
  s.offered_requests_per_second = offered_requests_per_second;
  s.duration_seconds = static_cast<double>(phase.load_end_us - phase.start_us) / 1e6;
  s.ok = phase.ok;
  s.refused = phase.refused;
  s.redirected = phase.redirected;
  s.failed = phase.failed;
  s.events_ok = phase.events_ok;
  s.ack_events_per_second = phase.ack_events_per_second;
  s.replicated_events_per_second = phase.replicated_events_per_second;
  s.lag_ms = phase.lag_ms;
  s.latency_ms = phase.latency_ms;
  s.not_observed = phase.lag.not_observed;
  s.cpu_seconds = phase.cpu_seconds;
  double cpu = 0;
  for (double c : phase.cpu_seconds) cpu += c;
  s.cpu_seconds_per_million_events =
      phase.events_ok > 0 ? cpu / static_cast<double>(phase.events_ok) * 1e6 : 0;
  s.peak_rss_kib = phase.peak_rss_kib;
  s.max_sampled_rss_kib = phase.max_sampled_rss_kib;
  s.first_error = phase.first_error;
  const int64_t bucket_us = absl::ToInt64Microseconds(kTimelineBucket);
  std::map<int64_t, std::vector<EventLag>> buckets;
  for (const EventLag& lag : phase.lag.lags) {
    buckets[(lag.ack_us - phase.start_us) / bucket_us].push_back(lag);
  }
  for (const auto& [bucket, lags] : buckets) {
    s.timeline.push_back({.at_seconds = static_cast<double>(bucket * bucket_us) / 1e6,
                          .lag_ms = LagPercentiles(lags, LagMeasure::kLag)});
  }
  return s;
}

std::string SummaryText(const Report& r) {
  std::string out = absl::StrFormat(
      "raw Kafka      %10.0f msgs/s of %d B (produce->consume)\n"
      "raw RocksDB    %10.0f records/s of %d B (batches of %d, WAL synced)\n",
      r.raw_kafka.messages_per_second, r.message_bytes, r.raw_rocksdb.records_per_second,
      r.message_bytes, r.raw_rocksdb.batch_records);
  if (r.options.run_end_to_end) {
    absl::StrAppendFormat(&out,
                          "xdc end to end %10.0f events/s  (%.1f%% of raw Kafka, %.1f%% of raw "
                          "RocksDB)\n",
                          r.max_sustainable_events_per_second, 100 * r.ratio_to_raw_kafka,
                          100 * r.ratio_to_raw_rocksdb);
    for (const PhaseSummary& p : r.loads) {
      absl::StrAppendFormat(
          &out, "  %-28s offered %7.0f req/s: lag p50 %7.1f p99 %7.1f p999 %7.1f ms\n", p.name,
          p.offered_requests_per_second, p.lag_ms.p50_ms, p.lag_ms.p99_ms, p.lag_ms.p999_ms);
    }
    if (r.options.run_failover) {
      absl::StrAppendFormat(&out,
                            "graceful handover %.1f ms, %d writes refused, %d redirected %s\n",
                            r.graceful.handover_ms, r.graceful.writes_refused,
                            r.graceful.writes_redirected, r.graceful.error);
      absl::StrAppendFormat(&out, "forced failover RTO %.1f ms %s\n", r.forced.rto_ms,
                            r.forced.error);
    }
  }
  for (const ShardScalePoint& s : r.shard_scaling) {
    absl::StrAppendFormat(
        &out,
        "%3d shards: %7.0f events/s, lag p99 %.1f ms; half load lag p50 %.1f "
        "p99 %.1f ms %s\n",
        s.shards,
        std::min(s.saturation.ack_events_per_second, s.saturation.replicated_events_per_second),
        s.saturation.lag_ms.p99_ms, s.half_load.lag_ms.p50_ms, s.half_load.lag_ms.p99_ms, s.error);
  }
  for (const WorkflowScalePoint& w : r.workflow_scaling) {
    absl::StrAppendFormat(&out,
                          "%d workflows: started %d in %.1f s; half load lag p50 %.1f p99 %.1f "
                          "ms %s\n",
                          w.workflows, w.started, w.fill.duration_seconds,
                          w.half_load.lag_ms.p50_ms, w.half_load.lag_ms.p99_ms, w.error);
  }
  for (const std::string& note : r.notes) absl::StrAppendFormat(&out, "note: %s\n", note);
  return out;
}

std::string ReportJson(const Report& r) {
  JsonWriter w;
  w.BeginObject();
  w.Field("command", r.command).Field("machine", r.machine).Field("broker", r.broker);
  w.Key("options").BeginObject();
  w.Field("quick", r.options.quick)
      .Field("shards", r.options.shards)
      .Field("payload_bytes", r.options.payload_bytes)
      .Field("events_per_request", r.options.events_per_request)
      .Field("appends_per_request", r.options.appends_per_request)
      .Field("concurrency", r.options.concurrency)
      .Field("phase_seconds", absl::ToDoubleSeconds(r.options.phase_duration))
      .Field("sample_ms", absl::ToDoubleMilliseconds(r.options.sample_period));
  w.EndObject();
  w.Field("message_bytes", r.message_bytes);

  w.Key("raw").BeginObject();
  w.Key("kafka").BeginObject();
  w.Field("messages", r.raw_kafka.messages)
      .Field("message_bytes", r.raw_kafka.message_bytes)
      .Field("produce_seconds", r.raw_kafka.produce_seconds)
      .Field("end_to_end_seconds", r.raw_kafka.end_to_end_seconds)
      .Field("messages_per_second", r.raw_kafka.messages_per_second)
      .Field("events_per_second", r.raw_kafka_events_per_second);
  w.EndObject();
  w.Key("rocksdb").BeginObject();
  w.Field("records", r.raw_rocksdb.records)
      .Field("record_bytes", r.raw_rocksdb.record_bytes)
      .Field("batch_records", r.raw_rocksdb.batch_records)
      .Field("seconds", r.raw_rocksdb.seconds)
      .Field("records_per_second", r.raw_rocksdb.records_per_second)
      .Field("events_per_second", r.raw_rocksdb_events_per_second);
  w.EndObject();
  w.EndObject();

  w.Key("end_to_end").BeginObject();
  WritePhase(w, "cold_start", r.cold_start);
  WritePhase(w, "saturation", r.saturation);
  w.Field("max_sustainable_events_per_second", r.max_sustainable_events_per_second)
      .Field("ratio_to_raw_kafka", r.ratio_to_raw_kafka)
      .Field("ratio_to_raw_rocksdb", r.ratio_to_raw_rocksdb);
  w.Key("loads").BeginArray();
  for (const PhaseSummary& p : r.loads) {
    w.BeginObject();
    w.Field("fraction_of_max", r.max_sustainable_events_per_second > 0
                                   ? p.offered_requests_per_second * r.options.events_per_request /
                                         r.max_sustainable_events_per_second
                                   : 0.0);
    WritePhase(w, "phase", p);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();

  w.Key("failover").BeginObject();
  w.Key("graceful").BeginObject();
  w.Field("handover_ms", r.graceful.handover_ms)
      .Field("daemon_writes_refused_ms", r.graceful.daemon_writes_refused_ms)
      .Field("client_unavailable_ms", r.graceful.client_unavailable_ms)
      .Field("writes_refused", r.graceful.writes_refused)
      .Field("writes_redirected", r.graceful.writes_redirected)
      .Field("error", r.graceful.error);
  WritePhase(w, "phase", r.graceful.phase);
  w.EndObject();
  w.Key("forced").BeginObject();
  w.Field("rto_ms", r.forced.rto_ms)
      .Field("daemon_writes_refused_ms", r.forced.daemon_writes_refused_ms)
      .Field("writes_failed", r.forced.writes_failed)
      .Field("error", r.forced.error);
  WritePhase(w, "phase", r.forced.phase);
  w.EndObject();
  w.EndObject();

  w.Key("backpressure").BeginObject();
  w.Field("burst_offered_requests_per_second", r.backpressure.burst_offered_requests_per_second)
      .Field("recovery_offered_requests_per_second",
             r.backpressure.recovery_offered_requests_per_second);
  WritePair(w, "rss_before_kib", r.backpressure.rss_before_kib);
  WritePair(w, "rss_peak_kib", r.backpressure.rss_peak_kib);
  WritePair(w, "rss_end_kib", r.backpressure.rss_end_kib);
  w.Field("catch_up_seconds", r.backpressure.catch_up_seconds);
  WritePercentiles(w, "burst_lag_ms", r.backpressure.burst_lag_ms);
  WritePercentiles(w, "recovery_tail_lag_ms", r.backpressure.recovery_tail_lag_ms);
  w.Field("error", r.backpressure.error);
  WritePhase(w, "phase", r.backpressure.phase);
  w.EndObject();

  w.Key("scaling").BeginObject();
  w.Key("shards").BeginArray();
  for (const ShardScalePoint& p : r.shard_scaling) {
    w.BeginObject();
    w.Field("shards", p.shards).Field("error", p.error);
    WritePhase(w, "saturation", p.saturation);
    WritePhase(w, "half_load", p.half_load);
    w.EndObject();
  }
  w.EndArray();
  w.Key("workflows").BeginArray();
  for (const WorkflowScalePoint& p : r.workflow_scaling) {
    w.BeginObject();
    w.Field("workflows", p.workflows).Field("started", p.started).Field("error", p.error);
    WritePair(w, "data_dir_bytes", p.data_dir_bytes);
    WritePhase(w, "fill", p.fill);
    WritePhase(w, "half_load", p.half_load);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();

  w.Key("notes").BeginArray();
  for (const std::string& note : r.notes) w.String(note);
  w.EndArray();
  w.Field("total_seconds", r.total_seconds);
  w.EndObject();
  return w.str() + "\n";
}

}  // namespace xdc::bench
