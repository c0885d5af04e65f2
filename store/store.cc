#include "store/store.h"

#include <algorithm>
#include <map>

#include "absl/base/dynamic_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "chaos/fault_points.h"
#include "protocol/version_history.h"
#include "protocol/workflow_state.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/write_batch.h"
#include "store/keys.h"

namespace xdc {
namespace {

// Runs a RocksDB write with ThreadSanitizer not checking the accesses made inside it (a no-op
// unless built with -fsanitize=thread: scripts/test-tsan.sh). RocksDB groups concurrent writes
// (the commit thread's groups, MarkPublished, PutMeta) and the group's leader thread copies the
// other writers' batches, ordered by RocksDB's own atomics, which TSan cannot see in Debian's
// uninstrumented librocksdb: every such copy would be reported as a race. The copies go through
// libstdc++'s string code, whose frames hide RocksDB's, so tsan/suppressions.txt cannot name
// them. Nothing of ours runs inside a write, so no access of our code goes unchecked.
template <typename WriteFn>
rocksdb::Status UncheckedByTsan(WriteFn&& write) {
  ABSL_ANNOTATE_IGNORE_READS_AND_WRITES_BEGIN();
  rocksdb::Status s = write();
  ABSL_ANNOTATE_IGNORE_READS_AND_WRITES_END();
  return s;
}

const char* const kCfNames[] = {"default",      "meta",      "namespaces",     "workflows",
                                "current_runs", "events",    "outbox",         "apply_progress",
                                "dlq",          "handovers", "requests",       "reapply_pending"};

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

// Fixed-width values of the meta CF (host byte order: a store never moves between machines
// of different endianness without a dump).
std::string EncodeInt64(int64_t value) {
  std::string bytes(sizeof(int64_t), '\0');
  std::memcpy(bytes.data(), &value, sizeof(int64_t));
  return bytes;
}

absl::StatusOr<int64_t> DecodeInt64(const std::string& bytes, absl::string_view what) {
  if (bytes.size() != sizeof(int64_t)) {
    return absl::DataLossError(absl::StrCat("stored ", what, " has the wrong size"));
  }
  int64_t value = 0;
  std::memcpy(&value, bytes.data(), sizeof(int64_t));
  return value;
}

// MarkPublished deletes at most this many outbox keys one by one; more (a raised task id floor)
// go as one range deletion.
constexpr int64_t kMaxPointDeletesPerAdvance = 100'000;

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
  if (absl::Status st = store->NextIncarnation(); !st.ok()) return st;
  const int32_t shards = store->identity_.shard_count();
  store->outbox_next_task_id_ = std::make_unique<std::atomic<int64_t>[]>(shards);
  store->published_task_id_ = std::make_unique<std::atomic<int64_t>[]>(shards);
  if (absl::Status st = store->RecoverCounters(); !st.ok()) return st;
  if (absl::Status st = store->RecoverReapplyPending(); !st.ok()) return st;
  Store* self = store.get();
  store->committer_ = std::make_unique<GroupCommitter<StoreWrite>>(
      [self](const std::vector<StoreWrite*>& group) { return self->WriteGroup(group); },
      options.max_commit_group);
  return store;
}

absl::Status Store::CheckIdentity() {
  absl::StatusOr<std::optional<std::string>> stored = Get(kMeta, std::string(keys::kIdentity));
  if (!stored.ok()) return stored.status();
  if (!stored->has_value()) {
    rocksdb::WriteOptions sync;
    sync.sync = true;
    return FromRocks(UncheckedByTsan([&] {
                       return db_->Put(sync, cfs_[kMeta], keys::kIdentity, Serialize(identity_));
                     }),
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

absl::Status Store::NextIncarnation() {
  absl::StatusOr<std::optional<std::string>> stored = Get(kMeta, std::string(keys::kIncarnation));
  if (!stored.ok()) return stored.status();
  int64_t previous = 0;
  if (stored->has_value()) {
    absl::StatusOr<int64_t> decoded = DecodeInt64(**stored, "store incarnation");
    if (!decoded.ok()) return decoded.status();
    previous = *decoded;
  }
  incarnation_ = previous + 1;
  rocksdb::WriteOptions sync;
  sync.sync = true;
  return FromRocks(UncheckedByTsan([&] {
                     return db_->Put(sync, cfs_[kMeta], keys::kIncarnation,
                                     EncodeInt64(incarnation_));
                   }),
                   "writing the store incarnation");
}

absl::Status Store::RecoverCounters() {
  for (int32_t shard = 0; shard < identity_.shard_count(); ++shard) {
    int64_t published = 0;
    absl::StatusOr<std::optional<std::string>> stored = Get(kMeta, keys::PublishedTaskId(shard));
    if (!stored.ok()) return stored.status();
    if (stored->has_value()) {
      absl::StatusOr<int64_t> decoded = DecodeInt64(**stored, "publish pointer");
      if (!decoded.ok()) return decoded.status();
      published = *decoded;
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
    absl::StatusOr<std::optional<std::string>> floor = Get(kMeta, keys::TaskIdFloor(shard));
    if (!floor.ok()) return floor.status();
    if (floor->has_value()) {
      absl::StatusOr<int64_t> decoded = DecodeInt64(**floor, "task id floor");
      if (!decoded.ok()) return decoded.status();
      next = std::max(next, *decoded);
    }
    outbox_next_task_id_[shard] = next;
  }
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_[kDlq]));
  int64_t count = 0;
  int64_t awaiting = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    ++count;
    ParkedTask entry;
    if (entry.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())) &&
        entry.awaiting_resend()) {
      ++awaiting;
    }
  }
  if (!it->status().ok()) return FromRocks(it->status(), "scanning the DLQ");
  parked_count_ = count;
  awaiting_resend_count_ = awaiting;
  it->SeekToLast();
  // The last sequence assigned; entries start at 1 (0 marks a new entry in StoreWrite).
  int64_t last_sequence = it->Valid() ? keys::DecodeParkedSequence(it->key().ToStringView()) : 0;
  absl::StatusOr<std::optional<std::string>> stored_last =
      Get(kMeta, std::string(keys::kLastParkedSequence));
  if (!stored_last.ok()) return stored_last.status();
  if (stored_last->has_value()) {
    absl::StatusOr<int64_t> decoded = DecodeInt64(**stored_last, "last DLQ sequence");
    if (!decoded.ok()) return decoded.status();
    last_sequence = std::max(last_sequence, *decoded);
  }
  last_parked_sequence_ = last_sequence;
  return absl::OkStatus();
}

