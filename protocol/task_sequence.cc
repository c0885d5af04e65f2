#include "protocol/task_sequence.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_format.h"

namespace xdc {
namespace {

int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) {
    return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  }
  return sum;
}

void EnforceBound(TaskSequence& sequence) {
  if (sequence.missing_size() <= kMaxMissingTaskRanges) return;
  TaskRange* lowest = sequence.mutable_missing(0);
  lowest->set_next(sequence.missing(1).next());
  sequence.mutable_missing()->DeleteSubrange(1, 1);
}

}  // namespace

absl::Status ValidateTaskId(int64_t task_id) {
  if (task_id < 0 || task_id > kMaxTaskId) {
    return absl::InvalidArgumentError(
        absl::StrFormat("task id %d is outside [0, %d] (the maximum task id): refused as crafted "
                        "or corrupt, not counted as missing tasks",
                        task_id, kMaxTaskId));
  }
  return absl::OkStatus();
}

absl::Status RecordTask(TaskSequence& sequence, int64_t task_id) {
  if (absl::Status s = ValidateTaskId(task_id); !s.ok()) return s;
  if (task_id >= sequence.next_task_id()) {
    if (task_id > sequence.next_task_id()) {
      TaskRange* gap = sequence.add_missing();
      gap->set_first(sequence.next_task_id());
      gap->set_next(task_id);
      EnforceBound(sequence);
    }
    sequence.set_next_task_id(task_id + 1);  // task_id <= kMaxTaskId: no overflow
    return absl::OkStatus();
  }
  // An older id: a resend or a duplicate. Fill it in if it was missing.
  auto& missing = *sequence.mutable_missing();
  for (int i = 0; i < missing.size(); ++i) {
    TaskRange& range = missing[i];
    if (task_id < range.first() || task_id >= range.next()) continue;
    if (task_id == range.first() && task_id + 1 == range.next()) {  // a range of one id
      missing.DeleteSubrange(i, 1);
    } else if (task_id == range.first()) {
      range.set_first(task_id + 1);
    } else if (task_id == range.next() - 1) {
      range.set_next(task_id);
    } else {
      TaskRange upper;
      upper.set_first(task_id + 1);
      upper.set_next(range.next());
      range.set_next(task_id);
      *missing.Add() = upper;
      // Keep ascending order: move the new range right after `range`.
      for (int j = missing.size() - 1; j > i + 1; --j) missing.SwapElements(j, j - 1);
      EnforceBound(sequence);
    }
    return absl::OkStatus();
  }
  return absl::OkStatus();
}

int64_t MissingTaskCount(const TaskSequence& sequence) {
  int64_t count = 0;
  for (const TaskRange& range : sequence.missing()) {
    // Ranges come from RecordTask, within [0, kMaxTaskId + 1]; a stored sequence that is not
    // (written by an older version, or corrupt) saturates rather than wrapping around.
    int64_t size = 0;
    if (__builtin_sub_overflow(range.next(), range.first(), &size)) {
      size = std::numeric_limits<int64_t>::max();
    }
    count = SaturatingAdd(count, std::max<int64_t>(0, size));
  }
  return count;
}

int64_t AcknowledgeMissing(TaskSequence& sequence) {
  const int64_t count = MissingTaskCount(sequence);
  sequence.clear_missing();
  sequence.set_acknowledged(SaturatingAdd(sequence.acknowledged(), count));
  return count;
}

}  // namespace xdc
