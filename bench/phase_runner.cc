#include "bench/phase_runner.h"

#include <algorithm>
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/mono_clock.h"
#include "bench/process_stats.h"
#include "protocol/xdc.pb.h"
#include "replicator/http_client.h"

namespace xdc::bench {
namespace {

constexpr int kClusters = 2;

absl::StatusOr<StatusResponse> Status(Environment& env, int cluster) {
  const std::string address = env.route().Address(cluster);
  if (address.empty()) return absl::UnavailableError("cluster not running");
  HttpClient client(address, std::chrono::milliseconds(absl::ToInt64Milliseconds(kStatusTimeout)));
  StatusResponse status;
  if (absl::Status s = client.Call("GET", "/v1/status", nullptr, status); !s.ok()) return s;
  return status;
}

// Baseline counts of every cluster (nullopt samples become empty: zero counts).
std::vector<StatusSample> Baseline(Environment& env) {
  std::vector<StatusSample> baseline(kClusters);
  for (int c = 0; c < kClusters; ++c) {
    std::optional<StatusSample> s = LagSampler::PollOnce(env.route(), c, env.shards());
    if (s.has_value()) baseline[c] = *std::move(s);
  }
  return baseline;
}

// Waits until each observer's count for each (source, shard) reaches `expected`.
absl::Status WaitApplied(Environment& env, const std::vector<std::vector<int64_t>>& expected) {
  const absl::Time deadline = absl::Now() + kCatchUpTimeout;
  for (int observer = 0; observer < kClusters; ++observer) {
    for (;;) {
      std::optional<StatusSample> s = LagSampler::PollOnce(env.route(), observer, env.shards());
      bool done = s.has_value();
      for (size_t k = 0; done && k < expected[observer].size(); ++k) {
        done = s->applied[k] >= expected[observer][k];
      }
      if (done) break;
      if (absl::Now() >= deadline) {
        return absl::DeadlineExceededError(absl::StrCat("cluster ",
                                                        env.route().clusters()[observer],
                                                        " did not apply every acknowledged "
                                                        "event within ",
                                                        absl::FormatDuration(kCatchUpTimeout)));
      }
      absl::SleepFor(kCatchUpPoll);
    }
  }
  return absl::OkStatus();
}

std::vector<ProcessStats> ReadAll(const std::vector<pid_t>& pids) {
  std::vector<ProcessStats> stats;
  for (pid_t pid : pids) {
    absl::StatusOr<ProcessStats> s = ReadProcessStats(pid);
    stats.push_back(s.ok() ? *s : ProcessStats{});
  }
  return stats;
}

}  // namespace

absl::Status WaitQuiet(Environment& env) {
  const absl::Time deadline = absl::Now() + kCatchUpTimeout;
  std::vector<StatusSample> previous;
  for (;;) {
    bool quiet = true;
    std::vector<StatusSample> now(kClusters);
    for (int c = 0; c < kClusters && quiet; ++c) {
      absl::StatusOr<StatusResponse> status = Status(env, c);
      quiet = status.ok() && status->total_lag_tasks() == 0;
      std::optional<StatusSample> s = LagSampler::PollOnce(env.route(), c, env.shards());
      quiet = quiet && s.has_value();
      if (quiet) now[c] = *std::move(s);
    }
    if (quiet && previous.size() == now.size()) {
      bool same = true;
      for (int c = 0; c < kClusters; ++c) same = same && previous[c].applied == now[c].applied;
      if (same) return absl::OkStatus();
    }
    previous = quiet ? now : std::vector<StatusSample>{};
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat("the clusters did not catch up within ",
                                                      absl::FormatDuration(kCatchUpTimeout)));
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
}

absl::StatusOr<PhaseResult> RunPhase(Environment& env, WorkflowPool& pool,
                                     const PhaseOptions& options) {
  PhaseResult result;
  result.name = options.name;
  if (absl::Status s = WaitQuiet(env); !s.ok()) return s;
  const std::vector<StatusSample> baseline = Baseline(env);
  const std::vector<pid_t> pids = env.pids();
  const std::vector<ProcessStats> cpu_before = ReadAll(pids);

  LagSampler sampler(env.route(), env.shards(), options.sample_period, pids);
  sampler.Start();
  result.start_us = MonoMicros();
  std::thread during;
  if (options.during) during = std::thread(options.during);
  for (const Segment& segment : options.segments) {
    OpenLoopOptions load;
    load.namespace_name = kNamespace;
    load.namespace_id = env.namespace_id();
    load.shard_count = env.shards();
    load.rate = segment.rate;
    load.duration = segment.duration;
    load.max_requests = segment.max_requests;
    load.concurrency = segment.concurrency;
    load.events_per_request = options.events_per_request;
    load.appends_per_request = options.appends_per_request;
    load.payload_bytes = options.payload_bytes;
    OpenLoopResult done = RunOpenLoop(load, env.route(), pool);
    result.requests.insert(result.requests.end(), done.requests.begin(), done.requests.end());
    result.ok += done.ok;
    result.refused += done.refused;
    result.redirected += done.redirected;
    result.failed += done.failed;
    result.events_ok += done.events_ok;
    if (result.first_error.empty()) result.first_error = done.first_error;
    result.load_end_us = std::max(result.load_end_us, done.end_us);
    done.requests.clear();
    result.segments.push_back(std::move(done));
  }
  if (during.joinable()) during.join();

  absl::Status caught_up;
  if (options.measure_lag) {
    std::vector<std::vector<int64_t>> expected(kClusters);
    for (int observer = 0; observer < kClusters; ++observer) {
      expected[observer] = baseline[observer].applied;
      expected[observer].resize(static_cast<size_t>(kClusters * env.shards()), 0);
    }
    for (const RequestRecord& r : result.requests) {
      if (r.outcome != Outcome::kOk || r.cluster < 0 || r.cluster >= kClusters) continue;
      expected[1 - r.cluster][static_cast<size_t>(r.cluster * env.shards() + r.shard)] += r.events;
    }
    caught_up = WaitApplied(env, expected);
    // One more sampling period, so the sampler's last poll started after the last apply.
    absl::SleepFor(options.sample_period * 2);
  }
  result.sampler = sampler.Stop();
  const std::vector<ProcessStats> cpu_after = ReadAll(pids);
  for (size_t c = 0; c < pids.size(); ++c) {
    result.cpu_seconds.push_back(
        std::max(0.0, cpu_after[c].cpu_seconds - cpu_before[c].cpu_seconds));
    result.peak_rss_kib.push_back(std::max(cpu_after[c].peak_rss_kib, cpu_before[c].peak_rss_kib));
    int64_t max_rss = 0;
    for (const RssSample& s : result.sampler.rss) {
      if (s.cluster == static_cast<int8_t>(c)) max_rss = std::max(max_rss, s.rss_kib);
    }
    result.max_sampled_rss_kib.push_back(max_rss);
  }
  const double load_seconds =
      static_cast<double>(std::max<int64_t>(1, result.load_end_us - result.start_us)) / 1e6;
  result.ack_events_per_second = static_cast<double>(result.events_ok) / load_seconds;
  if (options.measure_lag) {
    if (!caught_up.ok()) return caught_up;
    result.lag = ComputeLags(result.requests, result.sampler.samples, baseline, env.shards());
    result.lag_ms = LagPercentiles(result.lag.lags, LagMeasure::kLag);
    result.latency_ms = LagPercentiles(result.lag.lags, LagMeasure::kLatency);
    const double replicated_seconds =
        static_cast<double>(std::max<int64_t>(1, result.lag.last_visible_us - result.start_us)) /
        1e6;
    result.replicated_events_per_second =
        static_cast<double>(result.events_ok) / replicated_seconds;
  }
  return result;
}

}  // namespace xdc::bench
