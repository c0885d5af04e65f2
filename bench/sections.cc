#include "bench/sections.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "bench/environment.h"
#include "bench/handover_plot.h"
#include "bench/message_size.h"
#include "bench/mono_clock.h"
#include "bench/phase_runner.h"
#include "bench/raw_kafka.h"
#include "bench/raw_rocksdb.h"
#include "bench/svg_plot.h"
#include "replicator/kafka_client.h"

namespace xdc::bench {
namespace {

// The mock keeps about 5 MiB per partition; raw runs on it stay under this much per partition.
constexpr int64_t kMockBytesPerPartition = int64_t{4} << 20;
constexpr int kEnsureTopicsTimeoutMs = 30000;

PhaseOptions BasePhase(const BenchOptions& options, std::string name) {
  PhaseOptions phase;
  phase.name = std::move(name);
  phase.events_per_request = options.events_per_request;
  phase.appends_per_request = options.appends_per_request;
  phase.payload_bytes = options.payload_bytes;
  phase.sample_period = options.sample_period;
  return phase;
}

// The warm-up after the daemons' start: kWarmupRequests appends, closed loop.
absl::StatusOr<PhaseResult> Warmup(const BenchOptions& options, Environment& env) {
  WorkflowPool pool(kWarmupRequests, kWarmupWorkflowPrefix);
  PhaseOptions warmup = BasePhase(options, "cold start (warm-up, not measured elsewhere)");
  warmup.segments = {{.rate = 0,
                      .duration = kFillMaxDuration,
                      .max_requests = kWarmupRequests,
                      .concurrency = options.concurrency}};
  return RunPhase(env, pool, warmup);
}

// Sleeps until `fraction` of `duration` after `start_us` (MonoMicros).
void SleepUntil(int64_t start_us, absl::Duration duration, double fraction) {
  const int64_t at =
      start_us + static_cast<int64_t>(absl::ToDoubleMicroseconds(duration) * fraction);
  const int64_t now = MonoMicros();
  if (at > now) std::this_thread::sleep_for(std::chrono::microseconds(at - now));
}

// MonoMicros() - unix micros, to place the daemons' wall-clock reports on the bench's time line.
int64_t MonoMinusUnix() { return MonoMicros() - absl::ToUnixMicros(absl::Now()); }

int64_t DirBytes(const std::string& dir) {
  int64_t bytes = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec)) bytes += static_cast<int64_t>(it->file_size(ec));
  }
  return bytes;
}

// The last failover entry of `ns` on `cluster`, if any.
std::optional<FailoverEvent> LastFailover(Environment& env, const std::string& cluster) {
  absl::StatusOr<NamespaceRecord> record = env.clusters().Namespace(cluster, kNamespace);
  if (!record.ok() || record->failover_history_size() == 0) return std::nullopt;
  return record->failover_history(record->failover_history_size() - 1);
}

// First acknowledgement by `cluster` of a request sent at or after `after_us`; 0 if none.
int64_t FirstAckBy(const PhaseResult& phase, int cluster, int64_t after_us) {
  int64_t first = 0;
  for (const RequestRecord& r : phase.requests) {
    if (r.outcome == Outcome::kOk && r.cluster == cluster && r.sent_us >= after_us &&
        (first == 0 || r.done_us < first)) {
      first = r.done_us;
    }
  }
  return first;
}

