#include "chaos/broker.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace xdc::chaos {
namespace {

// A real broker formats its storage and starts its JVM in a few seconds here; a restart after
// SIGKILL also recovers its log first.
constexpr absl::Duration kRealStartTimeout = absl::Seconds(90);
constexpr absl::Duration kMockStartTimeout = absl::Seconds(30);
constexpr absl::Duration kStopGrace = absl::Seconds(20);
// The line kafka.Kafka logs on stdout (scripts/kafka.sh's log4j config) once it serves.
constexpr char kRealStartedLine[] = "Kafka Server started";

// `count` distinct free loopback TCP ports: each bound to port 0 and read back while the others
// are still bound (so no two are the same: one at a time, the kernel handed a just-released port
// out again and a broker got the same port for two listeners), then all released. Another process
// could take one before the broker binds it; the broker then fails to start and says so.
absl::StatusOr<std::vector<int>> FreeLoopbackPorts(int count) {
  std::vector<int> fds;
  std::vector<int> ports;
  absl::Status status = absl::OkStatus();
  for (int i = 0; i < count && status.ok(); ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
      status = absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
      break;
    }
    fds.push_back(fd);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    socklen_t length = sizeof(address);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      status = absl::InternalError(absl::StrCat("finding a free port: ", std::strerror(errno)));
      break;
    }
    ports.push_back(ntohs(address.sin_port));
  }
  for (int fd : fds) ::close(fd);
  if (!status.ok()) return status;
  return ports;
}

}  // namespace

std::string_view BrokerKindName(BrokerKind kind) {
  return kind == BrokerKind::kReal ? "real" : "mock";
}

absl::StatusOr<BrokerKind> ParseBrokerKind(std::string_view name) {
  if (name == "real") return BrokerKind::kReal;
  if (name == "mock") return BrokerKind::kMock;
  return absl::InvalidArgumentError(
      absl::StrFormat("unknown broker kind '%s': use 'real' (Apache Kafka, installed by "
                      "scripts/kafka.sh install) or 'mock' (xdc-kafka-mock)",
                      name));
}

absl::StatusOr<std::string> KafkaLibsDir() {
  std::string dir;
  if (const char* libs = std::getenv("XDC_KAFKA_LIBS"); libs != nullptr && *libs != '\0') {
    dir = libs;
  } else {
    const char* home = std::getenv("HOME");
    dir = absl::StrCat(home == nullptr ? "/root" : home, "/.cache/xdc/kafka-", kKafkaVersion,
                       "/libs");
  }
  const std::string jar = absl::StrCat(dir, "/kafka_2.13-", kKafkaVersion, ".jar");
  std::error_code ec;
  if (!std::filesystem::exists(jar, ec)) {
    return absl::NotFoundError(absl::StrFormat(
        "Apache Kafka %s is not installed: %s is missing. Run scripts/kafka.sh install (or set "
        "XDC_KAFKA_LIBS to a folder of its jars)",
        kKafkaVersion, jar));
  }
  return dir;
}

std::string KafkaScript() {
  if (const char* script = std::getenv("XDC_KAFKA_SCRIPT"); script != nullptr && *script != '\0') {
    return script;
  }
  return XDC_SOURCE_DIR "/scripts/kafka.sh";
}

absl::StatusOr<std::unique_ptr<Broker>> Broker::Start(BrokerOptions options) {
  std::error_code ec;
  std::filesystem::create_directories(options.work_dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrFormat("cannot create broker dir %s: %s", options.work_dir, ec.message()));
  }
  std::unique_ptr<Broker> broker(new Broker(std::move(options)));
  if (broker->options_.kind == BrokerKind::kReal) {
    // Fail here, with the fix, rather than in the script's output.
    if (absl::StatusOr<std::string> libs = KafkaLibsDir(); !libs.ok()) return libs.status();
    if (broker->options_.kafka_script.empty()) broker->options_.kafka_script = KafkaScript();
    absl::StatusOr<std::vector<int>> ports = FreeLoopbackPorts(2);
    if (!ports.ok()) return ports.status();
    broker->port_ = (*ports)[0];
    broker->controller_port_ = (*ports)[1];
    broker->bootstrap_ = absl::StrCat("127.0.0.1:", broker->port_);
  }
  if (absl::Status s = broker->Launch(); !s.ok()) return s;
  return broker;
}

