#include "replicator/handover_coordinator.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/message_differencer.h"
#include "protocol/failover_damage.h"
#include "protocol/federation.h"
#include "protocol/handover.h"
#include "replicator/logger.h"

namespace xdc {
namespace {

double Seconds(int64_t micros) { return static_cast<double>(micros) / 1e6; }

}  // namespace

HandoverCoordinator::HandoverCoordinator(const DaemonConfig& config, const Tunables& tunables,
                                         Store& store, WorkflowWriter& writer,
                                         NamespaceRegistry& namespaces, Clock clock,
                                         std::function<void(ControlMessage)> send_control)
    : config_(config),
      tunables_(tunables),
      store_(store),
      writer_(writer),
      namespaces_(namespaces),
      clock_(std::move(clock)),
      send_control_(std::move(send_control)) {}

HandoverCoordinator::~HandoverCoordinator() { Stop(); }

absl::Status HandoverCoordinator::Start() {
  absl::StatusOr<std::vector<HandoverTargetState>> states = store_.ListHandoverStates();
  if (!states.ok()) return states.status();
  {
    absl::MutexLock lock(&mu_);
    for (HandoverTargetState& state : *states) targets_[state.namespace_id()] = std::move(state);
  }
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void HandoverCoordinator::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void HandoverCoordinator::Run() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stopping_),
                           absl::Milliseconds(tunables_.control_tick_ms));
      if (stopping_) return;
    }
    Tick();
  }
}

void HandoverCoordinator::Tick() {
  // The pending proposals' blockers are store reads and a DLQ scan of up to
  // handover_dlq_scan_limit entries: found on a copy, without mu_, which appliers take under a
  // shard lock for every marker. Deciding (and its write) happens under mu_, on the state as it
  // is then, so a proposal is decided once whatever markers and cancels race with it.
  std::vector<HandoverTargetState> pending;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, state] : targets_) {
      if (HasPendingProposal(state)) pending.push_back(state);
    }
  }
  for (const HandoverTargetState& seen : pending) {
    absl::StatusOr<std::vector<std::string>> blockers = Blockers(seen, /*every=*/false);
    absl::MutexLock lock(&mu_);
    const std::string& id = seen.namespace_id();
    auto it = targets_.find(id);
    // Changed meanwhile (a marker, a cancel, a decision): the next tick looks again.
    if (it == targets_.end() ||
        !google::protobuf::util::MessageDifferencer::Equals(it->second, seen)) {
      continue;
    }
    absl::Status s = blockers.ok() ? TryDecide(it->second, *blockers) : blockers.status();
    // Logged when it changes, not every tick.
    std::string& last = last_decide_error_[id];
    if (!s.ok() && s.ToString() != last) {
      log::Write(log::Level::kWarning, "handover.undecidable",
                 absl::StrFormat("handover of namespace %s: cannot decide yet: %s", id.c_str(),
                                 s.ToString().c_str()));
    }
    last = s.ok() ? "" : s.ToString();
  }
  const int64_t now = clock_();
  for (const NamespaceRecord& record : namespaces_.List()) {
    if (record.active_cluster() != config_.cluster_name() ||
        record.state() != NAMESPACE_STATE_HANDOVER) {
      continue;
    }
    if (!record.handover().cancel_requested()) {
      if (now < record.handover().deadline_unix_micros()) continue;
      const std::string reason = absl::StrFormat(
          "the handover to '%s' was not decided within %.1f s", record.handover().target_cluster(),
          Seconds(record.handover().deadline_unix_micros() -
                  record.handover().started_unix_micros()));
      absl::StatusOr<NamespaceRecord> asked = AskTargetToCancel(record, reason);
      if (!asked.ok()) {
        log::Write(log::Level::kWarning, "handover.cancel_request_failed",
                   absl::StrFormat("namespace '%s': cannot ask for a cancel: %s",
                                   record.name().c_str(), asked.status().ToString().c_str()));
      }
      continue;
    }
    bool due = false;
    {
      absl::MutexLock lock(&mu_);
      const int64_t sent = cancel_sent_micros_[record.id()];
      due = now - sent >= int64_t{tunables_.handover_cancel_resend_ms} * 1000;
    }
    if (due) SendCancel(record);
  }
}