void RunBackpressure(const BenchOptions& options, Environment& env, WorkflowPool& pool,
                     double max_rps, Report& report) {
  Backpressure& b = report.backpressure;
  b.burst_offered_requests_per_second = options.burst_factor * max_rps;
  b.recovery_offered_requests_per_second = kSteadyFraction * max_rps;
  PhaseOptions phase = BasePhase(options, "burst then recovery");
  phase.segments = {{.rate = b.burst_offered_requests_per_second,
                     .duration = options.burst_duration,
                     .max_requests = 0,
                     .concurrency = options.burst_concurrency},
                    {.rate = b.recovery_offered_requests_per_second,
                     .duration = options.recovery_duration,
                     .max_requests = 0,
                     .concurrency = options.concurrency}};
  absl::StatusOr<PhaseResult> result = RunPhase(env, pool, phase);
  if (!result.ok()) {
    b.error = result.status().ToString();
    return;
  }
  b.phase = Summarize(*result, b.burst_offered_requests_per_second);
  const int64_t burst_end = result->segments[0].end_us;
  const int64_t recovery_end = result->segments[1].end_us;
  const int64_t tail_start = burst_end + (recovery_end - burst_end) / 2;
  std::vector<EventLag> burst, tail;
  int64_t last_burst_visible = burst_end;
  for (const EventLag& l : result->lag.lags) {
    if (l.ack_us <= burst_end) {
      burst.push_back(l);
      last_burst_visible = std::max(last_burst_visible, l.ack_us + l.lag_us);
    } else if (l.ack_us >= tail_start) {
      tail.push_back(l);
    }
  }
  b.burst_lag_ms = LagPercentiles(burst, LagMeasure::kLag);
  b.recovery_tail_lag_ms = LagPercentiles(tail, LagMeasure::kLag);
  b.catch_up_seconds = static_cast<double>(last_burst_visible - burst_end) / 1e6;
  for (int c = 0; c < 2; ++c) {
    int64_t before = 0, peak = 0, end = 0;
    for (const RssSample& s : result->sampler.rss) {
      if (s.cluster != c) continue;
      if (before == 0) before = s.rss_kib;
      peak = std::max(peak, s.rss_kib);
      end = s.rss_kib;
    }
    b.rss_before_kib.push_back(before);
    b.rss_peak_kib.push_back(peak);
    b.rss_end_kib.push_back(end);
  }
}

void RunGracefulHandover(const BenchOptions& options, Environment& env, WorkflowPool& pool,
                         double max_rps, Report& report) {
  GracefulHandover& g = report.graceful;
  const double rate = kSteadyFraction * max_rps;
  PhaseOptions phase = BasePhase(options, "graceful handover east -> west");
  phase.segments = {{.rate = rate,
                     .duration = options.phase_duration,
                     .max_requests = 0,
                     .concurrency = options.concurrency}};
  HandoverMoments moments;
  std::string hook_error;
  phase.during = [&] {  // starts with the load
    SleepUntil(MonoMicros(), options.phase_duration, kFailoverAtFraction);
    moments.requested_us = MonoMicros();
    absl::StatusOr<NamespaceRecord> begun =
        env.clusters().BeginHandover(kNamespace, kEast, kWest, kHandoverTimeout);
    if (!begun.ok()) {
      hook_error = begun.status().ToString();
      return;
    }
    const absl::Time deadline = absl::Now() + kHandoverTimeout;
    for (;;) {
      absl::StatusOr<NamespaceRecord> source = env.clusters().Namespace(kEast, kNamespace);
      if (source.ok() && source->active_cluster() == kWest) break;
      if (source.ok() && source->state() == NAMESPACE_STATE_ACTIVE &&
          source->active_cluster() == kEast) {
        hook_error = "the handover was cancelled";
        return;
      }
      if (absl::Now() >= deadline) {
        hook_error = "the handover did not complete within its timeout";
        return;
      }
      absl::SleepFor(kHandoverPoll);
    }
    moments.completed_us = MonoMicros();
    env.route().set_active(env.route().IndexOf(kWest));
  };
  absl::StatusOr<PhaseResult> result = RunPhase(env, pool, phase);
  if (!result.ok()) {
    g.error = result.status().ToString();
    return;
  }
  g.phase = Summarize(*result, rate);
  if (!hook_error.empty()) {
    g.error = hook_error;
    return;
  }
  g.handover_ms = static_cast<double>(moments.completed_us - moments.requested_us) / 1e3;
  g.writes_refused = result->refused;
  g.writes_redirected = result->redirected;
  const int64_t first_on_west = FirstAckBy(*result, 1, moments.requested_us);
  if (first_on_west > 0) {
    g.client_unavailable_ms = static_cast<double>(first_on_west - moments.requested_us) / 1e3;
  }
  if (std::optional<FailoverEvent> event = LastFailover(env, kEast); event.has_value()) {
    g.daemon_writes_refused_ms = static_cast<double>(event->writes_refused_micros()) / 1e3;
    const int64_t offset = MonoMinusUnix();
    moments.refused_from_us = event->started_unix_micros() + offset;
    moments.refused_to_us = event->completed_unix_micros() + offset;
  }
  const std::string svg_path = options.output_dir + "/lag-handover.svg";
  std::ofstream svg(svg_path);
  svg << RenderSvg(HandoverPlot(*result, moments));
  if (!svg) g.error = absl::StrCat("writing ", svg_path);
}

