#include "replicator/write_service.h"

#include <map>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "protocol/config.h"
#include "protocol/failover_version.h"
#include "protocol/reapplication.h"
#include "protocol/shard_hash.h"
#include "protocol/version_history.h"
#include "protocol/workflow_state.h"

namespace xdc {

WriteService::WriteService(const DaemonConfig& config, const Tunables& tunables,
                           WorkflowWriter& writer, NamespaceRegistry& namespaces,
                           const StartupChecker& startup, WriteProbe& probe, Clock clock)
    : config_(config),
      tunables_(tunables),
      initial_failover_version_(
          FindCluster(config, config.cluster_name())->initial_failover_version()),
      writer_(writer),
      namespaces_(namespaces),
      startup_(startup),
      probe_(probe),
      clock_(std::move(clock)) {}

absl::StatusOr<NamespaceRecord> WriteService::CheckWritable(const std::string& name) const {
  absl::StatusOr<NamespaceRecord> ns = namespaces_.Get(name);
  if (!ns.ok()) return ns.status();
  const bool owns = ns->active_cluster() == config_.cluster_name() &&
                    OwnsVersion(ns->failover_version(), initial_failover_version_,
                                config_.failover_version_increment());
  if (!owns) {
    absl::Status s = absl::FailedPreconditionError(absl::StrFormat(
        "namespace '%s' is active on cluster '%s' (failover version %d), not on '%s': send "
        "writes to '%s'",
        name, ns->active_cluster(), ns->failover_version(), config_.cluster_name(),
        ns->active_cluster()));
    s.SetPayload(kActiveClusterPayload, absl::Cord(ns->active_cluster()));
    return s;
  }
  if (ns->state() == NAMESPACE_STATE_HANDOVER) {
    absl::Status s = absl::UnavailableError(absl::StrFormat(
        "namespace '%s' is handing over from '%s' to '%s': writes are refused until '%s' "
        "decides; retry in %d ms (then on '%s' if the handover completed)",
        name, ns->active_cluster(), ns->handover().target_cluster(),
        ns->handover().target_cluster(), tunables_.handover_retry_after_ms,
        ns->handover().target_cluster()));
    s.SetPayload(kActiveClusterPayload, absl::Cord(ns->active_cluster()));
    s.SetPayload(kRetryAfterMsPayload, absl::Cord(absl::StrCat(tunables_.handover_retry_after_ms)));
    MarkRetryable(s);
    return s;
  }
  if (absl::Status s = startup_.Gate(*ns); !s.ok()) return s;
  return *ns;
}

namespace {

// INVALID_ARGUMENT unless `request_id` is empty or 1..kMaxRequestIdBytes printable ASCII.
absl::Status CheckRequestId(const std::string& request_id) {
  if (request_id.size() > kMaxRequestIdBytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "request_id is %d bytes; at most %d are allowed", request_id.size(), kMaxRequestIdBytes));
  }
  for (char c : request_id) {
    if (c < 0x21 || c > 0x7e) {
      return absl::InvalidArgumentError(
          "request_id may hold printable ASCII characters only (no spaces): use a UUID or a "
          "similar token");
    }
  }
  return absl::OkStatus();
}

absl::Status RetryableInProgress(const std::string& request_id, int retry_after_ms,
                                 std::string_view what) {
  absl::Status s = absl::UnavailableError(absl::StrFormat(
      "request_id '%s' %s: retry in %d ms to get its outcome", request_id, what, retry_after_ms));
  s.SetPayload(kRetryAfterMsPayload, absl::Cord(absl::StrCat(retry_after_ms)));
  MarkRetryable(s);
  return s;
}

}  // namespace

absl::StatusOr<NamespaceRecord> WriteService::NamespaceFor(const std::string& name,
                                                           const std::string& request_id) const {
  if (request_id.empty()) return CheckWritable(name);
  return namespaces_.Get(name);
}

