// One run of one chaos scenario, start to verdict:
//
//   fresh broker (chaos::Broker, in the run's work dir) -> N xdcd processes (chaos::ClusterSet,
//   XDC_ENABLE_FAULT_POINTS=1, a topic prefix of their own) -> namespace "orders" registered
//   active on east -> the workload (chaos::Workload) -> the schedule's steps at their offsets
//   (chaos/schedule.h) -> everything healed (fault points disarmed, daemons resumed or
//   restarted, the broker back) -> the workload stopped -> chaos::WaitAndCheck -> the report.
//
// The verdict separates what the product did from what the machine did:
//   kPassed            every invariant held (exit 0);
//   kViolated          the checker, or the runner itself, found a violation (exit 1): a daemon
//                      that exited on its own, a daemon that does not answer after the heal, a
//                      graceful handover that did not complete where the scenario requires it,
//                      a workload that never got an acknowledgement;
//   kEnvironmentFailed the run could not be made (exit 3): the broker or a daemon would not
//                      start, the namespace could not be registered before any fault, the
//                      checker could not reach the clusters, or the run was interrupted.
//
// Waiting for a step's offset is the schedule itself; every other wait polls a condition with a
// deadline. An action that blocks (a restart returns once the process is ready) delays the later
// ones by as long as it took, so every fault keeps its length and every gap its size.
//
// Thread-safety: RunScenario runs on the calling thread (the workload has its own); Interrupt()
// is async-signal-safe.
#pragma once

#include "chaos/run_report.h"

namespace xdc::chaos {

// The namespace every run registers, and where it starts active.
inline constexpr char kChaosNamespace[] = "orders";
inline constexpr char kInitialActive[] = "east";
// Cluster names, in order: a run with N clusters uses the first N.
inline constexpr const char* kClusterNames[] = {"east", "west", "north"};
inline constexpr int kShardCount = 4;

// Runs one scenario. Never throws; every outcome is in the report.
[[nodiscard]] RunReport RunScenario(const RunOptions& options);

// Asks a running RunScenario to stop at its next step: it heals, skips the check and reports an
// environment failure ("interrupted"). Async-signal-safe.
void Interrupt();
[[nodiscard]] bool Interrupted();

}  // namespace xdc::chaos