absl::Status Store::RecoverReapplyPending() {
  absl::StatusOr<std::optional<std::string>> indexed =
      Get(kMeta, std::string(keys::kReapplyPendingIndexed));
  if (!indexed.ok()) return indexed.status();
  if (!indexed->has_value()) {
    // A store from before the index (or a new one): index its runs, once, in one synced write
    // with the marker. Only runs with the flag are put, so the batch is as small as the index.
    rocksdb::WriteBatch batch;
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), cfs_[kWorkflows]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      WorkflowMutableState state;
      // A state that does not parse is reported by the scans that read it (ScanWorkflows).
      if (state.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())) &&
          state.reapply_pending()) {
        batch.Put(cfs_[kReapplyPending], it->key(), "");
      }
    }
    if (!it->status().ok()) return FromRocks(it->status(), "indexing reapply_pending runs");
    batch.Put(cfs_[kMeta], keys::kReapplyPendingIndexed, "");
    rocksdb::WriteOptions sync;
    sync.sync = true;
    if (absl::Status s = FromRocks(UncheckedByTsan([&] { return db_->Write(sync, &batch); }),
                                   "indexing reapply_pending runs");
        !s.ok()) {
      return s;
    }
  }
  std::map<std::string, int64_t> counts;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), cfs_[kReapplyPending]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    WorkflowKey key;
    if (keys::DecodeWorkflow(it->key().ToStringView(), key)) ++counts[key.namespace_id()];
  }
  if (!it->status().ok()) return FromRocks(it->status(), "counting reapply_pending runs");
  absl::MutexLock lock(&pending_mu_);
  reapply_pending_ = std::move(counts);
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

