#include "replicator/task_applier.h"

#include "absl/strings/str_format.h"
#include "protocol/config.h"
#include "protocol/failover_version.h"
#include "protocol/version_history.h"

namespace xdc {

TaskApplier::TaskApplier(const DaemonConfig& config, NamespaceRegistry& namespaces, Clock clock)
    : config_(config),
      initial_failover_version_(
          FindCluster(config, config.cluster_name())->initial_failover_version()),
      namespaces_(namespaces),
      clock_(std::move(clock)) {}

std::optional<ActiveContext> TaskApplier::ActiveFor(const std::string& namespace_id) const {
  std::optional<NamespaceRecord> ns = namespaces_.FindById(namespace_id);
  if (!ns.has_value() || ns->active_cluster() != config_.cluster_name() ||
      ns->state() != NAMESPACE_STATE_ACTIVE ||
      !OwnsVersion(ns->failover_version(), initial_failover_version_,
                   config_.failover_version_increment())) {
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
  absl::StatusOr<std::optional<WorkflowMutableState>> local = view.State(task.workflow());
  if (!local.ok()) {
    ApplyDecision decision;
    decision.action = ApplyAction::kReadError;
    decision.reason = "reading the workflow's state: " + local.status().ToString();
    return decision;
  }
  ApplyDecision decision = DecideApply(*local, task, view.Events(task.workflow()),
                                       ActiveFor(task.workflow().namespace_id()));
  if (decision.action != ApplyAction::kApply) return decision;
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