absl::StatusOr<std::optional<AppendResponse>> WriteService::Replay(
    WorkflowWriter::View& view, const NamespaceRecord& ns, const ClientRequest& request,
    const WorkflowKey& key, int64_t expected_next_event_id,
    const std::vector<NewEvent>& events) const {
  const std::string& id = request.request_id;
  if (view.RequestInFlight(ns.id(), id)) {
    return RetryableInProgress(id, tunables_.handover_retry_after_ms,
                               "is still being written by an earlier request");
  }
  absl::StatusOr<std::optional<RequestRecord>> record = view.Request(ns.id(), id);
  if (!record.ok()) return record.status();
  if (!record->has_value()) return std::optional<AppendResponse>();
  const RequestRecord& found = **record;
  const WorkflowKey& where = found.workflow();
  auto differs = [&](const std::string& what) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "request_id '%s' was already used in namespace '%s' for a different request (%s): use a "
        "new request_id for a new request",
        id, ns.name(), what));
  };
  if (where.workflow_id() != key.workflow_id()) {
    return differs(absl::StrFormat("workflow '%s'", where.workflow_id()));
  }
  if (!request.run_id.empty() && where.run_id() != request.run_id) {
    return differs(absl::StrFormat("run '%s'", where.run_id()));
  }
  if (expected_next_event_id != 0 && expected_next_event_id != found.first_event_id()) {
    return differs(absl::StrFormat("expected_next_event_id %d", found.first_event_id()));
  }
  const int64_t count = found.next_event_id() - found.first_event_id();
  if (count != static_cast<int64_t>(events.size())) {
    return differs(absl::StrFormat("%d events", count));
  }
  const EventReader& stored = view.Events(where);
  HistoryEvent first;
  for (int64_t i = 0; i < count; ++i) {
    absl::StatusOr<HistoryEvent> event = stored.Read(found.first_event_id() + i, found.version());
    // Gone: a repair replaced the run with a copy that lacks the request, so it is not written.
    if (absl::IsNotFound(event.status())) return std::optional<AppendResponse>();
    if (!event.ok()) return event.status();
    if (event->event_type() != events[i].event_type() ||
        event->attributes() != events[i].attributes()) {
      return differs(absl::StrFormat("event %d", event->event_id()));
    }
    if (i == 0) first = *std::move(event);
  }
  absl::StatusOr<std::optional<WorkflowMutableState>> state = view.State(where);
  if (!state.ok()) return state.status();
  if (!state->has_value()) return std::optional<AppendResponse>();
  if (!ContainsEvent(*CurrentBranch((*state)->version_histories()), found.first_event_id(),
                     found.version())) {
    if (IsReapplicable(first.event_type()) && (*state)->reapply_pending()) {
      return RetryableInProgress(id, tunables_.handover_retry_after_ms,
                                 "wrote a signal that a forced failover left on a losing branch; "
                                 "the active cluster is reapplying it");
    }
    return absl::FailedPreconditionError(absl::StrFormat(
        "request_id '%s' wrote events [%d, %d) of workflow '%s' run '%s' at failover version %d, "
        "which a forced failover left on a losing branch: they are not in the run's history "
        "(xdcctl history --branch shows them). Nothing was written now; if the write should "
        "still happen, send it with a new request_id",
        id, found.first_event_id(), found.next_event_id(), where.workflow_id(), where.run_id(),
        found.version()));
  }
  AppendResponse response;
  response.set_first_event_id(found.first_event_id());
  response.set_next_event_id(found.next_event_id());
  response.set_version(found.version());
  response.set_run_id(where.run_id());
  response.set_replayed(true);
  return std::optional<AppendResponse>(std::move(response));
}

absl::StatusOr<AppendResponse> WriteService::Counted(absl::StatusOr<AppendResponse> result) {
  if (result.ok() && result->replayed()) {
    probe_.appends_replayed->Increment();
  } else if (result.ok()) {
    probe_.appends_ok->Increment();
    probe_.events_appended->Increment(
        static_cast<double>(result->next_event_id() - result->first_event_id()));
  } else {
    probe_.appends_rejected->Increment();
  }
  return result;
}

absl::StatusOr<AppendResponse> WriteService::Append(const AppendRequest& request) {
  return Counted(Finish(QueueAppend(request)));
}

