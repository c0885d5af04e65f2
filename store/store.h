// The cluster's durable store: RocksDB with one column family per kind of record.
//
//   meta            store identity, per-shard publish pointers
//   namespaces      namespace id -> NamespaceRecord
//   workflows       workflow key -> WorkflowMutableState
//   current_runs    (namespace id, workflow id) -> run id
//   events          (workflow key, event id, version) -> HistoryEvent
//   outbox          (shard, task id) -> ReplicationTask not yet delivered to Kafka
//   apply_progress  (source cluster, shard) -> ShardApplyProgress (the shard version vector)
//   dlq             sequence -> ParkedTask
//
// Atomicity: an accepted append writes its events, the workflow's mutable state and its outbox
// task in one WriteBatch (CommitAppend). An applied batch writes events, states, parked tasks and
// the apply progress in one WriteBatch (CommitApply). So a crash never separates them.
//
// Thread-safety: every method is thread-safe. Callers serialise read-modify-write of one workflow
// themselves (the write service holds the shard's lock until its append is queued; each peer's
// applier owns its peer's tasks).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "protocol/xdc.pb.h"
#include "store/group_committer.h"

namespace rocksdb {
class ColumnFamilyHandle;
class DB;
class WriteBatch;
}  // namespace rocksdb

namespace xdc {

// One accepted append, made durable by Store::CommitAppend.
struct AppendWrite {
  int32_t shard = 0;
  WorkflowMutableState state;  // the workflow's state after `events`
  std::vector<HistoryEvent> events;
  ReplicationTask task;     // task_id is assigned at commit, in commit order
  bool starts_run = false;  // record the run as the workflow's current run
};

// Everything one apply step writes, committed atomically by Store::CommitApply.
struct ApplyBatch {
  struct WorkflowUpdate {
    WorkflowMutableState state;
    std::vector<HistoryEvent> events;
    bool starts_run = false;
  };
  struct Progress {
    std::string source_cluster;
    int32_t shard = 0;
    ShardApplyProgress progress;
  };
  std::vector<WorkflowUpdate> workflows;
  std::vector<ParkedTask> parked;  // sequence is assigned at commit
  std::vector<Progress> progress;
};

struct StoreOptions {
  std::string path;
  StoreIdentity identity;
  size_t max_commit_group = 256;  // appends per synced WAL write, at most
};

class Store {
 public:
  // Opens or creates the store. Refuses (FAILED_PRECONDITION) a store created for another
  // cluster, shard count or failover-version layout.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Store>> Open(const StoreOptions& options);
  ~Store();

  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // --- namespaces ---
  [[nodiscard]] absl::Status PutNamespace(const NamespaceRecord& record);  // synced
  [[nodiscard]] absl::StatusOr<std::vector<NamespaceRecord>> ListNamespaces() const;

  // --- workflows ---
  [[nodiscard]] absl::StatusOr<std::optional<WorkflowMutableState>> GetWorkflowState(
      const WorkflowKey& key) const;
  [[nodiscard]] absl::StatusOr<std::optional<std::string>> GetCurrentRun(
      const std::string& namespace_id, const std::string& workflow_id) const;
  // The events of `branch` of the workflow, in event id order. DATA_LOSS if one is missing.
  [[nodiscard]] absl::StatusOr<google::protobuf::RepeatedPtrField<HistoryEvent>> ReadBranch(
      const WorkflowKey& key, const VersionHistory& branch) const;
  // Calls `visit` for every workflow run of the namespace, in key order; stops at an error.
  [[nodiscard]] absl::Status ForEachWorkflow(
      const std::string& namespace_id,
      const std::function<absl::Status(const WorkflowMutableState&)>& visit) const;

