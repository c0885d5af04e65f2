// The fault-injection seams the chaos suite drives (chaos/fault_points.h, docs/api.md,
// xdc-kafka-mock's control API), each checked for what a user depends on:
//
//   KafkaDeliveryFaultTest   kafka.duplicate_delivery / kafka.reorder_delivery change what
//                            KafkaConsumer::Poll returns, exactly as documented
//   DeliveryFaultsTest       with either armed, a standby still converges to the active's
//                            histories, with every acknowledged event applied exactly once
//   FaultPointApiTest        /v1/fault-points: 404 unless enabled, arm/list/disarm, unknown names
//                            refused, POST needs the bearer token
//   FaultProcessTest         xdcctl fault list|arm|disarm against a real xdcd; store.write_error
//                            refuses appends (never acknowledged) until a restart, and nothing
//                            acknowledged is lost
//   KafkaMockControlTest     xdc-kafka-mock --control-address: broker down/up, rtt, request
//                            errors, bad input; --topic-prefix creates the prefixed topics
//
// Fault points are process-global: in-process tests disarm everything they armed when they end.
// Every wait polls a condition with a deadline.

#include <stdlib.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "chaos/fault_points.h"
#include "chaos/process.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "protocol/shard_hash.h"
#include "protocol/xdc.pb.h"
#include "replicator/daemon.h"
#include "replicator/http_client.h"
#include "replicator/kafka_client.h"
#include "replicator/tunables.h"
#include "tests/process_clusters.h"
#include "tests/run_command.h"
#include "tests/two_clusters.h"

namespace xdc {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kToken[] = "fault-test-token-0123456789abcdef";

// Disarms every fault point when the scope ends, however the test ends.
class DisarmAllAtExit {
 public:
  DisarmAllAtExit() = default;
  ~DisarmAllAtExit() {
    for (const std::string& name : fault::ArmedNames()) fault::Disarm(name);
  }
  DisarmAllAtExit(const DisarmAllAtExit&) = delete;
  DisarmAllAtExit& operator=(const DisarmAllAtExit&) = delete;
};

// Polls `consumer` until `want` messages arrived or the deadline passed; the batches as returned.
std::vector<std::vector<KafkaMessage>> PollBatches(KafkaConsumer& consumer, size_t want) {
  constexpr int kPollMs = 100;
  constexpr size_t kMaxBatch = 512;
  std::vector<std::vector<KafkaMessage>> batches;
  size_t got = 0;
  WaitUntil([&] {
    std::vector<KafkaMessage> batch = consumer.Poll(kPollMs, kMaxBatch);
    got += batch.size();
    if (!batch.empty()) batches.push_back(std::move(batch));
    return got >= want;
  });
  return batches;
}

// --- KafkaConsumer::Poll under the delivery fault points --------------------------------------

class KafkaDeliveryFaultTest : public ::testing::Test {
 protected:
  static constexpr char kTopic[] = "fault.seams";
  static constexpr int kPerPartition[] = {6, 3};  // messages produced to partitions 0 and 1

  void SetUp() override {
    absl::StatusOr<std::unique_ptr<EmbeddedKafka>> kafka = EmbeddedKafka::Start(1);
    ASSERT_TRUE(kafka.ok()) << kafka.status();
    kafka_ = *std::move(kafka);
    ASSERT_TRUE(kafka_->CreateTopic(kTopic, 2).ok());
    absl::StatusOr<std::unique_ptr<KafkaProducer>> producer =
        KafkaProducer::Create(kafka_->bootstrap(), "fault-test",
                              [](uint64_t, const absl::Status& s) { EXPECT_TRUE(s.ok()) << s; });
    ASSERT_TRUE(producer.ok()) << producer.status();
    // Produced back to back and flushed together, so each partition's messages share one
    // message set and a fetch brings them in one batch.
    for (int32_t partition = 0; partition < 2; ++partition) {
      for (int i = 0; i < kPerPartition[partition]; ++i) {
        ASSERT_TRUE(
            (*producer)->Produce(kTopic, partition, absl::StrCat("p", partition, "-", i), 0).ok());
      }
    }
    ASSERT_TRUE((*producer)->Flush(30000).ok());
    absl::StatusOr<std::unique_ptr<KafkaConsumer>> consumer =
        KafkaConsumer::Create(kafka_->bootstrap(), "fault-test", 10);
    ASSERT_TRUE(consumer.ok()) << consumer.status();
    consumer_ = *std::move(consumer);
    ASSERT_TRUE(consumer_->Assign({{kTopic, 0, 0}, {kTopic, 1, 0}}).ok());
  }

