#include "protocol/conflict_resolver.h"

#include "absl/strings/str_format.h"
#include "protocol/version_history.h"
#include "protocol/workflow_state.h"

namespace xdc {

const char* ApplyActionName(ApplyAction action) {
  switch (action) {
    case ApplyAction::kApply:
      return "apply";
    case ApplyAction::kDuplicate:
      return "duplicate";
    case ApplyAction::kGap:
      return "gap";
    case ApplyAction::kFork:
      return "fork";
    case ApplyAction::kInvalid:
      return "invalid";
  }
  return "unknown";
}

absl::Status ValidateReplicationTask(const ReplicationTask& task) {
  const WorkflowKey& key = task.workflow();
  if (key.namespace_id().empty() || key.workflow_id().empty() || key.run_id().empty()) {
    return absl::InvalidArgumentError("task has an incomplete workflow key");
  }
  if (task.events_size() == 0) return absl::InvalidArgumentError("task has no events");
  VersionHistory history;
  *history.mutable_items() = task.version_history_items();
  if (absl::Status s = ValidateVersionHistory(history); !s.ok()) return s;
  const int64_t first_event_id = task.events(0).event_id();
  if (first_event_id < 1) return absl::InvalidArgumentError("task's first event id is below 1");
  for (int i = 0; i < task.events_size(); ++i) {
    const HistoryEvent& event = task.events(i);
    if (event.event_id() != first_event_id + i) {
      return absl::InvalidArgumentError(
          absl::StrFormat("task's events are not contiguous at event %d", event.event_id()));
    }
    absl::StatusOr<int64_t> version = VersionOfEvent(history, event.event_id());
    if (!version.ok() || *version != event.version()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("event %d has version %d but the task's version history disagrees",
                          event.event_id(), event.version()));
    }
  }
  if (LastEventId(history) != task.events(task.events_size() - 1).event_id()) {
    return absl::InvalidArgumentError(
        "task's version history does not end at the batch's last event");
  }
  return absl::OkStatus();
}

namespace {

ApplyDecision Reject(ApplyAction action, std::string reason) {
  ApplyDecision decision;
  decision.action = action;
  decision.reason = std::move(reason);
  return decision;
}

// The batch extends the local branch, whose next event is `next_event_id`.
ApplyDecision ExtendBranch(WorkflowMutableState state, const ReplicationTask& task) {
  const int64_t next_event_id = state.next_event_id();
  const int64_t first_event_id = task.events(0).event_id();
  const int64_t last_event_id = task.events(task.events_size() - 1).event_id();
  if (first_event_id > next_event_id) {
    ApplyDecision decision =
        Reject(ApplyAction::kGap,
               absl::StrFormat("gap: the workflow's next event is %d but the batch "
                               "starts at %d; events [%d, %d) are missing",
                               next_event_id, first_event_id, next_event_id, first_event_id));
    decision.expected_event_id = next_event_id;
    return decision;
  }
  if (last_event_id < next_event_id) {
    ApplyDecision decision = Reject(
        ApplyAction::kDuplicate, absl::StrFormat("duplicate: events [%d, %d] are already applied",
                                                 first_event_id, last_event_id));
    decision.duplicate_events = task.events_size();
    return decision;
  }
  ApplyDecision decision;
  decision.action = ApplyAction::kApply;
  decision.duplicate_events = next_event_id - first_event_id;
  for (const HistoryEvent& event : task.events()) {
    if (event.event_id() < next_event_id) continue;
    if (absl::Status s = ApplyEventToState(state, event); !s.ok()) {
      return Reject(ApplyAction::kInvalid, std::string(s.message()));
    }
    decision.events_to_write.push_back(event);
  }
  decision.new_state = std::move(state);
  return decision;
}

}  // namespace

ApplyDecision DecideApply(const std::optional<WorkflowMutableState>& local,
                          const ReplicationTask& task) {
  if (absl::Status s = ValidateReplicationTask(task); !s.ok()) {
    return Reject(ApplyAction::kInvalid, std::string(s.message()));
  }
  WorkflowMutableState state = local.has_value() ? *local : NewWorkflowState(task.workflow());
  const VersionHistory* branch = CurrentBranch(state.version_histories());
  if (branch == nullptr) {
    return Reject(ApplyAction::kInvalid, "local workflow state has no current branch");
  }
  const int64_t local_last_event_id = LastEventId(*branch);
  if (local_last_event_id == 0) return ExtendBranch(std::move(state), task);

  VersionHistory incoming;
  *incoming.mutable_items() = task.version_history_items();
  absl::StatusOr<VersionHistoryItem> lca = FindLowestCommonAncestor(*branch, incoming);
  if (!lca.ok()) {
    ApplyDecision decision =
        Reject(ApplyAction::kFork, "fork: the batch disagrees with the local branch on event 1");
    decision.lca.set_event_id(0);
    return decision;
  }
  if (lca->event_id() == local_last_event_id) return ExtendBranch(std::move(state), task);

  const int64_t last_event_id = task.events(task.events_size() - 1).event_id();
  if (last_event_id <= lca->event_id()) {
    // The whole batch lies on the prefix both branches share.
    ApplyDecision decision = Reject(
        ApplyAction::kDuplicate,
        absl::StrFormat("duplicate: events up to %d are on the shared prefix", last_event_id));
    decision.duplicate_events = task.events_size();
    return decision;
  }
  ApplyDecision decision =
      Reject(ApplyAction::kFork,
             absl::StrFormat("fork: the batch diverges from the current branch after event %d "
                             "(version %d)",
                             lca->event_id(), lca->version()));
  decision.lca = *lca;
  return decision;
}

}  // namespace xdc
