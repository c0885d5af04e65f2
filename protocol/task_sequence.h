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

#include "absl/status/status.h"
#include "protocol/xdc.pb.h"

namespace xdc {

// Ranges kept at most; past it the two lowest are merged (overstating, never understating).
inline constexpr int kMaxMissingTaskRanges = 64;

// The highest task id a stream may carry: 2^62, more than a million tasks a second for 146,000
// years, and far enough below INT64_MAX that next_task_id (id + 1) and every count of ids fit.
// A peer's task above it is crafted or corrupt: refused where it is received (protocol/
// input_bounds.h), never counted as billions of missing tasks.
inline constexpr int64_t kMaxTaskId = int64_t{1} << 62;

// INVALID_ARGUMENT (naming the bound) unless 0 <= task_id <= kMaxTaskId.
[[nodiscard]] absl::Status ValidateTaskId(int64_t task_id);

// Records that `task_id` arrived. INVALID_ARGUMENT, and `sequence` unchanged, for an id that
// ValidateTaskId refuses.
[[nodiscard]] absl::Status RecordTask(TaskSequence& sequence, int64_t task_id);

// Number of task ids skipped over and not yet received; INT64_MAX at most (a corrupt stored
// sequence saturates instead of overflowing).
[[nodiscard]] int64_t MissingTaskCount(const TaskSequence& sequence);

// Declares every missing task id lost for good (an operator's decision, after checking that no
// run differs): they leave `missing` and are added to `acknowledged` (saturating at INT64_MAX).
// A lost id that arrives later anyway is recorded as a duplicate would be. Returns how many were
// declared.
int64_t AcknowledgeMissing(TaskSequence& sequence);

}  // namespace xdc
