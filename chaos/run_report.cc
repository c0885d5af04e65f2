#include "chaos/run_report.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "chaos/scenarios.h"

namespace xdc::chaos {
namespace {

int64_t Ms(absl::Duration d) { return absl::ToInt64Milliseconds(d); }

std::string Seconds(int64_t ms) { return absl::StrFormat("%.3fs", static_cast<double>(ms) / 1e3); }

// --- a small JSON writer (exact 64-bit integers, which the report's seed needs) --------------

class JsonObject {
 public:
  JsonObject& Str(std::string_view key, std::string_view value) {
    return Raw(key, JsonQuote(value));
  }
  JsonObject& Int(std::string_view key, int64_t value) { return Raw(key, absl::StrCat(value)); }
  JsonObject& Uint(std::string_view key, uint64_t value) { return Raw(key, absl::StrCat(value)); }
  JsonObject& Bool(std::string_view key, bool value) { return Raw(key, value ? "true" : "false"); }
  JsonObject& Raw(std::string_view key, std::string value) {
    fields_.emplace_back(std::string(key), std::move(value));
    return *this;
  }
  // Compact, or one field per line indented by `indent` spaces.
  std::string Build(int indent = -1) const {
    std::vector<std::string> parts;
    for (const auto& [key, value] : fields_)
      parts.push_back(absl::StrCat(JsonQuote(key), ": ", value));
    if (indent < 0) return absl::StrCat("{", absl::StrJoin(parts, ", "), "}");
    const std::string pad(indent, ' ');
    const std::string close_pad(indent >= 2 ? indent - 2 : 0, ' ');
    return absl::StrCat("{\n", pad, absl::StrJoin(parts, absl::StrCat(",\n", pad)), "\n", close_pad,
                        "}");
  }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

std::string JsonArray(const std::vector<std::string>& items, int indent = -1) {
  if (items.empty()) return "[]";
  if (indent < 0) return absl::StrCat("[", absl::StrJoin(items, ", "), "]");
  const std::string pad(indent, ' ');
  const std::string close_pad(indent >= 2 ? indent - 2 : 0, ' ');
  return absl::StrCat("[\n", pad, absl::StrJoin(items, absl::StrCat(",\n", pad)), "\n", close_pad,
                      "]");
}

std::string StepJson(int index, const Step& step) {
  JsonObject o;
  o.Int("index", index)
      .Str("kind", FaultKindName(step.kind))
      .Int("start_ms", step.start_ms)
      .Int("heal_ms", step.heal_ms);
  if (!step.cluster.empty()) o.Str("cluster", step.cluster);
  if (!step.peer.empty()) o.Str("peer", step.peer);
  if (!step.fault_point.empty()) o.Str("fault_point", step.fault_point);
  if (!step.api.empty()) o.Str("api", step.api).Int("count", step.count);
  if (step.kind == FaultKind::kBrokerLatency) o.Int("rtt_ms", step.rtt_ms);
  if (step.broker_id != 0) o.Int("broker_id", step.broker_id);
  if (step.heal_after_check) o.Bool("heal_after_check", true);
  o.Str("text", step.ToString());
  return o.Build();
}

}  // namespace

std::string VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kPassed:
      return "passed";
    case Verdict::kViolated:
      return "violated";
    case Verdict::kEnvironmentFailed:
      return "environment_failed";
  }
  return "?";
}

int ExitCodeOf(Verdict verdict) {
  switch (verdict) {
    case Verdict::kPassed:
      return kExitPassed;
    case Verdict::kViolated:
      return kExitViolated;
    case Verdict::kEnvironmentFailed:
      return kExitEnvironment;
  }
  return kExitEnvironment;
}

int EffectiveRate(const RunOptions& options) {
  if (options.rate_per_second >= 0) return options.rate_per_second;
  const Scenario* scenario = FindScenario(options.scenario);
  return scenario == nullptr ? -1 : scenario->load.rate_per_second;
}

std::string RunReport::ReplayCommand() const {
  return absl::StrCat(options.self_path.empty() ? "xdc-chaos" : options.self_path,
                      " run --scenario ", options.scenario, " --seed ", options.seed,
                      " --duration ", absl::FormatDuration(options.duration), " --broker ",
                      std::string(BrokerKindName(options.broker)), " --clusters ", options.clusters,
                      options.rate_per_second >= 0
                          ? absl::StrCat(" --rate ", options.rate_per_second)
                          : std::string());
}

