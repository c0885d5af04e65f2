#include "protocol/namespace_record.h"

#include <algorithm>

#include "absl/strings/str_format.h"
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
    *merged.mutable_failover_history() = incoming.failover_history();
    changed = true;
  }
  if (incoming.config_version() > local->config_version()) {
    *merged.mutable_clusters() = incoming.clusters();
    merged.set_config_version(incoming.config_version());
    changed = true;
  }
  if (!changed) return std::nullopt;
  return merged;
}

}  // namespace xdc
