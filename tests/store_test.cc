// Tests of the RocksDB store: identity, StoreWrite (events, state, outbox, DLQ and progress in one
// WriteBatch), branch and event reads, the DLQ and its counters, group commit and its latching.

#include "store/store.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "chaos/fault_points.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "protocol/version_history.h"
#include "protocol/workflow_state.h"
#include "protocol/xdc.pb.h"
#include "tests/armed_fault.h"
#include "tests/test_histories.h"

namespace xdc {
namespace {

using testing_util::History;
using testing_util::Items;

using ::google::protobuf::util::MessageDifferencer;
using ::testing::HasSubstr;

StoreIdentity Identity(const std::string& cluster = "east", int32_t shard_count = 4,
                       int64_t initial_version = 1) {
  StoreIdentity identity;
  identity.set_cluster_name(cluster);
  identity.set_shard_count(shard_count);
  identity.set_initial_failover_version(initial_version);
  identity.set_failover_version_increment(100);
  return identity;
}

WorkflowKey Key(const std::string& namespace_id, const std::string& workflow_id,
                const std::string& run_id = "run-1") {
  WorkflowKey key;
  key.set_namespace_id(namespace_id);
  key.set_workflow_id(workflow_id);
  key.set_run_id(run_id);
  return key;
}

HistoryEvent MakeEvent(int64_t event_id, int64_t version) {
  HistoryEvent event;
  event.set_event_id(event_id);
  event.set_version(version);
  event.set_event_time_unix_micros(1000 * event_id + version);
  event.set_event_type(event_id == 1 ? WORKFLOW_EXECUTION_STARTED : WORKFLOW_EXECUTION_SIGNALED);
  event.set_attributes("attributes-" + std::to_string(event_id) + "-" + std::to_string(version));
  return event;
}

// Events [first, last] of `branch`, each with the version the branch gives it.
std::vector<HistoryEvent> BranchEvents(const Items& items, int64_t first, int64_t last) {
  const VersionHistory history = History(items);
  std::vector<HistoryEvent> events;
  for (int64_t id = first; id <= last; ++id) {
    events.push_back(MakeEvent(id, *VersionOfEvent(history, id)));
  }
  return events;
}

// The mutable state of `key` after every event of the single branch `items`.
WorkflowMutableState StateAfter(const WorkflowKey& key, const Items& items) {
  WorkflowMutableState state = NewWorkflowState(key);
  for (const HistoryEvent& event : BranchEvents(items, 1, LastEventId(History(items)))) {
    const absl::Status status = ApplyEventToState(state, event);
    EXPECT_TRUE(status.ok()) << status;
  }
  return state;
}

// A write that starts the run of `key` with events 1..n of version 1 and queues its task on the
// outbox of `shard`.
StoreWrite StartRun(const WorkflowKey& key, int64_t n, int32_t shard, bool starts_run = true) {
  StoreWrite write;
  WorkflowWrite& workflow = write.workflows.emplace_back();
  workflow.state = StateAfter(key, {{n, 1}});
  workflow.events = BranchEvents({{n, 1}}, 1, n);
  workflow.starts_run = starts_run;
  ReplicationTask& task = write.outbox_task.emplace();
  task.set_shard(shard);
  task.set_source_cluster("east");
  *task.mutable_workflow() = key;
  VersionHistoryItem* item = task.add_version_history_items();
  item->set_event_id(n);
  item->set_version(1);
  for (const HistoryEvent& event : workflow.events) *task.add_events() = event;
  return write;
}

std::vector<int64_t> EventIds(const google::protobuf::RepeatedPtrField<HistoryEvent>& events) {
  std::vector<int64_t> ids;
  for (const HistoryEvent& event : events) ids.push_back(event.event_id());
  return ids;
}

void ExpectEventsEqual(const google::protobuf::RepeatedPtrField<HistoryEvent>& actual,
                       const std::vector<HistoryEvent>& expected) {
  ASSERT_EQ(actual.size(), static_cast<int>(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals(actual[static_cast<int>(i)], expected[i]))
        << "event " << i << ": " << actual[static_cast<int>(i)].DebugString() << " vs "
        << expected[i].DebugString();
  }
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = (std::filesystem::path(::testing::TempDir()) /
            ("xdc_store_test_" + std::to_string(::getpid()) + "_" + info->name() + "_" +
             std::to_string(counter++)))
               .string();
    std::filesystem::remove_all(dir_);
  }

  void TearDown() override {
    store_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  absl::StatusOr<std::unique_ptr<Store>> OpenWith(const StoreIdentity& identity) {
    StoreOptions options;
    options.path = dir_;
    options.identity = identity;
    return Store::Open(options);
  }

  // Opens (or reopens, closing the current one first) the store with the default identity.
  void Reopen() {
    store_.reset();
    absl::StatusOr<std::unique_ptr<Store>> store = OpenWith(Identity());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  // Commits `write`, expecting success; returns its outbox task id (-1 if it had none, or on
  // failure).
  int64_t Commit(StoreWrite& write) {
    absl::StatusOr<int64_t> task_id = store_->CommitWrite(write);
    EXPECT_TRUE(task_id.ok()) << task_id.status();
    return task_id.ok() ? *task_id : -1;
  }

  // Commits `writes` as one group (held, all queued, released), expecting every one to succeed.
  // `writes` must not be resized meanwhile.
  void CommitAsOneGroup(std::vector<StoreWrite>& writes) {
    std::vector<Store::WriteTicket> tickets(writes.size());
    const uint64_t groups_before = store_->SyncedGroups();
    store_->HoldCommits();
    for (size_t i = 0; i < writes.size(); ++i) {
      const absl::Status queued = store_->QueueWrite(writes[i], tickets[i]);
      EXPECT_TRUE(queued.ok()) << queued;
      if (!queued.ok()) {
        store_->ReleaseCommits();
        return;
      }
    }
    EXPECT_EQ(store_->QueuedCommits(), writes.size());
    store_->ReleaseCommits();
    for (size_t i = 0; i < writes.size(); ++i) {
      const absl::StatusOr<int64_t> done = store_->WaitWrite(writes[i], tickets[i]);
      EXPECT_TRUE(done.ok()) << "write " << i << ": " << done.status();
    }
    EXPECT_EQ(store_->SyncedGroups(), groups_before + 1) << "the writes were not one group";
  }

  // Every DLQ entry, ascending.
  std::vector<ParkedTask> AllParked() {
    absl::StatusOr<std::vector<ParkedTask>> parked =
        store_->ListParked(std::numeric_limits<size_t>::max());
    EXPECT_TRUE(parked.ok()) << parked.status();
    return parked.ok() ? *std::move(parked) : std::vector<ParkedTask>();
  }

  std::vector<int64_t> ParkedSequences() {
    std::vector<int64_t> sequences;
    for (const ParkedTask& entry : AllParked()) sequences.push_back(entry.sequence());
    return sequences;
  }

  // ParkedCount() and AwaitingResendCount() agree with the stored entries, before and after a
  // reopen (which recounts them).
  void ExpectDlqCountersMatchEntries() {
    for (int pass = 0; pass < 2; ++pass) {
      SCOPED_TRACE(pass == 0 ? "before reopen" : "after reopen");
      const std::vector<ParkedTask> entries = AllParked();
      int64_t awaiting = 0;
      for (const ParkedTask& entry : entries) awaiting += entry.awaiting_resend() ? 1 : 0;
      EXPECT_EQ(store_->ParkedCount(), static_cast<int64_t>(entries.size()));
      EXPECT_EQ(store_->AwaitingResendCount(), awaiting);
      if (pass == 0) {
        ASSERT_NO_FATAL_FAILURE(Reopen());
      }
    }
  }

  std::string dir_;
  std::unique_ptr<Store> store_;
};

// ---------------------------------------------------------------------------------------------
// Identity
// ---------------------------------------------------------------------------------------------

TEST_F(StoreTest, OpenCreates) {
  ASSERT_FALSE(std::filesystem::exists(dir_));
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_TRUE(std::filesystem::is_directory(dir_));
  EXPECT_TRUE(MessageDifferencer::Equals(store_->identity(), Identity()));
  for (int32_t shard = 0; shard < 4; ++shard) {
    EXPECT_EQ(store_->OutboxNextTaskId(shard), 0);
    EXPECT_EQ(store_->PublishedTaskId(shard), 0);
  }
  EXPECT_EQ(store_->ParkedCount(), 0);
  absl::StatusOr<std::vector<NamespaceRecord>> namespaces = store_->ListNamespaces();
  ASSERT_TRUE(namespaces.ok()) << namespaces.status();
  EXPECT_TRUE(namespaces->empty());
}

TEST_F(StoreTest, ReopenWithSameIdentity) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_TRUE(MessageDifferencer::Equals(store_->identity(), Identity()));
}

TEST_F(StoreTest, ReopenWithDifferentClusterFails) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  store_.reset();
  absl::StatusOr<std::unique_ptr<Store>> store = OpenWith(Identity("west"));
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  const std::string message(store.status().message());
  EXPECT_THAT(message, HasSubstr("east"));
  EXPECT_THAT(message, HasSubstr("west"));
  // The refusal changed nothing: the right identity still opens.
  ASSERT_NO_FATAL_FAILURE(Reopen());
}

TEST_F(StoreTest, ReopenWithDifferentShardCountFails) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  store_.reset();
  absl::StatusOr<std::unique_ptr<Store>> store = OpenWith(Identity("east", 8));
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("shard_count"));
}