// --- source ------------------------------------------------------------------------------------

absl::StatusOr<NamespaceRecord> HandoverCoordinator::Failover(const std::string& name,
                                                              const FailoverRequest& request) {
  absl::StatusOr<NamespaceRecord> record = namespaces_.Get(name);
  if (!record.ok()) return record.status();
  const std::string& self = config_.cluster_name();
  if (request.force()) {
    if (request.target_cluster() != self) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "a forced failover activates the cluster that receives it: send it to '%s', not to "
          "'%s'",
          request.target_cluster(), self));
    }
    return ForceHere(*record);
  }
  if (request.timeout_ms() < 0 || request.timeout_ms() > tunables_.handover_max_timeout_ms) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "timeout_ms %d is out of range: give 1 to %d ms, or 0 for the default (%d ms)",
        request.timeout_ms(), tunables_.handover_max_timeout_ms,
        tunables_.handover_default_timeout_ms));
  }
  if (record->state() == NAMESPACE_STATE_HANDOVER && record->active_cluster() == self &&
      record->handover().target_cluster() == request.target_cluster()) {
    return *record;  // already handing over to that target (a retried request)
  }
  if (record->active_cluster() != self) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "namespace '%s' is active on '%s': send the graceful handover to '%s' (the active "
        "cluster hands over), or force a failover here with --force if '%s' is gone",
        name, record->active_cluster(), record->active_cluster(), record->active_cluster()));
  }
  const int64_t timeout_ms =
      request.timeout_ms() > 0 ? request.timeout_ms() : tunables_.handover_default_timeout_ms;
  return BeginHere(*record, request.target_cluster(), timeout_ms,
                   request.target_verified_identical());
}

absl::StatusOr<NamespaceRecord> HandoverCoordinator::BeginHere(const NamespaceRecord& record,
                                                               const std::string& target,
                                                               int64_t timeout_ms,
                                                               bool target_verified_identical) {
  const std::string& self = config_.cluster_name();
  const VersionLayout layout{&config_.clusters(), config_.failover_version_increment()};
  absl::StatusOr<NamespaceRecord> result = absl::UnknownError("handover not attempted");
  absl::Status locked = writer_.WithAllShardsLocked([&]() -> absl::Status {
    // No write can be queued now. Wait until every write queued before is durable, so the apply
    // progress read below covers every event our acknowledged writes may have built on.
    StoreWrite barrier;
    if (absl::StatusOr<int64_t> s = store_.CommitWrite(barrier); !s.ok()) return s.status();
    std::vector<std::vector<SourceWatermark>> applied(config_.shard_count());
    for (int32_t shard = 0; shard < config_.shard_count(); ++shard) {
      for (const ClusterConfig& cluster : config_.clusters()) {
        // The target needs what we applied from third clusters; its own writes it has.
        if (cluster.name() == self || cluster.name() == target) continue;
        absl::StatusOr<ShardApplyProgress> progress =
            store_.GetApplyProgress(cluster.name(), shard);
        if (!progress.ok()) return progress.status();
        SourceWatermark watermark;
        watermark.set_source_cluster(cluster.name());
        watermark.set_next_task_id(progress->task_sequence().next_task_id());
        applied[shard].push_back(std::move(watermark));
      }
    }
    const int64_t now = clock_();
    result = namespaces_.Change(
        record.id(),
        [&](const NamespaceRecord& current,
            StoreWrite& write) -> absl::StatusOr<std::optional<NamespaceRecord>> {
          if (absl::Status s = CheckTargetHoldsHistory(current, target, target_verified_identical);
              !s.ok()) {
            return s;
          }
          absl::StatusOr<NamespaceRecord> next =
              BeginHandover(current, self, target, layout, now, now + timeout_ms * 1000);
          if (!next.ok()) return next.status();
          // Verified: the target holds the runs it joined without (a settings change, made with
          // the handover's record in one write).
          if (std::optional<NamespaceRecord> verified = HistoryVerified(*next, target)) {
            next = *std::move(verified);
          }
          for (int32_t shard = 0; shard < config_.shard_count(); ++shard) {
            ReplicationTask marker;
            marker.set_shard(shard);
            marker.set_source_cluster(self);
            marker.set_created_unix_micros(now);
            *marker.mutable_handover_marker() = MakeHandoverMarker(*next, applied[shard]);
            write.handover_markers.push_back(std::move(marker));
          }
          return std::optional<NamespaceRecord>(*std::move(next));
        });
    return absl::OkStatus();
  });
  if (!locked.ok()) return locked;
  if (result.ok()) {
    log::Write(
        log::Level::kInfo, "",
        absl::StrFormat("namespace '%s': handover to '%s' started: writes are refused here until "
                        "'%s' decides (proposed failover version %lld, timeout %lld ms)",
                        record.name().c_str(), target.c_str(), target.c_str(),
                        static_cast<long long>(result->handover().proposed_version()),
                        static_cast<long long>(timeout_ms)));
  }
  return result;
}

