#include "bench/options.h"

#include <algorithm>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace xdc::bench {
namespace {

// Bounds that keep a typo from asking for a week-long run or a zero-sized one.
constexpr int kMaxShards = 1024;
constexpr int kMaxPayloadBytes = 1 << 20;
constexpr int kMaxEventsPerRequest = 1000;
constexpr int kMaxAppendsPerRequest = 1000;  // xdcd's max_appends_per_batch
constexpr int kMaxConcurrency = 1024;
constexpr int64_t kMaxCount = int64_t{100} * 1000 * 1000;

// The flags that take a value (each handled in ParseOptions).
constexpr const char* kValueFlags[] = {"--broker",
                                       "--output",
                                       "--bin-dir",
                                       "--shards",
                                       "--payload-bytes",
                                       "--events-per-request",
                                       "--appends-per-request",
                                       "--concurrency",
                                       "--duration",
                                       "--saturation-duration",
                                       "--rates",
                                       "--sample-ms",
                                       "--raw-kafka-messages",
                                       "--raw-rocksdb-records",
                                       "--scale-shards",
                                       "--workflows",
                                       "--scale-requests",
                                       "--burst-factor",
                                       "--burst-duration",
                                       "--recovery-duration",
                                       "--skip"};

bool TakesValue(const std::string& flag) {
  return std::find(std::begin(kValueFlags), std::end(kValueFlags), flag) != std::end(kValueFlags);
}

absl::Status Bad(const std::string& flag, const std::string& value, const std::string& wants) {
  return absl::InvalidArgumentError(absl::StrCat(flag, " ", value, ": ", wants));
}

absl::StatusOr<int64_t> Int(const std::string& flag, const std::string& value, int64_t low,
                            int64_t high) {
  int64_t parsed = 0;
  if (!absl::SimpleAtoi(value, &parsed) || parsed < low || parsed > high) {
    return Bad(flag, value, absl::StrCat("takes an integer from ", low, " to ", high));
  }
  return parsed;
}

absl::StatusOr<absl::Duration> Seconds(const std::string& flag, const std::string& value) {
  double seconds = 0;
  if (!absl::SimpleAtod(value, &seconds) || !(seconds > 0) || seconds > 3600) {
    return Bad(flag, value, "takes seconds, more than 0 and at most 3600 (e.g. 20 or 0.5)");
  }
  return absl::Seconds(seconds);
}

template <typename T>
absl::StatusOr<std::vector<T>> IntList(const std::string& flag, const std::string& value,
                                       int64_t low, int64_t high) {
  std::vector<T> out;
  for (const std::string& part : std::vector<std::string>(absl::StrSplit(value, ','))) {
    absl::StatusOr<int64_t> parsed = Int(flag, part, low, high);
    if (!parsed.ok()) {
      return Bad(flag, value,
                 absl::StrCat("takes a comma-separated list of integers from ", low, " to ", high));
    }
    out.push_back(static_cast<T>(*parsed));
  }
  return out;
}

}  // namespace

std::string Usage() {
  return R"(usage: xdc-bench [FLAGS]

Measures, in one run on one machine and one Kafka: the raw limit (librdkafka produce->consume and
RocksDB batched writes of the same size), xdc end to end between two xdcd processes (events/s,
per-event replication lag p50/p99/p999 at several open-loop offered loads, CPU-seconds per
million events, peak RSS), scaling over shards and workflows, graceful handover and forced
failover under load, and a 10x burst. Writes report.json and lag-handover.svg. See
docs/benchmarks.md.

  --broker real|mock         Kafka to run on (default real; `scripts/kafka.sh install` first)
  --output DIR               where report.json, the SVG and the logs go (default bench-results)
  --bin-dir DIR              where xdcd and xdc-kafka-mock are (default: next to xdc-bench)
  --quick                    a run of well under a minute on the mock (the smoke test's)
  --shards N                 shards of the main pair of clusters (default 4)
  --payload-bytes N          attribute bytes per event (default 200)
  --events-per-request N     events per append, i.e. per replication task (default 1)
  --appends-per-request N    appends per HTTP request, to distinct workflows (default 1:
                             POST /v1/append; more: POST /v1/append-batch)
  --concurrency N            load generator connections (default 32)
  --duration S               seconds of each offered-load phase (default 20)
  --saturation-duration S    seconds of the maximum-throughput phase (default 20)
  --rates F,F,...            offered loads as fractions of the maximum (default 0.25,0.5,0.75)
  --sample-ms N              lag sampler's status poll period in ms (default 5)
  --raw-kafka-messages N     messages of the raw Kafka run (default 200000)
  --raw-rocksdb-records N    records of the raw RocksDB run (default 200000)
  --scale-shards N,N,...     shard counts of the scaling section (default 1,4,16,64)
  --workflows N,N,...        workflow counts of the scaling section (default 10000,100000)
  --scale-requests N         requests per shard-count point (default 20000)
  --burst-factor F           burst rate as a multiple of the maximum (default 10)
  --burst-duration S         seconds of the burst (default 2)
  --recovery-duration S      seconds of half load after the burst (default 20)
  --skip SECTION,...         leave out end-to-end (and with it failover and backpressure),
                             scaling, failover or backpressure
  --help                     this text
)";
}