void RunForcedFailover(const BenchOptions& options, Environment& env, WorkflowPool& pool,
                       double max_rps, Report& report) {
  ForcedFailover& f = report.forced;
  const double rate = kSteadyFraction * max_rps;
  // The cluster active now (west after the handover) is killed; the other one takes over.
  const int old_active = env.route().active();
  const int target = 1 - old_active;
  const std::string old_name = env.route().clusters()[old_active];
  const std::string target_name = env.route().clusters()[target];
  PhaseOptions phase = BasePhase(options, absl::StrCat("forced failover to ", target_name));
  phase.segments = {{.rate = rate,
                     .duration = options.phase_duration,
                     .max_requests = 0,
                     .concurrency = options.concurrency}};
  phase.measure_lag = false;
  int64_t killed_us = 0;
  std::string hook_error;
  phase.during = [&] {  // starts with the load
    SleepUntil(MonoMicros(), options.phase_duration, kFailoverAtFraction);
    killed_us = MonoMicros();
    if (absl::Status s = env.clusters().Kill(old_name); !s.ok()) {
      hook_error = s.ToString();
      return;
    }
    absl::StatusOr<NamespaceRecord> forced = env.clusters().ForceFailover(kNamespace, target_name);
    if (!forced.ok()) {
      hook_error = forced.status().ToString();
      return;
    }
    env.route().set_active(target);
  };
  absl::StatusOr<PhaseResult> result = RunPhase(env, pool, phase);
  if (!result.ok()) {
    f.error = result.status().ToString();
    return;
  }
  f.phase = Summarize(*result, rate);
  f.writes_failed = result->failed;
  if (!hook_error.empty()) {
    f.error = hook_error;
    return;
  }
  const int64_t first = FirstAckBy(*result, target, killed_us);
  if (first > 0) f.rto_ms = static_cast<double>(first - killed_us) / 1e3;
  if (std::optional<FailoverEvent> event = LastFailover(env, target_name); event.has_value()) {
    f.daemon_writes_refused_ms = static_cast<double>(event->writes_refused_micros()) / 1e3;
  }
}

}  // namespace

