// The reapplication sweep with the daemon's real parts below it (store, WorkflowWriter,
// TaskApplier, NamespaceRegistry), no Kafka: a cluster that saw a run fork while it was a standby
// leaves the losing branch's signal pending, and reapplies it once the namespace is active here.
#include "replicator/reapply_sweeper.h"

#include <chrono>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "protocol/handover.h"
#include "protocol/message_codec.h"
#include "protocol/shard_hash.h"
#include "protocol/version_history.h"
#include "replicator/namespace_registry.h"
#include "replicator/task_applier.h"
#include "replicator/tunables.h"
#include "replicator/workflow_writer.h"
#include "store/store.h"
#include "tests/two_clusters.h"

namespace xdc {
namespace {

constexpr int64_t kNowMicros = 1'000'000;

HistoryEvent MakeEvent(int64_t event_id, int64_t version, EventType type) {
  HistoryEvent event;
  event.set_event_id(event_id);
  event.set_version(version);
  event.set_event_time_unix_micros(event_id * 10);
  event.set_event_type(type);
  event.set_attributes(absl::StrCat("payload-", event_id, "-", version));
  return event;
}

class ReapplySweeperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = MakeConfig("east", dir_.path(), "");
    StoreOptions options;
    options.path = dir_.path();
    options.identity.set_cluster_name("east");
    options.identity.set_shard_count(config_.shard_count());
    options.identity.set_initial_failover_version(1);
    options.identity.set_failover_version_increment(100);
    absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    registry_ = std::make_unique<NamespaceRegistry>(*store_, config_);
    ASSERT_TRUE(registry_->Load().ok());
    writer_ = std::make_unique<WorkflowWriter>(*store_, config_.shard_count());
    task_applier_ = std::make_unique<TaskApplier>(config_, *registry_, [] { return kNowMicros; });
    sweeper_ = std::make_unique<ReapplySweeper>(config_, *store_, *writer_, *task_applier_);

    // West is active (version 2); east is a standby.
    RegisterNamespaceRequest request;
    request.set_name("orders");
    request.add_clusters("east");
    request.add_clusters("west");
    request.set_active_cluster("west");
    absl::StatusOr<NamespaceRecord> record = registry_->Register(request);
    ASSERT_TRUE(record.ok()) << record.status();
    ASSERT_EQ(record->failover_version(), 2);
    key_.set_namespace_id(record->id());
    key_.set_workflow_id("wf");
    key_.set_run_id("run");
  }

  void TearDown() override { sweeper_->Stop(); }

  // Closes everything on the store and opens it again, as a restart does.
  void Reopen() {
    sweeper_.reset();
    task_applier_.reset();
    writer_.reset();
    registry_.reset();
    store_.reset();
    StoreOptions options;
    options.path = dir_.path();
    options.identity.set_cluster_name("east");
    options.identity.set_shard_count(config_.shard_count());
    options.identity.set_initial_failover_version(1);
    options.identity.set_failover_version_increment(100);
    absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    registry_ = std::make_unique<NamespaceRegistry>(*store_, config_);
    ASSERT_TRUE(registry_->Load().ok());
    writer_ = std::make_unique<WorkflowWriter>(*store_, config_.shard_count());
    task_applier_ = std::make_unique<TaskApplier>(config_, *registry_, [] { return kNowMicros; });
    sweeper_ = std::make_unique<ReapplySweeper>(config_, *store_, *writer_, *task_applier_);
  }

  // The store's reapply_pending runs, as status shows them.
  std::vector<ReapplyPendingRuns> Pending() {
    absl::StatusOr<std::vector<ReapplyPendingRuns>> pending = store_->ListReapplyPending(10);
    EXPECT_TRUE(pending.ok()) << pending.status();
    return pending.ok() ? *pending : std::vector<ReapplyPendingRuns>();
  }

