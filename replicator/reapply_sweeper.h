// Finishes reapplication when this cluster becomes a namespace's active cluster.
//
// Only the active cluster reapplies losing-branch signals, cancel requests and terminations
// (protocol/reapplication.h). A cluster that saw a run fork while it was not active marked the
// run reapply_pending; when the namespace later becomes active here (a forced failover to us, or
// a record from a peer naming us), this sweep walks the namespace's runs and reapplies what is
// pending, through the WorkflowWriter like any other write, with an outbox task for the copies:
// a task's worth per write, until nothing is left. A sweep is also requested when an applied
// task left more than one task's worth pending on the active cluster (TaskApplier).
//
// No run stays reapply_pending where the namespace is active: the change listener requests a
// sweep after the registry holds the new record, and the sweep starts with a barrier on every
// shard, so a write decided before the change (under its shard's lock) is in the store before the
// sweep scans it, and a write decided after it reapplies by itself.
//
// Thread-safety: Request() from any thread; sweeps run on the sweeper's own thread.
#pragma once

#include <deque>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "protocol/xdc.pb.h"
#include "replicator/task_applier.h"
#include "replicator/workflow_writer.h"
#include "store/store.h"

namespace xdc {

class ReapplySweeper {
 public:
  ReapplySweeper(const DaemonConfig& config, Store& store, WorkflowWriter& writer,
                 const TaskApplier& task_applier);
  ~ReapplySweeper();

  void Start();
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);
  // Queues a sweep of the namespace (a no-op where this cluster is not its active cluster).
  void Request(const std::string& namespace_id) ABSL_LOCKS_EXCLUDED(mu_);
  // Sweeps now, on the calling thread; returns the number of events reapplied.
  [[nodiscard]] absl::StatusOr<int64_t> Sweep(const std::string& namespace_id);

 private:
  void Run() ABSL_LOCKS_EXCLUDED(mu_);
  // Reapplies what is pending on one run, a replication task's worth per write.
  [[nodiscard]] absl::StatusOr<int64_t> SweepRun(const WorkflowKey& key);

  const DaemonConfig& config_;
  Store& store_;
  WorkflowWriter& writer_;
  const TaskApplier& task_applier_;

  absl::Mutex mu_;  // Run() waits with Mutex::Await: a change under mu_ wakes it
  std::deque<std::string> requests_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace xdc
