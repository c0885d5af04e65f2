// xdc-chaos: the fault-injection scenario runner. See `xdc-chaos --help` and docs/chaos.md.
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "chaos/scenario_runner.h"
#include "chaos/scenarios.h"
#include "chaos/schedule.h"

namespace xdc::chaos {
namespace {

constexpr absl::Duration kDefaultDuration = absl::Seconds(20);
// Random seeds stay below 2^32: short to type, and exact in any JSON reader.
constexpr uint64_t kRandomSeedLimit = uint64_t{1} << 32;
// suite --long: the load per writer is multiplied by this.
constexpr int kLongRateFactor = 2;

constexpr const char* kUsage = R"(usage: xdc-chaos COMMAND [FLAGS]

Runs fault-injection scenarios against real xdcd processes on a real Kafka broker (or
xdc-kafka-mock), with a workload that records every acknowledged write, and checks afterwards
that no invariant was broken. docs/chaos.md describes every scenario, the invariants and the
report.

Commands:
  list                        the scenarios, one line each on what it proves
  run --scenario NAME         run one scenario:
      [--seed N]                the schedule's seed (default: a random one, printed first)
      [--duration D]            the fault window, e.g. 20s, 90s, 2m (default 20s; at least 6s)
      [--broker mock|real]      xdc-kafka-mock (default) or Apache Kafka in KRaft mode
                                (scripts/kafka.sh install puts it in place)
      [--clusters 2|3]          east, west[, north] (default: the scenario's first count)
      [--rate N]                writes per second per writer (0: as fast as acknowledged;
                                default: the scenario's)
      [--workdir DIR]           where the broker, the daemons' data, configs and logs go
                                (default: a new directory under $TMPDIR or /tmp, removed when
                                the run passes unless --keep)
      [--keep]                  keep the work directory even when the run passes
      [--report FILE.json]      the JSON report (default: <workdir>.json)
  plan --scenario NAME        print the schedule a run would execute (same flags as run: --seed,
                              --duration, --broker, --clusters), and start nothing
  suite                       every scenario that applies to the broker, short runs:
      [--broker mock|real]      (default mock)
      [--long]                  more seeds per scenario, longer windows, twice the load
      [--seed N]                the first run's seed; the next runs use N+1, N+2, ...
                                (default: a random one per run)
      [--only NAME,...]         only these scenarios
      [--report-dir DIR]        one JSON report per run and suite.json (default: a new
                                directory under $TMPDIR or /tmp)
      [--workdir DIR]           runs go in DIR/<scenario>-<clusters>c-<seed> (default: under
                                $TMPDIR or /tmp); a run's directory is removed when it passes
                                unless --keep
Common flags:
  --bin-dir DIR               where xdcd and xdc-kafka-mock are (default: next to xdc-chaos)
  --help                      this text

Exit status: 0 every invariant held; 1 an invariant was violated (the report names it, the
daemons' logs are kept); 2 usage error; 3 the environment failed (the broker or a daemon would
not start, the run was interrupted): no verdict on the product.
Replay a run with the seed it printed: xdc-chaos run --scenario NAME --seed N (with the same
--duration, --broker, --clusters and --rate; the report's "replay" field has the exact command).
)";

struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> flags;
  bool Has(const std::string& name) const { return flags.contains(name); }
  std::string Get(const std::string& name, const std::string& fallback = "") const {
    auto it = flags.find(name);
    return it == flags.end() ? fallback : it->second;
  }
};

const std::set<std::string> kBooleanFlags = {"help", "long", "keep"};
const std::set<std::string> kValueFlags = {"scenario", "seed", "duration",  "broker",
                                           "clusters", "rate", "workdir",   "report",
                                           "bin-dir",  "only", "report-dir"};

int Usage(const std::string& problem) {
  std::fprintf(stderr, "xdc-chaos: %s\n(see xdc-chaos --help)\n", problem.c_str());
  return kExitUsage;
}

// Parses argv; an error message for an unknown flag or a missing value.
absl::StatusOr<Args> ParseArgs(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string token = argv[i];
    if (token == "-h") token = "--help";
    if (token.rfind("--", 0) != 0) {
      args.positional.push_back(token);
      continue;
    }
    token = token.substr(2);
    std::string value;
    const size_t eq = token.find('=');
    bool has_value = eq != std::string::npos;
    if (has_value) {
      value = token.substr(eq + 1);
      token = token.substr(0, eq);
    }
    if (kBooleanFlags.contains(token)) {
      if (has_value)
        return absl::InvalidArgumentError(absl::StrCat("--", token, " takes no value"));
      args.flags[token] = "true";
      continue;
    }
    if (!kValueFlags.contains(token)) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", token));
    }
    if (!has_value) {
      if (i + 1 >= argc)
        return absl::InvalidArgumentError(absl::StrCat("--", token, " needs a value"));
      value = argv[++i];
    }
    args.flags[token] = value;
  }
  return args;
}

std::string SelfPath() {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("xdc-chaos") : self.string();
}

std::string TempBase() {
  const char* tmp = std::getenv("TMPDIR");
  return tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
}

// A new directory named <base>/<prefix>XXXXXX.
absl::StatusOr<std::string> MakeTempDir(const std::string& prefix) {
  std::string path = absl::StrCat(TempBase(), "/", prefix, "XXXXXX");
  if (mkdtemp(path.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp ", path, ": ", std::strerror(errno)));
  }
  return path;
}

// "a/b/" -> "a/b", so that "<workdir>.json" names a sibling file.
std::string WithoutTrailingSlash(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

uint64_t RandomSeed() {
  std::random_device device;
  const uint64_t bits = (uint64_t{device()} << 32) ^ device();
  return bits % kRandomSeedLimit;
}

// The flags run and plan share. `error` is set to a usage problem.
struct RunFlags {
  const Scenario* scenario = nullptr;
  bool seed_given = false;
  uint64_t seed = 0;
  absl::Duration duration = kDefaultDuration;
  BrokerKind broker = BrokerKind::kMock;
  int clusters = 0;
  int rate = -1;
};

absl::StatusOr<BrokerKind> BrokerFlag(const Args& args) {
  return ParseBrokerKind(args.Get("broker", "mock"));
}

absl::StatusOr<RunFlags> ParseRunFlags(const Args& args) {
  RunFlags flags;
  if (!args.Has("scenario")) return absl::InvalidArgumentError("--scenario NAME is required");
  flags.scenario = FindScenario(args.Get("scenario"));
  if (flags.scenario == nullptr) {
    std::vector<std::string> names;
    for (const Scenario& s : Scenarios()) names.push_back(s.name);
    return absl::InvalidArgumentError(absl::StrCat("no scenario named '", args.Get("scenario"),
                                                   "'; the scenarios are ",
                                                   absl::StrJoin(names, ", ")));
  }
  if (args.Has("seed")) {
    if (!absl::SimpleAtoi(args.Get("seed"), &flags.seed)) {
      return absl::InvalidArgumentError("--seed must be an unsigned 64-bit integer");
    }
    flags.seed_given = true;
  }
  if (args.Has("duration") && (!absl::ParseDuration(args.Get("duration"), &flags.duration) ||
                               flags.duration < kMinDuration || flags.duration > kMaxDuration)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--duration must be a duration such as 20s or 2m, between ",
        absl::FormatDuration(kMinDuration), " and ", absl::FormatDuration(kMaxDuration)));
  }
  absl::StatusOr<BrokerKind> broker = BrokerFlag(args);
  if (!broker.ok()) return broker.status();
  flags.broker = *broker;
  if (!RunsOn(*flags.scenario, flags.broker)) {
    return absl::InvalidArgumentError(
        absl::StrCat("scenario ", flags.scenario->name, " runs on the ",
                     BrokerSupportName(flags.scenario->brokers), " broker, not the ",
                     std::string(BrokerKindName(flags.broker)), " one"));
  }
  flags.clusters = flags.scenario->cluster_counts.front();
  if (args.Has("clusters")) {
    if (!absl::SimpleAtoi(args.Get("clusters"), &flags.clusters) ||
        std::find(flags.scenario->cluster_counts.begin(), flags.scenario->cluster_counts.end(),
                  flags.clusters) == flags.scenario->cluster_counts.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--clusters for ", flags.scenario->name, " must be one of ",
                       absl::StrJoin(flags.scenario->cluster_counts, ", ")));
    }
  }
  if (args.Has("rate") && (!absl::SimpleAtoi(args.Get("rate"), &flags.rate) || flags.rate < 0)) {
    return absl::InvalidArgumentError("--rate must be a number of writes per second (0 or more)");
  }
  return flags;
}