template <typename Message>
absl::StatusOr<std::vector<Message>> Store::ListAll(Cf cf, const char* what) const {
  std::vector<Message> records;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_[cf]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    absl::StatusOr<Message> record = Parse<Message>(it->value().ToString(), what);
    if (!record.ok()) return record.status();
    records.push_back(*std::move(record));
  }
  if (!it->status().ok()) return FromRocks(it->status(), absl::StrCat("listing ", what, "s"));
  return records;
}

template <typename Message>
absl::StatusOr<std::vector<Message>> Store::ListMetaPrefix(std::string_view prefix,
                                                           const char* what) const {
  std::vector<Message> records;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_[kMeta]));
  for (it->Seek(rocksdb::Slice(prefix.data(), prefix.size()));
       it->Valid() && it->key().starts_with(rocksdb::Slice(prefix.data(), prefix.size()));
       it->Next()) {
    absl::StatusOr<Message> record = Parse<Message>(it->value().ToString(), what);
    if (!record.ok()) return record.status();
    records.push_back(*std::move(record));
  }
  if (!it->status().ok()) return FromRocks(it->status(), absl::StrCat("listing ", what, "s"));
  return records;
}

absl::Status Store::PutMeta(const std::string& key, const std::string& value, const char* what) {
  if (absl::Status s = WriteError(); !s.ok()) return s;
  rocksdb::WriteOptions sync;
  sync.sync = true;
  return FromRocks(UncheckedByTsan([&] { return db_->Put(sync, cfs_[kMeta], key, value); }),
                   absl::StrCat("writing ", what));
}

absl::Status Store::PutFederationMember(const FederationMember& member) {
  return PutMeta(keys::FederationMember(member.cluster().name()), Serialize(member),
                 "federation member");
}

absl::Status Store::DeleteFederationMember(const std::string& cluster_name) {
  rocksdb::WriteOptions sync;
  sync.sync = true;
  return FromRocks(UncheckedByTsan([&] {
                     return db_->Delete(sync, cfs_[kMeta], keys::FederationMember(cluster_name));
                   }),
                   "deleting federation member");
}

absl::StatusOr<std::vector<FederationMember>> Store::ListFederationMembers() const {
  return ListMetaPrefix<FederationMember>(keys::kFederationMemberPrefix, "federation member");
}

absl::Status Store::PutBackfillState(const BackfillState& state) {
  return PutMeta(keys::Backfill(state.namespace_id()), Serialize(state), "backfill state");
}

absl::StatusOr<std::vector<BackfillState>> Store::ListBackfillStates() const {
  return ListMetaPrefix<BackfillState>(keys::kBackfillPrefix, "backfill state");
}

absl::StatusOr<std::vector<NamespaceRecord>> Store::ListNamespaces() const {
  return ListAll<NamespaceRecord>(kNamespaces, "namespace record");
}

absl::StatusOr<std::vector<HandoverTargetState>> Store::ListHandoverStates() const {
  return ListAll<HandoverTargetState>(kHandovers, "handover state");
}

absl::StatusOr<std::vector<NamespaceRecordLearned>> Store::ListNamespacesLearned() const {
  return ListMetaPrefix<NamespaceRecordLearned>(keys::kNamespaceLearnedPrefix,
                                                "namespace record learned");
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

absl::Status Store::ScanWorkflows(
    const std::string& namespace_id,
    const std::function<absl::Status(
        const WorkflowKey& key, const absl::StatusOr<WorkflowMutableState>& state)>& visit) const {
  const std::string prefix = keys::WorkflowPrefix(namespace_id);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_[kWorkflows]));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    WorkflowKey key;
    if (!keys::DecodeWorkflow(it->key().ToStringView(), key)) {
      key.set_namespace_id(namespace_id);
      key.set_workflow_id(absl::StrCat("<undecodable key of ", it->key().size(), " bytes>"));
    }
    absl::StatusOr<WorkflowMutableState> state =
        Parse<WorkflowMutableState>(it->value().ToString(), "workflow state");
    if (absl::Status s = visit(key, state); !s.ok()) return s;
  }
  return FromRocks(it->status(), "scanning workflows");
}

