// The chaos suite's workload and invariant checker (chaos/workload.h, chaos/checker.h) against
// two whole clusters in one process (tests/two_clusters.h): a clean run passes, a standby held
// back and a fabricated ledger are caught, and a forced failover during a partition is judged by
// its real RPO, the checker's counts agreeing with the product's own damage report.
//
// Fault points are process-global: "apply.hold.east" holds west's applier of east's stream and
// "apply.hold.west" east's applier of west's stream (control topics included), so arming both
// partitions the clusters.
#include <algorithm>
#include <cstdio>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "chaos/checker.h"
#include "chaos/fault_points.h"
#include "chaos/workload.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "replicator/kafka_client.h"
#include "tests/two_clusters.h"

namespace xdc::chaos {
namespace {

using ::testing::HasSubstr;

// Arms fault points for a scope; Release() ends it early.
class FaultScope {
 public:
  explicit FaultScope(std::vector<std::string> names) : names_(std::move(names)) {
    for (const std::string& name : names_) fault::Arm(name);
  }
  ~FaultScope() { Release(); }
  void Release() {
    for (const std::string& name : names_) fault::Disarm(name);
    names_.clear();
  }

 private:
  std::vector<std::string> names_;
};

WorkloadOptions Load(int workflows, double signal_fraction, uint64_t seed,
                     const std::string& prefix = "chaos") {
  WorkloadOptions options;
  options.workflows = workflows;
  options.signal_fraction = signal_fraction;
  options.seed = seed;
  options.workflow_prefix = prefix;
  return options;
}

CheckOptions Quiesce(absl::Duration timeout) {
  CheckOptions options;
  options.quiesce_timeout = timeout;
  return options;
}

CheckOptions AllowLostAppends() {
  CheckOptions options;
  options.allow_lost_appends = true;
  return options;
}

std::string Hold(const std::string& peer) { return std::string(fault::kApplyHoldPrefix) + peer; }

std::set<std::string> RequestIds(const std::vector<AckedWrite>& writes) {
  std::set<std::string> ids;
  for (const AckedWrite& w : writes) ids.insert(w.request_id);
  return ids;
}

class ChaosCheckerTest : public TwoClustersTest {
 protected:
  static constexpr absl::Duration kShortQuiesce = absl::Seconds(2);

  std::vector<ClusterEndpoint> Endpoints() const {
    return {{"east", east_->http_address()}, {"west", west_->http_address()}};
  }

  std::unique_ptr<Workload> MakeWorkload(WorkloadOptions options, const std::string& active) {
    options.namespace_name = kNamespace;
    // The address function reads west_: tests restart west only while no workload runs.
    auto address_of = [this](const std::string& cluster) {
      if (cluster == "east") return east_->http_address();
      if (cluster == "west" && west_ != nullptr) return west_->http_address();
      return std::string();
    };
    return std::make_unique<Workload>(std::move(options), std::vector<std::string>{"east", "west"},
                                      active, address_of);
  }

  // Runs a workload until it has `acks` acknowledgements covering every workflow, then stops it.
  std::vector<AckedWrite> RunUntil(Workload& workload, int64_t acks, int workflows) {
    workload.Start();
    EXPECT_TRUE(WaitUntil([&] {
      const std::vector<AckedWrite> ledger = workload.Ledger();
      std::set<std::string> touched;
      for (const AckedWrite& w : ledger) touched.insert(w.workflow_id);
      return static_cast<int64_t>(ledger.size()) >= acks &&
             static_cast<int>(touched.size()) == workflows;
    })) << workload.stats().acked
        << " acks; last unexpected: " << workload.stats().last_unexpected;
    workload.Stop();
    EXPECT_EQ(workload.stats().unexpected, 0) << workload.stats().last_unexpected;
    return workload.Ledger();
  }

