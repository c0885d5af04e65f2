#include "replicator/control_applier.h"

#include "absl/strings/str_format.h"
#include "chaos/fault_points.h"
#include "protocol/branch_tasks.h"
#include "protocol/shard_hash.h"
#include "protocol/startup_check.h"
#include "protocol/version_history.h"

namespace xdc {

ControlApplier::ControlApplier(const DaemonConfig& config, const Tunables& tunables, Store& store,
                               NamespaceRegistry& namespaces, HandoverCoordinator& handover,
                               StartupChecker& startup, Clock clock)
    : config_(config),
      tunables_(tunables),
      store_(store),
      namespaces_(namespaces),
      handover_(handover),
      startup_(startup),
      clock_(std::move(clock)) {}

absl::StatusOr<ControlOutcome> ControlApplier::Apply(const std::string& source,
                                                     const ControlMessage& message) const {
  ControlOutcome outcome;
  if (message.has_namespace_record()) {
    if (absl::StatusOr<bool> merged = namespaces_.Merge(message.namespace_record(), source);
        !merged.ok()) {
      return absl::Status(
          merged.status().code(),
          absl::StrFormat("storing namespace record '%s' failed: %s",
                          message.namespace_record().name(), merged.status().message()));
    }
  }
  if (message.has_resend_request() &&
      message.resend_request().target_cluster() == config_.cluster_name()) {
    const WorkflowKey& key = message.resend_request().workflow();
    outcome.resend_shard = ShardFor(key.namespace_id(), key.workflow_id(), config_.shard_count());
    absl::StatusOr<std::vector<ReplicationTask>> answer =
        ResendAnswer(message.resend_request(), outcome.resend_shard);
    if (answer.ok()) {
      outcome.resend_answer = *std::move(answer);
    } else {
      outcome.resend_refused = std::string(answer.status().message());
    }
  }
  if (message.has_startup_probe()) {
    std::vector<ShardApplyProgress> progress;
    for (int32_t shard = 0; shard < config_.shard_count(); ++shard) {
      absl::StatusOr<ShardApplyProgress> stored = store_.GetApplyProgress(source, shard);
      if (!stored.ok()) return stored.status();
      progress.push_back(*std::move(stored));
    }
    ControlMessage reply;
    *reply.mutable_startup_report() =
        MakeStartupReport(source, message.startup_probe(), progress, namespaces_.List());
    outcome.reply = std::move(reply);
  }
  if (message.has_startup_report()) startup_.OnReport(source, message.startup_report());
  absl::Status handled = absl::OkStatus();
  if (message.has_handover_cancel())
    handled = handover_.OnCancel(source, message.handover_cancel());
  if (message.has_handover_decision()) {
    handled = handover_.OnDecision(source, message.handover_decision());
  }
  if (!handled.ok()) {
    return absl::Status(handled.code(), absl::StrFormat("storing a handover decision failed: %s",
                                                        handled.message()));
  }
  return outcome;
}

absl::StatusOr<std::vector<ReplicationTask>> ControlApplier::ResendAnswer(
    const ResendRequest& request, int32_t shard) const {
  if (fault::Armed(fault::kResendRefuse)) {
    return absl::UnavailableError("fault point resend.refuse is armed");
  }
  const WorkflowKey& key = request.workflow();
  VersionHistory branch;
  *branch.mutable_items() = request.version_history_items();
  if (absl::Status s = ValidateVersionHistory(branch); !s.ok()) return s;
  if (key.namespace_id().empty() || key.workflow_id().empty() || key.run_id().empty() ||
      request.first_event_id() < 1 || request.next_event_id() <= request.first_event_id() ||
      request.next_event_id() - 1 > LastEventId(branch)) {
    return absl::InvalidArgumentError("the request is malformed");
  }
  std::vector<HistoryEvent> events;
  for (int64_t id = request.first_event_id(); id < request.next_event_id(); ++id) {
    absl::StatusOr<HistoryEvent> event = store_.ReadEvent(key, id, *VersionOfEvent(branch, id));
    if (!event.ok()) return event.status();
    events.push_back(*std::move(event));
  }
  // Chunks small enough for one Kafka message each, in event order.
  absl::StatusOr<std::vector<ReplicationTask>> tasks = SplitBranchIntoTasks(
      key, branch, events, tunables_.max_events_per_append, tunables_.max_task_bytes);
  if (!tasks.ok()) return tasks.status();
  for (ReplicationTask& task : *tasks) {
    task.set_shard(shard);
    task.set_source_cluster(config_.cluster_name());
    task.set_created_unix_micros(clock_());
  }
  return tasks;
}

}  // namespace xdc
