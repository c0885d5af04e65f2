// Security (issue 4 part 6): mutating API calls need the bearer token from the config while reads
// stay open, the token options are checked and the token file is read at start, xdcctl sends the
// token, and kafka.properties reach every librdkafka client (reserved keys refused).
//
//   ApiAuthTest      a mutating call without the token, or with a wrong one, is answered 401
//                    UNAUTHENTICATED and changes nothing; with the token it is served; GETs are
//                    open; refusals are counted
//   ApiTokenConfig   both token options, too short a token, the token file (read, missing, empty)
//   KafkaProperties  unknown, reserved and security properties at Daemon::Start and per client
//   SecurityCliTest  xdcctl --token and $XDC_API_TOKEN against a real xdcd process
//
// Hostile clients (issue 15 items 12 and 14):
//
//   SlowClientTest   connections that stop halfway through a request, or drip it, are answered
//                    408 and closed at the request read deadline, freeing their slots
//   ErrorBodyTest    whatever bytes a request holds (invalid UTF-8, NUL, control characters,
//                    quotes, random bytes, a huge field name), every error answer is valid JSON
//                    that says what was wrong without copying raw bytes

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "chaos/process.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "protocol/config.h"
#include "protocol/xdc.pb.h"
#include "replicator/beast.h"
#include "replicator/daemon.h"
#include "replicator/http_client.h"
#include "replicator/kafka_client.h"
#include "replicator/tunables.h"
#include "tests/run_command.h"
#include "tests/test_configs.h"
#include "tests/two_clusters.h"

namespace xdc {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kToken[] = "xdc-test-token-0123456789abcdef";
constexpr char kWrongToken[] = "xdc-test-token-0123456789abcdeX";
constexpr char kNamespaceName[] = "orders";

// One request on a fresh connection, with the response's WWW-Authenticate header (HttpClient
// does not return headers). `authorization` empty: no Authorization header.
struct RawResponse {
  int status = 0;
  std::string www_authenticate;
  std::string body;
};

RawResponse RawRequest(const std::string& address, http::verb method, const std::string& target,
                       const std::string& body, const std::string& authorization) {
  RawResponse result;
  absl::StatusOr<HostPort> host_port = ParseHostPort(address);
  EXPECT_TRUE(host_port.ok()) << host_port.status();
  if (!host_port.ok()) return result;
  asio::io_context io;
  beast::tcp_stream stream(io);
  tcp::resolver resolver(io);
  beast::error_code ec;
  stream.connect(resolver.resolve(host_port->host, std::to_string(host_port->port), ec), ec);
  EXPECT_FALSE(ec) << ec.message();
  http::request<http::string_body> request{method, target, 11};
  request.set(http::field::host, host_port->host);
  request.set(http::field::content_type, "application/json");
  if (!authorization.empty()) request.set(http::field::authorization, authorization);
  request.body() = body;
  request.prepare_payload();
  http::write(stream, request, ec);
  EXPECT_FALSE(ec) << ec.message();
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(stream, buffer, response, ec);
  EXPECT_FALSE(ec) << ec.message();
  result.status = static_cast<int>(response.result_int());
  result.www_authenticate = std::string(response[http::field::www_authenticate]);
  result.body = response.body();
  return result;
}

RegisterNamespaceRequest RegisterRequest(const std::string& name) {
  RegisterNamespaceRequest request;
  request.set_name(name);
  request.add_clusters("east");
  request.add_clusters("west");
  request.set_active_cluster("east");
  return request;
}

// The namespaces the daemon lists, by name (a GET: needs no token).
std::vector<std::string> NamespaceNames(HttpClient& client) {
  ListNamespacesResponse list;
  absl::Status s = client.Call("GET", "/v1/namespaces", nullptr, list);
  EXPECT_TRUE(s.ok()) << s;
  std::vector<std::string> names;
  for (const NamespaceRecord& ns : list.namespaces()) names.push_back(ns.name());
  return names;
}

double UnauthenticatedCount(HttpClient& client) {
  absl::StatusOr<HttpResult> metrics = client.Request("GET", "/metrics");
  EXPECT_TRUE(metrics.ok()) << metrics.status();
  return metrics.ok() ? MetricSum(metrics->body, "xdc_api_unauthenticated_total") : -1;
}

// --- The HTTP API with a token ----------------------------------------------------------------

class ApiAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DaemonConfig config = MakeConfig("east", dir_.path(), "");
    config.mutable_api()->set_bearer_token(kToken);
    absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start(config);
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemon_ = *std::move(daemon);
    authed_ = std::make_unique<HttpClient>(daemon_->http_address());
    authed_->set_bearer_token(kToken);
    anonymous_ = std::make_unique<HttpClient>(daemon_->http_address());
  }

  // A 401 UNAUTHENTICATED ErrorResponse that names the config option and xdcctl's flag, and
  // never echoes a token.
  static void ExpectRefused(const RawResponse& response, const std::string& message_part) {
    EXPECT_EQ(response.status, 401) << response.body;
    ErrorResponse error;
    ASSERT_TRUE(FromJson(response.body, error).ok()) << response.body;
    EXPECT_EQ(error.code(), "UNAUTHENTICATED");
    EXPECT_FALSE(error.retryable());
    EXPECT_THAT(error.message(), HasSubstr(message_part));
    EXPECT_THAT(error.message(), HasSubstr("api.bearer_token"));
    EXPECT_THAT(error.message(), HasSubstr("--token"));
    EXPECT_THAT(response.body, Not(HasSubstr(kToken)));
    EXPECT_THAT(response.body, Not(HasSubstr(kWrongToken)));
    EXPECT_TRUE(absl::StartsWith(response.www_authenticate, "Bearer")) << response.www_authenticate;
  }

  std::string address() const { return daemon_->http_address(); }

  ScopedDir dir_{"east"};
  std::unique_ptr<Daemon> daemon_;
  std::unique_ptr<HttpClient> authed_;
  std::unique_ptr<HttpClient> anonymous_;
};

