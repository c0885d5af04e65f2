#include "replicator/shard_publisher.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "chaos/fault_points.h"
#include "protocol/message_codec.h"
#include "replicator/logger.h"

namespace xdc {
namespace {

// How long one wait for delivery reports lasts while draining at stop.
constexpr int kDrainPollMs = 5;
// How long a producer that failed for good may take to hand back its last delivery reports.
constexpr int kFatalFlushMs = 1000;

// Delivery tokens: control records have the top bit set; history tasks pack (shard, task id).
constexpr uint64_t kControlTokenBit = uint64_t{1} << 63;
constexpr int kTaskIdBits = 44;

uint64_t TaskToken(int32_t shard, int64_t task_id) {
  return (static_cast<uint64_t>(shard) << kTaskIdBits) | static_cast<uint64_t>(task_id);
}

}  // namespace

// --- ShardCursor -----------------------------------------------------------------------------

void ShardCursor::OnSent(int64_t task_id) {
  next_to_send_ = task_id + 1;
  ++in_flight_;
}

void ShardCursor::OnDelivered(int64_t task_id) {
  --in_flight_;
  if (task_id < delivered_) return;  // a resend of something already acknowledged
  delivered_ahead_.insert(task_id);
  Advance();
}

void ShardCursor::OnAbsent(int64_t first, int64_t next) {
  if (next <= std::max(first, delivered_)) return;
  absent_[first] = std::max(absent_[first], next);
  next_to_send_ = std::max(next_to_send_, next);
  Advance();
}

void ShardCursor::Advance() {
  while (true) {
    if (!delivered_ahead_.empty() && *delivered_ahead_.begin() == delivered_) {
      delivered_ahead_.erase(delivered_ahead_.begin());
      ++delivered_;
    } else if (!absent_.empty() && absent_.begin()->first <= delivered_) {
      delivered_ = std::max(delivered_, absent_.begin()->second);
      absent_.erase(absent_.begin());
    } else {
      return;
    }
  }
}

void ShardCursor::OnFailed(int64_t) {
  --in_flight_;
  rewind_ = true;
}

void ShardCursor::MaybeRewind() {
  if (!rewind_ || in_flight_ != 0) return;
  next_to_send_ = delivered_;
  rewind_ = false;
}

// --- Publisher -------------------------------------------------------------------------------

Publisher::Publisher(const DaemonConfig& config, const Tunables& tunables, Store& store,
                     PublisherProbe& probe, Clock clock)
    : config_(config),
      tunables_(tunables),
      store_(store),
      probe_(probe),
      history_topic_(HistoryTopic(config.cluster_name(), config.kafka().topic_prefix())),
      control_topic_(ControlTopic(config.cluster_name(), config.kafka().topic_prefix())),
      producer_fatal_point_(std::string(fault::kPublishProducerFatalPrefix) +
                            config.cluster_name()),
      clock_(std::move(clock)),
      health_(config.shard_count()) {
  for (int32_t shard = 0; shard < config.shard_count(); ++shard) {
    cursors_.emplace_back(store.PublishedTaskId(shard));
  }
}

Publisher::~Publisher() { Stop(); }

absl::Status Publisher::Start(const std::string& bootstrap,
                              const std::vector<NamespaceRecord>& records) {
  bootstrap_ = bootstrap;
  if (absl::Status s = CreateProducer(); !s.ok()) return s;
  // Re-announce every record at start: a crash may have come between storing and announcing.
  for (const NamespaceRecord& record : records) Announce(record);
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

absl::Status Publisher::CreateProducer() {
  const uint64_t generation = ++producer_generation_;
  absl::StatusOr<std::unique_ptr<KafkaProducer>> producer = KafkaProducer::Create(
      bootstrap_, "xdc-" + config_.cluster_name(),
      [this, generation](uint64_t token, const absl::Status& status) {
        // A report of a replaced producer: its messages are sent again by the new one.
        if (generation == producer_generation_) OnDelivery(token, status);
      },
      KafkaPropertiesOf(config_.kafka()),
      KafkaStatisticsSink{tunables_.kafka_statistics_interval_ms, probe_.kafka_statistics});
  if (!producer.ok()) return producer.status();
  producer_ = *std::move(producer);
  {
    absl::MutexLock lock(&producer_mu_);
    reachable_producer_ = producer_;
  }
  if (absl::Status s = producer_->LearnTopics({history_topic_, control_topic_},
                                              tunables_.topic_metadata_timeout_ms);
      !s.ok()) {
    log::Write(log::Level::kWarning, "",
               absl::StrCat("publisher: ", s.ToString(),
                            "; the first tasks wait for librdkafka's next topic scan (1 s)"));
  }
  return absl::OkStatus();
}

void Publisher::ReplaceFailedProducer(const absl::Status& fatal) {
  log::Write(log::Level::kError, "publish.producer_fatal",
             absl::StrFormat("the Kafka producer failed for good (%s): replacing it; every shard "
                             "sends again from its first unacknowledged task",
                             fatal.ToString().c_str()));
  // Serve what reports the failed producer still gives (they are its failures), then drop it.
  producer_->Flush(kFatalFlushMs).IgnoreError();
  ++producer_generation_;
  producer_.reset();
  {
    absl::MutexLock lock(&producer_mu_);
    reachable_producer_.reset();
  }
  for (ShardCursor& cursor : cursors_) cursor = ShardCursor(cursor.delivered());
  for (auto& [token, message] : control_in_flight_) control_to_retry_.push_back(std::move(message));
  control_in_flight_.clear();
  while (true) {
    absl::Status created = CreateProducer();
    if (created.ok()) break;
    log::Write(
        log::Level::kError, "publish.producer_create_failed",
        absl::StrCat("creating a new Kafka producer failed, retrying: ", created.ToString()));
    absl::MutexLock lock(&mu_);
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping_),
                             absl::Milliseconds(tunables_.publisher_idle_wait_ms))) {
      return;
    }
  }
  producer_recreations_.fetch_add(1);
  probe_.producer_recreations->Increment();
}

