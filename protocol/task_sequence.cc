#include "protocol/task_sequence.h"

#include <algorithm>

namespace xdc {
namespace {

void EnforceBound(TaskSequence& sequence) {
  if (sequence.missing_size() <= kMaxMissingTaskRanges) return;
  TaskRange* lowest = sequence.mutable_missing(0);
  lowest->set_next(sequence.missing(1).next());
  sequence.mutable_missing()->DeleteSubrange(1, 1);
}

}  // namespace

void RecordTask(TaskSequence& sequence, int64_t task_id) {
  if (task_id >= sequence.next_task_id()) {
    if (task_id > sequence.next_task_id()) {
      TaskRange* gap = sequence.add_missing();
      gap->set_first(sequence.next_task_id());
      gap->set_next(task_id);
      EnforceBound(sequence);
    }
    sequence.set_next_task_id(task_id + 1);
    return;
  }
  // An older id: a resend or a duplicate. Fill it in if it was missing.
  auto& missing = *sequence.mutable_missing();
  for (int i = 0; i < missing.size(); ++i) {
    TaskRange& range = missing[i];
    if (task_id < range.first() || task_id >= range.next()) continue;
    if (range.next() - range.first() == 1) {
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
    return;
  }
}

int64_t MissingTaskCount(const TaskSequence& sequence) {
  int64_t count = 0;
  for (const TaskRange& range : sequence.missing()) count += range.next() - range.first();
  return count;
}

int64_t AcknowledgeMissing(TaskSequence& sequence) {
  const int64_t count = MissingTaskCount(sequence);
  sequence.clear_missing();
  sequence.set_acknowledged(sequence.acknowledged() + count);
  return count;
}

}  // namespace xdc
