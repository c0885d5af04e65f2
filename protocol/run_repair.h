// The repair rule: when a cluster may replace its copy of a workflow run with a copy the
// namespace's active cluster sent (a RunRepair task, from `xdcctl migration verify --repair`).
//
// A resent batch whose overlap with the local events is not identical is, for the conflict
// resolver, an inconsistency (protocol/conflict_resolver.h): a replicated task never overwrites
// an event. A repair does, and so it must never destroy the only copy of an acknowledged write:
//
//   1. The sender must be the namespace's active cluster in THIS cluster's record: active_cluster,
//      owner of the record's failover version, state ACTIVE (not in a handover).
//   2. The copy must be complete and self-consistent: its key is the task's workflow, every
//      version history is valid and every event of every branch is in it with the version its
//      branch gives it; a current index that names a branch.
//   3. Every local event (on any local branch) that the copy does not hold identically must be of
//      a version the sender owns. Only a version's owner writes events with it, so for those the
//      sender's copy is authoritative and a differing local event is a corrupted copy. An event of
//      another cluster's version that the copy lacks or holds differently may be the only copy of
//      a write acknowledged by that cluster: the repair is refused (replicate it to the sender
//      first, e.g. by a resend, then verify and repair again).
//
// Then the run's state becomes the copy's and its events exactly the copy's (the old ones are
// deleted in the same write).
//
// Pure: no I/O, clock or threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "protocol/event_reader.h"
#include "protocol/xdc.pb.h"

namespace xdc {

enum class RepairAction {
  kReplace,    // write `new_state` and `events`, deleting the run's other stored events
  kRefuse,     // the rule forbids it (reason says why); nothing changes
  kReadError,  // a local event could not be read: nothing was decided, try again later
};

struct RepairDecision {
  RepairAction action = RepairAction::kRefuse;
  std::string reason;  // set unless kReplace
  WorkflowMutableState new_state;
  std::vector<HistoryEvent> events;   // every event of the copy's branches, once
  int64_t local_events_replaced = 0;  // local events the copy did not hold identically
};

// Who may send a repair, as this cluster sees the namespace.
struct RepairAuthority {
  const NamespaceRecord* ns = nullptr;  // this cluster's record; nullptr: unknown namespace
  int64_t sender_initial_version = 0;   // the sender's initial_failover_version
  int64_t failover_version_increment = 0;
};

// Decides whether `task` (with a RunRepair, sent by task.source_cluster()) may replace the local
// run `local` (nullopt: absent here), whose events `local_events` reads.
[[nodiscard]] RepairDecision DecideRepair(const std::optional<WorkflowMutableState>& local,
                                          const EventReader& local_events,
                                          const ReplicationTask& task,
                                          const RepairAuthority& authority);

}  // namespace xdc
