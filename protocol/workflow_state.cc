#include "protocol/workflow_state.h"

#include "absl/strings/str_format.h"
#include "protocol/version_history.h"

namespace xdc {

WorkflowMutableState NewWorkflowState(const WorkflowKey& key) {
  WorkflowMutableState state;
  *state.mutable_key() = key;
  state.set_next_event_id(1);
  state.mutable_version_histories()->add_histories();
  state.mutable_version_histories()->set_current_index(0);
  return state;
}

bool IsTerminalEvent(EventType type) {
  return type == WORKFLOW_EXECUTION_COMPLETED || type == WORKFLOW_EXECUTION_TERMINATED;
}

bool StartedAfter(const WorkflowMutableState& candidate, const WorkflowMutableState& current) {
  auto rank = [](const WorkflowMutableState& state) {
    const VersionHistory* branch = CurrentBranch(state.version_histories());
    const int64_t first_version =
        branch != nullptr && branch->items_size() > 0 ? branch->items(0).version() : -1;
    return std::make_pair(first_version, state.start_time_unix_micros());
  };
  return rank(candidate) > rank(current);
}

absl::Status ApplyEventToState(WorkflowMutableState& state, const HistoryEvent& event) {
  if (event.event_type() == EVENT_TYPE_UNSPECIFIED || !EventType_IsValid(event.event_type())) {
    return absl::InvalidArgumentError(
        absl::StrFormat("event %d has no valid event_type", event.event_id()));
  }
  if (event.event_id() != state.next_event_id()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("event %d is out of order: the workflow's next event is %d",
                        event.event_id(), state.next_event_id()));
  }
  const bool is_start = event.event_type() == WORKFLOW_EXECUTION_STARTED;
  if ((event.event_id() == 1) != is_start) {
    return absl::InvalidArgumentError(
        event.event_id() == 1
            ? "a run's first event must be WORKFLOW_EXECUTION_STARTED"
            : absl::StrFormat("WORKFLOW_EXECUTION_STARTED can only be event 1, not %d",
                              event.event_id()));
  }
  if (state.status() == WORKFLOW_STATUS_COMPLETED || state.status() == WORKFLOW_STATUS_TERMINATED) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "workflow %s run %s is closed (%s); it accepts no more events", state.key().workflow_id(),
        state.key().run_id(), WorkflowStatus_Name(state.status())));
  }
  VersionHistory* branch = MutableCurrentBranch(*state.mutable_version_histories());
  if (branch == nullptr) return absl::InternalError("workflow state has no current branch");
  VersionHistory updated = *branch;
  if (absl::Status s = AddEventToHistory(updated, event.event_id(), event.version()); !s.ok()) {
    return s;
  }
  *branch = std::move(updated);
  state.set_next_event_id(event.event_id() + 1);
  state.set_last_event_time_unix_micros(event.event_time_unix_micros());
  if (is_start) {
    state.set_status(WORKFLOW_STATUS_RUNNING);
    state.set_start_time_unix_micros(event.event_time_unix_micros());
  } else if (event.event_type() == WORKFLOW_EXECUTION_COMPLETED) {
    state.set_status(WORKFLOW_STATUS_COMPLETED);
  } else if (event.event_type() == WORKFLOW_EXECUTION_TERMINATED) {
    state.set_status(WORKFLOW_STATUS_TERMINATED);
  }
  // A closed run accepts no reapplied events either: nothing is left to reapply on this branch
  // (a switch to another branch evaluates it again).
  if (IsTerminalEvent(event.event_type())) state.set_reapply_pending(false);
  return absl::OkStatus();
}

absl::Status RebuildFromCurrentBranch(WorkflowMutableState& state,
                                      const std::vector<HistoryEvent>& events) {
  const VersionHistory* branch = CurrentBranch(state.version_histories());
  if (branch == nullptr) return absl::InternalError("workflow state has no current branch");
  WorkflowMutableState rebuilt = NewWorkflowState(state.key());
  for (const HistoryEvent& event : events) {
    if (absl::Status s = ApplyEventToState(rebuilt, event); !s.ok()) return s;
  }
  const VersionHistory* replayed = CurrentBranch(rebuilt.version_histories());
  if (replayed->items_size() != branch->items_size() ||
      LastEventId(*replayed) != LastEventId(*branch)) {
    return absl::InvalidArgumentError(
        "the current branch's events do not match its version history");
  }
  for (int i = 0; i < branch->items_size(); ++i) {
    if (replayed->items(i).event_id() != branch->items(i).event_id() ||
        replayed->items(i).version() != branch->items(i).version()) {
      return absl::InvalidArgumentError(
          "the current branch's events do not match its version history");
    }
  }
  state.set_next_event_id(rebuilt.next_event_id());
  state.set_status(rebuilt.status());
  state.set_start_time_unix_micros(rebuilt.start_time_unix_micros());
  state.set_last_event_time_unix_micros(rebuilt.last_event_time_unix_micros());
  return absl::OkStatus();
}

}  // namespace xdc
