// The cluster's durable store: RocksDB with one column family per kind of record.
//
//   meta            store identity, per-shard publish pointers, clusters added online,
//                   migration backfill states
//   namespaces      namespace id -> NamespaceRecord
//   workflows       workflow key -> WorkflowMutableState
//   current_runs    (namespace id, workflow id) -> run id
//   events          (workflow key, event id, version) -> HistoryEvent
//   outbox          (shard, task id) -> ReplicationTask not yet delivered to Kafka
//   apply_progress  (source cluster, shard) -> ShardApplyProgress (the shard version vector)
//   dlq             sequence -> ParkedTask
//   handovers       namespace id -> HandoverTargetState (this cluster as a handover's target)
//   requests        (namespace id, request id) -> RequestRecord: where a client request's events
//                   are (derived from HistoryEvent.request on every write, in the same batch)
//   reapply_pending workflow key -> "" for every run whose stored state has reapply_pending set:
//                   an index kept in the same WriteBatch as the state, so status lists those runs
//                   without scanning the workflows (counts per namespace are kept in memory,
//                   recounted from the index at open; a store from before the index is indexed
//                   once, by one scan of the workflows, the first time it opens)
//
// The meta CF also keeps, per namespace, when and from where this cluster stored its record
// (NamespaceRecordLearned): local facts, so the replicated NamespaceRecord bytes stay as they are.
//
// Atomicity: every change to workflows, the outbox, the DLQ and the apply progress is a StoreWrite,
// committed as one WriteBatch: an accepted append's events, state and outbox task; an applied
// task's events, state and offsets. So a crash never separates them. Writes go through one group
// committer and become durable in the order they were queued.
//
// Thread-safety: every method is thread-safe. Callers serialise read-modify-write of one workflow
// themselves (replicator/workflow_writer.h holds the shard's lock until the write is queued).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "protocol/xdc.pb.h"
#include "store/group_committer.h"

namespace rocksdb {
class ColumnFamilyHandle;
class DB;
class WriteBatch;
}  // namespace rocksdb

namespace xdc {

// One workflow run's new state and the events that led to it.
struct WorkflowWrite {
  WorkflowMutableState state;
  std::vector<HistoryEvent> events;  // on any branch; stored by (event id, version)
  // Event 1 is among `events`: the run may become the workflow's current run. It becomes current
  // only if it started after the current one (protocol/workflow_state.h StartedAfter), whoever
  // started it: resends and reordering can bring an older start late, and every cluster must
  // point a workflow id at the same run.
  bool starts_run = false;
  // A repair (protocol/run_repair.h): every stored event of the run is deleted, in the same
  // WriteBatch, before `events` are written, so the run holds exactly `events` afterwards.
  bool replace_events = false;
};

// The shard version vector entry for (source cluster, shard) after this write.
struct ProgressWrite {
  std::string source_cluster;
  int32_t shard = 0;
  ShardApplyProgress progress;
};

enum class Durability {
  kSynced,    // the WAL is synced before the write counts as done (client acknowledgements)
  kUnsynced,  // a crash may lose it, together with everything written after it (applies: the
              // offsets are lost with the events, so the tasks are consumed again)
};

// Everything one step makes durable together, in one WriteBatch: an accepted append, an applied
// task, a resend answer, a DLQ change.
struct StoreWrite {
  std::vector<WorkflowWrite> workflows;
  // Queued for publishing; task.shard() names the outbox. Its task_id is assigned at commit, in
  // commit order, so task ids are dense per shard.
  std::optional<ReplicationTask> outbox_task;
  // DLQ entries: sequence 0 adds an entry (its sequence is assigned at commit), any other
  // sequence replaces that entry if it still exists (a purged entry stays purged).
  std::vector<ParkedTask> parked;
  std::vector<int64_t> unparked;  // DLQ entries to delete
  std::vector<ProgressWrite> progress;
  // Control plane: a namespace record, handover markers (outbox tasks like outbox_task, one per
  // shard, in the same write as the HANDOVER record), and a handover target's state.
  std::optional<NamespaceRecord> namespace_record;
  // When and from where this cluster stored `namespace_record` (replaces the one stored before).
  std::optional<NamespaceRecordLearned> namespace_learned;
  std::vector<ReplicationTask> handover_markers;
  std::vector<HandoverTargetState> handover_states;
  // Per shard (index = shard; empty: none): the outbox's next task id is raised to at least this,
  // for good (the startup check found task ids up to it already published by a lost state).
  std::vector<int64_t> task_id_floors;
  Durability durability = Durability::kSynced;