absl::Status RunRawSection(const BenchOptions& options, chaos::Broker* shared_broker,
                           const std::string& work_dir, Report& report) {
  report.message_bytes = ReplicationMessageBytes(options.events_per_request, options.payload_bytes);
  const std::string prefix = absl::StrCat("xdcbench-raw-", getpid());
  const std::string topic = HistoryTopic("raw", prefix);
  RawKafkaOptions kafka;
  kafka.topic = topic;
  kafka.partitions = options.shards;
  kafka.message_bytes = report.message_bytes;
  kafka.messages = options.raw_kafka_messages;
  std::unique_ptr<chaos::Broker> mock;
  if (shared_broker == nullptr) {
    const int64_t fits = kMockBytesPerPartition * options.shards / report.message_bytes;
    if (kafka.messages > fits) {
      report.notes.push_back(absl::StrFormat(
          "raw Kafka: %d messages asked, %d run: the mock keeps ~5 MiB per partition",
          kafka.messages, fits));
      kafka.messages = fits;
    }
    absl::StatusOr<std::unique_ptr<chaos::Broker>> started =
        StartMockBroker(options, work_dir + "/raw-kafka", {"raw"}, options.shards, prefix);
    if (!started.ok()) return started.status();
    mock = *std::move(started);
    kafka.bootstrap = mock->bootstrap();
  } else {
    kafka.bootstrap = shared_broker->bootstrap();
    if (absl::Status s =
            EnsureTopics(kafka.bootstrap, {{.name = topic, .partitions = options.shards}},
                         kEnsureTopicsTimeoutMs);
        !s.ok()) {
      return s;
    }
  }
  absl::StatusOr<RawKafkaResult> raw_kafka = RunRawKafka(kafka);
  if (mock != nullptr) (void)mock->Stop();
  if (!raw_kafka.ok()) return raw_kafka.status();
  report.raw_kafka = *raw_kafka;
  report.raw_kafka_events_per_second = raw_kafka->messages_per_second * options.events_per_request;

  RawRocksDbOptions rocks;
  rocks.dir = work_dir + "/raw-rocksdb";
  rocks.records = options.raw_rocksdb_records;
  rocks.record_bytes = report.message_bytes;
  std::error_code ec;
  std::filesystem::remove_all(rocks.dir, ec);
  absl::StatusOr<RawRocksDbResult> raw_rocksdb = RunRawRocksDb(rocks);
  std::filesystem::remove_all(rocks.dir, ec);
  if (!raw_rocksdb.ok()) return raw_rocksdb.status();
  report.raw_rocksdb = *raw_rocksdb;
  report.raw_rocksdb_events_per_second =
      raw_rocksdb->records_per_second * options.events_per_request;
  return absl::OkStatus();
}

absl::Status RunEndToEndSection(const BenchOptions& options, chaos::Broker* shared_broker,
                                const std::string& work_dir, Report& report) {
  absl::StatusOr<std::unique_ptr<Environment>> env =
      Environment::Create(options, shared_broker, work_dir + "/main", options.shards);
  if (!env.ok()) return env.status();
  absl::StatusOr<PhaseResult> warm = Warmup(options, **env);
  if (!warm.ok()) return warm.status();
  report.cold_start = Summarize(*warm, 0);
  WorkflowPool pool(kMainWorkflows);

  PhaseOptions saturation = BasePhase(options, "maximum throughput (closed loop)");
  saturation.segments = {{.rate = 0,
                          .duration = options.saturation_duration,
                          .max_requests = 0,
                          .concurrency = options.concurrency}};
  absl::StatusOr<PhaseResult> max = RunPhase(**env, pool, saturation);
  if (!max.ok()) return max.status();
  report.saturation = Summarize(*max, 0);
  if (max->events_ok == 0) {
    return absl::InternalError(
        absl::StrCat("no append was acknowledged at saturation: ", max->first_error));
  }
  // Sustainable: what the standby applied per second, not only what the active acknowledged.
  report.max_sustainable_events_per_second =
      std::min(max->ack_events_per_second, max->replicated_events_per_second);
  report.ratio_to_raw_kafka =
      report.max_sustainable_events_per_second / report.raw_kafka_events_per_second;
  report.ratio_to_raw_rocksdb =
      report.max_sustainable_events_per_second / report.raw_rocksdb_events_per_second;
  const double max_rps = report.max_sustainable_events_per_second / options.events_per_request;

  for (double fraction : options.load_fractions) {
    PhaseOptions load = BasePhase(options, absl::StrFormat("open loop at %.2f of max", fraction));
    load.segments = {{.rate = fraction * max_rps,
                      .duration = options.phase_duration,
                      .max_requests = 0,
                      .concurrency = options.concurrency}};
    absl::StatusOr<PhaseResult> result = RunPhase(**env, pool, load);
    if (!result.ok()) return result.status();
    report.loads.push_back(Summarize(*result, fraction * max_rps));
  }
  if (options.run_backpressure) {
    RunBackpressure(options, **env, pool, max_rps, report);
  } else {
    report.notes.push_back("backpressure: skipped (--skip backpressure)");
  }
  if (options.run_failover) {
    RunGracefulHandover(options, **env, pool, max_rps, report);
    if (report.graceful.error.empty()) {
      RunForcedFailover(options, **env, pool, max_rps, report);
    } else {
      report.forced.error = "not run: the graceful handover before it failed";
    }
  } else {
    report.notes.push_back("failover: skipped (--skip failover)");
  }
  return absl::OkStatus();
}