TEST_F(ApiAuthTest, RegisterWithoutTokenIsRefusedAndCreatesNothing) {
  const std::string body = JsonOf(RegisterRequest(kNamespaceName));
  ExpectRefused(RawRequest(address(), http::verb::post, "/v1/namespaces", body, ""),
                "needs the API bearer token");
  // Another scheme is no bearer token either.
  ExpectRefused(
      RawRequest(address(), http::verb::post, "/v1/namespaces", body, "Basic eGRjOnhkYw=="),
      "needs the API bearer token");
  // Through HttpClient: the 401 comes back as UNAUTHENTICATED.
  NamespaceRecord record;
  const RegisterNamespaceRequest request = RegisterRequest(kNamespaceName);
  absl::Status s = anonymous_->Call("POST", "/v1/namespaces", &request, record);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << s;

  EXPECT_THAT(NamespaceNames(*anonymous_), Not(::testing::Contains(kNamespaceName)));
  EXPECT_EQ(UnauthenticatedCount(*anonymous_), 3);
}

TEST_F(ApiAuthTest, WrongTokenIsRefusedAndCreatesNothing) {
  const std::string body = JsonOf(RegisterRequest(kNamespaceName));
  const std::string token = kToken;
  for (const std::string& wrong : {std::string(kWrongToken), token.substr(0, token.size() - 1),
                                   token + "x", std::string("x"), std::string("")}) {
    SCOPED_TRACE(wrong);
    RawResponse response =
        RawRequest(address(), http::verb::post, "/v1/namespaces", body, "Bearer " + wrong);
    ExpectRefused(response, "token does not match");
    EXPECT_EQ(response.www_authenticate, R"(Bearer error="invalid_token")");
  }
  HttpClient wrong(address());
  wrong.set_bearer_token(kWrongToken);
  NamespaceRecord record;
  const RegisterNamespaceRequest request = RegisterRequest(kNamespaceName);
  absl::Status s = wrong.Call("POST", "/v1/namespaces", &request, record);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << s;
  EXPECT_THAT(s.message(), HasSubstr("token does not match"));

  EXPECT_THAT(NamespaceNames(*anonymous_), Not(::testing::Contains(kNamespaceName)));
  EXPECT_EQ(UnauthenticatedCount(*anonymous_), 6);
}

TEST_F(ApiAuthTest, RightTokenIsServed) {
  NamespaceRecord record;
  const RegisterNamespaceRequest request = RegisterRequest(kNamespaceName);
  absl::Status s = authed_->Call("POST", "/v1/namespaces", &request, record);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(record.name(), kNamespaceName);
  EXPECT_THAT(NamespaceNames(*anonymous_), ::testing::Contains(kNamespaceName));
  // The scheme is case-insensitive (RFC 7235).
  RawResponse lower =
      RawRequest(address(), http::verb::post, "/v1/namespaces", JsonOf(RegisterRequest("payments")),
                 absl::StrCat("bearer ", kToken));
  EXPECT_EQ(lower.status, 200) << lower.body;
  EXPECT_THAT(NamespaceNames(*anonymous_), ::testing::Contains("payments"));
  // Other methods than GET need it too; with it, the handler answers as before (405).
  ExpectRefused(RawRequest(address(), http::verb::delete_, "/v1/namespaces", "", ""),
                "needs the API bearer token");
  EXPECT_EQ(RawRequest(address(), http::verb::delete_, "/v1/namespaces", "",
                       absl::StrCat("Bearer ", kToken))
                .status,
            405);
  EXPECT_EQ(UnauthenticatedCount(*anonymous_), 1);
}

TEST_F(ApiAuthTest, ReadsNeedNoToken) {
  NamespaceRecord record;
  const RegisterNamespaceRequest request = RegisterRequest(kNamespaceName);
  ASSERT_TRUE(authed_->Call("POST", "/v1/namespaces", &request, record).ok());

  StatusResponse status;
  absl::Status s = anonymous_->Call("GET", "/v1/status", nullptr, status);
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(status.cluster(), "east");
  EXPECT_THAT(NamespaceNames(*anonymous_), ::testing::Contains(kNamespaceName));
  NamespaceRecord got;
  s = anonymous_->Call("GET", absl::StrCat("/v1/namespaces/", kNamespaceName), nullptr, got);
  EXPECT_TRUE(s.ok()) << s;
  ListParkedResponse dlq;
  s = anonymous_->Call("GET", "/v1/dlq", nullptr, dlq);
  EXPECT_TRUE(s.ok()) << s;
  for (const std::string target : {"/metrics", "/healthz"}) {
    absl::StatusOr<HttpResult> result = anonymous_->Request("GET", target);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->status, 200) << target << ": " << result->body;
  }
  EXPECT_EQ(UnauthenticatedCount(*anonymous_), 0);
}

