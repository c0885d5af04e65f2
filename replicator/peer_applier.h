// Applying one peer's replication stream: xdc.<peer>.history (partition = shard) and
// xdc.<peer>.control.
//
// The applier assigns the peer's partitions itself and seeks to the offsets stored in our own
// store (the shard version vector); Kafka group offsets are not used. Each message is decided by
// the conflict resolver (through TaskApplier) under the WorkflowWriter's shard lock and queued as
// one StoreWrite together with the shard's new offset, so a restart neither loses nor
// double-applies a task. A poll's writes are queued in order and waited for together. A message
// at an offset below its partition's stored next offset counts as applied (a redelivery), so each
// poll's messages of a partition are put in offset order first, should the consumer have
// delivered them otherwise (fault point kafka.reorder_delivery).
//
// Nothing is dropped. Corrupt messages and tasks that cannot be applied go to the DLQ in the
// same write as the offset. A gap (events missing before a task) parks the task awaiting a
// resend and asks the peer, over our control topic, to publish the missing range again from its
// store; parked tasks of this peer are retried, in DLQ order, after every poll that applied
// events and every tunables.resend_retry_interval_ms, and the request is repeated up to
// tunables.resend_max_attempts times before the entry is left for an operator (dead letter).
// The peer's resend requests addressed to us are answered from our store the same way.
//
// The applier halts (latch on ambiguity) if the store refuses a write (a DLQ write included) or
// a namespace record, or if a peer partition keeps ending below an offset we already applied
// (the topic was recreated or Kafka lost data: going on would skip events). Status and the
// xdc_applier_halted metric say why; a restart resumes from the stored offsets once the cause is
// fixed.
//
// Control plane: handover markers on the history topic go to the HandoverCoordinator, and every
// control message (records, cancels, decisions, resend requests) to the ControlApplier, in stream
// order.
//
// Two streams per peer: kLive (the history and control topics) and kBackfill (the peer's
// backfill topic, <prefix>.<peer>.backfill, a partition per shard: whole histories a migration
// publishes for one target, docs/migration.md). A backfill applier keeps its progress under
// "<peer>#backfill", skips messages addressed to another target, and leaves parked gaps to the
// live applier (which retries every parked task of the peer).
//
// A task of a namespace this cluster is not a member of (by its local record) is skipped whole
// and counted (tasks_skipped_not_member): removing a member stops replication to it.
//
// Task ids the source skipped over (protocol/task_sequence.h) are kept with the progress and
// reported as missing_tasks until they arrive: a resend fills them, Kafka data loss does not.
//
// Thread-safety: the applier thread owns the consumer; Snapshot() may be called from any thread
// (the per-shard views are guarded by mu_).
#pragma once

#include <atomic>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "protocol/xdc.pb.h"
#include "replicator/backfill_topic.h"
#include "replicator/clock.h"
#include "replicator/control_applier.h"
#include "replicator/handover_coordinator.h"
#include "replicator/kafka_client.h"
#include "replicator/metrics.h"
#include "replicator/namespace_registry.h"
#include "replicator/task_applier.h"
#include "replicator/tunables.h"
#include "replicator/workflow_writer.h"
#include "store/store.h"

namespace xdc {

// The apply-progress key of a peer's control partition.
inline constexpr int32_t kControlShard = -1;

enum class PeerStream {
  kLive,      // <prefix>.<peer>.history and .control
  kBackfill,  // <prefix>.<peer>.backfill
};

// The apply-progress key of `peer`'s stream: the peer's name for kLive, "<peer>#backfill" for
// kBackfill ('#' is never in a cluster name).
[[nodiscard]] std::string StreamProgressKey(const std::string& peer, PeerStream stream);

// Where a peer stream reads the peer's topics (Daemon::PeerKafkaOf): the Kafka named in the
// peer's `clusters` entry, or this cluster's own when the entry names none.
struct PeerKafka {
  std::string bootstrap;
  KafkaProperties properties;
  bool configured = false;  // the peer's entry names a Kafka of its own
};

class PeerApplier {
 public:
  // `send_control` queues a control message on our own control topic (resend requests).
  PeerApplier(const DaemonConfig& config, const Tunables& tunables, std::string peer, Store& store,
              WorkflowWriter& writer, const TaskApplier& task_applier,
              NamespaceRegistry& namespaces, HandoverCoordinator& handover,
              const ControlApplier& control, ApplierProbe probe, Clock clock,
              std::function<void(ControlMessage)> send_control,
              PeerStream stream = PeerStream::kLive);
  ~PeerApplier();