  // Applies a task as a peer's applier would.
  ApplyDecision Apply(const std::vector<std::pair<int64_t, int64_t>>& items,
                      const std::vector<HistoryEvent>& events) {
    ReplicationTask task;
    task.set_shard(ShardFor(key_.namespace_id(), key_.workflow_id(), config_.shard_count()));
    task.set_source_cluster("west");
    *task.mutable_workflow() = key_;
    for (const auto& [event_id, version] : items) {
      VersionHistoryItem* item = task.add_version_history_items();
      item->set_event_id(event_id);
      item->set_version(version);
    }
    for (const HistoryEvent& event : events) *task.add_events() = event;
    ApplyDecision decision;
    absl::StatusOr<int64_t> done =
        writer_->Commit(task.shard(), [&](WorkflowWriter::View& view, StoreWrite& write) {
          decision = task_applier_->Stage(task, view, write);
          return absl::OkStatus();
        });
    EXPECT_TRUE(done.ok()) << done.status();
    return decision;
  }

  WorkflowMutableState State() {
    absl::StatusOr<std::optional<WorkflowMutableState>> state = store_->GetWorkflowState(key_);
    EXPECT_TRUE(state.ok() && state->has_value());
    return state.ok() && state->has_value() ? **state : WorkflowMutableState();
  }

  // Events 1-3 at version 1 with a signal at 3 (the old active's branch), then west's branch
  // forking after event 2 at version 2: east ends on west's branch with the signal pending.
  void ForkWhileStandby() {
    ASSERT_EQ(Apply({{3, 1}}, {MakeEvent(1, 1, WORKFLOW_EXECUTION_STARTED),
                               MakeEvent(2, 1, ACTIVITY_TASK_SCHEDULED),
                               MakeEvent(3, 1, WORKFLOW_EXECUTION_SIGNALED)})
                  .action,
              ApplyAction::kApply);
    const ApplyDecision fork = Apply({{2, 1}, {3, 2}}, {MakeEvent(3, 2, TIMER_STARTED)});
    ASSERT_EQ(fork.action, ApplyAction::kApply) << fork.reason;
    ASSERT_TRUE(fork.switched_branch);
    ASSERT_TRUE(fork.reapply.appended.empty());  // not active here: nothing written
    ASSERT_TRUE(State().reapply_pending());
  }

  // A forced failover to east (version 101), as the coordinator commits it.
  void ForceFailoverToEast() {
    absl::StatusOr<NamespaceRecord> failover = registry_->Change(
        key_.namespace_id(),
        [&](const NamespaceRecord& current,
            StoreWrite&) -> absl::StatusOr<std::optional<NamespaceRecord>> {
          absl::StatusOr<NamespaceRecord> forced = ForceFailover(
              current, "east",
              VersionLayout{&config_.clusters(), config_.failover_version_increment()},
              /*decided_version=*/0, kNowMicros, /*old_active_last_heard_micros=*/0);
          if (!forced.ok()) return forced.status();
          return std::optional<NamespaceRecord>(*std::move(forced));
        });
    ASSERT_TRUE(failover.ok()) << failover.status();
    ASSERT_EQ(failover->failover_version(), 101);
  }

  ScopedDir dir_{"sweeper"};
  DaemonConfig config_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<NamespaceRegistry> registry_;
  std::unique_ptr<WorkflowWriter> writer_;
  std::unique_ptr<TaskApplier> task_applier_;
  std::unique_ptr<ReapplySweeper> sweeper_;
  WorkflowKey key_;
};

TEST_F(ReapplySweeperTest, DoesNothingWhileThisClusterIsNotActive) {
  ASSERT_NO_FATAL_FAILURE(ForkWhileStandby());
  absl::StatusOr<int64_t> reapplied = sweeper_->Sweep(key_.namespace_id());
  ASSERT_TRUE(reapplied.ok()) << reapplied.status();
  EXPECT_EQ(*reapplied, 0);
  EXPECT_TRUE(State().reapply_pending());
  const int32_t shard = ShardFor(key_.namespace_id(), key_.workflow_id(), config_.shard_count());
  EXPECT_EQ(store_->OutboxNextTaskId(shard), 0);
}

