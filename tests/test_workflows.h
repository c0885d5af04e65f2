// Helpers shared by the conflict-resolution and reapplication tests: workflow runs with several
// branches, their stored events, and the replication tasks a peer would send for them.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "protocol/event_reader.h"
#include "protocol/version_history.h"
#include "protocol/workflow_state.h"
#include "protocol/xdc.pb.h"

namespace xdc::testing_util {

inline constexpr char kRunId[] = "run";

inline WorkflowKey TestKey() {
  WorkflowKey key;
  key.set_namespace_id("ns");
  key.set_workflow_id("wf");
  key.set_run_id(kRunId);
  return key;
}

// An event whose content is a function of (event id, version, type), as on a real cluster where
// only the owner of a version writes events with it.
inline HistoryEvent MakeEvent(int64_t event_id, int64_t version, EventType type) {
  HistoryEvent event;
  event.set_event_id(event_id);
  event.set_version(version);
  event.set_event_time_unix_micros(1000 * event_id + version);
  event.set_event_type(type);
  event.set_attributes(absl::StrFormat("payload-%d-%d", event_id, version));
  return event;
}

// One event of a branch, by position: the branch's (i+1)-th spec gives event id i+1.
struct EventSpec {
  int64_t version;
  EventType type;
};

// Events 1..n of a branch.
inline std::vector<HistoryEvent> Branch(std::initializer_list<EventSpec> specs) {
  std::vector<HistoryEvent> events;
  int64_t id = 1;
  for (const EventSpec& spec : specs) events.push_back(MakeEvent(id++, spec.version, spec.type));
  return events;
}

// `events` followed by one event of `version` per type (ids continue the branch).
inline std::vector<HistoryEvent> Extend(std::vector<HistoryEvent> events, int64_t version,
                                        std::initializer_list<EventType> types) {
  for (EventType type : types) {
    events.push_back(MakeEvent(static_cast<int64_t>(events.size()) + 1, version, type));
  }
  return events;
}

// The first `n` events of a branch.
inline std::vector<HistoryEvent> Prefix(const std::vector<HistoryEvent>& events, int64_t n) {
  return std::vector<HistoryEvent>(events.begin(), events.begin() + n);
}

inline EventOrigin Origin(int64_t event_id, int64_t version, std::string run_id = kRunId) {
  EventOrigin origin;
  origin.set_run_id(std::move(run_id));
  origin.set_event_id(event_id);
  origin.set_version(version);
  return origin;
}

// A reapplied copy of `original` (which may itself be a copy) written as `event_id`, `version`.
inline HistoryEvent CopyOf(const HistoryEvent& original, int64_t event_id, int64_t version,
                           int64_t time_unix_micros) {
  HistoryEvent copy;
  copy.set_event_id(event_id);
  copy.set_version(version);
  copy.set_event_time_unix_micros(time_unix_micros);
  copy.set_event_type(original.event_type());
  copy.set_attributes(original.attributes());
  *copy.mutable_reapplied_from() = original.has_reapplied_from()
                                       ? original.reapplied_from()
                                       : Origin(original.event_id(), original.version());
  return copy;
}

inline VersionHistory HistoryOf(const std::vector<HistoryEvent>& events) {
  VersionHistory history;
  for (const HistoryEvent& event : events) {
    const absl::Status status = AddEventToHistory(history, event.event_id(), event.version());
    EXPECT_TRUE(status.ok()) << status;
  }
  return history;
}

// The task a peer sends for events [first, last] of `branch` (events 1..n in order).
inline ReplicationTask TaskOf(const std::vector<HistoryEvent>& branch, int64_t first,
                              int64_t last) {
  ReplicationTask task;
  task.set_source_cluster("peer");
  *task.mutable_workflow() = TestKey();
  *task.mutable_version_history_items() = HistoryOf(Prefix(branch, last)).items();
  for (int64_t id = first; id <= last; ++id) *task.add_events() = branch[id - 1];
  return task;
}

// Stores every event of `branches` (each events 1..n of one branch) in `store` and returns the
// run's state with branch `current` current. The derived fields are those of applying the
// current branch's events one by one.
inline WorkflowMutableState StoreBranches(const std::vector<std::vector<HistoryEvent>>& branches,
                                          int current, MapEventReader& store) {
  WorkflowMutableState state = NewWorkflowState(TestKey());
  for (const HistoryEvent& event : branches[current]) {
    const absl::Status status = ApplyEventToState(state, event);
    EXPECT_TRUE(status.ok()) << status;
  }
  VersionHistories histories;
  for (const std::vector<HistoryEvent>& branch : branches) {
    *histories.add_histories() = HistoryOf(branch);
    for (const HistoryEvent& event : branch) {
      // Branches that share (event id, version) must share the event: the fixture is wrong
      // otherwise.
      if (absl::StatusOr<HistoryEvent> stored = store.Read(event.event_id(), event.version());
          stored.ok()) {
        EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*stored, event))
            << "two different events (" << event.event_id() << ", " << event.version() << ")";
      }
      store.Add(event);
    }
  }
  histories.set_current_index(current);
  *state.mutable_version_histories() = std::move(histories);
  return state;
}

// A reader that fails (UNAVAILABLE) on the listed (event id, version) keys, or on every read
// when the list is empty, and otherwise answers from `below`.
class FailingEventReader final : public EventReader {
 public:
  explicit FailingEventReader(const EventReader* below = nullptr,
                              std::set<std::pair<int64_t, int64_t>> failing = {})
      : below_(below), failing_(std::move(failing)) {}
  [[nodiscard]] absl::StatusOr<HistoryEvent> Read(int64_t event_id,
                                                  int64_t version) const override {
    if (failing_.empty() || failing_.count({event_id, version}) > 0 || below_ == nullptr) {
      return absl::UnavailableError(
          absl::StrFormat("disk on fire reading event %d (version %d)", event_id, version));
    }
    return below_->Read(event_id, version);
  }

 private:
  const EventReader* below_;
  std::set<std::pair<int64_t, int64_t>> failing_;
};

inline std::vector<int64_t> EventIds(const std::vector<HistoryEvent>& events) {
  std::vector<int64_t> ids;
  for (const HistoryEvent& event : events) ids.push_back(event.event_id());
  return ids;
}

}  // namespace xdc::testing_util