  [[nodiscard]] bool empty() const {
    return workflows.empty() && !outbox_task.has_value() && parked.empty() && unparked.empty() &&
           progress.empty() && !namespace_record.has_value() && !namespace_learned.has_value() &&
           handover_markers.empty() && handover_states.empty() && task_id_floors.empty();
  }
};

// RocksDB's own figures for /metrics (summed over the column families).
struct StoreEngineStats {
  int64_t sst_bytes = 0;                 // rocksdb.total-sst-files-size
  int64_t memtable_bytes = 0;            // rocksdb.cur-size-all-mem-tables
  int64_t pending_compaction_bytes = 0;  // rocksdb.estimate-pending-compaction-bytes
  bool writes_stopped = false;           // rocksdb.is-write-stopped: writes wait for compaction
  int64_t delayed_write_rate = 0;        // rocksdb.actual-delayed-write-rate: > 0 while slowed
};

// The runs of one namespace stored with reapply_pending set.
struct ReapplyPendingRuns {
  std::string namespace_id;
  int64_t runs = 0;
  std::vector<WorkflowKey> listed;  // the first of them in key order, at most the limit asked
};

struct StoreOptions {
  std::string path;
  StoreIdentity identity;
  size_t max_commit_group = 256;  // writes per WAL write, at most
};

class Store {
 public:
  // Opens or creates the store. Refuses (FAILED_PRECONDITION) a store created for another
  // cluster, shard count or failover-version layout.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Store>> Open(const StoreOptions& options);
  ~Store();

  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // --- namespaces (written through StoreWrite, so they are ordered with everything else) ---
  [[nodiscard]] absl::StatusOr<std::vector<NamespaceRecord>> ListNamespaces() const;
  [[nodiscard]] absl::StatusOr<std::vector<HandoverTargetState>> ListHandoverStates() const;
  // When and from where each stored record was stored (records stored before xdcd kept it have
  // none).
  [[nodiscard]] absl::StatusOr<std::vector<NamespaceRecordLearned>> ListNamespacesLearned() const;

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

  // Like ForEachWorkflow, but a run whose stored state cannot be parsed does not stop the scan:
  // `visit` gets its key (decoded from the store's key) and the error, and the scan goes on. Stops
  // at an error `visit` returns or one of the scan itself (I/O).
  [[nodiscard]] absl::Status ScanWorkflows(
      const std::string& namespace_id,
      const std::function<absl::Status(
          const WorkflowKey& key, const absl::StatusOr<WorkflowMutableState>& state)>& visit) const;

  // Up to `limit` workflow runs of the namespace with a key after `after` (nullptr: from the
  // first), in the same key order as ForEachWorkflow. A backfill walks the namespace with it.
  [[nodiscard]] absl::StatusOr<std::vector<WorkflowMutableState>> ListWorkflows(
      const std::string& namespace_id, const WorkflowKey* after, size_t limit) const;

