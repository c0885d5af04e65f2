// Version histories: pure operations on the VersionHistory protobuf.
//
// A branch's history is a list of items (last event id, version), ascending in both. Events
// (items[i-1].event_id, items[i].event_id] carry items[i].version.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "protocol/xdc.pb.h"

namespace xdc {

// Records that `event_id` (the next event of the branch) was written with `version`: extends
// the last item or adds one. Fails if the event is not the branch's next or the version
// decreases.
[[nodiscard]] absl::Status AddEventToHistory(VersionHistory& history, int64_t event_id,
                                             int64_t version);

// The version of `event_id` on the branch, or NOT_FOUND if the branch does not reach it.
[[nodiscard]] absl::StatusOr<int64_t> VersionOfEvent(const VersionHistory& history,
                                                     int64_t event_id);

// Last event id of the branch, 0 when empty.
[[nodiscard]] int64_t LastEventId(const VersionHistory& history);

// Lowest common ancestor of two branches: the item (event id, version) up to which both agree.
// Returns NOT_FOUND when they share no event (they disagree on event 1, or one is empty), and
// INVALID_ARGUMENT when a non-empty one fails ValidateVersionHistory.
[[nodiscard]] absl::StatusOr<VersionHistoryItem> FindLowestCommonAncestor(
    const VersionHistory& local, const VersionHistory& remote);

// The branch cut after `last_event_id` (0 gives an empty history): the shared prefix of a fork,
// or the history of a resent range. INVALID_ARGUMENT if the branch does not reach it.
[[nodiscard]] absl::StatusOr<VersionHistory> TruncateHistory(const VersionHistory& history,
                                                             int64_t last_event_id);

// True when `event_id` is on the branch with `version`.
[[nodiscard]] bool ContainsEvent(const VersionHistory& history, int64_t event_id, int64_t version);

// Total order of branches that picks the current one: the higher last version wins; equal last
// versions (which a correct federation never produces, since only a version's owner writes it,
// on one branch) fall back to the longer branch, then to the items, so every cluster still picks
// the same one. Returns <0, 0 or >0 like strcmp; 0 only for identical histories.
[[nodiscard]] int CompareBranches(const VersionHistory& a, const VersionHistory& b);

// Checks items are non-empty and strictly ascending in event id and version, event ids >= 1.
[[nodiscard]] absl::Status ValidateVersionHistory(const VersionHistory& history);

// The branch marked current, or nullptr if `histories` is empty or the index is out of range.
[[nodiscard]] const VersionHistory* CurrentBranch(const VersionHistories& histories);
[[nodiscard]] VersionHistory* MutableCurrentBranch(VersionHistories& histories);

}  // namespace xdc
