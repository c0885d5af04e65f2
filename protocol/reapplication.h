// Reapplication of outside input from losing branches (DESIGN.md "Conflict resolution", rule 5).
//
// When a workflow has more than one branch, events of a non-current (losing) branch after its
// lowest common ancestor with the current branch are not part of the workflow's history any more.
// Those that carry input from outside the workflow — signals, cancel requests and operator
// terminations — must not be lost: the namespace's active cluster appends a copy of each to the
// current branch, with its own failover version. Timers and activity results are dropped (they
// stay on their branch).
//
// Exactly once: a copy records its origin (run, event id, version) in `reapplied_from`; a copy of
// a copy keeps the first origin. An origin already present on the current branch (as the event
// itself or as a copy) is not reapplied again, so every cluster, every retry and every later
// branch switch agree on what is still to do. The rule is a function of the branches alone,
// which is what makes it safe to evaluate again at any time. A losing-branch event of a client
// request (HistoryEvent.request) whose request id is already on the current branch after the fork
// (the client retried it on the new active cluster) is not reapplied either, and of several
// losing-branch events of one request only one is; a copy keeps the request id.
//
// Pure: reads events only through EventReader; no clock (the caller passes the time).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "protocol/event_reader.h"
#include "protocol/xdc.pb.h"

namespace xdc {

// Signals, cancel requests and terminations: input from outside the workflow.
[[nodiscard]] bool IsReapplicable(EventType type);

// The origin of `event` of `run_id`: its reapplied_from if it is a copy, else the event itself.
[[nodiscard]] EventOrigin OriginOf(const std::string& run_id, const HistoryEvent& event);

// The copies one Reapply() call appends go out as one replication task, which must fit one Kafka
// message (replicator/tunables.h max_task_bytes, 900 KiB, and max_events_per_append, 1000): the
// rest stay pending for the next call. The byte bound counts the copies alone and leaves the
// rest of max_task_bytes to the task's key and version-history items.
inline constexpr size_t kMaxReappliedCopiesPerTask = 1000;
inline constexpr size_t kMaxReappliedBytesPerTask = 512 << 10;

// Given when this cluster is the namespace's active cluster (and not in handover).
struct ActiveContext {
  int64_t failover_version = 0;  // the namespace's version, owned by this cluster
  int64_t now_unix_micros = 0;   // event time of reapplied events
};

struct ReapplyOutcome {
  std::vector<HistoryEvent> appended;  // copies appended to the current branch
  int64_t dropped_closed = 0;          // events that could not be reapplied: the run had closed
  // Events left for the active cluster to reapply: not active here, or (active) more than one
  // task's worth, so that the caller calls again once `appended` is written.
  bool pending = false;
};

// The losing-branch events whose origin is not on the current branch, deduplicated by origin:
// signals and cancel requests by (version, event id) of their origin, then terminations.
[[nodiscard]] absl::StatusOr<std::vector<HistoryEvent>> FindEventsToReapply(
    const WorkflowMutableState& state, const EventReader& events);

// Brings `state` up to date with the rule above. With `active` whose version is at least the
// current branch's last version, appends copies of FindEventsToReapply's events to the current
// branch (stopping, and counting the rest as dropped_closed, once the run is closed), at most
// kMaxReappliedCopiesPerTask copies of kMaxReappliedBytesPerTask bytes in all; whatever is left
// keeps state.reapply_pending set. Otherwise only records in state.reapply_pending whether
// something is left to do. Fails only when events cannot be read; then `state` is unchanged.
[[nodiscard]] absl::StatusOr<ReapplyOutcome> Reapply(WorkflowMutableState& state,
                                                     const EventReader& events,
                                                     const std::optional<ActiveContext>& active);

}  // namespace xdc