TEST_F(StoreTest, ReopenWithDifferentInitialVersionFails) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  store_.reset();
  absl::StatusOr<std::unique_ptr<Store>> store = OpenWith(Identity("east", 4, 2));
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
}

// ---------------------------------------------------------------------------------------------
// Namespaces
// ---------------------------------------------------------------------------------------------

TEST_F(StoreTest, PutAndListNamespaces) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  NamespaceRecord record;
  record.set_id("ns-1");
  record.set_name("orders");
  record.add_clusters("east");
  record.add_clusters("west");
  record.set_active_cluster("east");
  record.set_failover_version(1);
  record.set_state(NAMESPACE_STATE_ACTIVE);
  StoreWrite first;
  first.namespace_record = record;
  ASSERT_TRUE(store_->CommitWrite(first).ok());
  record.set_failover_version(2);
  record.set_active_cluster("west");
  StoreWrite second;
  second.namespace_record = record;
  ASSERT_TRUE(store_->CommitWrite(second).ok());  // overwrites
  ASSERT_NO_FATAL_FAILURE(Reopen());
  absl::StatusOr<std::vector<NamespaceRecord>> namespaces = store_->ListNamespaces();
  ASSERT_TRUE(namespaces.ok()) << namespaces.status();
  ASSERT_EQ(namespaces->size(), 1u);
  EXPECT_TRUE(MessageDifferencer::Equals((*namespaces)[0], record));
}

// Entering HANDOVER is one write: the record and a marker on every shard, each marker after the
// tasks already in that shard's outbox. A handover target's state is stored the same way.
TEST_F(StoreTest, HandoverRecordAndMarkersCommitTogether) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  StoreWrite append;
  append.outbox_task = ReplicationTask();
  append.outbox_task->set_shard(2);
  ASSERT_TRUE(store_->CommitWrite(append).ok());

  NamespaceRecord record;
  record.set_id("ns-1");
  record.set_state(NAMESPACE_STATE_HANDOVER);
  StoreWrite handover;
  handover.namespace_record = record;
  for (int32_t shard = 0; shard < 4; ++shard) {
    ReplicationTask marker;
    marker.set_shard(shard);
    marker.mutable_handover_marker()->set_namespace_id("ns-1");
    handover.handover_markers.push_back(marker);
  }
  HandoverTargetState target;
  target.set_namespace_id("ns-2");
  target.set_decided_version(12);
  handover.handover_states.push_back(target);
  ASSERT_TRUE(store_->CommitWrite(handover).ok());

  ASSERT_NO_FATAL_FAILURE(Reopen());
  for (int32_t shard = 0; shard < 4; ++shard) {
    absl::StatusOr<std::vector<ReplicationTask>> outbox = store_->ReadOutbox(shard, 0, 10);
    ASSERT_TRUE(outbox.ok()) << outbox.status();
    ASSERT_EQ(outbox->size(), shard == 2 ? 2u : 1u) << "shard " << shard;
    EXPECT_TRUE(outbox->back().has_handover_marker());
    EXPECT_EQ(outbox->back().task_id(), shard == 2 ? 1 : 0);
  }
  absl::StatusOr<std::vector<NamespaceRecord>> namespaces = store_->ListNamespaces();
  ASSERT_TRUE(namespaces.ok());
  ASSERT_EQ(namespaces->size(), 1u);
  EXPECT_EQ((*namespaces)[0].state(), NAMESPACE_STATE_HANDOVER);
  absl::StatusOr<std::vector<HandoverTargetState>> states = store_->ListHandoverStates();
  ASSERT_TRUE(states.ok());
  ASSERT_EQ(states->size(), 1u);
  EXPECT_TRUE(MessageDifferencer::Equals((*states)[0], target));
}

// ---------------------------------------------------------------------------------------------
// Writes: events, state and the outbox
// ---------------------------------------------------------------------------------------------

TEST_F(StoreTest, CommitWriteWritesEventsStateAndOutbox) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  const WorkflowKey key = Key("ns", "wf-1");
  StoreWrite write = StartRun(key, 3, /*shard=*/2);
  EXPECT_EQ(Commit(write), 0);
  EXPECT_EQ(write.outbox_task->task_id(), 0);

  absl::StatusOr<std::optional<WorkflowMutableState>> state = store_->GetWorkflowState(key);
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_TRUE(state->has_value());
  EXPECT_TRUE(MessageDifferencer::Equals(**state, write.workflows[0].state));

  absl::StatusOr<google::protobuf::RepeatedPtrField<HistoryEvent>> events =
      store_->ReadBranch(key, *CurrentBranch((*state)->version_histories()));
  ASSERT_TRUE(events.ok()) << events.status();
  ExpectEventsEqual(*events, write.workflows[0].events);

  absl::StatusOr<std::vector<ReplicationTask>> outbox = store_->ReadOutbox(2, 0, 100);
  ASSERT_TRUE(outbox.ok()) << outbox.status();
  ASSERT_EQ(outbox->size(), 1u);
  EXPECT_TRUE(MessageDifferencer::Equals((*outbox)[0], *write.outbox_task));
  EXPECT_EQ(store_->OutboxNextTaskId(2), 1);

  // Nothing else was touched.
  absl::StatusOr<std::optional<WorkflowMutableState>> other =
      store_->GetWorkflowState(Key("ns", "wf-2"));
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_FALSE(other->has_value());
  for (int32_t shard : {0, 1, 3}) {
    EXPECT_EQ(store_->OutboxNextTaskId(shard), 0);
    absl::StatusOr<std::vector<ReplicationTask>> empty = store_->ReadOutbox(shard, 0, 100);
    ASSERT_TRUE(empty.ok()) << empty.status();
    EXPECT_TRUE(empty->empty()) << "shard " << shard;
  }
}

TEST_F(StoreTest, TaskIdsArePerShardInCommitOrder) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  std::vector<StoreWrite> writes;
  for (int i = 0; i < 3; ++i) writes.push_back(StartRun(Key("ns", "a-" + std::to_string(i)), 2, 1));
  writes.push_back(StartRun(Key("ns", "b"), 2, 3));
  writes.push_back(StartRun(Key("ns", "c"), 2, 1));
  std::vector<int64_t> task_ids;
  for (StoreWrite& write : writes) task_ids.push_back(Commit(write));
  EXPECT_EQ(task_ids, (std::vector<int64_t>{0, 1, 2, 0, 3}));
  EXPECT_EQ(store_->OutboxNextTaskId(0), 0);
  EXPECT_EQ(store_->OutboxNextTaskId(1), 4);
  EXPECT_EQ(store_->OutboxNextTaskId(2), 0);
  EXPECT_EQ(store_->OutboxNextTaskId(3), 1);

  absl::StatusOr<std::vector<ReplicationTask>> outbox = store_->ReadOutbox(1, 0, 100);
  ASSERT_TRUE(outbox.ok()) << outbox.status();
  ASSERT_EQ(outbox->size(), 4u);
  const std::vector<std::string> expected_workflows = {"a-0", "a-1", "a-2", "c"};
  for (size_t i = 0; i < outbox->size(); ++i) {
    EXPECT_EQ((*outbox)[i].task_id(), static_cast<int64_t>(i));
    EXPECT_EQ((*outbox)[i].workflow().workflow_id(), expected_workflows[i]);
  }
}

