// Tests of the RocksDB store: identity, the append path with its outbox, branch reads, the apply
// path with its DLQ and progress, and group commit.

#include "store/store.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
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

// An append that starts the run of `key` with events 1..n of version 1.
AppendWrite StartRun(const WorkflowKey& key, int64_t n, int32_t shard, bool starts_run = true) {
  AppendWrite write;
  write.shard = shard;
  write.state = StateAfter(key, {{n, 1}});
  write.events = BranchEvents({{n, 1}}, 1, n);
  write.starts_run = starts_run;
  write.task.set_shard(shard);
  write.task.set_source_cluster("east");
  *write.task.mutable_workflow() = key;
  VersionHistoryItem* item = write.task.add_version_history_items();
  item->set_event_id(n);
  item->set_version(1);
  for (const HistoryEvent& event : write.events) *write.task.add_events() = event;
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

  int64_t Append(AppendWrite& write) {
    absl::StatusOr<int64_t> task_id = store_->CommitAppend(write);
    EXPECT_TRUE(task_id.ok()) << task_id.status();
    return task_id.ok() ? *task_id : -1;
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
  ASSERT_TRUE(store_->PutNamespace(record).ok());
  record.set_failover_version(2);
  record.set_active_cluster("west");
  ASSERT_TRUE(store_->PutNamespace(record).ok());  // overwrites
  ASSERT_NO_FATAL_FAILURE(Reopen());
  absl::StatusOr<std::vector<NamespaceRecord>> namespaces = store_->ListNamespaces();
  ASSERT_TRUE(namespaces.ok()) << namespaces.status();
  ASSERT_EQ(namespaces->size(), 1u);
  EXPECT_TRUE(MessageDifferencer::Equals((*namespaces)[0], record));
}

// ---------------------------------------------------------------------------------------------
// The append path and the outbox
// ---------------------------------------------------------------------------------------------

TEST_F(StoreTest, CommitAppendWritesEventsStateAndOutbox) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  const WorkflowKey key = Key("ns", "wf-1");
  AppendWrite write = StartRun(key, 3, /*shard=*/2);
  EXPECT_EQ(Append(write), 0);
  EXPECT_EQ(write.task.task_id(), 0);

  absl::StatusOr<std::optional<WorkflowMutableState>> state = store_->GetWorkflowState(key);
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_TRUE(state->has_value());
  EXPECT_TRUE(MessageDifferencer::Equals(**state, write.state));

  absl::StatusOr<google::protobuf::RepeatedPtrField<HistoryEvent>> events =
      store_->ReadBranch(key, *CurrentBranch((*state)->version_histories()));
  ASSERT_TRUE(events.ok()) << events.status();
  ExpectEventsEqual(*events, write.events);

  absl::StatusOr<std::vector<ReplicationTask>> outbox = store_->ReadOutbox(2, 0, 100);
  ASSERT_TRUE(outbox.ok()) << outbox.status();
  ASSERT_EQ(outbox->size(), 1u);
  EXPECT_TRUE(MessageDifferencer::Equals((*outbox)[0], write.task));
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
  std::vector<AppendWrite> writes;
  for (int i = 0; i < 3; ++i) writes.push_back(StartRun(Key("ns", "a-" + std::to_string(i)), 2, 1));
  writes.push_back(StartRun(Key("ns", "b"), 2, 3));
  writes.push_back(StartRun(Key("ns", "c"), 2, 1));
  std::vector<int64_t> task_ids;
  for (AppendWrite& write : writes) task_ids.push_back(Append(write));
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
  std::vector<AppendWrite> writes;
  for (int i = 0; i < 3; ++i)
    writes.push_back(StartRun(Key("ns", "wf-" + std::to_string(i)), 1, 0));
  writes.push_back(StartRun(Key("ns", "other-shard"), 1, 1));
  for (AppendWrite& write : writes) Append(write);
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
  AppendWrite next = StartRun(Key("ns", "wf-after"), 1, 0);
  EXPECT_EQ(Append(next), 3);
  EXPECT_EQ(read_ids(0, 0, 100), (std::vector<int64_t>{3}));
}

