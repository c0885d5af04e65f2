// The plot of replication lag over time across a graceful handover (lag-handover.svg): per
// kPlotBucket of acknowledgement time, the median and the largest per-event lag measured by the
// bench, the daemons' own lag gauge (largest over shards and peers), the moments the handover
// was requested and seen complete, and the span in which the source refused writes.
#pragma once

#include <cstdint>

#include "absl/time/time.h"
#include "bench/phase_runner.h"
#include "bench/svg_plot.h"

namespace xdc::bench {

inline constexpr absl::Duration kPlotBucket = absl::Milliseconds(100);

struct HandoverMoments {
  int64_t requested_us = 0;  // MonoMicros
  int64_t completed_us = 0;
  int64_t refused_from_us = 0;  // the source's writes_refused span, converted to MonoMicros
  int64_t refused_to_us = 0;
};

[[nodiscard]] Plot HandoverPlot(const PhaseResult& phase, const HandoverMoments& moments);

}  // namespace xdc::bench
