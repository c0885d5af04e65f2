// The scenario table of xdc-chaos: every scenario's name, what it proves, which fault pattern
// (chaos/schedule.h) it injects, which brokers and cluster counts it runs with, and how its run
// is checked. `xdc-chaos list`, the suite and docs/chaos.md all follow this table.
//
// Adding a scenario: add a Pattern and its generator in chaos/schedule.cc (if no existing one
// fits), then a row here; the runner needs a change only for a new FaultKind.
//
// Thread-safety: immutable after first use; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "chaos/broker.h"
#include "chaos/schedule.h"

namespace xdc::chaos {

// Which brokers a scenario can run on.
enum class BrokerSupport { kAny, kRealOnly, kMockOnly };

// How the workload writes during a scenario.
struct LoadShape {
  int workflows = 32;
  int rate_per_second = 200;  // per writer; 0: closed loop, as fast as acknowledgements come
  double signal_fraction = 0.25;
};

struct Scenario {
  std::string name;
  std::string proves;  // one line, for `xdc-chaos list` and the suite's table
  Pattern pattern = Pattern::kKillRestart;
  BrokerSupport brokers = BrokerSupport::kAny;
  std::vector<int> cluster_counts = {2, 3};  // what --clusters may be; the first is the default
  // --- the suite (xdc-chaos suite) ---
  bool in_suite = true;                         // false: only by name (the self-test)
  std::vector<int> suite_cluster_counts = {2};  // one suite run per count
  absl::Duration suite_duration = absl::Seconds(20);
  absl::Duration long_duration = absl::Seconds(60);  // suite --long
  int long_seeds = 3;                                // suite --long: runs per cluster count
  // --- the check (chaos/checker.h) ---
  bool allow_lost_appends = false;  // appends on a losing branch of a forced failover are lost
  std::vector<std::string> allowed_dlq_reasons;        // DLQ entries the check tolerates
  absl::Duration quiesce_timeout = absl::Seconds(60);  // how long the clusters may take to agree
  // The check must find a violation (the self-test): the run passes when it does.
  bool expect_violation = false;
  // Graceful handovers must complete; one that does not is a violation.
  bool handovers_must_complete = false;
  // Every forced failover also starts a writer on its target (same workflows), so both sides of
  // a split brain take writes.
  bool writer_on_each_forced_failover = false;
  LoadShape load;
};

// Every scenario, in the order `list` and the suite show them.
[[nodiscard]] const std::vector<Scenario>& Scenarios();
// The scenario named `name`, or nullptr.
[[nodiscard]] const Scenario* FindScenario(std::string_view name);
// Whether `scenario` can run on `broker`.
[[nodiscard]] bool RunsOn(const Scenario& scenario, BrokerKind broker);
// "any", "real only", "mock only".
[[nodiscard]] std::string BrokerSupportName(BrokerSupport support);

}  // namespace xdc::chaos
