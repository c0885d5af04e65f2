#include "protocol/namespace_record.h"

#include <algorithm>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "protocol/failover_version.h"
#include "protocol/handover.h"

namespace xdc {

absl::Status ValidateNamespaceName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNamespaceNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("namespace name must be 1 to %d bytes long", kMaxNamespaceNameBytes));
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "namespace name '%s' may only contain letters, digits, '.', '_' and '-'", name));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateRecordVersions(const NamespaceRecord& record) {
  std::vector<std::pair<int64_t, std::string>> versions = {
      {record.failover_version(), "failover_version"},
      {record.last_proposed_version(), "last_proposed_version"},
      {record.handover().proposed_version(), "handover.proposed_version"}};
  for (int i = 0; i < record.failover_history_size(); ++i) {
    const FailoverEvent& event = record.failover_history(i);
    versions.emplace_back(event.from_version(),
                          absl::StrFormat("failover_history[%d].from_version", i));
    versions.emplace_back(event.failover_version(),
                          absl::StrFormat("failover_history[%d].failover_version", i));
  }
  for (const auto& [version, what] : versions) {
    if (absl::Status s = ValidateFailoverVersion(version, what); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrFormat("namespace record '%s' (id %s): %s",
                                                        record.name(), record.id(), s.message()));
    }
  }
  return absl::OkStatus();
}

namespace {

bool SameFailover(const FailoverEvent& a, const FailoverEvent& b) {
  return a.kind() == b.kind() && a.failover_version() == b.failover_version() &&
         a.from_cluster() == b.from_cluster() && a.to_cluster() == b.to_cluster();
}

// A record holding the union of both records' failover histories (an event in both once, as
// `local` has it), ordered by failover version, then completion time, then kind, and cut to the
// newest kMaxFailoverHistory: the same history whichever order records arrive in.
NamespaceRecord MergedFailoverHistory(const NamespaceRecord& local,
                                      const NamespaceRecord& incoming) {
  std::vector<FailoverEvent> events(local.failover_history().begin(),
                                    local.failover_history().end());
  for (const FailoverEvent& event : incoming.failover_history()) {
    if (std::none_of(events.begin(), events.end(),
                     [&](const FailoverEvent& known) { return SameFailover(known, event); })) {
      events.push_back(event);
    }
  }
  std::stable_sort(events.begin(), events.end(),
                   [](const FailoverEvent& a, const FailoverEvent& b) {
                     return std::tuple(a.failover_version(), a.completed_unix_micros(), a.kind()) <
                            std::tuple(b.failover_version(), b.completed_unix_micros(), b.kind());
                   });
  NamespaceRecord merged;
  for (FailoverEvent& event : events) AppendFailoverEvent(merged, std::move(event));
  return merged;
}

}  // namespace

bool SettingsNewer(const NamespaceRecord& a, const NamespaceRecord& b) {
  return std::pair(a.config_version(), a.config_failover_version()) >
         std::pair(b.config_version(), b.config_failover_version());
}

std::optional<NamespaceRecord> MergeNamespaceRecord(const std::optional<NamespaceRecord>& local,
                                                    const NamespaceRecord& incoming) {
  if (!local.has_value()) return incoming;
  NamespaceRecord merged = *local;
  bool changed = false;
  if (FailoverPartNewer(incoming, *local)) {
    merged.set_active_cluster(incoming.active_cluster());
    merged.set_failover_version(incoming.failover_version());
    merged.set_state(incoming.state());
    merged.set_state_sequence(incoming.state_sequence());
    if (incoming.has_handover()) {
      *merged.mutable_handover() = incoming.handover();
    } else {
      merged.clear_handover();
    }
    merged.set_last_proposed_version(
        std::max(local->last_proposed_version(), incoming.last_proposed_version()));
    changed = true;
  }
  // Both sides' failovers stay in the history: a forced failover decided on one side of a
  // partition must not erase the handover the other side recorded before it.
  if (NamespaceRecord history = MergedFailoverHistory(merged, incoming); !std::equal(
          history.failover_history().begin(), history.failover_history().end(),
          merged.failover_history().begin(), merged.failover_history().end(), SameFailover)) {
    *merged.mutable_failover_history() = history.failover_history();
    changed = true;
  }
  if (SettingsNewer(incoming, *local)) {
    *merged.mutable_clusters() = incoming.clusters();
    *merged.mutable_members_awaiting_history() = incoming.members_awaiting_history();
    merged.set_config_version(incoming.config_version());
    merged.set_config_failover_version(incoming.config_failover_version());
    changed = true;
  }
  if (!changed) return std::nullopt;
  return merged;
}

}  // namespace xdc
