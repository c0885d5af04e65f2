// The chaos runner's schedules (chaos/schedule.h) and scenario table (chaos/scenarios.h): a seed
// replays (the same input gives the same schedule), different seeds explore different
// schedules, every step lies within the run, and every fault is healed before the check (except
// the self-test's one lasting fault, which exists so that the check fails).
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "chaos/fault_points.h"
#include "chaos/scenarios.h"
#include "chaos/schedule.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace xdc::chaos {
namespace {

using ::testing::HasSubstr;

constexpr int kSeedsPerCase = 200;
const std::vector<std::string> kNames = {"east", "west", "north"};
const absl::Duration kDurations[] = {kMinDuration, absl::Seconds(15), absl::Seconds(20),
                                     absl::Seconds(60), absl::Minutes(10)};

// Every (scenario, cluster count, broker) a run may use.
struct Case {
  const Scenario* scenario;
  int clusters;
  BrokerKind broker;
  std::string Name() const {
    return absl::StrCat(scenario->name, "/", clusters, "c/", std::string(BrokerKindName(broker)));
  }
};

std::vector<Case> AllCases() {
  std::vector<Case> cases;
  for (const Scenario& scenario : Scenarios()) {
    for (int clusters : scenario.cluster_counts) {
      for (BrokerKind broker : {BrokerKind::kMock, BrokerKind::kReal}) {
        if (RunsOn(scenario, broker)) cases.push_back({&scenario, clusters, broker});
      }
    }
  }
  return cases;
}

ScheduleInput InputOf(const Case& c, uint64_t seed, absl::Duration duration) {
  ScheduleInput input;
  input.scenario = c.scenario->name;
  input.pattern = c.scenario->pattern;
  input.seed = seed;
  input.duration = duration;
  input.clusters.assign(kNames.begin(), kNames.begin() + c.clusters);
  input.initial_active = "east";
  input.broker = c.broker;
  return input;
}

Schedule Build(const Case& c, uint64_t seed, absl::Duration duration) {
  absl::StatusOr<Schedule> schedule = BuildSchedule(InputOf(c, seed, duration));
  EXPECT_TRUE(schedule.ok()) << c.Name() << " seed " << seed << ": " << schedule.status();
  return schedule.ok() ? *schedule : Schedule();
}

TEST(ChaosSeededRandomTest, IsSplitMix64) {
  // The published first outputs of SplitMix64 from state 0: a schedule printed today replays on
  // any later build only while this holds.
  SeededRandom random(0);
  EXPECT_EQ(random.Next(), 0xe220a8397b1dcdafULL);
  EXPECT_EQ(random.Next(), 0x6e789e6aa1b965f4ULL);
  EXPECT_EQ(random.Next(), 0x06c45d188009454fULL);
}

TEST(ChaosSeededRandomTest, UniformStaysInItsBounds) {
  SeededRandom random(7);
  std::set<int64_t> seen;
  for (int i = 0; i < 10000; ++i) {
    const int64_t value = random.Uniform(-3, 3);
    ASSERT_GE(value, -3);
    ASSERT_LE(value, 3);
    seen.insert(value);
  }
  EXPECT_EQ(seen.size(), 7u);
  EXPECT_EQ(random.Uniform(5, 5), 5);
  EXPECT_EQ(random.Uniform(5, 4), 5);
}

TEST(ChaosScheduleTest, TheSameSeedGivesTheSameSchedule) {
  for (const Case& c : AllCases()) {
    for (uint64_t seed : {uint64_t{0}, uint64_t{1}, uint64_t{42}, uint64_t{4294967295},
                          uint64_t{18446744073709551615ULL}}) {
      const Schedule first = Build(c, seed, absl::Seconds(20));
      const Schedule second = Build(c, seed, absl::Seconds(20));
      EXPECT_EQ(first, second) << c.Name() << " seed " << seed;
      EXPECT_EQ(first.ToString(), second.ToString());
      EXPECT_EQ(first.seed, seed);
    }
  }
}

TEST(ChaosScheduleTest, DifferentSeedsGiveDifferentSchedules) {
  constexpr int kSeeds = 20;
  for (const Case& c : AllCases()) {
    std::set<std::string> steps;
    std::set<uint64_t> workload_seeds;
    for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
      const Schedule schedule = Build(c, seed, absl::Seconds(20));
      std::string text;
      for (const Step& step : schedule.steps) absl::StrAppend(&text, step.ToString(), "\n");
      steps.insert(text);
      workload_seeds.insert(schedule.workload_seed);
    }
    EXPECT_EQ(workload_seeds.size(), static_cast<size_t>(kSeeds)) << c.Name();
    EXPECT_EQ(steps.size(), static_cast<size_t>(kSeeds)) << c.Name();
  }
}

