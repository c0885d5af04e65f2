// xdc-kafka-mock: hosts librdkafka's mock cluster in its own process, so that test and demo
// clusters can be killed and restarted without losing their Kafka. Usage:
//   xdc-kafka-mock [--brokers N] [--cluster NAME]... [--shard-count N] [--topic-prefix P]
//                  [--control-address HOST:PORT]
// The mock does not serve CreateTopics, so xdcd cannot create its topics there: for every
// --cluster NAME this creates P.NAME.history and P.NAME.backfill (--shard-count partitions each)
// and P.NAME.control (1 partition) through the mock's own API before printing the address (P
// defaults to "xdc", as kafka.topic_prefix does). Prints "bootstrap: HOST:PORT,..." and, with
// --control-address, then "control: HOST:PORT": an HTTP API that injects broker faults (all POST;
// 200 with a short JSON body, 400 with an ErrorResponse for bad input, 404 for an unknown route):
//   /v1/mock/brokers/{id}/down | /up          EmbeddedKafka::SetBrokerDown / SetBrokerUp
//   /v1/mock/brokers/{id}/rtt?ms=N            EmbeddedKafka::SetBrokerRtt (0 clears)
//   /v1/mock/request-errors?api=produce|fetch|metadata&count=N
//                                             EmbeddedKafka::PushRequestErrors
// The control API has no authentication: bind it to loopback. Serves until SIGINT or SIGTERM.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "protocol/config.h"
#include "protocol/xdc.pb.h"
#include "replicator/backfill_topic.h"
#include "replicator/http_client.h"
#include "replicator/http_server.h"
#include "replicator/kafka_client.h"

