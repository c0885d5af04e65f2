// Failover-version arithmetic. Pure functions.
//
// Every cluster has an initial_failover_version v0 with 1 <= v0 < increment. The owner of a
// version v is the cluster whose v0 == v mod increment. Versions only grow. Malformed inputs
// (an increment below 2, an initial version outside [1, increment), a negative version) are
// rejected with INVALID_ARGUMENT, never a crash.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "protocol/xdc.pb.h"

namespace xdc {

// The highest failover version a record, proposal or decision may carry: 2^62, more than a
// failover a millisecond for 146 million years, and far enough below INT64_MAX that the next
// version (one above, rounded up to the next owned one) never overflows. A peer's message
// above it is refused where it is received (protocol/input_bounds.h); a failover that would
// go above it fails with OUT_OF_RANGE.
inline constexpr int64_t kMaxFailoverVersion = int64_t{1} << 62;

// INVALID_ARGUMENT (naming `what` and the bound) unless 0 <= version <= kMaxFailoverVersion.
[[nodiscard]] absl::Status ValidateFailoverVersion(int64_t version, std::string_view what);

// Checks 2 <= increment and 1 <= initial_version < increment.
[[nodiscard]] absl::Status ValidateVersionLayout(int64_t initial_version, int64_t increment);

// True when `version` belongs to the cluster with `initial_version`; false for malformed input.
[[nodiscard]] bool OwnsVersion(int64_t version, int64_t initial_version, int64_t increment);

// The smallest v' >= current with v' mod increment == target_initial_version: the version a
// failover to that cluster picks. OUT_OF_RANGE (naming the maximum failover version) when v'
// would be above kMaxFailoverVersion.
[[nodiscard]] absl::StatusOr<int64_t> NextVersionFor(int64_t current,
                                                     int64_t target_initial_version,
                                                     int64_t increment);

// The smallest v' > floor owned by the cluster with `target_initial_version`: what a handover
// proposes and a forced failover takes. OUT_OF_RANGE (naming the maximum failover version) when
// floor >= kMaxFailoverVersion or v' would be above it; never overflows.
[[nodiscard]] absl::StatusOr<int64_t> NextVersionAbove(int64_t floor,
                                                       int64_t target_initial_version,
                                                       int64_t increment);

// The name of the cluster that owns `version`, or NOT_FOUND if no cluster of `clusters` does.
[[nodiscard]] absl::StatusOr<std::string> OwnerOfVersion(
    int64_t version, const google::protobuf::RepeatedPtrField<ClusterConfig>& clusters,
    int64_t increment);

}  // namespace xdc
