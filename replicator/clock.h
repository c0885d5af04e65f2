// Time behind a seam: components take a Clock so tests and the simulator can drive it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

namespace xdc {

// Returns microseconds since the Unix epoch.
using Clock = std::function<int64_t()>;

inline int64_t SystemNowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace xdc
