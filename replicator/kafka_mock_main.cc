// xdc-kafka-mock: hosts librdkafka's mock cluster in its own process, so that test and demo
// clusters can be killed and restarted without losing their Kafka. Usage:
//   xdc-kafka-mock [--brokers N]
// Prints "bootstrap: HOST:PORT,..." and serves until SIGINT or SIGTERM.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "replicator/kafka_client.h"

int main(int argc, char** argv) {
  int brokers = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--brokers") == 0 && i + 1 < argc) {
      brokers = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: xdc-kafka-mock [--brokers N]\n");
      return std::strcmp(argv[i], "--help") == 0 ? 0 : 2;
    }
  }
  if (brokers < 1) {
    std::fprintf(stderr, "xdc-kafka-mock: --brokers must be at least 1\n");
    return 2;
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  absl::StatusOr<std::unique_ptr<xdc::EmbeddedKafka>> kafka = xdc::EmbeddedKafka::Start(brokers);
  if (!kafka.ok()) {
    std::fprintf(stderr, "xdc-kafka-mock: %s\n", kafka.status().ToString().c_str());
    return 1;
  }
  std::printf("bootstrap: %s\n", (*kafka)->bootstrap().c_str());
  std::fflush(stdout);
  int received = 0;
  sigwait(&signals, &received);
  return 0;
}