  DisarmAllAtExit disarm_;
  std::unique_ptr<EmbeddedKafka> kafka_;
  std::unique_ptr<KafkaConsumer> consumer_;
};

TEST_F(KafkaDeliveryFaultTest, DuplicateDeliveryReturnsEachMessageTwiceCopyRightAfter) {
  fault::Arm(fault::kKafkaDuplicateDelivery);
  std::vector<std::vector<KafkaMessage>> batches = PollBatches(*consumer_, 2 * (6 + 3));
  std::map<int32_t, std::vector<int64_t>> offsets;
  for (const std::vector<KafkaMessage>& batch : batches) {
    ASSERT_EQ(batch.size() % 2, 0u);
    for (size_t i = 0; i < batch.size(); i += 2) {
      // The copy follows its original: same partition, offset and payload.
      EXPECT_EQ(batch[i].partition, batch[i + 1].partition);
      EXPECT_EQ(batch[i].offset, batch[i + 1].offset);
      EXPECT_EQ(batch[i].payload, batch[i + 1].payload);
      EXPECT_EQ(batch[i].payload, absl::StrCat("p", batch[i].partition, "-", batch[i].offset));
      offsets[batch[i].partition].push_back(batch[i].offset);
    }
  }
  EXPECT_THAT(offsets[0], ElementsAre(0, 1, 2, 3, 4, 5));
  EXPECT_THAT(offsets[1], ElementsAre(0, 1, 2));

  // Disarmed: each message once again.
  fault::Disarm(fault::kKafkaDuplicateDelivery);
  absl::StatusOr<std::unique_ptr<KafkaProducer>> producer = KafkaProducer::Create(
      kafka_->bootstrap(), "fault-test", [](uint64_t, const absl::Status&) {});
  ASSERT_TRUE(producer.ok());
  ASSERT_TRUE((*producer)->Produce(kTopic, 0, "p0-6", 0).ok());
  ASSERT_TRUE((*producer)->Flush(30000).ok());
  std::vector<std::vector<KafkaMessage>> after = PollBatches(*consumer_, 1);
  ASSERT_EQ(after.size(), 1u);
  ASSERT_EQ(after[0].size(), 1u);
  EXPECT_EQ(after[0][0].offset, 6);
}

TEST_F(KafkaDeliveryFaultTest, ReorderDeliverySwapsAdjacentMessagesOfEachPartition) {
  fault::Arm(fault::kKafkaReorderDelivery);
  std::vector<std::vector<KafkaMessage>> batches = PollBatches(*consumer_, 6 + 3);
  std::map<int32_t, std::set<int64_t>> seen;
  int swapped_pairs = 0;
  for (const std::vector<KafkaMessage>& batch : batches) {
    // Within a batch, each partition's offsets come as b+1, b, b+3, b+2, ... (an odd last one
    // in place).
    std::map<int32_t, std::vector<int64_t>> per_partition;
    for (const KafkaMessage& message : batch) {
      EXPECT_EQ(message.payload, absl::StrCat("p", message.partition, "-", message.offset));
      per_partition[message.partition].push_back(message.offset);
      EXPECT_TRUE(seen[message.partition].insert(message.offset).second) << "delivered twice";
    }
    for (const auto& [partition, offsets] : per_partition) {
      for (size_t i = 0; i + 1 < offsets.size(); i += 2) {
        EXPECT_EQ(offsets[i], offsets[i + 1] + 1) << "partition " << partition;
        ++swapped_pairs;
      }
    }
  }
  EXPECT_EQ(seen[0].size(), 6u);
  EXPECT_EQ(seen[1].size(), 3u);
  EXPECT_GT(swapped_pairs, 0) << "no batch held two messages of one partition";
}

// --- A standby under duplicated and reordered delivery ----------------------------------------

class DeliveryFaultsTest : public TwoClustersTest {
 protected:
  static constexpr int kWorkflows = 40;
  static constexpr int kWriters = 8;

  // Writes kWorkflows workflows named prefix-0.. on east from kWriters clients at once (so that
  // appends share commit groups and Kafka message sets, and a standby's polls bring several
  // messages of one partition); returns each workflow's acknowledged last event id.
  std::map<std::string, int64_t> WriteAcknowledged(const std::string& prefix) {
    absl::Mutex mu;
    std::map<std::string, int64_t> acknowledged;
    std::vector<std::thread> writers;
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back([&, w] {
        HttpClient client(east_->http_address());
        for (int i = w; i < kWorkflows; i += kWriters) {
          const std::string id = absl::StrCat(prefix, "-", i);
          absl::StatusOr<int64_t> last = WriteWorkflow(client, kNamespace, id, i % 2 == 0);
          EXPECT_TRUE(last.ok()) << last.status();
          absl::MutexLock lock(&mu);
          if (last.ok()) acknowledged[id] = *last;
        }
      });
    }
    for (std::thread& writer : writers) writer.join();
    return acknowledged;
  }

  // West holds exactly what east acknowledged: same digests, every workflow complete, nothing
  // missing or parked.
  void ExpectWestHoldsEveryAcknowledgedEvent(const std::map<std::string, int64_t>& acknowledged) {
    EXPECT_EQ(WaitForConvergence(), acknowledged.size());
    absl::StatusOr<ListDigestsResponse> west = Digests(*west_client_, kNamespace);
    ASSERT_TRUE(west.ok()) << west.status();
    std::map<std::string, int64_t> on_west;
    for (const WorkflowDigest& digest : west->workflows()) {
      on_west[digest.workflow_id()] = digest.next_event_id() - 1;
    }
    EXPECT_EQ(on_west, acknowledged);
    ASSERT_TRUE(WaitUntil([&] { return CaughtUp(GetStatus(*west_client_)); }));
    const StatusResponse status = GetStatus(*west_client_);
    EXPECT_EQ(MissingTasks(status), 0) << status.DebugString();
    EXPECT_THAT(status.halted_appliers(), IsEmpty());
    EXPECT_THAT(GetDlq(*west_client_).tasks(), IsEmpty());
  }

  DisarmAllAtExit disarm_;
};