Broker::~Broker() = default;  // ChildProcess's destructor SIGKILLs and reaps

absl::Status Broker::Launch() {
  return options_.kind == BrokerKind::kReal ? LaunchReal() : LaunchMock();
}

absl::Status Broker::LaunchReal() {
  // scripts/kafka.sh owns how the broker is configured and formatted; `run` execs the JVM, so
  // the child's pid is the broker's.
  absl::StatusOr<std::unique_ptr<ChildProcess>> process = ChildProcess::Spawn(
      {"/bin/bash", options_.kafka_script, "run", "--dir", options_.work_dir, "--port",
       absl::StrCat(port_), "--controller-port", absl::StrCat(controller_port_), "--heap-mb",
       absl::StrCat(options_.heap_mb)},
      options_.work_dir + "/broker.out");
  if (!process.ok()) return process.status();
  process_ = *std::move(process);
  absl::StatusOr<std::string> started = process_->WaitForLine(kRealStartedLine, kRealStartTimeout);
  if (!started.ok()) {
    return absl::UnavailableError(
        absl::StrFormat("the Kafka broker in %s did not start: %s (its log: %s/broker.log)",
                        options_.work_dir, started.status().ToString(), options_.work_dir));
  }
  return absl::OkStatus();
}

absl::Status Broker::LaunchMock() {
  std::vector<std::string> argv = {options_.mock_binary, "--shard-count",
                                   absl::StrCat(options_.shard_count), "--control-address",
                                   "127.0.0.1:0"};
  if (!options_.topic_prefix.empty()) {
    argv.push_back("--topic-prefix");
    argv.push_back(options_.topic_prefix);
  }
  for (const std::string& cluster : options_.clusters) {
    argv.push_back("--cluster");
    argv.push_back(cluster);
  }
  absl::StatusOr<std::unique_ptr<ChildProcess>> process =
      ChildProcess::Spawn(argv, options_.work_dir + "/kafka-mock.log");
  if (!process.ok()) return process.status();
  process_ = *std::move(process);
  absl::StatusOr<std::vector<std::string>> bootstrap =
      process_->WaitForMatch("^bootstrap: (\\S+)$", kMockStartTimeout);
  if (!bootstrap.ok()) return bootstrap.status();
  bootstrap_ = (*bootstrap)[1];
  absl::StatusOr<std::vector<std::string>> control =
      process_->WaitForMatch("^control: (\\S+)$", kMockStartTimeout);
  if (!control.ok()) return control.status();
  control_address_ = (*control)[1];
  return absl::OkStatus();
}

absl::Status Broker::Crash() {
  if (process_ == nullptr || !process_->IsRunning()) {
    return absl::FailedPreconditionError("the broker is not running");
  }
  if (absl::Status s = process_->Kill(SIGKILL); !s.ok()) return s;
  return process_->Wait(kStopGrace).status();
}

absl::Status Broker::Restart() {
  if (options_.kind == BrokerKind::kMock) {
    return absl::FailedPreconditionError(
        "the mock broker keeps its data in memory, so a restart would lose every topic: use "
        "the mock API's broker down/up instead");
  }
  if (process_ != nullptr && process_->IsRunning()) {
    return absl::FailedPreconditionError("the broker is still running: Crash() or Stop() first");
  }
  return LaunchReal();
}

absl::Status Broker::Pause() {
  if (process_ == nullptr) return absl::FailedPreconditionError("the broker is not running");
  return process_->Kill(SIGSTOP);
}

absl::Status Broker::Resume() {
  if (process_ == nullptr) return absl::FailedPreconditionError("the broker is not running");
  return process_->Kill(SIGCONT);
}

absl::Status Broker::Stop() {
  if (process_ == nullptr || !process_->IsRunning()) return absl::OkStatus();
  (void)process_->Kill(SIGCONT);  // a paused JVM cannot handle SIGTERM
  return process_->Terminate(kStopGrace).status();
}

bool Broker::running() const { return process_ != nullptr && process_->IsRunning(); }

std::string Broker::LogTail(int max_lines) const {
  return process_ == nullptr ? std::string() : process_->LogTail(max_lines);
}

}  // namespace xdc::chaos
