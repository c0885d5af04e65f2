#include "protocol/failover_version.h"

namespace xdc {

bool OwnsVersion(int64_t version, int64_t initial_version, int64_t increment) {
  return version % increment == initial_version;
}

int64_t NextVersionFor(int64_t current, int64_t target_initial_version, int64_t increment) {
  int64_t base = current - current % increment;
  int64_t candidate = base + target_initial_version;
  return candidate >= current ? candidate : candidate + increment;
}

}  // namespace xdc
