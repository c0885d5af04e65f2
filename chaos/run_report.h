// The account of one xdc-chaos run (chaos/scenario_runner.h): what ran (the options and the
// schedule), what actually happened to each step and when, the workload's figures, the runner's
// and the checker's violations, and the verdict; as JSON for the report file and as text for the
// terminal. docs/chaos.md describes every field.
//
// Thread-safety: values only.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "chaos/broker.h"
#include "chaos/checker.h"
#include "chaos/schedule.h"
#include "chaos/workload.h"
#include "replicator/json_quote.h"  // JsonQuote, used with the report's JSON

namespace xdc::chaos {

enum class Verdict { kPassed, kViolated, kEnvironmentFailed };

// "passed", "violated", "environment_failed".
[[nodiscard]] std::string VerdictName(Verdict verdict);
// 0, 1, 3 (2 is the CLI's usage error).
[[nodiscard]] int ExitCodeOf(Verdict verdict);

inline constexpr int kExitPassed = 0;
inline constexpr int kExitViolated = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitEnvironment = 3;

struct RunOptions {
  std::string scenario;  // a name from scenarios.h
  uint64_t seed = 0;
  absl::Duration duration = absl::Seconds(20);  // the fault window
  BrokerKind broker = BrokerKind::kMock;
  int clusters = 2;
  int rate_per_second = -1;  // per writer; -1: the scenario's
  std::string work_dir;      // the run's directory (created); data, configs and logs
  bool remove_work_dir_on_pass = false;
  std::string bin_dir;      // where xdcd and xdc-kafka-mock are
  std::string self_path;    // this executable, for the replay command
  FILE* progress = stdout;  // where progress lines go (nullptr: nowhere)
};

// What actually happened to one step (or to the final heal), when.
struct StepEvent {
  int step = -1;             // index into the schedule; -1 for the final heal
  std::string action;        // "begin", "heal", "heal-all", "after-check"
  int64_t scheduled_ms = 0;  // offset the schedule asked for
  int64_t at_ms = 0;         // offset it started at
  int64_t took_ms = 0;
  bool ok = true;
  std::string detail;
};

struct RunnerViolation {
  std::string invariant;  // "daemon_alive", "daemon_answers", "handover_completed", "made_progress"
  std::string cluster;
  std::string detail;
};

struct RunReport {
  RunOptions options;
  std::string proves;
  std::optional<Schedule> schedule;
  Verdict verdict = Verdict::kEnvironmentFailed;
  std::string reason;      // why, in one line
  std::string started_at;  // RFC 3339, UTC
  absl::Duration elapsed;
  int writers = 0;
  Workload::Stats workload;  // summed over the writers
  std::vector<StepEvent> events;
  std::vector<RunnerViolation> runner_violations;
  std::optional<CheckResult> check;
  std::string check_error;
  std::map<std::string, std::string> logs;  // name -> path (daemons and broker)
  bool work_dir_kept = true;

  [[nodiscard]] std::string ReplayCommand() const;
  [[nodiscard]] std::string ToJson() const;
  // Readable account: verdict, steps, workload, the checker's summary, where the logs are.
  [[nodiscard]] std::string Summary() const;
};

// Writes per second per writer in a run: --rate, else the scenario's.
[[nodiscard]] int EffectiveRate(const RunOptions& options);

}  // namespace xdc::chaos
