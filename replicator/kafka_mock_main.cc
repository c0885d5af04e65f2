// xdc-kafka-mock: hosts librdkafka's mock cluster in its own process, so that test and demo
// clusters can be killed and restarted without losing their Kafka. Usage:
//   xdc-kafka-mock [--brokers N] [--cluster NAME]... [--shard-count N]
// The mock does not serve CreateTopics, so xdcd cannot create its topics there: for every
// --cluster NAME this creates xdc.NAME.history (--shard-count partitions) and xdc.NAME.control
// (1 partition) through the mock's own API before printing the address.
// Prints "bootstrap: HOST:PORT,..." and serves until SIGINT or SIGTERM.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "protocol/config.h"
#include "replicator/kafka_client.h"

namespace {

constexpr int kExitUsage = 2;
constexpr int kExitStartError = 1;

void PrintUsage(FILE* out) {
  std::fprintf(out,
               "usage: xdc-kafka-mock [--brokers N] [--cluster NAME]... [--shard-count N]\n\n"
               "Hosts librdkafka's mock Kafka cluster until SIGINT or SIGTERM and prints\n"
               "\"bootstrap: HOST:PORT,...\". For every --cluster NAME it creates the topics\n"
               "xdc.NAME.history (--shard-count partitions, default 1) and xdc.NAME.control\n"
               "(1 partition); the mock does not serve CreateTopics, so xdcd cannot create them.\n"
               "--shard-count must equal the clusters' shard_count.\n");
}

// Parses a positive int flag value; prints the error and returns false when it is not one.
bool ParsePositive(const char* flag, const char* text, int max, int& out) {
  if (!absl::SimpleAtoi(text, &out) || out < 1 || out > max) {
    std::fprintf(stderr, "xdc-kafka-mock: %s must be an integer in [1, %d], got '%s'\n", flag, max,
                 text);
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  constexpr int kMaxBrokers = 64;
  int brokers = 1;
  int shard_count = 1;
  std::vector<std::string> clusters;
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      PrintUsage(stdout);
      return 0;
    }
    if (std::strcmp(argv[i], "--brokers") == 0 && has_value) {
      if (!ParsePositive("--brokers", argv[++i], kMaxBrokers, brokers)) return kExitUsage;
    } else if (std::strcmp(argv[i], "--shard-count") == 0 && has_value) {
      if (!ParsePositive("--shard-count", argv[++i], xdc::kMaxShardCount, shard_count)) {
        return kExitUsage;
      }
    } else if (std::strcmp(argv[i], "--cluster") == 0 && has_value) {
      const std::string name = argv[++i];
      if (name.empty()) {
        std::fprintf(stderr, "xdc-kafka-mock: --cluster needs a non-empty name\n");
        return kExitUsage;
      }
      clusters.push_back(name);
    } else if (!has_value && (std::strcmp(argv[i], "--brokers") == 0 ||
                              std::strcmp(argv[i], "--shard-count") == 0 ||
                              std::strcmp(argv[i], "--cluster") == 0)) {
      std::fprintf(stderr, "xdc-kafka-mock: %s needs a value\n\n", argv[i]);
      PrintUsage(stderr);
      return kExitUsage;
    } else {
      std::fprintf(stderr, "xdc-kafka-mock: unknown argument '%s'\n\n", argv[i]);
      PrintUsage(stderr);
      return kExitUsage;
    }
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  absl::StatusOr<std::unique_ptr<xdc::EmbeddedKafka>> kafka = xdc::EmbeddedKafka::Start(brokers);
  if (!kafka.ok()) {
    std::fprintf(stderr, "xdc-kafka-mock: %s\n", kafka.status().ToString().c_str());
    return kExitStartError;
  }
  for (const std::string& cluster : clusters) {
    for (const auto& [topic, partitions] : {std::pair{xdc::HistoryTopic(cluster), shard_count},
                                            std::pair{xdc::ControlTopic(cluster), 1}}) {
      if (absl::Status s = (*kafka)->CreateTopic(topic, partitions); !s.ok()) {
        std::fprintf(stderr, "xdc-kafka-mock: %s\n", s.ToString().c_str());
        return kExitStartError;
      }
    }
  }
  std::printf("bootstrap: %s\n", (*kafka)->bootstrap().c_str());
  std::fflush(stdout);
  int received = 0;
  sigwait(&signals, &received);
  return 0;
}