std::vector<ShardPublishHealth> Publisher::Health() const {
  absl::MutexLock lock(&health_mu_);
  return health_;
}

void Publisher::RecordShardHealth(int32_t shard, const absl::Status& status) {
  absl::MutexLock lock(&health_mu_);
  ShardPublishHealth& health = health_[shard];
  if (status.ok()) {
    health = ShardPublishHealth();
    return;
  }
  if (health.failures == 0) health.failing_since_unix_micros = clock_();
  ++health.failures;
  health.error = status.ToString();
}

void Publisher::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

absl::Status Publisher::CheckKafka(int timeout_ms) {
  std::shared_ptr<KafkaProducer> producer;
  {
    absl::MutexLock lock(&producer_mu_);
    producer = reachable_producer_;
  }
  if (producer == nullptr) return absl::UnavailableError("the publisher has no Kafka producer");
  return producer->CheckReachable(timeout_ms);
}

void Publisher::Notify() {
  absl::MutexLock lock(&mu_);
  notified_ = true;
}

void Publisher::Announce(const NamespaceRecord& record) {
  ControlMessage message;
  *message.mutable_namespace_record() = record;
  SendControl(std::move(message));
}

void Publisher::SendControl(ControlMessage message) {
  message.set_source_cluster(config_.cluster_name());
  absl::MutexLock lock(&mu_);
  control_.push_back(std::move(message));
}

