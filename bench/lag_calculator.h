// Per-event replication lag from what the load generator and the lag sampler recorded. Pure: no
// I/O, no clock.
//
// How an event's lag is measured (docs/benchmarks.md says the same for readers of the results):
// the active cluster commits a shard's appends in some order and the standby applies them in that
// order (one Kafka partition per shard, applied in offset order), counting them in
// PeerShardStatus.events_applied in the same store commit. For an append E acknowledged at time
// ack(E) by cluster A on shard s, every event ahead of E in shard s's order was sent before
// ack(E). So once the standby's count for (A, s) reaches
//     target(E) = baseline(A, s) + events of acknowledged appends to (A, s) sent before ack(E)
// E is certainly applied. visible(E) is the end of the first status answer that was asked for
// after ack(E) and shows the count at or past target(E), and
//     lag(E)     = visible(E) - ack(E)   (replication lag: durable on A -> applied on the standby)
//     latency(E) = visible(E) - due(E)   (open-loop: when the write was due -> applied remotely)
// This is an upper bound: it can exceed the truth by one sampling period plus one status round
// trip, plus the time to apply appends that were in flight beside E on the same shard. It never
// reports less than the truth, and it measures every acknowledged event, not a sample.
//
// Requirements: exactly two clusters (the observer of A's events is the other one); `baseline`
// holds each observer's counts taken when nothing was in flight.
#pragma once

#include <cstdint>
#include <vector>

#include "bench/lag_sampler.h"
#include "bench/open_loop.h"

namespace xdc::bench {

struct EventLag {
  int64_t ack_us = 0;
  int64_t lag_us = 0;
  int64_t latency_us = 0;
  int32_t events = 0;  // events of the append (each counts in the percentiles)
};

struct LagResult {
  std::vector<EventLag> lags;   // ascending ack_us
  int64_t not_observed = 0;     // acknowledged appends never seen applied in the samples
  int64_t last_visible_us = 0;  // when the last acknowledged append was seen applied
};

// baseline[observer] is a StatusSample of that observer (applied counts) at the phase's start.
[[nodiscard]] LagResult ComputeLags(const std::vector<RequestRecord>& requests,
                                    const std::vector<StatusSample>& samples,
                                    const std::vector<StatusSample>& baseline, int32_t shard_count);

struct Percentiles {
  int64_t count = 0;
  double p50_ms = 0, p99_ms = 0, p999_ms = 0, max_ms = 0, mean_ms = 0;
};

enum class LagMeasure { kLag, kLatency };

// Nearest-rank percentiles of lag_us or latency_us, each weighted by the events of its append.
// All zero when empty.
[[nodiscard]] Percentiles LagPercentiles(const std::vector<EventLag>& lags, LagMeasure measure);

}  // namespace xdc::bench
