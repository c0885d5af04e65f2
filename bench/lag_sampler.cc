#include "bench/lag_sampler.h"

#include <algorithm>
#include <chrono>

#include "bench/mono_clock.h"
#include "bench/process_stats.h"
#include "protocol/xdc.pb.h"
#include "replicator/http_client.h"

namespace xdc::bench {

namespace {

// The per-shard applied counts of one status answer.
void FillSample(const StatusResponse& status, const Route& route, int32_t shard_count,
                StatusSample& sample) {
  const int clusters = static_cast<int>(route.clusters().size());
  sample.applied.assign(static_cast<size_t>(clusters * shard_count), 0);
  for (const ShardStatus& shard : status.shards()) {
    if (shard.shard() < 0 || shard.shard() >= shard_count) continue;
    for (const PeerShardStatus& peer : shard.peers()) {
      const int source = route.IndexOf(peer.peer());
      if (source < 0) continue;
      sample.applied[static_cast<size_t>(source * shard_count + shard.shard())] =
          peer.events_applied();
      sample.max_lag_seconds = std::max(sample.max_lag_seconds, peer.lag_seconds());
    }
  }
}

}  // namespace

LagSampler::LagSampler(const Route& route, int32_t shard_count, absl::Duration period,
                       std::vector<pid_t> pids)
    : route_(route), shard_count_(shard_count), period_(period), pids_(std::move(pids)) {}

LagSampler::~LagSampler() {
  if (thread_.joinable()) (void)Stop();
}

void LagSampler::Start() {
  stop_ = false;
  output_ = {};
  thread_ = std::thread([this] { Run(); });
}

SamplerOutput LagSampler::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  return std::move(output_);
}

std::optional<StatusSample> LagSampler::PollOnce(const Route& route, int observer,
                                                 int32_t shard_count) {
  const std::string address = route.Address(observer);
  if (address.empty()) return std::nullopt;
  HttpClient client(address, std::chrono::milliseconds(absl::ToInt64Milliseconds(kStatusTimeout)));
  StatusSample sample;
  sample.observer = static_cast<int8_t>(observer);
  sample.start_us = MonoMicros();
  StatusResponse status;
  if (!client.Call("GET", "/v1/status", nullptr, status).ok()) return std::nullopt;
  sample.end_us = MonoMicros();
  FillSample(status, route, shard_count, sample);
  return sample;
}

void LagSampler::Run() {
  const int clusters = static_cast<int>(route_.clusters().size());
  // One kept-alive connection per cluster and address (a restarted daemon has a new address).
  std::vector<std::unique_ptr<HttpClient>> clients(static_cast<size_t>(clusters));
  std::vector<std::string> addresses(static_cast<size_t>(clusters));
  const auto period = std::chrono::microseconds(absl::ToInt64Microseconds(period_));
  auto next = std::chrono::steady_clock::now();
  for (int64_t poll = 0; !stop_.load(); ++poll) {
    for (int c = 0; c < clusters; ++c) {
      const std::string address = route_.Address(c);
      if (address.empty()) continue;
      if (address != addresses[c] || clients[c] == nullptr) {
        addresses[c] = address;
        clients[c] = std::make_unique<HttpClient>(
            address, std::chrono::milliseconds(absl::ToInt64Milliseconds(kStatusTimeout)));
      }
      StatusSample sample;
      sample.observer = static_cast<int8_t>(c);
      sample.start_us = MonoMicros();
      StatusResponse status;
      if (!clients[c]->Call("GET", "/v1/status", nullptr, status).ok()) {
        ++output_.failed_polls;
        clients[c].reset();
        continue;
      }
      sample.end_us = MonoMicros();
      FillSample(status, route_, shard_count_, sample);
      output_.samples.push_back(std::move(sample));
    }
    if (poll % kRssEveryPolls == 0) {
      for (int c = 0; c < clusters && c < static_cast<int>(pids_.size()); ++c) {
        absl::StatusOr<ProcessStats> stats = ReadProcessStats(pids_[c]);
        if (stats.ok()) {
          output_.rss.push_back({.at_us = MonoMicros(),
                                 .cluster = static_cast<int8_t>(c),
                                 .rss_kib = stats->rss_kib});
        }
      }
    }
    next += period;
    const auto now = std::chrono::steady_clock::now();
    if (next > now) {
      std::this_thread::sleep_for(next - now);
    } else {
      next = now;  // behind (slow answers): poll again at once, do not build up a debt
    }
  }
}

}  // namespace xdc::bench
