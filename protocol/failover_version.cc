#include "protocol/failover_version.h"

#include <limits>

#include "absl/strings/str_format.h"

namespace xdc {

absl::Status ValidateFailoverVersion(int64_t version, std::string_view what) {
  if (version < 0 || version > kMaxFailoverVersion) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s %d is outside [0, %d] (the maximum failover version)", what, version,
                        kMaxFailoverVersion));
  }
  return absl::OkStatus();
}

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
  if (current > kMaxFailoverVersion) {
    return absl::OutOfRangeError(absl::StrFormat(
        "failover version %d is above the maximum failover version %d: no further failover is "
        "possible",
        current, kMaxFailoverVersion));
  }
  const int64_t base = current - current % increment;
  if (base > std::numeric_limits<int64_t>::max() - increment - target_initial_version) {
    return absl::OutOfRangeError(
        absl::StrFormat("failover version %d is too large to fail over again", current));
  }
  const int64_t candidate = base + target_initial_version;
  const int64_t next = candidate >= current ? candidate : candidate + increment;
  if (next > kMaxFailoverVersion) {
    return absl::OutOfRangeError(absl::StrFormat(
        "failing over from failover version %d would take version %d, above the maximum failover "
        "version %d: no further failover is possible",
        current, next, kMaxFailoverVersion));
  }
  return next;
}

absl::StatusOr<int64_t> NextVersionAbove(int64_t floor, int64_t target_initial_version,
                                         int64_t increment) {
  if (floor >= kMaxFailoverVersion) {
    return absl::OutOfRangeError(absl::StrFormat(
        "failover version %d is at or above the maximum failover version %d: no further failover "
        "is possible",
        floor, kMaxFailoverVersion));
  }
  return NextVersionFor(floor + 1, target_initial_version, increment);
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
