// A small harness for running real processes (xdcd, xdc-kafka-mock) in end-to-end and chaos
// tests: spawn with output captured to a log file, wait for a line on that output, crash
// (SIGKILL), stop (SIGTERM, then SIGKILL) and reap.
//
// Contract:
//   - Spawn() fork/execs argv[0] (a path; no PATH lookup) with argv, stdin from /dev/null and
//     stdout+stderr appended to `log_path` (created if missing). The child leads its own process
//     group, so signals reach whatever it forks, and it does not inherit the caller's other file
//     descriptors, signal mask or ignored signals. A failed exec is reported by Spawn itself.
//   - A log file may be shared by successive incarnations of one server (crash, then restart):
//     Spawn appends a header line naming the command, and WaitForLine() and ReadLog() only look
//     at what was written after it, i.e. by this incarnation.
//   - Every wait has a deadline; polling the log file or waitpid(WNOHANG) until a deadline is how
//     conditions are awaited. Nothing here sleeps as a means of synchronisation.
//   - The destructor SIGKILLs and reaps a child that is still running, so a failing test leaks
//     no process.
//
// Thread-safety: a ChildProcess is not thread-safe: one thread (its owner) calls its methods.
// pid() and log_path() never change and may be read from any thread.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace xdc::chaos {

// How a child ended.
struct ExitStatus {
  int exit_code = -1;  // the code passed to exit() when the child exited; -1 otherwise
  int signal = 0;      // the signal that killed the child; 0 when it exited

  [[nodiscard]] bool exited_cleanly() const { return signal == 0 && exit_code == 0; }
  // "exit code 2" or "killed by signal 9 (Killed)".
  [[nodiscard]] std::string ToString() const;
};

class ChildProcess {
 public:
  // Starts argv[0] with `argv`; output goes to `log_path` (appended). INVALID_ARGUMENT for an
  // empty argv; an error naming the path and errno when the log cannot be opened or the exec
  // fails (e.g. NOT_FOUND for a missing binary).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ChildProcess>> Spawn(
      const std::vector<std::string>& argv, const std::string& log_path);

  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  // SIGKILLs the process group and reaps the child if it is still running.
  ~ChildProcess();

  // Waits until this incarnation's output holds a complete line (ending in '\n') in which the
  // ECMAScript regular expression `pattern` matches (std::regex_search; a plain string without
  // metacharacters matches as a substring, anchor it with '^' for a prefix), and returns that
  // line without its '\n'. Lines are searched from the start of this incarnation's output on
  // every call, so waiting twice for the same pattern returns the same line.
  // DEADLINE_EXCEEDED after `timeout`; FAILED_PRECONDITION if the child exits without printing
  // such a line; both errors quote the end of the log. INVALID_ARGUMENT for a bad pattern.
  [[nodiscard]] absl::StatusOr<std::string> WaitForLine(const std::string& pattern,
                                                        absl::Duration timeout);

  // Like WaitForLine, and also returns the pattern's capture groups: element 0 is the whole
  // line, element i the i-th group (empty if it did not participate).
  [[nodiscard]] absl::StatusOr<std::vector<std::string>> WaitForMatch(const std::string& pattern,
                                                                      absl::Duration timeout);

  // Sends `signal` to the child's process group. FAILED_PRECONDITION if the child was already
  // reaped (its pid may have been reused). Does not wait: call Wait() to reap.
  [[nodiscard]] absl::Status Kill(int signal);

  // Waits up to `timeout` for the child to end and reaps it; DEADLINE_EXCEEDED if it is still
  // running then. Once reaped, returns the same ExitStatus on every call.
  [[nodiscard]] absl::StatusOr<ExitStatus> Wait(absl::Duration timeout = absl::InfiniteDuration());

  // SIGTERM, then waits up to `grace`; SIGKILL (and reaps) if the child is still running then.
  // Returns how the child ended (a signal of SIGKILL means it did not stop in time).
  [[nodiscard]] absl::StatusOr<ExitStatus> Terminate(absl::Duration grace = absl::Seconds(10));

  // True until the child has been seen to end (reaps it if it just did).
  [[nodiscard]] bool IsRunning();

  // This incarnation's output so far (after the header line Spawn wrote).
  [[nodiscard]] absl::StatusOr<std::string> ReadLog() const;
  // The last `max_lines` lines of this incarnation's output, for error messages.
  [[nodiscard]] std::string LogTail(int max_lines = 30) const;

  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] const std::string& log_path() const { return log_path_; }

 private:
  ChildProcess(pid_t pid, std::string log_path, off_t log_start)
      : pid_(pid), log_path_(std::move(log_path)), log_start_(log_start) {}

  // waitpid(WNOHANG); records the exit status when the child has ended.
  void Poll();

  const pid_t pid_;
  const std::string log_path_;
  const off_t log_start_;           // offset of this incarnation's first output byte in the log
  std::optional<ExitStatus> exit_;  // set once the child was reaped
};

}  // namespace xdc::chaos
