// Conflict resolution for one replication task against one workflow run's local state.
//
// Pure: no Kafka, RocksDB, clock or threads; events are read only through EventReader. Follows
// the NDC rules in DESIGN.md:
//   1. Find the local branch with the deepest lowest common ancestor (LCA) with the task's
//      version history.
//   2. If the LCA is that branch's tail, the batch extends it: a first event below the branch's
//      next is a duplicate (only a new suffix is written), above it a gap (park, ask for a
//      resend of [next, first)), equal an append.
//   3. Otherwise the batch starts a new branch forked at LCA+1 (its prefix is shared, not
//      copied: events are stored by (event id, version)). A batch that starts after LCA+1 is a
//      gap on that new branch.
//   4. The current branch is the greatest by CompareBranches (the highest last version); a
//      change of current branch rebuilds the mutable state from the new branch's events.
//   5. Losing-branch signals, cancel requests and terminations are reapplied on the current
//      branch by the namespace's active cluster, exactly once (protocol/reapplication.h).
//
// Identity of events: only the cluster that owns a failover version writes events with it, and
// it writes them on one linear branch, so (event id, version) identifies an event's content and
// two branches that agree on (event id, version) agree on every event before it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "protocol/event_reader.h"
#include "protocol/reapplication.h"
#include "protocol/xdc.pb.h"

namespace xdc {

enum class ApplyAction {
  kApply,      // write `events_to_write` and `new_state`
  kDuplicate,  // every event is already present: drop the task
  kGap,        // events [expected_event_id, first event) of the task's branch are missing
  kInvalid,    // the task is inconsistent in itself or with the run's rules: park it
  kReadError,  // local events could not be read: nothing was decided, try again later
};

[[nodiscard]] const char* ApplyActionName(ApplyAction action);

// Where kApply put the task's events.
enum class BranchChange {
  kNone,             // no task event was new (only reapplication wrote)
  kExtendedCurrent,  // appended to the current branch
  kExtendedOther,    // appended to a non-current branch
  kForked,           // started a new branch
};

struct ApplyDecision {
  ApplyAction action = ApplyAction::kInvalid;
  std::string reason;  // human-readable; set for every action but kApply
  // kApply: the task's new events (on whichever branch), then the reapplied copies.
  std::vector<HistoryEvent> events_to_write;
  WorkflowMutableState new_state;  // kApply
  int64_t duplicate_events = 0;    // events of the task already present
  int64_t expected_event_id = 0;   // kGap: the first missing event of the task's branch
  BranchChange branch_change = BranchChange::kNone;
  bool switched_branch = false;  // kApply: the current branch changed
  ReapplyOutcome reapply;        // kApply: what reapplication did (copies also in events_to_write)
};

// Checks a task is self-consistent: a workflow key, at least one event, contiguous event ids,
// a valid version history whose last item is the batch's last event, and every event's version
// equal to the version the history gives it.
[[nodiscard]] absl::Status ValidateReplicationTask(const ReplicationTask& task);

// Decides what applying `task` does. `local` is the run's state, or nullopt when this cluster has
// never seen it; `events` reads the run's stored events; `active` is set when this cluster is the
// namespace's active cluster (reapplication happens only then).
[[nodiscard]] ApplyDecision DecideApply(const std::optional<WorkflowMutableState>& local,
                                        const ReplicationTask& task, const EventReader& events,
                                        const std::optional<ActiveContext>& active);

}  // namespace xdc
