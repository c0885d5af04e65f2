// Tests of reapplication (DESIGN.md "Conflict resolution", rule 5): signals, cancel requests and
// terminations of a losing branch are copied onto the current branch by the namespace's active
// cluster, exactly once; timers and activity results are dropped. Both the building blocks
// (protocol/reapplication.h) and what DecideApply does with them.

#include "protocol/reapplication.h"

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "protocol/conflict_resolver.h"
#include "protocol/event_reader.h"
#include "protocol/message_codec.h"
#include "protocol/version_history.h"
#include "protocol/workflow_state.h"
#include "protocol/xdc.pb.h"
#include "replicator/tunables.h"
#include "tests/test_histories.h"
#include "tests/test_workflows.h"

namespace xdc {
namespace {

using testing_util::Branch;
using testing_util::CopyOf;
using testing_util::EventIds;
using testing_util::Extend;
using testing_util::FailingEventReader;
using testing_util::History;
using testing_util::HistoryOf;
using testing_util::kRunId;
using testing_util::MakeEvent;
using testing_util::Origin;
using testing_util::Prefix;
using testing_util::StoreBranches;
using testing_util::TaskOf;

using ::google::protobuf::util::MessageDifferencer;

constexpr int64_t kNow = 777'000'000;

// Events 1..3 (version 1) shared by every branch: a signal that is on every branch and so must
// never be reapplied.
std::vector<HistoryEvent> SharedPrefix() {
  return Branch({{1, WORKFLOW_EXECUTION_STARTED},
                 {1, WORKFLOW_EXECUTION_SIGNALED},
                 {1, ACTIVITY_TASK_SCHEDULED}});
}

std::vector<EventType> Types(const std::vector<HistoryEvent>& events) {
  std::vector<EventType> types;
  for (const HistoryEvent& event : events) types.push_back(event.event_type());
  return types;
}

std::vector<HistoryEvent> TaskEvents(const ReplicationTask& task) {
  return std::vector<HistoryEvent>(task.events().begin(), task.events().end());
}

::testing::AssertionResult SameEvent(const HistoryEvent& actual, const HistoryEvent& expected) {
  if (MessageDifferencer::Equals(actual, expected)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << actual.DebugString() << "expected:\n"
                                       << expected.DebugString();
}

::testing::AssertionResult SameOrigin(const EventOrigin& actual, const EventOrigin& expected) {
  if (MessageDifferencer::Equals(actual, expected)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "origin {" << actual.ShortDebugString() << "}, expected {"
                                       << expected.ShortDebugString() << "}";
}

void Store(const ApplyDecision& decision, MapEventReader& store) {
  for (const HistoryEvent& event : decision.events_to_write) store.Add(event);
}

// ---------------------------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------------------------

TEST(IsReapplicableTest, OnlyOutsideInput) {
  for (int value = EventType_MIN; value <= EventType_MAX; ++value) {
    const EventType type = static_cast<EventType>(value);
    const bool outside_input = type == WORKFLOW_EXECUTION_SIGNALED ||
                               type == WORKFLOW_EXECUTION_CANCEL_REQUESTED ||
                               type == WORKFLOW_EXECUTION_TERMINATED;
    EXPECT_EQ(IsReapplicable(type), outside_input) << EventType_Name(type);
  }
}

TEST(OriginOfTest, AnEventIsItsOwnOriginAndACopyKeepsItsOrigin) {
  const HistoryEvent signal = MakeEvent(4, 1, WORKFLOW_EXECUTION_SIGNALED);
  EXPECT_TRUE(SameOrigin(OriginOf("run-a", signal), Origin(4, 1, "run-a")));

  const HistoryEvent copy = CopyOf(signal, 6, 2, kNow);
  EXPECT_TRUE(SameOrigin(OriginOf(kRunId, copy), Origin(4, 1)));
  const HistoryEvent copy_of_copy = CopyOf(copy, 9, 3, kNow);
  EXPECT_TRUE(SameOrigin(OriginOf(kRunId, copy_of_copy), Origin(4, 1)));
}

TEST(FindEventsToReapplyTest, SingleBranchHasNothing) {
  MapEventReader store;
  const WorkflowMutableState state = StoreBranches(
      {Extend(SharedPrefix(), 1, {WORKFLOW_EXECUTION_SIGNALED, WORKFLOW_EXECUTION_TERMINATED})}, 0,
      store);
  absl::StatusOr<std::vector<HistoryEvent>> found = FindEventsToReapply(state, store);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_TRUE(found->empty());
}

TEST(FindEventsToReapplyTest, OutsideInputOfTheLosingBranchAfterTheFork) {
  const std::vector<HistoryEvent> current = Extend(SharedPrefix(), 2, {TIMER_STARTED});
  const std::vector<HistoryEvent> losing =
      Extend(SharedPrefix(), 1,
             {WORKFLOW_EXECUTION_SIGNALED, TIMER_STARTED, WORKFLOW_EXECUTION_CANCEL_REQUESTED,
              ACTIVITY_TASK_SCHEDULED, ACTIVITY_TASK_COMPLETED, TIMER_FIRED,
              WORKFLOW_EXECUTION_TERMINATED});
  MapEventReader store;
  const WorkflowMutableState state = StoreBranches({losing, current}, 1, store);
  absl::StatusOr<std::vector<HistoryEvent>> found = FindEventsToReapply(state, store);
  ASSERT_TRUE(found.ok()) << found.status();
  // Not the signal at event 2 (shared), nor timers or activities.
  EXPECT_EQ(EventIds(*found), (std::vector<int64_t>{4, 6, 10}));
  for (const HistoryEvent& event : *found) {
    EXPECT_TRUE(SameEvent(event, losing[event.event_id() - 1]));
  }
}

TEST(FindEventsToReapplyTest, TerminationsComeAfterSignalsAndCancelRequests) {
  // The termination's origin (version 1) sorts before the others (version 2), yet goes last:
  // a termination first would close the run and lose the signals.
  const std::vector<HistoryEvent> current = Extend(SharedPrefix(), 5, {TIMER_STARTED});
  const std::vector<HistoryEvent> a = Extend(SharedPrefix(), 1, {WORKFLOW_EXECUTION_TERMINATED});
  const std::vector<HistoryEvent> b =
      Extend(SharedPrefix(), 2, {WORKFLOW_EXECUTION_CANCEL_REQUESTED, WORKFLOW_EXECUTION_SIGNALED});
  MapEventReader store;
  const WorkflowMutableState state = StoreBranches({a, b, current}, 2, store);
  absl::StatusOr<std::vector<HistoryEvent>> found = FindEventsToReapply(state, store);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(Types(*found),
            (std::vector<EventType>{WORKFLOW_EXECUTION_CANCEL_REQUESTED,
                                    WORKFLOW_EXECUTION_SIGNALED, WORKFLOW_EXECUTION_TERMINATED}));
}

TEST(FindEventsToReapplyTest, AnOriginAlreadyOnTheCurrentBranchIsNotFound) {
  const std::vector<HistoryEvent> losing =
      Extend(SharedPrefix(), 1, {WORKFLOW_EXECUTION_SIGNALED, WORKFLOW_EXECUTION_SIGNALED});
  std::vector<HistoryEvent> current = Extend(SharedPrefix(), 2, {TIMER_STARTED});
  current.push_back(CopyOf(losing[4], 5, 2, kNow));  // event 5 was reapplied, event 4 not yet
  MapEventReader store;
  const WorkflowMutableState state = StoreBranches({losing, current}, 1, store);
  absl::StatusOr<std::vector<HistoryEvent>> found = FindEventsToReapply(state, store);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(EventIds(*found), (std::vector<int64_t>{4}));
}

// A client that did not hear the answer to a request retries it on the new active cluster after
// a forced failover: the same request id then sits on both branches. The losing branch's event is
// not reapplied (the signal would land twice); of two losing events of one request only one is.
TEST(FindEventsToReapplyTest, ARequestIdAlreadyOnTheCurrentBranchIsNotReappliedAgain) {
  auto tagged = [](HistoryEvent event, const std::string& request_id) {
    event.mutable_request()->set_request_id(request_id);
    event.mutable_request()->set_event_count(1);
    return event;
  };
  std::vector<HistoryEvent> losing =
      Extend(SharedPrefix(), 1,
             {WORKFLOW_EXECUTION_SIGNALED, WORKFLOW_EXECUTION_SIGNALED, WORKFLOW_EXECUTION_SIGNALED,
              WORKFLOW_EXECUTION_SIGNALED});
  losing[3] = tagged(losing[3], "retried");  // event 4: retried on the new active
  losing[4] = tagged(losing[4], "twice");    // events 5 and 6: one request written twice
  losing[5] = tagged(losing[5], "twice");
  losing[6] = tagged(losing[6], "once");  // event 7: only here
  std::vector<HistoryEvent> current = Extend(SharedPrefix(), 2, {WORKFLOW_EXECUTION_SIGNALED});
  current[3] = tagged(current[3], "retried");
  MapEventReader store;
  const WorkflowMutableState state = StoreBranches({losing, current}, 1, store);
  absl::StatusOr<std::vector<HistoryEvent>> found = FindEventsToReapply(state, store);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(EventIds(*found), (std::vector<int64_t>{5, 7}));

  // A copy keeps the request id, so a later evaluation finds the request on the current branch.
  WorkflowMutableState active = state;
  absl::StatusOr<ReapplyOutcome> outcome =
      Reapply(active, store, ActiveContext{.failover_version = 2, .now_unix_micros = kNow});
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  ASSERT_EQ(outcome->appended.size(), 2u);
  EXPECT_EQ(outcome->appended[0].request().request_id(), "twice");
  EXPECT_EQ(outcome->appended[1].request().request_id(), "once");
  EXPECT_EQ(outcome->appended[1].request().event_count(), 1);
  for (const HistoryEvent& copy : outcome->appended) store.Add(copy);
  found = FindEventsToReapply(active, store);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_TRUE(found->empty());
}

TEST(FindEventsToReapplyTest, ReadErrorsAreReported) {
  const std::vector<HistoryEvent> current = Extend(SharedPrefix(), 2, {TIMER_STARTED});
  const std::vector<HistoryEvent> losing =
      Extend(SharedPrefix(), 1, {WORKFLOW_EXECUTION_SIGNALED, TIMER_STARTED});
  MapEventReader store;
  const WorkflowMutableState state = StoreBranches({losing, current}, 1, store);
  for (const auto& key : {std::pair<int64_t, int64_t>(4, 1), {5, 1}, {4, 2}}) {
    const FailingEventReader reader(&store, {key});
    absl::StatusOr<std::vector<HistoryEvent>> found = FindEventsToReapply(state, reader);
    EXPECT_EQ(found.status().code(), absl::StatusCode::kUnavailable)
        << "failing (" << key.first << ", " << key.second << ")";
  }
  MapEventReader empty;
  EXPECT_FALSE(FindEventsToReapply(state, empty).ok());
}

// A run whose losing branch (version 1, index 0) has a signal (4) and a cancel request (6)
// after the fork; the current branch (version 2, index 1) has none.
struct LosingInput {
  std::vector<HistoryEvent> losing =
      Extend(SharedPrefix(), 1,
             {WORKFLOW_EXECUTION_SIGNALED, TIMER_FIRED, WORKFLOW_EXECUTION_CANCEL_REQUESTED});
  std::vector<HistoryEvent> current =
      Extend(SharedPrefix(), 2, {TIMER_STARTED, ACTIVITY_TASK_COMPLETED});
  MapEventReader store;
  WorkflowMutableState state = StoreBranches({losing, current}, 1, store);
};

// A run that piled up many signals on a losing branch (a cluster that held it reapply_pending
// becomes active) is reapplied in pieces that each fit one replication task, each leaving the run
// reapply_pending until the last: one task with every copy exceeded Kafka's message limit, and
// its publisher retried it forever while the shard's stream stood still.
TEST(ReapplyTest, ManyCopiesAreAppendedInPiecesThatEachFitOneReplicationTask) {
  constexpr int kSignals = 2500;
  const std::string payload(1024, 'p');  // 2.5 MB of signals in all
  std::vector<HistoryEvent> losing = SharedPrefix();
  for (int i = 0; i < kSignals; ++i) {
    HistoryEvent signal =
        MakeEvent(static_cast<int64_t>(losing.size()) + 1, 1, WORKFLOW_EXECUTION_SIGNALED);
    signal.set_attributes(payload);
    losing.push_back(std::move(signal));
  }
  const std::vector<HistoryEvent> current = Extend(SharedPrefix(), 2, {TIMER_STARTED});
  MapEventReader store;
  WorkflowMutableState state = StoreBranches({losing, current}, 1, store);
  const Tunables tunables;
  std::set<int64_t> reapplied_origins;
  int pieces = 0;
  while (true) {
    absl::StatusOr<ReapplyOutcome> outcome = Reapply(state, store, ActiveContext{2, kNow});
    ASSERT_TRUE(outcome.ok()) << outcome.status();
    if (outcome->appended.empty()) break;
    ++pieces;
    ASSERT_LT(pieces, 100) << "no end to the pieces";
    ReplicationTask task;
    *task.mutable_workflow() = state.key();
    *task.mutable_version_history_items() = CurrentBranch(state.version_histories())->items();
    for (const HistoryEvent& copy : outcome->appended) {
      *task.add_events() = copy;
      store.Add(copy);
      EXPECT_TRUE(reapplied_origins.insert(copy.reapplied_from().event_id()).second)
          << "origin " << copy.reapplied_from().event_id() << " reapplied twice";
    }
    EXPECT_LE(outcome->appended.size(), tunables.max_events_per_append);
    EXPECT_LE(EncodeFrame([&] {
                HistoryMessage message;
                *message.mutable_task() = task;
                return message;
              }())
                  .size(),
              tunables.max_task_bytes)
        << "piece " << pieces << " of " << outcome->appended.size() << " copies";
    EXPECT_EQ(state.reapply_pending(), reapplied_origins.size() < kSignals);
  }
  EXPECT_EQ(reapplied_origins.size(), kSignals);
  EXPECT_GT(pieces, 1);
  EXPECT_FALSE(state.reapply_pending());
}

TEST(ReapplyTest, WithoutActiveContextOnlyMarksPending) {
  LosingInput run;
  WorkflowMutableState state = run.state;
  absl::StatusOr<ReapplyOutcome> outcome = Reapply(state, run.store, std::nullopt);
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_TRUE(outcome->pending);
  EXPECT_TRUE(outcome->appended.empty());
  EXPECT_EQ(outcome->dropped_closed, 0);
  EXPECT_TRUE(state.reapply_pending());
  WorkflowMutableState expected = run.state;
  expected.set_reapply_pending(true);
  EXPECT_TRUE(MessageDifferencer::Equals(state, expected)) << state.DebugString();
}

TEST(ReapplyTest, StaleActiveContextOnlyMarksPending) {
  LosingInput run;
  WorkflowMutableState state = run.state;
  // We believe we are active with version 1, but the current branch already has version 2.
  absl::StatusOr<ReapplyOutcome> outcome = Reapply(state, run.store, ActiveContext{1, kNow});
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_TRUE(outcome->pending);
  EXPECT_TRUE(outcome->appended.empty());
  EXPECT_TRUE(state.reapply_pending());
  EXPECT_EQ(state.next_event_id(), run.state.next_event_id());
}

TEST(ReapplyTest, ActiveClusterAppendsCopiesExactlyOnce) {
  LosingInput run;
  WorkflowMutableState state = run.state;
  ASSERT_TRUE(Reapply(state, run.store, std::nullopt).ok());
  ASSERT_TRUE(state.reapply_pending());

  absl::StatusOr<ReapplyOutcome> outcome = Reapply(state, run.store, ActiveContext{2, kNow});
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  ASSERT_EQ(outcome->appended.size(), 2u);
  EXPECT_TRUE(SameEvent(outcome->appended[0], CopyOf(run.losing[3], 6, 2, kNow)));
  EXPECT_TRUE(SameEvent(outcome->appended[1], CopyOf(run.losing[5], 7, 2, kNow)));
  EXPECT_FALSE(outcome->pending);
  EXPECT_EQ(outcome->dropped_closed, 0);
  EXPECT_FALSE(state.reapply_pending());
  EXPECT_EQ(state.next_event_id(), 8);
  EXPECT_EQ(state.last_event_time_unix_micros(), kNow);
  EXPECT_TRUE(MessageDifferencer::Equals(*CurrentBranch(state.version_histories()),
                                         History({{3, 1}, {7, 2}})));

  // Once written, the copies are found on the current branch: nothing is left, for the active
  // cluster or any other.
  for (const HistoryEvent& copy : outcome->appended) run.store.Add(copy);
  const WorkflowMutableState after = state;
  for (const std::optional<ActiveContext>& active :
       {std::optional<ActiveContext>(ActiveContext{2, kNow + 1}), std::optional<ActiveContext>()}) {
    absl::StatusOr<ReapplyOutcome> again = Reapply(state, run.store, active);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_TRUE(again->appended.empty());
    EXPECT_FALSE(again->pending);
    EXPECT_TRUE(MessageDifferencer::Equals(state, after)) << state.DebugString();
  }
}

TEST(ReapplyTest, ActiveVersionAboveTheBranchStampsTheActiveVersion) {
  LosingInput run;
  WorkflowMutableState state = run.state;
  absl::StatusOr<ReapplyOutcome> outcome = Reapply(state, run.store, ActiveContext{101, kNow});
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  ASSERT_EQ(outcome->appended.size(), 2u);
  for (const HistoryEvent& copy : outcome->appended) EXPECT_EQ(copy.version(), 101);
  EXPECT_TRUE(MessageDifferencer::Equals(*CurrentBranch(state.version_histories()),
                                         History({{3, 1}, {5, 2}, {7, 101}})));
}

TEST(ReapplyTest, ClosedRunDropsWhatItCannotTake) {
  LosingInput run;
  run.current = Extend(SharedPrefix(), 2, {TIMER_STARTED, WORKFLOW_EXECUTION_COMPLETED});
  run.store = MapEventReader();
  WorkflowMutableState state = StoreBranches({run.losing, run.current}, 1, run.store);
  ASSERT_EQ(state.status(), WORKFLOW_STATUS_COMPLETED);
  const WorkflowMutableState before = state;
  absl::StatusOr<ReapplyOutcome> outcome = Reapply(state, run.store, ActiveContext{2, kNow});
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_TRUE(outcome->appended.empty());
  EXPECT_EQ(outcome->dropped_closed, 2);
  EXPECT_FALSE(outcome->pending);
  EXPECT_TRUE(MessageDifferencer::Equals(state, before)) << state.DebugString();
}

TEST(ReapplyTest, OnlyTheFirstTerminationIsDelivered) {
  const std::vector<HistoryEvent> current = Extend(SharedPrefix(), 5, {TIMER_STARTED});
  const std::vector<HistoryEvent> a = Extend(SharedPrefix(), 1, {WORKFLOW_EXECUTION_TERMINATED});
  const std::vector<HistoryEvent> b = Extend(SharedPrefix(), 2, {WORKFLOW_EXECUTION_TERMINATED});
  MapEventReader store;
  WorkflowMutableState state = StoreBranches({a, b, current}, 2, store);
  absl::StatusOr<ReapplyOutcome> outcome = Reapply(state, store, ActiveContext{5, kNow});
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  ASSERT_EQ(outcome->appended.size(), 1u);
  EXPECT_EQ(outcome->appended[0].event_type(), WORKFLOW_EXECUTION_TERMINATED);
  EXPECT_EQ(outcome->dropped_closed, 1);
  EXPECT_EQ(state.status(), WORKFLOW_STATUS_TERMINATED);
  EXPECT_EQ(state.next_event_id(), 6);
}

TEST(ReapplyTest, ReadErrorLeavesTheStateUnchanged) {
  LosingInput run;
  for (const std::optional<ActiveContext>& active :
       {std::optional<ActiveContext>(ActiveContext{2, kNow}), std::optional<ActiveContext>()}) {
    WorkflowMutableState state = run.state;
    const FailingEventReader broken(&run.store, {{6, 1}});
    absl::StatusOr<ReapplyOutcome> outcome = Reapply(state, broken, active);
    EXPECT_EQ(outcome.status().code(), absl::StatusCode::kUnavailable);
    EXPECT_TRUE(MessageDifferencer::Equals(state, run.state)) << state.DebugString();
  }
}

// ---------------------------------------------------------------------------------------------
// Through DecideApply
// ---------------------------------------------------------------------------------------------

// Cluster "two" (version 2) took over after event 3 with a forced failover; cluster "one" kept
// writing version 1 and its events arrive late: a signal (4), a timer (5), a cancel request (6),
// an activity result (7) and a fired timer (8).
struct ForcedFailover {
  std::vector<HistoryEvent> current =
      Extend(SharedPrefix(), 2, {TIMER_STARTED, ACTIVITY_TASK_COMPLETED});
  std::vector<HistoryEvent> late =
      Extend(SharedPrefix(), 1,
             {WORKFLOW_EXECUTION_SIGNALED, TIMER_STARTED, WORKFLOW_EXECUTION_CANCEL_REQUESTED,
              ACTIVITY_TASK_COMPLETED, TIMER_FIRED});
  MapEventReader store;
  WorkflowMutableState state = StoreBranches({current}, 0, store);
  ReplicationTask task = TaskOf(late, 4, 8);
};

TEST(DecideApplyReapplyTest, ActiveClusterCopiesTheLosingBranchsOutsideInput) {
  ForcedFailover run;
  const ApplyDecision decision =
      DecideApply(run.state, run.task, run.store, ActiveContext{2, kNow});
  ASSERT_EQ(decision.action, ApplyAction::kApply) << decision.reason;
  EXPECT_EQ(decision.branch_change, BranchChange::kForked);
  EXPECT_FALSE(decision.switched_branch);

  // The signal and the cancel request, not the timers or the activity result.
  ASSERT_EQ(decision.reapply.appended.size(), 2u);
  EXPECT_TRUE(SameEvent(decision.reapply.appended[0], CopyOf(run.late[3], 6, 2, kNow)));
  EXPECT_TRUE(SameEvent(decision.reapply.appended[1], CopyOf(run.late[5], 7, 2, kNow)));
  EXPECT_TRUE(SameOrigin(decision.reapply.appended[0].reapplied_from(), Origin(4, 1)));
  EXPECT_TRUE(SameOrigin(decision.reapply.appended[1].reapplied_from(), Origin(6, 1)));
  EXPECT_EQ(decision.reapply.dropped_closed, 0);
  EXPECT_FALSE(decision.reapply.pending);

  // Written: the task's events on their branch, then the copies on the current branch.
  std::vector<HistoryEvent> expected = TaskEvents(run.task);
  expected.insert(expected.end(), decision.reapply.appended.begin(),
                  decision.reapply.appended.end());
  ASSERT_EQ(decision.events_to_write.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_TRUE(SameEvent(decision.events_to_write[i], expected[i])) << "event " << i;
  }

  const VersionHistories& histories = decision.new_state.version_histories();
  ASSERT_EQ(histories.histories_size(), 2);
  EXPECT_EQ(histories.current_index(), 0);
  EXPECT_TRUE(MessageDifferencer::Equals(histories.histories(0), History({{3, 1}, {7, 2}})));
  EXPECT_TRUE(MessageDifferencer::Equals(histories.histories(1), History({{8, 1}})));
  EXPECT_EQ(decision.new_state.next_event_id(), 8);
  EXPECT_EQ(decision.new_state.last_event_time_unix_micros(), kNow);
  EXPECT_FALSE(decision.new_state.reapply_pending());
}

TEST(DecideApplyReapplyTest, BranchThatLosesBySwitchingIsReappliedOnTheNewCurrentBranch) {
  // This cluster ("one") wrote a signal and a cancel request on version 1; cluster "two" forked
  // with version 2 and wins. The namespace has since failed back to "one" with version 101.
  const std::vector<HistoryEvent> local_branch =
      Extend(SharedPrefix(), 1,
             {WORKFLOW_EXECUTION_SIGNALED, TIMER_STARTED, WORKFLOW_EXECUTION_CANCEL_REQUESTED});
  const std::vector<HistoryEvent> remote_branch =
      Extend(SharedPrefix(), 2, {TIMER_STARTED, ACTIVITY_TASK_SCHEDULED});
  MapEventReader store;
  const WorkflowMutableState local = StoreBranches({local_branch}, 0, store);
  const ReplicationTask task = TaskOf(remote_branch, 4, 5);

  const ApplyDecision decision = DecideApply(local, task, store, ActiveContext{101, kNow});
  ASSERT_EQ(decision.action, ApplyAction::kApply) << decision.reason;
  EXPECT_EQ(decision.branch_change, BranchChange::kForked);
  EXPECT_TRUE(decision.switched_branch);
  ASSERT_EQ(decision.reapply.appended.size(), 2u);
  EXPECT_TRUE(SameEvent(decision.reapply.appended[0], CopyOf(local_branch[3], 6, 101, kNow)));
  EXPECT_TRUE(SameEvent(decision.reapply.appended[1], CopyOf(local_branch[5], 7, 101, kNow)));
  EXPECT_EQ(EventIds(decision.events_to_write), (std::vector<int64_t>{4, 5, 6, 7}));
  EXPECT_EQ(decision.new_state.version_histories().current_index(), 1);
  EXPECT_TRUE(MessageDifferencer::Equals(*CurrentBranch(decision.new_state.version_histories()),
                                         History({{3, 1}, {5, 2}, {7, 101}})));
  EXPECT_EQ(decision.new_state.next_event_id(), 8);
  EXPECT_EQ(decision.new_state.status(), WORKFLOW_STATUS_RUNNING);
  EXPECT_FALSE(decision.new_state.reapply_pending());
}

TEST(DecideApplyReapplyTest, OnlyTimersAndActivitiesLoseNothingToReapply) {
  ForcedFailover run;
  run.late = Extend(SharedPrefix(), 1,
                    {TIMER_STARTED, TIMER_FIRED, ACTIVITY_TASK_SCHEDULED, ACTIVITY_TASK_COMPLETED});
  run.task = TaskOf(run.late, 4, 7);
  for (const std::optional<ActiveContext>& active :
       {std::optional<ActiveContext>(ActiveContext{2, kNow}), std::optional<ActiveContext>()}) {
    const ApplyDecision decision = DecideApply(run.state, run.task, run.store, active);
    ASSERT_EQ(decision.action, ApplyAction::kApply) << decision.reason;
    EXPECT_TRUE(decision.reapply.appended.empty());
    EXPECT_FALSE(decision.new_state.reapply_pending());
    EXPECT_EQ(EventIds(decision.events_to_write), (std::vector<int64_t>{4, 5, 6, 7}));
    EXPECT_EQ(decision.new_state.next_event_id(), run.state.next_event_id());
  }
}

TEST(DecideApplyReapplyTest, StandbyOnlyMarksPending) {
  ForcedFailover run;
  const ApplyDecision decision = DecideApply(run.state, run.task, run.store, std::nullopt);
  ASSERT_EQ(decision.action, ApplyAction::kApply) << decision.reason;
  EXPECT_TRUE(decision.reapply.appended.empty());
  EXPECT_TRUE(decision.reapply.pending);
  EXPECT_TRUE(decision.new_state.reapply_pending());
  EXPECT_EQ(EventIds(decision.events_to_write), (std::vector<int64_t>{4, 5, 6, 7, 8}));
  EXPECT_EQ(decision.new_state.next_event_id(), run.state.next_event_id());
  EXPECT_TRUE(MessageDifferencer::Equals(*CurrentBranch(decision.new_state.version_histories()),
                                         HistoryOf(run.current)));
}

TEST(DecideApplyReapplyTest, StaleActiveViewOnlyMarksPending) {
  // This cluster ("one") still believes it is active with version 1, but cluster "two" took
  // over with version 2 and its branch wins: the copies are for "two" to write.
  const std::vector<HistoryEvent> local_branch =
      Extend(SharedPrefix(), 1, {WORKFLOW_EXECUTION_SIGNALED, TIMER_STARTED});
  const std::vector<HistoryEvent> remote_branch = Extend(SharedPrefix(), 2, {TIMER_STARTED});
  MapEventReader store;
  const WorkflowMutableState local = StoreBranches({local_branch}, 0, store);
  const ApplyDecision decision =
      DecideApply(local, TaskOf(remote_branch, 4, 4), store, ActiveContext{1, kNow});
  ASSERT_EQ(decision.action, ApplyAction::kApply) << decision.reason;
  EXPECT_TRUE(decision.switched_branch);
  EXPECT_TRUE(decision.reapply.appended.empty());
  EXPECT_TRUE(decision.new_state.reapply_pending());
  EXPECT_EQ(EventIds(decision.events_to_write), (std::vector<int64_t>{4}));
  EXPECT_EQ(decision.new_state.next_event_id(), 5);
}

TEST(DecideApplyReapplyTest, ExactlyOnceAcrossRedeliveryAndLaterEvents) {
  ForcedFailover run;
  const ApplyDecision first = DecideApply(run.state, run.task, run.store, ActiveContext{2, kNow});
  ASSERT_EQ(first.action, ApplyAction::kApply) << first.reason;
  ASSERT_EQ(first.reapply.appended.size(), 2u);
  Store(first, run.store);

  // The same task again: nothing to do, in particular no second copy.
  const ApplyDecision again =
      DecideApply(first.new_state, run.task, run.store, ActiveContext{2, kNow + 1});
  EXPECT_EQ(again.action, ApplyAction::kDuplicate) << again.reason;
  EXPECT_TRUE(again.events_to_write.empty());

  // More late events on the losing branch: only the new signal is copied.
  const std::vector<HistoryEvent> later =
      Extend(run.late, 1, {TIMER_STARTED, WORKFLOW_EXECUTION_SIGNALED});
  const ApplyDecision more =
      DecideApply(first.new_state, TaskOf(later, 9, 10), run.store, ActiveContext{2, kNow + 2});
  ASSERT_EQ(more.action, ApplyAction::kApply) << more.reason;
  EXPECT_EQ(more.branch_change, BranchChange::kExtendedOther);
  ASSERT_EQ(more.reapply.appended.size(), 1u);
  EXPECT_TRUE(SameEvent(more.reapply.appended[0], CopyOf(later[9], 8, 2, kNow + 2)));
  EXPECT_EQ(EventIds(more.events_to_write), (std::vector<int64_t>{9, 10, 8}));
  EXPECT_EQ(more.new_state.next_event_id(), 9);
  Store(more, run.store);

  // A timer on the losing branch afterwards: every origin is on the current branch already.
  const std::vector<HistoryEvent> last = Extend(later, 1, {TIMER_FIRED});
  const ApplyDecision none =
      DecideApply(more.new_state, TaskOf(last, 11, 11), run.store, ActiveContext{2, kNow + 3});
  ASSERT_EQ(none.action, ApplyAction::kApply) << none.reason;
  EXPECT_TRUE(none.reapply.appended.empty());
  EXPECT_EQ(EventIds(none.events_to_write), (std::vector<int64_t>{11}));
  EXPECT_EQ(none.new_state.next_event_id(), 9);
}

TEST(DecideApplyReapplyTest, OriginAlreadyCopiedOnTheCurrentBranchIsNotReappliedAgain) {
  // The current branch already holds a copy of the late signal (another cluster reapplied it and
  // its copy replicated here before the original did).
  ForcedFailover run;
  run.current.push_back(CopyOf(run.late[3], 6, 2, kNow - 5));
  run.state = StoreBranches({run.current}, 0, run.store);
  const ApplyDecision decision =
      DecideApply(run.state, run.task, run.store, ActiveContext{2, kNow});
  ASSERT_EQ(decision.action, ApplyAction::kApply) << decision.reason;
  ASSERT_EQ(decision.reapply.appended.size(), 1u) << "only the cancel request is still to copy";
  EXPECT_TRUE(SameEvent(decision.reapply.appended[0], CopyOf(run.late[5], 7, 2, kNow)));
}

TEST(DecideApplyReapplyTest, ACopyOfACopyKeepsTheOriginalOrigin) {
  // Branch A (version 1): a signal at event 4. Branch B (version 2) forked from A at event 3
  // and, being current, reapplied the signal as its event 5. Branch C (version 3) forks from B
  // at event 4, before that copy, and wins: the signal must be reapplied on C once, with its
  // first origin (event 4, version 1), whether or not A itself is stored here.
  const std::vector<HistoryEvent> common = Branch({{1, WORKFLOW_EXECUTION_STARTED},
                                                   {1, ACTIVITY_TASK_SCHEDULED},
                                                   {1, ACTIVITY_TASK_COMPLETED}});
  const std::vector<HistoryEvent> a = Extend(common, 1, {WORKFLOW_EXECUTION_SIGNALED});
  std::vector<HistoryEvent> b = Extend(common, 2, {TIMER_STARTED});
  b.push_back(CopyOf(a[3], 5, 2, 5000));
  const std::vector<HistoryEvent> c = Extend(Prefix(b, 4), 3, {TIMER_FIRED});

  for (const bool with_a : {true, false}) {
    SCOPED_TRACE(with_a ? "branches B, A" : "branch B only");
    MapEventReader store;
    const WorkflowMutableState local =
        with_a ? StoreBranches({b, a}, 0, store) : StoreBranches({b}, 0, store);
    absl::StatusOr<std::vector<HistoryEvent>> before = FindEventsToReapply(local, store);
    ASSERT_TRUE(before.ok()) << before.status();
    ASSERT_TRUE(before->empty()) << "B already holds the copy";

    const ApplyDecision decision =
        DecideApply(local, TaskOf(c, 5, 5), store, ActiveContext{3, kNow});
    ASSERT_EQ(decision.action, ApplyAction::kApply) << decision.reason;
    EXPECT_EQ(decision.branch_change, BranchChange::kForked);
    EXPECT_TRUE(decision.switched_branch);
    ASSERT_EQ(decision.reapply.appended.size(), 1u);
    const HistoryEvent& copy = decision.reapply.appended[0];
    EXPECT_TRUE(SameOrigin(copy.reapplied_from(), Origin(4, 1)));
    EXPECT_EQ(copy.event_id(), 6);
    EXPECT_EQ(copy.version(), 3);
    EXPECT_EQ(copy.event_type(), WORKFLOW_EXECUTION_SIGNALED);
    EXPECT_EQ(copy.attributes(), a[3].attributes());
    EXPECT_TRUE(MessageDifferencer::Equals(*CurrentBranch(decision.new_state.version_histories()),
                                           History({{3, 1}, {4, 2}, {6, 3}})));
  }
}

TEST(DecideApplyReapplyTest, TerminationsAreReappliedAfterSignals) {
  // Two losing branches: A terminated the run; B (the task) has a cancel request and a signal.
  const std::vector<HistoryEvent> current = Extend(SharedPrefix(), 5, {TIMER_STARTED});
  const std::vector<HistoryEvent> a = Extend(SharedPrefix(), 1, {WORKFLOW_EXECUTION_TERMINATED});
  const std::vector<HistoryEvent> b =
      Extend(SharedPrefix(), 2, {WORKFLOW_EXECUTION_CANCEL_REQUESTED, WORKFLOW_EXECUTION_SIGNALED});
  MapEventReader store;
  const WorkflowMutableState local = StoreBranches({a, current}, 1, store);
  const ApplyDecision decision = DecideApply(local, TaskOf(b, 4, 5), store, ActiveContext{5, kNow});
  ASSERT_EQ(decision.action, ApplyAction::kApply) << decision.reason;
  EXPECT_EQ(Types(decision.reapply.appended),
            (std::vector<EventType>{WORKFLOW_EXECUTION_CANCEL_REQUESTED,
                                    WORKFLOW_EXECUTION_SIGNALED, WORKFLOW_EXECUTION_TERMINATED}));
  EXPECT_EQ(EventIds(decision.reapply.appended), (std::vector<int64_t>{5, 6, 7}));
  ASSERT_EQ(decision.reapply.appended.size(), 3u);
  EXPECT_TRUE(SameOrigin(decision.reapply.appended[2].reapplied_from(), Origin(4, 1)));
  EXPECT_EQ(decision.reapply.dropped_closed, 0);
  EXPECT_EQ(decision.new_state.status(), WORKFLOW_STATUS_TERMINATED);
  EXPECT_EQ(decision.new_state.next_event_id(), 8);
}

TEST(DecideApplyReapplyTest, ClosedRunDropsTheCandidates) {
  ForcedFailover run;
  run.current = Extend(SharedPrefix(), 2, {TIMER_STARTED, WORKFLOW_EXECUTION_COMPLETED});
  run.store = MapEventReader();
  run.state = StoreBranches({run.current}, 0, run.store);
  ASSERT_EQ(run.state.status(), WORKFLOW_STATUS_COMPLETED);
  const ApplyDecision decision =
      DecideApply(run.state, run.task, run.store, ActiveContext{2, kNow});
  ASSERT_EQ(decision.action, ApplyAction::kApply) << decision.reason;
  EXPECT_TRUE(decision.reapply.appended.empty());
  EXPECT_EQ(decision.reapply.dropped_closed, 2) << "the signal and the cancel request";
  EXPECT_EQ(EventIds(decision.events_to_write), (std::vector<int64_t>{4, 5, 6, 7, 8}));
  EXPECT_EQ(decision.new_state.status(), WORKFLOW_STATUS_COMPLETED);
  EXPECT_EQ(decision.new_state.next_event_id(), run.state.next_event_id());
  EXPECT_FALSE(decision.new_state.reapply_pending());
}

// A standby after a forced failover: the losing branch (index 0) has a signal at event 4 that
// the active cluster (version 2) has not reapplied yet, so reapply_pending is set. The store
// holds the run's events; a task's own events are not in it (they are what the task writes).
struct PendingStandby {
  std::vector<HistoryEvent> losing = Extend(SharedPrefix(), 1, {WORKFLOW_EXECUTION_SIGNALED});
  std::vector<HistoryEvent> current =
      Extend(SharedPrefix(), 2, {TIMER_STARTED, ACTIVITY_TASK_COMPLETED});
  MapEventReader store;
  WorkflowMutableState state = [this] {
    WorkflowMutableState s = StoreBranches({losing, current}, 1, store);
    s.set_reapply_pending(true);
    return s;
  }();
};

TEST(DecideApplyReapplyTest, StandbyWithAClosedRunHasNothingPendingUntilAnOpenBranchWins) {
  ForcedFailover run;
  run.current = Extend(SharedPrefix(), 2, {TIMER_STARTED, WORKFLOW_EXECUTION_COMPLETED});
  run.store = MapEventReader();
  run.state = StoreBranches({run.current}, 0, run.store);
  const ApplyDecision closed = DecideApply(run.state, run.task, run.store, std::nullopt);
  ASSERT_EQ(closed.action, ApplyAction::kApply) << closed.reason;
  EXPECT_TRUE(closed.reapply.appended.empty());
  EXPECT_FALSE(closed.reapply.pending) << "the active cluster drops them: nothing is left to do";
  EXPECT_FALSE(closed.new_state.reapply_pending());
  Store(closed, run.store);

  // A cluster that failed over to version 3 after event 3 kept the run open: its branch wins,
  // and the late signal and cancel request are again for the active cluster to reapply.
  const std::vector<HistoryEvent> open = Extend(SharedPrefix(), 3, {TIMER_STARTED});
  const ApplyDecision reopened =
      DecideApply(closed.new_state, TaskOf(open, 4, 4), run.store, std::nullopt);
  ASSERT_EQ(reopened.action, ApplyAction::kApply) << reopened.reason;
  EXPECT_TRUE(reopened.switched_branch);
  EXPECT_EQ(reopened.new_state.status(), WORKFLOW_STATUS_RUNNING);
  EXPECT_TRUE(reopened.reapply.pending);
  EXPECT_TRUE(reopened.new_state.reapply_pending());
}

TEST(DecideApplyReapplyTest, StandbyClearsPendingWhenTheRunCloses) {
  PendingStandby run;
  const std::vector<HistoryEvent> closed = Extend(run.current, 2, {WORKFLOW_EXECUTION_COMPLETED});
  const ApplyDecision decision =
      DecideApply(run.state, TaskOf(closed, 6, 6), run.store, std::nullopt);
  ASSERT_EQ(decision.action, ApplyAction::kApply) << decision.reason;
  EXPECT_EQ(decision.new_state.status(), WORKFLOW_STATUS_COMPLETED);
  EXPECT_FALSE(decision.new_state.reapply_pending());
  EXPECT_TRUE(decision.reapply.appended.empty());
}

TEST(DecideApplyReapplyTest, UnreadableEventsGiveAReadErrorNotACrash) {
  // Events of the branch that loses by the switch (read to find what to reapply).
  {
    const std::vector<HistoryEvent> local_branch =
        Extend(SharedPrefix(), 1, {WORKFLOW_EXECUTION_SIGNALED, TIMER_STARTED});
    const std::vector<HistoryEvent> remote_branch =
        Extend(SharedPrefix(), 2, {TIMER_STARTED, TIMER_FIRED});
    MapEventReader store;
    const WorkflowMutableState local = StoreBranches({local_branch}, 0, store);
    for (const std::optional<ActiveContext>& active :
         {std::optional<ActiveContext>(ActiveContext{2, kNow}), std::optional<ActiveContext>()}) {
      const FailingEventReader broken(&store, {{5, 1}});
      const ApplyDecision decision =
          DecideApply(local, TaskOf(remote_branch, 4, 5), broken, active);
      EXPECT_EQ(decision.action, ApplyAction::kReadError);
      EXPECT_FALSE(decision.reason.empty());
      EXPECT_TRUE(decision.events_to_write.empty());
    }
  }
  // Events of the current branch after the fork (read to find copies already made).
  {
    ForcedFailover run;
    const FailingEventReader broken(&run.store, {{4, 2}});
    const ApplyDecision decision = DecideApply(run.state, run.task, broken, ActiveContext{2, kNow});
    EXPECT_EQ(decision.action, ApplyAction::kReadError);
    EXPECT_FALSE(decision.reason.empty());
    EXPECT_TRUE(decision.events_to_write.empty());
  }
  // Nothing readable at all.
  {
    ForcedFailover run;
    const FailingEventReader broken;
    const ApplyDecision decision = DecideApply(run.state, run.task, broken, std::nullopt);
    EXPECT_EQ(decision.action, ApplyAction::kReadError);
    EXPECT_TRUE(decision.events_to_write.empty());
  }
}

TEST(DecideApplyReapplyTest, StandbyClearsPendingWhenTheActiveClustersCopiesArrive) {
  PendingStandby run;
  std::vector<HistoryEvent> with_copy = run.current;
  with_copy.push_back(CopyOf(run.losing[3], 6, 2, kNow));
  const ReplicationTask task = TaskOf(with_copy, 6, 6);
  const ApplyDecision decision = DecideApply(run.state, task, run.store, std::nullopt);
  ASSERT_EQ(decision.action, ApplyAction::kApply) << decision.reason;
  EXPECT_EQ(decision.branch_change, BranchChange::kExtendedCurrent);
  EXPECT_TRUE(decision.reapply.appended.empty());
  EXPECT_FALSE(decision.reapply.pending);
  EXPECT_FALSE(decision.new_state.reapply_pending());
  ASSERT_EQ(decision.events_to_write.size(), 1u);
  EXPECT_TRUE(SameEvent(decision.events_to_write[0], with_copy[5]));
  EXPECT_EQ(decision.new_state.next_event_id(), 7);
}

TEST(DecideApplyReapplyTest, StandbyStaysPendingWhileTheCurrentBranchGrowsWithoutCopies) {
  PendingStandby run;
  const std::vector<HistoryEvent> extended = Extend(run.current, 2, {TIMER_FIRED});
  const ApplyDecision decision =
      DecideApply(run.state, TaskOf(extended, 6, 6), run.store, std::nullopt);
  ASSERT_EQ(decision.action, ApplyAction::kApply) << decision.reason;
  EXPECT_EQ(decision.branch_change, BranchChange::kExtendedCurrent);
  EXPECT_TRUE(decision.reapply.appended.empty());
  EXPECT_TRUE(decision.new_state.reapply_pending());
  EXPECT_EQ(EventIds(decision.events_to_write), (std::vector<int64_t>{6}));
}

TEST(DecideApplyReapplyTest, PendingWorkIsDoneOnceThisClusterIsActive) {
  // The namespace failed over to this cluster (version 101); the old active cluster's last
  // event (version 2) arrives and extends the current branch.
  PendingStandby run;
  const std::vector<HistoryEvent> extended = Extend(run.current, 2, {TIMER_FIRED});
  const ApplyDecision decision =
      DecideApply(run.state, TaskOf(extended, 6, 6), run.store, ActiveContext{101, kNow});
  ASSERT_EQ(decision.action, ApplyAction::kApply) << decision.reason;
  EXPECT_EQ(decision.branch_change, BranchChange::kExtendedCurrent);
  ASSERT_EQ(decision.reapply.appended.size(), 1u);
  EXPECT_TRUE(SameEvent(decision.reapply.appended[0], CopyOf(run.losing[3], 7, 101, kNow)));
  EXPECT_EQ(EventIds(decision.events_to_write), (std::vector<int64_t>{6, 7}));
  EXPECT_FALSE(decision.new_state.reapply_pending());
  EXPECT_EQ(decision.new_state.next_event_id(), 8);
}

TEST(DecideApplyReapplyTest, PendingStandbyWithTheTasksEventsReadableClearsPending) {
  // The same as StandbyClearsPendingWhenTheActiveClustersCopiesArrive, with a reader that can
  // also serve the task's own events: isolates the reapplication rule from where events are read.
  PendingStandby run;
  std::vector<HistoryEvent> with_copy = run.current;
  with_copy.push_back(CopyOf(run.losing[3], 6, 2, kNow));
  MapEventReader with_task(&run.store);
  with_task.Add(with_copy[5]);
  const ApplyDecision decision =
      DecideApply(run.state, TaskOf(with_copy, 6, 6), with_task, std::nullopt);
  ASSERT_EQ(decision.action, ApplyAction::kApply) << decision.reason;
  EXPECT_FALSE(decision.new_state.reapply_pending());
  EXPECT_TRUE(decision.reapply.appended.empty());
}

}  // namespace
}  // namespace xdc
