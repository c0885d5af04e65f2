// The lag sampler: a thread that polls GET /v1/status of every running cluster every `period`
// and records, per shard, how many events it has applied from each other cluster
// (PeerShardStatus.events_applied: counted in the same store commit that applies them). Every
// kRssEveryPolls polls it also reads each daemon's RSS from /proc.
//
// The samples are what LagCalculator turns into per-event replication lag (see lag_calculator.h).
//
// Thread-safety: Start and Stop from one thread; the sampler's own thread does the polling.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "bench/open_loop.h"

namespace xdc::bench {

// RSS is read every this many status polls.
inline constexpr int kRssEveryPolls = 20;
// Bound on one status request: a sample that takes longer is dropped.
inline constexpr absl::Duration kStatusTimeout = absl::Seconds(2);

// One answer of one cluster ("observer"). Times in MonoMicros().
struct StatusSample {
  int64_t start_us = 0;  // request sent: the counts were read after this
  int64_t end_us = 0;    // answer received
  int8_t observer = 0;   // cluster index in the Route
  // applied[source * shard_count + shard]: events of `source` applied by the observer there.
  std::vector<int64_t> applied;
  double max_lag_seconds = 0;  // the daemon's own lag_seconds, the largest over shards and peers
};

struct RssSample {
  int64_t at_us = 0;
  int8_t cluster = 0;
  int64_t rss_kib = 0;
};

struct SamplerOutput {
  std::vector<StatusSample> samples;
  std::vector<RssSample> rss;
  int64_t failed_polls = 0;
};

class LagSampler {
 public:
  // `pids[i]` is the process of Route cluster i (0: do not read its RSS).
  LagSampler(const Route& route, int32_t shard_count, absl::Duration period,
             std::vector<pid_t> pids);
  ~LagSampler();
  void Start();
  // Stops the thread and hands over everything recorded since Start.
  [[nodiscard]] SamplerOutput Stop();

  // One status poll of `observer` now (used for baselines); nullopt if it did not answer.
  [[nodiscard]] static std::optional<StatusSample> PollOnce(const Route& route, int observer,
                                                            int32_t shard_count);

 private:
  void Run();

  const Route& route_;
  const int32_t shard_count_;
  const absl::Duration period_;
  const std::vector<pid_t> pids_;
  std::atomic<bool> stop_{false};
  SamplerOutput output_;  // owned by the thread until Stop joins it
  std::thread thread_;
};

}  // namespace xdc::bench
