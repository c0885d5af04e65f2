// A Kafka broker as a process the chaos suite and the tests can crash, pause and restart: either
// a real Apache Kafka broker in KRaft mode (jars installed by scripts/kafka.sh install) or
// xdc-kafka-mock (librdkafka's mock cluster in its own process).
//
// Contract:
//   - Start() picks free loopback ports once; bootstrap() never changes, so clients configured
//     with it reconnect after a restart.
//   - Real broker: Start() runs `scripts/kafka.sh run` (which formats `work_dir`/data for KRaft
//     the first time, then execs the broker's JVM), and returns once the broker has logged that
//     it serves. Its log goes to `work_dir`/broker.log, the JVM's output to
//     `work_dir`/broker.out. Crash() then Restart() keeps the data: what was acknowledged with
//     acks=all survives a SIGKILL of the broker (the OS still holds its page cache).
//   - Mock broker: topics for `clusters` are created at start (the mock serves no CreateTopics).
//     Its data lives in memory, so Restart() after Crash() is refused (FAILED_PRECONDITION); use
//     the mock API (mock_control_address(), see replicator/kafka_mock_main.cc) for broker-down,
//     request errors and latency instead.
//   - Pause()/Resume() are SIGSTOP/SIGCONT: every client's requests hang, as in a partition of
//     the whole Kafka cluster.
//
// Thread-safety: one thread (the owner) calls the methods.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "chaos/process.h"

namespace xdc::chaos {

enum class BrokerKind { kMock, kReal };

// "mock" or "real".
[[nodiscard]] std::string_view BrokerKindName(BrokerKind kind);
// Parses "mock" or "real"; INVALID_ARGUMENT otherwise.
[[nodiscard]] absl::StatusOr<BrokerKind> ParseBrokerKind(std::string_view name);

// The pinned Apache Kafka version; scripts/kafka.sh installs the same one.
inline constexpr char kKafkaVersion[] = "3.9.1";

// scripts/kafka.sh: $XDC_KAFKA_SCRIPT if set, else the one in the source tree xdc was built from.
[[nodiscard]] std::string KafkaScript();

// The folder of the real broker's jars: $XDC_KAFKA_LIBS if set, else where `scripts/kafka.sh
// install` puts them ($HOME/.cache/xdc/kafka-<kKafkaVersion>/libs). NOT_FOUND, saying to run
// scripts/kafka.sh install, when that folder holds no kafka_2.13 jar.
[[nodiscard]] absl::StatusOr<std::string> KafkaLibsDir();

struct BrokerOptions {
  BrokerKind kind = BrokerKind::kMock;
  std::string work_dir;  // created if missing; data and logs
  // Mock only: the topics of these clusters are created at start.
  std::vector<std::string> clusters;
  int32_t shard_count = 1;
  std::string topic_prefix;  // KafkaConfig.topic_prefix ("" = "xdc")
  std::string mock_binary;   // path to xdc-kafka-mock
  // Real only: scripts/kafka.sh (KafkaScript() when empty) and the broker JVM's heap.
  std::string kafka_script;
  int heap_mb = 512;
};

class Broker {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Broker>> Start(BrokerOptions options);
  ~Broker();  // kills the process if it still runs

  [[nodiscard]] BrokerKind kind() const { return options_.kind; }
  [[nodiscard]] const std::string& bootstrap() const { return bootstrap_; }
  // host:port of xdc-kafka-mock's control API; empty for a real broker.
  [[nodiscard]] const std::string& mock_control_address() const { return control_address_; }

  // SIGKILL, and reap.
  [[nodiscard]] absl::Status Crash();
  // Starts again on the same ports and data after Crash() (real broker only).
  [[nodiscard]] absl::Status Restart();
  // SIGSTOP / SIGCONT.
  [[nodiscard]] absl::Status Pause();
  [[nodiscard]] absl::Status Resume();
  // SIGTERM, then SIGKILL after a grace period.
  [[nodiscard]] absl::Status Stop();

  [[nodiscard]] bool running() const;
  [[nodiscard]] std::string LogTail(int max_lines = 30) const;

 private:
  explicit Broker(BrokerOptions options) : options_(std::move(options)) {}
  [[nodiscard]] absl::Status Launch();
  [[nodiscard]] absl::Status LaunchReal();
  [[nodiscard]] absl::Status LaunchMock();

  BrokerOptions options_;
  int port_ = 0;             // real: the client listener
  int controller_port_ = 0;  // real: the KRaft controller listener
  std::string bootstrap_;
  std::string control_address_;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace xdc::chaos
