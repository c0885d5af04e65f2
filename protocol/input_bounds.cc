#include "protocol/input_bounds.h"

#include <string_view>
#include <utility>

#include "absl/strings/str_format.h"
#include "protocol/failover_version.h"
#include "protocol/namespace_record.h"
#include "protocol/task_sequence.h"

namespace xdc {
namespace {

absl::Status Refused(std::string_view what, const absl::Status& status) {
  return absl::InvalidArgumentError(absl::StrFormat("%s: %s", what, status.message()));
}

}  // namespace

absl::Status ValidateTaskBounds(const ReplicationTask& task) {
  if (absl::Status s = ValidateTaskId(task.task_id()); !s.ok()) return s;
  for (const VersionHistoryItem& item : task.version_history_items()) {
    if (absl::Status s = ValidateFailoverVersion(item.version(), "version history item version");
        !s.ok()) {
      return Refused("task", s);
    }
  }
  for (const HistoryEvent& event : task.events()) {
    if (absl::Status s = ValidateFailoverVersion(event.version(), "event version"); !s.ok()) {
      return Refused(absl::StrFormat("task: event %d", event.event_id()), s);
    }
  }
  if (task.has_handover_marker()) {
    const HandoverMarker& marker = task.handover_marker();
    for (const auto& [version, what] : {std::pair{marker.source_version(), "source version"},
                                        std::pair{marker.proposed_version(), "proposed version"}}) {
      if (absl::Status s = ValidateFailoverVersion(version, what); !s.ok()) {
        return Refused("handover marker", s);
      }
    }
    for (const SourceWatermark& watermark : marker.applied()) {
      // An exclusive bound: one above the highest task id.
      if (watermark.next_task_id() < 0 || watermark.next_task_id() > kMaxTaskId + 1) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "handover marker: applied task ids of '%s' below %d: outside [0, %d] (one above the "
            "maximum task id)",
            watermark.source_cluster(), watermark.next_task_id(), kMaxTaskId + 1));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateControlBounds(const ControlMessage& message) {
  if (message.has_namespace_record()) {
    if (absl::Status s = ValidateRecordVersions(message.namespace_record()); !s.ok()) return s;
  }
  if (message.has_handover_cancel()) {
    if (absl::Status s = ValidateFailoverVersion(message.handover_cancel().proposed_version(),
                                                 "proposed version");
        !s.ok()) {
      return Refused("handover cancel", s);
    }
  }
  if (message.has_handover_decision()) {
    if (absl::Status s = ValidateFailoverVersion(message.handover_decision().proposed_version(),
                                                 "proposed version");
        !s.ok()) {
      return Refused("handover decision", s);
    }
  }
  return absl::OkStatus();
}

}  // namespace xdc