std::string BinDir(const Args& args) {
  if (args.Has("bin-dir")) return args.Get("bin-dir");
  return std::filesystem::path(SelfPath()).parent_path().string();
}

absl::Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("could not write ", path));
  return absl::OkStatus();
}

int List() {
  std::printf("%-20s %-10s %-9s %s\n", "SCENARIO", "BROKER", "CLUSTERS", "PROVES");
  for (const Scenario& s : Scenarios()) {
    std::printf("%-20s %-10s %-9s %s%s\n", s.name.c_str(), BrokerSupportName(s.brokers).c_str(),
                absl::StrJoin(s.cluster_counts, "|").c_str(), s.proves.c_str(),
                s.in_suite ? "" : " [not in the suite]");
  }
  return 0;
}

int Plan(const Args& args) {
  absl::StatusOr<RunFlags> flags = ParseRunFlags(args);
  if (!flags.ok()) return Usage(std::string(flags.status().message()));
  ScheduleInput input;
  input.scenario = flags->scenario->name;
  input.pattern = flags->scenario->pattern;
  input.seed = flags->seed_given ? flags->seed : RandomSeed();
  input.duration = flags->duration;
  for (int i = 0; i < flags->clusters; ++i) input.clusters.push_back(kClusterNames[i]);
  input.initial_active = kInitialActive;
  input.broker = flags->broker;
  absl::StatusOr<Schedule> schedule = BuildSchedule(input);
  if (!schedule.ok()) return Usage(std::string(schedule.status().message()));
  std::printf("seed %llu\n%s", static_cast<unsigned long long>(input.seed),
              schedule->ToString().c_str());
  return 0;
}

