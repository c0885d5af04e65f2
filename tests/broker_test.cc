// chaos::Broker on a real Apache Kafka broker (scripts/kafka.sh install must have run; the test
// says so when it has not): it starts in KRaft mode, takes topics through the Admin API, keeps
// acknowledged messages across a SIGKILL and restart on the same port, and a paused broker
// delivers nothing until it is resumed.
#include "chaos/broker.h"

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "replicator/kafka_client.h"
#include "tests/two_clusters.h"

namespace xdc::chaos {
namespace {

using ::testing::HasSubstr;

constexpr int kTopicTimeoutMs = 30000;
constexpr int kFlushTimeoutMs = 30000;
constexpr int kPollTimeoutMs = 200;
constexpr size_t kMaxPoll = 1000;

class RealBrokerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BrokerOptions options;
    options.kind = BrokerKind::kReal;
    options.work_dir = dir_.path() + "/broker";
    options.heap_mb = 256;
    absl::StatusOr<std::unique_ptr<Broker>> broker = Broker::Start(options);
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = *std::move(broker);
  }

  // Produces `count` messages to partition 0 of `topic` and waits until Kafka acknowledged each.
  void ProduceAcknowledged(const std::string& topic, int count) {
    int delivered = 0;
    absl::Status failure;
    absl::StatusOr<std::unique_ptr<KafkaProducer>> producer = KafkaProducer::Create(
        broker_->bootstrap(), "broker-test", [&](uint64_t, const absl::Status& status) {
          if (status.ok()) {
            ++delivered;
          } else if (failure.ok()) {
            failure = status;
          }
        });
    ASSERT_TRUE(producer.ok()) << producer.status();
    for (int i = 0; i < count; ++i) {
      ASSERT_TRUE((*producer)->Produce(topic, 0, absl::StrCat("message-", i), i).ok());
    }
    ASSERT_TRUE((*producer)->Flush(kFlushTimeoutMs).ok());
    ASSERT_TRUE(failure.ok()) << failure;
    ASSERT_EQ(delivered, count);
  }

  // Every message of partition 0 of `topic`, read from offset 0 until `expected` arrived or the
  // deadline passed.
  std::vector<std::string> ReadAll(const std::string& topic, size_t expected) {
    std::vector<std::string> payloads;
    absl::StatusOr<std::unique_ptr<KafkaConsumer>> consumer =
        KafkaConsumer::Create(broker_->bootstrap(), "broker-test", /*fetch_wait_max_ms=*/10);
    EXPECT_TRUE(consumer.ok()) << consumer.status();
    if (!consumer.ok()) return payloads;
    EXPECT_TRUE((*consumer)->Assign({{topic, 0, 0}}).ok());
    WaitUntil([&] {
      for (KafkaMessage& message : (*consumer)->Poll(kPollTimeoutMs, kMaxPoll)) {
        payloads.push_back(std::move(message.payload));
      }
      return payloads.size() >= expected;
    });
    return payloads;
  }

  ScopedDir dir_{"broker"};
  std::unique_ptr<Broker> broker_;
};

TEST_F(RealBrokerTest, KeepsAcknowledgedMessagesAcrossASigkillAndRestart) {
  const std::string topic = "broker-test.crash";
  ASSERT_TRUE(EnsureTopics(broker_->bootstrap(), {{topic, 1}}, kTopicTimeoutMs).ok());
  constexpr int kMessages = 200;
  ASSERT_NO_FATAL_FAILURE(ProduceAcknowledged(topic, kMessages));
  const std::string bootstrap = broker_->bootstrap();

  ASSERT_TRUE(broker_->Crash().ok());
  EXPECT_FALSE(broker_->running());
  ASSERT_TRUE(broker_->Restart().ok()) << broker_->LogTail();
  EXPECT_EQ(broker_->bootstrap(), bootstrap);  // clients reconnect to the same address

  const std::vector<std::string> payloads = ReadAll(topic, kMessages);
  ASSERT_EQ(payloads.size(), static_cast<size_t>(kMessages));
  for (int i = 0; i < kMessages; ++i) EXPECT_EQ(payloads[i], absl::StrCat("message-", i));
  // And it still takes writes.
  ASSERT_NO_FATAL_FAILURE(ProduceAcknowledged(topic, 1));
}

