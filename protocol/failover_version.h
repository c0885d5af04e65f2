// Failover-version arithmetic. Pure functions.
//
// Every cluster has an initial_failover_version v0 with 1 <= v0 < increment. The owner of a
// version v is the cluster whose v0 == v mod increment. Versions only grow.
#pragma once

#include <cstdint>

namespace xdc {

// True when `version` belongs to the cluster with `initial_version`.
[[nodiscard]] bool OwnsVersion(int64_t version, int64_t initial_version, int64_t increment);

// The smallest v' >= current with v' mod increment == target_initial_version: the version a
// failover to that cluster picks.
[[nodiscard]] int64_t NextVersionFor(int64_t current, int64_t target_initial_version,
                                     int64_t increment);

}  // namespace xdc
