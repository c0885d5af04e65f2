#include "chaos/schedule.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace xdc::chaos {
namespace {

// Mixed into the seed to derive the workload's seed, so the two streams differ.
constexpr uint64_t kWorkloadSeedSalt = 0x5bd1e9955bd1e995ULL;
// xdc-kafka-mock's broker ids start at 1; the runner starts it with one broker.
constexpr int32_t kMockBrokerId = 1;
// A cluster is left alone this long after one of its faults healed before the next one starts.
constexpr int64_t kSameTargetGapMs = 500;

// An inclusive range of milliseconds.
struct RangeMs {
  int64_t low;
  int64_t high;
};

// The bounds of each pattern's faults (how long they last, how far apart they start).
constexpr RangeMs kKillDownMs{500, 3000};
constexpr RangeMs kKillGapMs{1000, 3000};
constexpr RangeMs kPauseMs{500, 4000};
constexpr RangeMs kPauseGapMs{1000, 3000};
constexpr RangeMs kBrokerCrashMs{1000, 4000};
constexpr RangeMs kBrokerPauseMs{1000, 3000};
constexpr RangeMs kBrokerGapMs{2000, 4000};
constexpr RangeMs kBrokerDownMs{1000, 3000};
constexpr RangeMs kLatencyMs{2000, 5000};
constexpr RangeMs kRttMs{20, 300};
constexpr RangeMs kRequestErrorCount{1, 10};
constexpr RangeMs kMockFaultGapMs{1000, 3000};
constexpr RangeMs kPartitionMs{2000, 6000};
constexpr RangeMs kPartitionGapMs{1000, 3000};
constexpr RangeMs kDeliveryMs{2000, 5000};
constexpr RangeMs kDeliveryGapMs{1000, 2000};
constexpr RangeMs kStoreErrorMs{300, 2000};
constexpr RangeMs kStoreErrorGapMs{2000, 4000};
constexpr RangeMs kSplitPartitionMs{4000, 7000};
constexpr RangeMs kSplitForceAfterMs{1000, 2000};  // into the partition
constexpr int64_t kSplitOldActiveWritesMs = 1500;  // at least, after the forced failover
constexpr RangeMs kSplitGapMs{2000, 4000};
constexpr RangeMs kHandoverWindowMs{3000, 5000};  // time given to the target to decide
constexpr RangeMs kHandoverGapMs{500, 2000};
constexpr RangeMs kFailbackWindowMs{1500, 3000};
constexpr RangeMs kFailbackGapMs{500, 1500};
constexpr RangeMs kHandoverFaultWindowMs{4000, 8000};  // the handover and its fault
constexpr RangeMs kSourceFaultAfterMs{1, 50};     // a source's fault, after the handover starts
constexpr RangeMs kOtherFaultBeforeMs{100, 500};  // another's fault, before the handover starts
constexpr RangeMs kHandoverFaultMs{500, 3000};    // how long the fault lasts
constexpr RangeMs kHandoverFaultGapMs{1000, 2000};
constexpr int64_t kSelfTestLossStartMaxMs = 2000;  // the loss starts this soon, at the latest

std::string Seconds(int64_t ms) { return absl::StrFormat("%d.%03ds", ms / 1000, ms % 1000); }

// Shared state of one generator run.
struct Generator {
  const ScheduleInput& input;
  SeededRandom rng;
  int64_t begin_ms;  // first possible start
  int64_t end_ms;    // every heal at or before this
  std::vector<Step> steps;

