// One measured phase on an Environment: wait until the standby holds everything written so far,
// take the baseline counts and CPU times, run the open-loop load (one or more segments back to
// back, e.g. a burst then recovery) while the lag sampler polls both clusters and an optional
// `during` action runs on its own thread (a handover, a kill), wait until the standby applied
// every acknowledged event, and compute per-event lag (lag_calculator.h), CPU and memory.
//
// Thread-safety: call from one thread; `during` runs on another thread while the load runs.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "bench/environment.h"
#include "bench/lag_calculator.h"
#include "bench/lag_sampler.h"
#include "bench/open_loop.h"

namespace xdc::bench {

// Waiting for the standby to apply everything acknowledged (before and after a phase).
inline constexpr absl::Duration kCatchUpTimeout = absl::Seconds(180);
// Between two status polls while waiting.
inline constexpr absl::Duration kCatchUpPoll = absl::Milliseconds(20);

struct Segment {
  double rate = 0;  // requests per second; 0: closed loop (as fast as `concurrency` allows)
  absl::Duration duration = absl::Seconds(10);
  int64_t max_requests = 0;  // 0: none
  int concurrency = 8;
};

struct PhaseOptions {
  std::string name;
  std::vector<Segment> segments;
  int events_per_request = 1;
  int appends_per_request = 1;
  int payload_bytes = 200;
  absl::Duration sample_period = absl::Milliseconds(5);
  // False when a cluster is killed in the phase: no catch-up wait and no lag.
  bool measure_lag = true;
  std::function<void()> during;  // optional; runs while the load runs
};

struct PhaseResult {
  std::string name;
  std::vector<OpenLoopResult> segments;  // one per Segment (requests included)
  std::vector<RequestRecord> requests;   // all segments
  int64_t start_us = 0, load_end_us = 0;
  int64_t ok = 0, refused = 0, redirected = 0, failed = 0, events_ok = 0;
  std::string first_error;
  LagResult lag;
  Percentiles lag_ms, latency_ms;
  double ack_events_per_second = 0;          // acknowledged events / load time
  double replicated_events_per_second = 0;   // acknowledged events / (start -> last visible)
  std::vector<double> cpu_seconds;           // per cluster, during the phase
  std::vector<int64_t> peak_rss_kib;         // per cluster, VmHWM at the end
  std::vector<int64_t> max_sampled_rss_kib;  // per cluster, during the phase
  SamplerOutput sampler;
};

// Waits until both clusters report no lag and unchanged applied counts: the baseline is exact.
[[nodiscard]] absl::Status WaitQuiet(Environment& env);

[[nodiscard]] absl::StatusOr<PhaseResult> RunPhase(Environment& env, WorkflowPool& pool,
                                                   const PhaseOptions& options);

}  // namespace xdc::bench
