// Finishes reapplication when this cluster becomes a namespace's active cluster.
//
// Only the active cluster reapplies losing-branch signals, cancel requests and terminations
// (protocol/reapplication.h). A cluster that saw a run fork while it was not active marked the
// run reapply_pending; when the namespace later becomes active here (a forced failover to us, or
// a record from a peer naming us), this sweep walks the namespace's runs and reapplies what is
// pending, through the WorkflowWriter like any other write, with an outbox task for the copies.
//
// Thread-safety: Request() from any thread; sweeps run on the sweeper's own thread.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
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
  void Stop();
  // Queues a sweep of the namespace (a no-op where this cluster is not its active cluster).
  void Request(const std::string& namespace_id);
  // Sweeps now, on the calling thread; returns the number of events reapplied.
  [[nodiscard]] absl::StatusOr<int64_t> Sweep(const std::string& namespace_id);

 private:
  void Run();

  const DaemonConfig& config_;
  Store& store_;
  WorkflowWriter& writer_;
  const TaskApplier& task_applier_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> requests_;  // guarded by mu_
  bool stopping_ = false;             // guarded by mu_
  std::thread thread_;
};

}  // namespace xdc