  int64_t Pick(RangeMs range) { return rng.Uniform(range.low, range.high); }
  bool Chance(int64_t numerator, int64_t denominator) { return rng.Chance(numerator, denominator); }
  const std::string& PickCluster(const std::vector<std::string>& from) {
    return from[static_cast<size_t>(rng.Uniform(0, static_cast<int64_t>(from.size()) - 1))];
  }
  std::vector<std::string> OthersThan(const std::string& cluster) const {
    std::vector<std::string> others;
    for (const std::string& c : input.clusters) {
      if (c != cluster) others.push_back(c);
    }
    return others;
  }
  Step& Add(FaultKind kind, int64_t start_ms, int64_t length_ms) {
    Step step;
    step.kind = kind;
    step.start_ms = start_ms;
    step.heal_ms = start_ms + length_ms;
    steps.push_back(std::move(step));
    return steps.back();
  }
};

// Daemon faults on random clusters: a cluster is hit again only after it healed, so faults of
// different clusters may overlap (with two clusters, sometimes both are down at once).
void DaemonFaults(Generator& g, FaultKind kind, RangeMs length, RangeMs gap) {
  std::map<std::string, int64_t> free_at;
  for (int64_t t = g.begin_ms;;) {
    const std::string cluster = g.PickCluster(g.input.clusters);
    int64_t len = g.Pick(length);
    const int64_t start = std::max(t, free_at.contains(cluster) ? free_at[cluster] : t);
    if (start + len > g.end_ms) len = g.end_ms - start;
    if (len < length.low) break;
    g.Add(kind, start, len).cluster = cluster;
    free_at[cluster] = start + len + kSameTargetGapMs;
    t = start + g.Pick(gap);
  }
}

// One fault at a time: `next` adds the faults of one round starting at `t` and returns how long
// the round lasts (0: it does not fit, stop).
template <typename Round>
void Sequential(Generator& g, RangeMs gap, Round next) {
  for (int64_t t = g.begin_ms; t <= g.end_ms;) {
    const int64_t len = next(t, g.end_ms - t);
    if (len <= 0) break;
    t += len + g.Pick(gap);
  }
}

// Clamps a drawn length to what is left; 0 when not even `range.low` fits.
int64_t Fit(int64_t drawn, int64_t left, RangeMs range) {
  const int64_t len = std::min(drawn, left);
  return len < range.low ? 0 : len;
}

void BrokerKill(Generator& g) {
  Sequential(g, kBrokerGapMs, [&g](int64_t t, int64_t left) -> int64_t {
    const bool crash = g.Chance(2, 3);
    const RangeMs range = crash ? kBrokerCrashMs : kBrokerPauseMs;
    const int64_t len = Fit(g.Pick(range), left, range);
    if (len > 0) g.Add(crash ? FaultKind::kCrashBroker : FaultKind::kPauseBroker, t, len);
    return len;
  });
}

void BrokerFaults(Generator& g) {
  Sequential(g, kMockFaultGapMs, [&g](int64_t t, int64_t left) -> int64_t {
    switch (g.rng.Uniform(0, 3)) {
      case 0: {
        const int64_t len = Fit(g.Pick(kBrokerDownMs), left, kBrokerDownMs);
        if (len > 0) g.Add(FaultKind::kBrokerDown, t, len).broker_id = kMockBrokerId;
        return len;
      }
      case 1: {
        const int64_t len = Fit(g.Pick(kLatencyMs), left, kLatencyMs);
        if (len == 0) return 0;
        Step& step = g.Add(FaultKind::kBrokerLatency, t, len);
        step.broker_id = kMockBrokerId;
        step.rtt_ms = static_cast<int32_t>(g.Pick(kRttMs));
        return len;
      }
      case 2: {
        static constexpr const char* kApis[] = {"produce", "fetch", "metadata"};
        Step& step = g.Add(FaultKind::kRequestErrors, t, 0);
        step.api = kApis[g.rng.Uniform(0, 2)];
        step.count = static_cast<int32_t>(g.Pick(kRequestErrorCount));
        return 1;  // instantaneous; the gap follows
      }
      default: {
        const int64_t len = Fit(g.Pick(kBrokerPauseMs), left, kBrokerPauseMs);
        if (len > 0) g.Add(FaultKind::kPauseBroker, t, len);
        return len;
      }
    }
  });
}

void AddPartition(Generator& g, int64_t t, int64_t len, const std::string& a,
                  const std::string& b) {
  Step& step = g.Add(FaultKind::kPartition, t, len);
  step.cluster = a;
  step.peer = b;
}

void Partition(Generator& g) {
  Sequential(g, kPartitionGapMs, [&g](int64_t t, int64_t left) -> int64_t {
    const int64_t len = Fit(g.Pick(kPartitionMs), left, kPartitionMs);
    if (len == 0) return 0;
    const std::string a = g.PickCluster(g.input.clusters);
    const std::vector<std::string> others = g.OthersThan(a);
    if (others.size() > 1 && g.Chance(1, 2)) {
      for (const std::string& b : others) AddPartition(g, t, len, a, b);  // a is isolated
    } else {
      AddPartition(g, t, len, a, g.PickCluster(others));
    }
    return len;
  });
}

void DeliveryFaults(Generator& g) {
  const std::vector<std::string> standbys = g.OthersThan(g.input.initial_active);
  Sequential(g, kDeliveryGapMs, [&](int64_t t, int64_t left) -> int64_t {
    const int64_t len = Fit(g.Pick(kDeliveryMs), left, kDeliveryMs);
    if (len == 0) return 0;
    const std::string cluster = g.PickCluster(standbys);
    const int64_t which = g.rng.Uniform(0, 2);  // duplicate, reorder, or both
    for (int64_t i = 0; i < 2; ++i) {
      if (which != 2 && which != i) continue;
      Step& step = g.Add(FaultKind::kFaultPoint, t, len);
      step.cluster = cluster;
      step.fault_point = i == 0 ? kFaultDuplicateDelivery : kFaultReorderDelivery;
    }
    return len;
  });
}

void StoreErrors(Generator& g) {
  Sequential(g, kStoreErrorGapMs, [&g](int64_t t, int64_t left) -> int64_t {
    const int64_t len = Fit(g.Pick(kStoreErrorMs), left, kStoreErrorMs);
    if (len == 0) return 0;
    Step& step = g.Add(FaultKind::kFaultPoint, t, len);
    step.cluster = g.PickCluster(g.input.clusters);
    step.fault_point = kFaultStoreWriteError;
    return len;
  });
}

// The active cluster is cut off from all others; a standby is forced active while the old
// active still takes writes; then the partition heals. Repeated from the new active.
void SplitBrain(Generator& g) {
  std::string active = g.input.initial_active;
  Sequential(g, kSplitGapMs, [&](int64_t t, int64_t left) -> int64_t {
    const int64_t len = Fit(g.Pick(kSplitPartitionMs), left, kSplitPartitionMs);
    if (len == 0) return 0;
    const std::vector<std::string> others = g.OthersThan(active);
    for (const std::string& other : others) AddPartition(g, t, len, active, other);
    const int64_t force_after = std::min(g.Pick(kSplitForceAfterMs), len - kSplitOldActiveWritesMs);
    const std::string target = g.PickCluster(others);
    g.Add(FaultKind::kForcedFailover, t + force_after, 0).cluster = target;
    active = target;
    return len;
  });
}

void HandoverUnderLoad(Generator& g) {
  std::string active = g.input.initial_active;
  Sequential(g, kHandoverGapMs, [&](int64_t t, int64_t left) -> int64_t {
    const int64_t len = Fit(g.Pick(kHandoverWindowMs), left, kHandoverWindowMs);
    if (len == 0) return 0;
    active = g.PickCluster(g.OthersThan(active));
    g.Add(FaultKind::kHandover, t, len).cluster = active;
    return len;
  });
}

// East -> west -> east, as many round trips as fit; the namespace always ends where it started.
void Failback(Generator& g) {
  const std::string home = g.input.initial_active;
  const std::string away = g.OthersThan(home).front();
  Sequential(g, kFailbackGapMs, [&](int64_t t, int64_t left) -> int64_t {
    int64_t out = g.Pick(kFailbackWindowMs);
    int64_t gap = g.Pick(kFailbackGapMs);
    int64_t back = g.Pick(kFailbackWindowMs);
    if (out + gap + back > left) {  // squeeze the round trip into what is left
      gap = kFailbackGapMs.low;
      out = back = (left - gap) / 2;
      if (out < kFailbackWindowMs.low) return 0;
    }
    g.Add(FaultKind::kHandover, t, out).cluster = away;
    g.Add(FaultKind::kHandover, t + out + gap, back).cluster = home;
    return out + gap + back;
  });
}

// A graceful handover while a daemon is SIGKILLed or SIGSTOPped: the target or a third cluster
// goes down just before the handover is sent (the target cannot decide until it is back), or the
// source goes down just after (while its markers travel). The fault heals before the runner
// awaits the decision. The handover completes or is cancelled through the target; either way
// nothing acknowledged is lost and nothing forks.
void HandoverFaults(Generator& g) {
  std::string active = g.input.initial_active;
  Sequential(g, kHandoverFaultGapMs, [&](int64_t t, int64_t left) -> int64_t {
    const int64_t len = Fit(g.Pick(kHandoverFaultWindowMs), left, kHandoverFaultWindowMs);
    if (len == 0) return 0;
    const std::string source = active;
    active = g.PickCluster(g.OthersThan(source));
    const std::string victim = g.PickCluster(g.input.clusters);
    const FaultKind kind = g.Chance(1, 2) ? FaultKind::kKillDaemon : FaultKind::kPauseDaemon;
    const int64_t fault_len = g.Pick(kHandoverFaultMs);
    if (victim == source) {
      const int64_t after = g.Pick(kSourceFaultAfterMs);
      g.Add(FaultKind::kHandover, t, len).cluster = active;
      g.Add(kind, t + after, std::min(fault_len, len - after - 1)).cluster = victim;
    } else {
      const int64_t before = g.Pick(kOtherFaultBeforeMs);
      g.Add(kind, t, std::min(fault_len, len - 1)).cluster = victim;
      g.Add(FaultKind::kHandover, t + before, len - before).cluster = active;
    }
    return len;
  });
}

// The active cluster loses every fifth task it publishes and refuses to resend: its standbys
// never get those events. resend.refuse stays armed through the check so nothing repairs them.
void SelfTestLoss(Generator& g) {
  const int64_t len = g.end_ms - g.begin_ms;
  Step& refuse = g.Add(FaultKind::kFaultPoint, g.begin_ms, len);
  refuse.cluster = g.input.initial_active;
  refuse.fault_point = kFaultResendRefuse;
  refuse.heal_after_check = true;
  // The loss starts after the refusal is in place, at a seeded moment.
  const int64_t lose_after = g.rng.Uniform(1, std::min<int64_t>(kSelfTestLossStartMaxMs, len / 2));
  Step& lose = g.Add(FaultKind::kFaultPoint, g.begin_ms + lose_after, len - lose_after);
  lose.cluster = g.input.initial_active;
  lose.fault_point = kFaultPublishLoseTask;
}

}  // namespace