absl::StatusOr<std::vector<WorkflowMutableState>> Store::ListWorkflows(
    const std::string& namespace_id, const WorkflowKey* after, size_t limit) const {
  const std::string prefix = keys::WorkflowPrefix(namespace_id);
  std::vector<WorkflowMutableState> states;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_[kWorkflows]));
  const std::string after_key = after == nullptr ? "" : keys::Workflow(*after);
  it->Seek(after == nullptr ? prefix : after_key);
  if (after != nullptr && it->Valid() && it->key() == after_key) it->Next();
  for (; it->Valid() && it->key().starts_with(prefix) && states.size() < limit; it->Next()) {
    absl::StatusOr<WorkflowMutableState> state =
        Parse<WorkflowMutableState>(it->value().ToString(), "workflow state");
    if (!state.ok()) return state.status();
    states.push_back(*std::move(state));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "scanning workflows");
  return states;
}

int64_t Store::ReapplyPendingCount() const {
  absl::MutexLock lock(&pending_mu_);
  int64_t total = 0;
  for (const auto& [namespace_id, runs] : reapply_pending_) total += runs;
  return total;
}

absl::StatusOr<std::vector<ReapplyPendingRuns>> Store::ListReapplyPending(
    size_t listed_per_namespace) const {
  std::vector<ReapplyPendingRuns> namespaces;
  {
    absl::MutexLock lock(&pending_mu_);
    for (const auto& [namespace_id, runs] : reapply_pending_) {
      ReapplyPendingRuns& entry = namespaces.emplace_back();
      entry.namespace_id = namespace_id;
      entry.runs = runs;
    }
  }
  for (ReapplyPendingRuns& entry : namespaces) {
    const std::string prefix = keys::WorkflowPrefix(entry.namespace_id);
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), cfs_[kReapplyPending]));
    for (it->Seek(prefix);
         it->Valid() && it->key().starts_with(prefix) && entry.listed.size() < listed_per_namespace;
         it->Next()) {
      WorkflowKey key;
      if (keys::DecodeWorkflow(it->key().ToStringView(), key)) entry.listed.push_back(key);
    }
    if (!it->status().ok()) return FromRocks(it->status(), "listing reapply_pending runs");
  }
  return namespaces;
}

absl::StatusOr<HistoryEvent> Store::ReadEvent(const WorkflowKey& key, int64_t event_id,
                                              int64_t version) const {
  absl::StatusOr<std::optional<std::string>> stored =
      Get(kEvents, keys::Event(key, event_id, version));
  if (!stored.ok()) return stored.status();
  if (!stored->has_value()) {
    return absl::NotFoundError(absl::StrFormat("event %d (version %d) of workflow %s is not stored",
                                               event_id, version, key.workflow_id()));
  }
  return Parse<HistoryEvent>(**stored, "event");
}

// --- writes --------------------------------------------------------------------------------------

absl::Status Store::QueueWrite(StoreWrite& write, WriteTicket& ticket) {
  auto check_shard = [&](const ReplicationTask& task) -> absl::Status {
    if (task.shard() < 0 || task.shard() >= identity_.shard_count()) {
      return absl::InvalidArgumentError(absl::StrFormat("outbox task for shard %d", task.shard()));
    }
    return absl::OkStatus();
  };
  if (write.outbox_task.has_value()) {
    if (absl::Status s = check_shard(*write.outbox_task); !s.ok()) return s;
  }
  for (const ReplicationTask& marker : write.handover_markers) {
    if (absl::Status s = check_shard(marker); !s.ok()) return s;
  }
  return committer_->Enqueue(write, ticket);
}

absl::StatusOr<int64_t> Store::WaitWrite(StoreWrite& write, WriteTicket& ticket) {
  if (absl::Status s = committer_->Wait(ticket); !s.ok()) return s;
  return write.outbox_task.has_value() ? write.outbox_task->task_id() : -1;
}

absl::StatusOr<int64_t> Store::CommitWrite(StoreWrite& write) {
  WriteTicket ticket;
  if (absl::Status s = QueueWrite(write, ticket); !s.ok()) return s;
  return WaitWrite(write, ticket);
}

