// The active write path: appends and signals, behind the namespace write gate.
//
// A write is accepted only on the cluster that owns the namespace's current failover version
// and is not in handover; otherwise FAILED_PRECONDITION naming the active cluster (attached as
// the kActiveClusterPayload payload), or UNAVAILABLE marked retryable during a handover. The gate
// is checked under the shard's lock, which a handover takes to enter HANDOVER: every accepted
// write is ordered before the handover's markers.
//
// Concurrency: appends go through the WorkflowWriter, which serialises them with every other
// write of the same shard (applied tasks included) and lets concurrent appends share an fsync.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "protocol/xdc.pb.h"
#include "replicator/api_errors.h"
#include "replicator/clock.h"
#include "replicator/metrics.h"
#include "replicator/namespace_registry.h"
#include "replicator/tunables.h"
#include "replicator/workflow_writer.h"

namespace xdc {

class WriteService {
 public:
  WriteService(const DaemonConfig& config, const Tunables& tunables, WorkflowWriter& writer,
               NamespaceRegistry& namespaces, WriteProbe& probe, Clock clock);

  // Appends events to a run. expected_next_event_id must equal the run's next event id (1 for a
  // new run, whose run id is generated when not given).
  [[nodiscard]] absl::StatusOr<AppendResponse> Append(const AppendRequest& request);

  // Appends a WORKFLOW_EXECUTION_SIGNALED event to the run (default: the current run).
  [[nodiscard]] absl::StatusOr<AppendResponse> Signal(const SignalRequest& request);

 private:
  // Write gate: the namespace's record if this cluster may write to it.
  [[nodiscard]] absl::StatusOr<NamespaceRecord> CheckWritable(const std::string& name) const;
  // Appends `events` to the run; `expected_next_event_id` 0 means "whatever is next". The gate is
  // checked again under the shard's lock; `ns_at_request` only names the namespace.
  [[nodiscard]] absl::StatusOr<AppendResponse> AppendToRun(const NamespaceRecord& ns_at_request,
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
  WorkflowWriter& writer_;
  NamespaceRegistry& namespaces_;
  WriteProbe& probe_;
  Clock clock_;
};

}  // namespace xdc
