#include "replicator/dlq_service.h"

#include <limits>

#include "absl/strings/str_format.h"
#include "protocol/input_bounds.h"
#include "protocol/message_codec.h"
#include "protocol/shard_hash.h"
#include "replicator/logger.h"

namespace xdc {

DlqService::DlqService(Store& store, WorkflowWriter& writer, const TaskApplier& task_applier,
                       const ControlApplier& control)
    : store_(store), writer_(writer), task_applier_(task_applier), control_(control) {}

absl::StatusOr<std::vector<ParkedTask>> DlqService::Select(const DlqRequest& request,
                                                           DlqActionResponse& response) const {
  if (request.all() == (request.sequences_size() > 0)) {
    return absl::InvalidArgumentError(
        "name the entries to act on: either \"sequences\": [...] or \"all\": true");
  }
  if (request.all()) return store_.ListParked(std::numeric_limits<size_t>::max());
  std::vector<ParkedTask> entries;
  for (int64_t sequence : request.sequences()) {
    absl::StatusOr<std::optional<ParkedTask>> entry = store_.GetParked(sequence);
    if (!entry.ok()) return entry.status();
    if (entry->has_value()) {
      entries.push_back(**std::move(entry));
    } else {
      DlqOutcome* outcome = response.add_outcomes();
      outcome->set_sequence(sequence);
      outcome->set_result("not_found");
    }
  }
  return entries;
}

absl::StatusOr<DlqOutcome> DlqService::RetryOne(const ParkedTask& entry) {
  DlqOutcome outcome;
  outcome.set_sequence(entry.sequence());
  auto keep = [&](const std::string& error) -> absl::StatusOr<DlqOutcome> {
    outcome.set_result("still_parked");
    outcome.set_error(error);
    return outcome;
  };
  if (entry.shard() < 0) {  // a control message
    ControlMessage control;
    if (absl::Status s = DecodeFrame(entry.raw_message(), control); !s.ok()) {
      return keep(std::string(s.message()));
    }
    if (absl::Status s = ValidateControlBounds(control); !s.ok()) {
      return keep(std::string(s.message()));
    }
    // The source is the cluster whose control topic it came from (a message claiming another
    // source was parked for that, and stays parked).
    if (control.source_cluster() != entry.source_cluster()) {
      return keep(absl::StrFormat("it says it is from '%s' but came from '%s'",
                                  control.source_cluster(), entry.source_cluster()));
    }
    absl::StatusOr<ControlOutcome> applied = control_.Apply(entry.source_cluster(), control);
    if (!applied.ok()) return applied.status();
    if (!applied->resend_refused.empty()) return keep(applied->resend_refused);
    // A resend's answer goes to the outbox before the entry leaves the DLQ.
    for (const ReplicationTask& task : applied->resend_answer) {
      absl::StatusOr<int64_t> queued = writer_.Commit(
          applied->resend_shard, [&](WorkflowWriter::View&, StoreWrite& write) -> absl::Status {
            write.outbox_task = task;
            return absl::OkStatus();
          });
      if (!queued.ok()) return queued.status();
    }
    StoreWrite write;
    write.unparked.push_back(entry.sequence());
    if (absl::StatusOr<int64_t> done = store_.CommitWrite(write); !done.ok()) return done.status();
    outcome.set_result("applied");
    return outcome;
  }
  HistoryMessage decoded;
  if (absl::Status s = DecodeFrame(entry.raw_message(), decoded); !s.ok()) {
    return keep(std::string(s.message()));
  }
  const ReplicationTask& task = decoded.task();
  if (absl::Status s = ValidateTaskBounds(task); !s.ok()) return keep(std::string(s.message()));
  const int32_t shard = entry.shard();
  if (shard >= store_.identity().shard_count() || task.shard() != shard) {
    return keep(absl::StrFormat("the task says shard %d but was parked from shard %d", task.shard(),
                                shard));
  }
  absl::StatusOr<int64_t> done =
      writer_.Commit(shard, [&](WorkflowWriter::View& view, StoreWrite& write) -> absl::Status {
        ApplyDecision decision = task_applier_.Stage(task, view, write);
        if (decision.action == ApplyAction::kApply || decision.action == ApplyAction::kDuplicate) {
          write.unparked.push_back(entry.sequence());
          outcome.set_result(decision.action == ApplyAction::kApply ? "applied" : "duplicate");
          return absl::OkStatus();
        }
        ParkedTask updated = entry;
        updated.set_error(decision.reason);
        updated.set_attempts(entry.attempts() + 1);
        if (decision.action == ApplyAction::kGap) {
          // Back to the automatic path: the peer's applier asks the source again.
          updated.set_reason(PARK_REASON_GAP);
          updated.set_awaiting_resend(true);
          updated.set_attempts(0);  // the applier's next request is attempt 1 again
          updated.set_expected_event_id(decision.expected_event_id);
        }
        write.parked.push_back(std::move(updated));
        outcome.set_result("still_parked");
        outcome.set_error(decision.reason);
        return absl::OkStatus();
      });
  if (!done.ok()) return done.status();
  return outcome;
}

absl::StatusOr<DlqActionResponse> DlqService::Retry(const DlqRequest& request) {
  DlqActionResponse response;
  absl::StatusOr<std::vector<ParkedTask>> entries = Select(request, response);
  if (!entries.ok()) return entries.status();
  for (const ParkedTask& entry : *entries) {
    absl::StatusOr<DlqOutcome> outcome = RetryOne(entry);
    if (!outcome.ok()) return outcome.status();
    *response.add_outcomes() = *std::move(outcome);
  }
  response.set_dlq_entries(store_.ParkedCount());
  return response;
}

absl::StatusOr<DlqActionResponse> DlqService::Purge(const DlqRequest& request) {
  DlqActionResponse response;
  absl::StatusOr<std::vector<ParkedTask>> entries = Select(request, response);
  if (!entries.ok()) return entries.status();
  StoreWrite write;
  for (const ParkedTask& entry : *entries) {
    write.unparked.push_back(entry.sequence());
    DlqOutcome* outcome = response.add_outcomes();
    outcome->set_sequence(entry.sequence());
    outcome->set_result("purged");
    log::Write(
        log::Level::kInfo, "",
        absl::StrFormat("purged DLQ entry %lld (%s from %s, shard %d) on request: %s",
                        static_cast<long long>(entry.sequence()),
                        ParkReason_Name(entry.reason()).c_str(), entry.source_cluster().c_str(),
                        entry.shard(), entry.error().c_str()),
        log::Fields().Shard(entry.shard()).Peer(entry.source_cluster()));
  }
  if (!write.empty()) {
    if (absl::StatusOr<int64_t> done = store_.CommitWrite(write); !done.ok()) {
      return done.status();
    }
  }
  response.set_dlq_entries(store_.ParkedCount());
  return response;
}

}  // namespace xdc
