#include "store/store.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "protocol/version_history.h"
#include "protocol/workflow_state.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/write_batch.h"
#include "store/keys.h"

namespace xdc {
namespace {

const char* const kCfNames[] = {"default", "meta",   "namespaces",     "workflows", "current_runs",
                                "events",  "outbox", "apply_progress", "dlq"};

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  std::string message = absl::StrCat(what, ": ", s.ToString());
  if (s.IsNoSpace()) {
    return absl::ResourceExhaustedError(
        absl::StrCat(message, " (the disk is full: free space, then restart xdcd)"));
  }
  if (s.IsIOError()) return absl::UnavailableError(message);
  if (s.IsCorruption()) return absl::DataLossError(message);
  return absl::InternalError(message);
}

std::string Serialize(const google::protobuf::MessageLite& m) { return m.SerializeAsString(); }

template <typename Message>
absl::StatusOr<Message> Parse(const std::string& bytes, absl::string_view what) {
  Message m;
  if (!m.ParseFromString(bytes)) {
    return absl::DataLossError(absl::StrCat("stored ", what, " does not parse"));
  }
  return m;
}

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Store::Store(StoreIdentity identity) : identity_(std::move(identity)) {}

Store::~Store() {
  committer_.reset();  // drains queued appends before the DB closes
  for (rocksdb::ColumnFamilyHandle* cf : cfs_) {
    if (db_ != nullptr) db_->DestroyColumnFamilyHandle(cf).PermitUncheckedError();
  }
  if (db_ != nullptr) db_->Close().PermitUncheckedError();
}

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
  std::unique_ptr<Store> store(new Store(options.identity));
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const char* name : kCfNames) {
    descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
  }
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, options.path, descriptors, &store->cfs_, &raw);
  if (!s.ok()) {
    return absl::UnavailableError(
        absl::StrFormat("cannot open the store at %s: %s (if another xdcd uses this data_dir, "
                        "stop it; if the files are damaged, see "
                        "runbooks/recover-crashed-cluster.md)",
                        options.path, s.ToString()));
  }
  store->db_.reset(raw);
  if (absl::Status st = store->CheckIdentity(); !st.ok()) return st;
  const int32_t shards = store->identity_.shard_count();
  store->outbox_next_task_id_ = std::make_unique<std::atomic<int64_t>[]>(shards);
  store->published_task_id_ = std::make_unique<std::atomic<int64_t>[]>(shards);
  if (absl::Status st = store->RecoverCounters(); !st.ok()) return st;
  Store* self = store.get();
  store->committer_ = std::make_unique<GroupCommitter<AppendWrite>>(
      [self](const std::vector<AppendWrite*>& group) { return self->WriteAppendGroup(group); },
      options.max_commit_group);
  return store;
}

absl::Status Store::CheckIdentity() {
  absl::StatusOr<std::optional<std::string>> stored = Get(kMeta, std::string(keys::kIdentity));
  if (!stored.ok()) return stored.status();
  if (!stored->has_value()) {
    rocksdb::WriteOptions sync;
    sync.sync = true;
    return FromRocks(db_->Put(sync, cfs_[kMeta], keys::kIdentity, Serialize(identity_)),
                     "writing store identity");
  }
  absl::StatusOr<StoreIdentity> existing = Parse<StoreIdentity>(**stored, "store identity");
  if (!existing.ok()) return existing.status();
  if (existing->cluster_name() != identity_.cluster_name() ||
      existing->shard_count() != identity_.shard_count() ||
      existing->initial_failover_version() != identity_.initial_failover_version() ||
      existing->failover_version_increment() != identity_.failover_version_increment()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "this store belongs to cluster '%s' (shard_count %d, initial_failover_version %d, "
        "failover_version_increment %d) but the config says cluster '%s' (shard_count %d, "
        "initial_failover_version %d, failover_version_increment %d). Point data_dir at this "
        "cluster's own store; shard_count and versions cannot change on an existing store",
        existing->cluster_name(), existing->shard_count(), existing->initial_failover_version(),
        existing->failover_version_increment(), identity_.cluster_name(), identity_.shard_count(),
        identity_.initial_failover_version(), identity_.failover_version_increment()));
  }
  return absl::OkStatus();
}

