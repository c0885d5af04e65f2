// Publishing: the transactional outbox to Kafka, and namespace records to the control topic.
//
// One ShardCursor per shard tracks what was sent and what Kafka acknowledged; the publisher
// thread drives all of them with one idempotent producer (acks=all), partition = shard. The
// outbox publish pointer advances only over tasks whose delivery was reported, so a crash or a
// delivery failure re-publishes (applying is idempotent). After a failed delivery the shard
// rewinds to its first unacknowledged task once its in-flight tasks have drained.
//
// Nothing wedges a shard silently: while Kafka refuses a shard's oldest undelivered task (a
// failed delivery, or a produce the client refuses, e.g. a message over message.max.bytes), the
// shard's status and the xdc_publish_consecutive_failures gauge say so and why
// (runbooks/outbox-backlog.md). A fatal producer error (the idempotent producer lost its
// guarantees, e.g. after a broker lost acknowledged data) fails every message until the producer
// is replaced: the publisher replaces it, counts and logs it, and every shard resends from its
// first unacknowledged task.
//
// Thread-safety: cursors and the producer are owned by the publisher thread (delivery reports
// run on it, inside Poll). Notify()/Announce() may be called from any thread; they touch only
// mu_-guarded state. Health() and producer_recreations() may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "protocol/xdc.pb.h"
#include "replicator/clock.h"
#include "replicator/kafka_client.h"
#include "replicator/metrics.h"
#include "replicator/tunables.h"
#include "store/store.h"

namespace xdc {

// Send/acknowledge bookkeeping of one shard's outbox. Pure bookkeeping, no I/O.
class ShardCursor {
 public:
  explicit ShardCursor(int64_t published_task_id)
      : next_to_send_(published_task_id), delivered_(published_task_id) {}

  [[nodiscard]] int64_t next_to_send() const { return next_to_send_; }
  [[nodiscard]] int64_t delivered() const { return delivered_; }  // exclusive, contiguous
  [[nodiscard]] size_t in_flight() const { return in_flight_; }

  void OnSent(int64_t task_id);
  void OnDelivered(int64_t task_id);
  // The outbox holds no task in [first, next): ids a raised task id floor skipped (StoreWrite::
  // task_id_floors). They count as delivered once everything before them is. Idempotent.
  void OnAbsent(int64_t first, int64_t next);
  void OnFailed(int64_t task_id);
  // After a failure and once nothing is in flight: send again from the first unacknowledged.
  void MaybeRewind();
  // False while a rewind is pending: new tasks wait until the in-flight ones drain, or under
  // steady load the failed task would never be resent.
  [[nodiscard]] bool may_send() const { return !rewind_; }

  bool produce_error_logged = false;  // a failing Produce is logged once, not every retry

 private:
  void Advance();  // moves delivered_ over what is acknowledged or absent right above it

  int64_t next_to_send_;
  int64_t delivered_;
  size_t in_flight_ = 0;
  bool rewind_ = false;
  std::set<int64_t> delivered_ahead_;  // acknowledged above a gap left by a failure
  std::map<int64_t, int64_t> absent_;  // first -> next of id ranges the outbox never held
};

// Whether a shard's publishing is failing (ShardStatus.publish_*).
struct ShardPublishHealth {
  std::string error;                      // the last refusal; empty while publishing works
  int64_t failures = 0;                   // refusals in a row of the oldest undelivered task
  int64_t failing_since_unix_micros = 0;  // when the first of them happened
};

class Publisher {
 public:
  Publisher(const DaemonConfig& config, const Tunables& tunables, Store& store,
            PublisherProbe& probe, Clock clock);
  ~Publisher();

  // Creates the producer, queues `records` for announcement and starts the thread.
  [[nodiscard]] absl::Status Start(const std::string& bootstrap,
                                   const std::vector<NamespaceRecord>& records);
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  // Wakes the thread: new outbox tasks were committed on these shards.
  void Notify() ABSL_LOCKS_EXCLUDED(mu_);
  // Whether Kafka answers the producer (KafkaProducer::CheckReachable). Thread-safe.
  [[nodiscard]] absl::Status CheckKafka(int timeout_ms);
  // Queues a namespace record for the control topic (resent until delivered).
  void Announce(const NamespaceRecord& record) ABSL_LOCKS_EXCLUDED(mu_);
  // Queues a control message (its source_cluster is set here; resent until delivered).
  void SendControl(ControlMessage message) ABSL_LOCKS_EXCLUDED(mu_);
  // Per shard (index = shard), whether publishing is failing.
  [[nodiscard]] std::vector<ShardPublishHealth> Health() const ABSL_LOCKS_EXCLUDED(health_mu_);
  // Producers replaced after a fatal error since Start().
  [[nodiscard]] int64_t producer_recreations() const { return producer_recreations_.load(); }

 private:
  void Run() ABSL_LOCKS_EXCLUDED(mu_);
  // Records what Kafka acknowledged as published; returns how many tasks that moved over.
  int64_t AdvancePublishPointers();
  // At stop: flushes the producer and advances the publish pointers over what Kafka acknowledged.
  void Drain();
  void ProduceShard(int32_t shard);
  void OnDelivery(uint64_t token, const absl::Status& status);
  // A new producer (with its topics learnt); reports of an older one are ignored from now on.
  [[nodiscard]] absl::Status CreateProducer();
  // After a fatal producer error: a new producer, and everything not acknowledged sent again.
  void ReplaceFailedProducer(const absl::Status& fatal) ABSL_LOCKS_EXCLUDED(mu_);
  // Records a refusal of `shard`'s oldest undelivered task, or (OK) that publishing works again.
  void RecordShardHealth(int32_t shard, const absl::Status& status) ABSL_LOCKS_EXCLUDED(health_mu_);

  const DaemonConfig& config_;
  const Tunables& tunables_;
  Store& store_;
  PublisherProbe& probe_;
  const std::string history_topic_;
  const std::string control_topic_;
  const std::string producer_fatal_point_;  // fault::kPublishProducerFatalPrefix + our name
  Clock clock_;
  std::string bootstrap_;  // set by Start()
  // Replaced only by the publisher thread, which reads it without a lock; other threads
  // (CheckKafka) read reachable_producer_, its copy.
  std::shared_ptr<KafkaProducer> producer_;
  uint64_t producer_generation_ = 0;  // owned by the publisher thread
  std::atomic<int64_t> producer_recreations_{0};
  std::vector<ShardCursor> cursors_;                      // owned by the publisher thread
  std::map<uint64_t, ControlMessage> control_in_flight_;  // owned by the publisher thread
  uint64_t next_control_token_ = 0;                       // owned by the publisher thread
  std::deque<ControlMessage> control_to_retry_;           // owned by the publisher thread
  bool control_produce_error_logged_ = false;             // owned by the publisher thread

  // Waking the thread: Run() waits on these with Mutex::AwaitWithTimeout, so a change under mu_
  // wakes it (no condition variable).
  absl::Mutex mu_;
  bool notified_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<ControlMessage> control_ ABSL_GUARDED_BY(mu_);
  mutable absl::Mutex producer_mu_;
  std::shared_ptr<KafkaProducer> reachable_producer_ ABSL_GUARDED_BY(producer_mu_);
  mutable absl::Mutex health_mu_;
  std::vector<ShardPublishHealth> health_ ABSL_GUARDED_BY(health_mu_);  // index = shard
  std::thread thread_;
};

}  // namespace xdc