namespace {

constexpr int kExitUsage = 2;
constexpr int kExitStartError = 1;
constexpr int kMaxBrokers = 64;
// kafka.topic_prefix's rule (protocol/config.cc): what may start a topic name.
constexpr size_t kMaxTopicPrefixLength = 100;
constexpr std::string_view kTopicPrefixChars =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
// The control API: a few test clients at a time, tiny requests.
constexpr size_t kControlMaxConnections = 16;
constexpr size_t kControlMaxBodyBytes = 4096;
constexpr int kControlIdleTimeoutMs = 60000;
constexpr int kControlRequestReadTimeoutMs = 10000;

void PrintUsage(FILE* out) {
  std::fprintf(
      out,
      "usage: xdc-kafka-mock [--brokers N] [--cluster NAME]... [--shard-count N]\n"
      "                      [--topic-prefix P] [--control-address HOST:PORT]\n\n"
      "Hosts librdkafka's mock Kafka cluster until SIGINT or SIGTERM and prints\n"
      "\"bootstrap: HOST:PORT,...\". For every --cluster NAME it creates the topics\n"
      "P.NAME.history (--shard-count partitions, default 1) and P.NAME.control (1 partition),\n"
      "where P is --topic-prefix (default xdc, like kafka.topic_prefix); the mock does not serve\n"
      "CreateTopics, so xdcd cannot create them. --shard-count must equal the clusters'\n"
      "shard_count. --brokers is 1 to %d (default 1).\n\n"
      "--control-address HOST:PORT (port 0 picks one) also serves an HTTP API that injects\n"
      "broker faults, and prints \"control: HOST:PORT\" after the bootstrap line. All POST:\n"
      "  /v1/mock/brokers/ID/down                 broker ID (1..N) drops its connections\n"
      "  /v1/mock/brokers/ID/up                   and serves again\n"
      "  /v1/mock/brokers/ID/rtt?ms=N             delays its responses by N ms (0 clears)\n"
      "  /v1/mock/request-errors?api=produce|fetch|metadata&count=N\n"
      "                                           fails the next N such requests with a\n"
      "                                           retriable error (N is 1 to %d)\n"
      "It has no authentication: bind it to a loopback address.\n",
      kMaxBrokers, xdc::EmbeddedKafka::kMaxPushedRequestErrors);
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

// --- the control API ---------------------------------------------------------------------------

xdc::ApiResponse ErrorAnswer(const absl::Status& status, int http_status) {
  xdc::ErrorResponse error;
  error.set_code(absl::StatusCodeToString(status.code()));
  error.set_message(std::string(status.message()));
  absl::StatusOr<std::string> json = xdc::ToJson(error);
  xdc::ApiResponse response;
  response.status = http_status;
  response.body = json.ok() ? *json : "{}";
  return response;
}

xdc::ApiResponse Ok(std::string json) {
  xdc::ApiResponse response;  // 200, application/json
  response.body = std::move(json);
  return response;
}

// The query parameters of a target ("?a=1&b=2"); values are taken as they are (ours are plain).
std::map<std::string, std::string> QueryOf(const std::string& query) {
  std::map<std::string, std::string> params;
  for (absl::string_view pair : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    const size_t eq = pair.find('=');
    params[std::string(pair.substr(0, eq))] =
        eq == absl::string_view::npos ? "" : std::string(pair.substr(eq + 1));
  }
  return params;
}

absl::StatusOr<int> IntParam(const std::map<std::string, std::string>& query,
                             const std::string& name) {
  auto it = query.find(name);
  int value = 0;
  if (it == query.end() || !absl::SimpleAtoi(it->second, &value)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("query parameter '%s' must be an integer, got '%s'", name,
                        it == query.end() ? "" : it->second));
  }
  return value;
}

// Routes one control request to `kafka`. Thread-safe (EmbeddedKafka's fault calls are).
xdc::ApiResponse HandleControl(xdc::EmbeddedKafka& kafka, const xdc::ApiRequest& request) {
  const size_t question = request.target.find('?');
  const std::string path = request.target.substr(0, question);
  const std::map<std::string, std::string> query =
      QueryOf(question == std::string::npos ? "" : request.target.substr(question + 1));
  const std::vector<std::string> parts = absl::StrSplit(path, '/');  // "", "v1", "mock", ...
  const bool brokers_route = parts.size() == 6 && parts[1] == "v1" && parts[2] == "mock" &&
                             parts[3] == "brokers" &&
                             (parts[5] == "down" || parts[5] == "up" || parts[5] == "rtt");
  const bool errors_route = path == "/v1/mock/request-errors";
  if (!brokers_route && !errors_route) {
    return ErrorAnswer(absl::NotFoundError(absl::StrFormat(
                           "no route %s %s; see xdc-kafka-mock --help", request.method, path)),
                       404);
  }
  if (request.method != "POST") {
    return ErrorAnswer(absl::InvalidArgumentError(
                           absl::StrFormat("%s does not take %s; use POST", path, request.method)),
                       405);
  }
  if (errors_route) {
    static const std::map<std::string, xdc::MockApi> kApis = {
        {"produce", xdc::MockApi::kProduce},
        {"fetch", xdc::MockApi::kFetch},
        {"metadata", xdc::MockApi::kMetadata}};
    auto api = query.find("api");
    auto known = api == query.end() ? kApis.end() : kApis.find(api->second);
    if (known == kApis.end()) {
      return ErrorAnswer(absl::InvalidArgumentError(absl::StrFormat(
                             "query parameter 'api' must be produce, fetch or metadata, got '%s'",
                             api == query.end() ? "" : api->second)),
                         400);
    }
    absl::StatusOr<int> count = IntParam(query, "count");
    absl::Status pushed =
        count.ok() ? kafka.PushRequestErrors(known->second, *count) : count.status();
    if (!pushed.ok()) return ErrorAnswer(pushed, 400);
    std::fprintf(stderr, "xdc-kafka-mock: the next %d %s requests fail (retriable)\n", *count,
                 known->first.c_str());
    return Ok(absl::StrFormat(R"({"api":"%s","errors_pushed":%d})", known->first, *count));
  }
  int32_t broker = 0;
  if (!absl::SimpleAtoi(parts[4], &broker)) {
    return ErrorAnswer(
        absl::InvalidArgumentError(absl::StrFormat(
            "'%s' is not a broker id: the brokers are 1 to %d", parts[4], kafka.broker_count())),
        400);
  }
  const std::string& action = parts[5];
  absl::Status done;
  int rtt_ms = 0;
  if (action == "down") {
    done = kafka.SetBrokerDown(broker);
  } else if (action == "up") {
    done = kafka.SetBrokerUp(broker);
  } else {
    absl::StatusOr<int> ms = IntParam(query, "ms");
    if (ms.ok()) rtt_ms = *ms;
    done = ms.ok() ? kafka.SetBrokerRtt(broker, rtt_ms) : ms.status();
  }
  if (!done.ok()) {
    return ErrorAnswer(done, done.code() == absl::StatusCode::kInvalidArgument ? 400 : 500);
  }
  if (action == "rtt") {
    std::fprintf(stderr, "xdc-kafka-mock: broker %d round-trip time %d ms\n", broker, rtt_ms);
    return Ok(absl::StrFormat(R"({"broker":%d,"rtt_ms":%d})", broker, rtt_ms));
  }
  std::fprintf(stderr, "xdc-kafka-mock: broker %d %s\n", broker, action.c_str());
  return Ok(absl::StrFormat(R"({"broker":%d,"state":"%s"})", broker, action));
}

}  // namespace

