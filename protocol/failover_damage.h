// The damage of forced failovers (their real RPO), computed from a workflow's branches.
//
// A losing branch holds the events written after its fork from the current branch: writes the
// namespace lost. They are charged to the failover that made the current branch win: the version
// of the current branch's first event after the fork (the version the new active wrote at). Of
// them, signals, cancel requests and terminations are reapplied to the current branch; a copy
// names its origin, so the count of reapplied events is exact.
//
// Computed from the branches alone, so every cluster reports the same figures once converged, and
// a recount (a restart, a second describe) never double counts. Pure.
#pragma once

#include <cstdint>
#include <functional>
#include <map>

#include "absl/status/statusor.h"
#include "protocol/xdc.pb.h"

namespace xdc {

// Reads the events of one branch of the workflow, in event id order.
using BranchReader = std::function<absl::StatusOr<google::protobuf::RepeatedPtrField<HistoryEvent>>(
    const VersionHistory& branch)>;

// Adds the workflow's losing branches to `by_version` (key: the failover version charged).
[[nodiscard]] absl::Status AccumulateFailoverDamage(const WorkflowMutableState& state,
                                                    const BranchReader& read_branch,
                                                    std::map<int64_t, FailoverDamage>& by_version);

}  // namespace xdc