StoreEngineStats Store::EngineStats() const {
  auto sum = [&](const std::string& property) {
    int64_t total = 0;
    for (rocksdb::ColumnFamilyHandle* cf : cfs_) {
      uint64_t value = 0;
      if (db_->GetIntProperty(cf, property, &value)) total += static_cast<int64_t>(value);
    }
    return total;
  };
  StoreEngineStats stats;
  stats.sst_bytes = sum(rocksdb::DB::Properties::kTotalSstFilesSize);
  stats.memtable_bytes = sum(rocksdb::DB::Properties::kCurSizeAllMemTables);
  stats.pending_compaction_bytes = sum(rocksdb::DB::Properties::kEstimatePendingCompactionBytes);
  uint64_t value = 0;
  stats.writes_stopped =
      db_->GetIntProperty(rocksdb::DB::Properties::kIsWriteStopped, &value) && value != 0;
  if (db_->GetIntProperty(rocksdb::DB::Properties::kActualDelayedWriteRate, &value)) {
    stats.delayed_write_rate = static_cast<int64_t>(value);
  }
  return stats;
}

absl::Status Store::WriteGroup(const std::vector<StoreWrite*>& group) {
  // Fault injection: fail before anything is put in the batch, so the group changes nothing.
  if (fault::Armed(fault::kStoreWriteError)) {
    return absl::UnavailableError(std::string(fault::kStoreWriteErrorMessage));
  }
  if (fault::Armed(fault::kStoreWriteDlq)) {
    for (const StoreWrite* write : group) {
      if (!write->parked.empty()) {
        return absl::UnavailableError(
            absl::StrFormat("fault point %s: writing the DLQ failed", fault::kStoreWriteDlq));
      }
    }
  }
  rocksdb::WriteBatch batch;
  std::vector<int64_t> next_ids(identity_.shard_count());
  for (int32_t shard = 0; shard < identity_.shard_count(); ++shard) {
    next_ids[shard] = outbox_next_task_id_[shard].load();
  }
  int64_t last_sequence = last_parked_sequence_.load();
  int64_t parked_delta = 0;
  int64_t awaiting_delta = 0;
  // DLQ entries this group already changed, as it leaves them (awaiting_resend; none: deleted),
  // so two changes of one entry in a group count once.
  std::map<int64_t, std::optional<bool>> dlq_after;
  auto dlq_entry = [&](int64_t sequence) -> absl::StatusOr<std::optional<bool>> {
    if (auto it = dlq_after.find(sequence); it != dlq_after.end()) return it->second;
    absl::StatusOr<std::optional<ParkedTask>> stored = GetParked(sequence);
    if (!stored.ok()) return stored.status();
    if (!stored->has_value()) return std::optional<bool>();
    return std::optional<bool>((*stored)->awaiting_resend());
  };
  std::vector<int32_t> shards;
  bool sync = false;
  uint64_t synced_writes = 0;
  for (StoreWrite* write : group) {
    for (const WorkflowWrite& update : write->workflows) {
      const WorkflowKey& key = update.state.key();
      if (update.replace_events) {
        batch.DeleteRange(cfs_[kEvents], keys::EventPrefix(key), keys::EventPrefixEnd(key));
      }
      for (const HistoryEvent& event : update.events) {
        batch.Put(cfs_[kEvents], keys::Event(key, event.event_id(), event.version()),
                  Serialize(event));
      }
      batch.Put(cfs_[kWorkflows], keys::Workflow(key), Serialize(update.state));
    }
    for (size_t shard = 0; shard < write->task_id_floors.size() && shard < next_ids.size();
         ++shard) {
      const int64_t floor = write->task_id_floors[shard];
      if (floor <= next_ids[shard]) continue;
      next_ids[shard] = floor;
      batch.Put(cfs_[kMeta], keys::TaskIdFloor(static_cast<int32_t>(shard)), EncodeInt64(floor));
      shards.push_back(static_cast<int32_t>(shard));
    }
    auto put_outbox = [&](ReplicationTask& task) {
      task.set_source_incarnation(incarnation_);
      task.set_task_id(next_ids[task.shard()]++);
      batch.Put(cfs_[kOutbox], keys::Outbox(task.shard(), task.task_id()), Serialize(task));
      shards.push_back(task.shard());
    };
    if (write->outbox_task.has_value()) put_outbox(*write->outbox_task);
    for (ReplicationTask& marker : write->handover_markers) put_outbox(marker);
    if (write->namespace_record.has_value()) {
      batch.Put(cfs_[kNamespaces], keys::Namespace(write->namespace_record->id()),
                Serialize(*write->namespace_record));
    }
    if (write->namespace_learned.has_value()) {
      batch.Put(cfs_[kMeta], keys::NamespaceLearned(write->namespace_learned->namespace_id()),
                Serialize(*write->namespace_learned));
    }
    for (const HandoverTargetState& state : write->handover_states) {
      batch.Put(cfs_[kHandovers], keys::Namespace(state.namespace_id()), Serialize(state));
    }
    for (ParkedTask& parked : write->parked) {
      std::optional<bool> old;  // the entry's awaiting flag before this change; none: absent
      const bool is_new = parked.sequence() == 0;
      if (is_new) {
        parked.set_sequence(++last_sequence);
      } else {
        absl::StatusOr<std::optional<bool>> found = dlq_entry(parked.sequence());
        if (!found.ok()) return found.status();
        old = *found;
      }
      if (!old.has_value()) {
        // A replacement of an entry deleted meanwhile (an operator purged it while a retry
        // was deciding): the purge wins.
        if (!is_new) continue;
        ++parked_delta;
      }
      awaiting_delta += (parked.awaiting_resend() ? 1 : 0) - (old.value_or(false) ? 1 : 0);
      dlq_after[parked.sequence()] = parked.awaiting_resend();
      if (parked.parked_unix_micros() == 0) parked.set_parked_unix_micros(NowMicros());
      batch.Put(cfs_[kDlq], keys::Parked(parked.sequence()), Serialize(parked));
    }
    for (int64_t sequence : write->unparked) {
      absl::StatusOr<std::optional<bool>> old = dlq_entry(sequence);
      if (!old.ok()) return old.status();
      if (!old->has_value()) continue;
      batch.Delete(cfs_[kDlq], keys::Parked(sequence));
      --parked_delta;
      if (**old) --awaiting_delta;
      dlq_after[sequence] = std::nullopt;
    }
    for (const ProgressWrite& p : write->progress) {
      batch.Put(cfs_[kApplyProgress], keys::ApplyProgress(p.source_cluster, p.shard),
                Serialize(p.progress));
    }
    if (write->durability == Durability::kSynced) {
      sync = true;
      ++synced_writes;
    }
  }
  if (last_sequence != last_parked_sequence_.load()) {
    // Persisted so that sequences are never reused, even after the newest entries were deleted.
    batch.Put(cfs_[kMeta], keys::kLastParkedSequence, EncodeInt64(last_sequence));
  }
  if (absl::Status s = PutNewestCurrentRuns(group, batch); !s.ok()) return s;
  if (absl::Status s = PutNewestRequests(group, batch); !s.ok()) return s;
  std::map<std::string, int64_t> pending_delta;
  if (absl::Status s = IndexReapplyPending(group, batch, pending_delta); !s.ok()) return s;
  rocksdb::WriteOptions options;
  options.sync = sync;
  if (absl::Status s = FromRocks(UncheckedByTsan([&] { return db_->Write(options, &batch); }),
                                 "committing writes");
      !s.ok()) {
    return s;
  }
  for (int32_t shard = 0; shard < identity_.shard_count(); ++shard) {
    outbox_next_task_id_[shard] = next_ids[shard];
  }
  last_parked_sequence_ = last_sequence;
  parked_count_ += parked_delta;
  awaiting_resend_count_ += awaiting_delta;
  if (!pending_delta.empty()) {
    absl::MutexLock lock(&pending_mu_);
    for (const auto& [namespace_id, delta] : pending_delta) {
      if ((reapply_pending_[namespace_id] += delta) <= 0) reapply_pending_.erase(namespace_id);
    }
  }
  if (sync) {
    ++synced_groups_;
    synced_writes_ += synced_writes;
  }
  std::sort(shards.begin(), shards.end());
  shards.erase(std::unique(shards.begin(), shards.end()), shards.end());
  if (!shards.empty()) {
    absl::MutexLock lock(&listener_mu_);
    if (outbox_listener_) outbox_listener_(shards);
  }
  return absl::OkStatus();
}