  CheckResult Check(const std::vector<AckedWrite>& ledger, CheckOptions options = {}) {
    options.namespace_name = kNamespace;
    absl::StatusOr<CheckResult> result = WaitAndCheck(Endpoints(), ledger, options);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *std::move(result) : CheckResult();
  }
};

TEST_F(ChaosCheckerTest, ACleanRunPassesWithTheWorkloadsCounts) {
  std::unique_ptr<Workload> workload = MakeWorkload(Load(12, 0.3, 7), "east");
  const std::vector<AckedWrite> ledger = RunUntil(*workload, 300, 12);
  const Workload::Stats stats = workload->stats();
  EXPECT_EQ(stats.acked, static_cast<int64_t>(ledger.size()));
  EXPECT_EQ(stats.refused, 0);
  EXPECT_EQ(workload->active(), "east");
  EXPECT_EQ(RequestIds(ledger).size(), ledger.size()) << "request ids must be unique";

  const CheckResult result = Check(ledger);
  EXPECT_TRUE(result.passed()) << result.Summary();
  EXPECT_TRUE(result.quiesced);
  EXPECT_EQ(result.workflows, 12);
  EXPECT_EQ(result.acked_writes, stats.acked);
  int64_t signals = 0;
  for (const AckedWrite& w : ledger) {
    signals += w.kind == AckedWrite::Kind::kSignal;
    EXPECT_EQ(w.version, 1);
    EXPECT_EQ(w.cluster, "east");
  }
  EXPECT_EQ(result.acked_signals, signals);
  EXPECT_GT(signals, 0);
  EXPECT_EQ(result.acked_appends, stats.acked - signals);
  EXPECT_EQ(result.events, stats.acked);  // every event on the branches is an acknowledged write
  EXPECT_EQ(result.appends_on_losing_branches, 0);
  EXPECT_EQ(result.workflows_forked, 0);
  EXPECT_EQ(result.dlq_entries.at("east"), 0);
  EXPECT_EQ(result.dlq_entries.at("west"), 0);
  EXPECT_EQ(result.version_owners.at(1), "east");
  EXPECT_THAT(result.Summary(), HasSubstr("PASSED"));
}

TEST_F(ChaosCheckerTest, TheWorkloadFollowsAGracefulHandover) {
  std::unique_ptr<Workload> workload = MakeWorkload(Load(8, 0.3, 21), "east");
  workload->Start();
  ASSERT_TRUE(WaitUntil([&] { return workload->stats().acked >= 50; }));
  FailoverRequest handover;
  handover.set_target_cluster("west");
  NamespaceRecord started;
  ASSERT_TRUE(east_client_
                  ->Call("POST", absl::StrCat("/v1/namespaces/", kNamespace, "/failover"),
                         &handover, started)
                  .ok());
  ASSERT_TRUE(WaitUntil([&] {
    int64_t on_west = 0;
    for (const AckedWrite& w : workload->Ledger()) on_west += w.version == 2;
    return on_west >= 50;
  })) << workload->stats().last_unexpected;
  workload->Stop();
  const Workload::Stats stats = workload->stats();
  EXPECT_EQ(workload->active(), "west");
  EXPECT_GT(stats.refused, 0);  // 503s during the handover, then east's 409 naming west
  EXPECT_EQ(stats.unexpected, 0) << stats.last_unexpected;
  EXPECT_EQ(stats.unknown_outcome + stats.transport_errors, 0);

  const CheckResult result = Check(workload->Ledger());
  EXPECT_TRUE(result.passed()) << result.Summary();
  EXPECT_EQ(result.acked_writes, stats.acked);
  EXPECT_EQ(result.workflows_forked, 0);
  EXPECT_EQ(result.version_owners, (std::map<int64_t, std::string>{{1, "east"}, {2, "west"}}));
}

TEST_F(ChaosCheckerTest, AWorkloadWhoseActiveClusterIsDownFindsTheActiveOne) {
  StopWest();
  std::unique_ptr<Workload> workload = MakeWorkload(Load(4, 0.3, 9), "west");
  const std::vector<AckedWrite> ledger = RunUntil(*workload, 20, 4);
  const Workload::Stats stats = workload->stats();
  EXPECT_GE(stats.transport_errors, Workload::kTransportErrorsBeforeProbing);
  EXPECT_EQ(stats.unknown_outcome, 0);  // nothing was sent to a cluster without an address
  EXPECT_EQ(workload->active(), "east");
  for (const AckedWrite& w : ledger) EXPECT_EQ(w.cluster, "east");
  ASSERT_NO_FATAL_FAILURE(StartWest());
  const CheckResult result = Check(ledger);
  EXPECT_TRUE(result.passed()) << result.Summary();
}

TEST_F(ChaosCheckerTest, AHeldBackStandbyIsReportedUntilItCatchesUp) {
  // West restarts with its applier of east's stream held, so it consumes nothing from east.
  StopWest();
  FaultScope hold({Hold("east")});
  ASSERT_NO_FATAL_FAILURE(StartWest());
  std::unique_ptr<Workload> workload = MakeWorkload(Load(6, 0.3, 3), "east");
  const std::vector<AckedWrite> ledger = RunUntil(*workload, 60, 6);

  const CheckResult held = Check(ledger, Quiesce(kShortQuiesce));
  EXPECT_FALSE(held.passed());
  EXPECT_FALSE(held.quiesced);
  EXPECT_TRUE(held.violation_counts.contains(kInvariantQuiesced)) << held.Summary();
  EXPECT_EQ(held.violation_counts.at(kInvariantConverged), 6) << held.Summary();
  EXPECT_EQ(held.violation_counts.at(kInvariantAcknowledgedPresent),
            static_cast<int64_t>(ledger.size()))
      << held.Summary();
  std::set<std::string> named;
  for (const Violation& v : held.violations) {
    if (v.invariant == kInvariantConverged) {
      EXPECT_EQ(v.cluster, "west");
      EXPECT_THAT(v.detail, HasSubstr("the run is on east but not here"));
      named.insert(v.workflow.substr(0, v.workflow.find('/')));
    }
    if (v.invariant == kInvariantAcknowledgedPresent) {
      EXPECT_EQ(v.cluster, "west");
      EXPECT_THAT(v.detail, HasSubstr("the run is not on this cluster"));
    }
  }
  EXPECT_EQ(named.size(), 6u);
  EXPECT_TRUE(named.contains("chaos-000000"));
  const std::string summary = held.Summary();
  for (const char* invariant :
       {kInvariantQuiesced, kInvariantConverged, kInvariantAcknowledgedPresent}) {
    EXPECT_THAT(summary, HasSubstr(invariant));
  }
  google::protobuf::Struct json;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(held.ToJson(), &json).ok())
      << held.ToJson();
  EXPECT_FALSE(json.fields().at("passed").bool_value());
  EXPECT_EQ(
      json.fields().at("violation_counts").struct_value().fields().at("converged").number_value(),
      6);

