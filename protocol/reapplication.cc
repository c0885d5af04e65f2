#include "protocol/reapplication.h"

#include <algorithm>
#include <set>
#include <tuple>

#include "absl/strings/str_format.h"
#include "protocol/version_history.h"
#include "protocol/workflow_state.h"

namespace xdc {
namespace {

using OriginKey = std::tuple<std::string, int64_t, int64_t>;  // run, version, event id

OriginKey KeyOf(const EventOrigin& origin) {
  return {origin.run_id(), origin.version(), origin.event_id()};
}

// The event id up to which `branch` agrees with `current`; 0 if they share nothing.
int64_t SharedPrefix(const VersionHistory& branch, const VersionHistory& current) {
  absl::StatusOr<VersionHistoryItem> lca = FindLowestCommonAncestor(branch, current);
  return lca.ok() ? lca->event_id() : 0;
}

absl::StatusOr<HistoryEvent> ReadOnBranch(const EventReader& events, const VersionHistory& branch,
                                          int64_t event_id) {
  absl::StatusOr<int64_t> version = VersionOfEvent(branch, event_id);
  if (!version.ok()) return version.status();
  absl::StatusOr<HistoryEvent> event = events.Read(event_id, *version);
  if (!event.ok()) {
    return absl::Status(event.status().code(),
                        absl::StrFormat("reading event %d (version %d) for reapplication: %s",
                                        event_id, *version, event.status().message()));
  }
  return event;
}

}  // namespace

bool IsReapplicable(EventType type) {
  return type == WORKFLOW_EXECUTION_SIGNALED || type == WORKFLOW_EXECUTION_CANCEL_REQUESTED ||
         type == WORKFLOW_EXECUTION_TERMINATED;
}

EventOrigin OriginOf(const std::string& run_id, const HistoryEvent& event) {
  if (event.has_reapplied_from()) return event.reapplied_from();
  EventOrigin origin;
  origin.set_run_id(run_id);
  origin.set_event_id(event.event_id());
  origin.set_version(event.version());
  return origin;
}

absl::StatusOr<std::vector<HistoryEvent>> FindEventsToReapply(const WorkflowMutableState& state,
                                                              const EventReader& events) {
  const VersionHistories& histories = state.version_histories();
  const VersionHistory* current = CurrentBranch(histories);
  if (current == nullptr || histories.histories_size() < 2) return std::vector<HistoryEvent>();
  const std::string& run_id = state.key().run_id();

  // Losing-branch events after their branch's fork point, by origin.
  std::map<OriginKey, HistoryEvent> candidates;
  int64_t lowest_fork = LastEventId(*current);
  for (int i = 0; i < histories.histories_size(); ++i) {
    if (i == histories.current_index()) continue;
    const VersionHistory& branch = histories.histories(i);
    const int64_t shared = SharedPrefix(branch, *current);
    lowest_fork = std::min(lowest_fork, shared);
    for (int64_t id = shared + 1; id <= LastEventId(branch); ++id) {
      absl::StatusOr<HistoryEvent> event = ReadOnBranch(events, branch, id);
      if (!event.ok()) return event.status();
      if (!IsReapplicable(event->event_type())) continue;
      candidates.emplace(KeyOf(OriginOf(run_id, *event)), *std::move(event));
    }
  }
  if (candidates.empty()) return std::vector<HistoryEvent>();

  // A copy of an origin on a losing branch can only sit on the current branch after that
  // branch's fork point (it was written after the origin, which is after the fork), so reading
  // the current branch from the lowest fork point finds every copy. So does it find a client's
  // retry of the same request (same request id) sent to the new active cluster after the fork.
  std::set<std::string> requests_on_current;
  for (int64_t id = lowest_fork + 1; id <= LastEventId(*current); ++id) {
    absl::StatusOr<HistoryEvent> event = ReadOnBranch(events, *current, id);
    if (!event.ok()) return event.status();
    candidates.erase(KeyOf(OriginOf(run_id, *event)));
    if (!event->request().request_id().empty()) {
      requests_on_current.insert(event->request().request_id());
    }
  }

  std::vector<HistoryEvent> result;
  for (auto& [key, event] : candidates) {
    const std::string& request_id = event.request().request_id();
    if (!request_id.empty() && !requests_on_current.insert(request_id).second) continue;
    result.push_back(std::move(event));
  }
  std::stable_partition(result.begin(), result.end(), [](const HistoryEvent& event) {
    return event.event_type() != WORKFLOW_EXECUTION_TERMINATED;
  });
  return result;
}

absl::StatusOr<ReapplyOutcome> Reapply(WorkflowMutableState& state, const EventReader& events,
                                       const std::optional<ActiveContext>& active) {
  absl::StatusOr<std::vector<HistoryEvent>> found = FindEventsToReapply(state, events);
  if (!found.ok()) return found.status();
  ReapplyOutcome outcome;
  const VersionHistory* current = CurrentBranch(state.version_histories());
  const int64_t current_version =
      current->items_size() == 0 ? 0 : current->items(current->items_size() - 1).version();
  if (!active.has_value() || active->failover_version < current_version) {
    // Not active here, or our view of the namespace is older than the branch: the active
    // cluster reapplies them. A closed run accepts nothing, so nothing is left to do for it
    // (the active cluster counts them as dropped_closed); a switch to a branch where the run is
    // open evaluates this again.
    const bool closed =
        state.status() == WORKFLOW_STATUS_COMPLETED || state.status() == WORKFLOW_STATUS_TERMINATED;
    outcome.pending = !found->empty() && !closed;
    state.set_reapply_pending(outcome.pending);
    return outcome;
  }
  const std::string run_id = state.key().run_id();
  size_t copy_bytes = 0;
  for (const HistoryEvent& original : *found) {
    // One task's worth: the rest is found again by the next call (the copies written now are
    // on the current branch by then).
    if (outcome.appended.size() == kMaxReappliedCopiesPerTask ||
        (!outcome.appended.empty() &&
         copy_bytes + original.ByteSizeLong() > kMaxReappliedBytesPerTask)) {
      outcome.pending = true;
      break;
    }
    HistoryEvent copy;
    copy.set_event_id(state.next_event_id());
    copy.set_version(active->failover_version);
    copy.set_event_time_unix_micros(active->now_unix_micros);
    copy.set_event_type(original.event_type());
    copy.set_attributes(original.attributes());
    *copy.mutable_reapplied_from() = OriginOf(run_id, original);
    if (!original.request().request_id().empty()) {
      copy.mutable_request()->set_request_id(original.request().request_id());
      copy.mutable_request()->set_event_count(1);
    }
    if (!ApplyEventToState(state, copy).ok()) {
      // The run closed on the winning branch (or a reapplied termination closed it): what is
      // left cannot be delivered to this run.
      ++outcome.dropped_closed;
      continue;
    }
    copy_bytes += copy.ByteSizeLong();
    outcome.appended.push_back(std::move(copy));
  }
  state.set_reapply_pending(outcome.pending);
  return outcome;
}

}  // namespace xdc