TEST_F(ReapplySweeperTest, ReappliesPendingSignalsOnceTheNamespaceIsActiveHere) {
  ASSERT_NO_FATAL_FAILURE(ForkWhileStandby());
  ASSERT_NO_FATAL_FAILURE(ForceFailoverToEast());

  // Through the sweeper's thread, as the daemon requests it when the namespace becomes active.
  sweeper_->Start();
  sweeper_->Request(key_.namespace_id());
  ASSERT_TRUE(WaitUntil([&] { return !State().reapply_pending(); }));

  const WorkflowMutableState state = State();
  EXPECT_EQ(state.next_event_id(), 5);
  const VersionHistory& current = *CurrentBranch(state.version_histories());
  ASSERT_EQ(LastEventId(current), 4);
  EXPECT_EQ(current.items(current.items_size() - 1).version(), 101);
  absl::StatusOr<HistoryEvent> copy = store_->ReadEvent(key_, 4, 101);
  ASSERT_TRUE(copy.ok()) << copy.status();
  EXPECT_EQ(copy->event_type(), WORKFLOW_EXECUTION_SIGNALED);
  EXPECT_EQ(copy->attributes(), "payload-3-1");
  EXPECT_EQ(copy->reapplied_from().run_id(), "run");
  EXPECT_EQ(copy->reapplied_from().event_id(), 3);
  EXPECT_EQ(copy->reapplied_from().version(), 1);
  EXPECT_EQ(copy->event_time_unix_micros(), kNowMicros);

  // The copy replicates: one outbox task carrying it with the current branch's items.
  const int32_t shard = ShardFor(key_.namespace_id(), key_.workflow_id(), config_.shard_count());
  absl::StatusOr<std::vector<ReplicationTask>> outbox = store_->ReadOutbox(shard, 0, 10);
  ASSERT_TRUE(outbox.ok()) << outbox.status();
  ASSERT_EQ(outbox->size(), 1u);
  ASSERT_EQ((*outbox)[0].events_size(), 1);
  EXPECT_EQ((*outbox)[0].events(0).reapplied_from().event_id(), 3);
  EXPECT_EQ((*outbox)[0].source_cluster(), "east");

  // Exactly once: another sweep finds nothing.
  absl::StatusOr<int64_t> again = sweeper_->Sweep(key_.namespace_id());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, 0);
  EXPECT_EQ(State().next_event_id(), 5);
}

// The store indexes a run while its state has reapply_pending, in the write that sets it: status
// counts and lists such runs without scanning the workflows, the count survives a reopen, and the
// run leaves the index in the write that reapplies its signal.
TEST_F(ReapplySweeperTest, APendingRunIsCountedAndListedAcrossAReopenUntilItIsReapplied) {
  EXPECT_EQ(store_->ReapplyPendingCount(), 0);
  EXPECT_TRUE(Pending().empty());
  ASSERT_NO_FATAL_FAILURE(ForkWhileStandby());
  // A second run of the namespace that is not pending is neither counted nor listed.
  const WorkflowKey pending_run = key_;
  key_.set_workflow_id("not-pending");
  ASSERT_EQ(Apply({{1, 1}}, {MakeEvent(1, 1, WORKFLOW_EXECUTION_STARTED)}).action,
            ApplyAction::kApply);
  key_ = pending_run;
  auto expect_listed = [&] {
    EXPECT_EQ(store_->ReapplyPendingCount(), 1);
    const std::vector<ReapplyPendingRuns> pending = Pending();
    ASSERT_EQ(pending.size(), 1u);
    EXPECT_EQ(pending[0].namespace_id, key_.namespace_id());
    EXPECT_EQ(pending[0].runs, 1);
    ASSERT_EQ(pending[0].listed.size(), 1u);
    EXPECT_EQ(pending[0].listed[0].workflow_id(), key_.workflow_id());
    EXPECT_EQ(pending[0].listed[0].run_id(), key_.run_id());
  };
  expect_listed();
  // Rewriting the pending run (its current branch grows; the signal is still pending) counts it
  // once.
  ASSERT_EQ(Apply({{2, 1}, {4, 2}}, {MakeEvent(4, 2, TIMER_FIRED)}).action, ApplyAction::kApply);
  ASSERT_TRUE(State().reapply_pending());
  expect_listed();
  ASSERT_NO_FATAL_FAILURE(Reopen());
  expect_listed();

  ASSERT_NO_FATAL_FAILURE(ForceFailoverToEast());
  absl::StatusOr<int64_t> reapplied = sweeper_->Sweep(key_.namespace_id());
  ASSERT_TRUE(reapplied.ok()) << reapplied.status();
  EXPECT_EQ(*reapplied, 1);
  EXPECT_EQ(store_->ReapplyPendingCount(), 0);
  EXPECT_TRUE(Pending().empty());
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(store_->ReapplyPendingCount(), 0);
  EXPECT_TRUE(Pending().empty());
}

