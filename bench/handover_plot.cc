#include "bench/handover_plot.h"

#include <algorithm>
#include <map>
#include <vector>

namespace xdc::bench {

Plot HandoverPlot(const PhaseResult& phase, const HandoverMoments& moments) {
  auto seconds = [&](int64_t us) { return static_cast<double>(us - phase.start_us) / 1e6; };
  const int64_t bucket_us = absl::ToInt64Microseconds(kPlotBucket);
  std::map<int64_t, std::vector<double>> buckets;  // bucket start -> lags in ms
  for (const EventLag& l : phase.lag.lags) {
    buckets[(l.ack_us - phase.start_us) / bucket_us].push_back(static_cast<double>(l.lag_us) / 1e3);
  }
  PlotSeries median{
      .label = "lag p50 per 100 ms", .color = "#1f77b4", .x = {}, .y = {}, .points = false};
  PlotSeries max{
      .label = "lag max per 100 ms", .color = "#d62728", .x = {}, .y = {}, .points = false};
  for (auto& [bucket, lags] : buckets) {
    std::sort(lags.begin(), lags.end());
    const double x = static_cast<double>(bucket * bucket_us) / 1e6;
    median.x.push_back(x);
    median.y.push_back(lags[lags.size() / 2]);
    max.x.push_back(x);
    max.y.push_back(lags.back());
  }
  // xdcd's own gauge, largest per bucket over both daemons (each reports its lag from the other).
  std::map<int64_t, double> gauge_max;
  for (const StatusSample& s : phase.sampler.samples) {
    double& slot = gauge_max[(s.end_us - phase.start_us) / bucket_us];
    slot = std::max(slot, s.max_lag_seconds * 1e3);
  }
  PlotSeries gauge{.label = "xdcd lag gauge, max per 100 ms",
                   .color = "#2ca02c",
                   .x = {},
                   .y = {},
                   .points = false};
  for (const auto& [bucket, ms] : gauge_max) {
    gauge.x.push_back(static_cast<double>(bucket * bucket_us) / 1e6);
    gauge.y.push_back(ms);
  }
  Plot plot;
  plot.title = "Replication lag across a graceful handover (east -> west) under steady load";
  plot.x_label = "seconds since the phase started (acknowledgement time)";
  plot.y_label = "lag (ms)";
  plot.series = {median, max, gauge};
  if (moments.requested_us > 0)
    plot.markers.push_back({seconds(moments.requested_us), "handover requested"});
  if (moments.completed_us > 0)
    plot.markers.push_back({seconds(moments.completed_us), "west active"});
  if (moments.refused_to_us > moments.refused_from_us) {
    plot.spans.push_back({seconds(moments.refused_from_us), seconds(moments.refused_to_us),
                          "writes refused (source)"});
  }
  return plot;
}

}  // namespace xdc::bench
