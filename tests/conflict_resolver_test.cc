// Unit and property tests of DecideApply, the pure conflict-resolution step: extension of the
// current branch (append, duplicate, gap), extension of another branch, forks, branch switches
// and the rebuild of the mutable state. Reapplication is tested in reapplication_test.cc.

#include "protocol/conflict_resolver.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "protocol/event_reader.h"
#include "protocol/version_history.h"
#include "protocol/workflow_state.h"
#include "protocol/xdc.pb.h"
#include "tests/test_histories.h"
#include "tests/test_workflows.h"

namespace xdc {
namespace {

using testing_util::Branch;
using testing_util::EventIds;
using testing_util::Extend;
using testing_util::FailingEventReader;
using testing_util::History;
using testing_util::HistoryOf;
using testing_util::Items;
using testing_util::MakeEvent;
using testing_util::Prefix;
using testing_util::StoreBranches;
using testing_util::TaskOf;
using testing_util::TestKey;

using ::google::protobuf::util::MessageDifferencer;

EventType TypeFor(int64_t event_id) {
  return event_id == 1 ? WORKFLOW_EXECUTION_STARTED : ACTIVITY_TASK_SCHEDULED;
}

// A task carrying `items` and the events [first, last], each with the version `items` gives it.
ReplicationTask MakeTask(const Items& items, int64_t first, int64_t last) {
  ReplicationTask task;
  task.set_shard(0);
  task.set_source_cluster("west");
  *task.mutable_workflow() = TestKey();
  const VersionHistory history = History(items);
  *task.mutable_version_history_items() = history.items();
  for (int64_t id = first; id <= last; ++id) {
    absl::StatusOr<int64_t> version = VersionOfEvent(history, id);
    *task.add_events() = MakeEvent(id, version.ok() ? *version : 0, TypeFor(id));
  }
  return task;
}

// The local state after the events 1..last of `items` on one branch; the events go to `store`.
WorkflowMutableState LocalState(const Items& items, MapEventReader& store) {
  WorkflowMutableState state = NewWorkflowState(TestKey());
  const VersionHistory history = History(items);
  for (int64_t id = 1; id <= LastEventId(history); ++id) {
    const HistoryEvent event = MakeEvent(id, *VersionOfEvent(history, id), TypeFor(id));
    const absl::Status status = ApplyEventToState(state, event);
    EXPECT_TRUE(status.ok()) << status;
    store.Add(event);
  }
  return state;
}

WorkflowMutableState LocalState(const Items& items) {
  MapEventReader unused;
  return LocalState(items, unused);
}

// Writes what a kApply decision says to write, as the daemon does.
void Store(const ApplyDecision& decision, MapEventReader& store) {
  for (const HistoryEvent& event : decision.events_to_write) store.Add(event);
}

void ExpectEventsEqual(const std::vector<HistoryEvent>& actual,
                       const std::vector<HistoryEvent>& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals(actual[i], expected[i]))
        << "event " << i << ":\n"
        << actual[i].DebugString() << "expected:\n"
        << expected[i].DebugString();
  }
}

std::vector<HistoryEvent> TaskEvents(const ReplicationTask& task) {
  return std::vector<HistoryEvent>(task.events().begin(), task.events().end());
}

const MapEventReader kNoEvents;

TEST(ApplyActionNameTest, Names) {
  EXPECT_STREQ(ApplyActionName(ApplyAction::kApply), "apply");
  EXPECT_STREQ(ApplyActionName(ApplyAction::kDuplicate), "duplicate");
  EXPECT_STREQ(ApplyActionName(ApplyAction::kGap), "gap");
  EXPECT_STREQ(ApplyActionName(ApplyAction::kInvalid), "invalid");
  EXPECT_STREQ(ApplyActionName(ApplyAction::kReadError), "read_error");
}

// ---------------------------------------------------------------------------------------------
// Extending the current branch
// ---------------------------------------------------------------------------------------------

TEST(DecideApplyTest, NewWorkflowBatchFromOneApplies) {
  const ReplicationTask task = MakeTask({{3, 1}}, 1, 3);
  const ApplyDecision decision = DecideApply(std::nullopt, task, kNoEvents, std::nullopt);
  ASSERT_EQ(decision.action, ApplyAction::kApply) << decision.reason;
  EXPECT_EQ(decision.branch_change, BranchChange::kExtendedCurrent);
  EXPECT_FALSE(decision.switched_branch);
  ExpectEventsEqual(decision.events_to_write, TaskEvents(task));
  EXPECT_EQ(decision.duplicate_events, 0);
  EXPECT_EQ(decision.new_state.next_event_id(), 4);
  EXPECT_EQ(decision.new_state.status(), WORKFLOW_STATUS_RUNNING);
  EXPECT_EQ(decision.new_state.start_time_unix_micros(), task.events(0).event_time_unix_micros());
  EXPECT_EQ(decision.new_state.last_event_time_unix_micros(),
            task.events(2).event_time_unix_micros());
  EXPECT_FALSE(decision.new_state.reapply_pending());
  EXPECT_TRUE(MessageDifferencer::Equals(decision.new_state.key(), TestKey()));
  ASSERT_EQ(decision.new_state.version_histories().histories_size(), 1);
  ASSERT_NE(CurrentBranch(decision.new_state.version_histories()), nullptr);
  EXPECT_TRUE(MessageDifferencer::Equals(*CurrentBranch(decision.new_state.version_histories()),
                                         History({{3, 1}})));
}

TEST(DecideApplyTest, NewWorkflowBatchFromThreeIsAGap) {
  const ApplyDecision decision =
      DecideApply(std::nullopt, MakeTask({{5, 1}}, 3, 5), kNoEvents, std::nullopt);
  EXPECT_EQ(decision.action, ApplyAction::kGap);
  EXPECT_EQ(decision.expected_event_id, 1);
  EXPECT_TRUE(decision.events_to_write.empty());
  EXPECT_FALSE(decision.reason.empty());
}

