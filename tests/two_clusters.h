// Two whole clusters in one process, for integration tests: east (active for the namespace, with
// the embedded mock Kafka) and west (a standby on east's Kafka), driven through the HTTP API like
// a client would, plus the helpers those tests share (configs, temporary directories, writing
// workflows, reading status, digests, the DLQ and metrics).
//
// Real broker: with XDC_TEST_KAFKA_BOOTSTRAP=HOST:PORT (scripts/test.sh starts one with
// scripts/kafka.sh), every daemon these helpers configure without a bootstrap of its own uses that
// Kafka instead of the embedded mock, with topics of its own test (TestTopicPrefix()).
//
// Used by tests/integration_test.cc and tests/resend_dlq_test.cc.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "protocol/message_codec.h"
#include "protocol/xdc.pb.h"
#include "replicator/daemon.h"
#include "replicator/http_client.h"
#include "replicator/tunables.h"

namespace xdc {

inline constexpr auto kDeadline = std::chrono::seconds(30);

// The real Kafka the tests run on, or "" for the embedded mock.
inline std::string RealKafkaBootstrap() {
  const char* bootstrap = std::getenv("XDC_TEST_KAFKA_BOOTSTRAP");
  return bootstrap == nullptr ? std::string() : std::string(bootstrap);
}

// Topics of the current test only, so that tests sharing one real broker never read each other's
// messages: "t<pid>-<test name>", cut to a valid kafka.topic_prefix.
inline std::string TestTopicPrefix() {
  if (RealKafkaBootstrap().empty()) return "";
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string prefix =
      absl::StrCat("t", getpid(), "-", info == nullptr ? "global" : info->test_suite_name(), ".",
                   info == nullptr ? "" : info->name());
  for (char& c : prefix) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') c = '_';
  }
  constexpr size_t kMaxPrefix = 100;  // kafka.topic_prefix's bound (protocol/config.cc)
  return prefix.substr(0, kMaxPrefix);
}