void Publisher::OnDelivery(uint64_t token, const absl::Status& status) {
  if (token & kControlTokenBit) {
    auto it = control_in_flight_.find(token & ~kControlTokenBit);
    if (it == control_in_flight_.end()) return;
    if (!status.ok()) {
      log::Write(log::Level::kWarning, "publish.control_delivery_failed",
                 absl::StrFormat("delivering a control message failed, retrying: %s",
                                 status.ToString().c_str()));
      control_to_retry_.push_back(std::move(it->second));
    }
    control_in_flight_.erase(it);
    return;
  }
  const int32_t shard = static_cast<int32_t>(token >> kTaskIdBits);
  const int64_t task_id = static_cast<int64_t>(token & ((uint64_t{1} << kTaskIdBits) - 1));
  if (status.ok()) {
    cursors_[shard].OnDelivered(task_id);
    probe_.tasks_published->Increment();
    RecordShardHealth(shard, status);
  } else {
    RecordShardHealth(shard, status);
    probe_.delivery_errors->Increment();
    log::Write(log::Level::kWarning, "publish.delivery_failed",
               absl::StrFormat("shard %d task %lld not delivered, will resend: %s", shard,
                               static_cast<long long>(task_id), status.ToString().c_str()),
               log::Fields().Shard(shard));
    cursors_[shard].OnFailed(task_id);
  }
}

void Publisher::ProduceShard(int32_t shard) {
  ShardCursor& cursor = cursors_[shard];
  cursor.MaybeRewind();
  while (cursor.may_send() && cursor.in_flight() < tunables_.publish_max_in_flight_per_shard &&
         cursor.next_to_send() < store_.OutboxNextTaskId(shard)) {
    absl::StatusOr<std::vector<ReplicationTask>> tasks =
        store_.ReadOutbox(shard, cursor.next_to_send(), tunables_.outbox_read_batch);
    if (!tasks.ok()) {
      log::Write(
          log::Level::kError, "publish.outbox_read_failed",
          absl::StrFormat("reading shard %d outbox: %s", shard, tasks.status().ToString().c_str()),
          log::Fields().Shard(shard));
      return;
    }
    if (tasks->empty()) return;
    if (tasks->front().task_id() > cursor.next_to_send()) {
      cursor.OnAbsent(cursor.next_to_send(), tasks->front().task_id());
    }
    for (ReplicationTask& task : *tasks) {
      if (fault::Armed(fault::kPublishLoseTask) &&
          task.task_id() % fault::kPublishLoseEvery == fault::kPublishLoseEvery - 1) {
        cursor.OnSent(task.task_id());
        cursor.OnDelivered(task.task_id());
        continue;
      }
      HistoryMessage message;
      *message.mutable_task() = std::move(task);
      const int64_t task_id = message.task().task_id();
      absl::Status s = producer_->Produce(history_topic_, shard, EncodeFrame(message),
                                          TaskToken(shard, task_id));
      if (!s.ok()) {
        // Queue full: poll, then continue from here. Anything else is logged once per streak.
        if (!absl::IsResourceExhausted(s)) RecordShardHealth(shard, s);
        if (!absl::IsResourceExhausted(s) && !cursor.produce_error_logged) {
          log::Write(log::Level::kWarning, "publish.produce_failed",
                     absl::StrFormat("shard %d task %lld cannot be produced, retrying: %s", shard,
                                     static_cast<long long>(task_id), s.ToString().c_str()),
                     log::Fields().Shard(shard));
          probe_.delivery_errors->Increment();
          cursor.produce_error_logged = true;
        }
        return;
      }
      cursor.produce_error_logged = false;
      cursor.OnSent(task_id);
    }
  }
}

