// Helpers shared by the test suites to build version histories.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "protocol/xdc.pb.h"

namespace xdc::testing_util {

// Version-history items as (last event id, version) pairs, ascending.
using Items = std::vector<std::pair<int64_t, int64_t>>;

inline VersionHistory History(const Items& items) {
  VersionHistory history;
  for (const auto& [event_id, version] : items) {
    VersionHistoryItem* item = history.add_items();
    item->set_event_id(event_id);
    item->set_version(version);
  }
  return history;
}

}  // namespace xdc::testing_util