absl::StatusOr<std::vector<absl::StatusOr<AppendResponse>>> WriteService::AppendBatch(
    const google::protobuf::RepeatedPtrField<AppendRequest>& appends) {
  if (appends.empty()) {
    return absl::InvalidArgumentError("appends is empty: send at least one append");
  }
  if (static_cast<size_t>(appends.size()) > tunables_.max_appends_per_batch) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%d appends in one batch; at most %d are allowed: split the batch",
                        appends.size(), tunables_.max_appends_per_batch));
  }
  std::vector<absl::StatusOr<QueuedAppend>> queued;
  queued.reserve(appends.size());
  // Workflows this batch starts a run of. Without a run id, an append continues the workflow's
  // stored current run, which is not yet the one an earlier append of the batch started.
  std::map<std::pair<std::string, std::string>, int> started;  // (namespace, workflow) -> index
  for (int i = 0; i < appends.size(); ++i) {
    const AppendRequest& append = appends[i];
    const std::pair<std::string, std::string> workflow{append.namespace_(), append.workflow_id()};
    if (append.expected_next_event_id() == 1) {
      started.emplace(workflow, i);
    } else if (auto it = started.find(workflow); it != started.end() && append.run_id().empty()) {
      queued.push_back(absl::InvalidArgumentError(absl::StrFormat(
          "append %d continues workflow '%s', which append %d of this batch starts: give the run "
          "id on both (or send it in a later request)",
          i, append.workflow_id(), it->second)));
      continue;
    }
    queued.push_back(QueueAppend(append));
  }
  // Every queued write is waited for (the writer's contract), also after a failure.
  std::vector<absl::StatusOr<AppendResponse>> results;
  results.reserve(queued.size());
  for (absl::StatusOr<QueuedAppend>& append : queued) {
    results.push_back(Counted(Finish(std::move(append))));
  }
  return results;
}

absl::StatusOr<AppendResponse> WriteService::Finish(absl::StatusOr<QueuedAppend> queued) {
  if (!queued.ok()) return queued.status();
  absl::StatusOr<int64_t> task_id = writer_.Wait(*queued->pending);
  if (!task_id.ok()) return task_id.status();
  return std::move(queued->response);
}

absl::StatusOr<AppendResponse> WriteService::Signal(const SignalRequest& request) {
  return Counted(SignalUncounted(request));
}

absl::StatusOr<WriteService::QueuedAppend> WriteService::QueueAppend(const AppendRequest& request) {
  if (absl::Status s = CheckRequestId(request.request_id()); !s.ok()) return s;
  absl::StatusOr<NamespaceRecord> ns = NamespaceFor(request.namespace_(), request.request_id());
  if (!ns.ok()) return ns.status();
  if (request.workflow_id().empty()) return absl::InvalidArgumentError("workflow_id is required");
  if (request.events_size() == 0) {
    return absl::InvalidArgumentError("events is empty: append at least one event");
  }
  if (static_cast<size_t>(request.events_size()) > tunables_.max_events_per_append) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%d events in one append; at most %d are allowed", request.events_size(),
                        tunables_.max_events_per_append));
  }
  if (request.expected_next_event_id() < 1) {
    return absl::InvalidArgumentError(
        "expected_next_event_id is required: 1 starts a run, otherwise the run's next event id");
  }
  WorkflowKey key;
  key.set_namespace_id(ns->id());
  key.set_workflow_id(request.workflow_id());
  key.set_run_id(request.run_id());
  if (key.run_id().empty() && request.expected_next_event_id() == 1) {
    absl::BitGen gen;
    key.set_run_id(
        absl::StrFormat("%016x%016x", absl::Uniform<uint64_t>(gen), absl::Uniform<uint64_t>(gen)));
  } else if (key.run_id().empty()) {
    absl::StatusOr<std::string> run = namespaces_.CurrentRun(*ns, request.workflow_id());
    if (!run.ok()) return run.status();
    key.set_run_id(*run);
  }
  std::vector<NewEvent> events(request.events().begin(), request.events().end());
  return QueueToRun(*ns, {request.request_id(), request.run_id()}, key,
                    request.expected_next_event_id(), events);
}