TEST_F(DeliveryFaultsTest, DuplicatedDeliveryConvergesAndAppliesEachEventOnce) {
  fault::Arm(fault::kKafkaDuplicateDelivery);
  const std::map<std::string, int64_t> acknowledged = WriteAcknowledged("dup");
  int64_t total = 0;
  for (const auto& [id, last] : acknowledged) total += last;
  ASSERT_NO_FATAL_FAILURE(ExpectWestHoldsEveryAcknowledgedEvent(acknowledged));
  // Each event was applied once although every message arrived twice. (The status counters
  // follow the store's commit, so wait for them; a double apply would overshoot and never equal.)
  int64_t applied = 0;
  EXPECT_TRUE(WaitUntil([&] {
    applied = EventsApplied(GetStatus(*west_client_));
    return applied == total;
  })) << "west applied "
      << applied << " events of " << total;
  absl::StatusOr<HttpResult> metrics = west_client_->Request("GET", "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(MetricSum(metrics->body, "xdc_events_applied_total"), total);
  // A redelivered message has an offset west already applied: it is recognised by the shard's
  // stored offset before the conflict resolver sees it, so it is not counted as duplicate
  // events (that counter is for tasks published again at a new offset).
  EXPECT_EQ(MetricSum(metrics->body, "xdc_duplicate_events_dropped_total"), 0);
}

TEST_F(DeliveryFaultsTest, ReorderedDeliveryConvergesWithNothingLost) {
  fault::Arm(fault::kKafkaReorderDelivery);
  const std::map<std::string, int64_t> acknowledged = WriteAcknowledged("reorder");
  ASSERT_EQ(acknowledged.size(), static_cast<size_t>(kWorkflows));
  ASSERT_NO_FATAL_FAILURE(ExpectWestHoldsEveryAcknowledgedEvent(acknowledged));
}

// A fatal producer error (an idempotent producer that lost its guarantees, e.g. after a broker
// lost data it had acknowledged) fails every message of that producer for good. The publisher
// replaces the producer, counts it, and every write acknowledged before and after reaches the
// standby (before, east published nothing more until it restarted).
TEST_F(DeliveryFaultsTest, AFatalProducerErrorIsSurvivedByANewProducer) {
  std::map<std::string, int64_t> acknowledged = WriteAcknowledged("before");
  const std::string point = std::string(fault::kPublishProducerFatalPrefix) + "east";
  ASSERT_TRUE(fault::IsKnown(point));
  fault::Arm(point);
  // East's publisher disarms the point when it raises the error.
  ASSERT_TRUE(WaitUntil([&] { return !fault::Armed(point); }));
  const std::map<std::string, int64_t> after = WriteAcknowledged("after");
  acknowledged.insert(after.begin(), after.end());
  ASSERT_NO_FATAL_FAILURE(ExpectWestHoldsEveryAcknowledgedEvent(acknowledged));
  EXPECT_EQ(GetStatus(*east_client_).producer_recreations(), 1);
  EXPECT_EQ(GetStatus(*west_client_).producer_recreations(), 0);
  absl::StatusOr<HttpResult> metrics = east_client_->Request("GET", "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(MetricSum(metrics->body, "xdc_publish_producer_recreations_total"), 1);
}

// The case that lost data before the applier restored offset order (peer_applier.cc
// RestoreOffsetOrder): two workflows' only tasks on one shard, swapped. The first looked applied
// (its offset is below the second's), and with no later task of its workflow no gap ever showed.
TEST_F(DeliveryFaultsTest, ReorderedOnlyTaskOfAWorkflowIsNotLost) {
  constexpr int32_t kShards = 4;  // MakeConfig's default
  std::vector<std::string> same_shard;
  for (int i = 0; same_shard.size() < 2; ++i) {
    const std::string id = absl::StrCat("only-", i);
    if (ShardFor(namespace_id_, id, kShards) == 0) same_shard.push_back(id);
  }
  // Both appends wait in east's group committer, so they commit in one group, the publisher
  // reads both tasks at once and produces them together: one Kafka message set, which west
  // fetches, polls and (reordered) gets swapped in one batch.
  east_->store().HoldCommits();
  absl::Mutex mu;
  std::map<std::string, int64_t> acknowledged;
  std::vector<std::thread> writers;
  for (const std::string& id : same_shard) {
    writers.emplace_back([&, id] {
      HttpClient client(east_->http_address());
      AppendResponse started;
      AppendRequest start = Append(kNamespace, id, 1, {Event(WORKFLOW_EXECUTION_STARTED, id)});
      absl::Status s = client.Call("POST", "/v1/append", &start, started);
      EXPECT_TRUE(s.ok()) << s;
      absl::MutexLock lock(&mu);
      if (s.ok()) acknowledged[id] = started.next_event_id() - 1;
    });
  }
  const bool queued = WaitUntil([&] { return east_->store().QueuedCommits() >= 2; });
  fault::Arm(fault::kKafkaReorderDelivery);
  east_->store().ReleaseCommits();
  for (std::thread& writer : writers) writer.join();
  ASSERT_TRUE(queued);
  ASSERT_EQ(acknowledged.size(), 2u);
  ASSERT_NO_FATAL_FAILURE(ExpectWestHoldsEveryAcknowledgedEvent(acknowledged));
}

// --- /v1/fault-points in one process -----------------------------------------------------------

// A task Kafka refuses for good does not wedge its shard silently: here it is larger than the
// producer's message.max.bytes (as a topic's or broker's smaller limit would be). The shard's
// status names the error and since when, xdc_publish_consecutive_failures{shard} rises (the
// XdcPublishShardStuck alert fires on one shard), and the other shards keep publishing. Once the
// operator raises the limit and restarts xdcd (runbooks/outbox-backlog.md), the task goes out and
// the shard shows healthy again.
TEST(PublishStuckTest, ATaskKafkaRefusesIsShownOnItsShardUntilTheLimitIsRaised) {
  if (!RealKafkaBootstrap().empty()) GTEST_SKIP() << "runs on its own embedded Kafka";
  ScopedDir dir("east");
  DaemonConfig config = MakeConfig("east", dir.path(), "");
  (*config.mutable_kafka()->mutable_properties())["message.max.bytes"] = "4096";
  absl::StatusOr<std::unique_ptr<Daemon>> east = Daemon::Start(config);
  ASSERT_TRUE(east.ok()) << east.status();
  auto client = std::make_unique<HttpClient>((*east)->http_address());
  RegisterNamespaceRequest request;
  request.set_name("orders");
  request.add_clusters("east");
  request.set_active_cluster("east");
  NamespaceRecord record;
  ASSERT_TRUE(client->Call("POST", "/v1/namespaces", &request, record).ok());

  AppendRequest big =
      Append("orders", "big", 1, {Event(WORKFLOW_EXECUTION_STARTED, std::string(8000, 'x'))});
  AppendResponse appended;
  ASSERT_TRUE(client->Call("POST", "/v1/append", &big, appended).ok());  // durable here
  const int32_t stuck = ShardFor(record.id(), "big", config.shard_count());
  ShardStatus shard;
  ASSERT_TRUE(WaitUntil([&] {
    shard = GetStatus(*client).shards(stuck);
    return shard.publish_failures() > 0;
  }));
  EXPECT_THAT(shard.publish_error(), HasSubstr("size"));
  EXPECT_GT(shard.publish_failing_since_unix_micros(), 0);
  EXPECT_EQ(shard.published_task_id(), shard.outbox_next_task_id() - 1);
  absl::StatusOr<HttpResult> metrics = client->Request("GET", "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_GT(MetricSum(metrics->body, "xdc_publish_consecutive_failures",
                      {absl::StrCat("shard=\"", stuck, "\"")}),
            0);
  // A small task of another shard still goes out.
  std::string other_id;
  for (int i = 0; other_id.empty(); ++i) {
    const std::string id = absl::StrCat("small-", i);
    if (ShardFor(record.id(), id, config.shard_count()) != stuck) other_id = id;
  }
  AppendRequest small = Append("orders", other_id, 1, {Event(WORKFLOW_EXECUTION_STARTED, "s")});
  ASSERT_TRUE(client->Call("POST", "/v1/append", &small, appended).ok());
  const int32_t other = ShardFor(record.id(), other_id, config.shard_count());
  ASSERT_TRUE(WaitUntil([&] {
    const ShardStatus now = GetStatus(*client).shards(other);
    return now.published_task_id() == now.outbox_next_task_id();
  }));
  EXPECT_EQ(GetStatus(*client).shards(other).publish_failures(), 0);

  // The operator raises the limit (here: back to librdkafka's default) and restarts.
  client.reset();
  east->reset();
  config.mutable_kafka()->mutable_properties()->erase("message.max.bytes");
  east = Daemon::Start(config);
  ASSERT_TRUE(east.ok()) << east.status();
  client = std::make_unique<HttpClient>((*east)->http_address());
  ASSERT_TRUE(WaitUntil([&] {
    shard = GetStatus(*client).shards(stuck);
    return shard.published_task_id() == shard.outbox_next_task_id();
  })) << shard.DebugString();
  EXPECT_EQ(shard.publish_failures(), 0);
  EXPECT_EQ(shard.publish_error(), "");
}

class FaultPointApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Tunables enabled;
    enabled.fault_point_api = FaultPointApi::kEnabled;
    DaemonConfig config = MakeConfig("east", enabled_dir_.path(), "");
    config.mutable_api()->set_bearer_token(kToken);
    absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start(config, enabled);
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    enabled_ = *std::move(daemon);
    authed_ = std::make_unique<HttpClient>(enabled_->http_address());
    authed_->set_bearer_token(kToken);
    anonymous_ = std::make_unique<HttpClient>(enabled_->http_address());
  }

  absl::StatusOr<FaultPointsResponse> Post(const std::vector<std::string>& arm,
                                           const std::vector<std::string>& disarm) {
    FaultPointsRequest request;
    for (const std::string& name : arm) request.add_arm(name);
    for (const std::string& name : disarm) request.add_disarm(name);
    FaultPointsResponse response;
    if (absl::Status s = authed_->Call("POST", "/v1/fault-points", &request, response); !s.ok()) {
      return s;
    }
    return response;
  }

  std::vector<std::string> Listed() {
    FaultPointsResponse response;
    absl::Status s = anonymous_->Call("GET", "/v1/fault-points", nullptr, response);
    EXPECT_TRUE(s.ok()) << s;
    return {response.armed().begin(), response.armed().end()};
  }

  DisarmAllAtExit disarm_;
  ScopedDir enabled_dir_{"enabled"};
  std::unique_ptr<Daemon> enabled_;
  std::unique_ptr<HttpClient> authed_;
  std::unique_ptr<HttpClient> anonymous_;
};

