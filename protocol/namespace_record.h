// Namespace records: validation of a registration and the merge rule for replicated records.
// Pure functions.
#pragma once

#include <optional>
#include <string_view>

#include "absl/status/status.h"
#include "protocol/xdc.pb.h"

namespace xdc {

inline constexpr size_t kMaxNamespaceNameBytes = 255;

// Name: 1..kMaxNamespaceNameBytes of [A-Za-z0-9._-].
[[nodiscard]] absl::Status ValidateNamespaceName(std::string_view name);

// INVALID_ARGUMENT, naming the namespace, the field and the bound, unless every version the
// record carries (failover_version, last_proposed_version, the handover's proposed_version, the
// versions of its failover history) is within [0, kMaxFailoverVersion]. A record from a peer is
// checked before it is merged (protocol/input_bounds.h): a record at INT64_MAX would win every
// merge and leave no version for any failover.
[[nodiscard]] absl::Status ValidateRecordVersions(const NamespaceRecord& record);

// Merges a record received from a peer into the local one (nullopt: unknown locally). Returns
// the record to store, or nullopt if `incoming` brings nothing newer. The failover part (active
// cluster, failover version, state, handover) is taken from the record with the higher
// (failover_version, state_sequence) (protocol/handover.h); the failover history is the union
// of both (ordered by failover version, the newest kMaxFailoverHistory), so a failover recorded
// on either side of a partition is kept; the settings (member clusters, members awaiting
// history) from the one with the higher (config_version, config_failover_version), so changes
// made on both sides of a split brain converge too. Never wall-clock.
// True when `a`'s settings are newer than `b`'s: higher (config_version, config_failover_version).
[[nodiscard]] bool SettingsNewer(const NamespaceRecord& a, const NamespaceRecord& b);

[[nodiscard]] std::optional<NamespaceRecord> MergeNamespaceRecord(
    const std::optional<NamespaceRecord>& local, const NamespaceRecord& incoming);

}  // namespace xdc