std::string FaultKindName(FaultKind kind) {
  switch (kind) {
    case FaultKind::kKillDaemon:
      return "kill-daemon";
    case FaultKind::kPauseDaemon:
      return "pause-daemon";
    case FaultKind::kCrashBroker:
      return "crash-broker";
    case FaultKind::kPauseBroker:
      return "pause-broker";
    case FaultKind::kBrokerDown:
      return "broker-down";
    case FaultKind::kBrokerLatency:
      return "broker-latency";
    case FaultKind::kRequestErrors:
      return "request-errors";
    case FaultKind::kPartition:
      return "partition";
    case FaultKind::kFaultPoint:
      return "fault-point";
    case FaultKind::kForcedFailover:
      return "forced-failover";
    case FaultKind::kHandover:
      return "handover";
  }
  return "unknown";
}

std::string Step::ToString() const {
  std::string what;
  switch (kind) {
    case FaultKind::kKillDaemon:
    case FaultKind::kPauseDaemon:
      what = cluster;
      break;
    case FaultKind::kCrashBroker:
    case FaultKind::kPauseBroker:
      break;
    case FaultKind::kBrokerDown:
      what = absl::StrCat("broker ", broker_id);
      break;
    case FaultKind::kBrokerLatency:
      what = absl::StrCat("broker ", broker_id, " rtt ", rtt_ms, "ms");
      break;
    case FaultKind::kRequestErrors:
      what = absl::StrCat(api, " x", count);
      break;
    case FaultKind::kPartition:
      what = absl::StrCat(cluster, " | ", peer);
      break;
    case FaultKind::kFaultPoint:
      what = absl::StrCat(fault_point, " on ", cluster);
      break;
    case FaultKind::kForcedFailover:
    case FaultKind::kHandover:
      what = absl::StrCat("to ", cluster);
      break;
  }
  std::string line = absl::StrCat("+", Seconds(start_ms), " ", FaultKindName(kind));
  if (!what.empty()) absl::StrAppend(&line, " ", what);
  if (heal_after_check) {
    absl::StrAppend(&line, ", healed after the check");
  } else if (!instantaneous()) {
    absl::StrAppend(&line, ", healed at +", Seconds(heal_ms), " (", Seconds(heal_ms - start_ms),
                    ")");
  }
  return line;
}

