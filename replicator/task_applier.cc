#include "replicator/task_applier.h"

#include "absl/strings/str_format.h"
#include "protocol/config.h"
#include "protocol/failover_version.h"
#include "protocol/run_repair.h"
#include "protocol/version_history.h"
#include "replicator/logger.h"

namespace xdc {

TaskApplier::TaskApplier(const DaemonConfig& config, NamespaceRegistry& namespaces, Clock clock)
    : config_(config),
      initial_failover_version_(
          FindCluster(config, config.cluster_name())->initial_failover_version()),
      namespaces_(namespaces),
      clock_(std::move(clock)) {
  for (const ClusterConfig& cluster : config.clusters()) {
    initial_versions_[cluster.name()] = cluster.initial_failover_version();
  }
}

void TaskApplier::SetReapplyLeftListener(std::function<void(const std::string&)> listener) {
  reapply_left_ = std::move(listener);
}

void TaskApplier::AddPeer(const std::string& cluster, int64_t initial_failover_version) {
  absl::MutexLock lock(&versions_mu_);
  initial_versions_[cluster] = initial_failover_version;
}

void TaskApplier::SetWriteGate(std::function<bool(const NamespaceRecord&)> may_write) {
  may_write_ = std::move(may_write);
}

int64_t TaskApplier::InitialVersionOf(const std::string& cluster) const {
  absl::MutexLock lock(&versions_mu_);
  auto it = initial_versions_.find(cluster);
  return it == initial_versions_.end() ? 0 : it->second;
}

std::optional<ActiveContext> TaskApplier::ActiveFor(const std::string& namespace_id) const {
  std::optional<NamespaceRecord> ns = namespaces_.FindById(namespace_id);
  if (!ns.has_value() || ns->active_cluster() != config_.cluster_name() ||
      ns->state() != NAMESPACE_STATE_ACTIVE ||
      !OwnsVersion(ns->failover_version(), initial_failover_version_,
                   config_.failover_version_increment()) ||
      (may_write_ && !may_write_(*ns))) {
    return std::nullopt;
  }
  return ActiveContext{.failover_version = ns->failover_version(), .now_unix_micros = clock_()};
}

ReplicationTask TaskApplier::LocalTask(int32_t shard, const WorkflowMutableState& state,
                                       const std::vector<HistoryEvent>& events) const {
  ReplicationTask task;
  task.set_shard(shard);
  task.set_source_cluster(config_.cluster_name());
  *task.mutable_workflow() = state.key();
  *task.mutable_version_history_items() = CurrentBranch(state.version_histories())->items();
  for (const HistoryEvent& event : events) *task.add_events() = event;
  task.set_created_unix_micros(clock_());
  return task;
}

ApplyDecision TaskApplier::Stage(const ReplicationTask& task, WorkflowWriter::View& view,
                                 StoreWrite& write) const {
  if (task.has_repair()) return StageRepair(task, view, write);
  absl::StatusOr<std::optional<WorkflowMutableState>> local = view.State(task.workflow());
  if (!local.ok()) {
    ApplyDecision decision;
    decision.action = ApplyAction::kReadError;
    decision.reason = "reading the workflow's state: " + local.status().ToString();
    return decision;
  }
  const std::optional<ActiveContext> active = ActiveFor(task.workflow().namespace_id());
  ApplyDecision decision = DecideApply(*local, task, view.Events(task.workflow()), active);
  if (decision.action != ApplyAction::kApply) return decision;
  if (active.has_value() && decision.reapply.pending && reapply_left_) {
    // More than one task's worth of copies: the sweeper writes the rest, a task at a time.
    reapply_left_(task.workflow().namespace_id());
  }
  WorkflowWrite update;
  update.state = decision.new_state;
  update.events = decision.events_to_write;
  for (const HistoryEvent& event : update.events) {
    update.starts_run = update.starts_run || event.event_id() == 1;
  }
  write.workflows.push_back(std::move(update));
  if (!decision.reapply.appended.empty()) {
    write.outbox_task = LocalTask(task.shard(), decision.new_state, decision.reapply.appended);
    // Reapplied events are writes of this cluster: durable before anything builds on them.
    write.durability = Durability::kSynced;
  }
  return decision;
}

}  // namespace xdc

namespace xdc {

ApplyDecision TaskApplier::StageRepair(const ReplicationTask& task, WorkflowWriter::View& view,
                                       StoreWrite& write) const {
  ApplyDecision decision;
  if (task.repair().target_cluster() != config_.cluster_name()) {
    decision.action = ApplyAction::kDuplicate;
    decision.reason =
        absl::StrFormat("a repair for cluster '%s', not this one", task.repair().target_cluster());
    return decision;
  }
  absl::StatusOr<std::optional<WorkflowMutableState>> local = view.State(task.workflow());
  if (!local.ok()) {
    decision.action = ApplyAction::kReadError;
    decision.reason = "reading the workflow's state: " + local.status().ToString();
    return decision;
  }
  const std::optional<NamespaceRecord> ns = namespaces_.FindById(task.workflow().namespace_id());
  RepairAuthority authority;
  authority.ns = ns.has_value() ? &*ns : nullptr;
  authority.sender_initial_version = InitialVersionOf(task.source_cluster());
  authority.failover_version_increment = config_.failover_version_increment();
  RepairDecision repair = DecideRepair(*local, view.Events(task.workflow()), task, authority);
  switch (repair.action) {
    case RepairAction::kRefuse:
      decision.action = ApplyAction::kInvalid;
      decision.reason = "repair refused: " + repair.reason;
      return decision;
    case RepairAction::kReadError:
      decision.action = ApplyAction::kReadError;
      decision.reason = "repair: " + repair.reason;
      return decision;
    case RepairAction::kReplace:
      break;
  }
  WorkflowWrite update;
  update.state = repair.new_state;
  update.events = repair.events;
  update.starts_run = true;  // event 1 is among the copy's events
  update.replace_events = true;
  write.workflows.push_back(std::move(update));
  log::Write(log::Level::kWarning, "repair.applied",
             absl::StrFormat("repaired workflow %s run %s with %s's copy (%zu events; %lld local "
                             "events replaced or removed)",
                             task.workflow().workflow_id(), task.workflow().run_id(),
                             task.source_cluster(), repair.events.size(),
                             static_cast<long long>(repair.local_events_replaced)),
             log::Fields().Workflow(task.workflow().workflow_id()).Peer(task.source_cluster()));
  decision.action = ApplyAction::kApply;
  decision.new_state = std::move(repair.new_state);
  decision.events_to_write = std::move(repair.events);
  return decision;
}

}  // namespace xdc
