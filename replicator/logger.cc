#include "replicator/logger.h"

#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "replicator/json_quote.h"

namespace xdc::log {
namespace {

// Keys of at most this many distinct rate-limit windows are kept; beyond it the oldest are
// forgotten (keys are code locations, so this is never reached in practice).
constexpr size_t kMaxRateLimitKeys = 1024;

struct State {
  absl::Mutex mu;
  std::string cluster ABSL_GUARDED_BY(mu);
  Level min_level ABSL_GUARDED_BY(mu) = Level::kInfo;
  Format format ABSL_GUARDED_BY(mu) = Format::kText;
  RateLimiter limiter ABSL_GUARDED_BY(mu);
};

State& GetState() {
  static State* const state = new State();
  return *state;
}

std::string_view LevelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarning:
      return "warning";
    case Level::kError:
      return "error";
  }
  return "info";
}

}  // namespace

absl::StatusOr<Level> ParseLevel(std::string_view name) {
  for (Level level : {Level::kDebug, Level::kInfo, Level::kWarning, Level::kError}) {
    if (name == LevelName(level)) return level;
  }
  return absl::InvalidArgumentError(absl::StrFormat(
      "log level '%s' is not one of debug, info, warning, error", std::string(name)));
}

absl::StatusOr<Format> ParseFormat(std::string_view name) {
  if (name == "text") return Format::kText;
  if (name == "json") return Format::kJson;
  return absl::InvalidArgumentError(
      absl::StrFormat("log format '%s' is not one of text, json", std::string(name)));
}

void Configure(std::string cluster, Level min_level, Format format) {
  State& state = GetState();
  absl::MutexLock lock(&state.mu);
  state.cluster = std::move(cluster);
  state.min_level = min_level;
  state.format = format;
}

std::string FormatLine(Format format, absl::Time time, std::string_view cluster, Level level,
                       std::string_view message, const Fields& fields, int64_t suppressed) {
  if (format == Format::kText) {
    std::string line = absl::StrCat("xdcd: ", std::string(message));
    if (suppressed > 0) {
      absl::StrAppend(&line, " (", suppressed, " similar lines suppressed before this one)");
    }
    return line;
  }
  std::string line = absl::StrCat(
      "{\"time\":", JsonQuote(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", time, absl::UTCTimeZone())),
      ",\"level\":", JsonQuote(LevelName(level)), ",\"cluster\":", JsonQuote(cluster),
      ",\"message\":", JsonQuote(message));
  if (!fields.namespace_name.empty()) {
    absl::StrAppend(&line, ",\"namespace\":", JsonQuote(fields.namespace_name));
  }
  if (!fields.workflow_id.empty()) {
    absl::StrAppend(&line, ",\"workflow_id\":", JsonQuote(fields.workflow_id));
  }
  if (fields.shard >= 0) absl::StrAppend(&line, ",\"shard\":", fields.shard);
  if (!fields.peer.empty()) absl::StrAppend(&line, ",\"peer\":", JsonQuote(fields.peer));
  if (suppressed > 0) absl::StrAppend(&line, ",\"suppressed\":", suppressed);
  line += '}';
  return line;
}

void Write(Level level, std::string_view key, std::string_view message, const Fields& fields) {
  State& state = GetState();
  const absl::Time now = absl::Now();
  std::string line;
  {
    absl::MutexLock lock(&state.mu);
    if (level < state.min_level) return;
    int64_t suppressed = 0;
    if (!key.empty() && !state.limiter.Allow(key, now, suppressed)) return;
    line = FormatLine(state.format, now, state.cluster, level, message, fields, suppressed);
  }
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stderr);  // one write per line: lines never interleave
}

bool RateLimiter::Allow(std::string_view key, absl::Time now, int64_t& suppressed) {
  suppressed = 0;
  auto it = windows_.find(key);
  if (it == windows_.end()) {
    if (windows_.size() >= kMaxRateLimitKeys) windows_.erase(windows_.begin());
    it = windows_.emplace(std::string(key), Window{now, 0, 0}).first;
  }
  Window& window = it->second;
  if (now - window.start >= kLogWindow) {
    window.start = now;
    window.written = 0;
  }
  if (window.written >= kLogBurst) {
    ++window.suppressed;
    return false;
  }
  ++window.written;
  suppressed = window.suppressed;
  window.suppressed = 0;
  return true;
}

}  // namespace xdc::log