absl::StatusOr<NamespaceRecord> HandoverCoordinator::Cancel(const std::string& name,
                                                            const std::string& reason) {
  absl::StatusOr<NamespaceRecord> record = namespaces_.Get(name);
  if (!record.ok()) return record.status();
  const std::string& self = config_.cluster_name();
  const std::string why = reason.empty() ? "cancelled by an operator" : reason;
  if (record->active_cluster() == self && record->state() == NAMESPACE_STATE_HANDOVER) {
    return AskTargetToCancel(*record, why);
  }
  {
    absl::MutexLock lock(&mu_);
    HandoverCancel cancel;
    cancel.set_namespace_id(record->id());
    cancel.set_target_cluster(self);
    cancel.set_reason(why);
    std::string source;
    if (auto it = targets_.find(record->id());
        it != targets_.end() && HasPendingProposal(it->second)) {
      cancel.set_proposed_version(it->second.proposed_version());
      source = it->second.source_cluster();
    } else if (record->state() == NAMESPACE_STATE_HANDOVER &&
               record->handover().target_cluster() == self) {
      cancel.set_proposed_version(record->handover().proposed_version());
      source = record->active_cluster();
    } else {
      return absl::FailedPreconditionError(absl::StrFormat(
          "namespace '%s' has no handover in progress to or from '%s' (active on '%s'%s)", name,
          self, record->active_cluster(),
          record->state() == NAMESPACE_STATE_HANDOVER
              ? absl::StrFormat(", handing over to '%s': cancel on '%s' or '%s'",
                                record->handover().target_cluster(), record->active_cluster(),
                                record->handover().target_cluster())
              : ""));
    }
    if (absl::Status s = DecideCancel(source, cancel); !s.ok()) return s;
  }
  return namespaces_.Get(name);
}

absl::StatusOr<NamespaceRecord> HandoverCoordinator::AskTargetToCancel(
    const NamespaceRecord& record, const std::string& reason) {
  absl::StatusOr<NamespaceRecord> asked =
      namespaces_.Change(record.id(),
                         [&](const NamespaceRecord& current,
                             StoreWrite&) -> absl::StatusOr<std::optional<NamespaceRecord>> {
                           return RequestCancel(current, config_.cluster_name(), reason);
                         });
  if (!asked.ok()) return asked.status();
  if (asked->state() == NAMESPACE_STATE_HANDOVER &&
      asked->active_cluster() == config_.cluster_name()) {
    log::Write(log::Level::kInfo, "",
               absl::StrFormat("namespace '%s': asking '%s' to cancel the handover (%s); writes "
                               "stay refused until it decides",
                               asked->name().c_str(), asked->handover().target_cluster().c_str(),
                               asked->handover().cancel_reason().c_str()));
    SendCancel(*asked);
  }
  return asked;
}

