// KafkaProducer::LearnTopics, which a starting publisher calls so that the first task after a
// start (or a failover) goes out at once rather than after librdkafka's 1 s topic scan. What it
// buys is a latency, shown by xdc-bench's cold_start figure (docs/benchmarks.md); these tests
// check its contract on the embedded Kafka: known topics are learnt and then produced to, and a
// cluster that does not answer is UNAVAILABLE with the topics named, without harm to producing.
// (A topic the cluster reports an error for, e.g. not authorized, is UNAVAILABLE too; the mock
// creates every topic asked for, so that branch is not reached here.)
#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "replicator/kafka_client.h"

namespace xdc {
namespace {

using ::testing::HasSubstr;

constexpr int kLearnTimeoutMs = 10000;
constexpr int kUnansweredTimeoutMs = 500;
constexpr int kFlushTimeoutMs = 10000;
constexpr int kBroker = 1;

class KafkaProducerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<EmbeddedKafka>> kafka = EmbeddedKafka::Start(1);
    ASSERT_TRUE(kafka.ok()) << kafka.status();
    kafka_ = *std::move(kafka);
    ASSERT_TRUE(kafka_->CreateTopic("learn.history", 4).ok());
    ASSERT_TRUE(kafka_->CreateTopic("learn.control", 1).ok());
    absl::StatusOr<std::unique_ptr<KafkaProducer>> producer = KafkaProducer::Create(
        kafka_->bootstrap(), "learn-test", [this](uint64_t, const absl::Status& status) {
          if (status.ok()) ++delivered_;
        });
    ASSERT_TRUE(producer.ok()) << producer.status();
    producer_ = *std::move(producer);
  }

  std::unique_ptr<EmbeddedKafka> kafka_;
  std::unique_ptr<KafkaProducer> producer_;
  int delivered_ = 0;  // delivery reports come from Flush, on this thread
};

TEST_F(KafkaProducerTest, LearnsItsTopicsAndThenProducesToEveryPartition) {
  ASSERT_TRUE(producer_->LearnTopics({"learn.history", "learn.control"}, kLearnTimeoutMs).ok());
  for (int32_t partition = 0; partition < 4; ++partition) {
    ASSERT_TRUE(producer_->Produce("learn.history", partition, "task", partition).ok());
  }
  ASSERT_TRUE(producer_->Produce("learn.control", 0, "record", 4).ok());
  ASSERT_TRUE(producer_->Flush(kFlushTimeoutMs).ok());
  EXPECT_EQ(delivered_, 5);
}

TEST_F(KafkaProducerTest, AClusterThatDoesNotAnswerIsUnavailableAndProducingStillWorksAfter) {
  ASSERT_TRUE(kafka_->SetBrokerDown(kBroker).ok());
  const absl::Status status = producer_->LearnTopics({"learn.history"}, kUnansweredTimeoutMs);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_THAT(status.message(), HasSubstr("learn.history"));
  ASSERT_TRUE(producer_->Produce("learn.history", 0, "task", 0).ok());
  ASSERT_TRUE(kafka_->SetBrokerUp(kBroker).ok());
  ASSERT_TRUE(producer_->Flush(kFlushTimeoutMs).ok());
  EXPECT_EQ(delivered_, 1);
}

}  // namespace
}  // namespace xdc
