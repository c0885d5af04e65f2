#include "protocol/handover.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "protocol/failover_version.h"
#include "protocol/task_sequence.h"

namespace xdc {
namespace {

const ClusterConfig* FindInLayout(const VersionLayout& layout, const std::string& name) {
  for (const ClusterConfig& cluster : *layout.clusters) {
    if (cluster.name() == name) return &cluster;
  }
  return nullptr;
}

bool IsMember(const NamespaceRecord& record, const std::string& cluster) {
  return std::find(record.clusters().begin(), record.clusters().end(), cluster) !=
         record.clusters().end();
}

}  // namespace

bool FailoverPartNewer(const NamespaceRecord& a, const NamespaceRecord& b) {
  if (a.failover_version() != b.failover_version()) {
    return a.failover_version() > b.failover_version();
  }
  return a.state_sequence() > b.state_sequence();
}

const char* FailoverKindName(FailoverKind kind) {
  switch (kind) {
    case FAILOVER_KIND_GRACEFUL:
      return "graceful";
    case FAILOVER_KIND_FORCED:
      return "forced";
    case FAILOVER_KIND_HANDOVER_CANCELLED:
      return "cancelled";
    case FAILOVER_KIND_RESTORED_STORE:
      return "restored_store";
    default:
      return nullptr;
  }
}

void AppendFailoverEvent(NamespaceRecord& record, FailoverEvent event) {
  *record.add_failover_history() = std::move(event);
  const int excess = record.failover_history_size() - kMaxFailoverHistory;
  if (excess > 0) record.mutable_failover_history()->DeleteSubrange(0, excess);
}

absl::StatusOr<NamespaceRecord> BeginHandover(const NamespaceRecord& current,
                                              const std::string& self, const std::string& target,
                                              const VersionLayout& layout, int64_t now_micros,
                                              int64_t deadline_micros) {
  if (current.active_cluster() != self) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "namespace '%s' is active on '%s', not on '%s': send the handover request to '%s'",
        current.name(), current.active_cluster(), self, current.active_cluster()));
  }
  if (current.state() == NAMESPACE_STATE_HANDOVER) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "namespace '%s' is already handing over to '%s' (proposed version %d): wait for it, or "
        "cancel it with 'xdcctl namespace cancel %s'",
        current.name(), current.handover().target_cluster(), current.handover().proposed_version(),
        current.name()));
  }
  if (target == self) {
    return absl::FailedPreconditionError(
        absl::StrFormat("namespace '%s' is already active on '%s'", current.name(), self));
  }
  const ClusterConfig* target_config = FindInLayout(layout, target);
  if (target_config == nullptr || !IsMember(current, target)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("cluster '%s' is not a member of namespace '%s' (members: %s)", target,
                        current.name(), absl::StrJoin(current.clusters(), ", ")));
  }
  absl::StatusOr<int64_t> proposed =
      NextVersionAbove(std::max(current.failover_version(), current.last_proposed_version()),
                       target_config->initial_failover_version(), layout.increment);
  if (!proposed.ok()) {
    return absl::Status(proposed.status().code(),
                        absl::StrFormat("cannot hand namespace '%s' over to '%s': %s",
                                        current.name(), target, proposed.status().message()));
  }
  NamespaceRecord next = current;
  next.set_state(NAMESPACE_STATE_HANDOVER);
  next.set_state_sequence(current.state_sequence() + 1);
  next.set_last_proposed_version(*proposed);
  HandoverInfo& handover = *next.mutable_handover();
  handover.Clear();
  handover.set_target_cluster(target);
  handover.set_proposed_version(*proposed);
  handover.set_started_unix_micros(now_micros);
  handover.set_deadline_unix_micros(deadline_micros);
  return next;
}

HandoverMarker MakeHandoverMarker(const NamespaceRecord& handover_record,
                                  std::vector<SourceWatermark> applied) {
  HandoverMarker marker;
  marker.set_namespace_id(handover_record.id());
  marker.set_target_cluster(handover_record.handover().target_cluster());
  marker.set_source_version(handover_record.failover_version());
  marker.set_proposed_version(handover_record.handover().proposed_version());
  marker.set_started_unix_micros(handover_record.handover().started_unix_micros());
  for (SourceWatermark& watermark : applied) *marker.add_applied() = std::move(watermark);
  return marker;
}

