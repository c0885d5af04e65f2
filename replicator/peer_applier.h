// Applying one peer's replication stream: xdc.<peer>.history (partition = shard) and
// xdc.<peer>.control.
//
// The applier assigns the peer's partitions itself and seeks to the offsets stored in our own
// store (the shard version vector); Kafka group offsets are not used. Each poll's messages are
// decided by the pure conflict resolver and committed in one WriteBatch together with the new
// offsets, so a restart neither loses nor double-applies a task. Corrupt messages and tasks
// that cannot be applied (gap, fork, invalid) are parked in the DLQ in the same batch: never
// dropped.
//
// The applier halts (latch on ambiguity) if the store refuses a batch or a namespace record, or
// if a peer partition
// keeps ending below an offset we already applied (the topic was recreated or Kafka lost data:
// going on would skip events). Status and the xdc_applier_halted metric say why; a restart resumes
// from the stored offsets once the cause is fixed.
//
// Task ids the source skipped over (protocol/task_sequence.h) are kept with the progress and
// reported as missing_tasks until they arrive: a resend fills them, Kafka data loss does not.
//
// Thread-safety: the applier thread owns the consumer; Snapshot() may be called from any thread
// (the per-shard views are guarded by mu_).
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "protocol/xdc.pb.h"
#include "replicator/clock.h"
#include "replicator/kafka_client.h"
#include "replicator/metrics.h"
#include "replicator/namespace_registry.h"
#include "replicator/tunables.h"
#include "store/store.h"

namespace xdc {

// The apply-progress key of a peer's control partition.
inline constexpr int32_t kControlShard = -1;

class PeerApplier {
 public:
  PeerApplier(const DaemonConfig& config, const Tunables& tunables, std::string peer, Store& store,
              NamespaceRegistry& namespaces, ApplierProbe probe, Clock clock);
  ~PeerApplier();

  // Loads stored offsets, assigns the partitions and starts the thread.
  [[nodiscard]] absl::Status Start(const std::string& bootstrap);
  void Stop();

  [[nodiscard]] const std::string& peer() const { return peer_; }
  // Per-shard status (offsets, lag, counters), index = shard.
  [[nodiscard]] std::vector<PeerShardStatus> Snapshot() const;
  // Corrupt messages seen since this process started.
  [[nodiscard]] int64_t corrupt_messages() const {
    return static_cast<int64_t>(probe_.corrupt_messages->Value());
  }
  // Non-empty once the applier halted (see the class comment for why it does).
  [[nodiscard]] std::string halt_reason() const;

 private:
  struct ShardView {
    ShardApplyProgress progress;
    int64_t high_watermark = -1;
  };
  // Working state of one poll's batch.
  struct Pending {
    ApplyBatch batch;
    std::map<std::string, size_t> workflow_index;  // workflow key -> index in batch.workflows
    std::map<int32_t, ShardApplyProgress> progress;
    std::string halt_reason;  // set when a message can be neither applied nor parked
  };

  void Run();
  // Records why the applier stopped and raises xdc_applier_halted.
  void Halt(const std::string& reason);
  // The halt reason once a partition's end (as the broker reports it) has stayed below our
  // applied offset for tunables.truncation_confirm_ms.
  [[nodiscard]] std::optional<std::string> CheckNotTruncated(
      const std::vector<int64_t>& high_watermarks);
  void ApplyHistory(const KafkaMessage& message, Pending& pending);
  void ApplyControl(const KafkaMessage& message, Pending& pending);
  void Park(const KafkaMessage& message, int32_t shard, ParkReason reason, const std::string& error,
            const WorkflowKey* workflow, Pending& pending);
  [[nodiscard]] std::optional<WorkflowMutableState> LocalState(const WorkflowKey& key,
                                                               const Pending& pending,
                                                               absl::Status& error) const;
  ShardApplyProgress& ProgressFor(int32_t shard, Pending& pending);

  const DaemonConfig& config_;
  const Tunables& tunables_;
  const std::string peer_;
  const std::string history_topic_;
  const std::string control_topic_;
  Store& store_;
  NamespaceRegistry& namespaces_;
  ApplierProbe probe_;
  Clock clock_;
  std::unique_ptr<KafkaConsumer> consumer_;  // owned by the applier thread once started
  std::atomic<bool> stopping_{false};
  // Per shard, when its partition was first seen ending below our offset; 0 = not. Owned by the
  // applier thread.
  std::vector<int64_t> truncated_since_micros_;
  std::thread thread_;

  mutable absl::Mutex mu_;
  std::vector<ShardView> shards_ ABSL_GUARDED_BY(mu_);
  ShardApplyProgress control_progress_ ABSL_GUARDED_BY(mu_);
  std::string halt_reason_ ABSL_GUARDED_BY(mu_);
};

}  // namespace xdc