// A directory under ::testing::TempDir(), unique per test and process, removed at the end.
class ScopedDir {
 public:
  explicit ScopedDir(const std::string& tag) {
    static std::atomic<int> counter{0};
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = (std::filesystem::path(::testing::TempDir()) /
             absl::StrCat("xdc_it_", info != nullptr ? info->name() : "none", "_", tag, "_",
                          getpid(), "_", counter++))
                .string();
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScopedDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScopedDir(const ScopedDir&) = delete;
  ScopedDir& operator=(const ScopedDir&) = delete;

  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline DaemonConfig MakeConfig(const std::string& cluster, const std::string& data_dir,
                               const std::string& bootstrap, int32_t shard_count = 4) {
  DaemonConfig config;
  config.set_cluster_name(cluster);
  config.set_failover_version_increment(100);
  config.set_shard_count(shard_count);
  ClusterConfig* east = config.add_clusters();
  east->set_name("east");
  east->set_initial_failover_version(1);
  ClusterConfig* west = config.add_clusters();
  west->set_name("west");
  west->set_initial_failover_version(2);
  config.set_data_dir(data_dir);
  config.set_http_listen_address("127.0.0.1:0");
  config.mutable_kafka()->set_bootstrap_servers(bootstrap.empty() ? RealKafkaBootstrap()
                                                                  : bootstrap);
  config.mutable_kafka()->set_topic_prefix(TestTopicPrefix());
  return config;
}

// Polls `condition` until it holds or the deadline passes. Polling is the synchronisation; the
// short sleep only keeps the loop from spinning.
inline bool WaitUntil(const std::function<bool()>& condition,
                      std::chrono::steady_clock::duration timeout = kDeadline) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// An error answer: the HTTP status and the decoded ErrorResponse.
struct ApiError {
  int http_status = 0;
  ErrorResponse error;
  std::string body;
};

inline ApiError RequestError(HttpClient& client, const std::string& method,
                             const std::string& target, const std::string& body = "") {
  ApiError result;
  absl::StatusOr<HttpResult> response = client.Request(method, target, body);
  EXPECT_TRUE(response.ok()) << response.status();
  if (!response.ok()) return result;
  result.http_status = response->status;
  result.body = response->body;
  EXPECT_TRUE(FromJson(response->body, result.error).ok()) << response->body;
  return result;
}

inline std::string JsonOf(const google::protobuf::Message& message) {
  absl::StatusOr<std::string> json = ToJson(message);
  EXPECT_TRUE(json.ok()) << json.status();
  return json.ok() ? *json : "";
}

inline NewEvent Event(EventType type, const std::string& attributes = "") {
  NewEvent event;
  event.set_event_type(type);
  event.set_attributes(attributes);
  return event;
}

inline AppendRequest Append(const std::string& ns, const std::string& workflow_id, int64_t expected,
                            std::vector<NewEvent> events, const std::string& run_id = "") {
  AppendRequest request;
  request.set_namespace_(ns);
  request.set_workflow_id(workflow_id);
  request.set_run_id(run_id);
  request.set_expected_next_event_id(expected);
  for (NewEvent& event : events) *request.add_events() = std::move(event);
  return request;
}

// Writes one workflow through the API: start + activity, two signals, a timer and, when
// `complete`, a completion. Returns the number of events written, or an error.
inline absl::StatusOr<int64_t> WriteWorkflow(HttpClient& client, const std::string& ns,
                                             const std::string& workflow_id, bool complete) {
  AppendResponse started;
  AppendRequest start = Append(
      ns, workflow_id, 1,
      {Event(WORKFLOW_EXECUTION_STARTED, "input-" + workflow_id),
       Event(ACTIVITY_TASK_SCHEDULED, "activity"), Event(ACTIVITY_TASK_COMPLETED, "result")});
  if (absl::Status s = client.Call("POST", "/v1/append", &start, started); !s.ok()) return s;
  int64_t next = started.next_event_id();
  for (int i = 0; i < 2; ++i) {
    SignalRequest signal;
    signal.set_namespace_(ns);
    signal.set_workflow_id(workflow_id);
    signal.set_signal_name(absl::StrCat("signal-", i));
    signal.set_input(absl::StrCat("input-", i, "-", workflow_id, std::string("\0\xff", 2)));
    AppendResponse signalled;
    if (absl::Status s = client.Call("POST", "/v1/signal", &signal, signalled); !s.ok()) return s;
    if (signalled.first_event_id() != next) {
      return absl::InternalError(
          absl::StrCat("signal got event id ", signalled.first_event_id(), ", expected ", next));
    }
    next = signalled.next_event_id();
  }
  std::vector<NewEvent> tail = {Event(TIMER_STARTED, "timer"), Event(TIMER_FIRED)};
  if (complete) tail.push_back(Event(WORKFLOW_EXECUTION_COMPLETED, "done"));
  AppendRequest rest = Append(ns, workflow_id, next, std::move(tail), started.run_id());
  AppendResponse appended;
  if (absl::Status s = client.Call("POST", "/v1/append", &rest, appended); !s.ok()) return s;
  return appended.next_event_id() - 1;
}

// Writes `count` workflows named prefix-0.. on `address` from a few client threads; returns the
// total number of events written.
inline int64_t WriteWorkflows(const std::string& address, const std::string& ns,
                              const std::string& prefix, int count) {
  constexpr int kThreads = 4;
  std::atomic<int64_t> events{0};
  std::mutex mu;
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      HttpClient client(address);
      for (int i = t; i < count; i += kThreads) {
        absl::StatusOr<int64_t> written =
            WriteWorkflow(client, ns, absl::StrCat(prefix, "-", i), i % 2 == 0);
        if (!written.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          errors.push_back(written.status().ToString());
          continue;
        }
        events += *written;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_THAT(errors, ::testing::SizeIs(0)) << (errors.empty() ? "" : errors.front());
  return events.load();
}

inline absl::StatusOr<ListDigestsResponse> Digests(HttpClient& client, const std::string& ns) {
  ListDigestsResponse response;
  if (absl::Status s = client.Call("GET", "/v1/digests?namespace=" + ns, nullptr, response);
      !s.ok()) {
    return s;
  }
  std::sort(response.mutable_workflows()->begin(), response.mutable_workflows()->end(),
            [](const WorkflowDigest& a, const WorkflowDigest& b) {
              return std::tie(a.workflow_id(), a.run_id()) < std::tie(b.workflow_id(), b.run_id());
            });
  return response;
}

inline NamespaceRecord GetRecord(HttpClient& client, const std::string& name) {
  NamespaceRecord record;
  absl::Status s = client.Call("GET", "/v1/namespaces/" + name, nullptr, record);
  EXPECT_TRUE(s.ok()) << s;
  return record;
}

inline StatusResponse GetStatus(HttpClient& client) {
  StatusResponse status;
  absl::Status s = client.Call("GET", "/v1/status", nullptr, status);
  EXPECT_TRUE(s.ok()) << s;
  return status;
}

inline ListParkedResponse GetDlq(HttpClient& client) {
  ListParkedResponse dlq;
  absl::Status s = client.Call("GET", "/v1/dlq", nullptr, dlq);
  EXPECT_TRUE(s.ok()) << s;
  return dlq;
}

// Every peer shard has a known high watermark and nothing left to apply.
inline bool CaughtUp(const StatusResponse& status) {
  for (const ShardStatus& shard : status.shards()) {
    for (const PeerShardStatus& peer : shard.peers()) {
      if (peer.high_watermark() < 0 || peer.lag_tasks() != 0 ||
          peer.applied_offset() != peer.high_watermark()) {
        return false;
      }
    }
  }
  return status.total_lag_tasks() == 0;
}

// Every shard's publish pointer reached the end of its outbox: each committed task was delivered
// to Kafka (its delivery report came back), so it is at or below the partition's high watermark.
inline bool PublishedAll(const StatusResponse& status) {
  for (const ShardStatus& shard : status.shards()) {
    if (shard.published_task_id() != shard.outbox_next_task_id()) return false;
  }
  return true;
}

// Task ids of peers' streams missing here, over every shard (the `missing` column).
inline int64_t MissingTasks(const StatusResponse& status) {
  int64_t sum = 0;
  for (const ShardStatus& shard : status.shards()) {
    for (const PeerShardStatus& peer : shard.peers()) sum += peer.missing_tasks();
  }
  return sum;
}

inline int64_t EventsApplied(const StatusResponse& status) {
  int64_t sum = 0;
  for (const ShardStatus& shard : status.shards()) {
    for (const PeerShardStatus& peer : shard.peers()) sum += peer.events_applied();
  }
  return sum;
}

// Sum of the samples of `metric` in Prometheus text format whose labels include every one of
// `labels` (each written as in the text: `peer="east"`).
inline double MetricSum(const std::string& text, const std::string& metric,
                        const std::vector<std::string>& labels = {}) {
  double sum = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line.front() == '#') continue;
    if (!absl::StartsWith(line, metric)) continue;
    const absl::string_view rest = line.substr(metric.size());
    if (!rest.empty() && rest.front() != '{' && rest.front() != ' ') continue;  // longer name
    const absl::string_view label_text =
        rest.substr(0, rest.rfind('}') + 1);  // values may hold '}'
    if (!std::all_of(labels.begin(), labels.end(), [&](const std::string& label) {
          return absl::StrContains(label_text, label);
        })) {
      continue;
    }
    const size_t space = line.rfind(' ');
    double value = 0;
    if (space != absl::string_view::npos && absl::SimpleAtod(line.substr(space + 1), &value)) {
      sum += value;
    }
  }
  return sum;
}

// Overwrites the attributes of event `event_id` (of `version`) of a run in `store`, as bit rot
// would: the run's state is rewritten unchanged with the altered event, in one write.
inline void CorruptStoredEvent(Store& store, const WorkflowKey& key, int64_t event_id,
                               int64_t version, const std::string& attributes) {
  absl::StatusOr<std::optional<WorkflowMutableState>> state = store.GetWorkflowState(key);
  ASSERT_TRUE(state.ok() && state->has_value()) << state.status();
  absl::StatusOr<HistoryEvent> event = store.ReadEvent(key, event_id, version);
  ASSERT_TRUE(event.ok()) << event.status();
  event->set_attributes(attributes);
  StoreWrite write;
  WorkflowWrite update;
  update.state = **state;
  update.events.push_back(*event);
  write.workflows.push_back(std::move(update));
  ASSERT_TRUE(store.CommitWrite(write).ok());
}

// Two clusters, east (embedded Kafka) and west (on east's Kafka), with one namespace active on
// east and known to both.
class TwoClustersTest : public ::testing::Test {
 protected:
  static constexpr char kNamespace[] = "orders";

  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Daemon>> east =
        Daemon::Start(MakeConfig("east", east_dir_.path(), ""), east_tunables_);
    ASSERT_TRUE(east.ok()) << east.status();
    east_ = *std::move(east);
    ASSERT_EQ(east_->embedded_kafka(), RealKafkaBootstrap().empty());
    ASSERT_FALSE(east_->kafka_bootstrap().empty());
    ASSERT_NO_FATAL_FAILURE(StartWest());
    east_client_ = std::make_unique<HttpClient>(east_->http_address());

