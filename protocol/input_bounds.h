// Bounds on the numbers in a peer's message, checked where the message is accepted: by the
// applier before a task is counted or applied and before a control message is merged or decided
// (replicator/peer_applier.cc), and again when an operator retries a DLQ entry
// (replicator/dlq_service.cc). Pure.
//
// A task id above kMaxTaskId (protocol/task_sequence.h) or a failover version above
// kMaxFailoverVersion (protocol/failover_version.h) cannot come from a real stream: it is crafted
// or corrupt. Accepted, it would overflow the arithmetic on it (next_task_id, the next failover
// version) or count ~9e18 tasks as missing, which blocks every handover. Refused, the message is
// parked in the DLQ with the error, like any other invalid input: never dropped, never applied.
#pragma once

#include "absl/status/status.h"
#include "protocol/xdc.pb.h"

namespace xdc {

// INVALID_ARGUMENT, naming the field and the bound, unless the task's id, the versions of its
// events and version history, and its handover marker's versions and watermarks are in bounds.
[[nodiscard]] absl::Status ValidateTaskBounds(const ReplicationTask& task);

// INVALID_ARGUMENT, naming the field and the bound, unless the versions of a namespace record
// (ValidateRecordVersions), a handover cancel or a handover decision are in bounds.
[[nodiscard]] absl::Status ValidateControlBounds(const ControlMessage& message);

}  // namespace xdc