TEST_F(StoreTest, OutboxReadAndMarkPublished) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  std::vector<StoreWrite> writes;
  for (int i = 0; i < 3; ++i)
    writes.push_back(StartRun(Key("ns", "wf-" + std::to_string(i)), 1, 0));
  writes.push_back(StartRun(Key("ns", "other-shard"), 1, 1));
  for (StoreWrite& write : writes) Commit(write);
  EXPECT_EQ(store_->OutboxNextTaskId(0), 3);
  EXPECT_EQ(store_->PublishedTaskId(0), 0);

  auto read_ids = [&](int32_t shard, int64_t from, size_t max) {
    std::vector<int64_t> ids;
    absl::StatusOr<std::vector<ReplicationTask>> tasks = store_->ReadOutbox(shard, from, max);
    EXPECT_TRUE(tasks.ok()) << tasks.status();
    if (tasks.ok()) {
      for (const ReplicationTask& task : *tasks) ids.push_back(task.task_id());
    }
    return ids;
  };
  EXPECT_EQ(read_ids(0, 0, 100), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(read_ids(0, 1, 100), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(read_ids(0, 0, 2), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(read_ids(0, 1, 1), (std::vector<int64_t>{1}));
  EXPECT_EQ(read_ids(0, 3, 100), (std::vector<int64_t>{}));

  ASSERT_TRUE(store_->MarkPublished(0, 2).ok());
  EXPECT_EQ(store_->PublishedTaskId(0), 2);
  EXPECT_EQ(read_ids(0, 0, 100), (std::vector<int64_t>{2}));  // tasks below 2 are deleted
  EXPECT_EQ(read_ids(1, 0, 100), (std::vector<int64_t>{0}));  // other shards untouched
  EXPECT_EQ(store_->PublishedTaskId(1), 0);

  // The pointer and the next task id survive a reopen.
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(store_->PublishedTaskId(0), 2);
  EXPECT_EQ(store_->OutboxNextTaskId(0), 3);
  EXPECT_EQ(store_->OutboxNextTaskId(1), 1);
  EXPECT_EQ(read_ids(0, 0, 100), (std::vector<int64_t>{2}));

  // With everything published the outbox is empty, and the next task id still survives.
  ASSERT_TRUE(store_->MarkPublished(0, 3).ok());
  EXPECT_EQ(read_ids(0, 0, 100), (std::vector<int64_t>{}));
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(store_->PublishedTaskId(0), 3);
  EXPECT_EQ(store_->OutboxNextTaskId(0), 3);
  StoreWrite next = StartRun(Key("ns", "wf-after"), 1, 0);
  EXPECT_EQ(Commit(next), 3);
  EXPECT_EQ(read_ids(0, 0, 100), (std::vector<int64_t>{3}));
}

// Every open is a new incarnation, persisted before Open returns, and every outbox task carries
// the incarnation that wrote it: a store restored from a backup opens with an incarnation its lost
// state already used, which is how peers can tell (protocol/startup_check.h).
TEST_F(StoreTest, EveryOpenIsANewIncarnationThatOutboxTasksCarry) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(store_->incarnation(), 1);
  StoreWrite first = StartRun(Key("ns", "wf-1"), 1, 0);
  Commit(first);
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(store_->incarnation(), 2);
  StoreWrite second = StartRun(Key("ns", "wf-2"), 1, 0);
  Commit(second);
  absl::StatusOr<std::vector<ReplicationTask>> outbox = store_->ReadOutbox(0, 0, 10);
  ASSERT_TRUE(outbox.ok()) << outbox.status();
  ASSERT_EQ(outbox->size(), 2u);
  EXPECT_EQ((*outbox)[0].source_incarnation(), 1);
  EXPECT_EQ((*outbox)[1].source_incarnation(), 2);
}

// A raised task id floor moves the shard's next task id for good (a reopen keeps it), and
// publishing past the ids never assigned removes nothing else.
TEST_F(StoreTest, ARaisedTaskIdFloorHoldsAcrossReopen) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  StoreWrite before = StartRun(Key("ns", "wf-1"), 1, 0);
  EXPECT_EQ(Commit(before), 0);
  StoreWrite raise;
  raise.task_id_floors = {500'000, 0};  // shard 0 up; shard 1 not lowered
  Commit(raise);
  EXPECT_EQ(store_->OutboxNextTaskId(0), 500'000);
  StoreWrite after = StartRun(Key("ns", "wf-2"), 1, 0);
  EXPECT_EQ(Commit(after), 500'000);
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(store_->OutboxNextTaskId(0), 500'001);
  ASSERT_TRUE(store_->MarkPublished(0, 500'000).ok());  // over 0 and the ids never assigned
  absl::StatusOr<std::vector<ReplicationTask>> outbox = store_->ReadOutbox(0, 0, 10);
  ASSERT_TRUE(outbox.ok()) << outbox.status();
  ASSERT_EQ(outbox->size(), 1u);
  EXPECT_EQ((*outbox)[0].task_id(), 500'000);
  StoreWrite lower;
  lower.task_id_floors = {10};
  Commit(lower);
  EXPECT_EQ(store_->OutboxNextTaskId(0), 500'001);  // a floor never lowers
}

// The request index (idempotent writes) points at the request's events, and of two writes of one
// request id the one of the newer failover version wins whatever order they come in.
TEST_F(StoreTest, TheRequestIndexKeepsTheNewestVersionOfARequest) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  auto tagged = [&](const std::string& workflow, int64_t version) {
    StoreWrite write = StartRun(Key("ns", workflow), 2, 0);
    for (HistoryEvent& event : write.workflows[0].events) event.set_version(version);
    write.workflows[0].events[0].mutable_request()->set_request_id("req-1");
    write.workflows[0].events[0].mutable_request()->set_event_count(2);
    return write;
  };
  StoreWrite newer = tagged("on-the-winning-branch", 2);
  StoreWrite older = tagged("on-the-losing-branch", 1);
  Commit(newer);
  Commit(older);  // arrives later, at an older version: the index keeps the newer one
  absl::StatusOr<std::optional<RequestRecord>> found = store_->GetRequest("ns", "req-1");
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->workflow().workflow_id(), "on-the-winning-branch");
  EXPECT_EQ((*found)->first_event_id(), 1);
  EXPECT_EQ((*found)->next_event_id(), 3);
  EXPECT_EQ((*found)->version(), 2);
  found = store_->GetRequest("ns", "req-2");
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_FALSE(found->has_value());
  found = store_->GetRequest("other-ns", "req-1");
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_FALSE(found->has_value());
}

TEST_F(StoreTest, GetCurrentRunSetWhenStartsRun) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  StoreWrite first = StartRun(Key("ns", "wf", "run-1"), 1, 0, /*starts_run=*/true);
  Commit(first);
  StoreWrite not_current = StartRun(Key("ns", "other", "run-x"), 1, 0, /*starts_run=*/false);
  Commit(not_current);

  absl::StatusOr<std::optional<std::string>> run = store_->GetCurrentRun("ns", "wf");
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_TRUE(run->has_value());
  EXPECT_EQ(**run, "run-1");
  run = store_->GetCurrentRun("ns", "other");
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_FALSE(run->has_value());
  run = store_->GetCurrentRun("ns2", "wf");
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_FALSE(run->has_value());

  // A later run (it started later: the current run only moves to a run that started after it,
  // see CurrentRunOnlyMovesToALaterRun).
  StoreWrite second = StartRun(Key("ns", "wf", "run-2"), 1, 0, /*starts_run=*/true);
  second.workflows[0].state.set_start_time_unix_micros(
      first.workflows[0].state.start_time_unix_micros() + 1);
  Commit(second);
  run = store_->GetCurrentRun("ns", "wf");
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_TRUE(run->has_value());
  EXPECT_EQ(**run, "run-2");
}

// ---------------------------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------------------------

TEST_F(StoreTest, ReadBranchWithSharedPrefix) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  const WorkflowKey key = Key("ns", "wf");
  const Items version1 = {{5, 1}};
  const Items version2 = {{3, 1}, {6, 2}};
  {
    StoreWrite write;
    write.workflows.push_back({StateAfter(key, {{3, 1}}), BranchEvents(version1, 1, 3), true});
    EXPECT_EQ(Commit(write), -1);  // no outbox task
  }
  {
    StoreWrite write;
    write.workflows.push_back({StateAfter(key, version1), BranchEvents(version1, 4, 5), false});
    EXPECT_EQ(Commit(write), -1);
  }
  {
    StoreWrite write;
    write.workflows.push_back({StateAfter(key, version2), BranchEvents(version2, 4, 6), false});
    EXPECT_EQ(Commit(write), -1);
  }
  // Another workflow whose key shares a string prefix must not leak into the reads.
  {
    StoreWrite write;
    const WorkflowKey neighbour = Key("ns", "wf", "run-10");
    write.workflows.push_back(
        {StateAfter(neighbour, {{7, 1}}), BranchEvents({{7, 1}}, 1, 7), false});
    EXPECT_EQ(Commit(write), -1);
  }

  absl::StatusOr<google::protobuf::RepeatedPtrField<HistoryEvent>> events =
      store_->ReadBranch(key, History(version1));
  ASSERT_TRUE(events.ok()) << events.status();
  ExpectEventsEqual(*events, BranchEvents(version1, 1, 5));

  events = store_->ReadBranch(key, History(version2));
  ASSERT_TRUE(events.ok()) << events.status();
  ExpectEventsEqual(*events, BranchEvents(version2, 1, 6));
  EXPECT_EQ(EventIds(*events), (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));

  events = store_->ReadBranch(key, History({{3, 1}}));
  ASSERT_TRUE(events.ok()) << events.status();
  ExpectEventsEqual(*events, BranchEvents(version1, 1, 3));

  events = store_->ReadBranch(key, History({{4, 1}, {5, 2}}));
  ASSERT_TRUE(events.ok()) << events.status();
  ExpectEventsEqual(*events, BranchEvents({{4, 1}, {5, 2}}, 1, 5));

  events = store_->ReadBranch(key, VersionHistory());
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_TRUE(events->empty());

  // A branch whose events are not all stored is DATA_LOSS, not a short read.
  EXPECT_EQ(store_->ReadBranch(key, History({{3, 1}, {7, 2}})).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(store_->ReadBranch(key, History({{2, 1}, {6, 2}})).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(store_->ReadBranch(Key("ns", "missing"), History({{1, 1}})).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST_F(StoreTest, ForEachWorkflowVisitsOnlyTheNamespace) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  const std::vector<WorkflowKey> keys = {
      Key("ns", "a"), Key("ns", "b", "run-1"), Key("ns", "b", "run-2"),
      Key("n", "sa"), Key("ns2", "a"),         Key("nsx", "a"),
      Key("", "ns")};
  for (const WorkflowKey& key : keys) {
    StoreWrite write = StartRun(key, 1, 0);
    Commit(write);
  }
  std::set<std::string> visited;
  ASSERT_TRUE(store_
                  ->ForEachWorkflow("ns",
                                    [&](const WorkflowMutableState& state) {
                                      EXPECT_EQ(state.key().namespace_id(), "ns");
                                      visited.insert(state.key().workflow_id() + "/" +
                                                     state.key().run_id());
                                      return absl::OkStatus();
                                    })
                  .ok());
  EXPECT_EQ(visited, (std::set<std::string>{"a/run-1", "b/run-1", "b/run-2"}));

  int calls = 0;
  ASSERT_TRUE(store_
                  ->ForEachWorkflow("no-such-namespace",
                                    [&](const WorkflowMutableState&) {
                                      ++calls;
                                      return absl::OkStatus();
                                    })
                  .ok());
  EXPECT_EQ(calls, 0);

  // An error from the visitor stops the scan and is returned.
  calls = 0;
  const absl::Status status = store_->ForEachWorkflow("ns", [&](const WorkflowMutableState&) {
    ++calls;
    return absl::CancelledError("stop");
  });
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(calls, 1);
}

TEST_F(StoreTest, ReadEventFindsEventsOfEveryBranch) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  const WorkflowKey key = Key("ns", "wf");
  StoreWrite start = StartRun(key, 3, 0);
  Commit(start);
  // Event 3 again, on a branch that forks after event 2 with version 2.
  const Items fork = {{2, 1}, {3, 2}};
  StoreWrite forked;
  forked.workflows.push_back({StateAfter(key, fork), BranchEvents(fork, 3, 3), false});
  EXPECT_EQ(Commit(forked), -1);

  for (const auto& [event_id, version] :
       std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {2, 1}, {3, 1}, {3, 2}}) {
    absl::StatusOr<HistoryEvent> event = store_->ReadEvent(key, event_id, version);
    ASSERT_TRUE(event.ok()) << "event " << event_id << "@" << version << ": " << event.status();
    EXPECT_TRUE(MessageDifferencer::Equals(*event, MakeEvent(event_id, version)))
        << event->DebugString();
  }

  // NOT_FOUND: an id past the end, a version the id was never written with, another run, another
  // workflow.
  EXPECT_EQ(store_->ReadEvent(key, 4, 1).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->ReadEvent(key, 2, 2).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->ReadEvent(key, 0, 1).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->ReadEvent(Key("ns", "wf", "run-2"), 1, 1).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->ReadEvent(Key("ns", "wf-other"), 1, 1).status().code(),
            absl::StatusCode::kNotFound);
}

// ---------------------------------------------------------------------------------------------
// Progress and the DLQ
// ---------------------------------------------------------------------------------------------

ParkedTask MakeParked(ParkReason reason, int64_t offset, const std::string& error,
                      bool awaiting_resend = false) {
  ParkedTask parked;
  parked.set_source_cluster("west");
  parked.set_shard(1);
  parked.set_kafka_offset(offset);
  parked.set_reason(reason);
  parked.set_error(error);
  parked.set_raw_message("raw-" + std::to_string(offset));
  parked.set_attempts(1);
  parked.set_awaiting_resend(awaiting_resend);
  *parked.mutable_workflow() = Key("ns", "wf");
  return parked;
}

// A write that only adds `count` DLQ entries, the `awaiting`-th ones (0-based) awaiting a resend.
StoreWrite ParkEntries(int count, const std::set<int>& awaiting = {}) {
  StoreWrite write;
  for (int i = 0; i < count; ++i) {
    write.parked.push_back(
        MakeParked(PARK_REASON_GAP, 100 + i, "gap " + std::to_string(i), awaiting.count(i) > 0));
  }
  return write;
}

TEST_F(StoreTest, CommitWriteWritesProgressAndParkedTasks) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  const WorkflowKey key = Key("ns", "applied");
  StoreWrite write;
  write.workflows.push_back({StateAfter(key, {{2, 2}}), BranchEvents({{2, 2}}, 1, 2), true});
  write.parked.push_back(MakeParked(PARK_REASON_GAP, 10, "gap: events [3, 5) are missing"));
  write.parked.push_back(MakeParked(PARK_REASON_CORRUPT_MESSAGE, 11, "checksum mismatch"));
  ProgressWrite progress;
  progress.source_cluster = "west";
  progress.shard = 1;
  progress.progress.set_next_offset(12);
  progress.progress.set_events_applied(2);
  progress.progress.set_tasks_parked(2);
  write.progress.push_back(progress);
  ProgressWrite other = progress;
  other.shard = 3;
  other.progress.set_next_offset(99);
  write.progress.push_back(other);
  EXPECT_EQ(Commit(write), -1);
  // DLQ sequences start at 1 (0 marks a new entry).
  EXPECT_EQ(write.parked[0].sequence(), 1);
  EXPECT_EQ(write.parked[1].sequence(), 2);

  auto check = [&] {
    EXPECT_EQ(store_->ParkedCount(), 2);
    EXPECT_EQ(store_->AwaitingResendCount(), 0);
    absl::StatusOr<std::vector<ParkedTask>> parked = store_->ListParked(100);
    ASSERT_TRUE(parked.ok()) << parked.status();
    ASSERT_EQ(parked->size(), 2u);
    EXPECT_EQ((*parked)[0].sequence(), 1);
    EXPECT_EQ((*parked)[0].reason(), PARK_REASON_GAP);
    EXPECT_EQ((*parked)[0].kafka_offset(), 10);
    EXPECT_EQ((*parked)[0].error(), "gap: events [3, 5) are missing");
    EXPECT_GT((*parked)[0].parked_unix_micros(), 0);
    EXPECT_EQ((*parked)[1].sequence(), 2);
    EXPECT_EQ((*parked)[1].reason(), PARK_REASON_CORRUPT_MESSAGE);
    EXPECT_EQ((*parked)[1].raw_message(), "raw-11");

    absl::StatusOr<std::vector<ParkedTask>> first = store_->ListParked(1);
    ASSERT_TRUE(first.ok()) << first.status();
    ASSERT_EQ(first->size(), 1u);
    EXPECT_EQ((*first)[0].sequence(), 1);

    absl::StatusOr<ShardApplyProgress> stored = store_->GetApplyProgress("west", 1);
    ASSERT_TRUE(stored.ok()) << stored.status();
    EXPECT_TRUE(MessageDifferencer::Equals(*stored, progress.progress));
    stored = store_->GetApplyProgress("west", 3);
    ASSERT_TRUE(stored.ok()) << stored.status();
    EXPECT_EQ(stored->next_offset(), 99);
    stored = store_->GetApplyProgress("west", 2);
    ASSERT_TRUE(stored.ok()) << stored.status();
    EXPECT_EQ(stored->next_offset(), 0);
    stored = store_->GetApplyProgress("north", 1);
    ASSERT_TRUE(stored.ok()) << stored.status();
    EXPECT_EQ(stored->next_offset(), 0);

    absl::StatusOr<std::optional<WorkflowMutableState>> state = store_->GetWorkflowState(key);
    ASSERT_TRUE(state.ok()) << state.status();
    ASSERT_TRUE(state->has_value());
    EXPECT_EQ((*state)->next_event_id(), 3);
    absl::StatusOr<std::optional<std::string>> run = store_->GetCurrentRun("ns", "applied");
    ASSERT_TRUE(run.ok()) << run.status();
    ASSERT_TRUE(run->has_value());
    EXPECT_EQ(**run, "run-1");
  };
  ASSERT_NO_FATAL_FAILURE(check());

  // The counts and the sequence survive a reopen.
  ASSERT_NO_FATAL_FAILURE(Reopen());
  ASSERT_NO_FATAL_FAILURE(check());
  StoreWrite more;
  more.parked.push_back(MakeParked(PARK_REASON_FORK, 12, "fork"));
  EXPECT_EQ(Commit(more), -1);
  EXPECT_EQ(more.parked[0].sequence(), 3);
  EXPECT_EQ(store_->ParkedCount(), 3);
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(store_->ParkedCount(), 3);
  absl::StatusOr<std::vector<ParkedTask>> parked = store_->ListParked(100);
  ASSERT_TRUE(parked.ok()) << parked.status();
  ASSERT_EQ(parked->size(), 3u);
  EXPECT_EQ((*parked)[2].sequence(), 3);
  EXPECT_EQ((*parked)[2].reason(), PARK_REASON_FORK);
}

// Daemon::Stop clears the listener while other threads still commit outbox tasks: once
// SetOutboxListener returns, the old listener is not running and is never called again. Before
// the listener was guarded this was a data race on the std::function, which scripts/test-tsan.sh
// reports here: the counters are relaxed atomics so that the test itself orders nothing between
// the thread that clears the listener and the commit thread.
TEST_F(StoreTest, AClearedOutboxListenerIsNeverCalledAgain) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  constexpr auto kRelaxed = std::memory_order_relaxed;
  std::atomic<int> calls{0};
  std::atomic<bool> cleared{false};
  std::atomic<int> calls_after_clear{0};
  store_->SetOutboxListener([&](const std::vector<int32_t>&) {
    calls.fetch_add(1, kRelaxed);
    if (cleared.load(kRelaxed)) calls_after_clear.fetch_add(1, kRelaxed);
  });
  std::atomic<bool> stop{false};
  std::atomic<int> committed{0};
  std::thread writer([&] {
    for (int i = 0; !stop.load(kRelaxed); ++i) {
      StoreWrite write = StartRun(Key("ns", absl::StrCat("listener-", i)), 1, /*shard=*/i % 4);
      absl::StatusOr<int64_t> task_id = store_->CommitWrite(write);
      if (!task_id.ok()) {
        ADD_FAILURE() << "commit " << i << ": " << task_id.status();
        return;
      }
      committed.fetch_add(1, kRelaxed);
    }
  });
  while (calls.load(kRelaxed) < 3) std::this_thread::yield();
  store_->SetOutboxListener(nullptr);
  cleared.store(true, kRelaxed);
  // Commits with outbox tasks go on after the listener is gone.
  const int committed_at_clear = committed.load(kRelaxed);
  while (committed.load(kRelaxed) < committed_at_clear + 3) std::this_thread::yield();
  stop.store(true, kRelaxed);
  writer.join();
  EXPECT_EQ(calls_after_clear.load(), 0);
}

TEST_F(StoreTest, OneWriteCommitsWorkflowsOutboxProgressAndParkedTogether) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  std::vector<std::vector<int32_t>> listener_calls;
  std::mutex mu;
  store_->SetOutboxListener([&](const std::vector<int32_t>& shards) {
    std::lock_guard lock(mu);
    listener_calls.push_back(shards);
  });
  const uint64_t groups_before = store_->SyncedGroups();
  const uint64_t writes_before = store_->SyncedWrites();

  const WorkflowKey first = Key("ns", "mixed-1");
  const WorkflowKey second = Key("ns", "mixed-2", "run-7");
  StoreWrite write = StartRun(first, 2, /*shard=*/2);
  write.workflows.push_back({StateAfter(second, {{3, 1}}), BranchEvents({{3, 1}}, 1, 3), true});
  write.parked.push_back(MakeParked(PARK_REASON_GAP, 40, "gap", /*awaiting_resend=*/true));
  write.parked.push_back(MakeParked(PARK_REASON_INVALID_TASK, 41, "invalid"));
  ProgressWrite progress{"west", 1, ShardApplyProgress()};
  progress.progress.set_next_offset(42);
  progress.progress.set_events_applied(5);
  progress.progress.set_tasks_parked(2);
  write.progress.push_back(progress);
  ASSERT_FALSE(write.empty());
  EXPECT_EQ(Commit(write), 0);

  // One synced write in one synced group, and one listener call for the outbox's shard.
  EXPECT_EQ(store_->SyncedGroups(), groups_before + 1);
  EXPECT_EQ(store_->SyncedWrites(), writes_before + 1);
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(listener_calls.size(), 1u);
    EXPECT_EQ(listener_calls[0], (std::vector<int32_t>{2}));
  }
  EXPECT_EQ(write.parked[0].sequence(), 1);
  EXPECT_EQ(write.parked[1].sequence(), 2);

  auto check = [&] {
    for (const WorkflowWrite& workflow : write.workflows) {
      const WorkflowKey& key = workflow.state.key();
      SCOPED_TRACE(key.workflow_id());
      absl::StatusOr<std::optional<WorkflowMutableState>> state = store_->GetWorkflowState(key);
      ASSERT_TRUE(state.ok()) << state.status();
      ASSERT_TRUE(state->has_value());
      EXPECT_TRUE(MessageDifferencer::Equals(**state, workflow.state));
      absl::StatusOr<google::protobuf::RepeatedPtrField<HistoryEvent>> events =
          store_->ReadBranch(key, *CurrentBranch((*state)->version_histories()));
      ASSERT_TRUE(events.ok()) << events.status();
      ExpectEventsEqual(*events, workflow.events);
      absl::StatusOr<std::optional<std::string>> run =
          store_->GetCurrentRun(key.namespace_id(), key.workflow_id());
      ASSERT_TRUE(run.ok()) << run.status();
      ASSERT_TRUE(run->has_value());
      EXPECT_EQ(**run, key.run_id());
    }
    absl::StatusOr<std::vector<ReplicationTask>> outbox = store_->ReadOutbox(2, 0, 100);
    ASSERT_TRUE(outbox.ok()) << outbox.status();
    ASSERT_EQ(outbox->size(), 1u);
    EXPECT_TRUE(MessageDifferencer::Equals((*outbox)[0], *write.outbox_task));
    EXPECT_EQ(store_->OutboxNextTaskId(2), 1);

    absl::StatusOr<ShardApplyProgress> stored = store_->GetApplyProgress("west", 1);
    ASSERT_TRUE(stored.ok()) << stored.status();
    EXPECT_TRUE(MessageDifferencer::Equals(*stored, progress.progress));

    const std::vector<ParkedTask> parked = AllParked();
    ASSERT_EQ(parked.size(), 2u);
    EXPECT_TRUE(MessageDifferencer::Equals(parked[0], write.parked[0])) << parked[0].DebugString();
    EXPECT_TRUE(MessageDifferencer::Equals(parked[1], write.parked[1])) << parked[1].DebugString();
    EXPECT_EQ(store_->ParkedCount(), 2);
    EXPECT_EQ(store_->AwaitingResendCount(), 1);
  };
  ASSERT_NO_FATAL_FAILURE(check());
  ASSERT_NO_FATAL_FAILURE(Reopen());
  ASSERT_NO_FATAL_FAILURE(check());
}

TEST_F(StoreTest, UnparkedDeletesEntries) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  StoreWrite park = ParkEntries(3, /*awaiting=*/{1});
  Commit(park);
  EXPECT_EQ(ParkedSequences(), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(store_->ParkedCount(), 3);
  EXPECT_EQ(store_->AwaitingResendCount(), 1);

  // Deleting the entry awaiting a resend lowers both counters.
  StoreWrite unpark;
  unpark.unparked.push_back(2);
  ASSERT_FALSE(unpark.empty());
  EXPECT_EQ(Commit(unpark), -1);
  EXPECT_EQ(ParkedSequences(), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(store_->ParkedCount(), 2);
  EXPECT_EQ(store_->AwaitingResendCount(), 0);
  absl::StatusOr<std::optional<ParkedTask>> gone = store_->GetParked(2);
  ASSERT_TRUE(gone.ok()) << gone.status();
  EXPECT_FALSE(gone->has_value());

  // Deleting a missing sequence (already deleted, never assigned, 0) is harmless.
  StoreWrite missing;
  missing.unparked = {2, 99, 0};
  EXPECT_EQ(Commit(missing), -1);
  EXPECT_EQ(ParkedSequences(), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(store_->ParkedCount(), 2);
  EXPECT_EQ(store_->AwaitingResendCount(), 0);
  ASSERT_NO_FATAL_FAILURE(ExpectDlqCountersMatchEntries());
  EXPECT_EQ(store_->ParkedCount(), 2);

  // Deleting several entries in one write.
  StoreWrite rest;
  rest.unparked = {1, 3};
  Commit(rest);
  EXPECT_TRUE(AllParked().empty());
  EXPECT_EQ(store_->ParkedCount(), 0);
  EXPECT_EQ(store_->AwaitingResendCount(), 0);
  ASSERT_NO_FATAL_FAILURE(ExpectDlqCountersMatchEntries());
  EXPECT_EQ(store_->ParkedCount(), 0);
}

TEST_F(StoreTest, ReplacingAParkedEntryKeepsTheCountAndTracksAwaitingResend) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  StoreWrite park = ParkEntries(2, /*awaiting=*/{0});
  Commit(park);
  EXPECT_EQ(store_->ParkedCount(), 2);
  EXPECT_EQ(store_->AwaitingResendCount(), 1);

  auto get = [&](int64_t sequence) {
    absl::StatusOr<std::optional<ParkedTask>> entry = store_->GetParked(sequence);
    EXPECT_TRUE(entry.ok()) << entry.status();
    EXPECT_TRUE(entry.ok() && entry->has_value()) << "sequence " << sequence;
    return entry.ok() && entry->has_value() ? **entry : ParkedTask();
  };
  auto replace = [&](const ParkedTask& entry) {
    StoreWrite write;
    write.parked.push_back(entry);
    EXPECT_EQ(Commit(write), -1);
    EXPECT_EQ(write.parked[0].sequence(), entry.sequence());  // not a new entry
  };

  // Awaiting true -> false (resends given up), as a retry with more attempts.
  ParkedTask first = get(1);
  const int64_t parked_at = first.parked_unix_micros();
  first.set_awaiting_resend(false);
  first.set_attempts(3);
  first.set_error("gave up waiting for a resend");
  replace(first);
  EXPECT_EQ(store_->ParkedCount(), 2);
  EXPECT_EQ(store_->AwaitingResendCount(), 0);
  ParkedTask stored = get(1);
  EXPECT_TRUE(MessageDifferencer::Equals(stored, first)) << stored.DebugString();
  EXPECT_EQ(stored.parked_unix_micros(), parked_at);

  // Awaiting false -> true.
  ParkedTask second = get(2);
  second.set_awaiting_resend(true);
  second.set_expected_event_id(7);
  replace(second);
  EXPECT_EQ(store_->ParkedCount(), 2);
  EXPECT_EQ(store_->AwaitingResendCount(), 1);
  EXPECT_TRUE(get(2).awaiting_resend());
  EXPECT_EQ(get(2).expected_event_id(), 7);

  // Awaiting true -> true and false -> false change no counter.
  second.set_attempts(2);
  replace(second);
  first.set_attempts(4);
  replace(first);
  EXPECT_EQ(store_->ParkedCount(), 2);
  EXPECT_EQ(store_->AwaitingResendCount(), 1);
  EXPECT_EQ(ParkedSequences(), (std::vector<int64_t>{1, 2}));

  // Both counters are recovered on reopen, and new entries continue the sequence.
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(store_->ParkedCount(), 2);
  EXPECT_EQ(store_->AwaitingResendCount(), 1);
  EXPECT_EQ(get(2).attempts(), 2);
  EXPECT_EQ(get(1).attempts(), 4);
  StoreWrite more = ParkEntries(1, /*awaiting=*/{0});
  Commit(more);
  EXPECT_EQ(more.parked[0].sequence(), 3);
  EXPECT_EQ(store_->ParkedCount(), 3);
  EXPECT_EQ(store_->AwaitingResendCount(), 2);
  ASSERT_NO_FATAL_FAILURE(ExpectDlqCountersMatchEntries());
  EXPECT_EQ(store_->ParkedCount(), 3);
  EXPECT_EQ(store_->AwaitingResendCount(), 2);
}

// Concurrent DLQ changes (an operator's purge, the applier's resend retries) can land in one
// commit group; the counters must still match the stored entries.
TEST_F(StoreTest, DlqCountersStayExactWhenOneWriteDeletesAnEntryTwice) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  StoreWrite park = ParkEntries(2, /*awaiting=*/{0});
  Commit(park);
  StoreWrite unpark;
  unpark.unparked = {1, 1};  // the second is a missing sequence by then: harmless
  EXPECT_EQ(Commit(unpark), -1);
  EXPECT_EQ(ParkedSequences(), (std::vector<int64_t>{2}));
  EXPECT_EQ(store_->ParkedCount(), 1);
  EXPECT_EQ(store_->AwaitingResendCount(), 0);
  ASSERT_NO_FATAL_FAILURE(ExpectDlqCountersMatchEntries());
}

TEST_F(StoreTest, DlqCountersStayExactWhenOneGroupDeletesAnEntryTwice) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  StoreWrite park = ParkEntries(2, /*awaiting=*/{0});
  Commit(park);
  std::vector<StoreWrite> writes(2);
  writes[0].unparked.push_back(1);
  writes[1].unparked.push_back(1);
  ASSERT_NO_FATAL_FAILURE(CommitAsOneGroup(writes));
  EXPECT_EQ(ParkedSequences(), (std::vector<int64_t>{2}));
  EXPECT_EQ(store_->ParkedCount(), 1);
  EXPECT_EQ(store_->AwaitingResendCount(), 0);
  ASSERT_NO_FATAL_FAILURE(ExpectDlqCountersMatchEntries());
}