TEST_F(StoreTest, GetCurrentRunSetWhenStartsRun) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  AppendWrite first = StartRun(Key("ns", "wf", "run-1"), 1, 0, /*starts_run=*/true);
  Append(first);
  AppendWrite not_current = StartRun(Key("ns", "other", "run-x"), 1, 0, /*starts_run=*/false);
  Append(not_current);

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

  AppendWrite second = StartRun(Key("ns", "wf", "run-2"), 1, 0, /*starts_run=*/true);
  Append(second);
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
    ApplyBatch batch;
    batch.workflows.push_back({StateAfter(key, {{3, 1}}), BranchEvents(version1, 1, 3), true});
    ASSERT_TRUE(store_->CommitApply(batch).ok());
  }
  {
    ApplyBatch batch;
    batch.workflows.push_back({StateAfter(key, version1), BranchEvents(version1, 4, 5), false});
    ASSERT_TRUE(store_->CommitApply(batch).ok());
  }
  {
    ApplyBatch batch;
    batch.workflows.push_back({StateAfter(key, version2), BranchEvents(version2, 4, 6), false});
    ASSERT_TRUE(store_->CommitApply(batch).ok());
  }
  // Another workflow whose key shares a string prefix must not leak into the reads.
  {
    ApplyBatch batch;
    const WorkflowKey neighbour = Key("ns", "wf", "run-10");
    batch.workflows.push_back(
        {StateAfter(neighbour, {{7, 1}}), BranchEvents({{7, 1}}, 1, 7), false});
    ASSERT_TRUE(store_->CommitApply(batch).ok());
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
    AppendWrite write = StartRun(key, 1, 0);
    Append(write);
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

// ---------------------------------------------------------------------------------------------
// The apply path and the DLQ
// ---------------------------------------------------------------------------------------------

ParkedTask MakeParked(ParkReason reason, int64_t offset, const std::string& error) {
  ParkedTask parked;
  parked.set_source_cluster("west");
  parked.set_shard(1);
  parked.set_kafka_offset(offset);
  parked.set_reason(reason);
  parked.set_error(error);
  parked.set_raw_message("raw-" + std::to_string(offset));
  *parked.mutable_workflow() = Key("ns", "wf");
  return parked;
}

TEST_F(StoreTest, CommitApplyWritesProgressAndParkedTasks) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  const WorkflowKey key = Key("ns", "applied");
  ApplyBatch batch;
  batch.workflows.push_back({StateAfter(key, {{2, 2}}), BranchEvents({{2, 2}}, 1, 2), true});
  batch.parked.push_back(MakeParked(PARK_REASON_GAP, 10, "gap: events [3, 5) are missing"));
  batch.parked.push_back(MakeParked(PARK_REASON_CORRUPT_MESSAGE, 11, "checksum mismatch"));
  ApplyBatch::Progress progress;
  progress.source_cluster = "west";
  progress.shard = 1;
  progress.progress.set_next_offset(12);
  progress.progress.set_events_applied(2);
  progress.progress.set_tasks_parked(2);
  batch.progress.push_back(progress);
  ApplyBatch::Progress other = progress;
  other.shard = 3;
  other.progress.set_next_offset(99);
  batch.progress.push_back(other);
  ASSERT_TRUE(store_->CommitApply(batch).ok());
  EXPECT_EQ(batch.parked[0].sequence(), 0);
  EXPECT_EQ(batch.parked[1].sequence(), 1);

  auto check = [&] {
    EXPECT_EQ(store_->ParkedCount(), 2);
    absl::StatusOr<std::vector<ParkedTask>> parked = store_->ListParked(100);
    ASSERT_TRUE(parked.ok()) << parked.status();
    ASSERT_EQ(parked->size(), 2u);
    EXPECT_EQ((*parked)[0].sequence(), 0);
    EXPECT_EQ((*parked)[0].reason(), PARK_REASON_GAP);
    EXPECT_EQ((*parked)[0].kafka_offset(), 10);
    EXPECT_EQ((*parked)[0].error(), "gap: events [3, 5) are missing");
    EXPECT_GT((*parked)[0].parked_unix_micros(), 0);
    EXPECT_EQ((*parked)[1].sequence(), 1);
    EXPECT_EQ((*parked)[1].reason(), PARK_REASON_CORRUPT_MESSAGE);
    EXPECT_EQ((*parked)[1].raw_message(), "raw-11");

    absl::StatusOr<std::vector<ParkedTask>> first = store_->ListParked(1);
    ASSERT_TRUE(first.ok()) << first.status();
    ASSERT_EQ(first->size(), 1u);
    EXPECT_EQ((*first)[0].sequence(), 0);

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
  ApplyBatch more;
  more.parked.push_back(MakeParked(PARK_REASON_FORK, 12, "fork"));
  ASSERT_TRUE(store_->CommitApply(more).ok());
  EXPECT_EQ(more.parked[0].sequence(), 2);
  EXPECT_EQ(store_->ParkedCount(), 3);
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(store_->ParkedCount(), 3);
  absl::StatusOr<std::vector<ParkedTask>> parked = store_->ListParked(100);
  ASSERT_TRUE(parked.ok()) << parked.status();
  ASSERT_EQ(parked->size(), 3u);
  EXPECT_EQ((*parked)[2].sequence(), 2);
  EXPECT_EQ((*parked)[2].reason(), PARK_REASON_FORK);
}

// ---------------------------------------------------------------------------------------------
// Group commit
// ---------------------------------------------------------------------------------------------

TEST_F(StoreTest, GroupCommitIsDeterministic) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  constexpr int kWriters = 8;
  const uint64_t groups_before = store_->CommitGroups();
  const uint64_t appends_before = store_->CommittedAppends();

  std::vector<AppendWrite> writes;
  for (int i = 0; i < kWriters; ++i) {
    writes.push_back(StartRun(Key("ns", "group-" + std::to_string(i)), 2, i % 4));
  }
  std::vector<absl::StatusOr<int64_t>> results(kWriters, absl::UnknownError("not run"));

  store_->HoldCommits();
  std::vector<std::thread> threads;
  for (int i = 0; i < kWriters; ++i) {
    threads.emplace_back([&, i] { results[i] = store_->CommitAppend(writes[i]); });
  }
  // Wait for the condition "all writers queued"; the deadline only bounds a broken run.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (store_->QueuedCommits() < static_cast<size_t>(kWriters) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  const size_t queued = store_->QueuedCommits();
  EXPECT_EQ(store_->CommitGroups(), groups_before);  // held: nothing written yet
  store_->ReleaseCommits();
  for (std::thread& thread : threads) thread.join();
  ASSERT_EQ(queued, static_cast<size_t>(kWriters));

  EXPECT_EQ(store_->CommitGroups(), groups_before + 1);
  EXPECT_EQ(store_->CommittedAppends(), appends_before + kWriters);
  EXPECT_EQ(store_->QueuedCommits(), 0u);

  std::vector<std::set<int64_t>> task_ids(4);
  for (int i = 0; i < kWriters; ++i) {
    ASSERT_TRUE(results[i].ok()) << results[i].status();
    task_ids[i % 4].insert(*results[i]);
    absl::StatusOr<std::optional<WorkflowMutableState>> state =
        store_->GetWorkflowState(writes[i].state.key());
    ASSERT_TRUE(state.ok()) << state.status();
    ASSERT_TRUE(state->has_value()) << "writer " << i;
    EXPECT_TRUE(MessageDifferencer::Equals(**state, writes[i].state));
    absl::StatusOr<google::protobuf::RepeatedPtrField<HistoryEvent>> events =
        store_->ReadBranch(writes[i].state.key(), *CurrentBranch((*state)->version_histories()));
    ASSERT_TRUE(events.ok()) << events.status();
    ExpectEventsEqual(*events, writes[i].events);
  }
  for (int32_t shard = 0; shard < 4; ++shard) {
    EXPECT_EQ(task_ids[shard], (std::set<int64_t>{0, 1})) << "shard " << shard;
    EXPECT_EQ(store_->OutboxNextTaskId(shard), 2);
  }
}

