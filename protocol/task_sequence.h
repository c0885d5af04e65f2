// Continuity of one source's task stream on one shard. Pure.
//
// The source assigns task ids densely per shard in commit order (0, 1, 2, ...) and publishes
// them in order, resending from its first unacknowledged task after a failed delivery. So at the
// receiver, a task id above the highest seen so far + 1 means tasks in between are missing; they
// may still arrive (a resend after a delivery timeout) or never will (Kafka retention, a
// recreated topic, lost data, or a corrupt message whose content never arrived intact).
// TaskSequence records the ids skipped over until they arrive, so operators see what a cluster
// has not received instead of it silently missing.
#pragma once

#include <cstdint>

#include "protocol/xdc.pb.h"

namespace xdc {

// Ranges kept at most; past it the two lowest are merged (overstating, never understating).
inline constexpr int kMaxMissingTaskRanges = 64;

// Records that `task_id` arrived.
void RecordTask(TaskSequence& sequence, int64_t task_id);

// Number of task ids skipped over and not yet received.
[[nodiscard]] int64_t MissingTaskCount(const TaskSequence& sequence);

// Declares every missing task id lost for good (an operator's decision, after checking that no
// run differs): they leave `missing` and are added to `acknowledged`. A lost id that arrives
// later anyway is recorded as a duplicate would be. Returns how many were declared.
int64_t AcknowledgeMissing(TaskSequence& sequence);

}  // namespace xdc