namespace {

// One scaling point: a fresh pair of clusters, the warm-up, `requests` appends closed loop over
// `workflows` workflows (the first `workflows` appends each start one), then half of the rate
// that reached for half a phase.
struct ScalePoint {
  PhaseSummary saturation, half_load;
  int64_t started = 0;
  std::string error;
};

ScalePoint RunScalePoint(const BenchOptions& options, chaos::Broker* shared_broker,
                         const std::string& dir, int32_t shards, int64_t workflows,
                         int64_t requests, const std::string& label) {
  ScalePoint point;
  absl::StatusOr<std::unique_ptr<Environment>> env =
      Environment::Create(options, shared_broker, dir, shards);
  if (!env.ok()) {
    point.error = env.status().ToString();
    return point;
  }
  if (absl::StatusOr<PhaseResult> warm = Warmup(options, **env); !warm.ok()) {
    point.error = warm.status().ToString();
    return point;
  }
  WorkflowPool pool(workflows);
  PhaseOptions sat = BasePhase(options, absl::StrCat("saturation, ", label));
  sat.segments = {{.rate = 0,
                   .duration = kFillMaxDuration,
                   .max_requests = requests,
                   .concurrency = options.concurrency}};
  absl::StatusOr<PhaseResult> max = RunPhase(**env, pool, sat);
  if (!max.ok()) {
    point.error = max.status().ToString();
    return point;
  }
  point.saturation = Summarize(*max, 0);
  point.started = pool.started();
  const double rps = kSteadyFraction *
                     std::min(max->ack_events_per_second, max->replicated_events_per_second) /
                     options.events_per_request;
  PhaseOptions half = BasePhase(options, absl::StrCat("half load, ", label));
  half.segments = {{.rate = rps,
                    .duration = options.phase_duration / 2,
                    .max_requests = 0,
                    .concurrency = options.concurrency}};
  absl::StatusOr<PhaseResult> result = RunPhase(**env, pool, half);
  if (result.ok()) {
    point.half_load = Summarize(*result, rps);
  } else {
    point.error = result.status().ToString();
  }
  return point;
}

}  // namespace

void RunScalingSection(const BenchOptions& options, chaos::Broker* shared_broker,
                       const std::string& work_dir, Report& report) {
  if (!options.run_scaling) {
    report.notes.push_back("scaling: skipped (--skip scaling)");
    return;
  }
  for (int32_t shards : options.scale_shards) {
    ScalePoint done =
        RunScalePoint(options, shared_broker, absl::StrCat(work_dir, "/shards-", shards), shards,
                      kMainWorkflows, options.scale_requests, absl::StrCat(shards, " shards"));
    report.shard_scaling.push_back({.shards = shards,
                                    .saturation = done.saturation,
                                    .half_load = done.half_load,
                                    .error = done.error});
  }
  for (int64_t workflows : options.scale_workflows) {
    const std::string dir = absl::StrCat(work_dir, "/workflows-", workflows);
    ScalePoint done = RunScalePoint(options, shared_broker, dir, options.shards, workflows,
                                    workflows, absl::StrCat(workflows, " workflows"));
    report.workflow_scaling.push_back(
        {.workflows = workflows,
         .started = done.started,
         .fill = done.saturation,
         .half_load = done.half_load,
         .data_dir_bytes = {DirBytes(dir + "/" + kEast), DirBytes(dir + "/" + kWest)},
         .error = done.error});
  }
}

}  // namespace xdc::bench
