#include "bench/process_stats.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace xdc::bench {
namespace {

// Fields 14 and 15 of /proc/PID/stat (1-based), counted after the ")" closing the command name.
constexpr int kUtimeFieldAfterComm = 11;
constexpr int kStimeFieldAfterComm = 12;

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path, " (process ended?)"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace

absl::StatusOr<ProcessStats> ReadProcessStats(pid_t pid) {
  if (pid <= 0) return absl::NotFoundError("no process");
  absl::StatusOr<std::string> stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) return stat.status();
  absl::StatusOr<std::string> status = ReadFile(absl::StrCat("/proc/", pid, "/status"));
  if (!status.ok()) return status.status();
  ProcessStats stats;
  const size_t comm_end = stat->rfind(')');
  if (comm_end == std::string::npos) return absl::InternalError("unparsable /proc/PID/stat");
  std::vector<std::string> fields =
      absl::StrSplit(stat->substr(comm_end + 2), ' ', absl::SkipEmpty());
  int64_t utime = 0, stime = 0;
  if (fields.size() <= kStimeFieldAfterComm ||
      !absl::SimpleAtoi(fields[kUtimeFieldAfterComm], &utime) ||
      !absl::SimpleAtoi(fields[kStimeFieldAfterComm], &stime)) {
    return absl::InternalError("unparsable /proc/PID/stat");
  }
  stats.cpu_seconds =
      static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  for (absl::string_view line : absl::StrSplit(*status, '\n')) {
    auto value = [&](absl::string_view key, int64_t& out) {
      if (line.substr(0, key.size()) != key) return;
      absl::string_view rest = line.substr(key.size());
      rest = absl::StripAsciiWhitespace(rest);
      rest = rest.substr(0, rest.find(' '));
      (void)absl::SimpleAtoi(rest, &out);
    };
    value("VmRSS:", stats.rss_kib);
    value("VmHWM:", stats.peak_rss_kib);
  }
  return stats;
}

}  // namespace xdc::bench
