// The active write path: appends and signals, behind the namespace write gate.
//
// A write is accepted only on the cluster that owns the namespace's current failover version
// and is not in handover; otherwise FAILED_PRECONDITION naming the active cluster (attached as
// the kActiveClusterPayload payload), or UNAVAILABLE marked retryable during a handover.
//
// Concurrency: appends of one shard are serialised by that shard's lock from reading the
// workflow's state until the write is queued for commit, so they commit in that order; the state
// of writes still in flight is kept in `in_flight` so the next append of the same workflow builds
// on it. The lock is not held while waiting for the fsync, so appends share group commits.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "protocol/xdc.pb.h"
#include "replicator/api_errors.h"
#include "replicator/clock.h"
#include "replicator/metrics.h"
#include "replicator/namespace_registry.h"
#include "replicator/tunables.h"
#include "store/store.h"

namespace xdc {

class WriteService {
 public:
  WriteService(const DaemonConfig& config, const Tunables& tunables, Store& store,
               NamespaceRegistry& namespaces, WriteProbe& probe, Clock clock);

  // Appends events to a run. expected_next_event_id must equal the run's next event id (1 for a
  // new run, whose run id is generated when not given).
  [[nodiscard]] absl::StatusOr<AppendResponse> Append(const AppendRequest& request);

  // Appends a WORKFLOW_EXECUTION_SIGNALED event to the run (default: the current run).
  [[nodiscard]] absl::StatusOr<AppendResponse> Signal(const SignalRequest& request);

 private:
  struct ShardState {
    absl::Mutex mu;
    // Workflow key -> (state after the last queued write, writes in flight).
    std::map<std::string, std::pair<WorkflowMutableState, int>> in_flight ABSL_GUARDED_BY(mu);
  };

  // Write gate: the namespace's record if this cluster may write to it.
  [[nodiscard]] absl::StatusOr<NamespaceRecord> CheckWritable(const std::string& name) const;
  // Appends `events` to the run; `expected_next_event_id` 0 means "whatever is next".
  [[nodiscard]] absl::StatusOr<AppendResponse> AppendToRun(const NamespaceRecord& ns,
                                                           WorkflowKey key,
                                                           int64_t expected_next_event_id,
                                                           const std::vector<NewEvent>& events);
  [[nodiscard]] absl::StatusOr<AppendResponse> AppendUncounted(const AppendRequest& request);
  [[nodiscard]] absl::StatusOr<AppendResponse> SignalUncounted(const SignalRequest& request);
  // Counts the request (and its events) in the write probe.
  [[nodiscard]] absl::StatusOr<AppendResponse> Counted(absl::StatusOr<AppendResponse> result);

  const DaemonConfig& config_;
  const Tunables& tunables_;
  const int64_t initial_failover_version_;
  Store& store_;
  NamespaceRegistry& namespaces_;
  WriteProbe& probe_;
  Clock clock_;
  std::vector<std::unique_ptr<ShardState>> shards_;
};

}  // namespace xdc
