// Unit and property tests of DecideApply, the pure conflict-resolution step.

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
#include "protocol/version_history.h"
#include "protocol/workflow_state.h"
#include "protocol/xdc.pb.h"
#include "tests/test_histories.h"

namespace xdc {
namespace {

using testing_util::History;
using testing_util::Items;

using ::google::protobuf::util::MessageDifferencer;

WorkflowKey Key() {
  WorkflowKey key;
  key.set_namespace_id("ns");
  key.set_workflow_id("wf");
  key.set_run_id("run");
  return key;
}

EventType TypeFor(int64_t event_id) {
  return event_id == 1 ? WORKFLOW_EXECUTION_STARTED : WORKFLOW_EXECUTION_SIGNALED;
}

HistoryEvent MakeEvent(int64_t event_id, int64_t version, EventType type) {
  HistoryEvent event;
  event.set_event_id(event_id);
  event.set_version(version);
  event.set_event_time_unix_micros(1000 * event_id + version);
  event.set_event_type(type);
  event.set_attributes("payload-" + std::to_string(event_id) + "-" + std::to_string(version));
  return event;
}

// A task carrying `items` and the events [first, last], each with the version `items` gives it.
ReplicationTask MakeTask(const Items& items, int64_t first, int64_t last) {
  ReplicationTask task;
  task.set_shard(0);
  task.set_source_cluster("west");
  *task.mutable_workflow() = Key();
  const VersionHistory history = History(items);
  *task.mutable_version_history_items() = history.items();
  for (int64_t id = first; id <= last; ++id) {
    absl::StatusOr<int64_t> version = VersionOfEvent(history, id);
    *task.add_events() = MakeEvent(id, version.ok() ? *version : 0, TypeFor(id));
  }
  return task;
}

// The local state after the events 1..last of `items` on one branch.
WorkflowMutableState LocalState(const Items& items) {
  WorkflowMutableState state = NewWorkflowState(Key());
  const VersionHistory history = History(items);
  for (int64_t id = 1; id <= LastEventId(history); ++id) {
    const absl::Status status =
        ApplyEventToState(state, MakeEvent(id, *VersionOfEvent(history, id), TypeFor(id)));
    EXPECT_TRUE(status.ok()) << status;
  }
  return state;
}

std::vector<int64_t> EventIds(const std::vector<HistoryEvent>& events) {
  std::vector<int64_t> ids;
  for (const HistoryEvent& event : events) ids.push_back(event.event_id());
  return ids;
}

TEST(ApplyActionNameTest, Names) {
  EXPECT_STREQ(ApplyActionName(ApplyAction::kApply), "apply");
  EXPECT_STREQ(ApplyActionName(ApplyAction::kDuplicate), "duplicate");
  EXPECT_STREQ(ApplyActionName(ApplyAction::kGap), "gap");
  EXPECT_STREQ(ApplyActionName(ApplyAction::kFork), "fork");
  EXPECT_STREQ(ApplyActionName(ApplyAction::kInvalid), "invalid");
}

TEST(DecideApplyTest, NewWorkflowBatchFromOneApplies) {
  const ReplicationTask task = MakeTask({{3, 1}}, 1, 3);
  const ApplyDecision decision = DecideApply(std::nullopt, task);
  ASSERT_EQ(decision.action, ApplyAction::kApply) << decision.reason;
  EXPECT_EQ(EventIds(decision.events_to_write), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(decision.duplicate_events, 0);
  EXPECT_EQ(decision.new_state.next_event_id(), 4);
  EXPECT_EQ(decision.new_state.status(), WORKFLOW_STATUS_RUNNING);
  EXPECT_TRUE(MessageDifferencer::Equals(decision.new_state.key(), Key()));
  ASSERT_NE(CurrentBranch(decision.new_state.version_histories()), nullptr);
  EXPECT_TRUE(MessageDifferencer::Equals(*CurrentBranch(decision.new_state.version_histories()),
                                         History({{3, 1}})));
  for (int i = 0; i < task.events_size(); ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals(decision.events_to_write[i], task.events(i)));
  }
}

TEST(DecideApplyTest, NewWorkflowBatchFromThreeIsAGap) {
  const ApplyDecision decision = DecideApply(std::nullopt, MakeTask({{5, 1}}, 3, 5));
  EXPECT_EQ(decision.action, ApplyAction::kGap);
  EXPECT_EQ(decision.expected_event_id, 1);
  EXPECT_TRUE(decision.events_to_write.empty());
  EXPECT_FALSE(decision.reason.empty());
}

TEST(DecideApplyTest, AppendExactlyAtNextApplies) {
  const WorkflowMutableState local = LocalState({{3, 1}});
  const ApplyDecision decision = DecideApply(local, MakeTask({{5, 1}}, 4, 5));
  ASSERT_EQ(decision.action, ApplyAction::kApply) << decision.reason;
  EXPECT_EQ(EventIds(decision.events_to_write), (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(decision.duplicate_events, 0);
  EXPECT_EQ(decision.new_state.next_event_id(), 6);
  EXPECT_TRUE(MessageDifferencer::Equals(*CurrentBranch(decision.new_state.version_histories()),
                                         History({{5, 1}})));
}

TEST(DecideApplyTest, AppendWithHigherVersionAtNextApplies) {
  // The other cluster failed over (version 2) after event 3, which we hold.
  const WorkflowMutableState local = LocalState({{3, 1}});
  const ApplyDecision decision = DecideApply(local, MakeTask({{3, 1}, {5, 2}}, 4, 5));
  ASSERT_EQ(decision.action, ApplyAction::kApply) << decision.reason;
  EXPECT_EQ(EventIds(decision.events_to_write), (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(decision.new_state.next_event_id(), 6);
  EXPECT_TRUE(MessageDifferencer::Equals(*CurrentBranch(decision.new_state.version_histories()),
                                         History({{3, 1}, {5, 2}})));
}

TEST(DecideApplyTest, FullDuplicate) {
  const WorkflowMutableState local = LocalState({{5, 1}});
  for (const auto& [first, last] : {std::pair<int64_t, int64_t>(1, 5), {2, 4}, {5, 5}, {1, 1}}) {
    const ApplyDecision decision = DecideApply(local, MakeTask({{last, 1}}, first, last));
    EXPECT_EQ(decision.action, ApplyAction::kDuplicate) << first << ".." << last;
    EXPECT_EQ(decision.duplicate_events, last - first + 1);
    EXPECT_TRUE(decision.events_to_write.empty());
    EXPECT_FALSE(decision.reason.empty());
  }
}

TEST(DecideApplyTest, PartialOverlapWritesOnlyTheSuffix) {
  const WorkflowMutableState local = LocalState({{3, 1}});
  const ReplicationTask task = MakeTask({{6, 1}}, 2, 6);
  const ApplyDecision decision = DecideApply(local, task);
  ASSERT_EQ(decision.action, ApplyAction::kApply) << decision.reason;
  EXPECT_EQ(EventIds(decision.events_to_write), (std::vector<int64_t>{4, 5, 6}));
  EXPECT_EQ(decision.duplicate_events, 2);
  EXPECT_EQ(decision.new_state.next_event_id(), 7);
  EXPECT_TRUE(MessageDifferencer::Equals(*CurrentBranch(decision.new_state.version_histories()),
                                         History({{6, 1}})));
  EXPECT_TRUE(MessageDifferencer::Equals(decision.events_to_write[0], task.events(2)));
}

TEST(DecideApplyTest, Gap) {
  const WorkflowMutableState local = LocalState({{3, 1}});
  const ApplyDecision decision = DecideApply(local, MakeTask({{7, 1}}, 6, 7));
  EXPECT_EQ(decision.action, ApplyAction::kGap);
  EXPECT_EQ(decision.expected_event_id, 4);
  EXPECT_TRUE(decision.events_to_write.empty());
  EXPECT_FALSE(decision.reason.empty());
}

TEST(DecideApplyTest, HigherVersionDivergingAfterLcaIsAFork) {
  const WorkflowMutableState local = LocalState({{5, 1}});
  const ApplyDecision decision = DecideApply(local, MakeTask({{3, 1}, {6, 2}}, 4, 6));
  EXPECT_EQ(decision.action, ApplyAction::kFork);
  EXPECT_EQ(decision.lca.event_id(), 3);
  EXPECT_EQ(decision.lca.version(), 1);
  EXPECT_TRUE(decision.events_to_write.empty());
  EXPECT_FALSE(decision.reason.empty());
}

TEST(DecideApplyTest, LowerVersionDivergingAfterLcaIsAFork) {
  // Local failed over to version 2 after event 3; the old active cluster kept writing version 1.
  const WorkflowMutableState local = LocalState({{3, 1}, {6, 2}});
  const ApplyDecision decision = DecideApply(local, MakeTask({{5, 1}}, 4, 5));
  EXPECT_EQ(decision.action, ApplyAction::kFork);
  EXPECT_EQ(decision.lca.event_id(), 3);
  EXPECT_EQ(decision.lca.version(), 1);
}

TEST(DecideApplyTest, NoCommonEventIsAForkAtZero) {
  const WorkflowMutableState local = LocalState({{2, 1}});
  const ApplyDecision decision = DecideApply(local, MakeTask({{2, 2}}, 1, 2));
  EXPECT_EQ(decision.action, ApplyAction::kFork);
  EXPECT_EQ(decision.lca.event_id(), 0);
  EXPECT_FALSE(decision.reason.empty());
}

TEST(DecideApplyTest, IncomingEntirelyOnSharedPrefixIsADuplicate) {
  {
    const WorkflowMutableState local = LocalState({{5, 1}});
    const ApplyDecision decision = DecideApply(local, MakeTask({{3, 1}}, 2, 3));
    EXPECT_EQ(decision.action, ApplyAction::kDuplicate);
    EXPECT_EQ(decision.duplicate_events, 2);
  }
  {
    const WorkflowMutableState local = LocalState({{3, 1}, {6, 2}});
    const ApplyDecision decision = DecideApply(local, MakeTask({{2, 1}}, 1, 2));
    EXPECT_EQ(decision.action, ApplyAction::kDuplicate);
    EXPECT_EQ(decision.duplicate_events, 2);
  }
}

TEST(DecideApplyTest, BatchThatTheStateRejectsIsInvalid) {
  WorkflowMutableState local = LocalState({{2, 1}});
  ASSERT_TRUE(ApplyEventToState(local, MakeEvent(3, 1, WORKFLOW_EXECUTION_COMPLETED)).ok());
  const ApplyDecision decision = DecideApply(local, MakeTask({{4, 1}}, 4, 4));
  EXPECT_EQ(decision.action, ApplyAction::kInvalid);
  EXPECT_FALSE(decision.reason.empty());
}

void ExpectInvalid(const ReplicationTask& task, const std::string& what) {
  EXPECT_FALSE(ValidateReplicationTask(task).ok()) << what;
  for (const std::optional<WorkflowMutableState>& local :
       {std::optional<WorkflowMutableState>(), std::optional(LocalState({{3, 1}}))}) {
    const ApplyDecision decision = DecideApply(local, task);
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
      ReplicationTask task;
      *task.mutable_workflow() = Key();
      task.set_source_cluster("west");
      VersionHistoryItem* item = task.add_version_history_items();
      item->set_event_id(last);
      item->set_version(kVersion);
      for (int64_t id = first; id <= last; ++id) *task.add_events() = source[id - 1];
      batches.push_back(std::move(task));
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
    std::map<int64_t, int> written;  // event id -> times written
    int steps = 0;
    while (!pending.empty()) {
      ASSERT_LT(++steps, 100000) << "iteration " << iteration << " does not converge";
      const size_t index = std::uniform_int_distribution<size_t>(0, pending.size() - 1)(rng);
      ReplicationTask task = std::move(pending[index]);
      pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(index));
      const ApplyDecision decision = DecideApply(local, task);
      switch (decision.action) {
        case ApplyAction::kApply:
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
        case ApplyAction::kFork:
        case ApplyAction::kInvalid:
          FAIL() << "iteration " << iteration << ": unexpected " << ApplyActionName(decision.action)
                 << ": " << decision.reason;
      }
    }
    ASSERT_TRUE(local.has_value()) << "iteration " << iteration;
    EXPECT_EQ(local->next_event_id(), n + 1) << "iteration " << iteration;
    EXPECT_EQ(local->status(), completes ? WORKFLOW_STATUS_COMPLETED : WORKFLOW_STATUS_RUNNING)
        << "iteration " << iteration;
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
