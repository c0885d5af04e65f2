#include "chaos/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace xdc::chaos {
namespace {

// How often a wait looks at the log file or the child's state again.
constexpr absl::Duration kPollInterval = absl::Milliseconds(5);
// The exec-failure pipe lives on this descriptor in the child, above stdin/stdout/stderr.
constexpr int kChildErrorFd = 3;

absl::Status ErrnoError(int error, const std::string& what) {
  std::string message = absl::StrCat(what, ": ", std::strerror(error));
  switch (error) {
    case ENOENT:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    default:
      return absl::InternalError(message);
  }
}

// Closes a descriptor on scope exit.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  void Reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

// Runs in the forked child: only async-signal-safe calls until execv. Never returns.
[[noreturn]] void ExecChild(char* const* argv, int log_fd, int null_fd, int error_fd) {
  // The parent may be multi-threaded and have blocked or ignored signals; start like a shell
  // would start the program.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig = 1; sig < NSIG; ++sig) signal(sig, SIG_DFL);
  setpgid(0, 0);
  bool ok = dup2(null_fd, STDIN_FILENO) >= 0 && dup2(log_fd, STDOUT_FILENO) >= 0 &&
            dup2(log_fd, STDERR_FILENO) >= 0 && dup2(error_fd, kChildErrorFd) >= 0 &&
            fcntl(kChildErrorFd, F_SETFD, FD_CLOEXEC) >= 0;
  // Do not leak the test's sockets and files into the server.
  if (ok && syscall(SYS_close_range, kChildErrorFd + 1, ~0U, 0) != 0) {
    for (int fd = kChildErrorFd + 1; fd < 1024; ++fd) close(fd);
  }
  if (ok) execv(argv[0], argv);
  const int error = errno;
  // Best effort: the parent reads errno from the pipe (EOF there means exec succeeded).
  ssize_t written = write(kChildErrorFd, &error, sizeof error);
  (void)written;
  _exit(127);
}

// Reads bytes [offset, end) of the file at `path`.
absl::StatusOr<std::string> ReadFrom(const std::string& path, off_t offset) {
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoError(errno, absl::StrCat("opening log ", path));
  std::string out;
  char buffer[1 << 16];
  for (;;) {
    ssize_t n = pread(fd.get(), buffer, sizeof buffer, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, absl::StrCat("reading log ", path));
    }
    if (n == 0) break;
    out.append(buffer, static_cast<size_t>(n));
    offset += n;
  }
  return out;
}

ExitStatus FromWaitStatus(int status) {
  ExitStatus exit;
  if (WIFEXITED(status)) {
    exit.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    exit.signal = WTERMSIG(status);
  }
  return exit;
}

}  // namespace

std::string ExitStatus::ToString() const {
  if (signal != 0) return absl::StrCat("killed by signal ", signal, " (", strsignal(signal), ")");
  return absl::StrCat("exit code ", exit_code);
}

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Spawn(
    const std::vector<std::string>& argv, const std::string& log_path) {
  if (argv.empty() || argv[0].empty()) {
    return absl::InvalidArgumentError("Spawn needs a program path in argv[0]");
  }
  // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
  std::vector<char*> c_argv;
  for (const std::string& arg : argv) c_argv.push_back(const_cast<char*>(arg.c_str()));
  c_argv.push_back(nullptr);

  Fd log_fd(open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (log_fd.get() < 0) return ErrnoError(errno, absl::StrCat("opening log ", log_path));
  const std::string header = absl::StrCat("--- chaos: starting ", absl::StrJoin(argv, " "), "\n");
  if (write(log_fd.get(), header.data(), header.size()) != static_cast<ssize_t>(header.size())) {
    return ErrnoError(errno, absl::StrCat("writing log ", log_path));
  }
  struct stat log_stat;
  if (fstat(log_fd.get(), &log_stat) != 0) {
    return ErrnoError(errno, absl::StrCat("stat of log ", log_path));
  }
  Fd null_fd(open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (null_fd.get() < 0) return ErrnoError(errno, "opening /dev/null");
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return ErrnoError(errno, "creating a pipe");
  Fd error_read(pipe_fds[0]);
  Fd error_write(pipe_fds[1]);

  const pid_t pid = fork();
  if (pid < 0) return ErrnoError(errno, "fork");
  if (pid == 0) ExecChild(c_argv.data(), log_fd.get(), null_fd.get(), error_write.get());
  // Also set the group here, so that a Kill() right after Spawn() reaches the group even if the
  // child has not run yet (EACCES once it has exec'ed: it then set the group itself).
  setpgid(pid, pid);
  std::unique_ptr<ChildProcess> child(new ChildProcess(pid, log_path, log_stat.st_size));

  error_write.Reset();
  int exec_errno = 0;
  ssize_t n;
  do {
    n = read(error_read.get(), &exec_errno, sizeof exec_errno);
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    absl::StatusOr<ExitStatus> reaped = child->Wait();
    (void)reaped;
    return ErrnoError(exec_errno, absl::StrCat("starting ", argv[0]));
  }
  return child;
}

ChildProcess::~ChildProcess() {
  Poll();
  if (exit_.has_value()) return;
  kill(-pid_, SIGKILL);
  absl::StatusOr<ExitStatus> reaped = Wait();
  (void)reaped;
}

void ChildProcess::Poll() {
  if (exit_.has_value()) return;
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) {
    exit_ = FromWaitStatus(status);
  } else if (r < 0) {
    // ECHILD: someone else reaped it; treat as ended with an unknown status.
    exit_ = ExitStatus{};
  }
}

bool ChildProcess::IsRunning() {
  Poll();
  return !exit_.has_value();
}

absl::Status ChildProcess::Kill(int signal) {
  Poll();
  if (exit_.has_value()) {
    return absl::FailedPreconditionError(
        absl::StrCat("process ", pid_, " already ended (", exit_->ToString(), ")"));
  }
  // A zombie leader keeps its group id reserved, so the group cannot have been reused yet.
  if (kill(-pid_, signal) != 0 && kill(pid_, signal) != 0) {
    return ErrnoError(errno, absl::StrCat("sending signal ", signal, " to ", pid_));
  }
  return absl::OkStatus();
}

absl::StatusOr<ExitStatus> ChildProcess::Wait(absl::Duration timeout) {
  if (timeout == absl::InfiniteDuration()) {
    while (!exit_.has_value()) {
      int status = 0;
      pid_t r = waitpid(pid_, &status, 0);
      if (r == pid_) {
        exit_ = FromWaitStatus(status);
      } else if (r < 0 && errno != EINTR) {
        exit_ = ExitStatus{};
      }
    }
    return *exit_;
  }
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    Poll();
    if (exit_.has_value()) return *exit_;
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("process ", pid_, " still running after ", absl::FormatDuration(timeout)));
    }
    absl::SleepFor(kPollInterval);
  }
}

