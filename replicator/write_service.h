// The active write path: appends and signals, behind the namespace write gate.
//
// A write is accepted only on the cluster that owns the namespace's current failover version,
// is not in handover and whose startup check lets it write (replicator/startup_checker.h);
// otherwise FAILED_PRECONDITION naming the active cluster (attached as the kActiveClusterPayload
// payload), or UNAVAILABLE marked retryable during a handover. The gate is checked under the
// shard's lock, which a handover takes to enter HANDOVER: every accepted write is ordered before
// the handover's markers.
//
// Concurrency: appends go through the WorkflowWriter, which serialises them with every other
// write of the same shard (applied tasks included) and lets concurrent appends share an fsync.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "protocol/xdc.pb.h"
#include "replicator/api_errors.h"
#include "replicator/clock.h"
#include "replicator/metrics.h"
#include "replicator/namespace_registry.h"
#include "replicator/startup_checker.h"
#include "replicator/tunables.h"
#include "replicator/workflow_writer.h"

namespace xdc {

// AppendRequest.request_id and SignalRequest.request_id: at most this many bytes.
inline constexpr size_t kMaxRequestIdBytes = 128;

// Idempotent writes (docs/api.md#idempotent-writes): a request with a request id writes its events
// with a HistoryEvent.request tag, which the store indexes and peers apply with the events. A
// later request with the same id in the namespace, on any cluster that holds the events (a standby
// included), is answered with the original outcome (AppendResponse.replayed) and writes nothing,
// if it asks for the same thing; else FAILED_PRECONDITION naming what differs. While the first
// request is still being written, a retry gets a retryable UNAVAILABLE.
class WriteService {
 public:
  WriteService(const DaemonConfig& config, const Tunables& tunables, WorkflowWriter& writer,
               NamespaceRegistry& namespaces, const StartupChecker& startup, WriteProbe& probe,
               Clock clock);

  // Appends events to a run. expected_next_event_id must equal the run's next event id (1 for a
  // new run, whose run id is generated when not given).
  [[nodiscard]] absl::StatusOr<AppendResponse> Append(const AppendRequest& request);

  // Appends each of `appends` in order, as Append would, one result each: not atomic, but all
  // are queued before any is waited for, so they share fsyncs. A later append of the same run
  // builds on an earlier one of the batch when both name the run (an append without a run id
  // that continues a workflow the batch starts is refused: it would continue the stored run).
  // INVALID_ARGUMENT (nothing written) for an empty batch or one of more than
  // `max_appends_per_batch`.
  [[nodiscard]] absl::StatusOr<std::vector<absl::StatusOr<AppendResponse>>> AppendBatch(
      const google::protobuf::RepeatedPtrField<AppendRequest>& appends);

  // Appends a WORKFLOW_EXECUTION_SIGNALED event to the run (default: the current run).
  [[nodiscard]] absl::StatusOr<AppendResponse> Signal(const SignalRequest& request);

 private:
  // An append checked and queued to the store, not yet durable.
  struct QueuedAppend {
    std::unique_ptr<WorkflowWriter::Pending> pending;
    AppendResponse response;  // the answer once `pending` is durable
  };
  // What the client asked for, as it asked (a retry must ask for the same).
  struct ClientRequest {
    std::string request_id;  // empty: not idempotent
    std::string run_id;      // empty: the workflow's current run, or a new one
  };

  // Write gate: the namespace's record if this cluster may write to it.
  [[nodiscard]] absl::StatusOr<NamespaceRecord> CheckWritable(const std::string& name) const;
  // Queues `events` for the run; `expected_next_event_id` 0 means "whatever is next". The gate is
  // checked again under the shard's lock; `ns_at_request` only names the namespace.
  [[nodiscard]] absl::StatusOr<QueuedAppend> QueueToRun(const NamespaceRecord& ns_at_request,
                                                        const ClientRequest& request,
                                                        WorkflowKey key,
                                                        int64_t expected_next_event_id,
                                                        const std::vector<NewEvent>& events);
  // The original answer of `request` (replayed) if a durable write carried its id, nothing if
  // none did. Under the shard's lock (`view`).
  [[nodiscard]] absl::StatusOr<std::optional<AppendResponse>> Replay(
      WorkflowWriter::View& view, const NamespaceRecord& ns, const ClientRequest& request,
      const WorkflowKey& key, int64_t expected_next_event_id,
      const std::vector<NewEvent>& events) const;
  // The namespace a request names: writable here, or (with a request id, which a standby can
  // answer) any known namespace; the gate is checked under the shard's lock after Replay.
  [[nodiscard]] absl::StatusOr<NamespaceRecord> NamespaceFor(const std::string& name,
                                                             const std::string& request_id) const;
  // OK if `started`, a run this append starts, becomes its workflow's current run by the rule
  // every cluster applies (StartedAfter); else FAILED_PRECONDITION naming the newer run. Under
  // the shard's lock (`view`).
  [[nodiscard]] absl::Status CheckBecomesCurrent(WorkflowWriter::View& view,
                                                 const NamespaceRecord& ns,
                                                 const WorkflowMutableState& started) const;
  // Checks an append request and queues it.
  [[nodiscard]] absl::StatusOr<QueuedAppend> QueueAppend(const AppendRequest& request);
  // Waits until a queued append is durable; its answer, or why it failed.
  [[nodiscard]] absl::StatusOr<AppendResponse> Finish(absl::StatusOr<QueuedAppend> queued);
  [[nodiscard]] absl::StatusOr<AppendResponse> SignalUncounted(const SignalRequest& request);
  // Counts the request (and its events) in the write probe.
  [[nodiscard]] absl::StatusOr<AppendResponse> Counted(absl::StatusOr<AppendResponse> result);

  const DaemonConfig& config_;
  const Tunables& tunables_;
  const int64_t initial_failover_version_;
  WorkflowWriter& writer_;
  NamespaceRegistry& namespaces_;
  const StartupChecker& startup_;
  WriteProbe& probe_;
  Clock clock_;
};

}  // namespace xdc