TEST_F(ApiAuthTest, AppendAndSignalWithoutTokenLeaveTheHistoryUnchanged) {
  NamespaceRecord record;
  const RegisterNamespaceRequest request = RegisterRequest(kNamespaceName);
  ASSERT_TRUE(authed_->Call("POST", "/v1/namespaces", &request, record).ok());
  AppendResponse started;
  const AppendRequest start =
      Append(kNamespaceName, "wf-1", 1,
             {Event(WORKFLOW_EXECUTION_STARTED, "input"), Event(ACTIVITY_TASK_SCHEDULED)});
  absl::Status s = authed_->Call("POST", "/v1/append", &start, started);
  ASSERT_TRUE(s.ok()) << s;
  const std::string history_target =
      absl::StrCat("/v1/history?namespace=", kNamespaceName, "&workflow_id=wf-1");
  GetHistoryResponse before;
  ASSERT_TRUE(anonymous_->Call("GET", history_target, nullptr, before).ok());
  ASSERT_EQ(before.events_size(), 2);

  const AppendRequest more = Append(kNamespaceName, "wf-1", started.next_event_id(),
                                    {Event(ACTIVITY_TASK_COMPLETED)}, started.run_id());
  SignalRequest signal;
  signal.set_namespace_(kNamespaceName);
  signal.set_workflow_id("wf-1");
  signal.set_signal_name("go");
  AppendResponse ignored;
  s = anonymous_->Call("POST", "/v1/append", &more, ignored);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << s;
  s = anonymous_->Call("POST", "/v1/signal", &signal, ignored);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << s;
  ExpectRefused(RawRequest(address(), http::verb::post, "/v1/signal", JsonOf(signal),
                           absl::StrCat("Bearer ", kWrongToken)),
                "token does not match");
  // The body is not even parsed: a malformed one is refused the same way, not answered 400.
  ExpectRefused(RawRequest(address(), http::verb::post, "/v1/append", "{not json", ""),
                "needs the API bearer token");
  // The DLQ and failover calls are refused as well.
  DlqRequest all;
  all.set_all(true);
  DlqActionResponse dlq;
  EXPECT_EQ(anonymous_->Call("POST", "/v1/dlq/purge", &all, dlq).code(),
            absl::StatusCode::kUnauthenticated);
  FailoverRequest failover;
  failover.set_target_cluster("west");
  failover.set_force(true);
  NamespaceRecord after_failover;
  EXPECT_EQ(anonymous_
                ->Call("POST", absl::StrCat("/v1/namespaces/", kNamespaceName, "/failover"),
                       &failover, after_failover)
                .code(),
            absl::StatusCode::kUnauthenticated);

  GetHistoryResponse after;
  ASSERT_TRUE(anonymous_->Call("GET", history_target, nullptr, after).ok());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(before, after))
      << before.DebugString() << " vs " << after.DebugString();
  NamespaceRecord ns;
  ASSERT_TRUE(
      anonymous_->Call("GET", absl::StrCat("/v1/namespaces/", kNamespaceName), nullptr, ns).ok());
  EXPECT_EQ(ns.active_cluster(), "east");
  EXPECT_EQ(ns.failover_version(), record.failover_version());
  EXPECT_EQ(UnauthenticatedCount(*anonymous_), 6);

  // The same (kept-alive) connections still serve: the token makes the append go through.
  AppendResponse appended;
  s = authed_->Call("POST", "/v1/append", &more, appended);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(appended.first_event_id(), before.next_event_id());
}

// --- Token options -----------------------------------------------------------------------------

using testing_util::kValidConfig;

TEST(ApiTokenConfig, BothTokenAndFileAreRefused) {
  absl::StatusOr<DaemonConfig> config =
      ParseConfig(absl::StrCat(kValidConfig, R"pb(api { bearer_token: ")pb", kToken,
                               R"pb(" bearer_token_file: "/etc/xdc/token " })pb"),
                  "test.cfg");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(), HasSubstr("test.cfg"));
  EXPECT_THAT(config.status().message(),
              HasSubstr("api.bearer_token and api.bearer_token_file are both set"));
}

TEST(ApiTokenConfig, ShortOrUnprintableTokensAreRefused) {
  const std::string short_token(kMinApiTokenBytes - 1, 'a');
  absl::StatusOr<DaemonConfig> config = ParseConfig(
      absl::StrCat(kValidConfig, R"pb(api { bearer_token: ")pb", short_token, R"pb(" })pb"),
      "test.cfg");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), HasSubstr("api.bearer_token is 15 bytes"));
  EXPECT_THAT(config.status().message(), HasSubstr("at least 16 bytes"));
  EXPECT_THAT(config.status().message(), Not(HasSubstr(short_token)));

  config = ParseConfig(absl::StrCat(kValidConfig, R"pb(api { bearer_token: ")pb",
                                    std::string(kMinApiTokenBytes, 'a'), R"pb(" })pb"),
                       "test.cfg");
  EXPECT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(ValidateApiToken("has a space in the token", "api.bearer_token").ok());
  EXPECT_FALSE(ValidateApiToken("tab\tinside-the-token", "api.bearer_token").ok());
}

TEST(ApiTokenConfig, TokenFileContents) {
  absl::StatusOr<std::string> token = ApiTokenFromFile(absl::StrCat(kToken, " \r\n"), "/t");
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(*token, kToken);
  token = ApiTokenFromFile(absl::StrCat(kToken, "\nsecond line is ignored\n"), "/t");
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(*token, kToken);
  token = ApiTokenFromFile(kToken, "/t");  // no newline at all
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(*token, kToken);

  for (const std::string& empty :
       {std::string(""), std::string("\n"), std::string("   \n"), "\n" + std::string(kToken)}) {
    token = ApiTokenFromFile(empty, "/etc/xdc/token");
    ASSERT_FALSE(token.ok()) << empty;
    EXPECT_THAT(token.status().message(), HasSubstr("/etc/xdc/token"));
    EXPECT_THAT(token.status().message(), HasSubstr("no token on its first line"));
  }
  token = ApiTokenFromFile("short\n", "/etc/xdc/token");
  ASSERT_FALSE(token.ok());
  EXPECT_THAT(token.status().message(), HasSubstr("/etc/xdc/token is 5 bytes"));
}