absl::Status Store::RecoverCounters() {
  for (int32_t shard = 0; shard < identity_.shard_count(); ++shard) {
    int64_t published = 0;
    absl::StatusOr<std::optional<std::string>> stored = Get(kMeta, keys::PublishedTaskId(shard));
    if (!stored.ok()) return stored.status();
    if (stored->has_value()) {
      if ((*stored)->size() != sizeof(int64_t)) {
        return absl::DataLossError("stored publish pointer has the wrong size");
      }
      std::memcpy(&published, (*stored)->data(), sizeof(int64_t));
    }
    published_task_id_[shard] = published;
    // The outbox's last key, if any, is the highest task id ever assigned (tasks below the
    // publish pointer are deleted).
    int64_t next = published;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_[kOutbox]));
    it->SeekForPrev(keys::Outbox(shard, INT64_MAX));
    if (it->Valid() && it->key().size() == 12 &&
        it->key().starts_with(keys::Outbox(shard, 0).substr(0, 4))) {
      next = std::max(next, keys::DecodeOutboxTaskId(it->key().ToStringView()) + 1);
    }
    if (!it->status().ok()) return FromRocks(it->status(), "scanning the outbox");
    outbox_next_task_id_[shard] = next;
  }
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_[kDlq]));
  int64_t count = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) ++count;
  if (!it->status().ok()) return FromRocks(it->status(), "scanning the DLQ");
  parked_count_ = count;
  it->SeekToLast();
  next_parked_sequence_ =
      it->Valid() ? keys::DecodeParkedSequence(it->key().ToStringView()) + 1 : 0;
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::string>> Store::Get(Cf cf, const std::string& key) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cfs_[cf], key, &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return FromRocks(s, "reading the store");
  return std::optional<std::string>(std::move(value));
}

// --- namespaces ----------------------------------------------------------------------------------

absl::Status Store::PutNamespace(const NamespaceRecord& record) {
  rocksdb::WriteOptions sync;
  sync.sync = true;
  return FromRocks(
      db_->Put(sync, cfs_[kNamespaces], keys::Namespace(record.id()), Serialize(record)),
      "writing a namespace record");
}

absl::StatusOr<std::vector<NamespaceRecord>> Store::ListNamespaces() const {
  std::vector<NamespaceRecord> records;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), cfs_[kNamespaces]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    absl::StatusOr<NamespaceRecord> record =
        Parse<NamespaceRecord>(it->value().ToString(), "namespace record");
    if (!record.ok()) return record.status();
    records.push_back(*std::move(record));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "listing namespaces");
  return records;
}

// --- workflows -----------------------------------------------------------------------------------

absl::StatusOr<std::optional<WorkflowMutableState>> Store::GetWorkflowState(
    const WorkflowKey& key) const {
  absl::StatusOr<std::optional<std::string>> stored = Get(kWorkflows, keys::Workflow(key));
  if (!stored.ok()) return stored.status();
  if (!stored->has_value()) return std::optional<WorkflowMutableState>();
  absl::StatusOr<WorkflowMutableState> state =
      Parse<WorkflowMutableState>(**stored, "workflow state");
  if (!state.ok()) return state.status();
  return std::optional<WorkflowMutableState>(*std::move(state));
}

absl::StatusOr<std::optional<std::string>> Store::GetCurrentRun(
    const std::string& namespace_id, const std::string& workflow_id) const {
  return Get(kCurrentRuns, keys::CurrentRun(namespace_id, workflow_id));
}

absl::StatusOr<google::protobuf::RepeatedPtrField<HistoryEvent>> Store::ReadBranch(
    const WorkflowKey& key, const VersionHistory& branch) const {
  google::protobuf::RepeatedPtrField<HistoryEvent> events;
  const int64_t last_event_id = LastEventId(branch);
  const std::string prefix = keys::EventPrefix(key);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_[kEvents]));
  // Events are ordered by (event id, version); each id may have one entry per branch, so keep
  // the entry whose version the branch gives that id.
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    int64_t event_id = 0;
    int64_t version = 0;
    if (!keys::DecodeEventSuffix(it->key().ToStringView(), event_id, version)) continue;
    if (event_id > last_event_id) break;
    absl::StatusOr<int64_t> branch_version = VersionOfEvent(branch, event_id);
    if (!branch_version.ok() || *branch_version != version) continue;
    if (!events.Add()->ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError(absl::StrFormat("stored event %d of workflow %s does not parse",
                                                 event_id, key.workflow_id()));
    }
  }
  if (!it->status().ok()) return FromRocks(it->status(), "reading a history");
  if (events.size() != last_event_id) {
    return absl::DataLossError(absl::StrFormat(
        "workflow %s run %s: the branch ends at event %d but only %d of its events are stored",
        key.workflow_id(), key.run_id(), last_event_id, events.size()));
  }
  return events;
}

absl::Status Store::ForEachWorkflow(
    const std::string& namespace_id,
    const std::function<absl::Status(const WorkflowMutableState&)>& visit) const {
  const std::string prefix = keys::WorkflowPrefix(namespace_id);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_[kWorkflows]));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    absl::StatusOr<WorkflowMutableState> state =
        Parse<WorkflowMutableState>(it->value().ToString(), "workflow state");
    if (!state.ok()) return state.status();
    if (absl::Status s = visit(*state); !s.ok()) return s;
  }
  return FromRocks(it->status(), "scanning workflows");
}