void HandoverCoordinator::SendCancel(const NamespaceRecord& record) {
  ControlMessage message;
  HandoverCancel& cancel = *message.mutable_handover_cancel();
  cancel.set_namespace_id(record.id());
  cancel.set_target_cluster(record.handover().target_cluster());
  cancel.set_proposed_version(record.handover().proposed_version());
  cancel.set_reason(record.handover().cancel_reason());
  {
    absl::MutexLock lock(&mu_);
    cancel_sent_micros_[record.id()] = clock_();
  }
  send_control_(std::move(message));
}

absl::Status HandoverCoordinator::OnDecision(const std::string& source,
                                             const HandoverDecision& decision) {
  if (decision.source_cluster() != config_.cluster_name()) return absl::OkStatus();
  if (!namespaces_.FindById(decision.namespace_id()).has_value()) return absl::OkStatus();
  const int64_t now = clock_();
  bool resumed = false;
  absl::StatusOr<NamespaceRecord> record =
      namespaces_.Change(decision.namespace_id(),
                         [&](const NamespaceRecord& current,
                             StoreWrite&) -> absl::StatusOr<std::optional<NamespaceRecord>> {
                           std::optional<NamespaceRecord> next = ApplyDecisionAtSource(
                               current, config_.cluster_name(), decision, now);
                           resumed = next.has_value();
                           return next;
                         });
  if (!record.ok()) return record.status();
  if (resumed) {
    log::Write(log::Level::kInfo, "",
               absl::StrFormat("namespace '%s': '%s' cancelled the handover (%s); accepting writes "
                               "again at failover version %lld",
                               record->name().c_str(), source.c_str(), decision.reason().c_str(),
                               static_cast<long long>(record->failover_version())));
  }
  return absl::OkStatus();
}

// --- target ------------------------------------------------------------------------------------

void HandoverCoordinator::OnMarker(const std::string& source, int32_t shard,
                                   const HandoverMarker& marker, StoreWrite& write) {
  absl::MutexLock lock(&mu_);
  HandoverTargetState next;
  if (auto it = targets_.find(marker.namespace_id()); it != targets_.end()) next = it->second;
  const MarkerEffect effect = ApplyMarker(next, config_.cluster_name(), source, shard, marker);
  if (effect == MarkerEffect::kIgnored || effect == MarkerEffect::kDuplicate) return;
  if (effect == MarkerEffect::kNewProposal) {
    log::Write(log::Level::kInfo, "",
               absl::StrFormat("namespace %s: '%s' proposes a handover to us at failover version "
                               "%lld; activating once every shard's marker is applied",
                               marker.namespace_id().c_str(), source.c_str(),
                               static_cast<long long>(marker.proposed_version())));
  }
  write.handover_states.push_back(next);
  targets_[marker.namespace_id()] = std::move(next);
}

absl::Status HandoverCoordinator::OnCancel(const std::string& source,
                                           const HandoverCancel& cancel) {
  if (cancel.target_cluster() != config_.cluster_name()) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  return DecideCancel(source, cancel);
}

absl::Status HandoverCoordinator::DecideCancel(const std::string& source,
                                               const HandoverCancel& cancel) {
  HandoverTargetState next;
  if (auto it = targets_.find(cancel.namespace_id()); it != targets_.end()) next = it->second;
  bool changed = false;
  const HandoverDecision decision = xdc::DecideCancel(next, cancel, source, clock_(), changed);
  if (changed) {
    StoreWrite write;
    write.handover_states.push_back(next);
    if (absl::StatusOr<int64_t> s = store_.CommitWrite(write); !s.ok()) return s.status();
    targets_[cancel.namespace_id()] = std::move(next);
    log::Write(log::Level::kInfo, "",
               absl::StrFormat(
                   "namespace %s: cancelled the handover from '%s' at proposed version %lld (%s)",
                   cancel.namespace_id().c_str(), source.c_str(),
                   static_cast<long long>(cancel.proposed_version()), decision.reason().c_str()));
  }
  SendDecision(decision);
  return absl::OkStatus();
}

