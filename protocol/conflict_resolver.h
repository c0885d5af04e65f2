// Conflict resolution for one replication task against one workflow's local state.
//
// Pure: no Kafka, RocksDB, clock or threads. Follows the NDC rules in DESIGN.md: find the lowest
// common ancestor (LCA) of the local current branch and the task's version history; if the LCA is
// the local tail the batch extends the branch (append, duplicate or gap), otherwise it belongs on
// another branch (fork).
//
// Identity of events: only the cluster that owns a failover version writes events with it, and
// it writes them on one linear branch, so (event id, version) identifies an event's content. An
// overlap whose versions agree is therefore identical and can be dropped without reading it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "protocol/xdc.pb.h"

namespace xdc {

enum class ApplyAction {
  kApply,      // write `events_to_write` and `new_state`
  kDuplicate,  // every event is already present: drop the task
  kGap,        // events [expected_event_id, first event) are missing: park, ask for a resend
  kFork,       // the batch diverges from the current branch after `lca`: needs a new branch
  kInvalid,    // the task is inconsistent in itself: park it
};

[[nodiscard]] const char* ApplyActionName(ApplyAction action);

struct ApplyDecision {
  ApplyAction action = ApplyAction::kInvalid;
  std::string reason;                         // human-readable; set for every action but kApply
  std::vector<HistoryEvent> events_to_write;  // kApply: the new suffix of the batch
  WorkflowMutableState new_state;             // kApply: the state after those events
  int64_t duplicate_events = 0;               // events of the task already present
  int64_t expected_event_id = 0;              // kGap: the local branch's next event id
  VersionHistoryItem lca;                     // kFork
};

// Checks a task is self-consistent: a workflow key, at least one event, contiguous event ids,
// a valid version history whose last item is the batch's last event, and every event's version
// equal to the version the history gives it.
[[nodiscard]] absl::Status ValidateReplicationTask(const ReplicationTask& task);

// Decides what applying `task` to the workflow does. `local` is the workflow's current mutable
// state, or nullopt when this cluster has never seen the workflow.
[[nodiscard]] ApplyDecision DecideApply(const std::optional<WorkflowMutableState>& local,
                                        const ReplicationTask& task);

}  // namespace xdc