    RegisterNamespaceRequest request;
    request.set_name(kNamespace);
    request.add_clusters("east");
    request.add_clusters("west");
    request.set_active_cluster("east");
    NamespaceRecord record;
    absl::Status s = east_client_->Call("POST", "/v1/namespaces", &request, record);
    ASSERT_TRUE(s.ok()) << s;
    EXPECT_EQ(record.name(), kNamespace);
    EXPECT_EQ(record.active_cluster(), "east");
    EXPECT_EQ(record.failover_version(), 1);
    EXPECT_EQ(record.state(), NAMESPACE_STATE_ACTIVE);
    namespace_id_ = record.id();

    // The record reaches west over east's control topic.
    NamespaceRecord on_west;
    ASSERT_TRUE(WaitUntil([&] {
      ListNamespacesResponse list;
      if (!west_client_->Call("GET", "/v1/namespaces", nullptr, list).ok()) return false;
      for (const NamespaceRecord& ns : list.namespaces()) {
        if (ns.name() == kNamespace) {
          on_west = ns;
          return true;
        }
      }
      return false;
    })) << "west never listed namespace "
        << kNamespace;
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(on_west, record))
        << on_west.DebugString() << " vs " << record.DebugString();
  }

  void TearDown() override {
    // West consumes from east's embedded Kafka: stop it first.
    west_client_.reset();
    west_.reset();
    east_client_.reset();
    east_.reset();
  }

  // Starts west on its data_dir with west_tunables_ (again, after StopWest(): a restart).
  void StartWest() {
    absl::StatusOr<std::unique_ptr<Daemon>> west = Daemon::Start(
        MakeConfig("west", west_dir_.path(), east_->kafka_bootstrap()), west_tunables_);
    ASSERT_TRUE(west.ok()) << west.status();
    west_ = *std::move(west);
    EXPECT_FALSE(west_->embedded_kafka());
    west_client_ = std::make_unique<HttpClient>(west_->http_address());
  }

  // Stops west (its store closes); east and the data_dirs stay.
  void StopWest() {
    west_client_.reset();
    west_.reset();
  }

  // Waits until west holds exactly east's workflows with identical digests; returns how many.
  size_t WaitForConvergence() {
    std::string last;
    size_t count = 0;
    const bool converged = WaitUntil([&] {
      absl::StatusOr<ListDigestsResponse> east = Digests(*east_client_, kNamespace);
      absl::StatusOr<ListDigestsResponse> west = Digests(*west_client_, kNamespace);
      if (!east.ok() || !west.ok()) {
        last = absl::StrCat(east.status().ToString(), " / ", west.status().ToString());
        return false;
      }
      count = static_cast<size_t>(east->workflows_size());
      last = absl::StrCat("east has ", east->workflows_size(), " workflows, west ",
                          west->workflows_size());
      return google::protobuf::util::MessageDifferencer::Equals(*east, *west);
    });
    EXPECT_TRUE(converged) << "digests never matched: " << last;
    return count;
  }

  // Each daemon starts with these: a derived fixture sets them in its constructor (before
  // SetUp), a test may change west_tunables_ before restarting west.
  Tunables east_tunables_;
  Tunables west_tunables_;
  ScopedDir east_dir_{"east"};
  ScopedDir west_dir_{"west"};
  std::unique_ptr<Daemon> east_;
  std::unique_ptr<Daemon> west_;
  std::unique_ptr<HttpClient> east_client_;
  std::unique_ptr<HttpClient> west_client_;
  std::string namespace_id_;
};

}  // namespace xdc