  // Where the events of the namespace's request `request_id` are, if any write or applied task
  // carried it. Of several (a reapplied copy, a retry after a forced failover) the one of the
  // highest failover version. A hint: the events it names may since have been replaced by a
  // repair, so callers check them.
  [[nodiscard]] absl::StatusOr<std::optional<RequestRecord>> GetRequest(
      const std::string& namespace_id, const std::string& request_id) const;
  // Runs whose stored state has reapply_pending set: how many in all (from memory), and per
  // namespace that has any, in namespace id order, the count and the first `listed_per_namespace`
  // keys (a read of at most that many index entries per namespace, never of the workflows).
  [[nodiscard]] int64_t ReapplyPendingCount() const ABSL_LOCKS_EXCLUDED(pending_mu_);
  [[nodiscard]] absl::StatusOr<std::vector<ReapplyPendingRuns>> ListReapplyPending(
      size_t listed_per_namespace) const ABSL_LOCKS_EXCLUDED(pending_mu_);

  // Reads one event of the run; NOT_FOUND if it is not stored.
  [[nodiscard]] absl::StatusOr<HistoryEvent> ReadEvent(const WorkflowKey& key, int64_t event_id,
                                                       int64_t version) const;

  // --- writes ---
  using WriteTicket = GroupCommitter<StoreWrite>::Ticket;
  // Queues `write` to be made durable (grouped with concurrent writes; a group is synced when
  // one of its writes asks for it). Writes become durable, and get their outbox task ids, in
  // queue order: callers that must order two writes (two writes of one workflow) queue them under
  // their own lock. `write` and `ticket` must stay valid until WaitWrite returns. After a failed
  // write every later call fails (latched: its outcome is unknown).
  [[nodiscard]] absl::Status QueueWrite(StoreWrite& write, WriteTicket& ticket);
  // Waits until the queued write is durable; returns its outbox task id, or -1 if it had none.
  [[nodiscard]] absl::StatusOr<int64_t> WaitWrite(StoreWrite& write, WriteTicket& ticket);
  // QueueWrite, then WaitWrite.
  [[nodiscard]] absl::StatusOr<int64_t> CommitWrite(StoreWrite& write);
  // Called (from the commit thread) after each durable group that queued outbox tasks. May be
  // replaced or cleared (nullptr) at any time: once SetOutboxListener returns, the previous
  // listener is not running and is never called again. The listener runs under listener_mu_, so
  // it must not call SetOutboxListener.
  void SetOutboxListener(std::function<void(const std::vector<int32_t>& shards)> listener)
      ABSL_LOCKS_EXCLUDED(listener_mu_);
  // Test seams: stop and restart the commit thread between groups; writes waiting.
  void HoldCommits();
  void ReleaseCommits();
  [[nodiscard]] size_t QueuedCommits() const;
  // Synced writes made durable since the store opened, and the synced WAL writes they took.
  [[nodiscard]] uint64_t SyncedGroups() const { return synced_groups_.load(); }
  [[nodiscard]] uint64_t SyncedWrites() const { return synced_writes_.load(); }
  // Non-OK once a write group failed; every later write fails with it (see GroupCommitter).
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

  // --- federation membership and migration backfill (meta CF; written at once, synced) ---
  // Rare operator actions, not ordered with the write path: each call is one synced write.
  [[nodiscard]] absl::Status PutFederationMember(const FederationMember& member);
  [[nodiscard]] absl::Status DeleteFederationMember(const std::string& cluster_name);
  [[nodiscard]] absl::StatusOr<std::vector<FederationMember>> ListFederationMembers() const;
  [[nodiscard]] absl::Status PutBackfillState(const BackfillState& state);
  [[nodiscard]] absl::StatusOr<std::vector<BackfillState>> ListBackfillStates() const;

  // --- DLQ ---
  // Up to `limit` entries with sequence >= `from_sequence`, ascending.
  [[nodiscard]] absl::StatusOr<std::vector<ParkedTask>> ListParked(size_t limit,
                                                                   int64_t from_sequence = 0) const;
  [[nodiscard]] absl::StatusOr<std::optional<ParkedTask>> GetParked(int64_t sequence) const;
  [[nodiscard]] int64_t ParkedCount() const;
  [[nodiscard]] int64_t AwaitingResendCount() const;  // entries with awaiting_resend
  // RocksDB's size and write-stall figures. Thread-safe.
  [[nodiscard]] StoreEngineStats EngineStats() const;