TEST(ChaosScheduleTest, EveryStepIsWithinTheRunAndNamesRealTargets) {
  const int64_t warmup = absl::ToInt64Milliseconds(kWarmup);
  const int64_t tail = absl::ToInt64Milliseconds(kQuietTail);
  for (const Case& c : AllCases()) {
    const std::set<std::string> names(kNames.begin(), kNames.begin() + c.clusters);
    for (absl::Duration duration : kDurations) {
      for (uint64_t seed = 0; seed < kSeedsPerCase; ++seed) {
        const Schedule schedule = Build(c, seed, duration);
        ASSERT_FALSE(schedule.steps.empty())
            << c.Name() << " seed " << seed << " " << absl::FormatDuration(duration);
        int64_t previous_start = 0;
        for (const Step& step : schedule.steps) {
          SCOPED_TRACE(absl::StrCat(c.Name(), " seed ", seed, ": ", step.ToString()));
          EXPECT_GE(step.start_ms, warmup);
          EXPECT_GE(step.heal_ms, step.start_ms);
          EXPECT_LE(step.heal_ms, schedule.duration_ms - tail);
          EXPECT_GE(step.start_ms, previous_start) << "steps are sorted by start";
          previous_start = step.start_ms;
          switch (step.kind) {
            case FaultKind::kKillDaemon:
            case FaultKind::kPauseDaemon:
            case FaultKind::kFaultPoint:
            case FaultKind::kForcedFailover:
            case FaultKind::kHandover:
              EXPECT_TRUE(names.contains(step.cluster));
              break;
            case FaultKind::kPartition:
              EXPECT_TRUE(names.contains(step.cluster));
              EXPECT_TRUE(names.contains(step.peer));
              EXPECT_NE(step.cluster, step.peer);
              break;
            case FaultKind::kCrashBroker:
              EXPECT_EQ(c.broker, BrokerKind::kReal) << "the mock cannot restart";
              break;
            case FaultKind::kBrokerDown:
            case FaultKind::kBrokerLatency:
            case FaultKind::kRequestErrors:
              EXPECT_EQ(c.broker, BrokerKind::kMock) << "only the mock has a control API";
              break;
            case FaultKind::kPauseBroker:
              break;
          }
          if (step.kind == FaultKind::kRequestErrors) {
            EXPECT_THAT((std::set<std::string>{"produce", "fetch", "metadata"}),
                        ::testing::Contains(step.api));
            EXPECT_GT(step.count, 0);
          }
          if (step.kind == FaultKind::kFaultPoint) {
            EXPECT_FALSE(step.fault_point.empty());
          }
        }
      }
    }
  }
}

// What a fault holds while it is in force: two faults on the same thing must not overlap, or the
// first one's heal would end the second one early.
std::string Resource(const Step& step) {
  switch (step.kind) {
    case FaultKind::kKillDaemon:
    case FaultKind::kPauseDaemon:
      return absl::StrCat("daemon ", step.cluster);
    case FaultKind::kCrashBroker:
    case FaultKind::kPauseBroker:
    case FaultKind::kBrokerDown:
    case FaultKind::kBrokerLatency:
      return "broker";
    case FaultKind::kPartition:
      return absl::StrCat("link ", std::min(step.cluster, step.peer), "|",
                          std::max(step.cluster, step.peer));
    case FaultKind::kFaultPoint:
      return absl::StrCat("point ", step.fault_point, " on ", step.cluster);
    case FaultKind::kHandover:
      return "namespace";
    case FaultKind::kRequestErrors:
    case FaultKind::kForcedFailover:
      return "";
  }
  return "";
}