  // Loads stored offsets, creates the consumer of the peer's Kafka and starts the thread. The
  // thread first waits until the peer's topics exist there (the peer creates them on its own
  // Kafka when it starts; KafkaStatus() and the log say what it waits for, checked every
  // tunables.peer_topic_wait_poll_ms), then assigns the partitions and applies.
  [[nodiscard]] absl::Status Start(const PeerKafka& kafka);
  void Stop();
  // Which Kafka this stream reads, and the peer topics it still waits for. Thread-safe.
  [[nodiscard]] PeerKafkaStatus KafkaStatus() const;

  [[nodiscard]] const std::string& peer() const { return peer_; }
  [[nodiscard]] PeerStream stream() const { return stream_; }
  // Per-shard status (offsets, lag, counters), index = shard.
  [[nodiscard]] std::vector<PeerShardStatus> Snapshot() const;
  // Corrupt messages seen since this process started.
  [[nodiscard]] int64_t corrupt_messages() const {
    return static_cast<int64_t>(probe_.corrupt_messages->Value());
  }
  // Non-empty once the applier halted (see the class comment for why it does).
  [[nodiscard]] std::string halt_reason() const;
  // Declares the task ids of this stream missing on `shards` (empty: every shard) lost for good
  // (protocol/task_sequence.h AcknowledgeMissing), an operator's decision. The applier thread
  // takes the request at its next poll and answers once the new progress is stored (synced).
  // INVALID_ARGUMENT for a shard outside [0, shard_count); UNAVAILABLE if the applier has halted
  // or stops first; DEADLINE_EXCEEDED if it did not answer within `timeout_ms` (it may still
  // store the request: status tells). Thread-safe.
  [[nodiscard]] absl::StatusOr<std::vector<MissingTasksAcknowledged>> AcknowledgeMissing(
      const std::vector<int32_t>& shards, int timeout_ms);

 private:
  struct ShardView {
    ShardApplyProgress progress;
    int64_t high_watermark = -1;
    // Local time (micros) this shard was first seen behind since it was last caught up; 0 while
    // caught up. Bounds lag_seconds when no task was applied for a long time (or ever).
    int64_t behind_since_micros = 0;
  };
  // Updates behind_since_micros from the shard's current lag. Caller holds mu_.
  static void NoteLag(ShardView& view, int64_t now_micros);
  // When Kafka no longer holds the shard's next offset (its log start moved past it: retention,
  // DeleteRecords), the consumer has reset to the log start and nothing will ever arrive for the
  // offsets in between: logs them as lost and moves the in-memory next offset to the log start,
  // so that lag counts only what can still be read. (A task that does arrive past the gap shows
  // the lost task ids as missing; its commit stores the new offset.) Caller holds mu_; for a
  // shard with nothing applied in this poll.
  void SkipDeletedOffsets(int32_t shard) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  using AcknowledgeResult = absl::StatusOr<std::vector<MissingTasksAcknowledged>>;
  struct AcknowledgeRequest {
    std::vector<int32_t> shards;  // never empty
    std::promise<AcknowledgeResult> answer;
  };
  // Working state of one poll.
  struct Pending {
    std::vector<std::unique_ptr<WorkflowWriter::Pending>> writes;  // queued, in order
    std::map<int32_t, ShardApplyProgress> progress;
    std::vector<ResendRequest> resend_requests;  // sent once the writes are durable
    bool applied_events = false;
    std::string halt_reason;  // set when a message can be neither applied nor parked
    // Acknowledgements taken into this poll, answered once its writes are durable.
    std::vector<std::pair<std::shared_ptr<AcknowledgeRequest>, AcknowledgeResult>> acknowledgements;
  };