absl::StatusOr<ExitStatus> ChildProcess::Terminate(absl::Duration grace) {
  Poll();
  if (exit_.has_value()) return *exit_;
  if (absl::Status s = Kill(SIGTERM); !s.ok()) return s;
  absl::StatusOr<ExitStatus> exit = Wait(grace);
  if (exit.ok() || !absl::IsDeadlineExceeded(exit.status())) return exit;
  if (absl::Status s = Kill(SIGKILL); !s.ok()) return s;
  return Wait();
}

absl::StatusOr<std::string> ChildProcess::ReadLog() const {
  return ReadFrom(log_path_, log_start_);
}

std::string ChildProcess::LogTail(int max_lines) const {
  absl::StatusOr<std::string> log = ReadLog();
  if (!log.ok()) return std::string(log.status().message());
  std::vector<absl::string_view> lines = absl::StrSplit(*log, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  const size_t first = lines.size() > static_cast<size_t>(max_lines) ? lines.size() - max_lines : 0;
  std::string tail;
  for (size_t i = first; i < lines.size(); ++i) absl::StrAppend(&tail, "  | ", lines[i], "\n");
  return tail;
}

absl::StatusOr<std::string> ChildProcess::WaitForLine(const std::string& pattern,
                                                      absl::Duration timeout) {
  absl::StatusOr<std::vector<std::string>> match = WaitForMatch(pattern, timeout);
  if (!match.ok()) return match.status();
  return (*match)[0];
}

absl::StatusOr<std::vector<std::string>> ChildProcess::WaitForMatch(const std::string& pattern,
                                                                    absl::Duration timeout) {
  std::regex regex;
  try {
    regex = std::regex(pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    return absl::InvalidArgumentError(absl::StrCat("bad pattern '", pattern, "': ", e.what()));
  }
  const absl::Time deadline = absl::Now() + timeout;
  off_t scanned = log_start_;  // bytes before this offset are complete lines already searched
  std::string partial;         // an incomplete last line, read but not yet searched
  for (;;) {
    // Look at the child's state before reading, so that a line printed just before it exited
    // is still found below.
    Poll();
    const bool ended = exit_.has_value();
    absl::StatusOr<std::string> chunk = ReadFrom(log_path_, scanned + partial.size());
    if (!chunk.ok()) return chunk.status();
    partial += *chunk;
    size_t begin = 0;
    for (size_t end; (end = partial.find('\n', begin)) != std::string::npos; begin = end + 1) {
      const std::string line = partial.substr(begin, end - begin);
      std::smatch groups;
      if (std::regex_search(line, groups, regex)) {
        std::vector<std::string> result;
        result.push_back(line);
        for (size_t g = 1; g < groups.size(); ++g) result.push_back(groups[g].str());
        return result;
      }
    }
    scanned += begin;
    partial.erase(0, begin);
    if (ended) {
      return absl::FailedPreconditionError(absl::StrCat(
          "process ", pid_, " ended (", exit_->ToString(), ") without printing a line matching '",
          pattern, "'; log ", log_path_, " ends with:\n", LogTail()));
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "no line matching '", pattern, "' from process ", pid_, " within ",
          absl::FormatDuration(timeout), "; log ", log_path_, " ends with:\n", LogTail()));
    }
    absl::SleepFor(kPollInterval);
  }
}

}  // namespace xdc::chaos
