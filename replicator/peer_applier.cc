#include "replicator/peer_applier.h"

#include <cstdio>

#include "absl/strings/str_format.h"
#include "protocol/conflict_resolver.h"
#include "protocol/message_codec.h"
#include "protocol/task_sequence.h"
#include "store/keys.h"

namespace xdc {

PeerApplier::PeerApplier(const DaemonConfig& config, const Tunables& tunables, std::string peer,
                         Store& store, NamespaceRegistry& namespaces, ApplierProbe probe,
                         Clock clock)
    : config_(config),
      tunables_(tunables),
      peer_(std::move(peer)),
      history_topic_(HistoryTopic(peer_)),
      control_topic_(ControlTopic(peer_)),
      store_(store),
      namespaces_(namespaces),
      probe_(probe),
      clock_(std::move(clock)),
      truncated_since_micros_(config.shard_count(), 0),
      shards_(config.shard_count()) {}

PeerApplier::~PeerApplier() { Stop(); }

absl::Status PeerApplier::Start(const std::string& bootstrap) {
  std::vector<KafkaConsumer::Assignment> assignments;
  {
    absl::MutexLock lock(&mu_);
    for (int32_t shard = 0; shard < config_.shard_count(); ++shard) {
      absl::StatusOr<ShardApplyProgress> progress = store_.GetApplyProgress(peer_, shard);
      if (!progress.ok()) return progress.status();
      shards_[shard].progress = *progress;
      assignments.push_back({history_topic_, shard, progress->next_offset()});
    }
    absl::StatusOr<ShardApplyProgress> control = store_.GetApplyProgress(peer_, kControlShard);
    if (!control.ok()) return control.status();
    control_progress_ = *control;
    assignments.push_back({control_topic_, 0, control->next_offset()});
  }
  absl::StatusOr<std::unique_ptr<KafkaConsumer>> consumer = KafkaConsumer::Create(
      bootstrap, absl::StrFormat("xdc.%s.from.%s", config_.cluster_name(), peer_),
      tunables_.fetch_wait_max_ms);
  if (!consumer.ok()) return consumer.status();
  consumer_ = *std::move(consumer);
  if (absl::Status s = consumer_->Assign(assignments); !s.ok()) return s;
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void PeerApplier::Stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

std::vector<PeerShardStatus> PeerApplier::Snapshot() const {
  const int64_t now = clock_();
  absl::MutexLock lock(&mu_);
  std::vector<PeerShardStatus> result;
  for (const ShardView& view : shards_) {
    PeerShardStatus status;
    status.set_peer(peer_);
    status.set_applied_offset(view.progress.next_offset());
    status.set_high_watermark(view.high_watermark);
    const int64_t lag =
        view.high_watermark < 0
            ? 0
            : std::max<int64_t>(0, view.high_watermark - view.progress.next_offset());
    status.set_lag_tasks(lag);
    status.set_lag_seconds(lag > 0 && view.progress.last_task_created_unix_micros() > 0
                               ? (now - view.progress.last_task_created_unix_micros()) / 1e6
                               : 0.0);
    status.set_events_applied(view.progress.events_applied());
    status.set_duplicate_events_dropped(view.progress.duplicate_events_dropped());
    status.set_tasks_parked(view.progress.tasks_parked());
    status.set_missing_tasks(MissingTaskCount(view.progress.task_sequence()));
    result.push_back(std::move(status));
  }
  return result;
}

std::string PeerApplier::halt_reason() const {
  absl::MutexLock lock(&mu_);
  return halt_reason_;
}

ShardApplyProgress& PeerApplier::ProgressFor(int32_t shard, Pending& pending) {
  auto it = pending.progress.find(shard);
  if (it != pending.progress.end()) return it->second;
  absl::MutexLock lock(&mu_);
  return pending.progress[shard] =
             shard == kControlShard ? control_progress_ : shards_[shard].progress;
}

void PeerApplier::Halt(const std::string& reason) {
  std::fprintf(stderr, "xdcd: %s\n", reason.c_str());
  probe_.halted->Set(1);
  absl::MutexLock lock(&mu_);
  halt_reason_ = reason;
}

std::optional<std::string> PeerApplier::CheckNotTruncated(
    const std::vector<int64_t>& high_watermarks) {
  const int64_t now = clock_();
  for (int32_t shard = 0; shard < config_.shard_count(); ++shard) {
    int64_t applied = 0;
    {
      absl::MutexLock lock(&mu_);
      applied = shards_[shard].progress.next_offset();
    }
    if (high_watermarks[shard] < 0 || high_watermarks[shard] >= applied) {
      truncated_since_micros_[shard] = 0;
      continue;
    }
    if (truncated_since_micros_[shard] == 0) truncated_since_micros_[shard] = now;
    if (now - truncated_since_micros_[shard] >= tunables_.truncation_confirm_ms * int64_t{1000}) {
      return absl::StrFormat(
          "applier for peer %s halted: partition %d of %s ends at offset %d but offsets up to "
          "%d were already applied, so the topic was recreated or Kafka lost data; applying "
          "more could skip events. See runbooks/applier-halted.md",
          peer_, shard, history_topic_, high_watermarks[shard], applied);
    }
  }
  return std::nullopt;
}

void PeerApplier::Run() {
  while (!stopping_) {
    std::vector<KafkaMessage> messages =
        consumer_->Poll(tunables_.apply_poll_timeout_ms, tunables_.apply_batch_max_messages);
    std::vector<int64_t> high_watermarks(config_.shard_count(), -1);
    for (int32_t shard = 0; shard < config_.shard_count(); ++shard) {
      high_watermarks[shard] = consumer_->HighWatermark(history_topic_, shard).value_or(-1);
    }
    // Our offsets are the source of truth: a partition that ends below them lost what we
    // applied, and the consumer would silently re-read (and skip) from its start.
    if (std::optional<std::string> truncated = CheckNotTruncated(high_watermarks)) {
      Halt(*truncated);
      return;
    }
    Pending pending;
    for (const KafkaMessage& message : messages) {
      if (message.topic == control_topic_) {
        ApplyControl(message, pending);
      } else {
        ApplyHistory(message, pending);
      }
      if (!pending.halt_reason.empty()) break;  // commit what came before it, then halt
    }
    if (!messages.empty()) {
      for (auto& [shard, progress] : pending.progress) {
        pending.batch.progress.push_back({peer_, shard, progress});
      }
      if (absl::Status s = store_.CommitApply(pending.batch); !s.ok()) {
        Halt(absl::StrFormat("applier for peer %s halted: %s; restart xdcd after fixing the cause",
                             peer_, s.ToString()));
        return;
      }
    }
    {
      absl::MutexLock lock(&mu_);
      for (int32_t shard = 0; shard < config_.shard_count(); ++shard) {
        if (high_watermarks[shard] >= 0) shards_[shard].high_watermark = high_watermarks[shard];
      }
      for (auto& [shard, progress] : pending.progress) {
        if (shard == kControlShard) {
          control_progress_ = progress;
        } else {
          shards_[shard].progress = progress;
          shards_[shard].high_watermark =
              std::max(shards_[shard].high_watermark, progress.next_offset());
        }
      }
    }
    if (!pending.halt_reason.empty()) {
      Halt(pending.halt_reason);
      return;
    }
  }
}

std::optional<WorkflowMutableState> PeerApplier::LocalState(const WorkflowKey& key,
                                                            const Pending& pending,
                                                            absl::Status& error) const {
  if (auto it = pending.workflow_index.find(keys::Workflow(key));
      it != pending.workflow_index.end()) {
    return pending.batch.workflows[it->second].state;
  }
  absl::StatusOr<std::optional<WorkflowMutableState>> stored = store_.GetWorkflowState(key);
  if (!stored.ok()) {
    error = stored.status();
    return std::nullopt;
  }
  return *std::move(stored);
}

void PeerApplier::Park(const KafkaMessage& message, int32_t shard, ParkReason reason,
                       const std::string& error, const WorkflowKey* workflow, Pending& pending) {
  std::fprintf(stderr, "xdcd: parked %s partition %d offset %lld in the DLQ (%s): %s\n",
               message.topic.c_str(), message.partition, static_cast<long long>(message.offset),
               ParkReason_Name(reason).c_str(), error.c_str());
  ParkedTask parked;
  parked.set_source_cluster(peer_);
  parked.set_shard(shard);
  parked.set_kafka_offset(message.offset);
  parked.set_reason(reason);
  parked.set_error(error);
  parked.set_raw_message(message.payload);
  parked.set_parked_unix_micros(clock_());
  if (workflow != nullptr) *parked.mutable_workflow() = *workflow;
  pending.batch.parked.push_back(std::move(parked));
  ShardApplyProgress& progress = ProgressFor(shard, pending);
  progress.set_tasks_parked(progress.tasks_parked() + 1);
  probe_.tasks_parked->Increment();
}

void PeerApplier::ApplyHistory(const KafkaMessage& message, Pending& pending) {
  const int32_t shard = message.partition;
  if (shard < 0 || shard >= config_.shard_count()) return;  // not an assigned partition
  ShardApplyProgress& progress = ProgressFor(shard, pending);
  if (message.offset < progress.next_offset()) return;  // already applied

  progress.set_next_offset(message.offset + 1);

  HistoryMessage decoded;
  if (absl::Status s = DecodeFrame(message.payload, decoded); !s.ok()) {
    // Its task id is unknown: the next valid task's id shows it as missing.
    probe_.corrupt_messages->Increment();
    Park(message, shard, PARK_REASON_CORRUPT_MESSAGE, std::string(s.message()), nullptr, pending);
    return;
  }
  const ReplicationTask& task = decoded.task();
  if (task.shard() != shard || task.source_cluster() != peer_) {
    Park(message, shard, PARK_REASON_INVALID_TASK,
         absl::StrFormat("task says shard %d from '%s' but arrived on partition %d of %s",
                         task.shard(), task.source_cluster(), shard, message.topic),
         &task.workflow(), pending);
    return;
  }
  const bool skipped = task.task_id() > progress.task_sequence().next_task_id();
  RecordTask(*progress.mutable_task_sequence(), task.task_id());
  if (skipped) {
    std::fprintf(stderr,
                 "xdcd: %s partition %d skipped to task %lld at offset %lld: %lld tasks of this "
                 "shard are missing until they arrive (see runbooks/missing-tasks.md)\n",
                 message.topic.c_str(), shard, static_cast<long long>(task.task_id()),
                 static_cast<long long>(message.offset),
                 static_cast<long long>(MissingTaskCount(progress.task_sequence())));
  }
  progress.set_last_task_created_unix_micros(task.created_unix_micros());
  absl::Status read_error;
  std::optional<WorkflowMutableState> local = LocalState(task.workflow(), pending, read_error);
  if (!read_error.ok()) {
    Park(message, shard, PARK_REASON_INVALID_TASK,
         "reading local state failed: " + read_error.ToString(), &task.workflow(), pending);
    return;
  }
  ApplyDecision decision = DecideApply(local, task);
  switch (decision.action) {
    case ApplyAction::kApply: {
      const int64_t new_events = static_cast<int64_t>(decision.events_to_write.size());
      const std::string key = keys::Workflow(task.workflow());
      auto [it, inserted] = pending.workflow_index.emplace(key, pending.batch.workflows.size());
      if (inserted) pending.batch.workflows.emplace_back();
      ApplyBatch::WorkflowUpdate& update = pending.batch.workflows[it->second];
      update.starts_run = update.starts_run || decision.events_to_write.front().event_id() == 1;
      for (HistoryEvent& event : decision.events_to_write)
        update.events.push_back(std::move(event));
      update.state = std::move(decision.new_state);
      progress.set_events_applied(progress.events_applied() + new_events);
      progress.set_duplicate_events_dropped(progress.duplicate_events_dropped() +
                                            decision.duplicate_events);
      probe_.events_applied->Increment(static_cast<double>(new_events));
      probe_.duplicate_events_dropped->Increment(static_cast<double>(decision.duplicate_events));
      return;
    }
    case ApplyAction::kDuplicate:
      progress.set_duplicate_events_dropped(progress.duplicate_events_dropped() +
                                            decision.duplicate_events);
      probe_.duplicate_events_dropped->Increment(static_cast<double>(decision.duplicate_events));
      return;
    case ApplyAction::kGap:
      probe_.gaps->Increment();
      Park(message, shard, PARK_REASON_GAP, decision.reason, &task.workflow(), pending);
      return;
    case ApplyAction::kFork:
      Park(message, shard, PARK_REASON_FORK, decision.reason, &task.workflow(), pending);
      return;
    case ApplyAction::kInvalid:
      Park(message, shard, PARK_REASON_INVALID_TASK, decision.reason, &task.workflow(), pending);
      return;
  }
}

void PeerApplier::ApplyControl(const KafkaMessage& message, Pending& pending) {
  ShardApplyProgress& progress = ProgressFor(kControlShard, pending);
  if (message.offset < progress.next_offset()) return;
  ControlMessage decoded;
  if (absl::Status s = DecodeFrame(message.payload, decoded); !s.ok()) {
    progress.set_next_offset(message.offset + 1);
    probe_.corrupt_messages->Increment();
    Park(message, kControlShard, PARK_REASON_CORRUPT_MESSAGE, std::string(s.message()), nullptr,
         pending);
    return;
  }
  if (decoded.source_cluster() != peer_) {
    progress.set_next_offset(message.offset + 1);
    Park(message, kControlShard, PARK_REASON_INVALID_TASK,
         absl::StrFormat("control message says it is from '%s' but arrived on %s",
                         decoded.source_cluster(), message.topic),
         nullptr, pending);
    return;
  }
  if (decoded.has_namespace_record()) {
    // Merging is idempotent, so storing it before the batch's offsets is safe. If it cannot be
    // stored, stop before this message: skipping it would lose the record.
    absl::StatusOr<bool> merged = namespaces_.Merge(decoded.namespace_record());
    if (!merged.ok()) {
      pending.halt_reason = absl::StrFormat(
          "applier for peer %s halted: storing namespace record '%s' failed: %s; restart xdcd "
          "after fixing the cause",
          peer_, decoded.namespace_record().name(), merged.status().ToString());
      return;
    }
  }
  progress.set_next_offset(message.offset + 1);
}

}  // namespace xdc
