// Turns one replication task into a StoreWrite: the conflict resolver's decision against the
// run's newest state (protocol/conflict_resolver.h), plus an outbox task that replicates the
// copies reapplication appended. Used for tasks from a peer's stream (PeerApplier) and for
// retries of parked tasks (automatic after a resend, and `xdcctl dlq retry`).
//
// Reapplication happens only where this cluster is the namespace's active cluster, owns its
// failover version, the namespace is not in handover and the write gate (SetWriteGate) allows it.
//
// A task carrying a RunRepair (`xdcctl migration verify --repair`) is decided by the repair rule
// (protocol/run_repair.h) instead of the conflict resolver: kApply replaces the run's state and
// events with the sender's copy, a refusal is kInvalid (parked, with the reason), and a repair
// addressed to another cluster is kDuplicate (dropped: it is not for us).
//
// Thread-safety: Stage() is called under the WorkflowWriter's shard lock; the class itself holds
// no mutable state.
#pragma once

#include <functional>
#include <map>
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
  // Knows the initial failover versions of `config`'s clusters; AddPeer adds a cluster that joins
  // online (`config`'s cluster list is not read after construction: it changes under a lock the
  // appliers must not take, see replicator/daemon.h).
  TaskApplier(const DaemonConfig& config, NamespaceRegistry& namespaces, Clock clock);

  // Records the initial failover version of a cluster that joined the federation online (a
  // repair's sender must own the namespace's version). Thread-safe.
  void AddPeer(const std::string& cluster, int64_t initial_failover_version);

  // `listener` is called with a namespace id when Stage() applied a task whose reapplied copies
  // were more than one replication task's worth (protocol/reapplication.h) on the namespace's
  // active cluster: the rest stay reapply_pending for the ReapplySweeper. Called under a shard
  // lock, so it must only queue work. Set once, before the first Stage().
  void SetReapplyLeftListener(std::function<void(const std::string&)> listener);

  // `may_write` says whether this cluster may write to a namespace it is active for (the startup
  // check, replicator/startup_checker.h); while it says no, reapplication waits (the runs stay
  // reapply_pending for the sweeper). Set once, before the first Stage() or ActiveFor().
  void SetWriteGate(std::function<bool(const NamespaceRecord&)> may_write);

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

  // The initial failover version of the sender of a task, or 0 if the cluster is unknown.
  [[nodiscard]] int64_t InitialVersionOf(const std::string& cluster) const;

  const DaemonConfig& config_;  // its cluster list is read only in the constructor
  const int64_t initial_failover_version_;
  // A leaf lock (nothing is acquired while it is held): appliers take it with a shard's lock held.
  mutable absl::Mutex versions_mu_;
  std::map<std::string, int64_t> initial_versions_ ABSL_GUARDED_BY(versions_mu_);
  NamespaceRegistry& namespaces_;
  Clock clock_;
  std::function<void(const std::string&)> reapply_left_;   // set before the appliers start
  std::function<bool(const NamespaceRecord&)> may_write_;  // set before the appliers start
};

}  // namespace xdc
