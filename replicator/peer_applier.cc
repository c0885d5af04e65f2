#include "replicator/peer_applier.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <string_view>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "chaos/fault_points.h"
#include "protocol/branch_tasks.h"
#include "protocol/conflict_resolver.h"
#include "protocol/federation.h"
#include "protocol/input_bounds.h"
#include "protocol/message_codec.h"
#include "protocol/shard_hash.h"
#include "protocol/task_sequence.h"
#include "protocol/version_history.h"
#include "replicator/logger.h"

namespace xdc {

std::string StreamProgressKey(const std::string& peer, PeerStream stream) {
  return stream == PeerStream::kLive ? peer : peer + "#backfill";
}

PeerApplier::PeerApplier(const DaemonConfig& config, const Tunables& tunables, std::string peer,
                         Store& store, WorkflowWriter& writer, const TaskApplier& task_applier,
                         NamespaceRegistry& namespaces, HandoverCoordinator& handover,
                         const ControlApplier& control, ApplierProbe probe, Clock clock,
                         std::function<void(ControlMessage)> send_control, PeerStream stream)
    : config_(config),
      tunables_(tunables),
      peer_(std::move(peer)),
      stream_(stream),
      progress_key_(StreamProgressKey(peer_, stream)),
      history_topic_(stream == PeerStream::kLive
                         ? HistoryTopic(peer_, config.kafka().topic_prefix())
                         : BackfillTopic(peer_, config.kafka().topic_prefix())),
      control_topic_(ControlTopic(peer_, config.kafka().topic_prefix())),
      store_(store),
      writer_(writer),
      task_applier_(task_applier),
      namespaces_(namespaces),
      handover_(handover),
      control_(control),
      probe_(probe),
      clock_(std::move(clock)),
      send_control_(std::move(send_control)),
      truncated_since_micros_(config.shard_count(), 0),
      shards_(config.shard_count()) {}

PeerApplier::~PeerApplier() { Stop(); }

absl::Status PeerApplier::Start(const PeerKafka& kafka) {
  kafka_ = kafka;
  {
    absl::MutexLock lock(&mu_);
    for (int32_t shard = 0; shard < config_.shard_count(); ++shard) {
      absl::StatusOr<ShardApplyProgress> progress = store_.GetApplyProgress(progress_key_, shard);
      if (!progress.ok()) return progress.status();
      shards_[shard].progress = *progress;
    }
    absl::StatusOr<ShardApplyProgress> control =
        store_.GetApplyProgress(progress_key_, kControlShard);
    if (!control.ok()) return control.status();
    control_progress_ = *control;
  }
  absl::StatusOr<std::unique_ptr<KafkaConsumer>> consumer = KafkaConsumer::Create(
      kafka_.bootstrap, absl::StrFormat("xdc.%s.from.%s", config_.cluster_name(), progress_key_),
      tunables_.fetch_wait_max_ms, kafka_.properties,
      KafkaStatisticsSink{tunables_.kafka_statistics_interval_ms, probe_.kafka_statistics});
  if (!consumer.ok()) {
    if (!kafka_.configured) return consumer.status();
    return absl::Status(consumer.status().code(), absl::StrFormat("clusters '%s'.kafka: %s", peer_,
                                                                  consumer.status().message()));
  }
  consumer_ = *std::move(consumer);
  {
    absl::MutexLock lock(&mu_);
    taking_acknowledgements_ = true;
  }
  thread_ = std::thread([this] {
    if (WaitForTopics()) {
      if (absl::Status s = consumer_->Assign(AppliedOffsets()); s.ok()) {
        Run();
      } else {
        Halt(absl::StrFormat("applier for peer %s halted: %s", peer_, s.ToString()));
      }
    }
    std::vector<std::shared_ptr<AcknowledgeRequest>> refused;
    std::string why;
    {
      absl::MutexLock lock(&mu_);
      taking_acknowledgements_ = false;
      refused.swap(acknowledge_requests_);
      why = halt_reason_.empty() ? "the applier stopped" : halt_reason_;
    }
    for (auto& request : refused) request->answer.set_value(absl::UnavailableError(why));
  });
  return absl::OkStatus();
}

absl::StatusOr<std::vector<MissingTasksAcknowledged>> PeerApplier::AcknowledgeMissing(
    const std::vector<int32_t>& shards, int timeout_ms) {
  auto request = std::make_shared<AcknowledgeRequest>();
  for (int32_t shard : shards) {
    if (shard < 0 || shard >= config_.shard_count()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "shard %d does not exist: shards are 0 to %d", shard, config_.shard_count() - 1));
    }
  }
  request->shards = shards;
  if (request->shards.empty()) {
    for (int32_t shard = 0; shard < config_.shard_count(); ++shard) {
      request->shards.push_back(shard);
    }
  }
  std::future<AcknowledgeResult> answer = request->answer.get_future();
  {
    absl::MutexLock lock(&mu_);
    if (!taking_acknowledgements_) {
      return absl::UnavailableError(halt_reason_.empty() ? "the applier is not running"
                                                         : halt_reason_);
    }
    acknowledge_requests_.push_back(std::move(request));
  }
  if (answer.wait_for(std::chrono::milliseconds(timeout_ms)) != std::future_status::ready) {
    return absl::DeadlineExceededError(
        absl::StrFormat("the applier for '%s' did not answer within %d ms (it may still store the "
                        "acknowledgement: see missing_tasks in /v1/status)",
                        progress_key_, timeout_ms));
  }
  return answer.get();
}

