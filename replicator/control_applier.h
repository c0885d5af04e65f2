// What a peer's control message does on this cluster, in one place for the live applier
// (PeerApplier, in stream order) and for an operator's retry of a parked one (DlqService), so a
// retried message has exactly the effect it would have had in the stream:
//
//   namespace_record   merged into the registry (idempotent: an older or equal record is a no-op)
//   handover_cancel    HandoverCoordinator::OnCancel: this cluster, the target, decides
//   handover_decision  HandoverCoordinator::OnDecision: this cluster, the source, learns it
//   resend_request     addressed to this cluster: the answer's replication tasks, read from the
//                      store, for the caller to queue in its outbox; addressed to another
//                      cluster: nothing
//   startup_probe      a StartupReport of what this cluster holds of the sender, for the caller
//                      to send (`reply`)
//   startup_report     addressed to this cluster: StartupChecker::OnReport
//
// Thread-safety: thread-safe (the registry, the coordinator and the store are).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "protocol/xdc.pb.h"
#include "replicator/clock.h"
#include "replicator/handover_coordinator.h"
#include "replicator/namespace_registry.h"
#include "replicator/startup_checker.h"
#include "replicator/tunables.h"
#include "store/store.h"

namespace xdc {

struct ControlOutcome {
  // A resend request addressed to this cluster: the tasks that answer it (each fits one Kafka
  // message; they go to this cluster's outbox, on `resend_shard`), or why it cannot be answered.
  std::vector<ReplicationTask> resend_answer;
  int32_t resend_shard = 0;
  std::string resend_refused;
  // A message for the caller to send on this cluster's control topic (the answer to a probe).
  std::optional<ControlMessage> reply;
};

class ControlApplier {
 public:
  ControlApplier(const DaemonConfig& config, const Tunables& tunables, Store& store,
                 NamespaceRegistry& namespaces, HandoverCoordinator& handover,
                 StartupChecker& startup, Clock clock);

  // Applies `message`, which cluster `source` sent. An error means a store write failed and the
  // message's effect is not (wholly) durable: the caller must not move past it (the applier
  // halts, a DLQ entry stays). Applying a message twice is harmless.
  [[nodiscard]] absl::StatusOr<ControlOutcome> Apply(const std::string& source,
                                                     const ControlMessage& message) const;

 private:
  // The tasks that resend events [first, next) of the request's branch, or why not.
  [[nodiscard]] absl::StatusOr<std::vector<ReplicationTask>> ResendAnswer(
      const ResendRequest& request, int32_t shard) const;

  const DaemonConfig& config_;
  const Tunables& tunables_;
  Store& store_;
  NamespaceRegistry& namespaces_;
  HandoverCoordinator& handover_;
  StartupChecker& startup_;
  Clock clock_;
};

}  // namespace xdc