// --- the active write path -----------------------------------------------------------------------

absl::Status Store::QueueAppend(AppendWrite& write, AppendTicket& ticket) {
  return committer_->Enqueue(write, ticket);
}

absl::StatusOr<int64_t> Store::WaitAppend(AppendWrite& write, AppendTicket& ticket) {
  if (absl::Status s = committer_->Wait(ticket); !s.ok()) return s;
  return write.task.task_id();
}

absl::StatusOr<int64_t> Store::CommitAppend(AppendWrite& write) {
  AppendTicket ticket;
  if (absl::Status s = QueueAppend(write, ticket); !s.ok()) return s;
  return WaitAppend(write, ticket);
}

absl::Status Store::WriteAppendGroup(const std::vector<AppendWrite*>& group) {
  rocksdb::WriteBatch batch;
  std::vector<int64_t> next_ids(identity_.shard_count());
  for (int32_t shard = 0; shard < identity_.shard_count(); ++shard) {
    next_ids[shard] = outbox_next_task_id_[shard].load();
  }
  std::vector<int32_t> shards;
  for (AppendWrite* write : group) {
    const WorkflowKey& key = write->state.key();
    for (const HistoryEvent& event : write->events) {
      batch.Put(cfs_[kEvents], keys::Event(key, event.event_id(), event.version()),
                Serialize(event));
    }
    batch.Put(cfs_[kWorkflows], keys::Workflow(key), Serialize(write->state));
    if (write->starts_run) {
      batch.Put(cfs_[kCurrentRuns], keys::CurrentRun(key.namespace_id(), key.workflow_id()),
                key.run_id());
    }
    write->task.set_task_id(next_ids[write->shard]++);
    batch.Put(cfs_[kOutbox], keys::Outbox(write->shard, write->task.task_id()),
              Serialize(write->task));
    shards.push_back(write->shard);
  }
  rocksdb::WriteOptions sync;
  sync.sync = true;
  if (absl::Status s = FromRocks(db_->Write(sync, &batch), "committing appends"); !s.ok()) {
    return s;
  }
  for (int32_t shard = 0; shard < identity_.shard_count(); ++shard) {
    outbox_next_task_id_[shard] = next_ids[shard];
  }
  std::sort(shards.begin(), shards.end());
  shards.erase(std::unique(shards.begin(), shards.end()), shards.end());
  if (outbox_listener_) outbox_listener_(shards);
  return absl::OkStatus();
}

void Store::SetOutboxListener(std::function<void(const std::vector<int32_t>&)> listener) {
  outbox_listener_ = std::move(listener);
}
void Store::HoldCommits() { committer_->Hold(); }
void Store::ReleaseCommits() { committer_->Release(); }
size_t Store::QueuedCommits() const { return committer_->queued(); }
uint64_t Store::CommitGroups() const { return committer_->groups_written(); }
uint64_t Store::CommittedAppends() const { return committer_->writes_committed(); }
absl::Status Store::WriteError() const { return committer_->latched_error(); }

// --- outbox --------------------------------------------------------------------------------------

int64_t Store::OutboxNextTaskId(int32_t shard) const { return outbox_next_task_id_[shard].load(); }
int64_t Store::PublishedTaskId(int32_t shard) const { return published_task_id_[shard].load(); }

absl::StatusOr<std::vector<ReplicationTask>> Store::ReadOutbox(int32_t shard, int64_t from_task_id,
                                                               size_t max_tasks) const {
  std::vector<ReplicationTask> tasks;
  const std::string end = keys::Outbox(shard, outbox_next_task_id_[shard].load());
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_[kOutbox]));
  for (it->Seek(keys::Outbox(shard, from_task_id));
       it->Valid() && tasks.size() < max_tasks && it->key().compare(end) < 0; it->Next()) {
    absl::StatusOr<ReplicationTask> task =
        Parse<ReplicationTask>(it->value().ToString(), "outbox task");
    if (!task.ok()) return task.status();
    tasks.push_back(*std::move(task));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "reading the outbox");
  return tasks;
}

