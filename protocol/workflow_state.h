// Workflow mutable state transitions. Pure functions shared by the active write path and the
// standby apply path, so both derive identical state from identical events.
#pragma once

#include <vector>

#include "absl/status/status.h"
#include "protocol/xdc.pb.h"

namespace xdc {

// A workflow that has no events yet: one empty current branch, next_event_id 1.
[[nodiscard]] WorkflowMutableState NewWorkflowState(const WorkflowKey& key);

// True for events after which a run accepts no further events.
[[nodiscard]] bool IsTerminalEvent(EventType type);

// True when run `candidate` started after run `current` of the same workflow: a higher version
// of its first event, or the same version and a later start time. A workflow's runs start one
// after another on the active cluster, so this orders them the same way on every cluster.
[[nodiscard]] bool StartedAfter(const WorkflowMutableState& candidate,
                                const WorkflowMutableState& current);

// Applies `event`, which must be the current branch's next event, to `state`: advances
// next_event_id, the version history and the status. Rejects (INVALID_ARGUMENT /
// FAILED_PRECONDITION) an event out of order, a run that does not start with
// WORKFLOW_EXECUTION_STARTED, a second start, an unspecified type, or any event after the run
// completed or was terminated. A terminal event also clears reapply_pending: a closed run takes
// no reapplied events. On error `state` is unchanged.
[[nodiscard]] absl::Status ApplyEventToState(WorkflowMutableState& state,
                                             const HistoryEvent& event);

// Rebuilds the fields derived from the current branch (next_event_id, status, start and last
// event times) from `events`, that branch's events 1..n in order, after the current branch
// changed. Keeps the key, the version histories and reapply_pending. Rejects events that do not
// match the branch's version history or break the rules of ApplyEventToState; on error `state` is
// unchanged.
[[nodiscard]] absl::Status RebuildFromCurrentBranch(WorkflowMutableState& state,
                                                    const std::vector<HistoryEvent>& events);

}  // namespace xdc