void PeerApplier::TakeAcknowledgements(Pending& pending) {
  std::vector<std::shared_ptr<AcknowledgeRequest>> requests;
  {
    absl::MutexLock lock(&mu_);
    requests.swap(acknowledge_requests_);
  }
  for (std::shared_ptr<AcknowledgeRequest>& request : requests) {
    std::vector<MissingTasksAcknowledged> answer;
    for (int32_t shard : request->shards) {
      ShardApplyProgress& progress = ProgressFor(shard, pending);
      MissingTasksAcknowledged& acknowledged = answer.emplace_back();
      acknowledged.set_shard(shard);
      acknowledged.set_acknowledged(xdc::AcknowledgeMissing(*progress.mutable_task_sequence()));
      acknowledged.set_total(progress.task_sequence().acknowledged());
      if (acknowledged.acknowledged() > 0) {
        log::Write(log::Level::kWarning, "apply.missing_acknowledged",
                   absl::StrFormat("%s partition %d: %lld missing task ids declared lost by an "
                                   "operator (%lld so far); a handover here no longer waits for "
                                   "them",
                                   history_topic_, shard,
                                   static_cast<long long>(acknowledged.acknowledged()),
                                   static_cast<long long>(acknowledged.total())),
                   log::Fields().Shard(shard).Peer(peer_));
      }
      // Synced: an operator's decision is answered only once it is durable.
      Queue(shard, pending, [&](WorkflowWriter::View&, StoreWrite& write) -> absl::Status {
        write.progress.push_back({progress_key_, shard, progress});
        return absl::OkStatus();
      });
    }
    AcknowledgeResult result = std::move(answer);
    if (!pending.halt_reason.empty()) result = absl::UnavailableError(pending.halt_reason);
    pending.acknowledgements.emplace_back(std::move(request), std::move(result));
  }
}

void PeerApplier::AnswerAcknowledgements(Pending& pending, bool stored, const std::string& reason) {
  for (auto& [request, result] : pending.acknowledgements) {
    request->answer.set_value(stored ? std::move(result) : absl::UnavailableError(reason));
  }
  pending.acknowledgements.clear();
}

std::vector<KafkaConsumer::Assignment> PeerApplier::AppliedOffsets() const {
  absl::MutexLock lock(&mu_);
  std::vector<KafkaConsumer::Assignment> assignments;
  for (int32_t shard = 0; shard < config_.shard_count(); ++shard) {
    assignments.push_back({history_topic_, shard, shards_[shard].progress.next_offset()});
  }
  if (stream_ == PeerStream::kLive) {
    assignments.push_back({control_topic_, 0, control_progress_.next_offset()});
  }
  return assignments;
}

void PeerApplier::DropAndRewind(const std::vector<KafkaMessage>& dropped) {
  // The high watermarks, and so the lag this standby reports, stay current.
  {
    absl::MutexLock lock(&mu_);
    for (int32_t shard = 0; shard < config_.shard_count(); ++shard) {
      if (std::optional<int64_t> high = consumer_->HighWatermark(history_topic_, shard)) {
        shards_[shard].high_watermark = std::max(shards_[shard].high_watermark, *high);
      }
      NoteLag(shards_[shard], clock_());
    }
  }
  // What was dropped is fetched again, and applied, once the hold ends.
  if (!dropped.empty()) consumer_->Assign(AppliedOffsets()).IgnoreError();
}