absl::Status Store::MarkPublished(int32_t shard, int64_t exclusive_task_id) {
  rocksdb::WriteBatch batch;
  char bytes[sizeof(int64_t)];
  std::memcpy(bytes, &exclusive_task_id, sizeof(int64_t));
  batch.Put(cfs_[kMeta], keys::PublishedTaskId(shard), rocksdb::Slice(bytes, sizeof(int64_t)));
  // Point deletes: a range tombstone per advance would slow every later outbox scan.
  for (int64_t task_id = published_task_id_[shard].load(); task_id < exclusive_task_id; ++task_id) {
    batch.Delete(cfs_[kOutbox], keys::Outbox(shard, task_id));
  }
  // Not synced: losing the pointer re-publishes, and applying is idempotent.
  if (absl::Status s =
          FromRocks(db_->Write(rocksdb::WriteOptions(), &batch), "advancing the outbox");
      !s.ok()) {
    return s;
  }
  published_task_id_[shard] = exclusive_task_id;
  return absl::OkStatus();
}

// --- the apply path ------------------------------------------------------------------------------

absl::StatusOr<ShardApplyProgress> Store::GetApplyProgress(const std::string& source_cluster,
                                                           int32_t shard) const {
  absl::StatusOr<std::optional<std::string>> stored =
      Get(kApplyProgress, keys::ApplyProgress(source_cluster, shard));
  if (!stored.ok()) return stored.status();
  if (!stored->has_value()) return ShardApplyProgress();
  return Parse<ShardApplyProgress>(**stored, "apply progress");
}

absl::Status Store::PutNewestCurrentRuns(const ApplyBatch& apply,
                                         rocksdb::WriteBatch& batch) const {
  // Resent or reordered tasks can bring an older run's start after a newer one's: the current
  // run only moves to a run that started later than the one it names.
  std::map<std::string, const WorkflowMutableState*> newest;
  for (const ApplyBatch::WorkflowUpdate& update : apply.workflows) {
    if (!update.starts_run) continue;
    const WorkflowKey& key = update.state.key();
    const WorkflowMutableState*& best =
        newest[keys::CurrentRun(key.namespace_id(), key.workflow_id())];
    if (best == nullptr || StartedAfter(update.state, *best)) best = &update.state;
  }
  for (const auto& [current_run_key, state] : newest) {
    absl::StatusOr<std::optional<std::string>> stored = Get(kCurrentRuns, current_run_key);
    if (!stored.ok()) return stored.status();
    if (stored->has_value() && **stored != state->key().run_id()) {
      WorkflowKey stored_key = state->key();
      stored_key.set_run_id(**stored);
      absl::StatusOr<std::optional<WorkflowMutableState>> stored_state =
          GetWorkflowState(stored_key);
      if (!stored_state.ok()) return stored_state.status();
      if (stored_state->has_value() && !StartedAfter(*state, **stored_state)) continue;
    }
    batch.Put(cfs_[kCurrentRuns], current_run_key, state->key().run_id());
  }
  return absl::OkStatus();
}

absl::Status Store::CommitApply(ApplyBatch& apply) {
  rocksdb::WriteBatch batch;
  for (const ApplyBatch::WorkflowUpdate& update : apply.workflows) {
    const WorkflowKey& key = update.state.key();
    for (const HistoryEvent& event : update.events) {
      batch.Put(cfs_[kEvents], keys::Event(key, event.event_id(), event.version()),
                Serialize(event));
    }
    batch.Put(cfs_[kWorkflows], keys::Workflow(key), Serialize(update.state));
  }
  if (absl::Status s = PutNewestCurrentRuns(apply, batch); !s.ok()) return s;
  for (ParkedTask& parked : apply.parked) {
    parked.set_sequence(next_parked_sequence_++);
    if (parked.parked_unix_micros() == 0) parked.set_parked_unix_micros(NowMicros());
    batch.Put(cfs_[kDlq], keys::Parked(parked.sequence()), Serialize(parked));
  }
  for (const ApplyBatch::Progress& p : apply.progress) {
    batch.Put(cfs_[kApplyProgress], keys::ApplyProgress(p.source_cluster, p.shard),
              Serialize(p.progress));
  }
  // Not synced: events and progress are lost or kept together, and lost ones are re-consumed.
  if (absl::Status s =
          FromRocks(db_->Write(rocksdb::WriteOptions(), &batch), "committing applied tasks");
      !s.ok()) {
    return s;
  }
  parked_count_ += static_cast<int64_t>(apply.parked.size());
  return absl::OkStatus();
}

// --- DLQ -----------------------------------------------------------------------------------------

absl::StatusOr<std::vector<ParkedTask>> Store::ListParked(size_t limit) const {
  std::vector<ParkedTask> tasks;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_[kDlq]));
  for (it->SeekToFirst(); it->Valid() && tasks.size() < limit; it->Next()) {
    absl::StatusOr<ParkedTask> task = Parse<ParkedTask>(it->value().ToString(), "DLQ entry");
    if (!task.ok()) return task.status();
    tasks.push_back(*std::move(task));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "listing the DLQ");
  return tasks;
}

int64_t Store::ParkedCount() const { return parked_count_.load(); }

}  // namespace xdc
