// xdc-bench's command line: what to measure and how big. ParseOptions never exits; main prints
// the error and the usage and exits 2.
//
// Contract: every size has a default (the full run, ~15 minutes on a 2-core machine with the
// real broker) and a unit in its name; --quick replaces the defaults with a run of well under a
// minute on the mock broker (explicit flags given after --quick still win).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "chaos/broker.h"

namespace xdc::bench {

struct BenchOptions {
  chaos::BrokerKind broker = chaos::BrokerKind::kReal;
  std::string output_dir = "bench-results";
  std::string bin_dir;  // where xdcd and xdc-kafka-mock live ("" = next to xdc-bench)
  bool quick = false;

  // The main pair of clusters (throughput, lag, failover, backpressure).
  int32_t shards = 4;
  int payload_bytes = 200;      // attributes of each event
  int events_per_request = 1;   // events per append (one replication task each)
  int appends_per_request = 1;  // appends per HTTP request (> 1: POST /v1/append-batch)
  int concurrency = 32;         // client connections of the load generator
  absl::Duration phase_duration = absl::Seconds(20);  // each offered-load phase
  absl::Duration saturation_duration = absl::Seconds(20);
  // Offered loads of the lag phases, as fractions of the measured maximum sustainable load.
  std::vector<double> load_fractions = {0.25, 0.5, 0.75};
  absl::Duration sample_period = absl::Milliseconds(5);  // status poll of the lag sampler

  // Raw limits.
  int64_t raw_kafka_messages = 200000;
  int64_t raw_rocksdb_records = 200000;

  // Scaling.
  std::vector<int32_t> scale_shards = {1, 4, 16, 64};
  std::vector<int64_t> scale_workflows = {10000, 100000};
  int64_t scale_requests = 20000;  // requests per shard-count point

  // Backpressure: a burst at this multiple of the maximum sustainable load, then recovery.
  double burst_factor = 10;
  absl::Duration burst_duration = absl::Seconds(2);
  absl::Duration recovery_duration = absl::Seconds(20);
  int burst_concurrency = 128;

  // Which sections run (all by default).
  bool run_end_to_end = true;  // throughput, lag, and (inside it) backpressure and failover
  bool run_scaling = true;
  bool run_failover = true;
  bool run_backpressure = true;
};

// The usage text, printed with exit code 2 on a bad flag.
[[nodiscard]] std::string Usage();

// Parses argv[1..]. INVALID_ARGUMENT naming the flag and what it takes on a bad flag;
// "--help" is returned as the status message "help" (CANCELLED) so main can print the usage.
[[nodiscard]] absl::StatusOr<BenchOptions> ParseOptions(int argc, char** argv);

// The options of --quick (mock broker, small sizes).
[[nodiscard]] BenchOptions QuickOptions();

}  // namespace xdc::bench
