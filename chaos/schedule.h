// A chaos scenario's fault schedule: the timed steps one run of xdc-chaos executes, derived from
// a seed and the run's parameters and nothing else.
//
// Contract:
//   - Pure: no clock, no I/O, no global state, no std::*_distribution (whose results differ
//     between standard libraries). The same ScheduleInput gives the same Schedule on every
//     machine and build, which is what makes a printed seed a replay.
//   - Offsets count from the moment the workload started. Every step starts at or after
//     kWarmup, and every fault is healed (its heal offset passed) by the end of the fault window
//     (`duration`), except steps marked `heal_after_check` (only the self-test, which must leave
//     the cluster damaged while the checker looks). The runner heals everything again after the
//     window anyway, so a late or failed heal never reaches the check.
//   - Steps are sorted by start offset (then by the order they were generated).
//
// Thread-safety: values only; the functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "chaos/broker.h"

namespace xdc::chaos {

// What a step does when it starts, and what healing it means.
enum class FaultKind {
  kKillDaemon,      // SIGKILL xdcd `cluster`; heal: restart it on the same data dir
  kPauseDaemon,     // SIGSTOP xdcd `cluster`; heal: SIGCONT
  kCrashBroker,     // SIGKILL the broker (real broker); heal: restart it on the same data
  kPauseBroker,     // SIGSTOP the broker; heal: SIGCONT
  kBrokerDown,      // mock API: broker `broker_id` down; heal: up
  kBrokerLatency,   // mock API: broker `broker_id` answers `rtt_ms` late; heal: rtt 0
  kRequestErrors,   // mock API: the next `count` `api` requests fail; instantaneous
  kPartition,       // `cluster` and `peer` consume nothing from each other (apply.hold.<other>
                    // armed on both); heal: disarm both
  kFaultPoint,      // arm `fault_point` on `cluster`; heal: disarm, restart xdcd if it halted
  kForcedFailover,  // forced failover of the namespace to `cluster`; instantaneous
  kHandover,        // graceful handover from the active cluster to `cluster`; heal: await the
                    // target's decision
};

// "kill-daemon", "pause-daemon", ... (stable: used in reports).
[[nodiscard]] std::string FaultKindName(FaultKind kind);

// Fault point names armed over xdcd's HTTP API (see chaos/fault_points.h and the daemon's
// /v1/fault-points). apply.hold.<peer> is built with kApplyHoldPrefix.
inline constexpr std::string_view kFaultDuplicateDelivery = "kafka.duplicate_delivery";
inline constexpr std::string_view kFaultReorderDelivery = "kafka.reorder_delivery";
inline constexpr std::string_view kFaultStoreWriteError = "store.write_error";
inline constexpr std::string_view kFaultPublishLoseTask = "publish.lose_task";
inline constexpr std::string_view kFaultResendRefuse = "resend.refuse";

// The patterns of faults a scenario injects. scenarios.h names them; each is one generator.
enum class Pattern {
  kKillRestart,        // SIGKILL + restart xdcd, any cluster, repeatedly (may overlap)
  kPause,              // SIGSTOP / SIGCONT xdcd, any cluster, repeatedly (may overlap)
  kBrokerKill,         // real broker: SIGKILL + restart, and SIGSTOP / SIGCONT
  kBrokerFaults,       // mock broker: down/up, request errors, latency, SIGSTOP / SIGCONT
  kPartition,          // two clusters (or one against all) cannot see each other, then heal
  kDeliveryFaults,     // duplicated and reordered delivery on standbys
  kStoreErrors,        // every store write fails on one cluster for a while
  kSplitBrain,         // partition the active, force the failover to a standby, heal
  kHandoverUnderLoad,  // graceful handovers to random targets
  kFailback,           // graceful handovers east -> west -> east, repeatedly
  kHandoverFaults,     // graceful handovers while a daemon is SIGKILLed or SIGSTOPped midway
  kSelfTestLoss,       // publish.lose_task + resend.refuse: acknowledged events are lost
};

struct Step {
  int64_t start_ms = 0;  // offset from the workload's start
  int64_t heal_ms = 0;   // when it is healed; == start_ms for an instantaneous step
  FaultKind kind = FaultKind::kKillDaemon;
  std::string cluster;      // the cluster acted on (the target of a failover/handover)
  std::string peer;         // kPartition: the other side
  std::string fault_point;  // kFaultPoint
  std::string api;          // kRequestErrors: produce | fetch | metadata
  int32_t count = 0;        // kRequestErrors
  int32_t rtt_ms = 0;       // kBrokerLatency
  int32_t broker_id = 0;    // kBrokerDown, kBrokerLatency
  // Left armed through the check and healed only after it (the self-test's lasting damage).
  bool heal_after_check = false;

  [[nodiscard]] bool instantaneous() const { return heal_ms == start_ms; }
  // One line: "+3.250s kill-daemon west, healed at +4.750s (1.500s)".
  [[nodiscard]] std::string ToString() const;
  bool operator==(const Step&) const = default;
};

struct ScheduleInput {
  std::string scenario;  // for printing only
  Pattern pattern = Pattern::kKillRestart;
  uint64_t seed = 0;
  absl::Duration duration = absl::Seconds(20);  // the fault window
  std::vector<std::string> clusters;            // names, e.g. east, west[, north]
  std::string initial_active = "east";          // where the namespace starts active
  BrokerKind broker = BrokerKind::kMock;
};

struct Schedule {
  std::string scenario;
  Pattern pattern = Pattern::kKillRestart;
  uint64_t seed = 0;
  int64_t duration_ms = 0;
  std::vector<std::string> clusters;
  BrokerKind broker = BrokerKind::kMock;
  uint64_t workload_seed = 0;  // derived from `seed`
  std::vector<Step> steps;

  // A header line and one line per step, for the terminal and the report.
  [[nodiscard]] std::string ToString() const;
  bool operator==(const Schedule&) const = default;
};

// Bounds every schedule keeps.
inline constexpr absl::Duration kWarmup = absl::Seconds(1);       // no fault before this
inline constexpr absl::Duration kQuietTail = absl::Seconds(1);    // no fault in the last second
inline constexpr absl::Duration kMinDuration = absl::Seconds(6);  // shorter windows are refused
inline constexpr absl::Duration kMaxDuration = absl::Hours(24);

// The schedule of one run. INVALID_ARGUMENT when the duration is out of
// [kMinDuration, kMaxDuration], when fewer than two clusters are given, or when the pattern
// needs what the input lacks (a broker kind, the initial active cluster among the clusters).
[[nodiscard]] absl::StatusOr<Schedule> BuildSchedule(const ScheduleInput& input);

// A deterministic random stream (SplitMix64): the same seed gives the same numbers everywhere.
class SeededRandom {
 public:
  explicit SeededRandom(uint64_t seed) : state_(seed) {}
  uint64_t Next();
  // Uniform in [low, high] (inclusive); low when high <= low.
  int64_t Uniform(int64_t low, int64_t high);
  // True with probability numerator/denominator.
  bool Chance(int64_t numerator, int64_t denominator);

 private:
  uint64_t state_;
};

}  // namespace xdc::chaos