TEST(ChaosScheduleTest, FaultsAreAlwaysHealedBeforeTheCheck) {
  for (const Case& c : AllCases()) {
    for (absl::Duration duration : kDurations) {
      for (uint64_t seed = 0; seed < kSeedsPerCase; ++seed) {
        const Schedule schedule = Build(c, seed, duration);
        std::map<std::string, int64_t> busy_until;
        for (const Step& step : schedule.steps) {
          SCOPED_TRACE(absl::StrCat(c.Name(), " seed ", seed, ": ", step.ToString()));
          // Healed within the fault window, so the heal runs before the workload stops and the
          // check starts; only the self-test keeps a fault through the check.
          if (step.heal_after_check) {
            EXPECT_EQ(c.scenario->pattern, Pattern::kSelfTestLoss);
          } else {
            EXPECT_LE(step.heal_ms, schedule.duration_ms);
          }
          const std::string resource = Resource(step);
          if (resource.empty()) continue;
          if (busy_until.contains(resource)) {
            EXPECT_GT(step.start_ms, busy_until[resource]) << "overlaps a fault on " << resource;
          }
          busy_until[resource] = step.heal_ms;
        }
      }
    }
  }
}

TEST(ChaosScheduleTest, SplitBrainForcesAFailoverWhileTheOldActiveIsCutOff) {
  const Scenario* scenario = FindScenario("split-brain");
  ASSERT_NE(scenario, nullptr);
  for (int clusters : scenario->cluster_counts) {
    for (uint64_t seed = 0; seed < kSeedsPerCase; ++seed) {
      const Schedule schedule =
          Build({scenario, clusters, BrokerKind::kMock}, seed, absl::Seconds(20));
      std::string active = "east";
      int failovers = 0;
      for (const Step& failover : schedule.steps) {
        if (failover.kind != FaultKind::kForcedFailover) continue;
        ++failovers;
        EXPECT_NE(failover.cluster, active);
        // Every other cluster is cut off from the old active around the failover, which still
        // writes for a while before the heal.
        int cut = 0;
        for (const Step& p : schedule.steps) {
          if (p.kind == FaultKind::kPartition && p.cluster == active &&
              p.start_ms < failover.start_ms && p.heal_ms >= failover.start_ms + 1500) {
            ++cut;
          }
        }
        EXPECT_EQ(cut, clusters - 1) << schedule.ToString();
        active = failover.cluster;
      }
      EXPECT_GE(failovers, 1) << schedule.ToString();
    }
  }
}

TEST(ChaosScheduleTest, HandoversAlwaysGoSomewhereElseAndFailbackComesHome) {
  for (const char* name : {"handover-under-load", "failback", "handover-faults"}) {
    const Scenario* scenario = FindScenario(name);
    ASSERT_NE(scenario, nullptr);
    for (int clusters : scenario->cluster_counts) {
      for (uint64_t seed = 0; seed < kSeedsPerCase; ++seed) {
        const Schedule schedule =
            Build({scenario, clusters, BrokerKind::kMock}, seed, absl::Seconds(20));
        std::string active = "east";
        for (const Step& step : schedule.steps) {
          if (step.kind != FaultKind::kHandover) continue;
          EXPECT_NE(step.cluster, active) << schedule.ToString();
          active = step.cluster;
        }
        if (scenario->pattern == Pattern::kFailback) {
          EXPECT_EQ(active, "east") << schedule.ToString();
          EXPECT_GE(schedule.steps.size(), 2u);
        }
      }
    }
  }
}

TEST(ChaosScheduleTest, TheSelfTestLosesTasksAndKeepsRefusingResendsThroughTheCheck) {
  const Scenario* scenario = FindScenario("self-test-loss");
  ASSERT_NE(scenario, nullptr);
  const Schedule schedule = Build({scenario, 2, BrokerKind::kMock}, 9, absl::Seconds(10));
  std::map<std::string, bool> lasting;  // fault point -> healed after the check
  for (const Step& step : schedule.steps) {
    ASSERT_EQ(step.kind, FaultKind::kFaultPoint);
    EXPECT_EQ(step.cluster, "east");
    lasting[step.fault_point] = step.heal_after_check;
  }
  EXPECT_EQ(lasting, (std::map<std::string, bool>{{std::string(fault::kResendRefuse), true},
                                                  {std::string(fault::kPublishLoseTask), false}}));
}