// Runs one scenario and writes its report; prints the summary. Returns the report.
RunReport RunAndReport(RunOptions options, const std::string& report_path) {
  RunReport report = RunScenario(options);
  std::printf("\n%s", report.Summary().c_str());
  if (absl::Status s = WriteFile(report_path, report.ToJson()); !s.ok()) {
    std::fprintf(stderr, "xdc-chaos: %s\n", std::string(s.message()).c_str());
  } else {
    std::printf("  report: %s\n", report_path.c_str());
  }
  std::fflush(stdout);
  return report;
}

int RunCommand(const Args& args) {
  absl::StatusOr<RunFlags> flags = ParseRunFlags(args);
  if (!flags.ok()) return Usage(std::string(flags.status().message()));
  RunOptions options;
  options.scenario = flags->scenario->name;
  options.seed = flags->seed_given ? flags->seed : RandomSeed();
  options.duration = flags->duration;
  options.broker = flags->broker;
  options.clusters = flags->clusters;
  options.rate_per_second = flags->rate;
  options.bin_dir = BinDir(args);
  options.self_path = SelfPath();
  std::printf("xdc-chaos: seed %llu%s\n", static_cast<unsigned long long>(options.seed),
              flags->seed_given ? "" : " (random)");
  std::fflush(stdout);
  if (args.Has("workdir")) {
    options.work_dir = WithoutTrailingSlash(args.Get("workdir"));
  } else {
    absl::StatusOr<std::string> dir =
        MakeTempDir(absl::StrCat("xdc-chaos-", options.scenario, "-", options.seed, "-"));
    if (!dir.ok()) {
      std::fprintf(stderr, "xdc-chaos: %s\n", std::string(dir.status().message()).c_str());
      return kExitEnvironment;
    }
    options.work_dir = *dir;
    options.remove_work_dir_on_pass = !args.Has("keep");
  }
  const std::string report_path = args.Get("report", options.work_dir + ".json");
  RunReport report = RunAndReport(options, report_path);
  return ExitCodeOf(report.verdict);
}