  void Run();
  // Waits until the peer's topics exist on its Kafka (or Stop); false when stopped first.
  [[nodiscard]] bool WaitForTopics();
  // The topics this stream reads, with the partitions it needs.
  [[nodiscard]] std::vector<TopicSpec> Topics() const;
  // Where the consumer resumes: the next offset of every history partition and of the control
  // partition, from the in-memory progress (what was applied and committed).
  [[nodiscard]] std::vector<KafkaConsumer::Assignment> AppliedOffsets() const;
  // While apply.hold.<peer> is armed: drops a poll's messages, refreshing the high watermarks
  // (so lag stays visible), and rewinds the consumer to AppliedOffsets().
  void DropAndRewind(const std::vector<KafkaMessage>& dropped);
  // Records why the applier stopped and raises xdc_applier_halted.
  void Halt(const std::string& reason);
  // The halt reason once a partition's end (as the broker reports it) has stayed below our
  // applied offset for tunables.truncation_confirm_ms.
  [[nodiscard]] std::optional<std::string> CheckNotTruncated(
      const std::vector<int64_t>& high_watermarks);
  void ApplyHistory(const KafkaMessage& message, Pending& pending);
  void ApplyControl(const KafkaMessage& message, Pending& pending);
  // Queues `build`'s write; false, with a halt reason recorded, if the store refused it.
  bool Queue(int32_t shard, Pending& pending, const WorkflowWriter::BuildFn& build);
  // Queues `build`'s write plus the shard's progress (a halt reason if it cannot).
  void QueueWithProgress(int32_t shard, Pending& pending,
                         const std::function<void(WorkflowWriter::View&, StoreWrite&)>& build);
  [[nodiscard]] ParkedTask MakeParked(const KafkaMessage& message, int32_t shard, ParkReason reason,
                                      const std::string& error, const WorkflowKey* workflow);
  // Counts the decision's effects in `progress` and the probe.
  void Count(const ApplyDecision& decision, ShardApplyProgress* progress);
  // Publishes the answer to a peer's resend request (ControlApplier read it from our store), or
  // logs why there is none (the peer asks again).
  void QueueResendAnswer(const ResendRequest& request, const ControlOutcome& outcome,
                         Pending& pending);
  // Retries this peer's parked tasks that await a resend; repeats or gives up on requests.
  void RetryParked(Pending& pending);
  // Sends the poll's resend requests (once its writes, which parked the tasks, are durable).
  void SendResendRequests(Pending& pending);
  // Waits for the poll's writes; false (after halting) if the store refused one.
  [[nodiscard]] bool WaitForWrites(Pending& pending);
  // Takes the queued acknowledgements into the poll: their shards' progress changes and writes.
  void TakeAcknowledgements(Pending& pending);
  // Answers the poll's acknowledgements: theirs if `stored`, else UNAVAILABLE with the reason.
  void AnswerAcknowledgements(Pending& pending, bool stored, const std::string& reason);
  ShardApplyProgress& ProgressFor(int32_t shard, Pending& pending);

  const DaemonConfig& config_;
  const Tunables& tunables_;
  const std::string peer_;
  const PeerStream stream_;
  const std::string progress_key_;  // StreamProgressKey(peer_, stream_)
  const std::string history_topic_;
  const std::string control_topic_;
  Store& store_;
  WorkflowWriter& writer_;
  const TaskApplier& task_applier_;
  NamespaceRegistry& namespaces_;
  HandoverCoordinator& handover_;
  const ControlApplier& control_;
  ApplierProbe probe_;
  Clock clock_;
  std::function<void(ControlMessage)> send_control_;
  // Owned by the applier thread: when each parked task last asked for a resend, and when the
  // parked tasks were last retried.
  std::map<int64_t, int64_t> last_resend_request_micros_;
  int64_t last_retry_micros_ = 0;
  std::unique_ptr<KafkaConsumer> consumer_;  // owned by the applier thread once started
  std::atomic<bool> stopping_{false};
  PeerKafka kafka_;  // set by Start, read-only afterwards
  // Per shard, when its partition was first seen ending below our offset; 0 = not. Owned by the
  // applier thread.
  std::vector<int64_t> truncated_since_micros_;
  std::thread thread_;

  mutable absl::Mutex mu_;
  std::vector<ShardView> shards_ ABSL_GUARDED_BY(mu_);
  ShardApplyProgress control_progress_ ABSL_GUARDED_BY(mu_);
  std::string halt_reason_ ABSL_GUARDED_BY(mu_);
  bool stop_requested_ ABSL_GUARDED_BY(mu_) = false;  // wakes WaitForTopics
  std::vector<std::string> waiting_for_topics_ ABSL_GUARDED_BY(mu_);
  int64_t waiting_since_micros_ ABSL_GUARDED_BY(mu_) = 0;
  // Acknowledgements not yet taken by the thread, and whether the thread still takes them.
  std::vector<std::shared_ptr<AcknowledgeRequest>> acknowledge_requests_ ABSL_GUARDED_BY(mu_);
  bool taking_acknowledgements_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace xdc
