// Operator actions on the DLQ: retry entries (apply them now if they can be) and purge them.
//
// A retried history task goes through the conflict resolver like a task from the stream
// (TaskApplier, under the WorkflowWriter's shard lock); if it applies or is already present, its
// entry is removed in the same write. A gap that still cannot be applied goes back to waiting
// for a resend with its attempts reset, so the peer's applier asks the source again. A control
// message entry is retried through the ControlApplier, as the live applier applies one: a record
// is merged, a handover cancel or decision decided, a resend request answered (an answer that
// cannot be read keeps the entry, with the reason). Corrupt entries stay until purged.
// Purging deletes entries: the only way anything leaves the DLQ unapplied, and only on request.
//
// Thread-safety: thread-safe (every write goes through the WorkflowWriter).
#pragma once

#include "absl/status/statusor.h"
#include "protocol/xdc.pb.h"
#include "replicator/control_applier.h"
#include "replicator/task_applier.h"
#include "replicator/workflow_writer.h"
#include "store/store.h"

namespace xdc {

class DlqService {
 public:
  DlqService(Store& store, WorkflowWriter& writer, const TaskApplier& task_applier,
             const ControlApplier& control);

  // INVALID_ARGUMENT unless the request names sequences or sets `all` (not both).
  [[nodiscard]] absl::StatusOr<DlqActionResponse> Retry(const DlqRequest& request);
  [[nodiscard]] absl::StatusOr<DlqActionResponse> Purge(const DlqRequest& request);

 private:
  // The entries the request selects; missing sequences come back as "not_found" outcomes.
  [[nodiscard]] absl::StatusOr<std::vector<ParkedTask>> Select(const DlqRequest& request,
                                                               DlqActionResponse& response) const;
  [[nodiscard]] absl::StatusOr<DlqOutcome> RetryOne(const ParkedTask& entry);

  Store& store_;
  WorkflowWriter& writer_;
  const TaskApplier& task_applier_;
  const ControlApplier& control_;
};

}  // namespace xdc
