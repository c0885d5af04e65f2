// Migration verification, repair, cutover and rollback (docs/migration.md):
//   - the digest tree and its comparison (protocol/content_digest.h), pure;
//   - the repair rule (protocol/run_repair.h), pure;
//   - `xdcctl migration verify [--repair] | cutover | rollback` against two in-process clusters.
#include <atomic>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "chaos/fault_points.h"
#include "protocol/content_digest.h"
#include "protocol/run_repair.h"
#include "protocol/shard_hash.h"
#include "protocol/version_history.h"
#include "replicator/xdcctl_migration.h"
#include "tests/armed_fault.h"
#include "tests/ledger_client.h"
#include "tests/run_command.h"
#include "tests/two_clusters.h"

namespace xdc {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAreArray;

// --- the tree ------------------------------------------------------------------------------------

// A run's state and its events, built in memory: branches given as version-history items
// (event id, version); event attributes name the run and the event unless overridden.
struct TestRun {
  WorkflowMutableState state;
  std::vector<google::protobuf::RepeatedPtrField<HistoryEvent>> events;  // per branch
};

TestRun MakeRun(const std::string& workflow_id, const std::string& run_id,
                const std::vector<std::vector<std::pair<int64_t, int64_t>>>& branches,
                int current = 0, WorkflowStatus status = WORKFLOW_STATUS_RUNNING) {
  TestRun run;
  run.state.mutable_key()->set_namespace_id("ns");
  run.state.mutable_key()->set_workflow_id(workflow_id);
  run.state.mutable_key()->set_run_id(run_id);
  run.state.set_status(status);
  VersionHistories* histories = run.state.mutable_version_histories();
  histories->set_current_index(current);
  for (const auto& items : branches) {
    VersionHistory* branch = histories->add_histories();
    google::protobuf::RepeatedPtrField<HistoryEvent>& events = run.events.emplace_back();
    int64_t id = 1;
    for (const auto& [last, version] : items) {
      VersionHistoryItem* item = branch->add_items();
      item->set_event_id(last);
      item->set_version(version);
      for (; id <= last; ++id) {
        HistoryEvent* event = events.Add();
        event->set_event_id(id);
        event->set_version(version);
        event->set_event_type(id == 1 ? WORKFLOW_EXECUTION_STARTED : TIMER_STARTED);
        event->set_attributes(absl::StrCat(workflow_id, "/", id, "/", version));
      }
    }
  }
  run.state.set_next_event_id(LastEventId(histories->histories(current)) + 1);
  return run;
}

RunDigest Leaf(const TestRun& run, bool current_run = true) {
  std::vector<BranchContent> branches;
  const VersionHistories& histories = run.state.version_histories();
  for (int i = 0; i < histories.histories_size(); ++i) {
    branches.push_back(BranchContent{.branch = &histories.histories(i),
                                     .events = &run.events[i],
                                     .current = i == histories.current_index()});
  }
  return MakeRunDigest(run.state, branches, current_run);
}

std::vector<TestRun> ManyRuns(int count) {
  std::vector<TestRun> runs;
  for (int i = 0; i < count; ++i) {
    runs.push_back(MakeRun(absl::StrCat("wf-", i), absl::StrCat("run-", i), {{{3 + i % 4, 1}}}));
  }
  return runs;
}

std::vector<RunDigest> Leaves(const std::vector<TestRun>& runs) {
  std::vector<RunDigest> leaves;
  for (const TestRun& run : runs) leaves.push_back(Leaf(run));
  return leaves;
}

// The leaves of `tree` in `buckets` (what a side answers to /v1/digest-leaves).
std::vector<RunDigest> LeavesOf(const DigestTree& tree, const std::vector<int32_t>& buckets) {
  std::vector<RunDigest> out;
  for (const RunDigest& leaf : tree.leaves()) {
    if (std::find(buckets.begin(), buckets.end(), leaf.bucket()) != buckets.end()) {
      out.push_back(leaf);
    }
  }
  return out;
}

google::protobuf::RepeatedPtrField<DigestBucket> BucketsOf(const DigestTree& tree) {
  return {tree.buckets().begin(), tree.buckets().end()};
}

TEST(ContentDigestTest, BucketOfARunIsStableAcrossBuilds) {
  // Pinned: both sides of a comparison must put a run in the same bucket, whatever their build.
  // The values were computed separately (FNV-1a 64 and murmur3 fmix64 written out in Python).
  EXPECT_EQ(DigestBucketFor("order-17", "5012a220198814ac7edaf1ef209c9e8e"), 51);
  EXPECT_EQ(DigestBucketFor("wf-1", "run-1"), 33);
  // The separator keeps ("ab", "c") and ("a", "bc") apart.
  EXPECT_NE(Leaf(MakeRun("ab", "c", {{{2, 1}}})).digest(),
            Leaf(MakeRun("a", "bc", {{{2, 1}}})).digest());
}

TEST(ContentDigestTest, EqualTreesHaveEqualRootsWhateverTheLeafOrder) {
  std::vector<RunDigest> leaves = Leaves(ManyRuns(200));
  std::vector<RunDigest> reversed(leaves.rbegin(), leaves.rend());
  const DigestTree a(leaves);
  const DigestTree b(reversed);
  EXPECT_EQ(a.root(), b.root());
  EXPECT_EQ(a.root(), DigestRoot(BucketsOf(a)));
  EXPECT_GT(a.buckets().size(), 32u);  // 200 runs spread over the 64 buckets
  EXPECT_THAT(DifferingBuckets(BucketsOf(a), BucketsOf(b)), ::testing::IsEmpty());
  EXPECT_THAT(DiffRuns(a.leaves(), b.leaves(), 0), ::testing::IsEmpty());
}

TEST(ContentDigestTest, OneDifferingEventIsFoundInItsBucketOnly) {
  std::vector<TestRun> source = ManyRuns(200);
  std::vector<TestRun> target = source;
  (*target[57].events[0].Mutable(1)->mutable_attributes()) = "corrupted";
  const DigestTree a(Leaves(source));
  const DigestTree b(Leaves(target));
  ASSERT_NE(a.root(), b.root());
  const int32_t bucket = DigestBucketFor("wf-57", "run-57");
  const std::vector<int32_t> differing = DifferingBuckets(BucketsOf(a), BucketsOf(b));
  ASSERT_EQ(differing, std::vector<int32_t>{bucket});
  // Only that bucket's leaves are compared in detail.
  std::vector<RunDifference> diffs =
      DiffRuns(LeavesOf(a, differing), LeavesOf(b, differing), /*shard=*/3);
  ASSERT_EQ(diffs.size(), 1u);
  EXPECT_EQ(diffs[0].workflow_id(), "wf-57");
  EXPECT_EQ(diffs[0].run_id(), "run-57");
  EXPECT_EQ(diffs[0].shard(), 3);
  EXPECT_EQ(diffs[0].bucket(), bucket);
  EXPECT_EQ(diffs[0].kind(), RUN_DIFFERENCE_KIND_CONTENT_DIFFERS);
  EXPECT_THAT(diffs[0].detail(), HasSubstr("branch [("));
  EXPECT_THAT(diffs[0].detail(), HasSubstr("has different events"));
}

TEST(ContentDigestTest, RunsOnOneSideOnlyAreReportedWithTheirSide) {
  std::vector<TestRun> source = ManyRuns(50);
  std::vector<TestRun> target = source;
  target.erase(target.begin() + 10);  // missing on target
  target.push_back(MakeRun("extra", "run-x", {{{4, 1}}}, 0, WORKFLOW_STATUS_COMPLETED));
  const DigestTree a(Leaves(source));
  const DigestTree b(Leaves(target));
  const std::vector<int32_t> differing = DifferingBuckets(BucketsOf(a), BucketsOf(b));
  std::vector<RunDifference> diffs = DiffRuns(LeavesOf(a, differing), LeavesOf(b, differing), 0);
  ASSERT_EQ(diffs.size(), 2u);
  std::map<std::string, RunDifference> by_workflow;
  for (const RunDifference& d : diffs) by_workflow[d.workflow_id()] = d;
  EXPECT_EQ(by_workflow["wf-10"].kind(), RUN_DIFFERENCE_KIND_MISSING_ON_TARGET);
  EXPECT_THAT(by_workflow["wf-10"].detail(), HasSubstr("only on source"));
  EXPECT_EQ(by_workflow["extra"].kind(), RUN_DIFFERENCE_KIND_MISSING_ON_SOURCE);
  EXPECT_THAT(by_workflow["extra"].detail(), HasSubstr("retained out on source"));
  EXPECT_EQ(by_workflow["extra"].target_status(), WORKFLOW_STATUS_COMPLETED);
}

TEST(ContentDigestTest, EveryBranchCountsButNotTheLocalBranchOrder) {
  // The same two branches, learned in the other order: branch numbers are local.
  TestRun east = MakeRun("wf", "r", {{{2, 1}, {5, 2}}, {{4, 1}}}, /*current=*/0);
  TestRun west = MakeRun("wf", "r", {{{4, 1}}, {{2, 1}, {5, 2}}}, /*current=*/1);
  EXPECT_EQ(Leaf(east).digest(), Leaf(west).digest());
  // A losing branch that differs (not returned by /v1/history) makes the runs differ.
  TestRun corrupt = west;
  corrupt.events[0].Mutable(3)->set_attributes("other");
  ASSERT_NE(Leaf(east).digest(), Leaf(corrupt).digest());
  std::vector<RunDifference> diffs = DiffRuns({Leaf(east)}, {Leaf(corrupt)}, 0);
  ASSERT_EQ(diffs.size(), 1u);
  EXPECT_EQ(diffs[0].kind(), RUN_DIFFERENCE_KIND_CONTENT_DIFFERS);
  EXPECT_THAT(diffs[0].detail(), HasSubstr("branch [(4,1)] has different events"));
  // So does the origin of a reapplied event, and the status, and which branch is current.
  TestRun reapplied = east;
  reapplied.events[0].Mutable(4)->mutable_reapplied_from()->set_event_id(3);
  EXPECT_NE(Leaf(east).digest(), Leaf(reapplied).digest());
  TestRun closed = east;
  closed.state.set_status(WORKFLOW_STATUS_COMPLETED);
  EXPECT_NE(Leaf(east).digest(), Leaf(closed).digest());
  TestRun switched = east;
  switched.state.mutable_version_histories()->set_current_index(1);
  EXPECT_NE(Leaf(east).digest(), Leaf(switched).digest());
}

// Clusters that hold the same runs but point a workflow id at different runs continue different
// runs on a write without a run id: verify (and `compare`) report the run whose role differs.
TEST(ContentDigestTest, ADifferentCurrentRunIsADifference) {
  const TestRun run = MakeRun("wf-1", "run-1", {{{2, 1}}});
  const RunDigest current = Leaf(run);
  const RunDigest not_current = Leaf(run, /*current_run=*/false);
  EXPECT_NE(current.digest(), not_current.digest());
  std::vector<RunDifference> diffs = DiffRuns({current}, {not_current}, 0);
  ASSERT_EQ(diffs.size(), 1u);
  EXPECT_EQ(diffs[0].kind(), RUN_DIFFERENCE_KIND_CONTENT_DIFFERS);
  EXPECT_THAT(diffs[0].detail(), HasSubstr("current run on source only"));
}

TEST(ContentDigestTest, ARunBehindOnOneSideIsInFlightNotCorrupt) {
  TestRun source = MakeRun("wf", "r", {{{2, 1}, {7, 2}}});
  TestRun behind = MakeRun("wf", "r", {{{2, 1}, {5, 2}}});
  std::vector<RunDifference> diffs = DiffRuns({Leaf(source)}, {Leaf(behind)}, 0);
  ASSERT_EQ(diffs.size(), 1u);
  EXPECT_EQ(diffs[0].kind(), RUN_DIFFERENCE_KIND_IN_FLIGHT);
  EXPECT_THAT(diffs[0].detail(), HasSubstr("target behind"));
  // A shorter branch of another version history is not a prefix: a real difference.
  TestRun forked = MakeRun("wf", "r", {{{5, 1}}});
  EXPECT_EQ(DiffRuns({Leaf(source)}, {Leaf(forked)}, 0)[0].kind(),
            RUN_DIFFERENCE_KIND_CONTENT_DIFFERS);
}

TEST(ContentDigestTest, AnUnreadableRunMakesItsBucketDifferAndIsReported) {
  std::vector<TestRun> runs = ManyRuns(20);
  std::vector<RunDigest> source = Leaves(runs);
  std::vector<RunDigest> target = source;
  target[4] = MakeUnreadableRunDigest("wf-4", "run-4", "DATA_LOSS: event 2 does not parse");
  const DigestTree a(source);
  const DigestTree b(target);
  EXPECT_EQ(b.unreadable_runs(), 1);
  const std::vector<int32_t> differing = DifferingBuckets(BucketsOf(a), BucketsOf(b));
  ASSERT_EQ(differing, std::vector<int32_t>{DigestBucketFor("wf-4", "run-4")});
  std::vector<RunDifference> diffs = DiffRuns(LeavesOf(a, differing), LeavesOf(b, differing), 0);
  ASSERT_EQ(diffs.size(), 1u);
  EXPECT_EQ(diffs[0].kind(), RUN_DIFFERENCE_KIND_UNREADABLE);
  EXPECT_THAT(diffs[0].detail(), HasSubstr("unreadable on target: DATA_LOSS"));
}

// --- the repair rule ---------------------------------------------------------------------------

class RunRepairTest : public ::testing::Test {
 protected:
  RunRepairTest() {
    ns_.set_id("ns");
    ns_.set_active_cluster("east");
    ns_.set_failover_version(101);  // east owns 1, 101, ...; west 2, 102, ...
    ns_.set_state(NAMESPACE_STATE_ACTIVE);
    authority_.ns = &ns_;
    authority_.sender_initial_version = 1;
    authority_.failover_version_increment = 100;
  }

