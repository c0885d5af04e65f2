// One monotonic time base for everything xdc-bench records (load generator, lag sampler, RSS
// sampler): microseconds of std::chrono::steady_clock. Comparable across threads of this process.
#pragma once

#include <chrono>
#include <cstdint>

namespace xdc::bench {

[[nodiscard]] inline int64_t MonoMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace xdc::bench