TEST_F(FaultPointApiTest, DisabledUnlessEnabledAnswers404WithHowToEnable) {
  ScopedDir dir("disabled");
  absl::StatusOr<std::unique_ptr<Daemon>> daemon =
      Daemon::Start(MakeConfig("east", dir.path(), ""));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  HttpClient client((*daemon)->http_address());
  const std::string arm = JsonOf([] {
    FaultPointsRequest request;
    request.add_arm(std::string(fault::kStoreWriteError));
    return request;
  }());
  for (const auto& [method, body] :
       std::vector<std::pair<std::string, std::string>>{{"GET", ""}, {"POST", arm}}) {
    ApiError error = RequestError(client, method, "/v1/fault-points", body);
    EXPECT_EQ(error.http_status, 404) << method;
    EXPECT_EQ(error.error.code(), "NOT_FOUND");
    EXPECT_THAT(error.error.message(), HasSubstr("the fault-point API is disabled"));
    EXPECT_THAT(error.error.message(), HasSubstr("XDC_ENABLE_FAULT_POINTS=1"));
  }
  EXPECT_FALSE(fault::Armed(fault::kStoreWriteError));
  // The rest of that daemon's API is unaffected.
  EXPECT_TRUE(client.Request("GET", "/v1/status").ok());
}

TEST_F(FaultPointApiTest, ArmListAndDisarmRoundTrip) {
  EXPECT_THAT(Listed(), IsEmpty());
  absl::StatusOr<FaultPointsResponse> armed =
      Post({std::string(fault::kKafkaReorderDelivery), "apply.hold.west",
            std::string(fault::kKafkaDuplicateDelivery)},
           {});
  ASSERT_TRUE(armed.ok()) << armed.status();
  EXPECT_THAT(armed->armed(), ElementsAre("apply.hold.west", "kafka.duplicate_delivery",
                                          "kafka.reorder_delivery"));  // sorted
  EXPECT_TRUE(fault::Armed(fault::kKafkaDuplicateDelivery));           // the process's fault points
  EXPECT_TRUE(fault::Armed("apply.hold.west"));
  EXPECT_THAT(Listed(),
              ElementsAre("apply.hold.west", "kafka.duplicate_delivery", "kafka.reorder_delivery"));

  // Arm, then disarm: a name in both ends disarmed; disarming what is not armed is fine.
  absl::StatusOr<FaultPointsResponse> changed =
      Post({std::string(fault::kStoreWriteError)},
           {std::string(fault::kStoreWriteError), std::string(fault::kKafkaReorderDelivery),
            std::string(fault::kResendRefuse)});
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_THAT(changed->armed(), ElementsAre("apply.hold.west", "kafka.duplicate_delivery"));
  EXPECT_FALSE(fault::Armed(fault::kStoreWriteError));

  // An empty request only lists.
  absl::StatusOr<FaultPointsResponse> listed = Post({}, {});
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(listed->armed_size(), 2);

  absl::StatusOr<FaultPointsResponse> none =
      Post({}, {"apply.hold.west", std::string(fault::kKafkaDuplicateDelivery)});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_THAT(none->armed(), IsEmpty());
  EXPECT_THAT(fault::ArmedNames(), IsEmpty());
}

