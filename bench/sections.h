// The sections of an xdc-bench run, each filling its part of the Report:
//   RunRawSection         raw Kafka and raw RocksDB limits for one replication message's size
//   RunEndToEndSection    on one pair of clusters, in order: maximum throughput (closed loop),
//                         open-loop lag at fractions of it, the 10x burst, a graceful handover
//                         under load (and its plot), a forced failover under load
//   RunScalingSection     new pairs of clusters per shard count and per workflow count
// A section that fails records its error in the Report (and the run goes on) unless it is the
// measurement everything else is relative to (raw limits, maximum throughput): then the error is
// returned.
//
// Thread-safety: call from one thread.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "bench/options.h"
#include "bench/report.h"
#include "chaos/broker.h"

namespace xdc::bench {

// Workflows of the main pair of clusters (least recently used first; see workflow_pool.h).
inline constexpr int64_t kMainWorkflows = 10000;
// When the graceful handover / forced failover is started, as a fraction of the phase.
inline constexpr double kFailoverAtFraction = 1.0 / 3;
// Poll period while waiting for a handover to complete.
inline constexpr absl::Duration kHandoverPoll = absl::Milliseconds(2);
// handover timeout_ms sent with the request.
inline constexpr absl::Duration kHandoverTimeout = absl::Seconds(30);
// Offered load of the handover, forced-failover and recovery phases, as a fraction of the max.
inline constexpr double kSteadyFraction = 0.5;
// Appends of the warm-up that follows the daemons' start, before anything is measured (the first
// replication after a start is slow: see Report::cold_start), on workflows of their own.
inline constexpr int64_t kWarmupRequests = 500;
inline constexpr char kWarmupWorkflowPrefix[] = "warmup-";
// Upper bound on a count-limited (fill) phase.
inline constexpr absl::Duration kFillMaxDuration = absl::Minutes(10);

[[nodiscard]] absl::Status RunRawSection(const BenchOptions& options, chaos::Broker* shared_broker,
                                         const std::string& work_dir, Report& report);

[[nodiscard]] absl::Status RunEndToEndSection(const BenchOptions& options,
                                              chaos::Broker* shared_broker,
                                              const std::string& work_dir, Report& report);

void RunScalingSection(const BenchOptions& options, chaos::Broker* shared_broker,
                       const std::string& work_dir, Report& report);

}  // namespace xdc::bench