void Store::SetOutboxListener(std::function<void(const std::vector<int32_t>&)> listener) {
  // Swapped under the lock, destroyed outside it: the old listener's captures may be anything.
  {
    absl::MutexLock lock(&listener_mu_);
    outbox_listener_.swap(listener);
  }
}
void Store::HoldCommits() { committer_->Hold(); }
void Store::ReleaseCommits() { committer_->Release(); }
size_t Store::QueuedCommits() const { return committer_->queued(); }
absl::Status Store::WriteError() const { return committer_->latched_error(); }

// --- outbox --------------------------------------------------------------------------------------

int64_t Store::OutboxNextTaskId(int32_t shard) const { return outbox_next_task_id_[shard].load(); }
int64_t Store::PublishedTaskId(int32_t shard) const { return published_task_id_[shard].load(); }

absl::StatusOr<std::vector<ReplicationTask>> Store::ReadOutbox(int32_t shard, int64_t from_task_id,
                                                               size_t max_tasks) const {
  std::vector<ReplicationTask> tasks;
  const std::string end = keys::Outbox(shard, outbox_next_task_id_[shard].load());
  // The bound stops the iterator at this shard's end. Without it, the Next() past the shard's
  // last task walks the next shard's published tasks, whose point deletes sit in the memtable
  // until a flush: that walk was the publisher's top cost under load (docs/benchmarks.md).
  const rocksdb::Slice upper_bound(end);
  rocksdb::ReadOptions read_options;
  read_options.iterate_upper_bound = &upper_bound;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options, cfs_[kOutbox]));
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
  batch.Put(cfs_[kMeta], keys::PublishedTaskId(shard), EncodeInt64(exclusive_task_id));
  // Point deletes: a range tombstone per advance would slow every later outbox scan. Only an
  // advance over a raised task id floor (ids that were never assigned here) is one range.
  const int64_t from = published_task_id_[shard].load();
  if (exclusive_task_id - from > kMaxPointDeletesPerAdvance) {
    batch.DeleteRange(cfs_[kOutbox], keys::Outbox(shard, from),
                      keys::Outbox(shard, exclusive_task_id));
  } else {
    for (int64_t task_id = from; task_id < exclusive_task_id; ++task_id) {
      batch.Delete(cfs_[kOutbox], keys::Outbox(shard, task_id));
    }
  }
  // Not synced: losing the pointer re-publishes, and applying is idempotent.
  if (absl::Status s =
          FromRocks(UncheckedByTsan([&] { return db_->Write(rocksdb::WriteOptions(), &batch); }),
                    "advancing the outbox");
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

absl::Status Store::IndexReapplyPending(const std::vector<StoreWrite*>& group,
                                        rocksdb::WriteBatch& batch,
                                        std::map<std::string, int64_t>& delta) const {
  // Only the commit thread changes the index and the counts, so they agree here. While no run is
  // pending anywhere (the usual case), a write needs no read of the index.
  const bool none_indexed = ReapplyPendingCount() == 0;
  std::map<std::string, bool> indexed_after;  // runs this group wrote: indexed after its writes
  for (const StoreWrite* write : group) {
    for (const WorkflowWrite& update : write->workflows) {
      const std::string key = keys::Workflow(update.state.key());
      bool indexed = false;
      if (auto it = indexed_after.find(key); it != indexed_after.end()) {
        indexed = it->second;
      } else if (!none_indexed) {
        absl::StatusOr<std::optional<std::string>> stored = Get(kReapplyPending, key);
        if (!stored.ok()) return stored.status();
        indexed = stored->has_value();
      }
      const bool pending = update.state.reapply_pending();
      indexed_after[key] = pending;
      if (indexed == pending) continue;
      if (pending) {
        batch.Put(cfs_[kReapplyPending], key, "");
      } else {
        batch.Delete(cfs_[kReapplyPending], key);
      }
      delta[update.state.key().namespace_id()] += pending ? 1 : -1;
    }
  }
  return absl::OkStatus();
}

absl::Status Store::PutNewestCurrentRuns(const std::vector<StoreWrite*>& group,
                                         rocksdb::WriteBatch& batch) const {
  // One rule for every run, whoever started it (StartedAfter): the current run only moves to a
  // run that started after the one it names. Resent or reordered tasks can bring an older run's
  // start after a newer one's, and during a split brain a cluster may start a run at an older
  // version than a run it already received: every cluster still picks the same run.
  std::map<std::string, const WorkflowMutableState*> newest;
  for (const StoreWrite* write : group) {
    for (const WorkflowWrite& update : write->workflows) {
      if (!update.starts_run) continue;
      const WorkflowKey& key = update.state.key();
      const WorkflowMutableState*& best =
          newest[keys::CurrentRun(key.namespace_id(), key.workflow_id())];
      if (best == nullptr || StartedAfter(update.state, *best)) best = &update.state;
    }
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

absl::Status Store::PutNewestRequests(const std::vector<StoreWrite*>& group,
                                      rocksdb::WriteBatch& batch) const {
  // The newest failover version wins: the winning branch holds the highest version, so a
  // request written again after a forced failover, or a reapplied copy of its signal, supersedes
  // the losing-branch original whatever order they arrive in.
  std::map<std::string, RequestRecord> newest;
  for (const StoreWrite* write : group) {
    for (const WorkflowWrite& update : write->workflows) {
      for (const HistoryEvent& event : update.events) {
        if (event.request().request_id().empty()) continue;
        RequestRecord record;
        *record.mutable_workflow() = update.state.key();
        record.set_first_event_id(event.event_id());
        record.set_next_event_id(event.event_id() + std::max(1, event.request().event_count()));
        record.set_version(event.version());
        RequestRecord& best =
            newest[keys::Request(update.state.key().namespace_id(), event.request().request_id())];
        if (best.version() <= record.version()) best = std::move(record);
      }
    }
  }
  for (const auto& [key, record] : newest) {
    absl::StatusOr<std::optional<std::string>> stored = Get(kRequests, key);
    if (!stored.ok()) return stored.status();
    if (stored->has_value()) {
      absl::StatusOr<RequestRecord> old = Parse<RequestRecord>(**stored, "request record");
      if (!old.ok()) return old.status();
      if (old->version() > record.version()) continue;
    }
    batch.Put(cfs_[kRequests], key, Serialize(record));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<RequestRecord>> Store::GetRequest(
    const std::string& namespace_id, const std::string& request_id) const {
  absl::StatusOr<std::optional<std::string>> stored =
      Get(kRequests, keys::Request(namespace_id, request_id));
  if (!stored.ok()) return stored.status();
  if (!stored->has_value()) return std::optional<RequestRecord>();
  absl::StatusOr<RequestRecord> record = Parse<RequestRecord>(**stored, "request record");
  if (!record.ok()) return record.status();
  return std::optional<RequestRecord>(*std::move(record));
}

// --- DLQ -----------------------------------------------------------------------------------------

absl::StatusOr<std::vector<ParkedTask>> Store::ListParked(size_t limit,
                                                          int64_t from_sequence) const {
  std::vector<ParkedTask> tasks;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cfs_[kDlq]));
  for (it->Seek(keys::Parked(from_sequence)); it->Valid() && tasks.size() < limit; it->Next()) {
    absl::StatusOr<ParkedTask> task = Parse<ParkedTask>(it->value().ToString(), "DLQ entry");
    if (!task.ok()) return task.status();
    tasks.push_back(*std::move(task));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "listing the DLQ");
  return tasks;
}

absl::StatusOr<std::optional<ParkedTask>> Store::GetParked(int64_t sequence) const {
  absl::StatusOr<std::optional<std::string>> stored = Get(kDlq, keys::Parked(sequence));
  if (!stored.ok()) return stored.status();
  if (!stored->has_value()) return std::optional<ParkedTask>();
  absl::StatusOr<ParkedTask> task = Parse<ParkedTask>(**stored, "DLQ entry");
  if (!task.ok()) return task.status();
  return std::optional<ParkedTask>(*std::move(task));
}

int64_t Store::ParkedCount() const { return parked_count_.load(); }
int64_t Store::AwaitingResendCount() const { return awaiting_resend_count_.load(); }

}  // namespace xdc
