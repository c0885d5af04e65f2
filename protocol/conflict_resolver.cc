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
    case ApplyAction::kInvalid:
      return "invalid";
    case ApplyAction::kReadError:
      return "read_error";
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
    if (!ContainsEvent(history, event.event_id(), event.version())) {
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

// The local branch the task belongs to: the one with the deepest LCA, preferring a branch whose
// tail is the LCA (the task extends it).
struct BranchMatch {
  int index = 0;
  int64_t lca_event_id = 0;
  bool extends = false;  // the LCA is the branch's tail
};

// INVALID_ARGUMENT names a malformed local branch (`incoming` was validated with the task).
absl::StatusOr<BranchMatch> MatchBranch(const VersionHistories& histories,
                                        const VersionHistory& incoming) {
  BranchMatch best{.index = -1, .lca_event_id = -1};
  for (int i = 0; i < histories.histories_size(); ++i) {
    const VersionHistory& branch = histories.histories(i);
    int64_t lca = 0;
    absl::StatusOr<VersionHistoryItem> found = FindLowestCommonAncestor(branch, incoming);
    if (found.ok()) {
      lca = found->event_id();
    } else if (!absl::IsNotFound(found.status())) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "local branch %d of the run is malformed: %s", i, found.status().message()));
    }
    const bool extends = lca == LastEventId(branch);
    if (lca > best.lca_event_id || (lca == best.lca_event_id && extends && !best.extends)) {
      best = {.index = i, .lca_event_id = lca, .extends = extends};
    }
  }
  return best;
}

// The current branch's events, in order (new ones come from the overlay in `events`).
absl::StatusOr<std::vector<HistoryEvent>> ReadCurrentBranch(const WorkflowMutableState& state,
                                                            const EventReader& events) {
  const VersionHistory& branch = *CurrentBranch(state.version_histories());
  std::vector<HistoryEvent> result;
  for (int64_t id = 1; id <= LastEventId(branch); ++id) {
    absl::StatusOr<HistoryEvent> event = events.Read(id, *VersionOfEvent(branch, id));
    if (!event.ok()) return event.status();
    result.push_back(*std::move(event));
  }
  return result;
}

}  // namespace

ApplyDecision DecideApply(const std::optional<WorkflowMutableState>& local,
                          const ReplicationTask& task, const EventReader& events,
                          const std::optional<ActiveContext>& active) {
  if (absl::Status s = ValidateReplicationTask(task); !s.ok()) {
    return Reject(ApplyAction::kInvalid, std::string(s.message()));
  }
  WorkflowMutableState state = local.has_value() ? *local : NewWorkflowState(task.workflow());
  VersionHistories& histories = *state.mutable_version_histories();
  if (CurrentBranch(histories) == nullptr) {
    return Reject(ApplyAction::kInvalid, "local workflow state has no current branch");
  }
  VersionHistory incoming;
  *incoming.mutable_items() = task.version_history_items();
  const int64_t first_event_id = task.events(0).event_id();
  const int64_t last_event_id = task.events(task.events_size() - 1).event_id();

  const absl::StatusOr<BranchMatch> matched = MatchBranch(histories, incoming);
  if (!matched.ok()) return Reject(ApplyAction::kInvalid, std::string(matched.status().message()));
  const BranchMatch& match = *matched;
  const int64_t next_event_id = match.lca_event_id + 1;  // first event the task may add
  if (last_event_id < next_event_id) {
    ApplyDecision decision = Reject(
        ApplyAction::kDuplicate, absl::StrFormat("duplicate: events [%d, %d] are already applied",
                                                 first_event_id, last_event_id));
    decision.duplicate_events = task.events_size();
    return decision;
  }
  if (first_event_id > next_event_id) {
    ApplyDecision decision = Reject(
        ApplyAction::kGap,
        absl::StrFormat("gap: the %s next event is %d but the batch starts at %d; events [%d, %d) "
                        "are missing",
                        match.extends ? "branch's" : "new branch's", next_event_id, first_event_id,
                        next_event_id, first_event_id));
    decision.expected_event_id = next_event_id;
    return decision;
  }

  ApplyDecision decision;
  decision.action = ApplyAction::kApply;
  decision.duplicate_events = next_event_id - first_event_id;
  MapEventReader overlay(&events);
  const int old_current = histories.current_index();
  if (match.extends && match.index == old_current) {
    decision.branch_change = BranchChange::kExtendedCurrent;
    for (const HistoryEvent& event : task.events()) {
      if (event.event_id() < next_event_id) continue;
      if (absl::Status s = ApplyEventToState(state, event); !s.ok()) {
        return Reject(ApplyAction::kInvalid, std::string(s.message()));
      }
      decision.events_to_write.push_back(event);
      overlay.Add(event);  // reapplication below reads the current branch, these events included
    }
  } else {
    // The task's branch is not the current one: record it (its items agree with the local
    // branch up to the LCA), then see whether it now wins.
    for (const HistoryEvent& event : task.events()) {
      if (event.event_id() < next_event_id) continue;
      decision.events_to_write.push_back(event);
      overlay.Add(event);
    }
    int index = match.index;
    if (match.extends) {
      decision.branch_change = BranchChange::kExtendedOther;
    } else {
      decision.branch_change = BranchChange::kForked;
      index = histories.histories_size();
      histories.add_histories();
    }
    *histories.mutable_histories(index) = incoming;
    if (CompareBranches(incoming, histories.histories(old_current)) > 0) {
      histories.set_current_index(index);
      decision.switched_branch = true;
      absl::StatusOr<std::vector<HistoryEvent>> branch_events = ReadCurrentBranch(state, overlay);
      if (!branch_events.ok()) {
        return Reject(ApplyAction::kReadError, absl::StrFormat("reading the new current branch: %s",
                                                               branch_events.status().message()));
      }
      if (absl::Status s = RebuildFromCurrentBranch(state, *branch_events); !s.ok()) {
        return Reject(ApplyAction::kInvalid,
                      absl::StrFormat("switching to the task's branch: %s", s.message()));
      }
    }
  }

  // Reapplication: the set of losing-branch events only grows when a non-current branch grows or
  // the current branch changes; otherwise there is only work if some was left for us.
  if (decision.branch_change != BranchChange::kExtendedCurrent || state.reapply_pending()) {
    absl::StatusOr<ReapplyOutcome> outcome = Reapply(state, overlay, active);
    if (!outcome.ok()) {
      return Reject(ApplyAction::kReadError, std::string(outcome.status().message()));
    }
    decision.reapply = *std::move(outcome);
    for (const HistoryEvent& copy : decision.reapply.appended) {
      decision.events_to_write.push_back(copy);
    }
  }
  decision.new_state = std::move(state);
  return decision;
}

}  // namespace xdc