// The bound of a listing: every pending run counted, only the first `limit` listed, in key order.
TEST_F(ReapplySweeperTest, AListingOfPendingRunsIsBoundedButTheCountIsNot) {
  constexpr int kRuns = 5;
  const WorkflowKey first = key_;
  for (int i = 0; i < kRuns; ++i) {
    key_ = first;
    key_.set_workflow_id(absl::StrCat("wf-", i));
    ASSERT_NO_FATAL_FAILURE(ForkWhileStandby());
  }
  EXPECT_EQ(store_->ReapplyPendingCount(), kRuns);
  absl::StatusOr<std::vector<ReapplyPendingRuns>> pending = store_->ListReapplyPending(2);
  ASSERT_TRUE(pending.ok()) << pending.status();
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].runs, kRuns);
  ASSERT_EQ((*pending)[0].listed.size(), 2u);
  EXPECT_EQ((*pending)[0].listed[0].workflow_id(), "wf-0");
  EXPECT_EQ((*pending)[0].listed[1].workflow_id(), "wf-1");
}

// A run with more pending signals than one replication task may carry (2,500 of 1 KiB: 2.5 MB) is
// reapplied a task's worth at a time, and every task fits one Kafka message. (One task with every
// copy exceeded Kafka's message limit: the publisher retried it forever and the shard's stream
// stood still.)
TEST_F(ReapplySweeperTest, ManyPendingSignalsAreReappliedInTasksThatEachFitOneKafkaMessage) {
  constexpr int kSignals = 2500;
  constexpr int kPerTask = 500;  // as the old active published them
  ASSERT_EQ(Apply({{1, 1}}, {MakeEvent(1, 1, WORKFLOW_EXECUTION_STARTED)}).action,
            ApplyAction::kApply);
  for (int first = 2; first < 2 + kSignals; first += kPerTask) {
    std::vector<HistoryEvent> signals;
    for (int id = first; id < first + kPerTask; ++id) {
      HistoryEvent signal = MakeEvent(id, 1, WORKFLOW_EXECUTION_SIGNALED);
      signal.set_attributes(std::string(1024, 's'));
      signals.push_back(std::move(signal));
    }
    ASSERT_EQ(Apply({{first + kPerTask - 1, 1}}, signals).action, ApplyAction::kApply);
  }
  // West's branch forks after event 1: every signal is on the losing branch.
  ASSERT_EQ(Apply({{1, 1}, {2, 2}}, {MakeEvent(2, 2, TIMER_STARTED)}).action, ApplyAction::kApply);
  ASSERT_TRUE(State().reapply_pending());
  ASSERT_NO_FATAL_FAILURE(ForceFailoverToEast());

  absl::StatusOr<int64_t> reapplied = sweeper_->Sweep(key_.namespace_id());
  ASSERT_TRUE(reapplied.ok()) << reapplied.status();
  EXPECT_EQ(*reapplied, kSignals);
  EXPECT_FALSE(State().reapply_pending());
  EXPECT_EQ(State().next_event_id(), 3 + kSignals);
  const Tunables tunables;
  const int32_t shard = ShardFor(key_.namespace_id(), key_.workflow_id(), config_.shard_count());
  absl::StatusOr<std::vector<ReplicationTask>> outbox = store_->ReadOutbox(shard, 0, 100);
  ASSERT_TRUE(outbox.ok()) << outbox.status();
  EXPECT_GT(outbox->size(), 1u);
  int copies = 0;
  for (const ReplicationTask& task : *outbox) {
    HistoryMessage message;
    *message.mutable_task() = task;
    EXPECT_LE(EncodeFrame(message).size(), tunables.max_task_bytes)
        << "task " << task.task_id() << " of " << task.events_size() << " copies";
    EXPECT_LE(static_cast<size_t>(task.events_size()), tunables.max_events_per_append);
    copies += task.events_size();
  }
  EXPECT_EQ(copies, kSignals);
}

}  // namespace
}  // namespace xdc
