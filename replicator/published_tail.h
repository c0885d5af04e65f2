// Reads the newest task of every shard of this cluster's own history topic: what its last
// incarnation published, for the startup check (protocol/startup_check.h). Peers may not have
// applied it yet, but they will: it is the part of a lost state that still reaches them.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "protocol/startup_check.h"
#include "protocol/xdc.pb.h"
#include "replicator/tunables.h"

namespace xdc {

// One PublishedTail per shard whose partition holds a message (an empty partition has none).
// UNAVAILABLE when Kafka cannot be asked (the caller tries again). A last message that does not
// decode counts as nothing for its shard (peers' reports still do).
[[nodiscard]] absl::StatusOr<std::vector<PublishedTail>> ReadPublishedTails(
    const DaemonConfig& config, const Tunables& tunables, const std::string& bootstrap);

}  // namespace xdc
