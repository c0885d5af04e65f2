#include "protocol/failover_damage.h"

#include <set>
#include <tuple>

#include "protocol/reapplication.h"
#include "protocol/version_history.h"

namespace xdc {

absl::Status AccumulateFailoverDamage(const WorkflowMutableState& state,
                                      const BranchReader& read_branch,
                                      std::map<int64_t, FailoverDamage>& by_version) {
  const VersionHistories& histories = state.version_histories();
  if (histories.histories_size() < 2) return absl::OkStatus();
  const VersionHistory* current = CurrentBranch(histories);
  if (current == nullptr) return absl::OkStatus();
  absl::StatusOr<google::protobuf::RepeatedPtrField<HistoryEvent>> current_events =
      read_branch(*current);
  if (!current_events.ok()) return current_events.status();
  // Origins (event id, version) of this run's events that were reapplied to the current branch.
  std::set<std::pair<int64_t, int64_t>> reapplied;
  for (const HistoryEvent& event : *current_events) {
    if (event.has_reapplied_from() && event.reapplied_from().run_id() == state.key().run_id()) {
      reapplied.insert({event.reapplied_from().event_id(), event.reapplied_from().version()});
    }
  }
  std::set<std::pair<int64_t, int64_t>> counted;  // a branch's shared prefix is counted once
  std::set<int64_t> charged;                      // failover versions this run was charged to
  for (int i = 0; i < histories.histories_size(); ++i) {
    if (i == histories.current_index()) continue;
    const VersionHistory& losing = histories.histories(i);
    absl::StatusOr<VersionHistoryItem> fork = FindLowestCommonAncestor(losing, *current);
    const int64_t fork_event_id = fork.ok() ? fork->event_id() : 0;
    absl::StatusOr<int64_t> winner_version = VersionOfEvent(*current, fork_event_id + 1);
    if (!winner_version.ok()) continue;  // the current branch extends the losing one: nothing lost
    absl::StatusOr<google::protobuf::RepeatedPtrField<HistoryEvent>> events = read_branch(losing);
    if (!events.ok()) return events.status();
    FailoverDamage& damage = by_version[*winner_version];
    damage.set_failover_version(*winner_version);
    bool lost_any = false;
    for (const HistoryEvent& event : *events) {
      if (event.event_id() <= fork_event_id) continue;
      if (!counted.insert({event.event_id(), event.version()}).second) continue;
      lost_any = true;
      damage.set_events_on_losing_branches(damage.events_on_losing_branches() + 1);
      if (!IsReapplicable(event.event_type())) continue;
      const EventOrigin origin = OriginOf(state.key().run_id(), event);
      if (reapplied.contains({origin.event_id(), origin.version()})) {
        damage.set_events_reapplied(damage.events_reapplied() + 1);
      } else {
        damage.set_reapplicable_not_reapplied(damage.reapplicable_not_reapplied() + 1);
      }
    }
    if (lost_any && charged.insert(*winner_version).second) {
      damage.set_workflows_forked(damage.workflows_forked() + 1);
    }
  }
  return absl::OkStatus();
}

}  // namespace xdc