  // --- the active write path ---
  using AppendTicket = GroupCommitter<AppendWrite>::Ticket;
  // Queues `write` to be made durable (WAL synced, grouped with concurrent appends). Writes
  // become durable, and get their outbox task ids, in queue order: callers that must order two
  // writes (two appends of one workflow) queue them under their own lock. `write` and `ticket`
  // must stay valid until WaitAppend returns. After a failed write every later call fails.
  [[nodiscard]] absl::Status QueueAppend(AppendWrite& write, AppendTicket& ticket);
  // Waits until the queued write is durable and returns its outbox task id.
  [[nodiscard]] absl::StatusOr<int64_t> WaitAppend(AppendWrite& write, AppendTicket& ticket);
  // QueueAppend, then WaitAppend.
  [[nodiscard]] absl::StatusOr<int64_t> CommitAppend(AppendWrite& write);
  // Called (from the commit thread) after each durable group with the shards it touched.
  void SetOutboxListener(std::function<void(const std::vector<int32_t>& shards)> listener);
  // Test seams: stop and restart the commit thread between groups; writes waiting.
  void HoldCommits();
  void ReleaseCommits();
  [[nodiscard]] size_t QueuedCommits() const;
  [[nodiscard]] uint64_t CommitGroups() const;
  [[nodiscard]] uint64_t CommittedAppends() const;
  // Non-OK once an append group failed; every later append fails with it (see GroupCommitter).
  [[nodiscard]] absl::Status WriteError() const;

  // --- outbox ---
  [[nodiscard]] int64_t OutboxNextTaskId(int32_t shard) const;  // exclusive high watermark
  [[nodiscard]] int64_t PublishedTaskId(int32_t shard) const;   // exclusive high watermark
  // Up to `max_tasks` tasks of `shard` with task id >= `from_task_id`, ascending.
  [[nodiscard]] absl::StatusOr<std::vector<ReplicationTask>> ReadOutbox(int32_t shard,
                                                                        int64_t from_task_id,
                                                                        size_t max_tasks) const;
  // Records tasks below `exclusive_task_id` as delivered and deletes them from the outbox.
  [[nodiscard]] absl::Status MarkPublished(int32_t shard, int64_t exclusive_task_id);

  // --- the apply path ---
  [[nodiscard]] absl::StatusOr<ShardApplyProgress> GetApplyProgress(
      const std::string& source_cluster, int32_t shard) const;
  [[nodiscard]] absl::Status CommitApply(ApplyBatch& batch);

  // --- DLQ ---
  [[nodiscard]] absl::StatusOr<std::vector<ParkedTask>> ListParked(size_t limit) const;
  [[nodiscard]] int64_t ParkedCount() const;

  [[nodiscard]] const StoreIdentity& identity() const { return identity_; }

 private:
  enum Cf : int {
    kDefault = 0,
    kMeta,
    kNamespaces,
    kWorkflows,
    kCurrentRuns,
    kEvents,
    kOutbox,
    kApplyProgress,
    kDlq,
    kCfCount,
  };
  explicit Store(StoreIdentity identity);
  [[nodiscard]] absl::Status CheckIdentity();
  [[nodiscard]] absl::Status RecoverCounters();
  [[nodiscard]] absl::Status WriteAppendGroup(const std::vector<AppendWrite*>& group);
  [[nodiscard]] absl::StatusOr<std::optional<std::string>> Get(Cf cf, const std::string& key) const;
  [[nodiscard]] absl::Status PutNewestCurrentRuns(const ApplyBatch& apply,
                                                  rocksdb::WriteBatch& batch) const;

  const StoreIdentity identity_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> cfs_;
  // Written only by the commit thread (inside WriteAppendGroup), read by anyone.
  std::unique_ptr<std::atomic<int64_t>[]> outbox_next_task_id_;
  // Written only by the shard's publisher (MarkPublished), read by anyone.
  std::unique_ptr<std::atomic<int64_t>[]> published_task_id_;
  std::atomic<int64_t> next_parked_sequence_{0};
  std::atomic<int64_t> parked_count_{0};
  std::function<void(const std::vector<int32_t>&)> outbox_listener_;  // set before first append
  std::unique_ptr<GroupCommitter<AppendWrite>> committer_;
};

}  // namespace xdc