std::optional<NamespaceRecord> RequestCancel(const NamespaceRecord& current,
                                             const std::string& self, const std::string& reason) {
  if (current.active_cluster() != self || current.state() != NAMESPACE_STATE_HANDOVER ||
      current.handover().cancel_requested()) {
    return std::nullopt;
  }
  NamespaceRecord next = current;
  next.set_state_sequence(current.state_sequence() + 1);
  next.mutable_handover()->set_cancel_requested(true);
  next.mutable_handover()->set_cancel_reason(reason);
  return next;
}

std::optional<NamespaceRecord> ApplyDecisionAtSource(const NamespaceRecord& current,
                                                     const std::string& self,
                                                     const HandoverDecision& decision,
                                                     int64_t now_micros) {
  if (decision.outcome() != HANDOVER_OUTCOME_CANCELLED || decision.source_cluster() != self ||
      current.active_cluster() != self || current.state() != NAMESPACE_STATE_HANDOVER ||
      current.handover().proposed_version() != decision.proposed_version() ||
      current.id() != decision.namespace_id()) {
    return std::nullopt;
  }
  NamespaceRecord next = current;
  next.set_state(NAMESPACE_STATE_ACTIVE);
  next.set_state_sequence(current.state_sequence() + 1);
  FailoverEvent event;
  event.set_kind(FAILOVER_KIND_HANDOVER_CANCELLED);
  event.set_from_cluster(self);
  event.set_to_cluster(current.handover().target_cluster());
  event.set_from_version(current.failover_version());
  event.set_failover_version(current.handover().proposed_version());
  event.set_started_unix_micros(current.handover().started_unix_micros());
  event.set_completed_unix_micros(now_micros);
  event.set_writes_refused_micros(
      std::max<int64_t>(0, now_micros - current.handover().started_unix_micros()));
  event.set_reason(decision.reason());
  next.clear_handover();
  AppendFailoverEvent(next, std::move(event));
  return next;
}

absl::StatusOr<NamespaceRecord> ForceFailover(const NamespaceRecord& current,
                                              const std::string& self, const VersionLayout& layout,
                                              int64_t decided_version, int64_t now_micros,
                                              int64_t old_active_last_heard_micros) {
  const ClusterConfig* self_config = FindInLayout(layout, self);
  if (self_config == nullptr || !IsMember(current, self)) {
    return absl::FailedPreconditionError(
        absl::StrFormat("cluster '%s' is not a member of namespace '%s'", self, current.name()));
  }
  const int64_t floor =
      std::max({current.failover_version(), current.last_proposed_version(), decided_version});
  absl::StatusOr<int64_t> version =
      NextVersionAbove(floor, self_config->initial_failover_version(), layout.increment);
  if (!version.ok()) {
    return absl::Status(version.status().code(),
                        absl::StrFormat("cannot force namespace '%s' over to '%s': %s",
                                        current.name(), self, version.status().message()));
  }
  NamespaceRecord next = current;
  next.set_active_cluster(self);
  next.set_failover_version(*version);
  next.set_state(NAMESPACE_STATE_ACTIVE);
  next.set_state_sequence(0);
  next.clear_handover();
  FailoverEvent event;
  event.set_kind(FAILOVER_KIND_FORCED);
  event.set_from_cluster(current.active_cluster());
  event.set_to_cluster(self);
  event.set_from_version(current.failover_version());
  event.set_failover_version(*version);
  event.set_started_unix_micros(now_micros);
  event.set_completed_unix_micros(now_micros);
  event.set_old_active_last_heard_unix_micros(old_active_last_heard_micros);
  if (old_active_last_heard_micros > 0) {
    event.set_writes_refused_micros(
        std::max<int64_t>(0, now_micros - old_active_last_heard_micros));
  }
  AppendFailoverEvent(next, std::move(event));
  return next;
}

absl::StatusOr<NamespaceRecord> MoveToFreshVersion(const NamespaceRecord& current,
                                                   const std::string& self,
                                                   const VersionLayout& layout,
                                                   int64_t version_floor, int64_t now_micros,
                                                   const std::string& why) {
  if (current.active_cluster() != self) {
    return absl::FailedPreconditionError(
        absl::StrFormat("namespace '%s' is active on '%s', not on '%s'", current.name(),
                        current.active_cluster(), self));
  }
  absl::StatusOr<NamespaceRecord> next =
      ForceFailover(current, self, layout, version_floor, now_micros, 0);
  if (!next.ok()) return next.status();
  FailoverEvent& event = *next->mutable_failover_history()->rbegin();
  event.set_kind(FAILOVER_KIND_RESTORED_STORE);
  event.set_reason(why);
  return next;
}

