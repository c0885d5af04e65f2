#include "protocol/version_history.h"

#include <algorithm>

#include "absl/strings/str_format.h"

namespace xdc {

absl::Status AddEventToHistory(VersionHistory& history, int64_t event_id, int64_t version) {
  const int64_t last_event_id = LastEventId(history);
  if (event_id != last_event_id + 1) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "event %d does not follow the branch's last event %d", event_id, last_event_id));
  }
  if (history.items_size() > 0) {
    VersionHistoryItem* last = history.mutable_items(history.items_size() - 1);
    if (version < last->version()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("event %d has version %d, lower than the branch's version %d", event_id,
                          version, last->version()));
    }
    if (version == last->version()) {
      last->set_event_id(event_id);
      return absl::OkStatus();
    }
  }
  VersionHistoryItem* item = history.add_items();
  item->set_event_id(event_id);
  item->set_version(version);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> VersionOfEvent(const VersionHistory& history, int64_t event_id) {
  if (event_id >= 1) {
    for (const VersionHistoryItem& item : history.items()) {
      if (event_id <= item.event_id()) return item.version();
    }
  }
  return absl::NotFoundError(absl::StrFormat("event %d is not on the branch", event_id));
}

int64_t LastEventId(const VersionHistory& history) {
  return history.items_size() == 0 ? 0 : history.items(history.items_size() - 1).event_id();
}

absl::StatusOr<VersionHistoryItem> FindLowestCommonAncestor(const VersionHistory& local,
                                                            const VersionHistory& remote) {
  for (const VersionHistory* history : {&local, &remote}) {
    if (history->items_size() == 0) continue;  // shares nothing: NOT_FOUND below
    if (absl::Status s = ValidateVersionHistory(*history); !s.ok()) return s;
  }
  // Walk both from the tail. Versions ascend, so the first version both hold is the deepest
  // shared one; within it both branches agree up to the smaller of the two last event ids.
  int i = local.items_size() - 1;
  int j = remote.items_size() - 1;
  while (i >= 0 && j >= 0) {
    const VersionHistoryItem& a = local.items(i);
    const VersionHistoryItem& b = remote.items(j);
    if (a.version() == b.version()) {
      VersionHistoryItem lca;
      lca.set_event_id(std::min(a.event_id(), b.event_id()));
      lca.set_version(a.version());
      return lca;
    }
    if (a.version() > b.version()) {
      --i;
    } else {
      --j;
    }
  }
  return absl::NotFoundError("branches share no event");
}

absl::Status ValidateVersionHistory(const VersionHistory& history) {
  if (history.items_size() == 0) return absl::InvalidArgumentError("version history is empty");
  int64_t previous_event_id = 0;
  int64_t previous_version = -1;
  for (const VersionHistoryItem& item : history.items()) {
    if (item.event_id() <= previous_event_id || item.version() <= previous_version) {
      return absl::InvalidArgumentError(
          absl::StrFormat("version history item (event %d, version %d) is not strictly ascending",
                          item.event_id(), item.version()));
    }
    previous_event_id = item.event_id();
    previous_version = item.version();
  }
  return absl::OkStatus();
}

absl::StatusOr<VersionHistory> TruncateHistory(const VersionHistory& history,
                                               int64_t last_event_id) {
  if (last_event_id < 0 || last_event_id > LastEventId(history)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("cannot cut the branch at event %d: it ends at event %d", last_event_id,
                        LastEventId(history)));
  }
  VersionHistory truncated;
  for (const VersionHistoryItem& item : history.items()) {
    if (last_event_id == 0) break;
    VersionHistoryItem* copy = truncated.add_items();
    copy->set_version(item.version());
    copy->set_event_id(std::min(item.event_id(), last_event_id));
    if (item.event_id() >= last_event_id) break;
  }
  return truncated;
}

bool ContainsEvent(const VersionHistory& history, int64_t event_id, int64_t version) {
  absl::StatusOr<int64_t> found = VersionOfEvent(history, event_id);
  return found.ok() && *found == version;
}

int CompareBranches(const VersionHistory& a, const VersionHistory& b) {
  auto last = [](const VersionHistory& h) {
    return h.items_size() == 0
               ? std::pair<int64_t, int64_t>(-1, 0)
               : std::pair<int64_t, int64_t>(h.items(h.items_size() - 1).version(),
                                             h.items(h.items_size() - 1).event_id());
  };
  if (last(a) != last(b)) return last(a) < last(b) ? -1 : 1;
  const int n = std::min(a.items_size(), b.items_size());
  for (int i = 0; i < n; ++i) {
    const auto x = std::make_pair(a.items(i).version(), a.items(i).event_id());
    const auto y = std::make_pair(b.items(i).version(), b.items(i).event_id());
    if (x != y) return x < y ? -1 : 1;
  }
  if (a.items_size() != b.items_size()) return a.items_size() < b.items_size() ? -1 : 1;
  return 0;
}

const VersionHistory* CurrentBranch(const VersionHistories& histories) {
  const int index = histories.current_index();
  if (index < 0 || index >= histories.histories_size()) return nullptr;
  return &histories.histories(index);
}

VersionHistory* MutableCurrentBranch(VersionHistories& histories) {
  const int index = histories.current_index();
  if (index < 0 || index >= histories.histories_size()) return nullptr;
  return histories.mutable_histories(index);
}

}  // namespace xdc