TEST_F(StoreTest, DlqCountersStayExactWhenOneGroupDeletesAndReplacesAnEntry) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  StoreWrite park = ParkEntries(2, /*awaiting=*/{0});
  Commit(park);
  absl::StatusOr<std::optional<ParkedTask>> entry = store_->GetParked(1);
  ASSERT_TRUE(entry.ok() && entry->has_value());
  std::vector<StoreWrite> writes(2);
  writes[0].unparked.push_back(1);
  ParkedTask retried = **entry;
  retried.set_attempts(retried.attempts() + 1);
  writes[1].parked.push_back(retried);
  ASSERT_NO_FATAL_FAILURE(CommitAsOneGroup(writes));
  // Whichever outcome the store chooses for the entry, its counters must describe it.
  ASSERT_NO_FATAL_FAILURE(ExpectDlqCountersMatchEntries());
}

TEST_F(StoreTest, DlqCountersStayExactWhenOneGroupReplacesAnEntryTwice) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  StoreWrite park = ParkEntries(1);
  Commit(park);
  absl::StatusOr<std::optional<ParkedTask>> entry = store_->GetParked(1);
  ASSERT_TRUE(entry.ok() && entry->has_value());
  std::vector<StoreWrite> writes(2);
  ParkedTask awaiting = **entry;
  awaiting.set_awaiting_resend(true);
  writes[0].parked.push_back(awaiting);
  ParkedTask given_up = **entry;
  given_up.set_awaiting_resend(false);
  given_up.set_attempts(5);
  writes[1].parked.push_back(given_up);
  ASSERT_NO_FATAL_FAILURE(CommitAsOneGroup(writes));
  // The later write wins: the entry is not awaiting a resend.
  absl::StatusOr<std::optional<ParkedTask>> stored = store_->GetParked(1);
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_FALSE((*stored)->awaiting_resend());
  EXPECT_EQ((*stored)->attempts(), 5);
  EXPECT_EQ(store_->ParkedCount(), 1);
  EXPECT_EQ(store_->AwaitingResendCount(), 0);
  ASSERT_NO_FATAL_FAILURE(ExpectDlqCountersMatchEntries());
}