  // east's copy of `run` as a repair task for west.
  static ReplicationTask RepairTask(const TestRun& run) {
    ReplicationTask task;
    task.set_source_cluster("east");
    *task.mutable_workflow() = run.state.key();
    task.mutable_repair()->set_target_cluster("west");
    *task.mutable_repair()->mutable_state() = run.state;
    std::set<std::pair<int64_t, int64_t>> seen;
    for (const auto& events : run.events) {
      for (const HistoryEvent& event : events) {
        if (seen.insert({event.event_id(), event.version()}).second) {
          *task.mutable_repair()->add_events() = event;
        }
      }
    }
    return task;
  }

  static MapEventReader ReaderOf(const TestRun& run) {
    MapEventReader reader;
    for (const auto& events : run.events) {
      for (const HistoryEvent& event : events) reader.Add(event);
    }
    return reader;
  }

  NamespaceRecord ns_;
  RepairAuthority authority_;
};

TEST_F(RunRepairTest, ACorruptedCopyOfTheSendersEventsIsReplaced) {
  const TestRun source = MakeRun("wf", "r", {{{3, 1}, {6, 101}}});
  TestRun local = source;
  local.events[0].Mutable(4)->set_attributes("bit rot");  // event 5, version 101 (east's)
  RepairDecision decision =
      DecideRepair(local.state, ReaderOf(local), RepairTask(source), authority_);
  ASSERT_EQ(decision.action, RepairAction::kReplace) << decision.reason;
  EXPECT_EQ(decision.local_events_replaced, 1);
  EXPECT_EQ(decision.events.size(), 6u);
  EXPECT_EQ(decision.new_state.next_event_id(), 7);
  // A run missing here entirely is written whole.
  decision = DecideRepair(std::nullopt, MapEventReader(), RepairTask(source), authority_);
  ASSERT_EQ(decision.action, RepairAction::kReplace) << decision.reason;
  EXPECT_EQ(decision.local_events_replaced, 0);
}

TEST_F(RunRepairTest, OnlyTheActiveClusterMayRepair) {
  const TestRun source = MakeRun("wf", "r", {{{3, 1}}});
  for (auto change : std::vector<std::function<void(NamespaceRecord&)>>{
           [](NamespaceRecord& ns) { ns.set_active_cluster("west"); },
           [](NamespaceRecord& ns) { ns.set_state(NAMESPACE_STATE_HANDOVER); },
           [](NamespaceRecord& ns) { ns.set_failover_version(102); }}) {
    NamespaceRecord saved = ns_;
    change(ns_);
    RepairDecision decision =
        DecideRepair(source.state, ReaderOf(source), RepairTask(source), authority_);
    EXPECT_EQ(decision.action, RepairAction::kRefuse);
    EXPECT_THAT(decision.reason, HasSubstr("not the namespace's active cluster here"));
    ns_ = saved;
  }
  authority_.ns = nullptr;
  EXPECT_EQ(DecideRepair(source.state, ReaderOf(source), RepairTask(source), authority_).action,
            RepairAction::kRefuse);
}

TEST_F(RunRepairTest, NeverDropsAnotherClustersEventTheCopyLacks) {
  // West (version 2) wrote events 4-5 on a branch east's copy does not have: the only copy of
  // west's acknowledged writes may be here.
  const TestRun source = MakeRun("wf", "r", {{{3, 1}, {6, 101}}});
  TestRun local = MakeRun("wf", "r", {{{3, 1}, {6, 101}}, {{3, 1}, {5, 2}}});
  RepairDecision decision =
      DecideRepair(local.state, ReaderOf(local), RepairTask(source), authority_);
  EXPECT_EQ(decision.action, RepairAction::kRefuse);
  EXPECT_THAT(decision.reason, HasSubstr("local event 4 (version 2)"));
  EXPECT_THAT(decision.reason, HasSubstr("only copy of an acknowledged write"));
  // With the branch in the copy too, the repair goes ahead.
  decision = DecideRepair(local.state, ReaderOf(local), RepairTask(local), authority_);
  EXPECT_EQ(decision.action, RepairAction::kReplace) << decision.reason;
}

TEST_F(RunRepairTest, AnIncompleteCopyIsRefused) {
  const TestRun source = MakeRun("wf", "r", {{{4, 1}}});
  ReplicationTask task = RepairTask(source);
  task.mutable_repair()->mutable_events()->RemoveLast();
  RepairDecision decision = DecideRepair(std::nullopt, MapEventReader(), task, authority_);
  EXPECT_EQ(decision.action, RepairAction::kRefuse);
  EXPECT_THAT(decision.reason, HasSubstr("the copy lacks event 4"));
  task = RepairTask(source);
  task.mutable_workflow()->set_run_id("other");
  EXPECT_EQ(DecideRepair(std::nullopt, MapEventReader(), task, authority_).action,
            RepairAction::kRefuse);
}

// --- the store side of a repair ------------------------------------------------------------------

TEST(RepairStoreTest, AReplacingWriteLeavesExactlyItsEventsAndTouchesNoOtherRun) {
  ScopedDir dir("store");
  StoreOptions options;
  options.path = dir.path();
  options.identity.set_cluster_name("west");
  options.identity.set_shard_count(4);
  options.identity.set_initial_failover_version(2);
  options.identity.set_failover_version_increment(100);
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(options);
  ASSERT_TRUE(store.ok()) << store.status();
  auto write_run = [&](const TestRun& run, bool replace) {
    StoreWrite write;
    WorkflowWrite update;
    update.state = run.state;
    for (const auto& events : run.events) update.events.assign(events.begin(), events.end());
    update.replace_events = replace;
    write.workflows.push_back(std::move(update));
    ASSERT_TRUE((*store)->CommitWrite(write).ok());
  };
  // "r" and "r2", "wf" and "wf2": runs whose keys share bytes must not share a range.
  const TestRun two_branches = MakeRun("wf", "r", {{{2, 1}, {5, 2}}, {{4, 1}}});
  ASSERT_NO_FATAL_FAILURE(write_run(MakeRun("wf", "r", {{{2, 1}, {5, 2}}}), false));
  ASSERT_NO_FATAL_FAILURE(write_run(MakeRun("wf", "r", {{{4, 1}}}), false));
  ASSERT_NO_FATAL_FAILURE(write_run(MakeRun("wf", "r2", {{{6, 1}}}), false));
  ASSERT_NO_FATAL_FAILURE(write_run(MakeRun("wf2", "r", {{{6, 1}}}), false));
  ASSERT_TRUE((*store)->ReadEvent(two_branches.state.key(), 4, 1).ok());

  ASSERT_NO_FATAL_FAILURE(write_run(MakeRun("wf", "r", {{{3, 1}}}), /*replace=*/true));
  const WorkflowKey key = two_branches.state.key();
  EXPECT_TRUE((*store)->ReadEvent(key, 3, 1).ok());
  EXPECT_TRUE(absl::IsNotFound((*store)->ReadEvent(key, 4, 1).status()));
  EXPECT_TRUE(absl::IsNotFound((*store)->ReadEvent(key, 3, 2).status()));
  EXPECT_TRUE(absl::IsNotFound((*store)->ReadEvent(key, 5, 2).status()));
  WorkflowKey other = key;
  other.set_run_id("r2");
  EXPECT_TRUE((*store)->ReadEvent(other, 6, 1).ok());
  other.set_run_id("r");
  other.set_workflow_id("wf2");
  EXPECT_TRUE((*store)->ReadEvent(other, 6, 1).ok());

  // ScanWorkflows visits every run with its key.
  std::set<std::pair<std::string, std::string>> scanned;
  ASSERT_TRUE((*store)
                  ->ScanWorkflows(
                      "ns",
                      [&](const WorkflowKey& k, const absl::StatusOr<WorkflowMutableState>& state) {
                        EXPECT_TRUE(state.ok());
                        EXPECT_EQ(k.namespace_id(), "ns");
                        scanned.insert({k.workflow_id(), k.run_id()});
                        return absl::OkStatus();
                      })
                  .ok());
  EXPECT_EQ(scanned, (std::set<std::pair<std::string, std::string>>{
                         {"wf", "r"}, {"wf", "r2"}, {"wf2", "r"}}));
}

// --- xdcctl migration against two in-process clusters ------------------------------------------

std::string Bin(const std::string& name) { return std::string(XDC_BIN_DIR) + "/" + name; }

class MigrationVerifyTest : public TwoClustersTest {
 protected:
  std::string Ctl(const std::string& verb_and_flags) {
    return absl::StrCat(Bin("xdcctl"), " migration ", verb_and_flags, " --namespace ", kNamespace,
                        " --source ", east_->http_address(), " --target ", west_->http_address());
  }

