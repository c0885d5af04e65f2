// Splitting stored events of one branch into replication tasks small enough for one Kafka message
// each: what a resend answer and a migration backfill publish. Pure.
#pragma once

#include <cstddef>
#include <vector>

#include "absl/status/statusor.h"
#include "protocol/xdc.pb.h"

namespace xdc {

// Tasks carrying `events` (consecutive events of `branch`, ascending ids) in order, each with at
// most `max_events` events and, past its first event, under `max_bytes` / 2 of event bytes; each
// task's version history is `branch` truncated at its last event. Only workflow, items and events
// are set: the caller sets shard, source, task id and time. INVALID_ARGUMENT if an event is not on
// `branch`.
[[nodiscard]] absl::StatusOr<std::vector<ReplicationTask>> SplitBranchIntoTasks(
    const WorkflowKey& key, const VersionHistory& branch, const std::vector<HistoryEvent>& events,
    size_t max_events, size_t max_bytes);

}  // namespace xdc
