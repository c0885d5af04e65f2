#include "bench/lag_calculator.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

namespace xdc::bench {
namespace {

constexpr int kClusters = 2;

// Acknowledged appends of one (source cluster, shard), by send time, with running event sums.
struct Stream {
  std::vector<int64_t> sent_us;
  std::vector<int64_t> events_through;  // events of appends [0, i]
};

}  // namespace

LagResult ComputeLags(const std::vector<RequestRecord>& requests,
                      const std::vector<StatusSample>& samples,
                      const std::vector<StatusSample>& baseline, int32_t shard_count) {
  LagResult result;
  std::vector<const RequestRecord*> acked;
  for (const RequestRecord& r : requests) {
    if (r.outcome == Outcome::kOk && r.cluster >= 0 && r.cluster < kClusters) acked.push_back(&r);
  }
  std::sort(acked.begin(), acked.end(),
            [](const RequestRecord* a, const RequestRecord* b) { return a->sent_us < b->sent_us; });
  std::map<std::pair<int, int>, Stream> streams;  // (source, shard)
  for (const RequestRecord* r : acked) {
    Stream& stream = streams[{r->cluster, r->shard}];
    stream.sent_us.push_back(r->sent_us);
    stream.events_through.push_back(
        (stream.events_through.empty() ? 0 : stream.events_through.back()) + r->events);
  }
  std::vector<std::vector<const StatusSample*>> by_observer(kClusters);
  for (const StatusSample& s : samples) {
    if (s.observer >= 0 && s.observer < kClusters) by_observer[s.observer].push_back(&s);
  }
  for (auto& list : by_observer) {
    std::sort(list.begin(), list.end(), [](const StatusSample* a, const StatusSample* b) {
      return a->start_us < b->start_us;
    });
  }
  std::sort(acked.begin(), acked.end(),
            [](const RequestRecord* a, const RequestRecord* b) { return a->done_us < b->done_us; });
  for (const RequestRecord* r : acked) {
    const int observer = 1 - r->cluster;
    const size_t key = static_cast<size_t>(r->cluster * shard_count + r->shard);
    const Stream& stream = streams[{r->cluster, r->shard}];
    const size_t sent_before = static_cast<size_t>(
        std::upper_bound(stream.sent_us.begin(), stream.sent_us.end(), r->done_us) -
        stream.sent_us.begin());
    const int64_t base =
        static_cast<size_t>(observer) < baseline.size() && key < baseline[observer].applied.size()
            ? baseline[observer].applied[key]
            : 0;
    const int64_t target = base + (sent_before == 0 ? 0 : stream.events_through[sent_before - 1]);
    const std::vector<const StatusSample*>& list = by_observer[observer];
    auto first = std::lower_bound(list.begin(), list.end(), r->done_us,
                                  [](const StatusSample* s, int64_t t) { return s->start_us < t; });
    auto seen = std::partition_point(first, list.end(), [&](const StatusSample* s) {
      return key >= s->applied.size() || s->applied[key] < target;
    });
    if (seen == list.end()) {
      ++result.not_observed;
      continue;
    }
    const int64_t visible = (*seen)->end_us;
    result.lags.push_back({.ack_us = r->done_us,
                           .lag_us = visible - r->done_us,
                           .latency_us = visible - r->due_us,
                           .events = r->events});
    result.last_visible_us = std::max(result.last_visible_us, visible);
  }
  return result;
}

Percentiles LagPercentiles(const std::vector<EventLag>& lags, LagMeasure measure) {
  Percentiles p;
  if (lags.empty()) return p;
  std::vector<std::pair<int64_t, int32_t>> values;
  values.reserve(lags.size());
  double sum = 0;
  for (const EventLag& l : lags) {
    const int64_t v = measure == LagMeasure::kLatency ? l.latency_us : l.lag_us;
    values.emplace_back(v, l.events);
    p.count += l.events;
    sum += static_cast<double>(v) * l.events;
  }
  std::sort(values.begin(), values.end());
  auto at = [&](double q) {
    const int64_t rank =
        std::max<int64_t>(1, static_cast<int64_t>(std::ceil(q * static_cast<double>(p.count))));
    int64_t seen = 0;
    for (const auto& [v, n] : values) {
      seen += n;
      if (seen >= rank) return static_cast<double>(v) / 1000.0;
    }
    return static_cast<double>(values.back().first) / 1000.0;
  };
  p.p50_ms = at(0.50);
  p.p99_ms = at(0.99);
  p.p999_ms = at(0.999);
  p.max_ms = static_cast<double>(values.back().first) / 1000.0;
  p.mean_ms = sum / static_cast<double>(p.count) / 1000.0;
  return p;
}

}  // namespace xdc::bench