  // Runs `xdcctl --json migration verify ...` and decodes its report.
  MigrationVerifyReport VerifyJson(const std::string& extra, int expected_exit) {
    const CommandResult result = RunCommand(
        absl::StrCat(Bin("xdcctl"), " --json migration verify ", extra, " --namespace ", kNamespace,
                     " --source ", east_->http_address(), " --target ", west_->http_address()));
    EXPECT_EQ(result.exit_code, expected_exit) << result.output;
    MigrationVerifyReport report;
    // The report is the last line (--repair prints nothing else with --json).
    const size_t start = result.output.rfind("\n{");
    const std::string json = result.output.substr(start == std::string::npos ? 0 : start + 1);
    EXPECT_TRUE(FromJson(json, report).ok()) << result.output;
    return report;
  }

  // The run ids of the namespace's workflows on `client`, by workflow id.
  std::map<std::string, std::string> Runs(HttpClient& client) {
    absl::StatusOr<ListDigestsResponse> digests = Digests(client, kNamespace);
    EXPECT_TRUE(digests.ok()) << digests.status();
    std::map<std::string, std::string> runs;
    if (!digests.ok()) return runs;
    for (const WorkflowDigest& d : digests->workflows()) runs[d.workflow_id()] = d.run_id();
    return runs;
  }