  [[nodiscard]] const StoreIdentity& identity() const { return identity_; }
  // This open's incarnation: 1 for a new store, one more at every open (persisted, synced, before
  // Open returns). Every outbox task carries it (ReplicationTask.source_incarnation). A store
  // restored from a backup opens with an incarnation its lost state already used, which is how
  // peers can tell (protocol/startup_check.h).
  [[nodiscard]] int64_t incarnation() const { return incarnation_; }

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
    kHandovers,
    kRequests,
    kReapplyPending,
    kCfCount,
  };
  explicit Store(StoreIdentity identity);
  [[nodiscard]] absl::Status CheckIdentity();
  [[nodiscard]] absl::Status RecoverCounters();
  [[nodiscard]] absl::Status NextIncarnation();
  // Builds the reapply_pending index from the workflows once (a store from before it), then counts
  // the index per namespace.
  [[nodiscard]] absl::Status RecoverReapplyPending() ABSL_LOCKS_EXCLUDED(pending_mu_);
  // Puts or deletes the index entries of the group's workflow writes whose reapply_pending flag
  // differs from the index; adds the change per namespace to `delta`.
  [[nodiscard]] absl::Status IndexReapplyPending(const std::vector<StoreWrite*>& group,
                                                 rocksdb::WriteBatch& batch,
                                                 std::map<std::string, int64_t>& delta) const
      ABSL_LOCKS_EXCLUDED(pending_mu_);
  template <typename Message>
  [[nodiscard]] absl::StatusOr<std::vector<Message>> ListAll(Cf cf, const char* what) const;
  template <typename Message>
  [[nodiscard]] absl::StatusOr<std::vector<Message>> ListMetaPrefix(std::string_view prefix,
                                                                    const char* what) const;
  [[nodiscard]] absl::Status PutMeta(const std::string& key, const std::string& value,
                                     const char* what);
  [[nodiscard]] absl::Status WriteGroup(const std::vector<StoreWrite*>& group);
  [[nodiscard]] absl::StatusOr<std::optional<std::string>> Get(Cf cf, const std::string& key) const;
  [[nodiscard]] absl::Status PutNewestCurrentRuns(const std::vector<StoreWrite*>& group,
                                                  rocksdb::WriteBatch& batch) const;
  [[nodiscard]] absl::Status PutNewestRequests(const std::vector<StoreWrite*>& group,
                                               rocksdb::WriteBatch& batch) const;

  const StoreIdentity identity_;
  int64_t incarnation_ = 0;  // set once in Open
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> cfs_;
  // Written only by the commit thread (inside WriteGroup), read by anyone.
  std::unique_ptr<std::atomic<int64_t>[]> outbox_next_task_id_;
  // Written only by the shard's publisher (MarkPublished), read by anyone.
  std::unique_ptr<std::atomic<int64_t>[]> published_task_id_;
  std::atomic<int64_t> last_parked_sequence_{0};
  std::atomic<int64_t> parked_count_{0};
  std::atomic<int64_t> awaiting_resend_count_{0};
  std::atomic<uint64_t> synced_groups_{0};
  std::atomic<uint64_t> synced_writes_{0};
  // Runs reapply_pending per namespace id (no zero entries): changed by the commit thread after
  // each durable group, read by status.
  mutable absl::Mutex pending_mu_;
  std::map<std::string, int64_t> reapply_pending_ ABSL_GUARDED_BY(pending_mu_);
  // Held by the commit thread while it calls the listener, so that replacing it waits for a call
  // in progress (Daemon::Stop clears it while appliers and the sweeper still write).
  absl::Mutex listener_mu_;
  std::function<void(const std::vector<int32_t>&)> outbox_listener_ ABSL_GUARDED_BY(listener_mu_);
  std::unique_ptr<GroupCommitter<StoreWrite>> committer_;
};

}  // namespace xdc