class ApiTokenFileTest : public ::testing::Test {
 protected:
  std::string WriteTokenFile(const std::string& contents) {
    const std::string path = (std::filesystem::path(files_.path()) / "token").string();
    std::ofstream(path) << contents;
    return path;
  }
  absl::StatusOr<std::unique_ptr<Daemon>> StartWithTokenFile(const std::string& path) {
    DaemonConfig config = MakeConfig("east", data_.path(), "");
    config.mutable_api()->set_bearer_token_file(path);
    return Daemon::Start(config);
  }

  ScopedDir files_{"files"};
  ScopedDir data_{"east"};
};

TEST_F(ApiTokenFileTest, DaemonReadsTheTokenFileAtStart) {
  absl::StatusOr<std::unique_ptr<Daemon>> daemon =
      StartWithTokenFile(WriteTokenFile(absl::StrCat(kToken, "  \n")));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  const RegisterNamespaceRequest request = RegisterRequest(kNamespaceName);
  NamespaceRecord record;
  HttpClient anonymous((*daemon)->http_address());
  EXPECT_EQ(anonymous.Call("POST", "/v1/namespaces", &request, record).code(),
            absl::StatusCode::kUnauthenticated);
  HttpClient authed((*daemon)->http_address());
  authed.set_bearer_token(kToken);  // the first line, trailing whitespace stripped
  absl::Status s = authed.Call("POST", "/v1/namespaces", &request, record);
  EXPECT_TRUE(s.ok()) << s;
}

