// Read-only access to the stored events of one workflow run, by (event id, version).
//
// The conflict resolver reads through it when a task changes which branch is current (to rebuild
// the mutable state) or leaves events to reapply. The daemon backs it by the store and the writes
// still in flight; tests back it by a map. (event id, version) identifies an event's content: only
// a version's owner writes events with it, on one linear branch.
#pragma once

#include <cstdint>
#include <map>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "protocol/xdc.pb.h"

namespace xdc {

class EventReader {
 public:
  virtual ~EventReader() = default;
  // NOT_FOUND when the event is not stored; other errors when it cannot be read.
  [[nodiscard]] virtual absl::StatusOr<HistoryEvent> Read(int64_t event_id,
                                                          int64_t version) const = 0;
};

// Events held in memory, keyed by (event id, version); optionally layered over another reader
// that answers what the map does not hold.
class MapEventReader final : public EventReader {
 public:
  explicit MapEventReader(const EventReader* below = nullptr) : below_(below) {}
  void Add(const HistoryEvent& event) { events_[{event.event_id(), event.version()}] = event; }
  [[nodiscard]] absl::StatusOr<HistoryEvent> Read(int64_t event_id,
                                                  int64_t version) const override {
    if (auto it = events_.find({event_id, version}); it != events_.end()) return it->second;
    if (below_ != nullptr) return below_->Read(event_id, version);
    return absl::NotFoundError(
        absl::StrFormat("event %d (version %d) is not stored", event_id, version));
  }

 private:
  const EventReader* below_;
  std::map<std::pair<int64_t, int64_t>, HistoryEvent> events_;
};

}  // namespace xdc