TEST_F(StoreTest, ListParkedPagesFromASequence) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  StoreWrite park = ParkEntries(5);
  Commit(park);
  auto list = [&](size_t limit, int64_t from) {
    std::vector<int64_t> sequences;
    absl::StatusOr<std::vector<ParkedTask>> page = store_->ListParked(limit, from);
    EXPECT_TRUE(page.ok()) << page.status();
    if (page.ok()) {
      for (const ParkedTask& entry : *page) sequences.push_back(entry.sequence());
    }
    return sequences;
  };
  EXPECT_EQ(list(100, 0), (std::vector<int64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(list(100, 1), (std::vector<int64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(list(100, 4), (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(list(2, 2), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(list(100, 6), (std::vector<int64_t>{}));
  EXPECT_EQ(list(0, 0), (std::vector<int64_t>{}));

  // Paging the way the applier does: each page starts after the last one's last sequence.
  std::vector<std::vector<int64_t>> pages;
  for (int64_t from = 0;;) {
    std::vector<int64_t> page = list(2, from);
    if (page.empty()) break;
    pages.push_back(page);
    from = page.back() + 1;
    ASSERT_LE(pages.size(), 10u) << "paging does not advance";
  }
  EXPECT_EQ(pages, (std::vector<std::vector<int64_t>>{{1, 2}, {3, 4}, {5}}));

  // A page may start in a gap left by deleted entries.
  StoreWrite unpark;
  unpark.unparked = {3, 4};
  Commit(unpark);
  EXPECT_EQ(list(2, 3), (std::vector<int64_t>{5}));
  EXPECT_EQ(list(1, 2), (std::vector<int64_t>{2}));
}

TEST_F(StoreTest, GetParkedFindsOnlyStoredEntries) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  StoreWrite park = ParkEntries(2, /*awaiting=*/{1});
  Commit(park);
  for (int64_t sequence : {1, 2}) {
    absl::StatusOr<std::optional<ParkedTask>> entry = store_->GetParked(sequence);
    ASSERT_TRUE(entry.ok()) << entry.status();
    ASSERT_TRUE(entry->has_value()) << "sequence " << sequence;
    EXPECT_TRUE(MessageDifferencer::Equals(**entry, park.parked[sequence - 1]))
        << (*entry)->DebugString();
  }
  for (int64_t sequence : {-1, 0, 3, 1000}) {
    absl::StatusOr<std::optional<ParkedTask>> entry = store_->GetParked(sequence);
    ASSERT_TRUE(entry.ok()) << entry.status();
    EXPECT_FALSE(entry->has_value()) << "sequence " << sequence;
  }
  StoreWrite unpark;
  unpark.unparked.push_back(1);
  Commit(unpark);
  absl::StatusOr<std::optional<ParkedTask>> deleted = store_->GetParked(1);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_FALSE(deleted->has_value());
}

// ---------------------------------------------------------------------------------------------
// Group commit
// ---------------------------------------------------------------------------------------------

TEST_F(StoreTest, GroupCommitIsDeterministic) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  constexpr int kWriters = 8;
  const uint64_t groups_before = store_->SyncedGroups();
  const uint64_t writes_before = store_->SyncedWrites();

  std::vector<StoreWrite> writes;
  for (int i = 0; i < kWriters; ++i) {
    writes.push_back(StartRun(Key("ns", "group-" + std::to_string(i)), 2, i % 4));
  }
  std::vector<absl::StatusOr<int64_t>> results(kWriters, absl::UnknownError("not run"));

  store_->HoldCommits();
  std::vector<std::thread> threads;
  for (int i = 0; i < kWriters; ++i) {
    threads.emplace_back([&, i] { results[i] = store_->CommitWrite(writes[i]); });
  }
  // Wait for the condition "all writers queued"; the deadline only bounds a broken run.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (store_->QueuedCommits() < static_cast<size_t>(kWriters) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  const size_t queued = store_->QueuedCommits();
  EXPECT_EQ(store_->SyncedGroups(), groups_before);  // held: nothing written yet
  EXPECT_EQ(store_->SyncedWrites(), writes_before);
  store_->ReleaseCommits();
  for (std::thread& thread : threads) thread.join();
  ASSERT_EQ(queued, static_cast<size_t>(kWriters));

  EXPECT_EQ(store_->SyncedGroups(), groups_before + 1);
  EXPECT_EQ(store_->SyncedWrites(), writes_before + kWriters);
  EXPECT_EQ(store_->QueuedCommits(), 0u);

  std::vector<std::set<int64_t>> task_ids(4);
  for (int i = 0; i < kWriters; ++i) {
    ASSERT_TRUE(results[i].ok()) << results[i].status();
    task_ids[i % 4].insert(*results[i]);
    const WorkflowWrite& workflow = writes[i].workflows[0];
    absl::StatusOr<std::optional<WorkflowMutableState>> state =
        store_->GetWorkflowState(workflow.state.key());
    ASSERT_TRUE(state.ok()) << state.status();
    ASSERT_TRUE(state->has_value()) << "writer " << i;
    EXPECT_TRUE(MessageDifferencer::Equals(**state, workflow.state));
    absl::StatusOr<google::protobuf::RepeatedPtrField<HistoryEvent>> events =
        store_->ReadBranch(workflow.state.key(), *CurrentBranch((*state)->version_histories()));
    ASSERT_TRUE(events.ok()) << events.status();
    ExpectEventsEqual(*events, workflow.events);
  }
  for (int32_t shard = 0; shard < 4; ++shard) {
    EXPECT_EQ(task_ids[shard], (std::set<int64_t>{0, 1})) << "shard " << shard;
    EXPECT_EQ(store_->OutboxNextTaskId(shard), 2);
  }
}

TEST_F(StoreTest, QueuedWritesGetTaskIdsInQueueOrder) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  std::vector<StoreWrite> writes;
  for (int i = 0; i < 4; ++i) writes.push_back(StartRun(Key("ns", "q-" + std::to_string(i)), 1, 1));
  writes.emplace_back();  // no outbox task: WaitWrite answers -1
  writes.back().progress.push_back({"west", 0, ShardApplyProgress()});
  std::vector<Store::WriteTicket> tickets(writes.size());
  store_->HoldCommits();
  // Queued in reverse: queue order, not construction order, decides the task ids.
  for (size_t i = writes.size(); i-- > 0;) {
    ASSERT_TRUE(store_->QueueWrite(writes[i], tickets[i]).ok());
  }
  store_->ReleaseCommits();
  std::vector<int64_t> task_ids;
  for (size_t i = 0; i < writes.size(); ++i) {
    absl::StatusOr<int64_t> task_id = store_->WaitWrite(writes[i], tickets[i]);
    ASSERT_TRUE(task_id.ok()) << task_id.status();
    task_ids.push_back(*task_id);
  }
  EXPECT_EQ(task_ids, (std::vector<int64_t>{3, 2, 1, 0, -1}));
  EXPECT_EQ(store_->OutboxNextTaskId(1), 4);
}

TEST_F(StoreTest, UnsyncedWritesAreNotCountedAsSynced) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  const uint64_t groups_before = store_->SyncedGroups();
  const uint64_t writes_before = store_->SyncedWrites();

  StoreWrite unsynced = StartRun(Key("ns", "unsynced-0"), 1, 0);
  unsynced.durability = Durability::kUnsynced;
  EXPECT_EQ(Commit(unsynced), 0);
  EXPECT_EQ(store_->SyncedGroups(), groups_before);
  EXPECT_EQ(store_->SyncedWrites(), writes_before);

  // A group of unsynced writes only is not counted either.
  std::vector<StoreWrite> only_unsynced;
  for (int i = 1; i <= 2; ++i) {
    only_unsynced.push_back(StartRun(Key("ns", "unsynced-" + std::to_string(i)), 1, 0));
    only_unsynced.back().durability = Durability::kUnsynced;
  }
  {
    std::vector<Store::WriteTicket> tickets(only_unsynced.size());
    store_->HoldCommits();
    for (size_t i = 0; i < only_unsynced.size(); ++i) {
      ASSERT_TRUE(store_->QueueWrite(only_unsynced[i], tickets[i]).ok());
    }
    EXPECT_EQ(store_->QueuedCommits(), 2u);
    store_->ReleaseCommits();
    for (size_t i = 0; i < only_unsynced.size(); ++i) {
      absl::StatusOr<int64_t> task_id = store_->WaitWrite(only_unsynced[i], tickets[i]);
      ASSERT_TRUE(task_id.ok()) << task_id.status();
      EXPECT_EQ(*task_id, static_cast<int64_t>(i) + 1);
    }
  }
  EXPECT_EQ(store_->SyncedGroups(), groups_before);
  EXPECT_EQ(store_->SyncedWrites(), writes_before);

  // A group with one synced write is synced; only that write counts.
  std::vector<StoreWrite> mixed;
  mixed.push_back(StartRun(Key("ns", "unsynced-3"), 1, 0));
  mixed.back().durability = Durability::kUnsynced;
  mixed.push_back(StartRun(Key("ns", "synced"), 1, 0));
  ASSERT_NO_FATAL_FAILURE(CommitAsOneGroup(mixed));
  EXPECT_EQ(store_->SyncedGroups(), groups_before + 1);
  EXPECT_EQ(store_->SyncedWrites(), writes_before + 1);

  // Unsynced writes are visible at once, and survive a clean close.
  for (int pass = 0; pass < 2; ++pass) {
    for (const std::string workflow_id :
         {"unsynced-0", "unsynced-1", "unsynced-2", "unsynced-3", "synced"}) {
      absl::StatusOr<std::optional<WorkflowMutableState>> state =
          store_->GetWorkflowState(Key("ns", workflow_id));
      ASSERT_TRUE(state.ok()) << state.status();
      EXPECT_TRUE(state->has_value()) << workflow_id << " pass " << pass;
    }
    EXPECT_EQ(store_->OutboxNextTaskId(0), 5);
    if (pass == 0) {
      ASSERT_NO_FATAL_FAILURE(Reopen());
    }
  }
  // The counters count since the store opened.
  EXPECT_EQ(store_->SyncedGroups(), 0u);
  EXPECT_EQ(store_->SyncedWrites(), 0u);
}

TEST_F(StoreTest, OutboxListenerSeesTouchedShards) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  std::vector<std::vector<int32_t>> calls;  // written by the commit thread, read after commits
  std::mutex mu;
  store_->SetOutboxListener([&](const std::vector<int32_t>& shards) {
    std::lock_guard lock(mu);
    calls.push_back(shards);
  });
  StoreWrite write = StartRun(Key("ns", "listened"), 1, 3);
  Commit(write);
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(calls.size(), 1u);
    EXPECT_EQ(calls[0], (std::vector<int32_t>{3}));
  }
  // A write without an outbox task does not call it.
  StoreWrite no_task;
  no_task.workflows.push_back(
      {StateAfter(Key("ns", "quiet"), {{1, 1}}), BranchEvents({{1, 1}}, 1, 1), true});
  no_task.progress.push_back({"west", 3, ShardApplyProgress()});
  EXPECT_EQ(Commit(no_task), -1);
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(calls.size(), 1u);
  }
  // One group touching several shards calls it once, with each shard once, ascending.
  std::vector<StoreWrite> writes;
  writes.push_back(StartRun(Key("ns", "l-1"), 1, 2));
  writes.push_back(StartRun(Key("ns", "l-2"), 1, 0));
  writes.push_back(StartRun(Key("ns", "l-3"), 1, 2));
  ASSERT_NO_FATAL_FAILURE(CommitAsOneGroup(writes));
  std::lock_guard lock(mu);
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[1], (std::vector<int32_t>{0, 2}));
}

