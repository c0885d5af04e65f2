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
  std::fputs(SummaryText(report).c_str(), stdout);
  std::printf("report: %s\n", json_path.c_str());
  std::filesystem::remove_all(work_dir, ec);
  return 0;
}

}  // namespace
}  // namespace xdc::bench

int main(int argc, char** argv) { return xdc::bench::Main(argc, argv); }
