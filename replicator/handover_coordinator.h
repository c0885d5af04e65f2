// The control plane's runtime: graceful handover (as source and as target), cancel, forced
// failover, and what `xdcctl namespace describe` shows. The rules are protocol/handover.h; this
// class does their I/O: store writes, control messages, and a thread that re-checks pending
// activations, deadlines and cancel requests every tunables.control_tick_ms.
//
// Source (the active cluster): Failover() with force=false takes every shard's lock, so no write
// is in flight, then commits the HANDOVER record and one marker per shard in one write. From then
// on the write gate (WriteService, under the shard lock) refuses writes. Past the deadline, or on
// Cancel(), it asks the target to cancel (repeated until the target's decision arrives) and stays
// in HANDOVER until then: it never guesses the outcome.
//
// Target: OnMarker() records each shard's marker in the same write as the apply progress that
// consumed it. The tick activates the proposal once protocol ActivationBlockers() and the DLQ
// check find nothing, by committing the new record and the decision together. A cancel that
// arrives first is decided CANCELLED and answered; a later one gets the same answer.
//
// Forced failover: Failover() with force=true on the target activates it at once (cancelling a
// proposal pending here) and records the failover in the namespace's history.
//
// Lock order: a WorkflowWriter shard lock, then mu_, then the registry's lock.
// Thread-safety: thread-safe.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "protocol/xdc.pb.h"
#include "replicator/clock.h"
#include "replicator/metrics.h"
#include "replicator/namespace_registry.h"
#include "replicator/tunables.h"
#include "replicator/workflow_writer.h"
#include "store/store.h"

namespace xdc {

class HandoverCoordinator {
 public:
  // `send_control` queues a control message on our own control topic.
  HandoverCoordinator(const DaemonConfig& config, const Tunables& tunables, Store& store,
                      WorkflowWriter& writer, NamespaceRegistry& namespaces, Clock clock,
                      std::function<void(ControlMessage)> send_control);
  ~HandoverCoordinator();

  // Loads the stored target states and starts the thread.
  [[nodiscard]] absl::Status Start();
  void Stop();

  // POST /v1/namespaces/{name}/failover. Graceful: this cluster must be the active one; returns
  // the HANDOVER record once it and the markers are durable. Forced: `target_cluster` must be
  // this cluster; returns the new active record.
  [[nodiscard]] absl::StatusOr<NamespaceRecord> Failover(const std::string& name,
                                                         const FailoverRequest& request);
  // POST /v1/namespaces/{name}/cancel-handover, on the source or the target. On the source it
  // asks the target; on the target it decides. Returns the record as it stands: the outcome is
  // known when the source's state leaves HANDOVER.
  [[nodiscard]] absl::StatusOr<NamespaceRecord> Cancel(const std::string& name,
                                                       const std::string& reason);
  // GET /v1/namespaces/{name}: the record, the handover as seen here, and each failover's damage
  // (reads every workflow of the namespace).
  [[nodiscard]] absl::StatusOr<DescribeNamespaceResponse> Describe(const std::string& name);

  // What /metrics shows per namespace (xdc_namespace_*).
  [[nodiscard]] std::vector<NamespaceGauges> Gauges() const;

  // Applier hooks, called on `source`'s applier thread. OnMarker runs inside the write that
  // consumes the marker (under the shard's lock) and adds the target state to it.
  void OnMarker(const std::string& source, int32_t shard, const HandoverMarker& marker,
                StoreWrite& write);
  [[nodiscard]] absl::Status OnCancel(const std::string& source, const HandoverCancel& cancel);
  [[nodiscard]] absl::Status OnDecision(const std::string& source,
                                        const HandoverDecision& decision);

 private:
  void Run();
  void Tick();
  // Target: activates `state`'s pending proposal if nothing blocks it (`blockers`, found by
  // Blockers() on a copy of `state` equal to it), or cancels it if a newer record superseded it.
  [[nodiscard]] absl::Status TryDecide(HandoverTargetState& state,
                                       const std::vector<std::string>& blockers)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Why `state`'s pending proposal waits (protocol blockers, DLQ entries, unknown namespace);
  // with `every` false, stops before the DLQ scan once there is a reason to wait. Reads the
  // store only; called without mu_ (the DLQ scan may read thousands of entries).
  [[nodiscard]] absl::StatusOr<std::vector<std::string>> Blockers(const HandoverTargetState& state,
                                                                  bool every)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Source: records that it asked the target to cancel, and sends the request.
  [[nodiscard]] absl::StatusOr<NamespaceRecord> AskTargetToCancel(const NamespaceRecord& record,
                                                                  const std::string& reason);
  // Sends (or resends) the cancel request `record` holds, with the reason stored in it.
  void SendCancel(const NamespaceRecord& record);
  // Target: decides a cancel, stores the decision if new and answers.
  [[nodiscard]] absl::Status DecideCancel(const std::string& source, const HandoverCancel& cancel)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  [[nodiscard]] absl::StatusOr<NamespaceRecord> ForceHere(const NamespaceRecord& record);
  // `target_verified_identical`: FailoverRequest's, see protocol/federation.h
  // CheckTargetHoldsHistory.
  [[nodiscard]] absl::StatusOr<NamespaceRecord> BeginHere(const NamespaceRecord& record,
                                                          const std::string& target,
                                                          int64_t timeout_ms,
                                                          bool target_verified_identical);
  void SendDecision(const HandoverDecision& decision);
  // The last time this cluster applied a task of `cluster` (0: never).
  [[nodiscard]] int64_t LastHeardFrom(const std::string& cluster) const;

  const DaemonConfig& config_;
  const Tunables& tunables_;
  Store& store_;
  WorkflowWriter& writer_;
  NamespaceRegistry& namespaces_;
  Clock clock_;
  std::function<void(ControlMessage)> send_control_;

  absl::Mutex mu_;
  std::map<std::string, HandoverTargetState> targets_ ABSL_GUARDED_BY(mu_);    // by namespace id
  std::map<std::string, int64_t> cancel_sent_micros_ ABSL_GUARDED_BY(mu_);     // by namespace id
  std::map<std::string, std::string> last_decide_error_ ABSL_GUARDED_BY(mu_);  // by namespace id
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// The failovers of `record`'s history that `cluster` completed (Metrics::ObserveFailovers).
[[nodiscard]] std::vector<CompletedFailover> FailoversCompletedBy(const NamespaceRecord& record,
                                                                  const std::string& cluster);

}  // namespace xdc