TEST_F(StoreTest, OutboxTaskForAnUnknownShardIsRejected) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  for (int32_t shard : {-1, 4}) {
    StoreWrite write = StartRun(Key("ns", "bad-shard"), 1, 0);
    write.outbox_task->set_shard(shard);
    EXPECT_EQ(store_->CommitWrite(write).status().code(), absl::StatusCode::kInvalidArgument)
        << "shard " << shard;
  }
  // Refused before queueing: nothing written, and the store does not latch.
  absl::StatusOr<std::optional<WorkflowMutableState>> state =
      store_->GetWorkflowState(Key("ns", "bad-shard"));
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_FALSE(state->has_value());
  EXPECT_TRUE(store_->WriteError().ok()) << store_->WriteError();
  StoreWrite good = StartRun(Key("ns", "good"), 1, 3);
  EXPECT_EQ(Commit(good), 0);
}

TEST_F(StoreTest, FailedDlqWriteLeavesNothingAndLatches) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  StoreWrite before = StartRun(Key("ns", "before"), 1, 0);
  EXPECT_EQ(Commit(before), 0);
  const WorkflowKey failing_key = Key("ns", "failing");
  {
    ArmedFault armed(fault::kStoreWriteDlq);
    ASSERT_TRUE(fault::Armed(fault::kStoreWriteDlq));

    // A write without a DLQ entry is not affected.
    StoreWrite plain = StartRun(Key("ns", "plain"), 1, 0);
    EXPECT_EQ(Commit(plain), 1);
    ASSERT_TRUE(store_->WriteError().ok()) << store_->WriteError();
    const uint64_t groups_before = store_->SyncedGroups();
    const uint64_t writes_before = store_->SyncedWrites();

    // A write with events, state, an outbox task, progress and a DLQ entry fails as a whole.
    StoreWrite failing = StartRun(failing_key, 2, 0);
    failing.parked.push_back(MakeParked(PARK_REASON_GAP, 7, "gap", /*awaiting_resend=*/true));
    ProgressWrite progress{"west", 1, ShardApplyProgress()};
    progress.progress.set_next_offset(8);
    failing.progress.push_back(progress);
    absl::StatusOr<int64_t> result = store_->CommitWrite(failing);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(std::string(result.status().message()),
                HasSubstr(std::string(fault::kStoreWriteDlq)));

    // Nothing of it is visible.
    absl::StatusOr<std::optional<WorkflowMutableState>> state =
        store_->GetWorkflowState(failing_key);
    ASSERT_TRUE(state.ok()) << state.status();
    EXPECT_FALSE(state->has_value());
    EXPECT_EQ(store_->ReadEvent(failing_key, 1, 1).status().code(), absl::StatusCode::kNotFound);
    EXPECT_EQ(store_->ReadEvent(failing_key, 2, 1).status().code(), absl::StatusCode::kNotFound);
    absl::StatusOr<std::optional<std::string>> run = store_->GetCurrentRun("ns", "failing");
    ASSERT_TRUE(run.ok()) << run.status();
    EXPECT_FALSE(run->has_value());
    absl::StatusOr<ShardApplyProgress> stored = store_->GetApplyProgress("west", 1);
    ASSERT_TRUE(stored.ok()) << stored.status();
    EXPECT_EQ(stored->next_offset(), 0);
    EXPECT_TRUE(AllParked().empty());
    EXPECT_EQ(store_->ParkedCount(), 0);
    EXPECT_EQ(store_->AwaitingResendCount(), 0);
    EXPECT_EQ(store_->OutboxNextTaskId(0), 2);
    absl::StatusOr<std::vector<ReplicationTask>> outbox = store_->ReadOutbox(0, 2, 100);
    ASSERT_TRUE(outbox.ok()) << outbox.status();
    EXPECT_TRUE(outbox->empty());
    EXPECT_EQ(store_->SyncedGroups(), groups_before);
    EXPECT_EQ(store_->SyncedWrites(), writes_before);

    // Latched: every later write fails, with or without a DLQ entry.
    const absl::Status latched = store_->WriteError();
    EXPECT_EQ(latched.code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(std::string(latched.message()), HasSubstr(std::string(fault::kStoreWriteDlq)));
    StoreWrite later = StartRun(Key("ns", "later"), 1, 1);
    EXPECT_EQ(store_->CommitWrite(later).status().code(), absl::StatusCode::kUnavailable);
    Store::WriteTicket ticket;
    EXPECT_EQ(store_->QueueWrite(later, ticket).code(), absl::StatusCode::kUnavailable);
  }
  ASSERT_FALSE(fault::Armed(fault::kStoreWriteDlq));

  // Disarming does not unlatch: the failed write's outcome stays unknown until a restart.
  StoreWrite after_disarm = StartRun(Key("ns", "after-disarm"), 1, 1);
  EXPECT_EQ(store_->CommitWrite(after_disarm).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(store_->WriteError().ok());
  absl::StatusOr<std::optional<WorkflowMutableState>> later_state =
      store_->GetWorkflowState(Key("ns", "later"));
  ASSERT_TRUE(later_state.ok()) << later_state.status();
  EXPECT_FALSE(later_state->has_value());
  EXPECT_EQ(store_->OutboxNextTaskId(1), 0);

  // After a restart the failed write never happened, and writes succeed again.
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_TRUE(store_->WriteError().ok()) << store_->WriteError();
  absl::StatusOr<std::optional<WorkflowMutableState>> state = store_->GetWorkflowState(failing_key);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_FALSE(state->has_value());
  EXPECT_EQ(store_->ParkedCount(), 0);
  EXPECT_EQ(store_->AwaitingResendCount(), 0);
  EXPECT_EQ(store_->OutboxNextTaskId(0), 2);
  StoreWrite retry = StartRun(failing_key, 2, 0);
  retry.parked.push_back(MakeParked(PARK_REASON_GAP, 7, "gap", /*awaiting_resend=*/true));
  EXPECT_EQ(Commit(retry), 2);
  EXPECT_EQ(retry.parked[0].sequence(), 1);
  EXPECT_EQ(store_->ParkedCount(), 1);
  EXPECT_EQ(store_->AwaitingResendCount(), 1);
}

}  // namespace
}  // namespace xdc

