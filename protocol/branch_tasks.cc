#include "protocol/branch_tasks.h"

#include "protocol/version_history.h"

namespace xdc {

absl::StatusOr<std::vector<ReplicationTask>> SplitBranchIntoTasks(
    const WorkflowKey& key, const VersionHistory& branch, const std::vector<HistoryEvent>& events,
    size_t max_events, size_t max_bytes) {
  std::vector<ReplicationTask> tasks;
  size_t begin = 0;
  while (begin < events.size()) {
    ReplicationTask task;
    *task.mutable_workflow() = key;
    size_t end = begin;
    size_t bytes = 0;
    while (end < events.size() && end - begin < max_events &&
           (end == begin || bytes + events[end].ByteSizeLong() < max_bytes / 2)) {
      bytes += events[end].ByteSizeLong();
      *task.add_events() = events[end++];
    }
    absl::StatusOr<VersionHistory> items = TruncateHistory(branch, events[end - 1].event_id());
    if (!items.ok()) return items.status();
    *task.mutable_version_history_items() = items->items();
    tasks.push_back(std::move(task));
    begin = end;
  }
  return tasks;
}

}  // namespace xdc