TEST_F(FaultPointApiTest, UnknownNamesAreRefusedAndNothingChanges) {
  for (const std::string& bad : {std::string("store.write_eror"), std::string("apply.hold."),
                                 std::string(""), std::string("kafka")}) {
    FaultPointsRequest request;
    request.add_arm(std::string(fault::kStoreWriteError));  // valid, but the request is refused
    request.add_arm(bad);
    ApiError error = RequestError(*authed_, "POST", "/v1/fault-points", JsonOf(request));
    EXPECT_EQ(error.http_status, 400) << bad;
    EXPECT_EQ(error.error.code(), "INVALID_ARGUMENT");
    EXPECT_THAT(error.error.message(), HasSubstr(absl::StrCat("unknown fault point '", bad, "'")));
    for (std::string_view known : fault::kKnownFaultPoints) {
      EXPECT_THAT(error.error.message(), HasSubstr(std::string(known)));
    }
    EXPECT_THAT(error.error.message(), HasSubstr("apply.hold.<peer>"));
    EXPECT_THAT(error.error.message(), HasSubstr("nothing was changed"));
    EXPECT_FALSE(fault::Armed(fault::kStoreWriteError));
  }
  // Disarming an unknown name is refused the same way.
  ApiError disarm =
      RequestError(*authed_, "POST", "/v1/fault-points", R"({"disarm":["publish.lose"]})");
  EXPECT_EQ(disarm.http_status, 400);
  EXPECT_THAT(disarm.error.message(), HasSubstr("'publish.lose'"));
  // A body that is not a FaultPointsRequest (an unknown field) changes nothing either.
  ApiError malformed = RequestError(*authed_, "POST", "/v1/fault-points",
                                    R"({"arm":["store.write_error"],"arms":["resend.refuse"]})");
  EXPECT_EQ(malformed.http_status, 400);
  EXPECT_THAT(malformed.error.message(), HasSubstr("FaultPointsRequest"));
  EXPECT_THAT(Listed(), IsEmpty());
}

TEST_F(FaultPointApiTest, PostNeedsTheBearerTokenButListingDoesNot) {
  const std::string arm = R"({"arm":["store.write_error"]})";
  absl::StatusOr<HttpResult> refused = anonymous_->Request("POST", "/v1/fault-points", arm);
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_EQ(refused->status, 401) << refused->body;
  EXPECT_THAT(refused->body, HasSubstr("needs the API bearer token"));
  HttpClient wrong(enabled_->http_address());
  wrong.set_bearer_token("not-the-token-0123456789abcdef");
  absl::StatusOr<HttpResult> wrong_token = wrong.Request("POST", "/v1/fault-points", arm);
  ASSERT_TRUE(wrong_token.ok()) << wrong_token.status();
  EXPECT_EQ(wrong_token->status, 401);
  EXPECT_FALSE(fault::Armed(fault::kStoreWriteError));
  EXPECT_THAT(Listed(), IsEmpty());  // GET is open, like every read

  ASSERT_TRUE(Post({std::string(fault::kStoreWriteError)}, {}).ok());
  EXPECT_THAT(Listed(), ElementsAre("store.write_error"));
}

// --- Real processes: xdcctl fault, store.write_error ------------------------------------------

// ProcessClustersTest with both xdcd started with XDC_ENABLE_FAULT_POINTS=1. The fixture spawns
// them with this process's environment; set before any thread of this test process exists.
class FaultProcessTest : public ProcessClustersTest {
 protected:
  FaultProcessTest() : ProcessClustersTest("orders") {}
  void SetUp() override {
    setenv("XDC_ENABLE_FAULT_POINTS", "1", /*overwrite=*/1);
    ProcessClustersTest::SetUp();
  }
  void TearDown() override {
    ProcessClustersTest::TearDown();
    unsetenv("XDC_ENABLE_FAULT_POINTS");
  }

  // Runs xdcctl against `cluster` (east by default).
  CommandResult Xdcctl(const std::string& args, Cluster* cluster = nullptr) {
    return RunCommand(absl::StrCat(BinPath("xdcctl"), " --address ",
                                   (cluster != nullptr ? cluster : east_.get())->endpoint.address(),
                                   " ", args));
  }

  // Writes workflows prefix-0.. on east; each one's acknowledged last event id.
  std::map<std::string, int64_t> WriteAcknowledged(const std::string& prefix, int count) {
    HttpClient client(east_->endpoint.address());
    std::map<std::string, int64_t> acknowledged;
    for (int i = 0; i < count; ++i) {
      const std::string id = absl::StrCat(prefix, "-", i);
      absl::StatusOr<int64_t> last = WriteWorkflow(client, namespace_name_, id, i % 2 == 0);
      EXPECT_TRUE(last.ok()) << last.status();
      if (last.ok()) acknowledged[id] = *last;
    }
    return acknowledged;
  }

  // Waits until west holds exactly east's workflows, digest for digest, and exactly the
  // `acknowledged` ones, each up to its acknowledged last event.
  void ExpectConvergedHolding(HttpClient& east, HttpClient& west,
                              const std::map<std::string, int64_t>& acknowledged) {
    std::string last;
    const bool converged = WaitUntil([&] {
      absl::StatusOr<ListDigestsResponse> on_east = Digests(east, namespace_name_);
      absl::StatusOr<ListDigestsResponse> on_west = Digests(west, namespace_name_);
      if (!on_east.ok() || !on_west.ok()) return false;
      std::map<std::string, int64_t> held;
      for (const WorkflowDigest& digest : on_west->workflows()) {
        held[digest.workflow_id()] = digest.next_event_id() - 1;
      }
      last = absl::StrCat("east ", on_east->workflows_size(), " workflows, west ",
                          on_west->workflows_size());
      return MessageDifferencer::Equals(*on_east, *on_west) && held == acknowledged;
    });
    EXPECT_TRUE(converged) << last;
  }
};