namespace xdc {
namespace {

TEST(GroupCommitterTest, AFailedGroupLatchesEveryLaterWrite) {
  int attempts = 0;
  GroupCommitter<int> committer(
      [&](const std::vector<int*>& group) {
        ++attempts;
        for (int* write : group) {
          if (*write == 2) return absl::ResourceExhaustedError("No space left on device");
        }
        return absl::OkStatus();
      },
      /*max_group_size=*/16);
  int ok = 1;
  EXPECT_TRUE(committer.Commit(ok).ok());
  EXPECT_TRUE(committer.latched_error().ok());
  int failing = 2;
  absl::Status failed = committer.Commit(failing);
  EXPECT_EQ(failed.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(failed.message()), ::testing::HasSubstr("No space left on device"));
  EXPECT_THAT(std::string(failed.message()), ::testing::HasSubstr("restarts"));
  // The outcome of the failed write is unknown: nothing more is written, not even a good write.
  int later = 3;
  EXPECT_EQ(committer.Commit(later).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(attempts, 2);
  EXPECT_EQ(committer.latched_error().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(committer.groups_written(), 1u);
}

}  // namespace
}  // namespace xdc

namespace xdc {
namespace {

WorkflowWrite RunStart(const WorkflowKey& key, int64_t start_time) {
  WorkflowWrite update;
  update.state = StateAfter(key, {{1, 1}});
  update.state.set_start_time_unix_micros(start_time);
  update.events = BranchEvents({{1, 1}}, 1, 1);
  update.starts_run = true;
  return update;
}

// Every cluster points a workflow id at the same run, whoever started it. A run started at version
// 2 (on a cluster failed over to) arrived first; this cluster, still at version 1, then starts one
// later by its clock: by the rule every cluster applies (first version, then start time) the
// version-2 run stays current. (A run a cluster started itself always became current there,
// so after a split brain two clusters could point the same workflow id at different runs.)
TEST_F(StoreTest, ARunStartedHereFollowsTheSameCurrentRunRule) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  StoreWrite newer_version;
  WorkflowWrite& at_v2 = newer_version.workflows.emplace_back();
  at_v2.state = StateAfter(Key("ns", "wf", "r-v2"), {{1, 2}});
  at_v2.state.set_start_time_unix_micros(100);
  at_v2.events = BranchEvents({{1, 2}}, 1, 1);
  at_v2.starts_run = true;
  ASSERT_TRUE(store_->CommitWrite(newer_version).ok());
  StoreWrite started_here;
  WorkflowWrite at_v1 = RunStart(Key("ns", "wf", "r-v1"), 500);
  started_here.workflows.push_back(at_v1);
  ASSERT_TRUE(store_->CommitWrite(started_here).ok());
  absl::StatusOr<std::optional<std::string>> run = store_->GetCurrentRun("ns", "wf");
  ASSERT_TRUE(run.ok() && run->has_value()) << run.status();
  EXPECT_EQ(**run, "r-v2");
}

TEST_F(StoreTest, CurrentRunOnlyMovesToALaterRun) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  auto current = [&] {
    absl::StatusOr<std::optional<std::string>> run = store_->GetCurrentRun("ns", "wf");
    EXPECT_TRUE(run.ok()) << run.status();
    return run.ok() && run->has_value() ? **run : std::string("<none>");
  };
  StoreWrite newer;
  newer.workflows.push_back(RunStart(Key("ns", "wf", "r2"), 200));
  ASSERT_TRUE(store_->CommitWrite(newer).ok());
  // A resent start of the older run arrives after the newer one.
  StoreWrite older;
  older.workflows.push_back(RunStart(Key("ns", "wf", "r1"), 100));
  ASSERT_TRUE(store_->CommitWrite(older).ok());
  EXPECT_EQ(current(), "r2");
  // Within one write too, whatever the order.
  StoreWrite both;
  both.workflows.push_back(RunStart(Key("ns", "wf", "r4"), 400));
  both.workflows.push_back(RunStart(Key("ns", "wf", "r3"), 300));
  ASSERT_TRUE(store_->CommitWrite(both).ok());
  EXPECT_EQ(current(), "r4");
  // And within one group of separate writes, whatever the queue order.
  std::vector<StoreWrite> group(2);
  group[0].workflows.push_back(RunStart(Key("ns", "wf", "r6"), 600));
  group[1].workflows.push_back(RunStart(Key("ns", "wf", "r5"), 500));
  ASSERT_NO_FATAL_FAILURE(CommitAsOneGroup(group));
  EXPECT_EQ(current(), "r6");
  // The older run's own state is still stored.
  absl::StatusOr<std::optional<WorkflowMutableState>> r1 =
      store_->GetWorkflowState(Key("ns", "wf", "r1"));
  ASSERT_TRUE(r1.ok());
  EXPECT_TRUE(r1->has_value());
}

}  // namespace
}  // namespace xdc