struct SuiteRow {
  std::string scenario;
  int clusters = 0;
  uint64_t seed = 0;
  Verdict verdict = Verdict::kEnvironmentFailed;
  absl::Duration took;
  std::string report;
  std::string replay;
  std::string reason;
};

int Suite(const Args& args) {
  absl::StatusOr<BrokerKind> broker = BrokerFlag(args);
  if (!broker.ok()) return Usage(std::string(broker.status().message()));
  const bool long_run = args.Has("long");
  uint64_t next_seed = 0;
  const bool seed_given = args.Has("seed");
  if (seed_given && !absl::SimpleAtoi(args.Get("seed"), &next_seed)) {
    return Usage("--seed must be an unsigned 64-bit integer");
  }
  std::set<std::string> only;
  for (absl::string_view name : absl::StrSplit(args.Get("only"), ',', absl::SkipEmpty())) {
    const std::string scenario(name);
    if (FindScenario(scenario) == nullptr) {
      return Usage(absl::StrCat("no scenario named '", scenario, "'"));
    }
    only.insert(scenario);
  }
  std::string report_dir = args.Get("report-dir");
  std::string work_base = WithoutTrailingSlash(args.Get("workdir"));
  for (std::string* dir : {&report_dir, &work_base}) {
    if (dir->empty()) {
      absl::StatusOr<std::string> made =
          MakeTempDir(dir == &report_dir ? "xdc-chaos-reports-" : "xdc-chaos-suite-");
      if (!made.ok()) {
        std::fprintf(stderr, "xdc-chaos: %s\n", std::string(made.status().message()).c_str());
        return kExitEnvironment;
      }
      *dir = *made;
    }
    std::error_code ec;
    std::filesystem::create_directories(*dir, ec);
    if (ec) {
      std::fprintf(stderr, "xdc-chaos: creating %s: %s\n", dir->c_str(), ec.message().c_str());
      return kExitEnvironment;
    }
  }

  // The plan: every scenario for this broker, each cluster count it is run with, 1 or more seeds.
  struct Planned {
    const Scenario* scenario;
    int clusters;
  };
  std::vector<Planned> plan;
  for (const Scenario& s : Scenarios()) {
    if (!s.in_suite || !RunsOn(s, *broker)) continue;
    if (!only.empty() && !only.contains(s.name)) continue;
    for (int clusters : s.suite_cluster_counts) {
      for (int i = 0; i < (long_run ? s.long_seeds : 1); ++i) plan.push_back({&s, clusters});
    }
  }
  std::printf("xdc-chaos suite: %zu runs on the %s broker%s; reports in %s\n", plan.size(),
              std::string(BrokerKindName(*broker)).c_str(), long_run ? " (--long)" : "",
              report_dir.c_str());
  std::fflush(stdout);

  const absl::Time suite_start = absl::Now();
  std::vector<SuiteRow> rows;
  for (const Planned& p : plan) {
    if (Interrupted()) break;
    RunOptions options;
    options.scenario = p.scenario->name;
    options.seed = seed_given ? next_seed++ : RandomSeed();
    options.duration = long_run ? p.scenario->long_duration : p.scenario->suite_duration;
    options.broker = *broker;
    options.clusters = p.clusters;
    options.rate_per_second = long_run ? p.scenario->load.rate_per_second * kLongRateFactor : -1;
    options.bin_dir = BinDir(args);
    options.self_path = SelfPath();
    const std::string run_name =
        absl::StrCat(options.scenario, "-", p.clusters, "c-", options.seed);
    options.work_dir = absl::StrCat(work_base, "/", run_name);
    options.remove_work_dir_on_pass = !args.Has("keep");
    std::printf("\n=== %s: %s with %d clusters, seed %llu\n", run_name.c_str(),
                options.scenario.c_str(), p.clusters,
                static_cast<unsigned long long>(options.seed));
    std::fflush(stdout);
    const std::string report_path = absl::StrCat(report_dir, "/", run_name, ".json");
    RunReport report = RunAndReport(options, report_path);
    rows.push_back({options.scenario, p.clusters, options.seed, report.verdict, report.elapsed,
                    report_path, report.ReplayCommand(), report.reason});
  }

  int exit_code = kExitPassed;
  std::string table = absl::StrFormat("%-20s %-8s %-12s %-19s %9s  %s\n", "SCENARIO", "CLUSTERS",
                                      "SEED", "RESULT", "DURATION", "REPORT");
  std::vector<std::string> rows_json;
  for (const SuiteRow& row : rows) {
    absl::StrAppendFormat(&table, "%-20s %-8d %-12d %-19s %8.1fs  %s\n", row.scenario, row.clusters,
                          row.seed, VerdictName(row.verdict), absl::ToDoubleSeconds(row.took),
                          row.report);
    if (row.verdict == Verdict::kViolated) {
      exit_code = kExitViolated;
    } else if (row.verdict == Verdict::kEnvironmentFailed && exit_code == kExitPassed) {
      exit_code = kExitEnvironment;
    }
    rows_json.push_back(absl::StrCat(
        "{\"scenario\": ", JsonQuote(row.scenario), ", \"clusters\": ", row.clusters,
        ", \"seed\": ", row.seed, ", \"verdict\": ", JsonQuote(VerdictName(row.verdict)),
        ", \"elapsed_ms\": ", absl::ToInt64Milliseconds(row.took),
        ", \"report\": ", JsonQuote(row.report), ", \"replay\": ", JsonQuote(row.replay),
        ", \"reason\": ", JsonQuote(row.reason), "}"));
  }
  if (rows.size() < plan.size())
    exit_code = exit_code == kExitPassed ? kExitEnvironment : exit_code;
  const absl::Duration took = absl::Now() - suite_start;
  absl::StrAppendFormat(&table, "%zu of %zu runs passed in %.1fs\n",
                        static_cast<size_t>(std::count_if(
                            rows.begin(), rows.end(),
                            [](const SuiteRow& r) { return r.verdict == Verdict::kPassed; })),
                        plan.size(), absl::ToDoubleSeconds(took));
  std::printf("\n%s", table.c_str());
  for (const SuiteRow& row : rows) {
    if (row.verdict != Verdict::kPassed) {
      std::printf("FAILED %s (%s)\n  replay: %s\n", row.scenario.c_str(), row.reason.c_str(),
                  row.replay.c_str());
    }
  }
  const std::string suite_json = absl::StrCat(
      "{\n  \"broker\": ", JsonQuote(BrokerKindName(*broker)),
      ",\n  \"long\": ", long_run ? "true" : "false",
      ",\n  \"elapsed_ms\": ", absl::ToInt64Milliseconds(took), ",\n  \"exit_code\": ", exit_code,
      ",\n  \"runs\": [\n    ", absl::StrJoin(rows_json, ",\n    "), "\n  ]\n}\n");
  if (absl::Status s = WriteFile(report_dir + "/suite.json", suite_json); !s.ok()) {
    std::fprintf(stderr, "xdc-chaos: %s\n", std::string(s.message()).c_str());
  }
  return exit_code;
}

