#include "chaos/scenarios.h"

namespace xdc::chaos {
namespace {

std::vector<Scenario> MakeScenarios() {
  std::vector<Scenario> table;
  {
    Scenario s;
    s.name = "kill-restart";
    s.proves =
        "SIGKILL of any xdcd, repeatedly, then a restart on the same data dir loses no "
        "acknowledged write and applies nothing twice";
    s.pattern = Pattern::kKillRestart;
    s.suite_cluster_counts = {2, 3};
    table.push_back(s);
  }
  {
    Scenario s;
    s.name = "pause";
    s.proves =
        "an xdcd frozen by SIGSTOP (a GC pause, a stalled VM) and resumed catches up and "
        "converges; its clients see timeouts, never a false acknowledgement";
    s.pattern = Pattern::kPause;
    table.push_back(s);
  }
  {
    Scenario s;
    s.name = "broker-kill";
    s.proves =
        "the Kafka broker SIGKILLed and restarted, or frozen, stalls replication but loses "
        "nothing: publishers re-send from the outbox, appliers resume from their stored offsets";
    s.pattern = Pattern::kBrokerKill;
    s.brokers = BrokerSupport::kRealOnly;
    table.push_back(s);
  }
  {
    Scenario s;
    s.name = "broker-faults";
    s.proves =
        "a broker that goes down and up, fails produce/fetch/metadata requests, answers slowly "
        "or freezes delays replication but loses and duplicates nothing";
    s.pattern = Pattern::kBrokerFaults;
    s.brokers = BrokerSupport::kMockOnly;
    table.push_back(s);
  }
  {
    Scenario s;
    s.name = "partition";
    s.proves =
        "two clusters (or one against all) that cannot see each other for a while converge "
        "once the partition heals; the active keeps taking writes throughout";
    s.pattern = Pattern::kPartition;
    s.suite_cluster_counts = {2, 3};
    table.push_back(s);
  }
  {
    Scenario s;
    s.name = "delivery-faults";
    s.proves =
        "standbys that receive every message twice, or adjacent messages swapped, apply each "
        "event exactly once and converge (redelivered offsets skipped, order restored)";
    s.pattern = Pattern::kDeliveryFaults;
    s.suite_cluster_counts = {2, 3};
    table.push_back(s);
  }
  {
    Scenario s;
    s.name = "store-errors";
    s.proves =
        "store write errors on any cluster refuse writes (never a false acknowledgement), halt "
        "appliers without losing a task, and a restart after the disk is fixed catches up";
    s.pattern = Pattern::kStoreErrors;
    s.suite_cluster_counts = {2, 3};
    table.push_back(s);
  }
  {
    Scenario s;
    s.name = "split-brain";
    s.proves =
        "a forced failover to a partitioned standby while the old active still takes writes "
        "converges after the heal: every acknowledged signal is on the winning branch "
        "(reapplied), only appends of the losing side are lost, and they are counted";
    s.pattern = Pattern::kSplitBrain;
    s.allow_lost_appends = true;
    s.writer_on_each_forced_failover = true;
    s.suite_duration = absl::Seconds(24);
    s.suite_cluster_counts = {2, 3};
    table.push_back(s);
  }
  {
    Scenario s;
    s.name = "handover-under-load";
    s.proves =
        "graceful handovers to random clusters while the load writes lose no acknowledged "
        "write and fork no workflow; each handover completes";
    s.pattern = Pattern::kHandoverUnderLoad;
    s.handovers_must_complete = true;
    s.suite_cluster_counts = {2, 3};
    table.push_back(s);
  }
  {
    Scenario s;
    s.name = "failback";
    s.proves =
        "graceful handovers east -> west -> east, repeated under load, bring the namespace home "
        "with nothing lost and no fork";
    s.pattern = Pattern::kFailback;
    s.handovers_must_complete = true;
    table.push_back(s);
  }
  {
    Scenario s;
    s.name = "handover-faults";
    s.proves =
        "graceful handovers whose source, target or a third cluster is SIGKILLed or frozen "
        "midway complete or are cancelled through the target, never guessed: nothing "
        "acknowledged is lost, nothing forks";
    s.pattern = Pattern::kHandoverFaults;
    s.suite_cluster_counts = {2, 3};
    table.push_back(s);
  }
  {
    Scenario s;
    s.name = "self-test-loss";
    s.proves =
        "the checker can fail: east loses every 5th task it publishes and refuses resends, so "
        "acknowledged events never reach west; the run must end violated (exit 1)";
    s.pattern = Pattern::kSelfTestLoss;
    s.cluster_counts = {2};
    s.in_suite = false;
    s.expect_violation = true;
    s.quiesce_timeout = absl::Seconds(8);  // it never quiesces: do not wait long
    table.push_back(s);
  }
  return table;
}

}  // namespace

const std::vector<Scenario>& Scenarios() {
  static const std::vector<Scenario>* const kTable = new std::vector<Scenario>(MakeScenarios());
  return *kTable;
}

const Scenario* FindScenario(std::string_view name) {
  for (const Scenario& scenario : Scenarios()) {
    if (scenario.name == name) return &scenario;
  }
  return nullptr;
}

bool RunsOn(const Scenario& scenario, BrokerKind broker) {
  switch (scenario.brokers) {
    case BrokerSupport::kAny:
      return true;
    case BrokerSupport::kRealOnly:
      return broker == BrokerKind::kReal;
    case BrokerSupport::kMockOnly:
      return broker == BrokerKind::kMock;
  }
  return false;
}

std::string BrokerSupportName(BrokerSupport support) {
  switch (support) {
    case BrokerSupport::kAny:
      return "any";
    case BrokerSupport::kRealOnly:
      return "real only";
    case BrokerSupport::kMockOnly:
      return "mock only";
  }
  return "?";
}

}  // namespace xdc::chaos
