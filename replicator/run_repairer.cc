#include "replicator/run_repairer.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_format.h"
#include "protocol/shard_hash.h"
#include "protocol/version_history.h"
#include "replicator/logger.h"

namespace xdc {

RunRepairer::RunRepairer(const DaemonConfig& config, const Tunables& tunables,
                         const NamespaceRegistry& namespaces, WorkflowWriter& writer,
                         const TaskApplier& task_applier, Clock clock)
    : config_(config),
      tunables_(tunables),
      namespaces_(namespaces),
      writer_(writer),
      task_applier_(task_applier),
      clock_(std::move(clock)) {}

absl::StatusOr<RepairRunsResponse> RunRepairer::Request(const RepairRunsRequest& request) {
  absl::StatusOr<NamespaceRecord> ns = namespaces_.Get(request.namespace_());
  if (!ns.ok()) return ns.status();
  const std::string& target = request.target_cluster();
  if (target.empty() || target == config_.cluster_name() ||
      std::find(ns->clusters().begin(), ns->clusters().end(), target) == ns->clusters().end()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("target_cluster '%s' must be another member cluster of namespace '%s'",
                        target, request.namespace_()));
  }
  if (request.runs_size() == 0 ||
      static_cast<size_t>(request.runs_size()) > kMaxRepairRunsPerRequest) {
    return absl::InvalidArgumentError(
        absl::StrFormat("runs must name 1 to %d runs", kMaxRepairRunsPerRequest));
  }
  if (!task_applier_.ActiveFor(ns->id()).has_value()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "cluster '%s' is not the active cluster of namespace '%s' (active: '%s', %s): only the "
        "active cluster's copy is authoritative; send the repair there",
        config_.cluster_name(), ns->name(), ns->active_cluster(),
        NamespaceState_Name(ns->state())));
  }
  RepairRunsResponse response;
  for (const RunRef& run : request.runs()) *response.add_outcomes() = RepairOne(*ns, target, run);
  return response;
}

RepairOutcome RunRepairer::RepairOne(const NamespaceRecord& ns, const std::string& target,
                                     const RunRef& run) {
  RepairOutcome outcome;
  outcome.set_workflow_id(run.workflow_id());
  outcome.set_run_id(run.run_id());
  if (run.workflow_id().empty() || run.run_id().empty()) {
    outcome.set_result("refused");
    outcome.set_error("a run needs workflow_id and run_id");
    return outcome;
  }
  WorkflowKey key;
  key.set_namespace_id(ns.id());
  key.set_workflow_id(run.workflow_id());
  key.set_run_id(run.run_id());
  const int32_t shard = ShardFor(ns.id(), run.workflow_id(), config_.shard_count());
  absl::StatusOr<int64_t> committed =
      writer_.Commit(shard, [&](WorkflowWriter::View& view, StoreWrite& write) -> absl::Status {
        // Checked again under the lock: a handover that began since refuses writes, and repairs.
        if (!task_applier_.ActiveFor(ns.id()).has_value()) {
          return absl::FailedPreconditionError("this cluster is no longer the active cluster");
        }
        absl::StatusOr<std::optional<WorkflowMutableState>> state = view.State(key);
        if (!state.ok()) return state.status();
        if (!state->has_value()) return absl::NotFoundError("no such run here");
        ReplicationTask task;
        task.set_shard(shard);
        task.set_source_cluster(config_.cluster_name());
        *task.mutable_workflow() = key;
        task.set_created_unix_micros(clock_());
        RunRepair* repair = task.mutable_repair();
        repair->set_target_cluster(target);
        *repair->mutable_state() = **state;
        const EventReader& events = view.Events(key);
        std::set<std::pair<int64_t, int64_t>> added;
        for (const VersionHistory& branch : (*state)->version_histories().histories()) {
          for (int64_t id = 1; id <= LastEventId(branch); ++id) {
            absl::StatusOr<int64_t> version = VersionOfEvent(branch, id);
            if (!version.ok()) return version.status();
            if (!added.insert({id, *version}).second) continue;
            absl::StatusOr<HistoryEvent> event = events.Read(id, *version);
            if (!event.ok()) {
              return absl::DataLossError(absl::StrFormat("reading event %d (version %d): %s", id,
                                                         *version, event.status().ToString()));
            }
            *repair->add_events() = *std::move(event);
          }
        }
        if (task.ByteSizeLong() > tunables_.max_task_bytes) {
          return absl::ResourceExhaustedError(absl::StrFormat(
              "its whole history is %d bytes, more than one task may carry (max_task_bytes %d)",
              task.ByteSizeLong(), tunables_.max_task_bytes));
        }
        write.outbox_task = std::move(task);
        return absl::OkStatus();
      });
  if (absl::IsNotFound(committed.status())) {
    outcome.set_result("not_found");
    outcome.set_error(std::string(committed.status().message()));
  } else if (!committed.ok()) {
    outcome.set_result("refused");
    outcome.set_error(committed.status().ToString());
  } else {
    outcome.set_result("queued");
    log::Write(log::Level::kWarning, "repair.sent",
               absl::StrFormat("sent a repair of workflow %s run %s to %s (outbox task %d of "
                               "shard %d)",
                               run.workflow_id(), run.run_id(), target, *committed, shard),
               log::Fields().Workflow(run.workflow_id()).Peer(target).Shard(shard));
  }
  return outcome;
}

}  // namespace xdc
