// The sending side of a repair (`xdcctl migration verify --repair`, POST /v1/migration/repair):
// for each run asked for, the namespace's active cluster publishes its whole copy of the run (a
// ReplicationTask with a RunRepair) on its history topic, where the target applies it under the
// repair rule (protocol/run_repair.h, TaskApplier).
//
// Each copy is read and queued as an outbox task under the run's shard lock
// (WorkflowWriter), so it holds every write acknowledged before it and the run's later writes
// follow it in the shard's stream. Only the namespace's active cluster (ActiveFor) sends repairs:
// it owns the namespace's current version, so nothing acknowledged can be newer than its copy.
//
// Thread-safe.
#pragma once

#include <cstddef>

#include "absl/status/statusor.h"
#include "protocol/xdc.pb.h"
#include "replicator/clock.h"
#include "replicator/namespace_registry.h"
#include "replicator/task_applier.h"
#include "replicator/tunables.h"
#include "replicator/workflow_writer.h"

namespace xdc {

// Runs per POST /v1/migration/repair.
inline constexpr size_t kMaxRepairRunsPerRequest = 1000;

class RunRepairer {
 public:
  RunRepairer(const DaemonConfig& config, const Tunables& tunables,
              const NamespaceRegistry& namespaces, WorkflowWriter& writer,
              const TaskApplier& task_applier, Clock clock);

  // Queues a repair of each run for request.target_cluster(). FAILED_PRECONDITION unless this
  // cluster is the namespace's active cluster; INVALID_ARGUMENT for a bad request. Per run:
  // "queued" (durable in the outbox), "not_found" (no such run here), or "refused" with why (its
  // whole history does not fit in one task of tunables.max_task_bytes, or it cannot be read).
  [[nodiscard]] absl::StatusOr<RepairRunsResponse> Request(const RepairRunsRequest& request);

 private:
  [[nodiscard]] RepairOutcome RepairOne(const NamespaceRecord& ns, const std::string& target,
                                        const RunRef& run);

  const DaemonConfig& config_;
  const Tunables& tunables_;
  const NamespaceRegistry& namespaces_;
  WorkflowWriter& writer_;
  const TaskApplier& task_applier_;
  Clock clock_;
};

}  // namespace xdc