std::string RunReport::ToJson() const {
  JsonObject o;
  o.Str("tool", "xdc-chaos")
      .Str("scenario", options.scenario)
      .Str("proves", proves)
      .Uint("seed", options.seed)
      .Str("broker", BrokerKindName(options.broker))
      .Int("cluster_count", options.clusters)
      .Int("duration_ms", Ms(options.duration))
      .Int("rate_per_second", EffectiveRate(options))
      .Str("verdict", VerdictName(verdict))
      .Int("exit_code", ExitCodeOf(verdict))
      .Str("reason", reason)
      .Str("started_at", started_at)
      .Int("elapsed_ms", Ms(elapsed))
      .Str("replay", ReplayCommand());
  if (schedule.has_value()) {
    std::vector<std::string> clusters;
    for (const std::string& c : schedule->clusters) clusters.push_back(JsonQuote(c));
    o.Raw("clusters", JsonArray(clusters));
    o.Uint("workload_seed", schedule->workload_seed);
    std::vector<std::string> steps;
    for (size_t i = 0; i < schedule->steps.size(); ++i) {
      steps.push_back(StepJson(static_cast<int>(i), schedule->steps[i]));
    }
    o.Raw("schedule", JsonArray(steps, 4));
  }
  std::vector<std::string> events_json;
  for (const StepEvent& e : events) {
    events_json.push_back(JsonObject()
                              .Int("step", e.step)
                              .Str("action", e.action)
                              .Int("scheduled_ms", e.scheduled_ms)
                              .Int("at_ms", e.at_ms)
                              .Int("took_ms", e.took_ms)
                              .Bool("ok", e.ok)
                              .Str("detail", e.detail)
                              .Build());
  }
  o.Raw("events", JsonArray(events_json, 4));
  o.Raw("workload", JsonObject()
                        .Int("writers", writers)
                        .Int("acked", workload.acked)
                        .Int("refused", workload.refused)
                        .Int("unknown_outcome", workload.unknown_outcome)
                        .Int("transport_errors", workload.transport_errors)
                        .Int("unexpected", workload.unexpected)
                        .Str("last_unexpected", workload.last_unexpected)
                        .Build());
  std::vector<std::string> violations;
  for (const RunnerViolation& v : runner_violations) {
    violations.push_back(JsonObject()
                             .Str("invariant", v.invariant)
                             .Str("cluster", v.cluster)
                             .Str("detail", v.detail)
                             .Build());
  }
  o.Raw("runner_violations", JsonArray(violations, 4));
  o.Raw("check", check.has_value() ? check->ToJson() : "null");
  if (!check_error.empty()) o.Str("check_error", check_error);
  o.Str("work_dir", options.work_dir).Bool("work_dir_kept", work_dir_kept);
  if (work_dir_kept) {
    JsonObject logs_json;
    for (const auto& [name, path] : logs) logs_json.Str(name, path);
    o.Raw("logs", logs_json.Build());
  }
  return o.Build(2) + "\n";
}

std::string RunReport::Summary() const {
  std::string out =
      absl::StrFormat("%s: %s, seed %d, %s broker, %d clusters, fault window %s, took %s\n",
                      verdict == Verdict::kPassed     ? "PASSED"
                      : verdict == Verdict::kViolated ? "VIOLATED"
                                                      : "ENVIRONMENT FAILED",
                      options.scenario, options.seed, std::string(BrokerKindName(options.broker)),
                      options.clusters, absl::FormatDuration(options.duration),
                      absl::FormatDuration(absl::Trunc(elapsed, absl::Milliseconds(100))));
  absl::StrAppend(&out, "  ", reason, "\n");
  if (schedule.has_value()) {
    int failed = 0;
    for (const StepEvent& e : events) failed += e.ok ? 0 : 1;
    absl::StrAppendFormat(&out, "  steps: %d scheduled, %d actions taken, %d failed\n",
                          schedule->steps.size(), events.size(), failed);
    for (const StepEvent& e : events) {
      if (!e.ok) {
        absl::StrAppendFormat(&out, "    %s #%d at +%s: %s\n", e.action, e.step, Seconds(e.at_ms),
                              e.detail);
      }
    }
  }
  absl::StrAppendFormat(&out,
                        "  workload: %d writer(s), %d acknowledged, %d refused, %d unknown "
                        "outcome, %d transport errors, %d unexpected answers%s\n",
                        writers, workload.acked, workload.refused, workload.unknown_outcome,
                        workload.transport_errors, workload.unexpected,
                        workload.last_unexpected.empty()
                            ? ""
                            : absl::StrCat(" (last: ", workload.last_unexpected, ")"));
  for (const RunnerViolation& v : runner_violations) {
    absl::StrAppendFormat(&out, "  VIOLATION %s%s: %s\n", v.invariant,
                          v.cluster.empty() ? std::string() : " on " + v.cluster, v.detail);
  }
  if (check.has_value()) absl::StrAppend(&out, check->Summary());
  if (!check_error.empty()) absl::StrAppend(&out, "  check error: ", check_error, "\n");
  if (work_dir_kept && verdict != Verdict::kPassed) {
    absl::StrAppend(&out, "  logs (kept in ", options.work_dir, "):\n");
    for (const auto& [name, path] : logs) absl::StrAppend(&out, "    ", name, ": ", path, "\n");
  }
  absl::StrAppend(&out, "  replay: ", ReplayCommand(), "\n");
  return out;
}

}  // namespace xdc::chaos