  hold.Release();
  const CheckResult released = Check(ledger);
  EXPECT_TRUE(released.passed()) << released.Summary();
  EXPECT_TRUE(released.quiesced);
}

TEST_F(ChaosCheckerTest, AFabricatedLedgerIsCaught) {
  std::unique_ptr<Workload> workload = MakeWorkload(Load(4, 0.3, 5), "east");
  const std::vector<AckedWrite> ledger = RunUntil(*workload, 40, 4);
  ASSERT_TRUE(Check(ledger).passed());

  // A write the clusters never saw: past the end of a real run, and in a run that does not exist.
  std::vector<AckedWrite> fabricated = ledger;
  AckedWrite never = ledger.back();
  never.event_id += 1000;
  never.request_id = "fabricated-1";
  fabricated.push_back(never);
  AckedWrite nowhere = ledger.back();
  nowhere.run_id = "no-such-run";
  nowhere.request_id = "fabricated-2";
  fabricated.push_back(nowhere);
  const CheckResult missing = Check(fabricated);
  EXPECT_EQ(missing.violation_counts,
            (std::map<std::string, int64_t>{{kInvariantAcknowledgedPresent, 2}}))
      << missing.Summary();
  ASSERT_EQ(missing.violations.size(), 2u);
  for (const Violation& v : missing.violations) {
    EXPECT_EQ(v.cluster, "east,west");  // the same finding on both, reported once
  }
  EXPECT_THAT(missing.Summary(), HasSubstr("fabricated-1"));
  EXPECT_THAT(missing.Summary(), HasSubstr("fabricated-2): the run is not on this cluster"));

  // Two clusters acknowledging one version: west never owned version 1.
  std::vector<AckedWrite> two_writers = ledger;
  two_writers.front().cluster = "west";
  const CheckResult split = Check(two_writers);
  EXPECT_EQ(split.violation_counts,
            (std::map<std::string, int64_t>{{kInvariantOneWriterPerVersion, 2}}))
      << split.Summary();
  EXPECT_THAT(split.Summary(), HasSubstr("version 1 was acknowledged by east ("));
  EXPECT_THAT(split.Summary(), HasSubstr("which the failover history gives to east"));
}

// A message on east's stream that is not a frame: west parks it (PARK_REASON_CORRUPT_MESSAGE).
TEST_F(ChaosCheckerTest, ADlqEntryIsAViolationUnlessTheScenarioExplainsIt) {
  std::unique_ptr<Workload> workload = MakeWorkload(Load(4, 0.3, 17), "east");
  const std::vector<AckedWrite> ledger = RunUntil(*workload, 20, 4);
  absl::StatusOr<std::unique_ptr<KafkaProducer>> producer =
      KafkaProducer::Create(east_->kafka_bootstrap(), "test", [](uint64_t, const absl::Status&) {});
  ASSERT_TRUE(producer.ok()) << producer.status();
  ASSERT_TRUE((*producer)->Produce(HistoryTopic("east"), 0, "not a frame", 1).ok());
  ASSERT_TRUE((*producer)->Flush(10000).ok());
  ASSERT_TRUE(WaitUntil([&] { return GetDlq(*west_client_).tasks_size() == 1; }));

  const CheckResult unexplained = Check(ledger);
  EXPECT_EQ(unexplained.violation_counts,
            (std::map<std::string, int64_t>{{kInvariantDlqExplained, 1}}))
      << unexplained.Summary();
  ASSERT_EQ(unexplained.violations.size(), 1u);
  EXPECT_EQ(unexplained.violations[0].cluster, "west");
  EXPECT_THAT(unexplained.violations[0].detail, HasSubstr("from east shard 0 offset"));
  EXPECT_THAT(unexplained.violations[0].detail, HasSubstr("PARK_REASON_CORRUPT_MESSAGE"));
  EXPECT_EQ(unexplained.dlq_entries.at("west"), 1);

  CheckOptions explained;
  explained.allowed_dlq_reasons = {"PARK_REASON_CORRUPT_MESSAGE"};
  const CheckResult allowed = Check(ledger, explained);
  EXPECT_TRUE(allowed.passed()) << allowed.Summary();
  EXPECT_EQ(allowed.dlq_entries.at("west"), 1);
}

// Both sides of a partition accept writes to the same workflows after a forced failover; after
// the heal, the old active's appends on workflows both wrote are lost and its signals reapplied.
// West is the old active: a west restarted with both links held cannot learn of the failover, so
// the split is certain (an applier already polling when a hold is armed may still read what
// arrives during that poll: Arm() does not wait for the appliers to notice).
TEST_F(ChaosCheckerTest, AForcedFailoverDuringASplitIsJudgedByItsRpo) {
  constexpr int kWorkflows = 8;
  FailoverRequest handover;
  handover.set_target_cluster("west");
  NamespaceRecord started;
  ASSERT_TRUE(east_client_
                  ->Call("POST", absl::StrCat("/v1/namespaces/", kNamespace, "/failover"),
                         &handover, started)
                  .ok());
  ASSERT_TRUE(WaitUntil([&] {
    NamespaceRecord on_west;
    return west_client_->Call("GET", absl::StrCat("/v1/namespaces/", kNamespace), nullptr, on_west)
               .ok() &&
           on_west.active_cluster() == "west" && on_west.state() == NAMESPACE_STATE_ACTIVE;
  }));
  const WorkloadOptions base = Load(kWorkflows, 0.4, 11, "split");
  std::vector<AckedWrite> ledger = RunUntil(*MakeWorkload(base, "west"), 40, kWorkflows);
  WaitForConvergence();

  StopWest();
  FaultScope partition({Hold("east"), Hold("west")});
  ASSERT_NO_FATAL_FAILURE(StartWest());
  // West, restarted inside the partition, cannot hear east confirm its store: an operator lets
  // it write anyway (docs/control-plane.md#startup-check), which is what makes this split brain.
  SkipStartupCheckRequest skip;
  skip.set_reason("the test's split brain");
  StartupCheck skipped;
  ASSERT_TRUE(west_client_->Call("POST", "/v1/startup-check/skip", &skip, skipped).ok());
  FailoverRequest force;
  force.set_target_cluster("east");
  force.set_force(true);
  NamespaceRecord forced;
  ASSERT_TRUE(
      east_client_
          ->Call("POST", absl::StrCat("/v1/namespaces/", kNamespace, "/failover"), &force, forced)
          .ok());
  ASSERT_EQ(forced.failover_version(), 101);

  WorkloadOptions west_side = base;
  west_side.seed = 12;
  const std::vector<AckedWrite> on_west =
      RunUntil(*MakeWorkload(west_side, "west"), 30, kWorkflows);
  WorkloadOptions east_side = base;
  east_side.seed = 13;
  east_side.workflows = kWorkflows / 2;  // east writes half the workflows: the rest do not fork
  const std::vector<AckedWrite> on_east =
      RunUntil(*MakeWorkload(east_side, "east"), 20, kWorkflows / 2);
  for (const AckedWrite& w : on_west) ASSERT_EQ(w.version, 2) << w.cluster;
  for (const AckedWrite& w : on_east) ASSERT_EQ(w.version, 101) << w.cluster;
  partition.Release();

  // What must have happened: west's writes to a workflow at or after the first event east wrote
  // there in the split are on losing branches (east may have read west's very first writes from
  // a poll it began before the hold was armed; those precede east's and are not lost).
  std::map<std::string, int64_t> east_first;  // workflow -> first event id east wrote
  for (const AckedWrite& w : on_east) {
    auto [it, inserted] = east_first.try_emplace(w.workflow_id, w.event_id);
    if (!inserted) it->second = std::min(it->second, w.event_id);
  }
  std::set<std::string> forked;
  std::set<std::string> lost_appends;
  int64_t losing_signals = 0;
  for (const AckedWrite& w : on_west) {
    auto first = east_first.find(w.workflow_id);
    if (first == east_first.end() || w.event_id < first->second) continue;
    forked.insert(w.workflow_id);
    if (w.kind == AckedWrite::Kind::kAppend) lost_appends.insert(w.request_id);
    if (w.kind == AckedWrite::Kind::kSignal) ++losing_signals;
  }
  ASSERT_FALSE(lost_appends.empty());
  ASSERT_LE(lost_appends.size(), static_cast<size_t>(kMaxListedViolationsPerInvariant));
  ledger.insert(ledger.end(), on_west.begin(), on_west.end());
  ledger.insert(ledger.end(), on_east.begin(), on_east.end());

  const CheckResult allowed = Check(ledger, AllowLostAppends());
  EXPECT_TRUE(allowed.passed()) << allowed.Summary();
  EXPECT_EQ(allowed.workflows, kWorkflows);
  EXPECT_EQ(allowed.workflows_forked, static_cast<int64_t>(forked.size())) << allowed.Summary();
  EXPECT_EQ(allowed.appends_on_losing_branches, static_cast<int64_t>(lost_appends.size()));
  EXPECT_EQ(allowed.signals_on_losing_branches, losing_signals);
  EXPECT_EQ(allowed.signals_reapplied, losing_signals);
  EXPECT_EQ(allowed.reapplied_events, losing_signals);
  EXPECT_EQ(allowed.version_owners,
            (std::map<int64_t, std::string>{{1, "east"}, {2, "west"}, {101, "east"}}));
  EXPECT_THAT(allowed.Summary(), HasSubstr("acknowledged appends lost (RPO)"));
  std::fprintf(stderr, "%s", allowed.Summary().c_str());

  // The product's own damage report agrees (every event of the split was acknowledged).
  for (HttpClient* client : {east_client_.get(), west_client_.get()}) {
    DescribeNamespaceResponse described;
    ASSERT_TRUE(client
                    ->Call("GET", absl::StrCat("/v1/namespaces/", kNamespace, "/describe"), nullptr,
                           described)
                    .ok());
    ASSERT_EQ(described.damage_size(), 2);
    const FailoverDamage& damage = described.damage(1);
    EXPECT_EQ(damage.failover_version(), 101);
    EXPECT_EQ(damage.workflows_forked(), allowed.workflows_forked);
    EXPECT_EQ(damage.events_on_losing_branches(),
              allowed.appends_on_losing_branches + allowed.signals_on_losing_branches);
    EXPECT_EQ(damage.events_reapplied(), allowed.signals_reapplied);
  }

  // Without the allowance, exactly the lost appends are violations, each reported once.
  const CheckResult strict = Check(ledger);
  EXPECT_EQ(strict.violation_counts,
            (std::map<std::string, int64_t>{
                {kInvariantAcknowledgedPresent, static_cast<int64_t>(lost_appends.size())}}))
      << strict.Summary();
  std::set<std::string> reported;
  const std::regex request(R"(\(request (\S+)\): on a losing branch, lost)");
  for (const Violation& v : strict.violations) {
    EXPECT_EQ(v.cluster, "east,west");
    std::smatch match;
    ASSERT_TRUE(std::regex_search(v.detail, match, request)) << v.detail;
    reported.insert(match[1]);
  }
  EXPECT_EQ(reported, lost_appends);
}

TEST(ChaosReportTest, JsonParsesAndTheSummaryNamesTheViolatedInvariants) {
  CheckResult result;
  result.namespace_name = "orders";
  result.clusters = {"east", "west"};
  result.violations = {{kInvariantConverged, "west", "wf-1/run", "digest \"a\" vs b"},
                       {kInvariantDlqExplained, "east", "", "DLQ entry #1 ..."}};
  result.violation_counts = {{kInvariantConverged, 1}, {kInvariantDlqExplained, 1}};
  result.dlq_entries = {{"east", 1}, {"west", 0}};
  EXPECT_FALSE(result.passed());
  google::protobuf::Struct json;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(result.ToJson(), &json).ok())
      << result.ToJson();
  const auto& fields = json.fields();
  for (const char* field :
       {"passed", "namespace", "clusters", "quiesced", "quiesce_seconds", "counts", "dlq_entries",
        "version_owners", "violation_counts", "violations", "lost_appends"}) {
    EXPECT_TRUE(fields.contains(field)) << field;
  }
  EXPECT_EQ(fields.at("violations").list_value().values_size(), 2);
  EXPECT_EQ(fields.at("violations")
                .list_value()
                .values(0)
                .struct_value()
                .fields()
                .at("detail")
                .string_value(),
            "digest \"a\" vs b");
  EXPECT_TRUE(fields.at("counts").struct_value().fields().contains("appends_on_losing_branches"));
  const std::string summary = result.Summary();
  EXPECT_THAT(summary, HasSubstr("FAILED; violated: converged (1), dlq_explained (1)"));
  EXPECT_THAT(summary, HasSubstr("[converged] west wf-1/run"));