TEST(DecideApplyTest, AppendExactlyAtNextApplies) {
  MapEventReader store;
  const WorkflowMutableState local = LocalState({{3, 1}}, store);
  const ApplyDecision decision = DecideApply(local, MakeTask({{5, 1}}, 4, 5), store, std::nullopt);
  ASSERT_EQ(decision.action, ApplyAction::kApply) << decision.reason;
  EXPECT_EQ(decision.branch_change, BranchChange::kExtendedCurrent);
  EXPECT_FALSE(decision.switched_branch);
  EXPECT_EQ(EventIds(decision.events_to_write), (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(decision.duplicate_events, 0);
  EXPECT_EQ(decision.new_state.next_event_id(), 6);
  EXPECT_EQ(decision.new_state.version_histories().histories_size(), 1);
  EXPECT_TRUE(MessageDifferencer::Equals(*CurrentBranch(decision.new_state.version_histories()),
                                         History({{5, 1}})));
}

TEST(DecideApplyTest, AppendWithHigherVersionAtNextApplies) {
  // The other cluster failed over (version 2) after event 3, which we hold.
  MapEventReader store;
  const WorkflowMutableState local = LocalState({{3, 1}}, store);
  const ApplyDecision decision =
      DecideApply(local, MakeTask({{3, 1}, {5, 2}}, 4, 5), store, std::nullopt);
  ASSERT_EQ(decision.action, ApplyAction::kApply) << decision.reason;
  EXPECT_EQ(decision.branch_change, BranchChange::kExtendedCurrent);
  EXPECT_EQ(EventIds(decision.events_to_write), (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(decision.new_state.next_event_id(), 6);
  EXPECT_EQ(decision.new_state.version_histories().histories_size(), 1);
  EXPECT_TRUE(MessageDifferencer::Equals(*CurrentBranch(decision.new_state.version_histories()),
                                         History({{3, 1}, {5, 2}})));
}

TEST(DecideApplyTest, ExtendingTheCurrentBranchReadsNoStoredEvents) {
  // Appending to the current branch needs nothing from the store: a store that cannot be read
  // must not turn an ordinary append into a read error.
  MapEventReader store;
  const WorkflowMutableState local = LocalState({{3, 1}}, store);
  const FailingEventReader broken;
  const ApplyDecision decision =
      DecideApply(local, MakeTask({{3, 1}, {5, 2}}, 2, 5), broken, std::nullopt);
  ASSERT_EQ(decision.action, ApplyAction::kApply) << decision.reason;
  EXPECT_EQ(EventIds(decision.events_to_write), (std::vector<int64_t>{4, 5}));
}

TEST(DecideApplyTest, FullDuplicate) {
  MapEventReader store;
  const WorkflowMutableState local = LocalState({{5, 1}}, store);
  for (const auto& [first, last] : {std::pair<int64_t, int64_t>(1, 5), {2, 4}, {5, 5}, {1, 1}}) {
    const ApplyDecision decision =
        DecideApply(local, MakeTask({{last, 1}}, first, last), store, std::nullopt);
    EXPECT_EQ(decision.action, ApplyAction::kDuplicate) << first << ".." << last;
    EXPECT_EQ(decision.duplicate_events, last - first + 1);
    EXPECT_TRUE(decision.events_to_write.empty());
    EXPECT_FALSE(decision.reason.empty());
  }
}

TEST(DecideApplyTest, PartialOverlapWritesOnlyTheSuffix) {
  MapEventReader store;
  const WorkflowMutableState local = LocalState({{3, 1}}, store);
  const ReplicationTask task = MakeTask({{6, 1}}, 2, 6);
  const ApplyDecision decision = DecideApply(local, task, store, std::nullopt);
  ASSERT_EQ(decision.action, ApplyAction::kApply) << decision.reason;
  EXPECT_EQ(decision.branch_change, BranchChange::kExtendedCurrent);
  EXPECT_EQ(EventIds(decision.events_to_write), (std::vector<int64_t>{4, 5, 6}));
  EXPECT_EQ(decision.duplicate_events, 2);
  EXPECT_EQ(decision.new_state.next_event_id(), 7);
  EXPECT_TRUE(MessageDifferencer::Equals(*CurrentBranch(decision.new_state.version_histories()),
                                         History({{6, 1}})));
  EXPECT_TRUE(MessageDifferencer::Equals(decision.events_to_write[0], task.events(2)));
}

TEST(DecideApplyTest, Gap) {
  MapEventReader store;
  const WorkflowMutableState local = LocalState({{3, 1}}, store);
  const ApplyDecision decision = DecideApply(local, MakeTask({{7, 1}}, 6, 7), store, std::nullopt);
  EXPECT_EQ(decision.action, ApplyAction::kGap);
  EXPECT_EQ(decision.expected_event_id, 4);
  EXPECT_TRUE(decision.events_to_write.empty());
  EXPECT_FALSE(decision.reason.empty());
}

TEST(DecideApplyTest, IncomingEntirelyOnSharedPrefixIsADuplicate) {
  {
    MapEventReader store;
    const WorkflowMutableState local = LocalState({{5, 1}}, store);
    const ApplyDecision decision =
        DecideApply(local, MakeTask({{3, 1}}, 2, 3), store, std::nullopt);
    EXPECT_EQ(decision.action, ApplyAction::kDuplicate);
    EXPECT_EQ(decision.duplicate_events, 2);
  }
  {
    MapEventReader store;
    const WorkflowMutableState local = LocalState({{3, 1}, {6, 2}}, store);
    const ApplyDecision decision =
        DecideApply(local, MakeTask({{2, 1}}, 1, 2), store, std::nullopt);
    EXPECT_EQ(decision.action, ApplyAction::kDuplicate);
    EXPECT_EQ(decision.duplicate_events, 2);
  }
}

TEST(DecideApplyTest, BatchThatTheStateRejectsIsInvalid) {
  MapEventReader store;
  WorkflowMutableState local = LocalState({{2, 1}}, store);
  ASSERT_TRUE(ApplyEventToState(local, MakeEvent(3, 1, WORKFLOW_EXECUTION_COMPLETED)).ok());
  const ApplyDecision decision = DecideApply(local, MakeTask({{4, 1}}, 4, 4), store, std::nullopt);
  EXPECT_EQ(decision.action, ApplyAction::kInvalid);
  EXPECT_FALSE(decision.reason.empty());
  EXPECT_TRUE(decision.events_to_write.empty());
}

TEST(DecideApplyTest, LocalStateWithoutCurrentBranchIsInvalid) {
  MapEventReader store;
  WorkflowMutableState local = LocalState({{3, 1}}, store);
  local.mutable_version_histories()->set_current_index(5);
  const ApplyDecision decision = DecideApply(local, MakeTask({{5, 1}}, 4, 5), store, std::nullopt);
  EXPECT_EQ(decision.action, ApplyAction::kInvalid);
  EXPECT_FALSE(decision.reason.empty());
}

TEST(DecideApplyTest, MalformedLocalBranchIsInvalidNotACrash) {
  MapEventReader store;
  WorkflowMutableState local = LocalState({{3, 1}}, store);
  // A damaged stored state: the items go backwards.
  VersionHistoryItem* item = local.mutable_version_histories()->mutable_histories(0)->add_items();
  item->set_event_id(2);
  item->set_version(2);
  const ApplyDecision decision = DecideApply(local, MakeTask({{4, 1}}, 4, 4), store, std::nullopt);
  EXPECT_EQ(decision.action, ApplyAction::kInvalid);
  EXPECT_NE(decision.reason.find("malformed"), std::string::npos) << decision.reason;
}

void ExpectInvalid(const ReplicationTask& task, const std::string& what) {
  EXPECT_FALSE(ValidateReplicationTask(task).ok()) << what;
  for (const std::optional<WorkflowMutableState>& local :
       {std::optional<WorkflowMutableState>(), std::optional(LocalState({{3, 1}}))}) {
    const ApplyDecision decision = DecideApply(local, task, kNoEvents, std::nullopt);
    EXPECT_EQ(decision.action, ApplyAction::kInvalid) << what;
    EXPECT_FALSE(decision.reason.empty()) << what;
    EXPECT_TRUE(decision.events_to_write.empty()) << what;
  }
}

TEST(DecideApplyTest, InvalidTasks) {
  EXPECT_TRUE(ValidateReplicationTask(MakeTask({{3, 1}}, 1, 3)).ok());
  {
    ReplicationTask task = MakeTask({{5, 1}}, 4, 5);
    task.mutable_events(1)->set_event_id(6);
    *task.add_events() = MakeEvent(5, 1, WORKFLOW_EXECUTION_SIGNALED);
    ExpectInvalid(task, "non-contiguous ids");
  }
  {
    ReplicationTask task = MakeTask({{5, 1}}, 3, 5);
    task.mutable_events()->SwapElements(0, 1);
    ExpectInvalid(task, "ids out of order");
  }
  {
    ReplicationTask task = MakeTask({{3, 1}, {5, 2}}, 3, 5);
    task.mutable_events(1)->set_version(1);
    ExpectInvalid(task, "version mismatch with items");
  }
  {
    ReplicationTask task = MakeTask({{5, 1}}, 4, 5);
    task.mutable_events(0)->set_version(2);
    ExpectInvalid(task, "version mismatch with single item");
  }
  {
    ReplicationTask task = MakeTask({{5, 1}}, 4, 5);
    task.clear_events();
    ExpectInvalid(task, "empty events");
  }
  {
    ReplicationTask task = MakeTask({{6, 1}}, 4, 5);
    ExpectInvalid(task, "history ends after the batch");
  }
  {
    ReplicationTask task = MakeTask({{5, 1}}, 4, 5);
    task.clear_version_history_items();
    ExpectInvalid(task, "no version history");
  }
  {
    ReplicationTask task = MakeTask({{3, 2}, {5, 1}}, 4, 5);
    ExpectInvalid(task, "decreasing versions in items");
  }
  {
    ReplicationTask task = MakeTask({{5, 1}}, 4, 5);
    task.mutable_events(0)->set_event_id(0);
    task.mutable_events(1)->set_event_id(1);
    ExpectInvalid(task, "first event id below 1");
  }
  for (int field = 0; field < 3; ++field) {
    ReplicationTask task = MakeTask({{3, 1}}, 1, 3);
    if (field == 0) task.mutable_workflow()->clear_namespace_id();
    if (field == 1) task.mutable_workflow()->clear_workflow_id();
    if (field == 2) task.mutable_workflow()->clear_run_id();
    ExpectInvalid(task, "incomplete workflow key, field " + std::to_string(field));
  }
}

// ---------------------------------------------------------------------------------------------
// Forks: a batch that diverges from every local branch starts a new branch
// ---------------------------------------------------------------------------------------------

// Events 1..3 (version 1) shared by the branches of the fork tests.
std::vector<HistoryEvent> Common() {
  return Branch({{1, WORKFLOW_EXECUTION_STARTED},
                 {1, ACTIVITY_TASK_SCHEDULED},
                 {1, ACTIVITY_TASK_COMPLETED}});
}

TEST(DecideApplyForkTest, HigherVersionForkAppliesAsANewBranchAndSwitches) {
  // Local went on with version 1 and completed the run; the peer failed over to version 2 after
  // event 3 and kept it running.
  const std::vector<HistoryEvent> local_branch =
      Extend(Common(), 1, {TIMER_STARTED, WORKFLOW_EXECUTION_COMPLETED});
  const std::vector<HistoryEvent> remote_branch =
      Extend(Common(), 2, {TIMER_STARTED, TIMER_FIRED, ACTIVITY_TASK_SCHEDULED});
  MapEventReader store;
  const WorkflowMutableState local = StoreBranches({local_branch}, 0, store);
  ASSERT_EQ(local.status(), WORKFLOW_STATUS_COMPLETED);
  const ReplicationTask task = TaskOf(remote_branch, 4, 6);

  const ApplyDecision decision = DecideApply(local, task, store, std::nullopt);
  ASSERT_EQ(decision.action, ApplyAction::kApply) << decision.reason;
  EXPECT_EQ(decision.branch_change, BranchChange::kForked);
  EXPECT_TRUE(decision.switched_branch);
  EXPECT_EQ(decision.duplicate_events, 0);
  ExpectEventsEqual(decision.events_to_write, TaskEvents(task));

  const VersionHistories& histories = decision.new_state.version_histories();
  ASSERT_EQ(histories.histories_size(), 2);
  EXPECT_TRUE(MessageDifferencer::Equals(histories.histories(0), HistoryOf(local_branch)))
      << "the old branch must be kept as it was";
  EXPECT_TRUE(MessageDifferencer::Equals(histories.histories(1), History({{3, 1}, {6, 2}})));
  VersionHistory task_history;
  *task_history.mutable_items() = task.version_history_items();
  EXPECT_TRUE(MessageDifferencer::Equals(histories.histories(1), task_history));
  EXPECT_EQ(histories.current_index(), 1);

  // The state is the new branch's: rebuilt from events 1..3 (store) and 4..6 (task).
  EXPECT_EQ(decision.new_state.next_event_id(), 7);
  EXPECT_EQ(decision.new_state.status(), WORKFLOW_STATUS_RUNNING);
  EXPECT_EQ(decision.new_state.start_time_unix_micros(), remote_branch[0].event_time_unix_micros());
  EXPECT_EQ(decision.new_state.last_event_time_unix_micros(),
            remote_branch[5].event_time_unix_micros());
  EXPECT_TRUE(MessageDifferencer::Equals(decision.new_state.key(), TestKey()));
  EXPECT_TRUE(decision.reapply.appended.empty());
  EXPECT_FALSE(decision.new_state.reapply_pending()) << "a timer is nothing to reapply";
}

TEST(DecideApplyForkTest, SwitchRebuildsLikeApplyingTheNewBranchOneByOne) {
  const std::vector<HistoryEvent> local_branch =
      Extend(Common(), 1, {TIMER_STARTED, TIMER_FIRED, ACTIVITY_TASK_SCHEDULED});
  const std::vector<HistoryEvent> remote_branch =
      Extend(Common(), 3, {ACTIVITY_TASK_SCHEDULED, WORKFLOW_EXECUTION_COMPLETED});
  MapEventReader store;
  const WorkflowMutableState local = StoreBranches({local_branch}, 0, store);
  const ApplyDecision decision =
      DecideApply(local, TaskOf(remote_branch, 4, 5), store, std::nullopt);
  ASSERT_EQ(decision.action, ApplyAction::kApply) << decision.reason;
  ASSERT_TRUE(decision.switched_branch);

  MapEventReader unused;
  const WorkflowMutableState expected = StoreBranches({local_branch, remote_branch}, 1, unused);
  EXPECT_TRUE(MessageDifferencer::Equals(decision.new_state, expected))
      << decision.new_state.DebugString() << "expected:\n"
      << expected.DebugString();
  EXPECT_EQ(decision.new_state.status(), WORKFLOW_STATUS_COMPLETED);
}

TEST(DecideApplyForkTest, SwitchReadsTheSharedPrefixFromTheReader) {
  const std::vector<HistoryEvent> local_branch = Extend(Common(), 1, {TIMER_STARTED});
  const std::vector<HistoryEvent> remote_branch = Extend(Common(), 2, {TIMER_STARTED});
  MapEventReader store;
  const WorkflowMutableState local = StoreBranches({local_branch}, 0, store);
  const ReplicationTask task = TaskOf(remote_branch, 4, 4);

  // Event 2 of the shared prefix cannot be read: the rebuild cannot happen, nothing is decided.
  const FailingEventReader missing_prefix(&store, {{2, 1}});
  ApplyDecision decision = DecideApply(local, task, missing_prefix, std::nullopt);
  EXPECT_EQ(decision.action, ApplyAction::kReadError);
  EXPECT_FALSE(decision.reason.empty());
  EXPECT_TRUE(decision.events_to_write.empty());

  // A shared-prefix event the store does not hold (NOT_FOUND) is a read error too, not a crash.
  MapEventReader partial;
  for (const HistoryEvent& event : local_branch) {
    if (event.event_id() != 3) partial.Add(event);
  }
  decision = DecideApply(local, task, partial, std::nullopt);
  EXPECT_EQ(decision.action, ApplyAction::kReadError);
  EXPECT_TRUE(decision.events_to_write.empty());

  // The task's own events come from the task: the store need not (and here cannot) serve them.
  const FailingEventReader no_task_events(&store, {{4, 2}});
  decision = DecideApply(local, task, no_task_events, std::nullopt);
  ASSERT_EQ(decision.action, ApplyAction::kApply) << decision.reason;
  EXPECT_TRUE(decision.switched_branch);
  EXPECT_EQ(decision.new_state.next_event_id(), 5);
}

TEST(DecideApplyForkTest, LowerVersionForkAppliesAsANewBranchWithoutSwitching) {
  // Local failed over to version 2 after event 3; the old active cluster kept writing version 1
  // and completed the run there.
  const std::vector<HistoryEvent> local_branch =
      Extend(Common(), 2, {TIMER_STARTED, TIMER_FIRED, ACTIVITY_TASK_SCHEDULED});
  const std::vector<HistoryEvent> remote_branch =
      Extend(Common(), 1, {TIMER_STARTED, WORKFLOW_EXECUTION_COMPLETED});
  MapEventReader store;
  const WorkflowMutableState local = StoreBranches({local_branch}, 0, store);
  const ReplicationTask task = TaskOf(remote_branch, 4, 5);

  const ApplyDecision decision = DecideApply(local, task, store, std::nullopt);
  ASSERT_EQ(decision.action, ApplyAction::kApply) << decision.reason;
  EXPECT_EQ(decision.branch_change, BranchChange::kForked);
  EXPECT_FALSE(decision.switched_branch);
  ExpectEventsEqual(decision.events_to_write, TaskEvents(task));
  const VersionHistories& histories = decision.new_state.version_histories();
  ASSERT_EQ(histories.histories_size(), 2);
  EXPECT_EQ(histories.current_index(), 0);
  EXPECT_TRUE(MessageDifferencer::Equals(histories.histories(0), History({{3, 1}, {6, 2}})));
  EXPECT_TRUE(MessageDifferencer::Equals(histories.histories(1), History({{5, 1}})));
  // The mutable state is still the current branch's.
  EXPECT_EQ(decision.new_state.next_event_id(), 7);
  EXPECT_EQ(decision.new_state.status(), WORKFLOW_STATUS_RUNNING);
  EXPECT_EQ(decision.new_state.last_event_time_unix_micros(), local.last_event_time_unix_micros());
  EXPECT_EQ(decision.new_state.start_time_unix_micros(), local.start_time_unix_micros());
  EXPECT_FALSE(decision.new_state.reapply_pending());
}

TEST(DecideApplyForkTest, ForkFromTheBranchWithTheDeepestCommonAncestor) {
  // Branch 0 (version 1, not current) holds events 1..6; branch 1 (current) forked from it
  // after event 3 with version 2. A cluster that failed over to version 3 after event 4 of
  // branch 0 forks from branch 0 at event 4, not from the current branch at event 3.
  const std::vector<HistoryEvent> old_branch =
      Extend(Common(), 1, {TIMER_STARTED, TIMER_FIRED, ACTIVITY_TASK_SCHEDULED});
  const std::vector<HistoryEvent> current_branch = Extend(Common(), 2, {TIMER_STARTED});
  const std::vector<HistoryEvent> remote_branch = Extend(Prefix(old_branch, 4), 3, {TIMER_FIRED});
  MapEventReader store;
  const WorkflowMutableState local = StoreBranches({old_branch, current_branch}, 1, store);

  const ApplyDecision decision =
      DecideApply(local, TaskOf(remote_branch, 5, 5), store, std::nullopt);
  ASSERT_EQ(decision.action, ApplyAction::kApply) << decision.reason;
  EXPECT_EQ(decision.branch_change, BranchChange::kForked);
  EXPECT_TRUE(decision.switched_branch);
  const VersionHistories& histories = decision.new_state.version_histories();
  ASSERT_EQ(histories.histories_size(), 3);
  EXPECT_EQ(histories.current_index(), 2);
  EXPECT_TRUE(MessageDifferencer::Equals(histories.histories(2), History({{4, 1}, {5, 3}})));
  EXPECT_EQ(decision.new_state.next_event_id(), 6);
}

TEST(DecideApplyForkTest, ForkOverlappingTheSharedPrefixWritesOnlyTheNewEvents) {
  const std::vector<HistoryEvent> local_branch =
      Extend(Common(), 1, {TIMER_STARTED, ACTIVITY_TASK_SCHEDULED});
  const std::vector<HistoryEvent> remote_branch =
      Extend(Common(), 2, {TIMER_STARTED, TIMER_FIRED, ACTIVITY_TASK_SCHEDULED});
  MapEventReader store;
  const WorkflowMutableState local = StoreBranches({local_branch}, 0, store);
  const ApplyDecision decision =
      DecideApply(local, TaskOf(remote_branch, 2, 6), store, std::nullopt);
  ASSERT_EQ(decision.action, ApplyAction::kApply) << decision.reason;
  EXPECT_EQ(decision.branch_change, BranchChange::kForked);
  EXPECT_EQ(decision.duplicate_events, 2);
  EXPECT_EQ(EventIds(decision.events_to_write), (std::vector<int64_t>{4, 5, 6}));
  EXPECT_EQ(decision.new_state.next_event_id(), 7);
}

TEST(DecideApplyForkTest, RedeliveredForkIsADuplicate) {
  const std::vector<HistoryEvent> local_branch =
      Extend(Common(), 2, {TIMER_STARTED, TIMER_FIRED, ACTIVITY_TASK_SCHEDULED});
  for (const int64_t remote_version : {1, 3}) {  // the fork loses, then wins
    const std::vector<HistoryEvent> remote_branch =
        Extend(Common(), remote_version, {TIMER_STARTED, ACTIVITY_TASK_SCHEDULED});
    MapEventReader store;
    const WorkflowMutableState local = StoreBranches({local_branch}, 0, store);
    const ReplicationTask task = TaskOf(remote_branch, 4, 5);
    const ApplyDecision first = DecideApply(local, task, store, std::nullopt);
    ASSERT_EQ(first.action, ApplyAction::kApply) << first.reason;
    ASSERT_EQ(first.branch_change, BranchChange::kForked);
    Store(first, store);

    for (const int64_t from : {1, 4, 5}) {
      const ApplyDecision again =
          DecideApply(first.new_state, TaskOf(remote_branch, from, 5), store, std::nullopt);
      EXPECT_EQ(again.action, ApplyAction::kDuplicate)
          << "version " << remote_version << " from " << from << ": " << again.reason;
      EXPECT_EQ(again.duplicate_events, 5 - from + 1);
      EXPECT_TRUE(again.events_to_write.empty());
    }
    // And so is a late delivery of the branch that lost.
    const ApplyDecision old =
        DecideApply(first.new_state, TaskOf(local_branch, 4, 6), store, std::nullopt);
    EXPECT_EQ(old.action, ApplyAction::kDuplicate) << old.reason;
  }
}

TEST(DecideApplyForkTest, NoCommonEventForksAtZero) {
  // Both clusters started the run independently (split brain before the first replication).
  const std::vector<HistoryEvent> low =
      Branch({{1, WORKFLOW_EXECUTION_STARTED}, {1, TIMER_STARTED}});
  const std::vector<HistoryEvent> high =
      Branch({{2, WORKFLOW_EXECUTION_STARTED}, {2, ACTIVITY_TASK_SCHEDULED}});
  {
    MapEventReader store;
    const WorkflowMutableState local = StoreBranches({low}, 0, store);
    const ApplyDecision decision = DecideApply(local, TaskOf(high, 1, 2), store, std::nullopt);
    ASSERT_EQ(decision.action, ApplyAction::kApply) << decision.reason;
    EXPECT_EQ(decision.branch_change, BranchChange::kForked);
    EXPECT_TRUE(decision.switched_branch);
    EXPECT_EQ(EventIds(decision.events_to_write), (std::vector<int64_t>{1, 2}));
    const VersionHistories& histories = decision.new_state.version_histories();
    ASSERT_EQ(histories.histories_size(), 2);
    EXPECT_EQ(histories.current_index(), 1);
    EXPECT_TRUE(MessageDifferencer::Equals(histories.histories(1), History({{2, 2}})));
    EXPECT_EQ(decision.new_state.next_event_id(), 3);
    EXPECT_EQ(decision.new_state.start_time_unix_micros(), high[0].event_time_unix_micros());
  }
  {
    MapEventReader store;
    const WorkflowMutableState local = StoreBranches({high}, 0, store);
    const ApplyDecision decision = DecideApply(local, TaskOf(low, 1, 2), store, std::nullopt);
    ASSERT_EQ(decision.action, ApplyAction::kApply) << decision.reason;
    EXPECT_EQ(decision.branch_change, BranchChange::kForked);
    EXPECT_FALSE(decision.switched_branch);
    EXPECT_EQ(decision.new_state.version_histories().current_index(), 0);
    EXPECT_EQ(decision.new_state.version_histories().histories_size(), 2);
    EXPECT_EQ(decision.new_state.start_time_unix_micros(), high[0].event_time_unix_micros());
  }
}

TEST(DecideApplyForkTest, GapOnANewBranch) {
  const std::vector<HistoryEvent> local_branch =
      Extend(Common(), 1, {TIMER_STARTED, ACTIVITY_TASK_SCHEDULED});
  const std::vector<HistoryEvent> remote_branch =
      Extend(Common(), 2,
             {TIMER_STARTED, TIMER_FIRED, ACTIVITY_TASK_SCHEDULED, TIMER_STARTED, TIMER_FIRED});
  MapEventReader store;
  const WorkflowMutableState local = StoreBranches({local_branch}, 0, store);
  const ApplyDecision decision =
      DecideApply(local, TaskOf(remote_branch, 6, 8), store, std::nullopt);
  EXPECT_EQ(decision.action, ApplyAction::kGap) << decision.reason;
  EXPECT_EQ(decision.expected_event_id, 4) << "the new branch's first event is LCA + 1";
  EXPECT_TRUE(decision.events_to_write.empty());
  EXPECT_FALSE(decision.reason.empty());
}

TEST(DecideApplyForkTest, GapOnANewBranchWithNoCommonEvent) {
  const std::vector<HistoryEvent> local_branch =
      Branch({{1, WORKFLOW_EXECUTION_STARTED}, {1, TIMER_STARTED}});
  const std::vector<HistoryEvent> remote_branch = Branch({{2, WORKFLOW_EXECUTION_STARTED},
                                                          {2, TIMER_STARTED},
                                                          {2, TIMER_FIRED},
                                                          {2, ACTIVITY_TASK_SCHEDULED}});
  MapEventReader store;
  const WorkflowMutableState local = StoreBranches({local_branch}, 0, store);
  const ApplyDecision decision =
      DecideApply(local, TaskOf(remote_branch, 3, 4), store, std::nullopt);
  EXPECT_EQ(decision.action, ApplyAction::kGap) << decision.reason;
  EXPECT_EQ(decision.expected_event_id, 1);
  EXPECT_TRUE(decision.events_to_write.empty());
}

TEST(DecideApplyForkTest, SwitchToABranchThatBreaksTheRunsRulesIsInvalid) {
  // The new branch has an event after the run completed: it cannot become current.
  const std::vector<HistoryEvent> local_branch = Extend(Common(), 1, {TIMER_STARTED});
  const std::vector<HistoryEvent> remote_branch =
      Extend(Common(), 2, {WORKFLOW_EXECUTION_COMPLETED, ACTIVITY_TASK_SCHEDULED});
  MapEventReader store;
  const WorkflowMutableState local = StoreBranches({local_branch}, 0, store);
  const ApplyDecision decision =
      DecideApply(local, TaskOf(remote_branch, 4, 5), store, std::nullopt);
  EXPECT_EQ(decision.action, ApplyAction::kInvalid);
  EXPECT_FALSE(decision.reason.empty());
  EXPECT_TRUE(decision.events_to_write.empty());
}

// ---------------------------------------------------------------------------------------------
// Extending a branch that is not the current one
// ---------------------------------------------------------------------------------------------

// Branch 0: events 1..4 of version 1 (not current). Branch 1: events 1..3 of version 1, then
// 4..5 of version 2 (current).
struct TwoBranches {
  std::vector<HistoryEvent> old_branch = Extend(Common(), 1, {TIMER_STARTED});
  std::vector<HistoryEvent> current_branch =
      Extend(Common(), 2, {TIMER_STARTED, ACTIVITY_TASK_SCHEDULED});
  MapEventReader store;
  WorkflowMutableState state = StoreBranches({old_branch, current_branch}, 1, store);
};

TEST(DecideApplyExtendOtherTest, LowerVersionExtensionDoesNotSwitch) {
  TwoBranches run;
  const std::vector<HistoryEvent> extended =
      Extend(run.old_branch, 1, {TIMER_FIRED, ACTIVITY_TASK_SCHEDULED});
  const ReplicationTask task = TaskOf(extended, 5, 6);
  const ApplyDecision decision = DecideApply(run.state, task, run.store, std::nullopt);
  ASSERT_EQ(decision.action, ApplyAction::kApply) << decision.reason;
  EXPECT_EQ(decision.branch_change, BranchChange::kExtendedOther);
  EXPECT_FALSE(decision.switched_branch);
  ExpectEventsEqual(decision.events_to_write, TaskEvents(task));
  const VersionHistories& histories = decision.new_state.version_histories();
  ASSERT_EQ(histories.histories_size(), 2) << "an extension must not add a branch";
  EXPECT_EQ(histories.current_index(), 1);
  EXPECT_TRUE(MessageDifferencer::Equals(histories.histories(0), History({{6, 1}})));
  EXPECT_TRUE(MessageDifferencer::Equals(histories.histories(1), History({{3, 1}, {5, 2}})));
  EXPECT_EQ(decision.new_state.next_event_id(), 6);
  EXPECT_EQ(decision.new_state.last_event_time_unix_micros(),
            run.state.last_event_time_unix_micros());
}

TEST(DecideApplyExtendOtherTest, PartialOverlapAndGapOnTheOtherBranch) {
  TwoBranches run;
  const std::vector<HistoryEvent> extended =
      Extend(run.old_branch, 1, {TIMER_FIRED, ACTIVITY_TASK_SCHEDULED, TIMER_STARTED});
  ApplyDecision decision = DecideApply(run.state, TaskOf(extended, 3, 6), run.store, std::nullopt);
  ASSERT_EQ(decision.action, ApplyAction::kApply) << decision.reason;
  EXPECT_EQ(decision.branch_change, BranchChange::kExtendedOther);
  EXPECT_EQ(decision.duplicate_events, 2);
  EXPECT_EQ(EventIds(decision.events_to_write), (std::vector<int64_t>{5, 6}));

  decision = DecideApply(run.state, TaskOf(extended, 6, 7), run.store, std::nullopt);
  EXPECT_EQ(decision.action, ApplyAction::kGap) << decision.reason;
  EXPECT_EQ(decision.expected_event_id, 5) << "the other branch ends at event 4";

  decision = DecideApply(run.state, TaskOf(extended, 2, 4), run.store, std::nullopt);
  EXPECT_EQ(decision.action, ApplyAction::kDuplicate) << decision.reason;
  EXPECT_EQ(decision.duplicate_events, 3);
}

TEST(DecideApplyExtendOtherTest, SwitchesWhenItBecomesTheHighestLastVersion) {
  TwoBranches run;
  // First the old active cluster's late events (version 1): recorded, not current.
  const std::vector<HistoryEvent> step1 = Extend(run.old_branch, 1, {TIMER_FIRED});
  const ApplyDecision first = DecideApply(run.state, TaskOf(step1, 5, 5), run.store, std::nullopt);
  ASSERT_EQ(first.action, ApplyAction::kApply) << first.reason;
  ASSERT_EQ(first.branch_change, BranchChange::kExtendedOther);
  ASSERT_FALSE(first.switched_branch);
  Store(first, run.store);

  // Then a cluster that failed over to version 3 on that branch: it now wins.
  const std::vector<HistoryEvent> step2 =
      Extend(step1, 3, {ACTIVITY_TASK_SCHEDULED, ACTIVITY_TASK_COMPLETED});
  const ReplicationTask task = TaskOf(step2, 6, 7);
  const ApplyDecision second = DecideApply(first.new_state, task, run.store, std::nullopt);
  ASSERT_EQ(second.action, ApplyAction::kApply) << second.reason;
  EXPECT_EQ(second.branch_change, BranchChange::kExtendedOther);
  EXPECT_TRUE(second.switched_branch);
  ExpectEventsEqual(second.events_to_write, TaskEvents(task));
  const VersionHistories& histories = second.new_state.version_histories();
  ASSERT_EQ(histories.histories_size(), 2);
  EXPECT_EQ(histories.current_index(), 0);
  EXPECT_TRUE(MessageDifferencer::Equals(histories.histories(0), History({{5, 1}, {7, 3}})));
  EXPECT_EQ(second.new_state.next_event_id(), 8);
  EXPECT_EQ(second.new_state.status(), WORKFLOW_STATUS_RUNNING);
  EXPECT_EQ(second.new_state.last_event_time_unix_micros(), step2[6].event_time_unix_micros());

  MapEventReader unused;
  EXPECT_TRUE(MessageDifferencer::Equals(second.new_state,
                                         StoreBranches({step2, run.current_branch}, 0, unused)))
      << second.new_state.DebugString();
}

TEST(DecideApplyExtendOtherTest, ExtensionThatSwitchesInOneStep) {
  TwoBranches run;
  const std::vector<HistoryEvent> extended = Extend(run.old_branch, 3, {TIMER_FIRED});
  const ApplyDecision decision =
      DecideApply(run.state, TaskOf(extended, 5, 5), run.store, std::nullopt);
  ASSERT_EQ(decision.action, ApplyAction::kApply) << decision.reason;
  EXPECT_EQ(decision.branch_change, BranchChange::kExtendedOther);
  EXPECT_TRUE(decision.switched_branch);
  EXPECT_EQ(decision.new_state.version_histories().current_index(), 0);
  EXPECT_EQ(decision.new_state.version_histories().histories_size(), 2);
  EXPECT_EQ(decision.new_state.next_event_id(), 6);
}

// ---------------------------------------------------------------------------------------------
// Property: redelivery of one branch
// ---------------------------------------------------------------------------------------------

// Property: a single-version history cut into batches and delivered in any order, with
// duplicates, ends applied exactly once when only kApply decisions are written and gaps are
// re-delivered.
TEST(DecideApplyPropertyTest, RandomDeliveryConvergesExactlyOnce) {
  std::mt19937_64 rng(42);
  constexpr int kIterations = 2000;
  constexpr int64_t kVersion = 1;
  for (int iteration = 0; iteration < kIterations; ++iteration) {
    const int64_t n = std::uniform_int_distribution<int64_t>(1, 40)(rng);
    // The source history; the last event sometimes closes the run.
    const bool completes = n > 1 && std::bernoulli_distribution(0.3)(rng);
    std::vector<HistoryEvent> source;
    for (int64_t id = 1; id <= n; ++id) {
      EventType type = TypeFor(id);
      if (id > 1 && id == n && completes) type = WORKFLOW_EXECUTION_COMPLETED;
      source.push_back(MakeEvent(id, kVersion, type));
    }
    // Cut [1, n] into contiguous batches.
    std::vector<ReplicationTask> batches;
    for (int64_t first = 1; first <= n;) {
      const int64_t size = std::uniform_int_distribution<int64_t>(1, 6)(rng);
      const int64_t last = std::min(n, first + size - 1);
      batches.push_back(TaskOf(source, first, last));
      first = last + 1;
    }
    // Deliveries: each batch once, plus random duplicates, in random order.
    std::vector<ReplicationTask> pending = batches;
    const int duplicates =
        std::uniform_int_distribution<int>(0, 2 * static_cast<int>(batches.size()))(rng);
    for (int i = 0; i < duplicates; ++i) {
      pending.push_back(batches[std::uniform_int_distribution<size_t>(0, batches.size() - 1)(rng)]);
    }
    std::shuffle(pending.begin(), pending.end(), rng);

    std::optional<WorkflowMutableState> local;
    MapEventReader store;
    std::map<int64_t, int> written;  // event id -> times written
    int steps = 0;
    while (!pending.empty()) {
      ASSERT_LT(++steps, 100000) << "iteration " << iteration << " does not converge";
      const size_t index = std::uniform_int_distribution<size_t>(0, pending.size() - 1)(rng);
      ReplicationTask task = std::move(pending[index]);
      pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(index));
      const ApplyDecision decision = DecideApply(local, task, store, std::nullopt);
      switch (decision.action) {
        case ApplyAction::kApply:
          ASSERT_EQ(decision.branch_change, BranchChange::kExtendedCurrent)
              << "iteration " << iteration;
          ASSERT_FALSE(decision.switched_branch) << "iteration " << iteration;
          ASSERT_FALSE(decision.events_to_write.empty()) << "iteration " << iteration;
          ASSERT_EQ(decision.events_to_write.front().event_id(),
                    local.has_value() ? local->next_event_id() : 1)
              << "iteration " << iteration;
          for (const HistoryEvent& event : decision.events_to_write) {
            ++written[event.event_id()];
            ASSERT_TRUE(MessageDifferencer::Equals(event, source[event.event_id() - 1]))
                << "iteration " << iteration << " event " << event.event_id();
          }
          EXPECT_EQ(
              decision.duplicate_events + static_cast<int64_t>(decision.events_to_write.size()),
              task.events_size());
          Store(decision, store);
          local = decision.new_state;
          // Sometimes the same task is delivered again right away.
          if (std::bernoulli_distribution(0.1)(rng)) pending.push_back(task);
          break;
        case ApplyAction::kDuplicate:
          EXPECT_EQ(decision.duplicate_events, task.events_size());
          break;
        case ApplyAction::kGap:
          EXPECT_EQ(decision.expected_event_id, local.has_value() ? local->next_event_id() : 1);
          EXPECT_GT(task.events(0).event_id(), decision.expected_event_id);
          pending.push_back(std::move(task));  // the resend
          break;
        case ApplyAction::kInvalid:
        case ApplyAction::kReadError:
          FAIL() << "iteration " << iteration << ": unexpected " << ApplyActionName(decision.action)
                 << ": " << decision.reason;
      }
    }
    ASSERT_TRUE(local.has_value()) << "iteration " << iteration;
    EXPECT_EQ(local->next_event_id(), n + 1) << "iteration " << iteration;
    EXPECT_EQ(local->status(), completes ? WORKFLOW_STATUS_COMPLETED : WORKFLOW_STATUS_RUNNING)
        << "iteration " << iteration;
    EXPECT_EQ(local->version_histories().histories_size(), 1) << "iteration " << iteration;
    EXPECT_TRUE(MessageDifferencer::Equals(*CurrentBranch(local->version_histories()),
                                           History({{n, kVersion}})))
        << "iteration " << iteration;
    ASSERT_EQ(static_cast<int64_t>(written.size()), n) << "iteration " << iteration;
    int64_t expected_id = 1;
    for (const auto& [id, count] : written) {
      EXPECT_EQ(id, expected_id++) << "iteration " << iteration;
      EXPECT_EQ(count, 1) << "iteration " << iteration << " event " << id;
    }
    if (HasFatalFailure() || HasNonfatalFailure()) return;  // one failing seed is enough
  }
}

}  // namespace
}  // namespace xdc