void OnSignal(int) { Interrupt(); }

int Main(int argc, char** argv) {
  absl::StatusOr<Args> args = ParseArgs(argc, argv);
  if (!args.ok()) return Usage(std::string(args.status().message()));
  if (args->Has("help")) {
    std::printf("%s", kUsage);
    return 0;
  }
  if (args->positional.empty()) {
    std::fprintf(stderr, "%s", kUsage);
    return kExitUsage;
  }
  if (args->positional.size() > 1) {
    return Usage(absl::StrCat("unexpected argument '", args->positional[1], "'"));
  }
  // The first SIGINT/SIGTERM stops the run cleanly (heal, stop the daemons and the broker); a
  // second one ends the process at once.
  struct sigaction action = {};
  action.sa_handler = OnSignal;
  action.sa_flags = SA_RESETHAND;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);

  const std::string& command = args->positional[0];
  if (command == "list") return List();
  if (command == "run") return RunCommand(*args);
  if (command == "plan") return Plan(*args);
  if (command == "suite") return Suite(*args);
  if (command == "help") {
    std::printf("%s", kUsage);
    return 0;
  }
  return Usage(absl::StrCat("unknown command '", command, "'"));
}

}  // namespace
}  // namespace xdc::chaos

int main(int argc, char** argv) { return xdc::chaos::Main(argc, argv); }
