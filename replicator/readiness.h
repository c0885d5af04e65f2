// Readiness (GET /readyz): may a load balancer or an operator send this cluster traffic now?
//
// Pure: built from a status snapshot and the outcome of a Kafka reachability probe, so it can be
// tested without a daemon. Ready means every check passes:
//   store      the store is open and no write failed (a failed write latches the write path)
//   kafka      the Kafka cluster answered a metadata request
//   appliers   no peer applier halted
//   caught_up  no peer shard is more than `max_lag_seconds` behind
//   startup_check  the startup check is not waiting (docs/control-plane.md#startup-check)
#pragma once

#include "absl/status/status.h"
#include "protocol/xdc.pb.h"

namespace xdc {

[[nodiscard]] ReadinessResponse EvaluateReadiness(const StatusResponse& status,
                                                  const absl::Status& kafka,
                                                  double max_lag_seconds);

}  // namespace xdc