TEST_F(RealBrokerTest, APausedBrokerAcknowledgesNothingUntilResumed) {
  const std::string topic = "broker-test.pause";
  ASSERT_TRUE(EnsureTopics(broker_->bootstrap(), {{topic, 1}}, kTopicTimeoutMs).ok());
  int delivered = 0;
  absl::StatusOr<std::unique_ptr<KafkaProducer>> producer = KafkaProducer::Create(
      broker_->bootstrap(), "broker-test", [&](uint64_t, const absl::Status& status) {
        if (status.ok()) ++delivered;
      });
  ASSERT_TRUE(producer.ok()) << producer.status();
  ASSERT_TRUE(broker_->Pause().ok());
  ASSERT_TRUE((*producer)->Produce(topic, 0, "while paused", 1).ok());
  // A second's worth of polls: nothing can be acknowledged by a stopped broker.
  for (int i = 0; i < 5; ++i) (*producer)->Poll(kPollTimeoutMs);
  EXPECT_EQ(delivered, 0);
  ASSERT_TRUE(broker_->Resume().ok());
  ASSERT_TRUE((*producer)->Flush(kFlushTimeoutMs).ok());
  EXPECT_EQ(delivered, 1);
}

// /readyz asks Kafka: a daemon whose broker stops answering is not ready, and says so.
TEST_F(RealBrokerTest, ADaemonIsNotReadyWhileItsBrokerDoesNotAnswer) {
  ScopedDir data("readyz");
  DaemonConfig config = MakeConfig("east", data.path(), broker_->bootstrap());
  config.mutable_kafka()->set_topic_prefix("readyz");
  absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start(config);
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  HttpClient client((*daemon)->http_address());
  auto readyz = [&] {
    absl::StatusOr<HttpResult> result = client.Request("GET", "/readyz");
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : HttpResult{};
  };
  EXPECT_EQ(readyz().status, 200) << readyz().body;

  ASSERT_TRUE(broker_->Pause().ok());
  HttpResult paused;
  ASSERT_TRUE(WaitUntil([&] {
    paused = readyz();
    return paused.status == 503;
  })) << "still ready with the broker stopped: "
      << paused.body;
  EXPECT_THAT(paused.body,
              HasSubstr(absl::StrCat("Kafka at ", broker_->bootstrap(), " did not answer")));
  ASSERT_TRUE(broker_->Resume().ok());
  EXPECT_TRUE(WaitUntil([&] { return readyz().status == 200; }));
}

TEST(BrokerTest, AMissingInstallationSaysHowToInstall) {
  const char* saved = std::getenv("XDC_KAFKA_LIBS");
  const std::string restore = saved == nullptr ? "" : saved;
  ASSERT_EQ(setenv("XDC_KAFKA_LIBS", "/nonexistent/kafka/libs", 1), 0);
  absl::StatusOr<std::string> libs = KafkaLibsDir();
  BrokerOptions options;
  options.kind = BrokerKind::kReal;
  options.work_dir = ::testing::TempDir() + "/broker-missing";
  absl::StatusOr<std::unique_ptr<Broker>> broker = Broker::Start(options);
  if (saved == nullptr) {
    unsetenv("XDC_KAFKA_LIBS");
  } else {
    setenv("XDC_KAFKA_LIBS", restore.c_str(), 1);
  }
  ASSERT_FALSE(libs.ok());
  EXPECT_EQ(libs.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(libs.status().message(), HasSubstr("scripts/kafka.sh install"));
  ASSERT_FALSE(broker.ok());
  EXPECT_THAT(broker.status().message(), HasSubstr("scripts/kafka.sh install"));
}

TEST(BrokerTest, ParsesBrokerKinds) {
  EXPECT_EQ(*ParseBrokerKind("real"), BrokerKind::kReal);
  EXPECT_EQ(*ParseBrokerKind("mock"), BrokerKind::kMock);
  absl::StatusOr<BrokerKind> bad = ParseBrokerKind("redpanda");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("'real'"));
}

}  // namespace
}  // namespace xdc::chaos