  WorkflowKey KeyOf(const std::string& workflow_id, const std::string& run_id) {
    WorkflowKey key;
    key.set_namespace_id(namespace_id_);
    key.set_workflow_id(workflow_id);
    key.set_run_id(run_id);
    return key;
  }

  // Overwrites event 2 of the run in west's store with other attributes (bit rot).
  void CorruptOnWest(const WorkflowKey& key) {
    CorruptStoredEvent(west_->store(), key, 2, 1, "corrupted on west");
  }

  // Writes one workflow on every shard and waits until west has them all: west has then applied
  // every task east published before them (a shard's tasks apply in order).
  void WaitWestHasEverythingPublished() {
    std::set<std::string> barriers;
    for (int i = 0; barriers.size() < 4; ++i) {
      const std::string id = absl::StrCat("barrier-", i);
      const int32_t shard = ShardFor(namespace_id_, id, 4);
      if (std::any_of(barriers.begin(), barriers.end(), [&](const std::string& b) {
            return ShardFor(namespace_id_, b, 4) == shard;
          })) {
        continue;
      }
      AppendResponse appended;
      AppendRequest request = Append(kNamespace, id, 1, {Event(WORKFLOW_EXECUTION_STARTED)});
      ASSERT_TRUE(east_client_->Call("POST", "/v1/append", &request, appended).ok());
      barriers.insert(id);
    }
    ASSERT_TRUE(WaitUntil([&] {
      const std::map<std::string, std::string> runs = Runs(*west_client_);
      return std::all_of(barriers.begin(), barriers.end(),
                         [&](const std::string& b) { return runs.contains(b); });
    }));
  }
};

TEST_F(MigrationVerifyTest,
       VerifyListsExactlyTheCorruptedAndMissingRunsAndRepairMakesThemIdentical) {
  WriteWorkflows(east_->http_address(), kNamespace, "settled", 8);
  WaitForConvergence();
  MigrationVerifyReport clean = VerifyJson("", 0);
  EXPECT_TRUE(clean.identical());
  EXPECT_EQ(clean.source_runs(), 8);
  EXPECT_EQ(clean.target_runs(), 8);
  EXPECT_EQ(clean.shards_identical(), 4);

  {
    // Runs whose only task Kafka "loses" never reach west, and nothing asks for them (no later
    // task shows a gap): 20 single-task runs over 4 shards put at least 5 tasks on some shard,
    // so at least one task id % 5 == 4 is lost.
    ArmedFault lose(fault::kPublishLoseTask);
    for (int i = 0; i < 20; ++i) {
      AppendResponse appended;
      AppendRequest request =
          Append(kNamespace, absl::StrCat("single-", i), 1,
                 {Event(WORKFLOW_EXECUTION_STARTED, "in"), Event(ACTIVITY_TASK_SCHEDULED),
                  Event(WORKFLOW_EXECUTION_COMPLETED, "out")});
      ASSERT_TRUE(east_client_->Call("POST", "/v1/append", &request, appended).ok());
    }
    // The publisher sends after the commit: keep the fault armed until it has gone through all.
    ASSERT_TRUE(WaitUntil([&] { return PublishedAll(GetStatus(*east_client_)); }));
  }
  ASSERT_NO_FATAL_FAILURE(WaitWestHasEverythingPublished());
  const std::map<std::string, std::string> on_east = Runs(*east_client_);
  const std::map<std::string, std::string> on_west = Runs(*west_client_);
  std::set<std::tuple<std::string, std::string, RunDifferenceKind>> expected;
  for (const auto& [workflow, run] : on_east) {
    if (!on_west.contains(workflow)) {
      expected.insert({workflow, run, RUN_DIFFERENCE_KIND_MISSING_ON_TARGET});
    }
  }
  ASSERT_FALSE(expected.empty());
  const std::string corrupted = "settled-3";
  ASSERT_NO_FATAL_FAILURE(CorruptOnWest(KeyOf(corrupted, on_east.at(corrupted))));
  expected.insert({corrupted, on_east.at(corrupted), RUN_DIFFERENCE_KIND_CONTENT_DIFFERS});

  MigrationVerifyReport found = VerifyJson("", kExitDifferent);
  std::set<std::tuple<std::string, std::string, RunDifferenceKind>> listed;
  for (const RunDifference& d : found.differences()) {
    listed.insert({d.workflow_id(), d.run_id(), d.kind()});
    if (d.workflow_id() == corrupted) {
      EXPECT_THAT(d.detail(), HasSubstr("has different events"));
    }
  }
  EXPECT_EQ(listed, expected);
  EXPECT_THAT(found.errors(), ::testing::IsEmpty());
  EXPECT_EQ(found.source_runs(), static_cast<int64_t>(on_east.size()));

  const CommandResult human = RunCommand(Ctl("verify"));
  EXPECT_EQ(human.exit_code, kExitDifferent);
  EXPECT_THAT(human.output,
              HasSubstr(absl::StrCat(corrupted, " run ", on_east.at(corrupted),
                                     ": content differs: branch [(7,1)] has different events")));
  // Cutover is refused while verify is not clean, and nothing changes.
  CommandResult refused = RunCommand(Ctl("cutover --verify-wait 0"));
  EXPECT_EQ(refused.exit_code, kExitRefused) << refused.output;
  EXPECT_THAT(refused.output, HasSubstr("migration cutover refused: verify is not clean"));
  EXPECT_EQ(GetRecord(*east_client_, kNamespace).active_cluster(), "east");

  // A repair may only come from the namespace's active cluster.
  RepairRunsRequest from_west;
  from_west.set_namespace_(kNamespace);
  from_west.set_target_cluster("east");
  from_west.add_runs()->set_workflow_id(corrupted);
  ApiError not_active =
      RequestError(*west_client_, "POST", "/v1/migration/repair", JsonOf(from_west));
  EXPECT_EQ(not_active.http_status, 409);
  EXPECT_THAT(not_active.error.message(), HasSubstr("not the active cluster"));

  MigrationVerifyReport repaired = VerifyJson("--repair --repair-timeout 30", 0);
  EXPECT_TRUE(repaired.identical());
  EXPECT_EQ(repaired.repaired(), static_cast<int64_t>(expected.size()));
  // West now holds east's events, and a plain verify agrees.
  GetHistoryResponse history;
  ASSERT_TRUE(
      west_client_
          ->Call("GET",
                 absl::StrCat("/v1/history?namespace=", kNamespace, "&workflow_id=", corrupted),
                 nullptr, history)
          .ok());
  EXPECT_NE(history.events(1).attributes(), "corrupted on west");
  EXPECT_EQ(VerifyJson("", 0).target_runs(), static_cast<int64_t>(on_east.size()));
  WaitForConvergence();
  EXPECT_EQ(GetDlq(*west_client_).tasks_size(), 0);
  // The lost task ids stay counted as missing on west, and a handover's target waits for them:
  // the cutover says so instead of refusing writes until the handover's deadline.
  CommandResult blocked = RunCommand(Ctl("cutover"));
  EXPECT_EQ(blocked.exit_code, kExitRefused) << blocked.output;
  EXPECT_THAT(blocked.output, HasSubstr("task ids of east's stream as missing"));
  EXPECT_EQ(GetRecord(*east_client_, kNamespace).state(), NAMESPACE_STATE_ACTIVE);
}

TEST_F(MigrationVerifyTest, ARunOnTheTargetOnlyIsReportedAndNotRepairable) {
  WriteWorkflows(east_->http_address(), kNamespace, "wf", 3);
  WaitForConvergence();
  // A run west still holds that east no longer has (retained out or deleted on east): written
  // into west's store directly, as a copy of an existing run under another run id.
  const std::string run = Runs(*west_client_).at("wf-1");
  absl::StatusOr<std::optional<WorkflowMutableState>> state =
      west_->store().GetWorkflowState(KeyOf("wf-1", run));
  ASSERT_TRUE(state.ok() && state->has_value());
  absl::StatusOr<google::protobuf::RepeatedPtrField<HistoryEvent>> events =
      west_->store().ReadBranch(KeyOf("wf-1", run), *CurrentBranch((*state)->version_histories()));
  ASSERT_TRUE(events.ok());
  StoreWrite write;
  WorkflowWrite update;
  update.state = **state;
  *update.state.mutable_key() = KeyOf("wf-1", "retained-on-west");
  update.events.assign(events->begin(), events->end());
  write.workflows.push_back(std::move(update));
  ASSERT_TRUE(west_->store().CommitWrite(write).ok());

  MigrationVerifyReport report = VerifyJson("--repair --repair-timeout 5", kExitDifferent);
  ASSERT_EQ(report.differences_size(), 1);
  EXPECT_EQ(report.differences(0).kind(), RUN_DIFFERENCE_KIND_MISSING_ON_SOURCE);
  EXPECT_EQ(report.differences(0).run_id(), "retained-on-west");
  EXPECT_THAT(report.differences(0).repair(), HasSubstr("not repairable"));
  CommandResult human = RunCommand(Ctl("verify"));
  EXPECT_EQ(human.exit_code, kExitDifferent);
  EXPECT_THAT(human.output, HasSubstr("wf-1 run retained-on-west: missing on source"));
}

TEST_F(MigrationVerifyTest, ARepairNeverOverwritesTheOnlyCopyOfAnotherClustersEvent) {
  WriteWorkflows(east_->http_address(), kNamespace, "wf", 2);
  WaitForConvergence();
  // West holds a branch with an event of its own version 2 that east never had: it may be the
  // only copy of a write west acknowledged.
  const WorkflowKey key = KeyOf("wf-0", Runs(*west_client_).at("wf-0"));
  absl::StatusOr<std::optional<WorkflowMutableState>> state = west_->store().GetWorkflowState(key);
  ASSERT_TRUE(state.ok() && state->has_value());
  StoreWrite write;
  WorkflowWrite update;
  update.state = **state;
  VersionHistory* branch = update.state.mutable_version_histories()->add_histories();
  for (const auto& [last, version] : {std::pair<int64_t, int64_t>{3, 1}, {4, 2}}) {
    VersionHistoryItem* item = branch->add_items();
    item->set_event_id(last);
    item->set_version(version);
  }
  HistoryEvent only_here;
  only_here.set_event_id(4);
  only_here.set_version(2);
  only_here.set_event_type(WORKFLOW_EXECUTION_SIGNALED);
  only_here.set_attributes("acknowledged by west");
  update.events.push_back(only_here);
  write.workflows.push_back(std::move(update));
  ASSERT_TRUE(west_->store().CommitWrite(write).ok());

  MigrationVerifyReport report = VerifyJson("--repair --repair-timeout 3", kExitDifferent);
  ASSERT_EQ(report.differences_size(), 1) << JsonOf(report);
  EXPECT_EQ(report.differences(0).kind(), RUN_DIFFERENCE_KIND_CONTENT_DIFFERS);
  EXPECT_THAT(report.differences(0).detail(), HasSubstr("branch [(3,1) (4,2)] only on target"));
  EXPECT_EQ(report.differences(0).repair(), "sent, but the target still differs");
  EXPECT_EQ(report.repaired(), 0);
  // West refused it, said why in its DLQ, and kept its event. (verify stops waiting after its
  // repair timeout, which on a slow machine may be before west parks the refused repair.)
  ListParkedResponse dlq;
  ASSERT_TRUE(WaitUntil([&] {
    dlq = GetDlq(*west_client_);
    return dlq.tasks_size() > 0;
  }));
  ASSERT_EQ(dlq.tasks_size(), 1);
  EXPECT_EQ(dlq.tasks(0).reason(), PARK_REASON_INVALID_TASK);
  EXPECT_THAT(dlq.tasks(0).error(),
              HasSubstr("repair refused: local event 4 (version 2) is of a version 'east' does "
                        "not own and the copy lacks it"));
  absl::StatusOr<HistoryEvent> kept = west_->store().ReadEvent(key, 4, 2);
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(kept->attributes(), "acknowledged by west");
}

TEST_F(MigrationVerifyTest, CutoverAndRollbackUnderLoadLoseNoAcknowledgedWrite) {
  WriteWorkflows(east_->http_address(), kNamespace, "old", 10);
  WaitForConvergence();
  LedgerClient client({{"east", east_->http_address()}, {"west", west_->http_address()}}, "east");
  std::atomic<bool> stop{false};
  std::thread load([&] { client.Run(stop); });
  ASSERT_TRUE(WaitUntil([&] { return client.acked_count() >= 100; }));

  CommandResult cutover =
      RunCommand(Ctl("cutover --max-lag-seconds 30 --timeout 30s --verify-wait 60"));
  EXPECT_EQ(cutover.exit_code, 0) << cutover.output;
  EXPECT_THAT(cutover.output, HasSubstr("handover complete: orders is active on west"));
  // Writes acknowledged by west after the cutover.
  ASSERT_TRUE(WaitUntil([&] { return client.acked_at(2) >= 50; }));

  CommandResult rollback =
      RunCommand(Ctl("rollback --max-lag-seconds 30 --timeout 30s --verify-wait 60"));
  EXPECT_EQ(rollback.exit_code, 0) << rollback.output;
  EXPECT_THAT(rollback.output, HasSubstr("handover complete: orders is active on east"));
  ASSERT_TRUE(WaitUntil([&] { return client.acked_at(101) >= 50; }));
  stop = true;
  load.join();
  EXPECT_THAT(client.errors_, ::testing::IsEmpty());

  WaitForConvergence();
  // Every write acknowledged before, between and after the handovers is on both clusters.
  ASSERT_NO_FATAL_FAILURE(client.ExpectAcknowledgedOn({east_client_.get(), west_client_.get()}));
  EXPECT_EQ(VerifyJson("", 0).source_runs(), 10 + LedgerClient::kWorkflows);
  // A rollback when the namespace is already on the source is refused.
  CommandResult again = RunCommand(Ctl("rollback --verify-wait 0"));
  EXPECT_EQ(again.exit_code, kExitRefused) << again.output;
  EXPECT_THAT(again.output, HasSubstr("not ACTIVE on west"));
}

}  // namespace
}  // namespace xdc