void Publisher::Run() {
  while (true) {
    std::deque<ControlMessage> messages;
    messages.swap(control_to_retry_);
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
      messages.insert(messages.end(), control_.begin(), control_.end());
      control_.clear();
      notified_ = false;
    }
    for (ControlMessage& message : messages) {
      const uint64_t token = next_control_token_++;
      absl::Status s =
          producer_->Produce(control_topic_, 0, EncodeFrame(message), token | kControlTokenBit);
      if (s.ok()) {
        control_in_flight_.emplace(token, std::move(message));
        continue;
      }
      if (!absl::IsResourceExhausted(s) && !control_produce_error_logged_) {
        log::Write(log::Level::kWarning, "publish.control_produce_failed",
                   absl::StrFormat("a control message cannot be produced, retrying: %s",
                                   s.ToString().c_str()));
        control_produce_error_logged_ = true;
      }
      control_to_retry_.push_back(std::move(message));  // retried after the Poll below
    }
    if (control_to_retry_.empty()) control_produce_error_logged_ = false;
    size_t in_flight = control_in_flight_.size();
    bool backlog = !control_to_retry_.empty();
    for (int32_t shard = 0; shard < config_.shard_count(); ++shard) {
      ProduceShard(shard);
      in_flight += cursors_[shard].in_flight();
      backlog = backlog || cursors_[shard].next_to_send() < store_.OutboxNextTaskId(shard);
    }
    // Serves delivery reports; also paces retries while the producer queue is full.
    producer_->Poll(in_flight > 0 || backlog ? 5 : 0);
    AdvancePublishPointers();
    if (fault::Armed(producer_fatal_point_)) {
      fault::Disarm(producer_fatal_point_);
      producer_->RaiseFatalErrorForTesting("fault point " + producer_fatal_point_).IgnoreError();
    }
    if (absl::Status fatal = producer_->FatalError(); !fatal.ok()) {
      ReplaceFailedProducer(fatal);
      if (producer_ == nullptr) break;  // stopping while no producer could be created
      continue;
    }
    if (in_flight == 0 && !backlog) {
      absl::MutexLock lock(&mu_);
      auto woken = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stopping_ || notified_ || !control_.empty();
      };
      mu_.AwaitWithTimeout(absl::Condition(&woken),
                           absl::Milliseconds(tunables_.publisher_idle_wait_ms));
    }
  }
  if (producer_ != nullptr) Drain();
}

int64_t Publisher::AdvancePublishPointers() {
  int64_t advanced = 0;
  for (int32_t shard = 0; shard < config_.shard_count(); ++shard) {
    const int64_t delivered = cursors_[shard].delivered();
    const int64_t published = store_.PublishedTaskId(shard);
    if (delivered <= published) continue;
    if (absl::Status s = store_.MarkPublished(shard, delivered); !s.ok()) {
      log::Write(
          log::Level::kError, "publish.pointer_failed",
          absl::StrFormat("advancing shard %d publish pointer: %s", shard, s.ToString().c_str()),
          log::Fields().Shard(shard));
      continue;
    }
    advanced += delivered - published;
  }
  return advanced;
}

void Publisher::Drain() {
  // Every append the API acknowledged is in the outbox by now (the HTTP server stopped first).
  // Publish it all and wait for Kafka's acks, up to the deadline, then record what was
  // acknowledged as published, so the next start publishes nothing twice. Whatever is left
  // stays in the outbox and goes out at the next start.
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(tunables_.shutdown_flush_timeout_ms);
  int64_t left = 0;
  while (true) {
    size_t in_flight = 0;
    left = 0;
    for (int32_t shard = 0; shard < config_.shard_count(); ++shard) {
      ProduceShard(shard);
      in_flight += cursors_[shard].in_flight();
      left += store_.OutboxNextTaskId(shard) - cursors_[shard].delivered();
    }
    if (left == 0 || std::chrono::steady_clock::now() >= deadline) break;
    producer_->Poll(in_flight > 0 ? kDrainPollMs : 0);
  }
  // Control messages in flight (records, decisions, resend requests) too.
  const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  producer_->Flush(std::max<int>(0, static_cast<int>(remaining.count()))).IgnoreError();
  const int64_t delivered = AdvancePublishPointers();
  log::Write(log::Level::kInfo, "",
             absl::StrFormat("publisher drained: %lld tasks acknowledged while stopping, %lld left "
                             "in the outbox for the next start",
                             static_cast<long long>(delivered), static_cast<long long>(left)));
}

}  // namespace xdc
