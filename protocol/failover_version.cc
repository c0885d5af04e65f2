#include "protocol/failover_version.h"

#include <limits>

#include "absl/strings/str_format.h"

namespace xdc {

absl::Status ValidateVersionLayout(int64_t initial_version, int64_t increment) {
  if (increment < 2) {
    return absl::InvalidArgumentError(
        absl::StrFormat("failover_version_increment %d is below 2", increment));
  }
  if (initial_version < 1 || initial_version >= increment) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "initial failover version %d is outside [1, %d)", initial_version, increment));
  }
  return absl::OkStatus();
}

bool OwnsVersion(int64_t version, int64_t initial_version, int64_t increment) {
  if (!ValidateVersionLayout(initial_version, increment).ok() || version < 0) return false;
  return version % increment == initial_version;
}

absl::StatusOr<int64_t> NextVersionFor(int64_t current, int64_t target_initial_version,
                                       int64_t increment) {
  if (absl::Status s = ValidateVersionLayout(target_initial_version, increment); !s.ok()) return s;
  if (current < 0) {
    return absl::InvalidArgumentError(absl::StrFormat("failover version %d is negative", current));
  }
  const int64_t base = current - current % increment;
  if (base > std::numeric_limits<int64_t>::max() - increment - target_initial_version) {
    return absl::OutOfRangeError(
        absl::StrFormat("failover version %d is too large to fail over again", current));
  }
  const int64_t candidate = base + target_initial_version;
  return candidate >= current ? candidate : candidate + increment;
}

absl::StatusOr<std::string> OwnerOfVersion(
    int64_t version, const google::protobuf::RepeatedPtrField<ClusterConfig>& clusters,
    int64_t increment) {
  for (const ClusterConfig& cluster : clusters) {
    if (OwnsVersion(version, cluster.initial_failover_version(), increment)) return cluster.name();
  }
  return absl::NotFoundError(
      absl::StrFormat("no configured cluster owns failover version %d", version));
}

}  // namespace xdc