std::string Schedule::ToString() const {
  std::string out = absl::StrFormat(
      "schedule of %s: seed %d, %d clusters (%s), %s broker, fault window %s, workload seed %d, "
      "%d steps\n",
      scenario, seed, clusters.size(), absl::StrJoin(clusters, ","),
      std::string(BrokerKindName(broker)), Seconds(duration_ms), workload_seed, steps.size());
  for (const Step& step : steps) absl::StrAppend(&out, "  ", step.ToString(), "\n");
  return out;
}

uint64_t SeededRandom::Next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

int64_t SeededRandom::Uniform(int64_t low, int64_t high) {
  if (high <= low) return low;
  const uint64_t span = static_cast<uint64_t>(high - low) + 1;
  // Multiply-shift maps 64 random bits onto [0, span) with negligible bias (span is small).
  const unsigned __int128 product = static_cast<unsigned __int128>(Next()) * span;
  return low + static_cast<int64_t>(product >> 64);
}

bool SeededRandom::Chance(int64_t numerator, int64_t denominator) {
  return Uniform(0, denominator - 1) < numerator;
}

absl::StatusOr<Schedule> BuildSchedule(const ScheduleInput& input) {
  if (input.duration < kMinDuration || input.duration > kMaxDuration) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the fault window must be between ", absl::FormatDuration(kMinDuration), " and ",
        absl::FormatDuration(kMaxDuration), ", not ", absl::FormatDuration(input.duration)));
  }
  if (input.clusters.size() < 2) {
    return absl::InvalidArgumentError("a schedule needs at least two clusters");
  }
  if (std::find(input.clusters.begin(), input.clusters.end(), input.initial_active) ==
      input.clusters.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the initial active cluster '", input.initial_active,
                     "' is not one of the clusters ", absl::StrJoin(input.clusters, ",")));
  }
  if (input.pattern == Pattern::kBrokerKill && input.broker != BrokerKind::kReal) {
    return absl::InvalidArgumentError("broker crashes need the real broker (--broker real)");
  }
  if (input.pattern == Pattern::kBrokerFaults && input.broker != BrokerKind::kMock) {
    return absl::InvalidArgumentError("broker API faults need the mock broker (--broker mock)");
  }

  Schedule schedule;
  schedule.scenario = input.scenario;
  schedule.pattern = input.pattern;
  schedule.seed = input.seed;
  schedule.duration_ms = absl::ToInt64Milliseconds(input.duration);
  schedule.clusters = input.clusters;
  schedule.broker = input.broker;
  schedule.workload_seed = SeededRandom(input.seed ^ kWorkloadSeedSalt).Next();

  Generator g{input,
              SeededRandom(input.seed),
              absl::ToInt64Milliseconds(kWarmup),
              schedule.duration_ms - absl::ToInt64Milliseconds(kQuietTail),
              {}};
  switch (input.pattern) {
    case Pattern::kKillRestart:
      DaemonFaults(g, FaultKind::kKillDaemon, kKillDownMs, kKillGapMs);
      break;
    case Pattern::kPause:
      DaemonFaults(g, FaultKind::kPauseDaemon, kPauseMs, kPauseGapMs);
      break;
    case Pattern::kBrokerKill:
      BrokerKill(g);
      break;
    case Pattern::kBrokerFaults:
      BrokerFaults(g);
      break;
    case Pattern::kPartition:
      Partition(g);
      break;
    case Pattern::kDeliveryFaults:
      DeliveryFaults(g);
      break;
    case Pattern::kStoreErrors:
      StoreErrors(g);
      break;
    case Pattern::kSplitBrain:
      SplitBrain(g);
      break;
    case Pattern::kHandoverUnderLoad:
      HandoverUnderLoad(g);
      break;
    case Pattern::kFailback:
      Failback(g);
      break;
    case Pattern::kHandoverFaults:
      HandoverFaults(g);
      break;
    case Pattern::kSelfTestLoss:
      SelfTestLoss(g);
      break;
  }
  schedule.steps = std::move(g.steps);
  std::stable_sort(schedule.steps.begin(), schedule.steps.end(),
                   [](const Step& a, const Step& b) { return a.start_ms < b.start_ms; });
  return schedule;
}

}  // namespace xdc::chaos
