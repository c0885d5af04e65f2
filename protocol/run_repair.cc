#include "protocol/run_repair.h"

#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "protocol/failover_version.h"
#include "protocol/version_history.h"

namespace xdc {
namespace {

using EventId = std::pair<int64_t, int64_t>;  // (event id, version)

RepairDecision Refuse(std::string reason) {
  RepairDecision decision;
  decision.action = RepairAction::kRefuse;
  decision.reason = std::move(reason);
  return decision;
}

bool SameKey(const WorkflowKey& a, const WorkflowKey& b) {
  return a.namespace_id() == b.namespace_id() && a.workflow_id() == b.workflow_id() &&
         a.run_id() == b.run_id();
}

}  // namespace

RepairDecision DecideRepair(const std::optional<WorkflowMutableState>& local,
                            const EventReader& local_events, const ReplicationTask& task,
                            const RepairAuthority& authority) {
  const RunRepair& repair = task.repair();
  const std::string& sender = task.source_cluster();
  // 1. Only the namespace's active cluster, as this cluster knows it, may repair.
  const NamespaceRecord* ns = authority.ns;
  if (ns == nullptr) return Refuse("the namespace is not known here");
  if (ns->active_cluster() != sender || ns->state() != NAMESPACE_STATE_ACTIVE ||
      !OwnsVersion(ns->failover_version(), authority.sender_initial_version,
                   authority.failover_version_increment)) {
    return Refuse(absl::StrFormat(
        "the sender '%s' is not the namespace's active cluster here (active: '%s' at failover "
        "version %d, %s): only the active cluster may repair",
        sender, ns->active_cluster(), ns->failover_version(), NamespaceState_Name(ns->state())));
  }
  // 2. The copy is complete and self-consistent.
  const WorkflowMutableState& copy = repair.state();
  if (!SameKey(copy.key(), task.workflow())) {
    return Refuse("the copy's state is of another run than the task's workflow");
  }
  const VersionHistories& histories = copy.version_histories();
  if (histories.histories_size() == 0 || histories.current_index() < 0 ||
      histories.current_index() >= histories.histories_size()) {
    return Refuse("the copy has no current branch");
  }
  std::map<EventId, const HistoryEvent*> copy_events;
  for (const HistoryEvent& event : repair.events()) {
    copy_events[{event.event_id(), event.version()}] = &event;
  }
  RepairDecision decision;
  std::set<EventId> written;
  for (const VersionHistory& branch : histories.histories()) {
    if (absl::Status s = ValidateVersionHistory(branch); !s.ok()) {
      return Refuse(absl::StrFormat("the copy has an invalid branch: %s", s.message()));
    }
    for (int64_t id = 1; id <= LastEventId(branch); ++id) {
      const EventId key{id, *VersionOfEvent(branch, id)};
      auto it = copy_events.find(key);
      if (it == copy_events.end()) {
        return Refuse(absl::StrFormat("the copy lacks event %d (version %d) of its branch",
                                      key.first, key.second));
      }
      if (written.insert(key).second) decision.events.push_back(*it->second);
    }
  }
  // 3. Nothing but the sender's own versions may be lost.
  if (local.has_value()) {
    std::set<EventId> checked;
    for (const VersionHistory& branch : local->version_histories().histories()) {
      for (int64_t id = 1; id <= LastEventId(branch); ++id) {
        absl::StatusOr<int64_t> version = VersionOfEvent(branch, id);
        if (!version.ok())
          break;  // an invalid local branch: its events are checked as far as valid
        const EventId key{id, *version};
        if (!checked.insert(key).second) continue;
        absl::StatusOr<HistoryEvent> mine = local_events.Read(id, *version);
        if (!mine.ok() && !absl::IsNotFound(mine.status()) && !absl::IsDataLoss(mine.status())) {
          RepairDecision retry;
          retry.action = RepairAction::kReadError;
          retry.reason = absl::StrFormat("reading local event %d (version %d): %s", id, *version,
                                         mine.status().ToString());
          return retry;
        }
        auto theirs = copy_events.find(key);
        const bool identical =
            mine.ok() && theirs != copy_events.end() && written.contains(key) &&
            google::protobuf::util::MessageDifferencer::Equals(*mine, *theirs->second);
        if (identical) continue;
        if (!OwnsVersion(*version, authority.sender_initial_version,
                         authority.failover_version_increment)) {
          return Refuse(absl::StrFormat(
              "local event %d (version %d) is of a version '%s' does not own and the copy %s it: "
              "it may be the only copy of an acknowledged write; replicate it to '%s' first",
              id, *version, sender, theirs == copy_events.end() ? "lacks" : "differs from",
              sender));
        }
        ++decision.local_events_replaced;
      }
    }
  }
  decision.action = RepairAction::kReplace;
  decision.new_state = copy;
  return decision;
}

}  // namespace xdc