void PeerApplier::Stop() {
  stopping_ = true;
  {
    absl::MutexLock lock(&mu_);
    stop_requested_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

std::vector<TopicSpec> PeerApplier::Topics() const {
  std::vector<TopicSpec> topics = {{history_topic_, config_.shard_count()}};
  if (stream_ == PeerStream::kLive) topics.push_back({control_topic_, 1});
  return topics;
}

bool PeerApplier::WaitForTopics() {
  const std::vector<TopicSpec> topics = Topics();
  bool logged = false;
  while (true) {
    // Bounded by the metadata timeout, so a Stop is seen within it.
    absl::StatusOr<std::vector<std::string>> lacking =
        consumer_->LackingTopics(topics, tunables_.peer_topic_wait_poll_ms);
    if (lacking.ok() && lacking->empty()) break;
    std::vector<std::string> waiting;
    if (lacking.ok()) {
      waiting = *std::move(lacking);
    } else {
      for (const TopicSpec& topic : topics) waiting.push_back(topic.name);
    }
    {
      absl::MutexLock lock(&mu_);
      if (waiting_since_micros_ == 0) waiting_since_micros_ = clock_();
      waiting_for_topics_ = waiting;
    }
    if (!logged) {
      logged = true;
      log::Write(
          log::Level::kWarning, "apply.waiting_for_topics",
          absl::StrFormat(
              "applier for peer %s: waiting for %s on %s (%s): %s creates its topics on its own "
              "Kafka when it starts; nothing of %s is applied until then",
              peer_, absl::StrJoin(waiting, ", "), kafka_.bootstrap,
              lacking.ok() ? "not there yet" : lacking.status().ToString(), peer_, peer_),
          log::Fields().Peer(peer_));
    }
    absl::MutexLock lock(&mu_);
    if (mu_.AwaitWithTimeout(absl::Condition(&stop_requested_),
                             absl::Milliseconds(tunables_.peer_topic_wait_poll_ms))) {
      return false;
    }
  }
  int64_t waited_since = 0;
  {
    absl::MutexLock lock(&mu_);
    waited_since = waiting_since_micros_;
    waiting_for_topics_.clear();
    waiting_since_micros_ = 0;
  }
  if (waited_since != 0) {
    log::Write(log::Level::kInfo, "apply.topics_found",
               absl::StrFormat("applier for peer %s: its topics exist on %s now (waited %.1f s); "
                               "applying",
                               peer_, kafka_.bootstrap, (clock_() - waited_since) / 1e6),
               log::Fields().Peer(peer_));
  }
  return !stopping_;
}

PeerKafkaStatus PeerApplier::KafkaStatus() const {
  PeerKafkaStatus status;
  status.set_peer(peer_);
  status.set_stream(stream_ == PeerStream::kLive ? "live" : "backfill");
  status.set_kafka_bootstrap(kafka_.bootstrap);
  status.set_peer_kafka_configured(kafka_.configured);
  absl::MutexLock lock(&mu_);
  for (const std::string& topic : waiting_for_topics_) status.add_waiting_for_topics(topic);
  status.set_waiting_since_unix_micros(waiting_since_micros_);
  return status;
}

void PeerApplier::SkipDeletedOffsets(int32_t shard) {
  const std::optional<int64_t> first = consumer_->LowWatermark(history_topic_, shard);
  ShardApplyProgress& progress = shards_[shard].progress;
  if (!first.has_value() || *first <= progress.next_offset()) return;
  log::Write(log::Level::kError, "apply.offsets_deleted",
             absl::StrFormat("%s partition %d: offsets [%lld, %lld) were deleted from Kafka before "
                             "this cluster read them (retention shorter than its outage?): their "
                             "tasks are lost here; see runbooks/standby-beyond-retention.md",
                             history_topic_, shard, static_cast<long long>(progress.next_offset()),
                             static_cast<long long>(*first)),
             log::Fields().Shard(shard).Peer(peer_));
  progress.set_next_offset(*first);
}

void PeerApplier::NoteLag(ShardView& view, int64_t now_micros) {
  const bool behind = view.high_watermark > view.progress.next_offset();
  if (!behind) {
    view.behind_since_micros = 0;
  } else if (view.behind_since_micros == 0) {
    view.behind_since_micros = now_micros;
  }
}

std::vector<PeerShardStatus> PeerApplier::Snapshot() const {
  const int64_t now = clock_();
  absl::MutexLock lock(&mu_);
  std::vector<PeerShardStatus> result;
  for (const ShardView& view : shards_) {
    PeerShardStatus status;
    status.set_peer(progress_key_);
    status.set_applied_offset(view.progress.next_offset());
    status.set_high_watermark(view.high_watermark);
    const int64_t lag =
        view.high_watermark < 0
            ? 0
            : std::max<int64_t>(0, view.high_watermark - view.progress.next_offset());
    status.set_lag_tasks(lag);
    // The oldest unapplied task is younger than both the last applied one and the moment this
    // shard fell behind (after an idle hour, one new task is not an hour of lag).
    const int64_t behind_since =
        std::max(view.progress.last_task_created_unix_micros(), view.behind_since_micros);
    status.set_lag_seconds(
        lag > 0 && behind_since > 0 ? std::max<int64_t>(0, now - behind_since) / 1e6 : 0.0);
    status.set_events_applied(view.progress.events_applied());
    status.set_duplicate_events_dropped(view.progress.duplicate_events_dropped());
    status.set_tasks_parked(view.progress.tasks_parked());
    status.set_missing_tasks(MissingTaskCount(view.progress.task_sequence()));
    status.set_missing_tasks_acknowledged(view.progress.task_sequence().acknowledged());
    status.set_tasks_skipped_not_member(view.progress.tasks_skipped_not_member());
    status.set_source_incarnation(view.progress.source_incarnation());
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
  log::Write(log::Level::kError, "apply.halted", reason, log::Fields().Peer(peer_));
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

namespace {

// ApplyHistory and ApplyControl take an offset below the partition's next offset as already
// applied (that is what makes redelivery harmless), which is only right if each partition
// arrives in offset order. Kafka guarantees that; a client that broke it (the fault point
// kafka.reorder_delivery does) would make the earlier of two swapped messages look applied, and
// its task would be lost for good when no later task of its workflow shows the gap. So the
// poll's messages of each partition are put back in offset order, in the slots that partition
// had (other partitions keep their places; a redelivered copy stays next to its original).
void RestoreOffsetOrder(std::vector<KafkaMessage>& messages) {
  std::map<std::pair<std::string_view, int32_t>, std::vector<size_t>> slots;
  bool ordered = true;
  for (size_t i = 0; i < messages.size(); ++i) {
    std::vector<size_t>& slot = slots[{messages[i].topic, messages[i].partition}];
    if (!slot.empty() && messages[slot.back()].offset > messages[i].offset) ordered = false;
    slot.push_back(i);
  }
  if (ordered) return;
  std::vector<KafkaMessage> sorted(messages.size());
  for (const auto& [partition, indexes] : slots) {
    std::vector<size_t> by_offset = indexes;
    std::stable_sort(by_offset.begin(), by_offset.end(),
                     [&](size_t a, size_t b) { return messages[a].offset < messages[b].offset; });
    for (size_t k = 0; k < indexes.size(); ++k) sorted[indexes[k]] = messages[by_offset[k]];
  }
  messages = std::move(sorted);
}

}  // namespace

void PeerApplier::Run() {
  const std::string hold = std::string(fault::kApplyHoldPrefix) + peer_;
  while (!stopping_) {
    std::vector<KafkaMessage> messages =
        consumer_->Poll(tunables_.apply_poll_timeout_ms, tunables_.apply_batch_max_messages);
    // Fault injection (checked after the poll, so a hold armed while it waited already counts):
    // nothing of this peer is applied.
    if (fault::Armed(hold)) {
      DropAndRewind(messages);
      continue;
    }
    RestoreOffsetOrder(messages);
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
    TakeAcknowledgements(pending);
    for (const KafkaMessage& message : messages) {
      // Commit what came before a write the store refused (an acknowledgement's too), then halt.
      if (!pending.halt_reason.empty()) break;
      if (message.topic == control_topic_) {
        ApplyControl(message, pending);
      } else {
        ApplyHistory(message, pending);
      }
    }
    if (!WaitForWrites(pending)) {
      AnswerAcknowledgements(pending, false, halt_reason());
      return;
    }
    {
      absl::MutexLock lock(&mu_);
      for (int32_t shard = 0; shard < config_.shard_count(); ++shard) {
        if (high_watermarks[shard] >= 0) shards_[shard].high_watermark = high_watermarks[shard];
        if (!pending.progress.contains(shard)) SkipDeletedOffsets(shard);
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
      const int64_t now = clock_();
      for (ShardView& view : shards_) NoteLag(view, now);
    }
    AnswerAcknowledgements(pending, true, "");
    if (!pending.halt_reason.empty()) {
      Halt(pending.halt_reason);
      return;
    }
    SendResendRequests(pending);
    const int64_t now = clock_();
    // The live applier retries every parked task of this peer, the backfill's included.
    if (stream_ == PeerStream::kLive && store_.AwaitingResendCount() > 0 &&
        (pending.applied_events ||
         now - last_retry_micros_ >= tunables_.resend_retry_interval_ms * int64_t{1000})) {
      last_retry_micros_ = now;
      Pending retries;
      RetryParked(retries);
      if (!WaitForWrites(retries)) return;
      if (!retries.halt_reason.empty()) {
        Halt(retries.halt_reason);
        return;
      }
      SendResendRequests(retries);
    }
  }
}

void PeerApplier::SendResendRequests(Pending& pending) {
  for (ResendRequest& request : pending.resend_requests) {
    ControlMessage control;
    *control.mutable_resend_request() = std::move(request);
    send_control_(std::move(control));
    probe_.resend_requests->Increment();
  }
  pending.resend_requests.clear();
}

bool PeerApplier::WaitForWrites(Pending& pending) {
  absl::Status failed;
  for (auto& write : pending.writes) {
    // Wait for every queued write, even after a failure: each holds in-flight state.
    absl::StatusOr<int64_t> result = writer_.Wait(*write);
    if (!result.ok() && failed.ok()) failed = result.status();
  }
  pending.writes.clear();
  if (failed.ok()) return true;
  Halt(absl::StrFormat("applier for peer %s halted: %s; restart xdcd after fixing the cause", peer_,
                       failed.ToString()));
  return false;
}

bool PeerApplier::Queue(int32_t shard, Pending& pending, const WorkflowWriter::BuildFn& build) {
  absl::StatusOr<std::unique_ptr<WorkflowWriter::Pending>> queued = writer_.Queue(shard, build);
  if (!queued.ok()) {
    pending.halt_reason =
        absl::StrFormat("applier for peer %s halted: %s; restart xdcd after fixing the cause",
                        peer_, queued.status().ToString());
    return false;
  }
  pending.writes.push_back(*std::move(queued));
  return true;
}

void PeerApplier::QueueWithProgress(
    int32_t shard, Pending& pending,
    const std::function<void(WorkflowWriter::View&, StoreWrite&)>& build) {
  Queue(shard == kControlShard ? 0 : shard, pending,
        [&](WorkflowWriter::View& view, StoreWrite& write) -> absl::Status {
          write.durability = Durability::kUnsynced;
          build(view, write);
          write.progress.push_back({progress_key_, shard, ProgressFor(shard, pending)});
          return absl::OkStatus();
        });
}

ParkedTask PeerApplier::MakeParked(const KafkaMessage& message, int32_t shard, ParkReason reason,
                                   const std::string& error, const WorkflowKey* workflow) {
  log::Write(log::Level::kWarning, "apply.parked",
             absl::StrFormat("parked %s partition %d offset %lld in the DLQ (%s): %s",
                             message.topic.c_str(), message.partition,
                             static_cast<long long>(message.offset),
                             ParkReason_Name(reason).c_str(), error.c_str()),
             log::Fields().Shard(shard).Peer(peer_));
  ParkedTask parked;
  parked.set_source_cluster(peer_);
  parked.set_shard(shard);
  parked.set_kafka_offset(message.offset);
  parked.set_reason(reason);
  parked.set_error(error);
  parked.set_raw_message(message.payload);
  parked.set_parked_unix_micros(clock_());
  parked.set_attempts(1);
  if (workflow != nullptr) *parked.mutable_workflow() = *workflow;
  probe_.tasks_parked->Increment();
  return parked;
}

void PeerApplier::Count(const ApplyDecision& decision, ShardApplyProgress* progress) {
  int64_t new_events = 0;
  if (decision.action == ApplyAction::kApply) {
    new_events =
        static_cast<int64_t>(decision.events_to_write.size() - decision.reapply.appended.size());
    if (decision.branch_change == BranchChange::kForked) probe_.branches_forked->Increment();
    if (decision.switched_branch) probe_.branch_switches->Increment();
    probe_.events_reapplied->Increment(static_cast<double>(decision.reapply.appended.size()));
    probe_.reapply_dropped->Increment(static_cast<double>(decision.reapply.dropped_closed));
    if (decision.reapply.dropped_closed > 0) {
      log::Write(
          log::Level::kWarning, "reapply.dropped_closed",
          absl::StrFormat("%lld signals/cancels/terminations of a losing branch of workflow %s run "
                          "%s were not reapplied: the run had closed on the winning branch",
                          static_cast<long long>(decision.reapply.dropped_closed),
                          decision.new_state.key().workflow_id().c_str(),
                          decision.new_state.key().run_id().c_str()),
          log::Fields().Workflow(decision.new_state.key().workflow_id()).Peer(peer_));
    }
  }
  probe_.events_applied->Increment(static_cast<double>(new_events));
  probe_.duplicate_events_dropped->Increment(static_cast<double>(decision.duplicate_events));
  if (progress != nullptr) {
    progress->set_events_applied(progress->events_applied() + new_events);
    progress->set_duplicate_events_dropped(progress->duplicate_events_dropped() +
                                           decision.duplicate_events);
  }
}

namespace {

ResendRequest MakeResendRequest(const ReplicationTask& task, int64_t expected_event_id) {
  ResendRequest request;
  request.set_target_cluster(task.source_cluster());
  *request.mutable_workflow() = task.workflow();
  *request.mutable_version_history_items() = task.version_history_items();
  request.set_first_event_id(expected_event_id);
  request.set_next_event_id(task.events(0).event_id());
  return request;
}

ParkReason ReasonFor(ApplyAction action) {
  switch (action) {
    case ApplyAction::kGap:
      return PARK_REASON_GAP;
    case ApplyAction::kReadError:
      return PARK_REASON_STORE_ERROR;
    default:
      return PARK_REASON_INVALID_TASK;
  }
}

}  // namespace

void PeerApplier::ApplyHistory(const KafkaMessage& message, Pending& pending) {
  const int32_t shard = message.partition;
  if (shard < 0 || shard >= config_.shard_count()) return;  // not an assigned partition
  ShardApplyProgress& progress = ProgressFor(shard, pending);
  if (message.offset < progress.next_offset()) return;  // already applied
  progress.set_next_offset(message.offset + 1);

  auto park = [&](ParkReason reason, const std::string& error, const WorkflowKey* workflow) {
    ParkedTask parked = MakeParked(message, shard, reason, error, workflow);
    progress.set_tasks_parked(progress.tasks_parked() + 1);
    QueueWithProgress(shard, pending, [&](WorkflowWriter::View&, StoreWrite& write) {
      write.parked.push_back(parked);
    });
  };
  HistoryMessage decoded;
  if (absl::Status s = DecodeFrame(message.payload, decoded); !s.ok()) {
    // Its task id is unknown: the next valid task's id shows it as missing.
    probe_.corrupt_messages->Increment();
    park(PARK_REASON_CORRUPT_MESSAGE, std::string(s.message()), nullptr);
    return;
  }
  if (!decoded.backfill_target().empty() && decoded.backfill_target() != config_.cluster_name()) {
    // Another cluster's backfill: only the offset moves.
    QueueWithProgress(shard, pending, [](WorkflowWriter::View&, StoreWrite&) {});
    return;
  }
  const ReplicationTask& task = decoded.task();
  if (task.shard() != shard || task.source_cluster() != peer_) {
    park(PARK_REASON_INVALID_TASK,
         absl::StrFormat("task says shard %d from '%s' but arrived on partition %d of %s",
                         task.shard(), task.source_cluster(), shard, message.topic),
         &task.workflow());
    return;
  }
  // Before its id counts: a task id or version beyond the bounds is crafted or corrupt, and
  // counting it would overflow or report billions of missing tasks. Parked like a corrupt
  // message; the next valid task's id shows what is missing.
  if (absl::Status s = ValidateTaskBounds(task); !s.ok()) {
    park(PARK_REASON_INVALID_TASK, std::string(s.message()), &task.workflow());
    return;
  }
  const bool skipped = task.task_id() > progress.task_sequence().next_task_id();
  if (absl::Status s = RecordTask(*progress.mutable_task_sequence(), task.task_id()); !s.ok()) {
    park(PARK_REASON_INVALID_TASK, std::string(s.message()), &task.workflow());
    return;
  }
  if (skipped) {
    log::Write(
        log::Level::kWarning, "apply.missing_tasks",
        absl::StrFormat("%s partition %d skipped to task %lld at offset %lld: %lld tasks of this "
                        "shard are missing until they arrive (see runbooks/missing-tasks.md)",
                        message.topic.c_str(), shard, static_cast<long long>(task.task_id()),
                        static_cast<long long>(message.offset),
                        static_cast<long long>(MissingTaskCount(progress.task_sequence()))),
        log::Fields().Shard(shard).Peer(peer_));
  }
  progress.set_last_task_created_unix_micros(task.created_unix_micros());
  progress.set_source_incarnation(
      std::max(progress.source_incarnation(), task.source_incarnation()));
  if (task.has_handover_marker()) {
    // Everything the source acknowledged on this shard came before it.
    QueueWithProgress(shard, pending, [&](WorkflowWriter::View&, StoreWrite& write) {
      handover_.OnMarker(peer_, shard, task.handover_marker(), write);
    });
    return;
  }
  // Removing a member stops replication to it: a task of a namespace this cluster is not a
  // member of is skipped whole (nothing half-applied). A namespace not known here yet is
  // applied: its record may still be on its way over the control topic.
  if (std::optional<NamespaceRecord> ns = namespaces_.FindById(task.workflow().namespace_id());
      ns.has_value() && !IsNamespaceMember(*ns, config_.cluster_name())) {
    progress.set_tasks_skipped_not_member(progress.tasks_skipped_not_member() + 1);
    QueueWithProgress(shard, pending, [](WorkflowWriter::View&, StoreWrite&) {});
    return;
  }
  QueueWithProgress(shard, pending, [&](WorkflowWriter::View& view, StoreWrite& write) {
    ApplyDecision decision = task_applier_.Stage(task, view, write);
    switch (decision.action) {
      case ApplyAction::kApply:
        pending.applied_events = true;
        [[fallthrough]];
      case ApplyAction::kDuplicate:
        Count(decision, &progress);
        return;
      case ApplyAction::kGap: {
        probe_.gaps->Increment();
        ParkedTask parked =
            MakeParked(message, shard, PARK_REASON_GAP, decision.reason, &task.workflow());
        parked.set_awaiting_resend(true);
        parked.set_expected_event_id(decision.expected_event_id);
        write.parked.push_back(std::move(parked));
        pending.resend_requests.push_back(MakeResendRequest(task, decision.expected_event_id));
        break;
      }
      case ApplyAction::kInvalid:
      case ApplyAction::kReadError:
        write.parked.push_back(MakeParked(message, shard, ReasonFor(decision.action),
                                          decision.reason, &task.workflow()));
        break;
    }
    progress.set_tasks_parked(progress.tasks_parked() + 1);
  });
}

void PeerApplier::ApplyControl(const KafkaMessage& message, Pending& pending) {
  ShardApplyProgress& progress = ProgressFor(kControlShard, pending);
  if (message.offset < progress.next_offset()) return;
  auto park = [&](const std::string& error, ParkReason reason) {
    progress.set_next_offset(message.offset + 1);
    ParkedTask parked = MakeParked(message, kControlShard, reason, error, nullptr);
    QueueWithProgress(kControlShard, pending, [&](WorkflowWriter::View&, StoreWrite& write) {
      write.parked.push_back(parked);
    });
  };
  ControlMessage decoded;
  if (absl::Status s = DecodeFrame(message.payload, decoded); !s.ok()) {
    probe_.corrupt_messages->Increment();
    park(std::string(s.message()), PARK_REASON_CORRUPT_MESSAGE);
    return;
  }
  if (decoded.source_cluster() != peer_) {
    park(absl::StrFormat("control message says it is from '%s' but arrived on %s",
                         decoded.source_cluster(), message.topic),
         PARK_REASON_INVALID_TASK);
    return;
  }
  if (absl::Status s = ValidateControlBounds(decoded); !s.ok()) {
    park(std::string(s.message()), PARK_REASON_INVALID_TASK);
    return;
  }
  // Applying a control message is idempotent, so it happens before the offset moves; if its
  // effect cannot be stored, stop before this message: skipping it would lose a record or a
  // handover's decision.
  absl::StatusOr<ControlOutcome> outcome = control_.Apply(peer_, decoded);
  if (!outcome.ok()) {
    pending.halt_reason =
        absl::StrFormat("applier for peer %s halted: %s; restart xdcd after fixing the cause",
                        peer_, outcome.status().message());
    return;
  }
  if (decoded.has_resend_request() &&
      decoded.resend_request().target_cluster() == config_.cluster_name()) {
    QueueResendAnswer(decoded.resend_request(), *outcome, pending);
  }
  if (outcome->reply.has_value()) send_control_(*std::move(outcome->reply));
  progress.set_next_offset(message.offset + 1);
  QueueWithProgress(kControlShard, pending, [](WorkflowWriter::View&, StoreWrite&) {});
}

void PeerApplier::QueueResendAnswer(const ResendRequest& request, const ControlOutcome& outcome,
                                    Pending& pending) {
  if (!outcome.resend_refused.empty()) {
    const WorkflowKey& key = request.workflow();
    log::Write(
        log::Level::kWarning, "resend.refused",
        absl::StrFormat("cannot resend events [%lld, %lld) of workflow %s run %s to %s: %s; it "
                        "will keep the task parked and report it",
                        static_cast<long long>(request.first_event_id()),
                        static_cast<long long>(request.next_event_id()), key.workflow_id().c_str(),
                        key.run_id().c_str(), peer_.c_str(), outcome.resend_refused.c_str()),
        log::Fields().Workflow(key.workflow_id()).Peer(peer_));
    return;
  }
  for (const ReplicationTask& task : outcome.resend_answer) {
    const bool queued = Queue(outcome.resend_shard, pending,
                              [&](WorkflowWriter::View&, StoreWrite& write) -> absl::Status {
                                write.durability = Durability::kUnsynced;  // asked for again
                                write.outbox_task = task;
                                return absl::OkStatus();
                              });
    if (!queued) return;
    probe_.resends_served->Increment();
  }
}

void PeerApplier::RetryParked(Pending& pending) {
  const int64_t now = clock_();
  const int64_t interval = tunables_.resend_retry_interval_ms * int64_t{1000};
  int64_t from = 0;
  while (true) {
    absl::StatusOr<std::vector<ParkedTask>> page = store_.ListParked(256, from);
    if (!page.ok() || page->empty()) return;
    from = page->back().sequence() + 1;
    for (const ParkedTask& entry : *page) {
      if (!entry.awaiting_resend() || entry.source_cluster() != peer_) continue;
      HistoryMessage decoded;
      if (!DecodeFrame(entry.raw_message(), decoded).ok()) continue;  // not a gap entry
      const ReplicationTask& task = decoded.task();
      const bool queued = Queue(
          entry.shard(), pending,
          [&](WorkflowWriter::View& view, StoreWrite& write) -> absl::Status {
            write.durability = Durability::kUnsynced;
            ApplyDecision decision = task_applier_.Stage(task, view, write);
            if (decision.action == ApplyAction::kApply ||
                decision.action == ApplyAction::kDuplicate) {
              Count(decision, nullptr);
              write.unparked.push_back(entry.sequence());
              last_resend_request_micros_.erase(entry.sequence());
              probe_.parked_resumed->Increment();
              return absl::OkStatus();
            }
            ParkedTask updated = entry;
            if (decision.action != ApplyAction::kGap) {
              updated.set_awaiting_resend(false);
              updated.set_reason(ReasonFor(decision.action));
              updated.set_error(decision.reason);
              write.parked.push_back(std::move(updated));
              return absl::OkStatus();
            }
            // The first request went out when the task was parked; later ones back off
            // exponentially, so a source that is down for a while is not given up on at once.
            auto last = last_resend_request_micros_.find(entry.sequence());
            const int64_t asked = last != last_resend_request_micros_.end()
                                      ? last->second
                                      : entry.parked_unix_micros();
            const int64_t backoff = interval << std::clamp(entry.attempts() - 1, 0, 9);
            if (now - asked < backoff && decision.expected_event_id == entry.expected_event_id()) {
              return absl::OkStatus();  // asked recently for the same range: wait
            }
            updated.set_attempts(entry.attempts() + 1);
            updated.set_expected_event_id(decision.expected_event_id);
            updated.set_error(decision.reason);
            if (updated.attempts() > tunables_.resend_max_attempts) {
              updated.set_awaiting_resend(false);
              updated.set_error(absl::StrFormat(
                  "%s; gave up after %d resend requests to %s: the source could not supply the "
                  "events (see runbooks/dlq.md)",
                  decision.reason, tunables_.resend_max_attempts, peer_));
              probe_.dead_lettered->Increment();
              log::Write(
                  log::Level::kWarning, "dlq.entry_error",
                  absl::StrFormat("DLQ entry %lld: %s", static_cast<long long>(entry.sequence()),
                                  updated.error().c_str()),
                  log::Fields().Peer(peer_));
              last_resend_request_micros_.erase(entry.sequence());
            } else {
              last_resend_request_micros_[entry.sequence()] = now;
              pending.resend_requests.push_back(
                  MakeResendRequest(task, decision.expected_event_id));
            }
            write.parked.push_back(std::move(updated));
            return absl::OkStatus();
          });
      if (!queued) return;
    }
  }
}

}  // namespace xdc
