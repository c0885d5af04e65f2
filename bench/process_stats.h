// CPU time and memory of a process, from /proc (Linux).
//
// Contract: NOT_FOUND once the process has ended; values are the kernel's at the time of the call.
// Thread-safety: stateless, thread-safe.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "absl/status/statusor.h"

namespace xdc::bench {

struct ProcessStats {
  double cpu_seconds = 0;    // user + system, whole lifetime (/proc/PID/stat utime + stime)
  int64_t rss_kib = 0;       // resident now (/proc/PID/status VmRSS)
  int64_t peak_rss_kib = 0;  // resident high-water mark (VmHWM)
};

[[nodiscard]] absl::StatusOr<ProcessStats> ReadProcessStats(pid_t pid);

}  // namespace xdc::bench
