// Turns one replication task into a StoreWrite: the conflict resolver's decision against the
// run's newest state (protocol/conflict_resolver.h), plus an outbox task that replicates the
// copies reapplication appended. Used for tasks from a peer's stream (PeerApplier) and for
// retries of parked tasks (automatic after a resend, and `xdcctl dlq retry`).
//
// Reapplication happens only where this cluster is the namespace's active cluster, owns its
// failover version and the namespace is not in handover.
//
// A task carrying a RunRepair (`xdcctl migration verify --repair`) is decided by the repair rule
// (protocol/run_repair.h) instead of the conflict resolver: kApply replaces the run's state and
// events with the sender's copy, a refusal is kInvalid (parked, with the reason), and a repair
// addressed to another cluster is kDuplicate (dropped: it is not for us).
//
// Thread-safety: Stage() is called under the WorkflowWriter's shard lock; the class itself holds
// no mutable state.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "protocol/conflict_resolver.h"
#include "protocol/xdc.pb.h"
#include "replicator/clock.h"
#include "replicator/namespace_registry.h"
#include "replicator/workflow_writer.h"

namespace xdc {

class TaskApplier {
 public:
  // `config`'s cluster list may grow and shrink online (MembershipService) under `config_mu`
  // held exclusively; the applier threads read it under `config_mu` held shared.
  TaskApplier(const DaemonConfig& config, absl::Mutex& config_mu, NamespaceRegistry& namespaces,
              Clock clock);

  // Decides `task` and adds its effects to `write` (nothing unless the action is kApply).
  [[nodiscard]] ApplyDecision Stage(const ReplicationTask& task, WorkflowWriter::View& view,
                                    StoreWrite& write) const;

  // The outbox task that replicates `events`, which this cluster just appended to the current
  // branch of `state` (reapplied copies).
  [[nodiscard]] ReplicationTask LocalTask(int32_t shard, const WorkflowMutableState& state,
                                          const std::vector<HistoryEvent>& events) const;

  // The context reapplication needs when this cluster may write to the namespace now.
  [[nodiscard]] std::optional<ActiveContext> ActiveFor(const std::string& namespace_id) const;

 private:
  [[nodiscard]] ApplyDecision StageRepair(const ReplicationTask& task, WorkflowWriter::View& view,
                                          StoreWrite& write) const;

  const DaemonConfig& config_;  // `clusters` guarded by config_mu_
  absl::Mutex& config_mu_;
  const int64_t initial_failover_version_;
  NamespaceRegistry& namespaces_;
  Clock clock_;
};

}  // namespace xdc