TEST_F(FaultProcessTest, XdcctlArmsListsAndDisarms) {
  CommandResult listed = Xdcctl("fault list");
  EXPECT_EQ(listed.exit_code, 0) << listed.output;
  EXPECT_THAT(listed.output, HasSubstr("no fault points armed"));

  CommandResult armed = Xdcctl("fault arm kafka.reorder_delivery apply.hold.west");
  EXPECT_EQ(armed.exit_code, 0) << armed.output;
  EXPECT_THAT(armed.output, HasSubstr("armed: apply.hold.west kafka.reorder_delivery"));
  HttpClient east(east_->endpoint.address());
  FaultPointsResponse over_http;
  ASSERT_OK(east.Call("GET", "/v1/fault-points", nullptr, over_http));
  EXPECT_THAT(over_http.armed(), ElementsAre("apply.hold.west", "kafka.reorder_delivery"));
  // Per process: west's are untouched.
  HttpClient west(west_->endpoint.address());
  ASSERT_OK(west.Call("GET", "/v1/fault-points", nullptr, over_http));
  EXPECT_THAT(over_http.armed(), IsEmpty());

  CommandResult unknown = Xdcctl("fault arm store.write_eror");
  EXPECT_EQ(unknown.exit_code, 1) << unknown.output;
  EXPECT_THAT(unknown.output, HasSubstr("INVALID_ARGUMENT"));
  EXPECT_THAT(unknown.output, HasSubstr("unknown fault point 'store.write_eror'"));
  EXPECT_THAT(unknown.output, HasSubstr("store.write_error"));

  CommandResult json = Xdcctl("--json fault list");
  EXPECT_EQ(json.exit_code, 0) << json.output;
  EXPECT_THAT(json.output, HasSubstr(R"("armed":["apply.hold.west","kafka.reorder_delivery"])"));

  CommandResult disarmed = Xdcctl("fault disarm kafka.reorder_delivery apply.hold.west");
  EXPECT_EQ(disarmed.exit_code, 0) << disarmed.output;
  EXPECT_THAT(disarmed.output, HasSubstr("no fault points armed"));

  CommandResult usage = Xdcctl("fault arm");
  EXPECT_EQ(usage.exit_code, 2) << usage.output;
  EXPECT_THAT(usage.output, HasSubstr("fault arm needs fault point names"));
  EXPECT_EQ(Xdcctl("fault explode").exit_code, 2);
}

TEST_F(FaultProcessTest, StoreWriteErrorRefusesAppendsUntilRestartAndLosesNothing) {
  std::map<std::string, int64_t> acknowledged = WriteAcknowledged("before", 8);
  ASSERT_EQ(acknowledged.size(), 8u);

  CommandResult armed = Xdcctl("fault arm store.write_error");
  ASSERT_EQ(armed.exit_code, 0) << armed.output;
  HttpClient east(east_->endpoint.address());
  const std::string start = JsonOf(
      Append(namespace_name_, "refused", 1, {Event(WORKFLOW_EXECUTION_STARTED, "never stored")}));
  ApiError refused = RequestError(east, "POST", "/v1/append", start);
  EXPECT_EQ(refused.http_status, 503) << refused.body;
  EXPECT_EQ(refused.error.code(), "UNAVAILABLE");
  EXPECT_THAT(refused.error.message(),
              HasSubstr("fault point store.write_error: the write failed (as on a full or broken "
                        "disk)"));
  EXPECT_THAT(refused.error.message(), HasSubstr("refuses further writes until xdcd restarts"));
  // A signal to an acknowledged (open) workflow is refused as well.
  SignalRequest signal;
  signal.set_namespace_(namespace_name_);
  signal.set_workflow_id("before-1");
  signal.set_signal_name("late");
  EXPECT_EQ(RequestError(east, "POST", "/v1/signal", JsonOf(signal)).http_status, 503);

  // Disarmed, the store stays latched: the outcome of the failed write was unknown.
  CommandResult disarmed = Xdcctl("fault disarm store.write_error");
  ASSERT_EQ(disarmed.exit_code, 0) << disarmed.output;
  ApiError still = RequestError(east, "POST", "/v1/append", start);
  EXPECT_EQ(still.http_status, 503);
  EXPECT_THAT(still.error.message(), HasSubstr("until xdcd restarts"));
  StatusResponse status;
  ASSERT_OK(east.Call("GET", "/v1/status", nullptr, status));
  EXPECT_THAT(status.store_write_error(), HasSubstr("store.write_error"));

  // The restart the message asks for.
  absl::StatusOr<chaos::ExitStatus> exit = east_->process->Terminate(kStopGrace);
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(exit->exited_cleanly()) << exit->ToString();
  ASSERT_NO_FATAL_FAILURE(StartCluster(*east_));
  ASSERT_NO_FATAL_FAILURE(WaitForStartupCheck(*east_));
  HttpClient restarted(east_->endpoint.address());
  ApiError absent =
      RequestError(restarted, "GET",
                   absl::StrCat("/v1/history?namespace=", namespace_name_, "&workflow_id=refused"));
  EXPECT_EQ(absent.http_status, 404) << absent.body;  // the refused append was not stored
  std::map<std::string, int64_t> after = WriteAcknowledged("after", 4);
  ASSERT_EQ(after.size(), 4u);
  acknowledged.insert(after.begin(), after.end());

  // West converges to east, and both hold exactly what was acknowledged.
  HttpClient west(west_->endpoint.address());
  ExpectConvergedHolding(restarted, west, acknowledged);
}

