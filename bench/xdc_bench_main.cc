// xdc-bench: replication throughput, lag and failover time against the raw Kafka and RocksDB
// limits. See `xdc-bench --help` and docs/benchmarks.md.
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "bench/environment.h"
#include "bench/options.h"
#include "bench/report.h"
#include "bench/sections.h"

namespace xdc::bench {
namespace {

constexpr int kExitUsage = 2;

std::string FirstLineWith(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key, 0) == 0) {
      const size_t colon = line.find(':');
      return colon == std::string::npos ? line : line.substr(colon + 2);
    }
  }
  return "unknown";
}

std::string Machine() {
  utsname name{};
  uname(&name);
  return absl::StrFormat(
      "%s; %ld cores online; MemTotal %s; Linux %s", FirstLineWith("/proc/cpuinfo", "model name"),
      sysconf(_SC_NPROCESSORS_ONLN), FirstLineWith("/proc/meminfo", "MemTotal"), name.release);
}

void PrintSummary(const Report& r) {
  std::printf("raw Kafka      %10.0f msgs/s of %d B (produce->consume)\n",
              r.raw_kafka.messages_per_second, r.message_bytes);
  std::printf("raw RocksDB    %10.0f records/s of %d B (batches of %d, WAL synced)\n",
              r.raw_rocksdb.records_per_second, r.message_bytes, r.raw_rocksdb.batch_records);
  std::printf("xdc end to end %10.0f events/s  (%.1f%% of raw Kafka, %.1f%% of raw RocksDB)\n",
              r.max_sustainable_events_per_second, 100 * r.ratio_to_raw_kafka,
              100 * r.ratio_to_raw_rocksdb);
  for (const PhaseSummary& p : r.loads) {
    std::printf("  %-28s offered %7.0f req/s: lag p50 %7.1f p99 %7.1f p999 %7.1f ms\n",
                p.name.c_str(), p.offered_requests_per_second, p.lag_ms.p50_ms, p.lag_ms.p99_ms,
                p.lag_ms.p999_ms);
  }
  std::printf("graceful handover %.1f ms, %lld writes refused, %lld redirected %s\n",
              r.graceful.handover_ms, static_cast<long long>(r.graceful.writes_refused),
              static_cast<long long>(r.graceful.writes_redirected), r.graceful.error.c_str());
  std::printf("forced failover RTO %.1f ms %s\n", r.forced.rto_ms, r.forced.error.c_str());
  for (const std::string& note : r.notes) std::printf("note: %s\n", note.c_str());
}

int Main(int argc, char** argv) {
  absl::StatusOr<BenchOptions> parsed = ParseOptions(argc, argv);
  if (!parsed.ok()) {
    if (absl::IsCancelled(parsed.status())) {
      std::fputs(Usage().c_str(), stdout);
      return 0;
    }
    std::fprintf(stderr, "xdc-bench: %s\n\n%s", std::string(parsed.status().message()).c_str(),
                 Usage().c_str());
    return kExitUsage;
  }
  const BenchOptions& options = *parsed;
  const absl::Time started = absl::Now();
  std::error_code ec;
  std::filesystem::create_directories(options.output_dir, ec);
  if (ec) {
    std::fprintf(stderr, "xdc-bench: cannot create %s: %s\n", options.output_dir.c_str(),
                 ec.message().c_str());
    return 1;
  }
  const std::string work_dir = options.output_dir + "/work";
  std::filesystem::remove_all(work_dir, ec);

  Report report;
  std::vector<std::string> args(argv, argv + argc);
  report.command = absl::StrJoin(args, " ");
  report.machine = Machine();
  report.options = options;
  report.broker =
      options.broker == chaos::BrokerKind::kReal
          ? absl::StrCat("real (Apache Kafka ", chaos::kKafkaVersion, ", KRaft, one broker)")
          : "mock (librdkafka's mock cluster in xdc-kafka-mock)";

  absl::StatusOr<std::unique_ptr<chaos::Broker>> broker =
      StartSharedBroker(options, work_dir + "/kafka");
  if (!broker.ok()) {
    std::fprintf(stderr, "xdc-bench: starting the Kafka broker: %s\n",
                 broker.status().ToString().c_str());
    return 1;
  }
  std::fprintf(stderr, "xdc-bench: raw limits\n");
  if (absl::Status s = RunRawSection(options, broker->get(), work_dir, report); !s.ok()) {
    std::fprintf(stderr, "xdc-bench: raw limits: %s\n", s.ToString().c_str());
    return 1;
  }
  if (options.run_end_to_end) {
    std::fprintf(stderr, "xdc-bench: end to end\n");
    if (absl::Status s = RunEndToEndSection(options, broker->get(), work_dir, report); !s.ok()) {
      std::fprintf(stderr, "xdc-bench: end to end: %s\n", s.ToString().c_str());
      return 1;
    }
  } else {
    report.notes.push_back("end to end, failover and backpressure: skipped (--skip end-to-end)");
  }
  std::fprintf(stderr, "xdc-bench: scaling\n");
  RunScalingSection(options, broker->get(), work_dir, report);
  if (*broker != nullptr) (void)(*broker)->Stop();
  report.total_seconds = absl::ToDoubleSeconds(absl::Now() - started);

  const std::string json_path = options.output_dir + "/report.json";
  std::ofstream json(json_path);
  json << ReportJson(report);
  if (!json) {
    std::fprintf(stderr, "xdc-bench: cannot write %s\n", json_path.c_str());
    return 1;
  }
  PrintSummary(report);
  std::printf("report: %s\n", json_path.c_str());
  std::filesystem::remove_all(work_dir, ec);
  return 0;
}

}  // namespace
}  // namespace xdc::bench

int main(int argc, char** argv) { return xdc::bench::Main(argc, argv); }