MarkerEffect ApplyMarker(HandoverTargetState& state, const std::string& self,
                         const std::string& source, int32_t shard, const HandoverMarker& marker) {
  if (marker.target_cluster() != self || marker.proposed_version() <= state.decided_version() ||
      marker.proposed_version() < state.proposed_version()) {
    return MarkerEffect::kIgnored;
  }
  // Two sources proposing the same version to us: one of them is stale (a forced failover made
  // two clusters active). Markers of two sources must not add up to one proposal: the source
  // with the newer version wins.
  const bool other_source =
      marker.proposed_version() == state.proposed_version() && source != state.source_cluster();
  if (other_source && marker.source_version() <= state.source_version()) {
    return MarkerEffect::kIgnored;
  }
  MarkerEffect effect = MarkerEffect::kShardSeen;
  if (marker.proposed_version() > state.proposed_version() || other_source) {
    state.set_namespace_id(marker.namespace_id());
    state.set_source_cluster(source);
    state.set_source_version(marker.source_version());
    state.set_proposed_version(marker.proposed_version());
    state.set_started_unix_micros(marker.started_unix_micros());
    state.clear_shards_seen();
    state.clear_required();
    effect = MarkerEffect::kNewProposal;
  }
  auto& seen = *state.mutable_shards_seen();
  auto it = std::lower_bound(seen.begin(), seen.end(), shard);
  if (it != seen.end() && *it == shard) return MarkerEffect::kDuplicate;
  seen.Add(shard);
  std::sort(seen.begin(), seen.end());
  for (const SourceWatermark& watermark : marker.applied()) {
    HandoverTargetState::ShardRequirement& requirement = *state.add_required();
    requirement.set_shard(shard);
    *requirement.mutable_applied() = watermark;
  }
  return effect;
}

bool HasPendingProposal(const HandoverTargetState& state) {
  return state.proposed_version() > state.decided_version();
}

absl::StatusOr<std::vector<std::string>> ActivationBlockers(const HandoverTargetState& state,
                                                            const std::string& self,
                                                            int32_t shard_count,
                                                            const AppliedTasksFn& applied) {
  std::vector<std::string> blockers;
  std::vector<bool> seen(shard_count, false);
  for (int32_t shard : state.shards_seen()) {
    if (shard >= 0 && shard < shard_count) seen[shard] = true;
  }
  std::vector<int32_t> unseen;
  for (int32_t shard = 0; shard < shard_count; ++shard) {
    if (!seen[shard]) unseen.push_back(shard);
  }
  if (!unseen.empty()) {
    blockers.push_back(absl::StrFormat("handover markers of %d of %d shards not applied yet (%s)",
                                       unseen.size(), shard_count, absl::StrJoin(unseen, ", ")));
  }
  for (int32_t shard = 0; shard < shard_count; ++shard) {
    if (!seen[shard]) continue;
    absl::StatusOr<TaskSequence> from_source = applied(state.source_cluster(), shard);
    if (!from_source.ok()) return from_source.status();
    if (from_source->missing_size() > 0) {
      blockers.push_back(
          absl::StrFormat("shard %d: %d tasks of '%s' are missing (see runbooks/missing-tasks.md)",
                          shard, MissingTaskCount(*from_source), state.source_cluster()));
    }
  }
  for (const HandoverTargetState::ShardRequirement& requirement : state.required()) {
    const SourceWatermark& need = requirement.applied();
    if (need.source_cluster() == self) continue;  // our own writes: nothing to apply
    absl::StatusOr<TaskSequence> have = applied(need.source_cluster(), requirement.shard());
    if (!have.ok()) return have.status();
    bool missing_below = false;
    for (const TaskRange& range : have->missing()) {
      if (range.first() < need.next_task_id()) missing_below = true;
    }
    if (have->next_task_id() < need.next_task_id() || missing_below) {
      blockers.push_back(absl::StrFormat(
          "shard %d: behind cluster '%s' (applied its tasks below %d%s; '%s' had applied below "
          "%d)",
          requirement.shard(), need.source_cluster(), have->next_task_id(),
          missing_below ? ", with some missing" : "", state.source_cluster(), need.next_task_id()));
    }
  }
  return blockers;
}

bool ProposalSuperseded(const HandoverTargetState& state, const NamespaceRecord& local) {
  return local.failover_version() > state.source_version();
}