// What the chaos suite does: delivery faults armed on the standby's process alone, over HTTP,
// while the active takes writes.
TEST_F(FaultProcessTest, DeliveryFaultsArmedOnTheStandbyLoseNothing) {
  CommandResult armed =
      Xdcctl("fault arm kafka.duplicate_delivery kafka.reorder_delivery", west_.get());
  ASSERT_EQ(armed.exit_code, 0) << armed.output;
  EXPECT_THAT(armed.output, HasSubstr("armed: kafka.duplicate_delivery kafka.reorder_delivery"));
  const std::map<std::string, int64_t> acknowledged = WriteAcknowledged("chaos", 20);
  ASSERT_EQ(acknowledged.size(), 20u);

  HttpClient east(east_->endpoint.address());
  HttpClient west(west_->endpoint.address());
  ExpectConvergedHolding(east, west, acknowledged);
  int64_t total = 0;
  for (const auto& [id, last_event] : acknowledged) total += last_event;
  // The status view follows the store: it may show the last commit a moment after it is visible.
  StatusResponse status;
  ASSERT_TRUE(WaitUntil([&] {
    status = GetStatus(west);
    return CaughtUp(status) && EventsApplied(status) >= total;
  })) << status.DebugString();
  EXPECT_EQ(MissingTasks(status), 0);
  EXPECT_EQ(EventsApplied(status), total);  // each event applied once
  EXPECT_EQ(status.parked_tasks(), 0);
  EXPECT_EQ(
      Xdcctl("fault disarm kafka.duplicate_delivery kafka.reorder_delivery", west_.get()).exit_code,
      0);
}

// --- xdc-kafka-mock's control API and --topic-prefix -------------------------------------------

class KafkaMockControlTest : public ::testing::Test {
 protected:
  static constexpr char kPrefix[] = "fi";
  static constexpr int32_t kShards = 4;  // MakeConfig's default shard_count
  static constexpr absl::Duration kStartTimeout = absl::Seconds(30);
  // How long a flush must keep failing while the only broker is down.
  static constexpr int kStalledFlushMs = 1500;
  static constexpr int kFlushMs = 30000;
  static constexpr int kRttMs = 400;

  void SetUp() override {
    absl::StatusOr<std::unique_ptr<chaos::ChildProcess>> mock = chaos::ChildProcess::Spawn(
        {BinPath("xdc-kafka-mock"), "--cluster", "east", "--cluster", "west", "--shard-count",
         std::to_string(kShards), "--topic-prefix", kPrefix, "--control-address", "127.0.0.1:0"},
        dir_.path() + "/kafka.log");
    ASSERT_TRUE(mock.ok()) << mock.status();
    mock_ = *std::move(mock);
    absl::StatusOr<std::vector<std::string>> bootstrap =
        mock_->WaitForMatch("^bootstrap: (\\S+)$", kStartTimeout);
    ASSERT_TRUE(bootstrap.ok()) << bootstrap.status();
    bootstrap_ = (*bootstrap)[1];
    absl::StatusOr<std::vector<std::string>> control =
        mock_->WaitForMatch("^control: (\\S+)$", kStartTimeout);
    ASSERT_TRUE(control.ok()) << control.status();
    control_ = std::make_unique<HttpClient>((*control)[1]);
    topic_ = HistoryTopic("east", kPrefix);

    absl::StatusOr<std::unique_ptr<KafkaProducer>> producer =
        KafkaProducer::Create(bootstrap_, "fault-test", [this](uint64_t, const absl::Status& s) {
          if (s.ok()) ++delivered_;
        });
    ASSERT_TRUE(producer.ok()) << producer.status();
    producer_ = *std::move(producer);
    absl::StatusOr<std::unique_ptr<KafkaConsumer>> consumer =
        KafkaConsumer::Create(bootstrap_, "fault-test", 10);
    ASSERT_TRUE(consumer.ok()) << consumer.status();
    consumer_ = *std::move(consumer);
    ASSERT_TRUE(consumer_->Assign({{topic_, 0, 0}}).ok());
  }

  void TearDown() override {
    if (mock_ != nullptr && HasFailure()) std::fprintf(stderr, "%s", mock_->LogTail().c_str());
  }

  // POSTs `target` to the control API; the answer.
  HttpResult Control(const std::string& target, const std::string& method = "POST") {
    absl::StatusOr<HttpResult> result = control_->Request(method, target);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : HttpResult{};
  }

  // Produces `payload` to partition 0 and waits until a consumer read it.
  void RoundTrip(const std::string& payload) {
    ASSERT_TRUE(producer_->Produce(topic_, 0, payload, 0).ok());
    ASSERT_TRUE(producer_->Flush(kFlushMs).ok());
    bool seen = false;
    EXPECT_TRUE(WaitUntil([&] {
      for (const KafkaMessage& message : consumer_->Poll(100, 64)) {
        seen = seen || message.payload == payload;
      }
      return seen;
    })) << "never consumed "
        << payload;
  }

  ScopedDir dir_{"mock"};
  std::unique_ptr<chaos::ChildProcess> mock_;
  std::string bootstrap_;
  std::string topic_;
  std::unique_ptr<HttpClient> control_;
  int delivered_ = 0;  // successful deliveries; the producer calls back from Flush (this thread)
  std::unique_ptr<KafkaProducer> producer_;
  std::unique_ptr<KafkaConsumer> consumer_;
};

TEST_F(KafkaMockControlTest, BrokerDownStallsClientsAndUpRecovers) {
  ASSERT_NO_FATAL_FAILURE(RoundTrip("before"));
  HttpResult down = Control("/v1/mock/brokers/1/down");
  EXPECT_EQ(down.status, 200) << down.body;
  EXPECT_EQ(down.body, R"({"broker":1,"state":"down"})");

  const int delivered = delivered_;
  ASSERT_TRUE(producer_->Produce(topic_, 0, "while-down", 0).ok());
  EXPECT_FALSE(producer_->Flush(kStalledFlushMs).ok()) << "delivered to a broker that is down";
  EXPECT_EQ(delivered_, delivered);

  HttpResult up = Control("/v1/mock/brokers/1/up");
  EXPECT_EQ(up.status, 200) << up.body;
  EXPECT_EQ(up.body, R"({"broker":1,"state":"up"})");
  ASSERT_TRUE(producer_->Flush(kFlushMs).ok());
  EXPECT_EQ(delivered_, delivered + 1);
  bool seen = false;
  EXPECT_TRUE(WaitUntil([&] {
    for (const KafkaMessage& message : consumer_->Poll(100, 64)) {
      seen = seen || message.payload == "while-down";
    }
    return seen;
  }));
}