void HandoverCoordinator::SendDecision(const HandoverDecision& decision) {
  // Our record first, on the same (ordered) control topic: after an activation it is what moves
  // the source on; after a cancel, if it is newer than the source's (the namespace moved on
  // meanwhile), the source follows it and ignores the cancel rather than resuming writes at its
  // old version.
  if (std::optional<NamespaceRecord> local = namespaces_.FindById(decision.namespace_id())) {
    ControlMessage record;
    *record.mutable_namespace_record() = *std::move(local);
    send_control_(std::move(record));
  }
  ControlMessage message;
  *message.mutable_handover_decision() = decision;
  send_control_(std::move(message));
}

absl::StatusOr<std::vector<std::string>> HandoverCoordinator::Blockers(
    const HandoverTargetState& state, bool every) {
  std::optional<NamespaceRecord> local = namespaces_.FindById(state.namespace_id());
  if (!local.has_value()) {
    return std::vector<std::string>{"the namespace's record has not arrived here yet"};
  }
  absl::StatusOr<std::vector<std::string>> blockers = ActivationBlockers(
      state, config_.cluster_name(), config_.shard_count(),
      [&](const std::string& source, int32_t shard) -> absl::StatusOr<TaskSequence> {
        absl::StatusOr<ShardApplyProgress> progress = store_.GetApplyProgress(source, shard);
        if (!progress.ok()) return progress.status();
        return progress->task_sequence();
      });
  if (!blockers.ok()) return blockers.status();
  // The DLQ scan is the costly check: skipped when the DLQ is empty, or when the tick already
  // knows it must wait.
  if (store_.ParkedCount() == 0 || (!every && !blockers->empty())) return blockers;
  absl::StatusOr<std::vector<ParkedTask>> parked =
      store_.ListParked(tunables_.handover_dlq_scan_limit);
  if (!parked.ok()) return parked.status();
  std::vector<int64_t> holding;
  for (const ParkedTask& task : *parked) {
    const bool ours = task.workflow().namespace_id() == state.namespace_id();
    const bool unknown = task.workflow().namespace_id().empty() &&
                         std::find(local->clusters().begin(), local->clusters().end(),
                                   task.source_cluster()) != local->clusters().end();
    if (ours || unknown) holding.push_back(task.sequence());
  }
  if (!holding.empty()) {
    if (holding.size() > 5) holding.resize(5);
    blockers->push_back(
        absl::StrFormat("DLQ entries (%s%s) may hold events of this namespace: retry or purge them "
                        "(runbooks/dlq.md)",
                        absl::StrJoin(holding, ", "), holding.size() == 5 ? ", ..." : ""));
  }
  return blockers;
}

absl::Status HandoverCoordinator::TryDecide(HandoverTargetState& state,
                                           const std::vector<std::string>& blockers) {
  const int64_t now = clock_();
  std::optional<NamespaceRecord> local = namespaces_.FindById(state.namespace_id());
  if (local.has_value() && ProposalSuperseded(state, *local)) {
    HandoverTargetState next = state;
    DecidePending(
        next, HANDOVER_OUTCOME_CANCELLED,
        absl::StrFormat("superseded: the namespace moved on to failover version %d meanwhile",
                        local->failover_version()),
        now);
    StoreWrite write;
    write.handover_states.push_back(next);
    if (absl::StatusOr<int64_t> s = store_.CommitWrite(write); !s.ok()) return s.status();
    state = std::move(next);
    // Not announced: the source learns of the newer record itself, and must not resume at its
    // old version before it does. A cancel request still gets this decision.
    return absl::OkStatus();
  }
  if (!blockers.empty()) return absl::OkStatus();
  HandoverTargetState next = state;
  const HandoverDecision decision = DecidePending(next, HANDOVER_OUTCOME_ACTIVATED, "", now);
  absl::StatusOr<NamespaceRecord> activated =
      namespaces_.Change(state.namespace_id(),
                         [&](const NamespaceRecord& current,
                             StoreWrite& write) -> absl::StatusOr<std::optional<NamespaceRecord>> {
                           if (ProposalSuperseded(state, current)) {
                             return absl::AbortedError("a newer record arrived; deciding again");
                           }
                           write.handover_states.push_back(next);
                           return std::optional<NamespaceRecord>(
                               ActivatedRecord(current, state, config_.cluster_name(), now));
                         });
  if (!activated.ok()) {
    return activated.status().code() == absl::StatusCode::kAborted ? absl::OkStatus()
                                                                   : activated.status();
  }
  log::Write(log::Level::kInfo, "",
             absl::StrFormat("namespace '%s': handover from '%s' complete: active here at failover "
                             "version %lld; writes were refused for %.3f s",
                             activated->name().c_str(), state.source_cluster().c_str(),
                             static_cast<long long>(activated->failover_version()),
                             Seconds(now - state.started_unix_micros())));
  state = std::move(next);
  SendDecision(decision);
  return absl::OkStatus();
}