  CheckResult clean;
  EXPECT_TRUE(clean.passed());
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(clean.ToJson(), &json).ok());
  EXPECT_TRUE(json.fields().at("passed").bool_value());
  EXPECT_THAT(clean.Summary(), HasSubstr("PASSED"));
}

TEST(ChaosReportTest, RequestIdsAreFoundInAppendsAndSignals) {
  HistoryEvent append;
  append.set_event_type(TIMER_STARTED);
  append.set_attributes(absl::StrCat(kRequestIdMarker, "w1-7"));
  EXPECT_EQ(RequestIdOf(append), "w1-7");
  HistoryEvent signal;
  signal.set_event_type(WORKFLOW_EXECUTION_SIGNALED);
  SignalAttributes attributes;
  attributes.set_signal_name(std::string(kSignalName));
  attributes.set_input(absl::StrCat(kRequestIdMarker, "w1-8"));
  signal.set_attributes(attributes.SerializeAsString());
  EXPECT_EQ(RequestIdOf(signal), "w1-8");
  HistoryEvent other;
  other.set_event_type(TIMER_FIRED);
  other.set_attributes("x");
  EXPECT_EQ(RequestIdOf(other), std::nullopt);
  EXPECT_EQ(QueryEscape("a b/c&d=é"), "a%20b%2Fc%26d%3D%C3%A9");
}

}  // namespace
}  // namespace xdc::chaos
