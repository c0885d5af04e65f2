// Publishing: the transactional outbox to Kafka, and namespace records to the control topic.
//
// One ShardCursor per shard tracks what was sent and what Kafka acknowledged; the publisher
// thread drives all of them with one idempotent producer (acks=all), partition = shard. The
// outbox publish pointer advances only over tasks whose delivery was reported, so a crash or a
// delivery failure re-publishes (applying is idempotent). After a failed delivery the shard
// rewinds to its first unacknowledged task once its in-flight tasks have drained.
//
// Thread-safety: cursors are owned by the publisher thread (delivery reports run on it, inside
// Poll). Notify()/Announce() may be called from any thread; they touch only mu_-guarded state.
#pragma once

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
  void OnFailed(int64_t task_id);
  // After a failure and once nothing is in flight: send again from the first unacknowledged.
  void MaybeRewind();
  // False while a rewind is pending: new tasks wait until the in-flight ones drain, or under
  // steady load the failed task would never be resent.
  [[nodiscard]] bool may_send() const { return !rewind_; }

  bool produce_error_logged = false;  // a failing Produce is logged once, not every retry

 private:
  int64_t next_to_send_;
  int64_t delivered_;
  size_t in_flight_ = 0;
  bool rewind_ = false;
  std::set<int64_t> delivered_ahead_;  // acknowledged above a gap left by a failure
};

class Publisher {
 public:
  Publisher(const DaemonConfig& config, const Tunables& tunables, Store& store,
            PublisherProbe& probe);
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

 private:
  void Run() ABSL_LOCKS_EXCLUDED(mu_);
  // Records what Kafka acknowledged as published; returns how many tasks that moved over.
  int64_t AdvancePublishPointers();
  // At stop: flushes the producer and advances the publish pointers over what Kafka acknowledged.
  void Drain();
  void ProduceShard(int32_t shard);
  void OnDelivery(uint64_t token, const absl::Status& status);

  const DaemonConfig& config_;
  const Tunables& tunables_;
  Store& store_;
  PublisherProbe& probe_;
  const std::string history_topic_;
  const std::string control_topic_;
  std::unique_ptr<KafkaProducer> producer_;
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
  std::thread thread_;
};

}  // namespace xdc