// --- forced failover ---------------------------------------------------------------------------

int64_t HandoverCoordinator::LastHeardFrom(const std::string& cluster) const {
  int64_t last = 0;
  for (int32_t shard = 0; shard < config_.shard_count(); ++shard) {
    absl::StatusOr<ShardApplyProgress> progress = store_.GetApplyProgress(cluster, shard);
    if (progress.ok()) last = std::max(last, progress->last_task_created_unix_micros());
  }
  return last;
}

absl::StatusOr<NamespaceRecord> HandoverCoordinator::ForceHere(const NamespaceRecord& record) {
  const std::string& self = config_.cluster_name();
  const VersionLayout layout{&config_.clusters(), config_.failover_version_increment()};
  const int64_t now = clock_();
  const int64_t last_heard =
      record.active_cluster() == self ? 0 : LastHeardFrom(record.active_cluster());
  absl::MutexLock lock(&mu_);
  std::optional<HandoverTargetState> next;
  int64_t decided = 0;
  if (auto it = targets_.find(record.id()); it != targets_.end()) {
    decided = std::max(it->second.decided_version(), it->second.proposed_version());
    if (HasPendingProposal(it->second)) {
      next = it->second;
      DecidePending(*next, HANDOVER_OUTCOME_CANCELLED, "superseded by a forced failover to " + self,
                    now);
    }
  }
  bool changed = false;
  absl::StatusOr<NamespaceRecord> result = namespaces_.Change(
      record.id(),
      [&](const NamespaceRecord& current,
          StoreWrite& write) -> absl::StatusOr<std::optional<NamespaceRecord>> {
        if (current.active_cluster() == self && current.state() == NAMESPACE_STATE_ACTIVE) {
          return std::optional<NamespaceRecord>();  // already active here: nothing to do
        }
        absl::StatusOr<NamespaceRecord> forced =
            ForceFailover(current, self, layout, decided, now, last_heard);
        if (!forced.ok()) return forced.status();
        if (next.has_value()) write.handover_states.push_back(*next);
        changed = true;
        return std::optional<NamespaceRecord>(*std::move(forced));
      });
  if (!result.ok() || !changed) return result;
  // The pending proposal is decided (later markers and cancels get that answer) but not
  // announced: the source follows our new record, and must not resume at its old version first.
  if (next.has_value()) targets_[record.id()] = *next;
  log::Write(
      log::Level::kWarning, "",
      absl::StrFormat(
          "forced failover: namespace '%s' is now active on '%s' at failover version %lld",
          record.name().c_str(), self.c_str(), static_cast<long long>(result->failover_version())));
  return result;
}

std::vector<NamespaceGauges> HandoverCoordinator::Gauges() const {
  const int64_t now = clock_();
  std::vector<NamespaceGauges> all;
  for (const NamespaceRecord& record : namespaces_.List()) {
    NamespaceGauges gauges;
    gauges.name = record.name();
    const bool here = record.active_cluster() == config_.cluster_name();
    gauges.active_here = here && record.state() == NAMESPACE_STATE_ACTIVE;
    gauges.failover_version = record.failover_version();
    if (here && record.state() == NAMESPACE_STATE_HANDOVER) {
      gauges.handover_seconds = Seconds(now - record.handover().started_unix_micros());
    }
    for (const char* kind : {"graceful", "forced", "cancelled"}) gauges.failovers_by_kind[kind] = 0;
    for (const FailoverEvent& event : record.failover_history()) {
      const char* kind = FailoverKindName(event.kind());
      if (kind == nullptr) continue;
      ++gauges.failovers_by_kind[kind];
    }
    all.push_back(std::move(gauges));
  }
  return all;
}