int main(int argc, char** argv) {
  int brokers = 1;
  int shard_count = 1;
  std::string topic_prefix;
  std::string control_address;
  std::vector<std::string> clusters;
  auto is_flag_with_value = [](const char* arg) {
    for (const char* flag :
         {"--brokers", "--shard-count", "--cluster", "--topic-prefix", "--control-address"}) {
      if (std::strcmp(arg, flag) == 0) return true;
    }
    return false;
  };
  for (int i = 1; i < argc; ++i) {
    const bool has_value = i + 1 < argc;
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      PrintUsage(stdout);
      return 0;
    }
    if (is_flag_with_value(argv[i]) && !has_value) {
      std::fprintf(stderr, "xdc-kafka-mock: %s needs a value\n\n", argv[i]);
      PrintUsage(stderr);
      return kExitUsage;
    }
    if (std::strcmp(argv[i], "--brokers") == 0) {
      if (!ParsePositive("--brokers", argv[++i], kMaxBrokers, brokers)) return kExitUsage;
    } else if (std::strcmp(argv[i], "--shard-count") == 0) {
      if (!ParsePositive("--shard-count", argv[++i], xdc::kMaxShardCount, shard_count)) {
        return kExitUsage;
      }
    } else if (std::strcmp(argv[i], "--cluster") == 0) {
      const std::string name = argv[++i];
      if (name.empty()) {
        std::fprintf(stderr, "xdc-kafka-mock: --cluster needs a non-empty name\n");
        return kExitUsage;
      }
      clusters.push_back(name);
    } else if (std::strcmp(argv[i], "--topic-prefix") == 0) {
      topic_prefix = argv[++i];
      if (topic_prefix.size() > kMaxTopicPrefixLength ||
          topic_prefix.find_first_not_of(kTopicPrefixChars) != std::string::npos) {
        std::fprintf(stderr,
                     "xdc-kafka-mock: --topic-prefix '%s' must be at most %zu letters, digits, "
                     "'.', '_' or '-' (like kafka.topic_prefix)\n",
                     topic_prefix.c_str(), kMaxTopicPrefixLength);
        return kExitUsage;
      }
    } else if (std::strcmp(argv[i], "--control-address") == 0) {
      control_address = argv[++i];
      if (absl::StatusOr<xdc::HostPort> parsed = xdc::ParseHostPort(control_address);
          !parsed.ok()) {
        std::fprintf(stderr, "xdc-kafka-mock: --control-address: %s\n",
                     std::string(parsed.status().message()).c_str());
        return kExitUsage;
      }
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
    for (const auto& [topic, partitions] :
         {std::pair{xdc::HistoryTopic(cluster, topic_prefix), shard_count},
          std::pair{xdc::ControlTopic(cluster, topic_prefix), 1},
          std::pair{xdc::BackfillTopic(cluster, topic_prefix), shard_count}}) {
      if (absl::Status s = (*kafka)->CreateTopic(topic, partitions); !s.ok()) {
        std::fprintf(stderr, "xdc-kafka-mock: %s\n", s.ToString().c_str());
        return kExitStartError;
      }
    }
  }
  std::unique_ptr<xdc::HttpServer> control;
  std::string control_line;
  if (!control_address.empty()) {
    const xdc::HostPort listen = *xdc::ParseHostPort(control_address);
    xdc::EmbeddedKafka& mock = **kafka;
    control = std::make_unique<xdc::HttpServer>(
        [&mock](const xdc::ApiRequest& request) { return HandleControl(mock, request); },
        xdc::HttpServerLimits{.max_connections = kControlMaxConnections,
                              .max_body_bytes = kControlMaxBodyBytes,
                              .idle_timeout_ms = kControlIdleTimeoutMs,
                              .request_read_timeout_ms = kControlRequestReadTimeoutMs});
    absl::StatusOr<uint16_t> port = control->Start(listen.host, listen.port);
    if (!port.ok()) {
      std::fprintf(stderr, "xdc-kafka-mock: control API: %s\n", port.status().ToString().c_str());
      return kExitStartError;
    }
    control_line = absl::StrFormat("control: %s:%d\n", listen.host, *port);
  }
  std::printf("bootstrap: %s\n", (*kafka)->bootstrap().c_str());
  std::printf("%s", control_line.c_str());
  std::fflush(stdout);
  int received = 0;
  sigwait(&signals, &received);
  if (control != nullptr) control->Stop();
  return 0;
}