namespace {

void RememberDecision(HandoverTargetState& state, const HandoverDecision& decision) {
  state.set_decided_version(std::max(state.decided_version(), decision.proposed_version()));
  *state.add_decisions() = decision;
  // Past the bound, the oldest cancellations are forgotten, never an activation: a cancel of a
  // proposal no longer listed is answered "cancelled", which is only true if it was not activated
  // (models/handover.pml found the counterexample when activations could be forgotten).
  auto& decisions = *state.mutable_decisions();
  for (int i = 0; i < decisions.size() && decisions.size() > kMaxHandoverDecisions;) {
    if (decisions.Get(i).outcome() == HANDOVER_OUTCOME_ACTIVATED) {
      ++i;
    } else {
      decisions.DeleteSubrange(i, 1);
    }
  }
}

}  // namespace

HandoverDecision DecidePending(HandoverTargetState& state, HandoverOutcome outcome,
                               const std::string& reason, int64_t now_micros) {
  HandoverDecision decision;
  decision.set_namespace_id(state.namespace_id());
  decision.set_source_cluster(state.source_cluster());
  decision.set_proposed_version(state.proposed_version());
  decision.set_outcome(outcome);
  decision.set_reason(reason);
  decision.set_decided_unix_micros(now_micros);
  RememberDecision(state, decision);
  return decision;
}

NamespaceRecord ActivatedRecord(const NamespaceRecord& local, const HandoverTargetState& state,
                                const std::string& self, int64_t now_micros) {
  NamespaceRecord next = local;
  next.set_active_cluster(self);
  next.set_failover_version(state.proposed_version());
  next.set_state(NAMESPACE_STATE_ACTIVE);
  next.set_state_sequence(0);
  next.set_last_proposed_version(std::max(local.last_proposed_version(), state.proposed_version()));
  next.clear_handover();
  FailoverEvent event;
  event.set_kind(FAILOVER_KIND_GRACEFUL);
  event.set_from_cluster(state.source_cluster());
  event.set_to_cluster(self);
  event.set_from_version(state.source_version());
  event.set_failover_version(state.proposed_version());
  event.set_started_unix_micros(state.started_unix_micros());
  event.set_completed_unix_micros(now_micros);
  event.set_writes_refused_micros(std::max<int64_t>(0, now_micros - state.started_unix_micros()));
  AppendFailoverEvent(next, std::move(event));
  return next;
}

HandoverDecision DecideCancel(HandoverTargetState& state, const HandoverCancel& cancel,
                              const std::string& source, int64_t now_micros, bool& changed) {
  changed = false;
  if (cancel.proposed_version() <= state.decided_version()) {
    for (auto it = state.decisions().rbegin(); it != state.decisions().rend(); ++it) {
      if (it->proposed_version() != cancel.proposed_version()) continue;
      // Answered to the cluster that asks, as models/handover.pml does: after a forced failover,
      // a source that never heard of an earlier proposal can propose the same version again,
      // and it is the one waiting in HANDOVER. Addressed to the earlier source, the answer
      // would be ignored by both and the namespace would refuse writes until an operator forced.
      HandoverDecision answer = *it;
      if (answer.source_cluster() != source) {
        answer.set_reason(absl::StrFormat(
            "proposed version %d was already decided for a proposal from '%s'%s",
            answer.proposed_version(), answer.source_cluster(),
            answer.reason().empty() ? "" : absl::StrCat(" (", answer.reason(), ")")));
        answer.set_source_cluster(source);
      }
      return answer;
    }
    // Decided long ago, or never seen before a later proposal was decided: either way it was
    // never activated here (an activation is always remembered until kMaxHandoverDecisions
    // newer decisions push it out, by which time the source has long seen our record).
    HandoverDecision decision;
    decision.set_namespace_id(cancel.namespace_id());
    decision.set_source_cluster(source);
    decision.set_proposed_version(cancel.proposed_version());
    decision.set_outcome(HANDOVER_OUTCOME_CANCELLED);
    decision.set_reason("superseded by a later proposal");
    decision.set_decided_unix_micros(now_micros);
    return decision;
  }
  if (state.namespace_id().empty()) state.set_namespace_id(cancel.namespace_id());
  HandoverDecision decision;
  decision.set_namespace_id(cancel.namespace_id());
  decision.set_source_cluster(source);
  decision.set_proposed_version(cancel.proposed_version());
  decision.set_outcome(HANDOVER_OUTCOME_CANCELLED);
  decision.set_reason(cancel.reason().empty() ? "cancelled" : cancel.reason());
  decision.set_decided_unix_micros(now_micros);
  RememberDecision(state, decision);
  changed = true;
  return decision;
}

}  // namespace xdc