TEST_F(ApiTokenFileTest, MissingOrEmptyTokenFileStopsTheStart) {
  const std::string missing = (std::filesystem::path(files_.path()) / "no-such-token").string();
  absl::StatusOr<std::unique_ptr<Daemon>> daemon = StartWithTokenFile(missing);
  ASSERT_FALSE(daemon.ok());
  EXPECT_EQ(daemon.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(daemon.status().message(), HasSubstr("cannot read api.bearer_token_file " + missing));
  EXPECT_THAT(daemon.status().message(), HasSubstr("No such file or directory"));
  EXPECT_THAT(daemon.status().message(), HasSubstr("check the path"));

  daemon = StartWithTokenFile(files_.path());  // a directory
  ASSERT_FALSE(daemon.ok());
  EXPECT_THAT(daemon.status().message(), HasSubstr("it is a directory"));

  const std::string empty = WriteTokenFile("");
  daemon = StartWithTokenFile(empty);
  ASSERT_FALSE(daemon.ok());
  EXPECT_THAT(daemon.status().message(), HasSubstr(empty));
  EXPECT_THAT(daemon.status().message(), HasSubstr("no token on its first line"));

  daemon = StartWithTokenFile(WriteTokenFile("too-short\n"));
  ASSERT_FALSE(daemon.ok());
  EXPECT_THAT(daemon.status().message(), HasSubstr("at least 16 bytes"));
}

// --- kafka.properties ---------------------------------------------------------------------------

class KafkaPropertiesTest : public ::testing::Test {
 protected:
  absl::StatusOr<std::unique_ptr<Daemon>> StartWith(const KafkaProperties& properties) {
    DaemonConfig config = MakeConfig("east", dir_.path(), "");
    for (const auto& [key, value] : properties) {
      (*config.mutable_kafka()->mutable_properties())[key] = value;
    }
    return Daemon::Start(config);
  }

  ScopedDir dir_{"east"};
};

TEST_F(KafkaPropertiesTest, UnknownPropertyStopsTheStart) {
  absl::StatusOr<std::unique_ptr<Daemon>> daemon = StartWith({{"no.such.property", "1"}});
  ASSERT_FALSE(daemon.ok());
  EXPECT_EQ(daemon.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(daemon.status().message(), HasSubstr("kafka.properties 'no.such.property'"));
  EXPECT_THAT(daemon.status().message(), HasSubstr("No such configuration property"));

  daemon = StartWith({{"security.protocol", "carrier_pigeon"}});
  ASSERT_FALSE(daemon.ok());
  EXPECT_THAT(daemon.status().message(), HasSubstr("kafka.properties 'security.protocol'"));
  EXPECT_THAT(daemon.status().message(), HasSubstr("Invalid value"));
}

TEST_F(KafkaPropertiesTest, ReservedPropertiesAreRefused) {
  absl::StatusOr<std::unique_ptr<Daemon>> daemon =
      StartWith({{"bootstrap.servers", "kafka-1:9092"}});
  ASSERT_FALSE(daemon.ok());
  EXPECT_EQ(daemon.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(daemon.status().message(), HasSubstr("'bootstrap.servers' is reserved"));
  EXPECT_THAT(daemon.status().message(), HasSubstr("set kafka.bootstrap_servers instead"));
  for (const std::string key : {"enable.idempotence", "acks", "group.id", "enable.auto.commit"}) {
    daemon = StartWith({{key, "false"}});
    ASSERT_FALSE(daemon.ok()) << key;
    EXPECT_THAT(daemon.status().message(), HasSubstr("'" + key + "' is reserved"));
  }
  daemon = StartWith({{"dr_msg_cb", "x"}});
  ASSERT_FALSE(daemon.ok());
  EXPECT_THAT(daemon.status().message(), HasSubstr("'dr_msg_cb' is a librdkafka callback"));
  // Every reserved key is refused by the config check too (xdcd exits with the config error).
  for (const ReservedKafkaProperty& reserved : kReservedKafkaProperties) {
    EXPECT_FALSE(CheckKafkaProperty(reserved.key).ok()) << reserved.key;
  }
  EXPECT_TRUE(CheckKafkaProperty("sasl.mechanism").ok());
}

// A CA file that does not exist makes librdkafka refuse to create the client: the settings reach
// it, even with the embedded mock cluster (which itself only speaks plaintext).
TEST_F(KafkaPropertiesTest, SecuritySettingsReachLibrdkafka) {
  const KafkaProperties ssl = {{"security.protocol", "ssl"},
                               {"ssl.ca.location", "/nonexistent/ca.pem"}};
  absl::StatusOr<std::unique_ptr<Daemon>> daemon = StartWith(ssl);
  ASSERT_FALSE(daemon.ok());
  EXPECT_EQ(daemon.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(daemon.status().message(), HasSubstr("ssl.ca.location failed"));
  EXPECT_THAT(daemon.status().message(), HasSubstr("check kafka.properties"));

  // Each kind of client gets them: admin (EnsureTopics), producer and consumer.
  absl::StatusOr<std::unique_ptr<EmbeddedKafka>> kafka = EmbeddedKafka::Start(1);
  ASSERT_TRUE(kafka.ok()) << kafka.status();
  const std::string& bootstrap = (*kafka)->bootstrap();
  absl::Status topics = EnsureTopics(bootstrap, {{"t", 1}}, 5000, ssl);
  EXPECT_THAT(topics.message(), HasSubstr("ssl.ca.location failed"));
  absl::StatusOr<std::unique_ptr<KafkaProducer>> producer = KafkaProducer::Create(
      bootstrap, "test", [](uint64_t, const absl::Status&) {}, ssl);
  ASSERT_FALSE(producer.ok());
  EXPECT_THAT(producer.status().message(), HasSubstr("ssl.ca.location failed"));
  absl::StatusOr<std::unique_ptr<KafkaConsumer>> consumer =
      KafkaConsumer::Create(bootstrap, "test", 100, ssl);
  ASSERT_FALSE(consumer.ok());
  EXPECT_THAT(consumer.status().message(), HasSubstr("ssl.ca.location failed"));
}

// Accepted properties change nothing else: the daemon starts, and appends reach Kafka. (The
// mock cluster of librdkafka 2.0.2 speaks neither TLS nor SASL -- "SASL Handshake not supported
// by broker" -- so SSL and SASL_SSL connections are only exercised against a real cluster.)
TEST_F(KafkaPropertiesTest, DaemonRunsWithPassedThroughSettings) {
  absl::StatusOr<std::unique_ptr<Daemon>> daemon = StartWith({{"security.protocol", "plaintext"},
                                                              {"socket.keepalive.enable", "true"},
                                                              {"client.rack", "rack-1"},
                                                              {"linger.ms", "5"}});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  HttpClient client((*daemon)->http_address());
  NamespaceRecord record;
  const RegisterNamespaceRequest request = RegisterRequest(kNamespaceName);
  absl::Status s = client.Call("POST", "/v1/namespaces", &request, record);
  ASSERT_TRUE(s.ok()) << s;
  auto outbox_tasks = [&] {
    const StatusResponse status = GetStatus(client);
    int64_t tasks = 0;
    for (const ShardStatus& shard : status.shards()) tasks += shard.outbox_next_task_id();
    return tasks;
  };
  const int64_t outbox_before = outbox_tasks();
  const AppendRequest start =
      Append(kNamespaceName, "wf-1", 1, {Event(WORKFLOW_EXECUTION_STARTED, "input")});
  AppendResponse appended;
  s = client.Call("POST", "/v1/append", &start, appended);
  ASSERT_TRUE(s.ok()) << s;
  const int64_t outbox_after = outbox_tasks();
  EXPECT_GT(outbox_after, outbox_before);
  // The task reaches Kafka through the producer, which runs with the settings.
  EXPECT_TRUE(WaitUntil([&] {
    const StatusResponse status = GetStatus(client);
    int64_t published = 0;
    for (const ShardStatus& shard : status.shards()) published += shard.published_task_id();
    return published >= outbox_after;
  }));
}

// --- xdcctl -------------------------------------------------------------------------------------

constexpr absl::Duration kStartTimeout = absl::Seconds(30);

std::string Bin(const std::string& name) { return std::string(XDC_BIN_DIR) + "/" + name; }

class SecurityCliTest : public ::testing::Test {
 protected:
  // Starts xdcd with `api` (text format, may be empty) and returns its HTTP address.
  std::string StartXdcd(const std::string& api) {
    const std::string config = (std::filesystem::path(dir_.path()) / "east.conf").string();
    std::ofstream(config) << absl::StrFormat(R"(cluster_name: "east"
failover_version_increment: 100
shard_count: 4
clusters { name: "east" initial_failover_version: 1 }
clusters { name: "west" initial_failover_version: 2 }
data_dir: "%s/data"
http_listen_address: "127.0.0.1:0"
%s
)",
                                             dir_.path(), api);
    absl::StatusOr<std::unique_ptr<chaos::ChildProcess>> xdcd =
        chaos::ChildProcess::Spawn({Bin("xdcd"), "--config", config}, dir_.path() + "/east.log");
    EXPECT_TRUE(xdcd.ok()) << xdcd.status();
    if (!xdcd.ok()) return "";
    xdcd_ = *std::move(xdcd);
    absl::StatusOr<std::vector<std::string>> listening =
        xdcd_->WaitForMatch("listening on http://(\\S+)$", kStartTimeout);
    EXPECT_TRUE(listening.ok()) << listening.status() << xdcd_->LogTail();
    return listening.ok() ? (*listening)[1] : "";
  }

  ScopedDir dir_{"cli"};
  std::unique_ptr<chaos::ChildProcess> xdcd_;
};

TEST_F(SecurityCliTest, XdcctlSendsTheTokenFromTheFlagOrTheEnvironment) {
  const std::string token_file = dir_.path() + "/api-token";
  std::ofstream(token_file) << kToken << "\n";
  const std::string address =
      StartXdcd(absl::StrFormat(R"(api { bearer_token_file: "%s" })", token_file));
  ASSERT_FALSE(address.empty());
  const std::string ctl = Bin("xdcctl") + " --address " + address;
  const std::string reg = " namespace register orders --clusters east,west --active east";

  // Without a token (and none in the environment): refused with the daemon's message and a hint.
  CommandResult refused = RunCommand("env -u XDC_API_TOKEN " + ctl + reg);
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_THAT(refused.output, HasSubstr("UNAUTHENTICATED"));
  EXPECT_THAT(refused.output, HasSubstr("needs the API bearer token"));
  EXPECT_THAT(refused.output, HasSubstr("--token TOKEN or the XDC_API_TOKEN environment variable"));
  CommandResult wrong = RunCommand("env -u XDC_API_TOKEN " + ctl + " --token " + kWrongToken + reg);
  EXPECT_EQ(wrong.exit_code, 1) << wrong.output;
  EXPECT_THAT(wrong.output, HasSubstr("token does not match"));
  EXPECT_THAT(wrong.output, Not(HasSubstr(kToken)));
  EXPECT_THAT(RunCommand("env -u XDC_API_TOKEN " + ctl + " namespace list").output,
              Not(HasSubstr("orders")));

  // Reads need no token.
  CommandResult status = RunCommand("env -u XDC_API_TOKEN " + ctl + " status");
  EXPECT_EQ(status.exit_code, 0) << status.output;
  EXPECT_THAT(status.output, HasSubstr("cluster east, 4 shards"));

  // --token; then XDC_API_TOKEN; the flag wins over the environment.
  CommandResult with_flag = RunCommand(ctl + " --token " + kToken + reg);
  EXPECT_EQ(with_flag.exit_code, 0) << with_flag.output;
  EXPECT_THAT(with_flag.output, HasSubstr("active=east"));
  CommandResult with_env = RunCommand(
      absl::StrCat("XDC_API_TOKEN=", kToken, " ", ctl,
                   " append --namespace orders --workflow-id o-1 --expected-next-event-id 1 "
                   "--event WORKFLOW_EXECUTION_STARTED"));
  EXPECT_EQ(with_env.exit_code, 0) << with_env.output;
  CommandResult flag_wins =
      RunCommand(absl::StrCat("XDC_API_TOKEN=", kWrongToken, " ", ctl, " --token ", kToken,
                              " signal --namespace orders --workflow-id o-1 --name go"));
  EXPECT_EQ(flag_wins.exit_code, 0) << flag_wins.output;
  CommandResult env_wrong =
      RunCommand(absl::StrCat("XDC_API_TOKEN=", kWrongToken, " ", ctl,
                              " signal --namespace orders --workflow-id o-1 --name again"));
  EXPECT_EQ(env_wrong.exit_code, 1) << env_wrong.output;
  EXPECT_THAT(env_wrong.output, HasSubstr("token does not match"));
  // load sends it on each of its connections.
  CommandResult load = RunCommand(
      absl::StrCat("XDC_API_TOKEN=", kToken, " ", ctl,
                   " load --namespace orders --workflows 4 --signals 1 --concurrency 2"));
  EXPECT_EQ(load.exit_code, 0) << load.output;
  EXPECT_THAT(load.output, HasSubstr("wrote 4 workflows"));

  CommandResult history = RunCommand(ctl + " --json history --namespace orders --workflow-id o-1");
  GetHistoryResponse got;
  ASSERT_TRUE(FromJson(history.output, got).ok()) << history.output;
  EXPECT_EQ(got.events_size(), 2);  // started + the one signal that had the token
  EXPECT_THAT(RunCommand(Bin("xdcctl") + " --help").output, HasSubstr("--token TOKEN"));

  absl::StatusOr<chaos::ExitStatus> stopped = xdcd_->Terminate();
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_TRUE(stopped->exited_cleanly()) << stopped->ToString();
}

TEST_F(SecurityCliTest, XdcdWarnsOnceWhenNoTokenIsConfigured) {
  const std::string address = StartXdcd("");
  ASSERT_FALSE(address.empty());
  absl::StatusOr<std::string> log = xdcd_->ReadLog();
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_THAT(*log, HasSubstr("WARNING: no api.bearer_token or api.bearer_token_file"));
  const std::vector<std::string> pieces = absl::StrSplit(*log, "WARNING: no api.bearer_token");
  EXPECT_EQ(pieces.size(), 2u) << *log;
  // Without a token configured, mutating calls are served as before.
  CommandResult reg = RunCommand("env -u XDC_API_TOKEN " + Bin("xdcctl") + " --address " + address +
                                 " namespace register orders --clusters east,west "
                                 "--active east");
  EXPECT_EQ(reg.exit_code, 0) << reg.output;
}

// --- Slow clients (issue 15 item 12) -----------------------------------------------------------

// A client on a plain socket, to send part of a request and see what the server does with it.
class RawConnection {
 public:
  // Connects to 127.0.0.1:port. A read waits at most `guard` (the test's own bound, far above
  // the server's deadline): past it, Read reports that the server kept the connection open.
  RawConnection(uint16_t port, std::chrono::seconds guard)
      : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    EXPECT_GE(fd_, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    EXPECT_TRUE(connected_) << "connect: errno " << errno;
    timeval bound{static_cast<time_t>(guard.count()), 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof bound);
  }
  ~RawConnection() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool Send(std::string_view bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }

  // Whether the server answered within `ms`.
  bool Answered(int ms) {
    pollfd readable{fd_, POLLIN, 0};
    return ::poll(&readable, 1, ms) > 0;
  }

  // What the server sends until it closes the connection; `closed` false if the guard passed
  // first.
  struct Received {
    std::string bytes;
    bool closed = false;
  };
  Received ReadUntilClosed() {
    Received received;
    char chunk[4096];
    while (true) {
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n > 0) {
        received.bytes.append(chunk, static_cast<size_t>(n));
        continue;
      }
      received.closed = n == 0 || errno == ECONNRESET;
      return received;
    }
  }

 private:
  int fd_;
  bool connected_ = false;
};

class SlowClientTest : public ::testing::Test {
 protected:
  static constexpr size_t kMaxConnections = 4;
  static constexpr int kReadTimeoutMs = 1000;
  // How long the test waits for the server to close a connection before calling it held.
  static constexpr std::chrono::seconds kGuard{10};

  void SetUp() override {
    Tunables tunables;
    tunables.max_http_connections = kMaxConnections;
    tunables.http_request_read_timeout_ms = kReadTimeoutMs;
    // The idle timeout stays at its default (60 s, beyond kGuard): only the read deadline can
    // close these connections within the guard.
    absl::StatusOr<std::unique_ptr<Daemon>> daemon =
        Daemon::Start(MakeConfig("east", dir_.path(), ""), tunables);
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemon_ = *std::move(daemon);
  }

  ScopedDir dir_{"east"};
  std::unique_ptr<Daemon> daemon_;
};

// The start of a registration whose header stops halfway (`kind` 0) or whose body stops halfway
// (`kind` 1).
std::string PartialRequest(int kind) {
  if (kind == 0) return "POST /v1/namespaces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le";
  return "POST /v1/namespaces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
         "Content-Length: 80\r\n\r\n{\"name\":\"slow\",";
}

TEST_F(SlowClientTest, RequestsStoppedHalfwayAreClosedAtTheReadDeadlineAndFreeTheirSlots) {
  // Every slot taken by a client that sends part of a request and then nothing.
  std::vector<std::unique_ptr<RawConnection>> slow;
  for (size_t i = 0; i < kMaxConnections; ++i) {
    slow.push_back(std::make_unique<RawConnection>(daemon_->http_port(), kGuard));
    ASSERT_TRUE(slow.back()->Send(PartialRequest(static_cast<int>(i % 2))));
  }
  // One more connection than the limit: refused at once (the server answers it before reading,
  // so it sends nothing), as every well-behaved client is while the slow ones hold the slots.
  RawConnection over_limit(daemon_->http_port(), kGuard);
  RawConnection::Received refused = over_limit.ReadUntilClosed();
  EXPECT_TRUE(refused.closed);
  EXPECT_THAT(refused.bytes, ::testing::StartsWith("HTTP/1.1 503"));
  EXPECT_THAT(refused.bytes, HasSubstr("too many connections (at most 4)"));

  // The server answers each slow connection 408 and closes it once its read deadline passes.
  for (size_t i = 0; i < slow.size(); ++i) {
    SCOPED_TRACE(absl::StrCat("slow connection ", i));
    RawConnection::Received received = slow[i]->ReadUntilClosed();
    ASSERT_TRUE(received.closed) << "the server still holds the connection after " << kGuard
                                 << "; received: " << absl::CHexEscape(received.bytes);
    EXPECT_THAT(received.bytes, ::testing::StartsWith("HTTP/1.1 408"));
    EXPECT_THAT(received.bytes, HasSubstr("http_request_read_timeout_ms"));
    EXPECT_THAT(received.bytes, HasSubstr("Connection: close"));
  }

  // Their slots are free: a well-behaved client is served, on a kept-alive connection.
  HttpClient client(daemon_->http_address());
  NamespaceRecord record;
  const RegisterNamespaceRequest request = RegisterRequest(kNamespaceName);
  absl::Status s = client.Call("POST", "/v1/namespaces", &request, record);
  EXPECT_TRUE(s.ok()) << s;
  // None of the partial registrations was acted on.
  EXPECT_THAT(NamespaceNames(client), ::testing::ElementsAre(kNamespaceName));
}

TEST_F(SlowClientTest, ARequestDripFedAByteAtATimeIsCutAtTheDeadline) {
  // Each byte comes well within any per-read timeout, but the whole header would take far
  // longer than the deadline (a byte per 20 ms without an answer).
  const std::string request = absl::StrCat(
      "GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ", std::string(1000, 'p'),
      "\r\n\r\n");
  RawConnection drip(daemon_->http_port(), kGuard);
  size_t sent = 0;
  while (sent < request.size() && !drip.Answered(20)) {
    if (!drip.Send(request.substr(sent, 1))) break;
    ++sent;
  }
  RawConnection::Received received = drip.ReadUntilClosed();
  EXPECT_LT(sent, request.size()) << "the server waited for the whole drip-fed header";
  EXPECT_TRUE(received.closed);
  EXPECT_THAT(received.bytes, ::testing::StartsWith("HTTP/1.1 408"));
}

// --- Error bodies are valid JSON (issue 15 item 14) --------------------------------------------

class ErrorBodyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Tunables tunables;
    tunables.fault_point_api = FaultPointApi::kEnabled;  // its POST parses a body too
    absl::StatusOr<std::unique_ptr<Daemon>> daemon =
        Daemon::Start(MakeConfig("east", dir_.path(), ""), tunables);
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemon_ = *std::move(daemon);
    HttpClient client(daemon_->http_address());
    NamespaceRecord record;
    const RegisterNamespaceRequest request = RegisterRequest(kNamespaceName);
    ASSERT_TRUE(client.Call("POST", "/v1/namespaces", &request, record).ok());
  }

  // `response` is an error that a strict JSON parser accepts (protobuf's, into a Struct: it
  // refuses invalid UTF-8), whose message holds `expected_part` and no raw control character,
  // and is bounded.
  static void ExpectValidJsonError(const RawResponse& response, int status,
                                   const std::string& expected_part) {
    EXPECT_EQ(response.status, status) << absl::CHexEscape(response.body);
    google::protobuf::Struct parsed;
    const auto strict = google::protobuf::util::JsonStringToMessage(response.body, &parsed);
    ASSERT_TRUE(strict.ok()) << "not valid JSON (" << strict.ToString()
                             << "): " << absl::CHexEscape(response.body);
    ErrorResponse error;
    ASSERT_TRUE(FromJson(response.body, error).ok()) << absl::CHexEscape(response.body);
    EXPECT_FALSE(error.code().empty());
    EXPECT_THAT(error.message(), HasSubstr(expected_part));
    EXPECT_LE(error.message().size(), 4200u);
    const std::string& message = error.message();
    for (size_t i = 0; i < message.size(); ++i) {
      const auto c = static_cast<unsigned char>(message[i]);
      const bool c0 = (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f;
      const bool c1 =
          c == 0xc2 && i + 1 < message.size() && static_cast<unsigned char>(message[i + 1]) < 0xa0;
      EXPECT_FALSE(c0 || c1) << "raw control character at " << i << ": "
                             << absl::CHexEscape(message);
    }
  }

  std::string address() const { return daemon_->http_address(); }

  ScopedDir dir_{"east"};
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(ErrorBodyTest, HostileBodiesGetValidJsonErrorsOnEveryRouteThatParsesOne) {
  std::mt19937 random(15);
  std::string random_bytes(512, '\0');
  for (char& c : random_bytes) c = static_cast<char>(random() % 256);
  const std::vector<std::pair<std::string, std::string>> bodies = {
      // Overlong '/', a stray continuation byte, an encoded surrogate, a truncated sequence.
      {"invalid UTF-8 in a value", "{\"name\":\"a\xc0\xaf\x9f\xed\xa0\x80\xe2\x82\"}"},
      {"invalid UTF-8 in a field name", "{\"\xc0\xaf\xff\xfe\":1}"},
      {"NUL and control characters", std::string("{\"name\":\"a\0b\x1b[31m\x7f\x01\"}", 21)},
      {"control characters in a field name",
       "{\"\\u001b[2J\xc2\x9b"
       "31m\\u0000\":1}"},
      {"quotes and backslashes", R"({"a\"b\\c\"":1, "\"":"\\"})"},
      {"random bytes", random_bytes},
      {"a huge field name", absl::StrCat("{\"", std::string(100000, 'x'), "\xc0\xaf\":1}")},
  };
  const std::vector<std::string> routes = {"/v1/append",
                                           "/v1/append-batch",
                                           "/v1/signal",
                                           "/v1/namespaces",
                                           "/v1/dlq/retry",
                                           "/v1/dlq/purge",
                                           "/v1/missing-tasks/acknowledge",
                                           "/v1/migration/repair",
                                           "/v1/fault-points",
                                           "/v1/clusters",
                                           "/v1/namespaces/orders/failover",
                                           "/v1/namespaces/orders/cancel-handover",
                                           "/v1/namespaces/orders/clusters",
                                           "/v1/namespaces/orders/backfill"};
  for (const std::string& route : routes) {
    for (const auto& [what, body] : bodies) {
      SCOPED_TRACE(absl::StrCat("POST ", route, " with ", what));
      // protobuf's parser takes raw control characters inside strings; the two requests with a
      // "name" field then refuse the name itself, quoting it.
      const bool names = route == "/v1/namespaces" || route == "/v1/clusters";
      const std::string wrong = what == "NUL and control characters" && names
                                    ? R"('a\x00b\x1b[31m\x7f\x01')"
                                    : "malformed JSON body";
      ExpectValidJsonError(RawRequest(address(), http::verb::post, route, body, ""), 400, wrong);
    }
  }
}

TEST_F(ErrorBodyTest, ErrorsQuotingThePathOrQueryAreValidJsonAndHexQuoteBadBytes) {
  // A namespace name from the path and from the query, percent-decoded into raw bytes.
  RawResponse by_path =
      RawRequest(address(), http::verb::get, "/v1/namespaces/%C0%AFx%1B%22%9F", "", "");
  ExpectValidJsonError(by_path, 404, R"(\xc0\xafx\x1b"\x9f)");
  RawResponse by_query = RawRequest(address(), http::verb::get,
                                    "/v1/history?namespace=%ED%A0%80%00&workflow_id=w", "", "");
  ExpectValidJsonError(by_query, 404, R"(\xed\xa0\x80\x00)");
  // Valid JSON whose strings carry control characters and quotes, checked by the route itself.
  SignalRequest signal;
  signal.set_namespace_("\x1b[2J\"\\\x7f");
  signal.set_workflow_id("wf-1");
  signal.set_signal_name("s");
  RawResponse by_value = RawRequest(address(), http::verb::post, "/v1/signal", JsonOf(signal), "");
  ExpectValidJsonError(by_value, 404, R"(\x1b[2J"\\x7f)");
}

}  // namespace
}  // namespace xdc
