// The daemon's log: one line per event on stderr, as text ("xdcd: ...", the default) or as JSON
// lines (`log { format: "json" }` in the config) with the cluster, level, time and, where known,
// the namespace, workflow, shard and peer. Lines below the configured level are dropped.
//
// Repeated failures do not flood the log: each call names a rate-limit key (e.g.
// "publish.delivery_failed"); at most kLogBurst lines per key are written per kLogWindow, and the
// next line written for that key says how many were suppressed. An empty key is never limited:
// for events an operator must see every one of (handover decisions, operator actions).
//
// Thread-safe. Configure() once at start, before other threads log.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace xdc::log {

enum class Level { kDebug, kInfo, kWarning, kError };
enum class Format { kText, kJson };

inline constexpr int kLogBurst = 5;                              // lines per key per window
inline constexpr absl::Duration kLogWindow = absl::Seconds(10);  // the rate limit's window

// What a line is about, as far as the caller knows (empty / -1: not given).
// Built with the setters: log::Fields().Shard(3).Peer("west").
struct Fields {
  std::string namespace_name;
  std::string workflow_id;
  int32_t shard = -1;
  std::string peer;

  Fields& Namespace(std::string name) {
    namespace_name = std::move(name);
    return *this;
  }
  Fields& Workflow(std::string id) {
    workflow_id = std::move(id);
    return *this;
  }
  Fields& Shard(int32_t id) {
    shard = id;
    return *this;
  }
  Fields& Peer(std::string cluster) {
    peer = std::move(cluster);
    return *this;
  }
};

// "debug", "info", "warning", "error"; INVALID_ARGUMENT naming the choices otherwise.
[[nodiscard]] absl::StatusOr<Level> ParseLevel(std::string_view name);
// "text" or "json".
[[nodiscard]] absl::StatusOr<Format> ParseFormat(std::string_view name);

// Sets the cluster every line names, the lowest level written and the format.
void Configure(std::string cluster, Level min_level, Format format);

// Writes `message` at `level` (subject to the level and, unless `key` is empty, to its rate
// limit).
void Write(Level level, std::string_view key, std::string_view message, const Fields& fields = {});

// One line as Write() would print it, without its '\n' (pure; for tests).
[[nodiscard]] std::string FormatLine(Format format, absl::Time time, std::string_view cluster,
                                     Level level, std::string_view message, const Fields& fields,
                                     int64_t suppressed);

// At most kLogBurst lines per key per kLogWindow. Not thread-safe (the logger guards it).
class RateLimiter {
 public:
  // Whether a line for `key` may be written at `now`; if so, `suppressed` is set to how many
  // were dropped for that key since the last one written.
  [[nodiscard]] bool Allow(std::string_view key, absl::Time now, int64_t& suppressed);

 private:
  struct Window {
    absl::Time start;
    int written = 0;
    int64_t suppressed = 0;
  };
  std::map<std::string, Window, std::less<>> windows_;
};

}  // namespace xdc::log