std::vector<CompletedFailover> FailoversCompletedBy(const NamespaceRecord& record,
                                                    const std::string& cluster) {
  std::vector<CompletedFailover> completed;
  for (const FailoverEvent& event : record.failover_history()) {
    const char* kind = FailoverKindName(event.kind());
    const std::string& completer = event.kind() == FAILOVER_KIND_HANDOVER_CANCELLED
                                       ? event.from_cluster()
                                       : event.to_cluster();
    if (kind == nullptr || completer != cluster) continue;
    CompletedFailover failover;
    failover.kind = kind;
    failover.completed_unix_micros = event.completed_unix_micros();
    failover.duration_seconds =
        Seconds(std::max<int64_t>(0, event.completed_unix_micros() - event.started_unix_micros()));
    failover.writes_refused_seconds = Seconds(event.writes_refused_micros());
    completed.push_back(std::move(failover));
  }
  return completed;
}

// --- describe ----------------------------------------------------------------------------------

absl::StatusOr<DescribeNamespaceResponse> HandoverCoordinator::Describe(const std::string& name) {
  absl::StatusOr<NamespaceRegistry::LearnedRecord> learned = namespaces_.GetLearned(name);
  if (!learned.ok()) return learned.status();
  const NamespaceRecord* const record = &learned->record;
  DescribeNamespaceResponse response;
  *response.mutable_namespace_() = *record;
  response.set_record_learned_unix_micros(learned->learned.learned_unix_micros());
  response.set_record_learned_from(learned->learned.learned_from());
  const int64_t now = clock_();
  if (record->state() == NAMESPACE_STATE_HANDOVER) {
    const HandoverInfo& handover = record->handover();
    if (record->active_cluster() == config_.cluster_name()) {
      response.add_waiting_for(absl::StrFormat(
          "'%s' to decide the handover (proposed failover version %d); writes refused here for "
          "%.1f s; %s",
          handover.target_cluster(), handover.proposed_version(),
          Seconds(now - handover.started_unix_micros()),
          handover.cancel_requested()
              ? "a cancel was requested: the outcome is unknown until the target answers"
              : absl::StrFormat("cancelled if not decided within %.1f s",
                                Seconds(handover.deadline_unix_micros() - now))));
    } else {
      response.add_waiting_for(absl::StrFormat(
          "'%s' is handing over to '%s'", record->active_cluster(), handover.target_cluster()));
    }
  }
  std::optional<HandoverTargetState> target;
  {
    absl::MutexLock lock(&mu_);
    if (auto it = targets_.find(record->id()); it != targets_.end()) target = it->second;
  }
  if (target.has_value()) {
    *response.mutable_handover_target() = *target;
    if (HasPendingProposal(*target)) {
      absl::StatusOr<std::vector<std::string>> blockers = Blockers(*target, /*every=*/true);
      if (!blockers.ok()) return blockers.status();
      for (const std::string& blocker : *blockers) response.add_waiting_for("here: " + blocker);
    }
  }
  std::map<int64_t, FailoverDamage> damage;
  absl::Status scanned =
      store_.ForEachWorkflow(record->id(), [&](const WorkflowMutableState& state) {
        return AccumulateFailoverDamage(
            state,
            [&](const VersionHistory& branch) { return store_.ReadBranch(state.key(), branch); },
            damage);
      });
  if (!scanned.ok()) return scanned;
  for (const FailoverEvent& event : record->failover_history()) {
    FailoverDamage entry;
    entry.set_failover_version(event.failover_version());
    if (event.kind() != FAILOVER_KIND_HANDOVER_CANCELLED) {
      if (auto it = damage.find(event.failover_version()); it != damage.end()) entry = it->second;
    }
    *response.add_damage() = entry;
  }
  return response;
}

}  // namespace xdc