TEST_F(StoreTest, OutboxListenerSeesTouchedShards) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  std::vector<std::vector<int32_t>> calls;  // written by the commit thread, read after commits
  std::mutex mu;
  store_->SetOutboxListener([&](const std::vector<int32_t>& shards) {
    std::lock_guard lock(mu);
    calls.push_back(shards);
  });
  AppendWrite write = StartRun(Key("ns", "listened"), 1, 3);
  Append(write);
  std::lock_guard lock(mu);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0], (std::vector<int32_t>{3}));
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

ApplyBatch::WorkflowUpdate RunStart(const WorkflowKey& key, int64_t start_time) {
  ApplyBatch::WorkflowUpdate update;
  update.state = StateAfter(key, {{1, 1}});
  update.state.set_start_time_unix_micros(start_time);
  update.events = BranchEvents({{1, 1}}, 1, 1);
  update.starts_run = true;
  return update;
}

TEST_F(StoreTest, CurrentRunOnlyMovesToALaterRun) {
  ASSERT_NO_FATAL_FAILURE(Reopen());
  auto current = [&] {
    absl::StatusOr<std::optional<std::string>> run = store_->GetCurrentRun("ns", "wf");
    EXPECT_TRUE(run.ok()) << run.status();
    return run.ok() && run->has_value() ? **run : std::string("<none>");
  };
  ApplyBatch newer;
  newer.workflows.push_back(RunStart(Key("ns", "wf", "r2"), 200));
  ASSERT_TRUE(store_->CommitApply(newer).ok());
  // A resent start of the older run arrives after the newer one.
  ApplyBatch older;
  older.workflows.push_back(RunStart(Key("ns", "wf", "r1"), 100));
  ASSERT_TRUE(store_->CommitApply(older).ok());
  EXPECT_EQ(current(), "r2");
  // Within one batch too, whatever the order.
  ApplyBatch both;
  both.workflows.push_back(RunStart(Key("ns", "wf", "r4"), 400));
  both.workflows.push_back(RunStart(Key("ns", "wf", "r3"), 300));
  ASSERT_TRUE(store_->CommitApply(both).ok());
  EXPECT_EQ(current(), "r4");
  // The older run's own state is still stored.
  absl::StatusOr<std::optional<WorkflowMutableState>> r1 =
      store_->GetWorkflowState(Key("ns", "wf", "r1"));
  ASSERT_TRUE(r1.ok());
  EXPECT_TRUE(r1->has_value());
}

}  // namespace
}  // namespace xdc