TEST(ChaosScheduleTest, FaultPointNamesAreTheDaemons) {
  std::set<std::string> used;
  for (const Case& c : AllCases()) {
    for (const Step& step : Build(c, 3, absl::Seconds(60)).steps) {
      if (step.kind == FaultKind::kFaultPoint) used.insert(step.fault_point);
    }
  }
  for (const std::string& point : used) EXPECT_TRUE(fault::IsKnown(point)) << point;
  EXPECT_TRUE(fault::IsKnown(std::string(fault::kApplyHoldPrefix) + "west"));
}

TEST(ChaosScheduleTest, RefusesWhatItCannotSchedule) {
  const Case kill{FindScenario("kill-restart"), 2, BrokerKind::kMock};
  ScheduleInput input = InputOf(kill, 1, absl::Seconds(5));
  EXPECT_THAT(BuildSchedule(input).status().message(), HasSubstr("fault window"));
  input = InputOf(kill, 1, absl::Seconds(20));
  input.clusters = {"east"};
  EXPECT_THAT(BuildSchedule(input).status().message(), HasSubstr("two clusters"));
  input = InputOf(kill, 1, absl::Seconds(20));
  input.initial_active = "south";
  EXPECT_THAT(BuildSchedule(input).status().message(), HasSubstr("south"));
  input = InputOf({FindScenario("broker-kill"), 2, BrokerKind::kReal}, 1, absl::Seconds(20));
  input.broker = BrokerKind::kMock;
  EXPECT_THAT(BuildSchedule(input).status().message(), HasSubstr("--broker real"));
  input = InputOf({FindScenario("broker-faults"), 2, BrokerKind::kMock}, 1, absl::Seconds(20));
  input.broker = BrokerKind::kReal;
  EXPECT_THAT(BuildSchedule(input).status().message(), HasSubstr("--broker mock"));
}

TEST(ChaosScheduleTest, PrintsOneLinePerStep) {
  const Schedule schedule =
      Build({FindScenario("kill-restart"), 2, BrokerKind::kMock}, 42, absl::Seconds(20));
  const std::string text = schedule.ToString();
  EXPECT_THAT(text, HasSubstr("schedule of kill-restart: seed 42, 2 clusters (east,west)"));
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'),
            static_cast<long>(schedule.steps.size()) + 1);
  EXPECT_THAT(schedule.steps.front().ToString(),
              ::testing::MatchesRegex("\\+[0-9]+\\.[0-9]{3}s kill-daemon (east|west), "
                                      "healed at \\+[0-9.]+s \\([0-9.]+s\\)"));
}

TEST(ChaosScenariosTest, TheTableIsConsistent) {
  std::set<std::string> names;
  for (const Scenario& s : Scenarios()) {
    EXPECT_TRUE(names.insert(s.name).second) << "duplicate " << s.name;
    EXPECT_FALSE(s.proves.empty()) << s.name;
    EXPECT_FALSE(s.cluster_counts.empty()) << s.name;
    for (int count : s.suite_cluster_counts) {
      EXPECT_THAT(s.cluster_counts, ::testing::Contains(count)) << s.name;
    }
    EXPECT_EQ(FindScenario(s.name), &s);
    EXPECT_EQ(s.allow_lost_appends, s.pattern == Pattern::kSplitBrain) << s.name;
  }
  EXPECT_EQ(FindScenario("no-such-scenario"), nullptr);
  EXPECT_FALSE(FindScenario("self-test-loss")->in_suite);
  EXPECT_TRUE(FindScenario("self-test-loss")->expect_violation);
  EXPECT_TRUE(RunsOn(*FindScenario("broker-kill"), BrokerKind::kReal));
  EXPECT_FALSE(RunsOn(*FindScenario("broker-kill"), BrokerKind::kMock));
  EXPECT_TRUE(RunsOn(*FindScenario("broker-faults"), BrokerKind::kMock));
  EXPECT_FALSE(RunsOn(*FindScenario("broker-faults"), BrokerKind::kReal));
  // Every pattern is some scenario's.
  std::set<Pattern> patterns;
  for (const Scenario& s : Scenarios()) patterns.insert(s.pattern);
  EXPECT_EQ(patterns.size(), 12u);
}

}  // namespace
}  // namespace xdc::chaos