absl::StatusOr<AppendResponse> WriteService::SignalUncounted(const SignalRequest& request) {
  if (absl::Status s = CheckRequestId(request.request_id()); !s.ok()) return s;
  absl::StatusOr<NamespaceRecord> ns = NamespaceFor(request.namespace_(), request.request_id());
  if (!ns.ok()) return ns.status();
  if (request.workflow_id().empty() || request.signal_name().empty()) {
    return absl::InvalidArgumentError("workflow_id and signal_name are required");
  }
  WorkflowKey key;
  key.set_namespace_id(ns->id());
  key.set_workflow_id(request.workflow_id());
  key.set_run_id(request.run_id());
  if (key.run_id().empty()) {
    absl::StatusOr<std::string> run = namespaces_.CurrentRun(*ns, request.workflow_id());
    if (!run.ok()) return run.status();
    key.set_run_id(*run);
  }
  SignalAttributes attributes;
  attributes.set_signal_name(request.signal_name());
  attributes.set_input(request.input());
  NewEvent event;
  event.set_event_type(WORKFLOW_EXECUTION_SIGNALED);
  event.set_attributes(attributes.SerializeAsString());
  return Finish(QueueToRun(*ns, {request.request_id(), request.run_id()}, key, 0, {event}));
}

absl::Status WriteService::CheckBecomesCurrent(WorkflowWriter::View& view,
                                               const NamespaceRecord& ns,
                                               const WorkflowMutableState& started) const {
  absl::StatusOr<std::string> current_run = namespaces_.CurrentRun(ns, started.key().workflow_id());
  if (absl::IsNotFound(current_run.status())) return absl::OkStatus();
  if (!current_run.ok()) return current_run.status();
  WorkflowKey current_key = started.key();
  current_key.set_run_id(*current_run);
  absl::StatusOr<std::optional<WorkflowMutableState>> current = view.State(current_key);
  if (!current.ok()) return current.status();
  if (!current->has_value() || StartedAfter(started, **current)) return absl::OkStatus();
  const VersionHistory* branch = CurrentBranch((*current)->version_histories());
  return absl::FailedPreconditionError(absl::StrFormat(
      "workflow '%s' already has run '%s', started at failover version %d, after a run started "
      "here now at version %d would: namespace '%s' was failed over to another cluster; send "
      "writes to the active cluster",
      started.key().workflow_id(), *current_run,
      branch->items_size() > 0 ? branch->items(0).version() : 0, ns.failover_version(), ns.name()));
}