TEST_F(KafkaMockControlTest, RttDelaysEveryResponseUntilCleared) {
  ASSERT_NO_FATAL_FAILURE(RoundTrip("warm-up"));  // connections and metadata in place
  HttpResult rtt = Control(absl::StrCat("/v1/mock/brokers/1/rtt?ms=", kRttMs));
  EXPECT_EQ(rtt.status, 200) << rtt.body;
  EXPECT_EQ(rtt.body, absl::StrCat(R"({"broker":1,"rtt_ms":)", kRttMs, "}"));
  const auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(producer_->Produce(topic_, 0, "slow", 0).ok());
  ASSERT_TRUE(producer_->Flush(kFlushMs).ok());
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_GE(took, std::chrono::milliseconds(kRttMs - 50));  // the produce response waited

  HttpResult cleared = Control("/v1/mock/brokers/1/rtt?ms=0");
  EXPECT_EQ(cleared.status, 200) << cleared.body;
  EXPECT_EQ(cleared.body, R"({"broker":1,"rtt_ms":0})");
  ASSERT_NO_FATAL_FAILURE(RoundTrip("fast"));
}

TEST_F(KafkaMockControlTest, RequestErrorsAreRetriedThrough) {
  ASSERT_NO_FATAL_FAILURE(RoundTrip("warm-up"));
  for (const char* api : {"produce", "fetch", "metadata"}) {
    HttpResult pushed = Control(absl::StrCat("/v1/mock/request-errors?api=", api, "&count=3"));
    EXPECT_EQ(pushed.status, 200) << pushed.body;
    EXPECT_EQ(pushed.body, absl::StrCat(R"({"api":")", api, R"(","errors_pushed":3})"));
    // The errors are retriable: clients get through once they are used up.
    ASSERT_NO_FATAL_FAILURE(RoundTrip(absl::StrCat("after-", api, "-errors")));
  }
}

TEST_F(KafkaMockControlTest, BadInputIsRefusedWithAClearMessage) {
  const std::vector<std::tuple<std::string, int, std::string>> cases = {
      {"/v1/mock/brokers/0/down", 400, "no broker 0: the mock cluster's brokers are 1 to 1"},
      {"/v1/mock/brokers/2/up", 400, "no broker 2"},
      {"/v1/mock/brokers/one/down", 400, "'one' is not a broker id"},
      {"/v1/mock/brokers/1/rtt", 400, "query parameter 'ms' must be an integer"},
      {"/v1/mock/brokers/1/rtt?ms=fast", 400, "query parameter 'ms' must be an integer"},
      {"/v1/mock/brokers/1/rtt?ms=-1", 400, "round-trip time must be 0 to 60000 ms"},
      {"/v1/mock/request-errors?api=join&count=1", 400, "must be produce, fetch or metadata"},
      {"/v1/mock/request-errors?api=fetch", 400, "query parameter 'count' must be an integer"},
      {"/v1/mock/request-errors?api=fetch&count=0", 400, "must be 1 to 1000"},
      {"/v1/mock/request-errors?api=fetch&count=1001", 400, "must be 1 to 1000"},
      {"/v1/mock/brokers/1/sideways", 404, "no route POST /v1/mock/brokers/1/sideways"},
      {"/v1/other", 404, "no route"},
  };
  for (const auto& [target, status, message] : cases) {
    HttpResult answer = Control(target);
    EXPECT_EQ(answer.status, status) << target << ": " << answer.body;
    ErrorResponse error;
    ASSERT_TRUE(FromJson(answer.body, error).ok()) << answer.body;
    EXPECT_THAT(error.message(), HasSubstr(message)) << target;
  }
  HttpResult get = Control("/v1/mock/brokers/1/down", "GET");
  EXPECT_EQ(get.status, 405) << get.body;
  EXPECT_THAT(get.body, HasSubstr("use POST"));
  ASSERT_NO_FATAL_FAILURE(RoundTrip("still-serving"));  // nothing was changed
}

TEST_F(KafkaMockControlTest, TopicPrefixCreatesThePrefixedTopicsADaemonStartsOn) {
  // The topics exist with their partitions (the mock cannot create topics for clients, so
  // EnsureTopics succeeds only because they are there).
  ASSERT_TRUE(EnsureTopics(bootstrap_,
                           {{HistoryTopic("east", kPrefix), kShards},
                            {ControlTopic("east", kPrefix), 1},
                            {HistoryTopic("west", kPrefix), kShards},
                            {ControlTopic("west", kPrefix), 1}},
                           10000)
                  .ok());
  absl::Status too_few =
      EnsureTopics(bootstrap_, {{HistoryTopic("east", kPrefix), kShards + 1}}, 10000);
  EXPECT_EQ(too_few.code(), absl::StatusCode::kFailedPrecondition) << too_few;
  EXPECT_THAT(std::string(too_few.message()), HasSubstr("fi.east.history has 4 partitions"));

  ScopedDir data("east");
  DaemonConfig config = MakeConfig("east", data.path(), bootstrap_);
  config.mutable_kafka()->set_topic_prefix(kPrefix);
  absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start(config);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  HttpClient client((*daemon)->http_address());
  RegisterNamespaceRequest request;
  request.set_name("prefixed");
  request.add_clusters("east");
  request.add_clusters("west");
  request.set_active_cluster("east");
  NamespaceRecord record;
  ASSERT_OK(client.Call("POST", "/v1/namespaces", &request, record));
  absl::StatusOr<int64_t> written = WriteWorkflow(client, "prefixed", "wf", true);
  ASSERT_TRUE(written.ok()) << written.status();
  // East publishes its history to the prefixed topic.
  absl::StatusOr<std::unique_ptr<KafkaConsumer>> reader =
      KafkaConsumer::Create(bootstrap_, "fault-test-reader", 10);
  ASSERT_TRUE(reader.ok());
  std::vector<KafkaConsumer::Assignment> all;
  for (int32_t shard = 0; shard < kShards; ++shard)
    all.push_back({HistoryTopic("east", kPrefix), shard, 0});
  ASSERT_TRUE((*reader)->Assign(all).ok());
  size_t tasks = 0;
  EXPECT_TRUE(WaitUntil([&] {
    tasks += (*reader)->Poll(100, 64).size();
    return tasks >= 4;  // one task per append: start, two signals, the tail
  })) << tasks;
}

}  // namespace
}  // namespace xdc