BenchOptions QuickOptions() {
  BenchOptions o;
  o.broker = chaos::BrokerKind::kMock;
  o.quick = true;
  o.output_dir = "bench-quick";
  o.shards = 2;
  o.concurrency = 8;
  o.phase_duration = absl::Seconds(2);
  o.saturation_duration = absl::Seconds(2);
  o.load_fractions = {0.5};
  o.raw_kafka_messages = 20000;
  o.raw_rocksdb_records = 20000;
  o.scale_shards = {1, 4};
  o.scale_workflows = {1000};
  o.scale_requests = 1000;
  o.burst_duration = absl::Milliseconds(300);
  o.recovery_duration = absl::Seconds(2);
  o.burst_concurrency = 32;
  return o;
}

absl::StatusOr<BenchOptions> ParseOptions(int argc, char** argv) {
  BenchOptions o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") return absl::CancelledError("help");
    if (flag == "--quick") {
      o = QuickOptions();
      continue;
    }
    if (!TakesValue(flag)) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag ", flag));
    }
    if (i + 1 >= argc) return absl::InvalidArgumentError(absl::StrCat(flag, " needs a value"));
    const std::string value = argv[++i];
    auto set_int = [&](auto& field, int64_t low, int64_t high) -> absl::Status {
      absl::StatusOr<int64_t> parsed = Int(flag, value, low, high);
      if (!parsed.ok()) return parsed.status();
      field = static_cast<std::remove_reference_t<decltype(field)>>(*parsed);
      return absl::OkStatus();
    };
    auto set_seconds = [&](absl::Duration& field) -> absl::Status {
      absl::StatusOr<absl::Duration> parsed = Seconds(flag, value);
      if (!parsed.ok()) return parsed.status();
      field = *parsed;
      return absl::OkStatus();
    };
    absl::Status s;
    if (flag == "--broker") {
      absl::StatusOr<chaos::BrokerKind> kind = chaos::ParseBrokerKind(value);
      if (!kind.ok()) return Bad(flag, value, "takes real or mock");
      o.broker = *kind;
    } else if (flag == "--output") {
      o.output_dir = value;
    } else if (flag == "--bin-dir") {
      o.bin_dir = value;
    } else if (flag == "--shards") {
      s = set_int(o.shards, 1, kMaxShards);
    } else if (flag == "--payload-bytes") {
      s = set_int(o.payload_bytes, 0, kMaxPayloadBytes);
    } else if (flag == "--events-per-request") {
      s = set_int(o.events_per_request, 1, kMaxEventsPerRequest);
    } else if (flag == "--appends-per-request") {
      s = set_int(o.appends_per_request, 1, kMaxAppendsPerRequest);
    } else if (flag == "--concurrency") {
      s = set_int(o.concurrency, 1, kMaxConcurrency);
    } else if (flag == "--duration") {
      s = set_seconds(o.phase_duration);
    } else if (flag == "--saturation-duration") {
      s = set_seconds(o.saturation_duration);
    } else if (flag == "--rates") {
      o.load_fractions.clear();
      for (const std::string& part : std::vector<std::string>(absl::StrSplit(value, ','))) {
        double f = 0;
        if (!absl::SimpleAtod(part, &f) || !(f > 0) || f > 100) {
          return Bad(flag, value, "takes fractions of the maximum load, e.g. 0.25,0.5,0.75");
        }
        o.load_fractions.push_back(f);
      }
    } else if (flag == "--sample-ms") {
      int64_t ms = 0;
      s = set_int(ms, 1, 1000);
      o.sample_period = absl::Milliseconds(ms);
    } else if (flag == "--raw-kafka-messages") {
      s = set_int(o.raw_kafka_messages, 1, kMaxCount);
    } else if (flag == "--raw-rocksdb-records") {
      s = set_int(o.raw_rocksdb_records, 1, kMaxCount);
    } else if (flag == "--scale-shards") {
      absl::StatusOr<std::vector<int32_t>> list = IntList<int32_t>(flag, value, 1, kMaxShards);
      if (!list.ok()) return list.status();
      o.scale_shards = *list;
    } else if (flag == "--workflows") {
      absl::StatusOr<std::vector<int64_t>> list = IntList<int64_t>(flag, value, 1, kMaxCount);
      if (!list.ok()) return list.status();
      o.scale_workflows = *list;
    } else if (flag == "--scale-requests") {
      s = set_int(o.scale_requests, 1, kMaxCount);
    } else if (flag == "--burst-factor") {
      if (!absl::SimpleAtod(value, &o.burst_factor) || !(o.burst_factor >= 1) ||
          o.burst_factor > 1000) {
        return Bad(flag, value, "takes a multiple of the maximum load from 1 to 1000");
      }
    } else if (flag == "--burst-duration") {
      s = set_seconds(o.burst_duration);
    } else if (flag == "--recovery-duration") {
      s = set_seconds(o.recovery_duration);
    } else if (flag == "--skip") {
      for (const std::string& part : std::vector<std::string>(absl::StrSplit(value, ','))) {
        if (part == "end-to-end") {
          o.run_end_to_end = false;
        } else if (part == "scaling") {
          o.run_scaling = false;
        } else if (part == "failover") {
          o.run_failover = false;
        } else if (part == "backpressure") {
          o.run_backpressure = false;
        } else {
          return Bad(flag, value, "takes end-to-end, scaling, failover and/or backpressure");
        }
      }
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag ", flag));
    }
    if (!s.ok()) return s;
  }
  return o;
}

}  // namespace xdc::bench