absl::StatusOr<WriteService::QueuedAppend> WriteService::QueueToRun(
    const NamespaceRecord& ns_at_request, const ClientRequest& request, WorkflowKey key,
    int64_t expected_next_event_id, const std::vector<NewEvent>& events) {
  for (const NewEvent& event : events) {
    if (event.attributes().size() > tunables_.max_attributes_bytes) {
      return absl::InvalidArgumentError(
          absl::StrFormat("an event's attributes are %d bytes; at most %d are allowed",
                          event.attributes().size(), tunables_.max_attributes_bytes));
    }
  }
  const int32_t shard = ShardFor(key.namespace_id(), key.workflow_id(), config_.shard_count());
  std::vector<HistoryEvent> appended;
  int64_t version = 0;
  std::optional<AppendResponse> replayed;
  absl::StatusOr<std::unique_ptr<WorkflowWriter::Pending>> pending =
      writer_.Queue(shard, [&](WorkflowWriter::View& view, StoreWrite& write) -> absl::Status {
        // A retry is answered before the gate: a standby that holds the events answers too.
        if (!request.request_id.empty()) {
          absl::StatusOr<std::optional<AppendResponse>> replay =
              Replay(view, ns_at_request, request, key, expected_next_event_id, events);
          if (!replay.ok()) return replay.status();
          replayed = *std::move(replay);
          if (replayed.has_value()) return absl::OkStatus();  // nothing to write
        }
        // The write gate, again under the shard's lock: a handover takes every shard's lock to
        // enter HANDOVER, so a write either is queued before its markers or sees HANDOVER here.
        absl::StatusOr<NamespaceRecord> gate = CheckWritable(ns_at_request.name());
        if (!gate.ok()) return gate.status();
        const NamespaceRecord& ns = *gate;
        version = ns.failover_version();
        absl::StatusOr<std::optional<WorkflowMutableState>> current = view.State(key);
        if (!current.ok()) return current.status();
        const int64_t next_event_id = current->has_value() ? (*current)->next_event_id() : 1;
        if (expected_next_event_id == 0 && !current->has_value()) {
          return absl::NotFoundError(absl::StrFormat("workflow '%s' run '%s' does not exist",
                                                     key.workflow_id(), key.run_id()));
        }
        if (expected_next_event_id != 0 && expected_next_event_id != next_event_id) {
          return absl::FailedPreconditionError(absl::StrFormat(
              "wrong expected_next_event_id %d: workflow '%s' run '%s' has next event id %d; read "
              "the history and retry",
              expected_next_event_id, key.workflow_id(), key.run_id(), next_event_id));
        }
        WorkflowMutableState state = current->has_value() ? **current : NewWorkflowState(key);
        const VersionHistory& branch = *CurrentBranch(state.version_histories());
        if (branch.items_size() > 0 &&
            branch.items(branch.items_size() - 1).version() > ns.failover_version()) {
          // Another cluster wrote this run at a newer failover version: the namespace was failed
          // over away from us and our record has not caught up yet.
          return absl::FailedPreconditionError(absl::StrFormat(
              "workflow '%s' run '%s' already has events of failover version %d, newer than "
              "namespace '%s''s version %d here: the namespace was failed over to another cluster; "
              "send writes to the active cluster",
              key.workflow_id(), key.run_id(), branch.items(branch.items_size() - 1).version(),
              ns.name(), ns.failover_version()));
        }
        const int64_t now = clock_();
        WorkflowWrite update;
        for (const NewEvent& new_event : events) {
          HistoryEvent event;
          event.set_event_id(state.next_event_id());
          event.set_version(ns.failover_version());
          event.set_event_time_unix_micros(now);
          event.set_event_type(new_event.event_type());
          event.set_attributes(new_event.attributes());
          if (update.events.empty() && !request.request_id.empty()) {
            event.mutable_request()->set_request_id(request.request_id);
            event.mutable_request()->set_event_count(static_cast<int32_t>(events.size()));
          }
          if (absl::Status s = ApplyEventToState(state, event); !s.ok()) return s;
          update.events.push_back(std::move(event));
        }
        update.starts_run = update.events.front().event_id() == 1;
        if (update.starts_run) {
          // The new run must become the workflow's current run by the rule every cluster applies
          // (store.h WorkflowWrite::starts_run): a run of the workflow started at a newer failover
          // version means the namespace was failed over away from us.
          if (absl::Status s = CheckBecomesCurrent(view, ns, state); !s.ok()) return s;
        }
        ReplicationTask task;
        task.set_shard(shard);
        task.set_source_cluster(config_.cluster_name());
        *task.mutable_workflow() = key;
        *task.mutable_version_history_items() = CurrentBranch(state.version_histories())->items();
        for (const HistoryEvent& event : update.events) *task.add_events() = event;
        task.set_created_unix_micros(now);
        if (task.ByteSizeLong() > tunables_.max_task_bytes) {
          return absl::InvalidArgumentError(absl::StrFormat(
              "this append would replicate as %d bytes; at most %d fit in one replication task: "
              "split it into smaller appends",
              task.ByteSizeLong(), tunables_.max_task_bytes));
        }
        update.state = std::move(state);
        appended = update.events;
        write.workflows.push_back(std::move(update));
        write.outbox_task = std::move(task);
        return absl::OkStatus();
      });
  if (!pending.ok()) return pending.status();
  QueuedAppend queued;
  queued.pending = std::move(*pending);
  if (replayed.has_value()) {
    queued.response = *std::move(replayed);
    return queued;
  }
  queued.response.set_first_event_id(appended.front().event_id());
  queued.response.set_next_event_id(appended.back().event_id() + 1);
  queued.response.set_version(version);
  queued.response.set_run_id(key.run_id());
  return queued;
}

}  // namespace xdc
