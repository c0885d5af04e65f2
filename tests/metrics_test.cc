// What an operator reads on /metrics while replication runs: the standby's lag (in tasks and in
// seconds, per peer and shard) rises while it falls behind and returns to zero once it catches
// up; every API request is counted and timed by route template, method and status code.
#include "replicator/metrics.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "chaos/fault_points.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "replicator/kafka_client.h"
#include "replicator/kafka_statistics.h"
#include "tests/two_clusters.h"

namespace xdc {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class MetricsTest : public TwoClustersTest {
 protected:
  MetricsTest() {
    // librdkafka statistics often enough for a test to see them.
    east_tunables_.kafka_statistics_interval_ms = kStatisticsIntervalMs;
    west_tunables_.kafka_statistics_interval_ms = kStatisticsIntervalMs;
  }
  static constexpr int kStatisticsIntervalMs = 100;

  void TearDown() override {
    fault::Disarm(kHoldEast);
    TwoClustersTest::TearDown();
  }

  static std::string Scrape(HttpClient& client) {
    absl::StatusOr<HttpResult> metrics = client.Request("GET", "/metrics");
    EXPECT_TRUE(metrics.ok()) << metrics.status();
    if (!metrics.ok()) return "";
    EXPECT_EQ(metrics->status, 200);
    return metrics->body;
  }

  static constexpr char kHoldEast[] = "apply.hold.east";
};

TEST_F(MetricsTest, TheStandbysScrapedLagRisesWhileItFallsBehindAndReturnsToZero) {
  ASSERT_GT(WriteWorkflows(east_->http_address(), kNamespace, "before", 5), 0);
  WaitForConvergence();
  const std::vector<std::string> from_east = {R"(peer="east")"};
  // The gauges follow the store: they may show the last commit a moment after it is visible.
  EXPECT_TRUE(WaitUntil([&] {
    return MetricSum(Scrape(*west_client_), "xdc_replication_lag_tasks", from_east) == 0;
  }));

  // West stops applying east's stream (it still fetches, so it sees how far behind it is).
  fault::Arm(kHoldEast);
  ASSERT_GT(WriteWorkflows(east_->http_address(), kNamespace, "held", 10), 0);
  double lag_tasks = 0;
  ASSERT_TRUE(WaitUntil([&] {
    lag_tasks = MetricSum(Scrape(*west_client_), "xdc_replication_lag_tasks", from_east);
    return lag_tasks > 0;
  })) << "west's lag stayed 0 while it applied nothing";
  // More writes: the lag moves up with them, and its age in seconds is positive.
  ASSERT_GT(WriteWorkflows(east_->http_address(), kNamespace, "more", 10), 0);
  ASSERT_TRUE(WaitUntil([&] {
    const std::string text = Scrape(*west_client_);
    return MetricSum(text, "xdc_replication_lag_tasks", from_east) > lag_tasks &&
           MetricSum(text, "xdc_replication_lag_seconds", from_east) > 0;
  })) << "west's lag did not grow with east's writes";

  fault::Disarm(kHoldEast);
  ASSERT_TRUE(WaitUntil([&] {
    const std::string text = Scrape(*west_client_);
    return MetricSum(text, "xdc_replication_lag_tasks", from_east) == 0 &&
           MetricSum(text, "xdc_replication_lag_seconds", from_east) == 0;
  })) << "west's lag did not return to 0 after the hold";
  WaitForConvergence();
}

TEST_F(MetricsTest, ApiRequestsAreCountedAndTimedByRouteMethodAndCode) {
  constexpr int kWorkflows = 3;
  ASSERT_GT(WriteWorkflows(east_->http_address(), kNamespace, "api", kWorkflows), 0);
  NamespaceRecord record;
  ASSERT_TRUE(
      east_client_->Call("GET", absl::StrCat("/v1/namespaces/", kNamespace), nullptr, record).ok());
  ASSERT_EQ(RequestError(*east_client_, "GET", "/v1/no-such-route").http_status, 404);
  ASSERT_EQ(RequestError(*east_client_, "GET", "/v1/append").http_status, 405);

  const std::string text = Scrape(*east_client_);
  const std::string requests = "xdc_api_requests_total";
  EXPECT_GE(
      MetricSum(text, requests, {R"(route="/v1/append")", R"(method="POST")", R"(code="200")"}),
      kWorkflows);  // at least one append starts each workflow
  EXPECT_EQ(MetricSum(text, requests,
                      {R"(route="/v1/namespaces/{name}")", R"(method="GET")", R"(code="200")"}),
            1);
  EXPECT_EQ(MetricSum(text, requests, {R"(route="unmatched")", R"(code="404")"}), 1);
  EXPECT_EQ(
      MetricSum(text, requests, {R"(route="/v1/append")", R"(method="GET")", R"(code="405")"}), 1);
  // Every counted request was timed.
  EXPECT_EQ(MetricSum(text, "xdc_api_request_duration_seconds_count",
                      {R"(route="/v1/append")", R"(method="POST")"}),
            MetricSum(text, requests, {R"(route="/v1/append")", R"(method="POST")"}));
  EXPECT_GT(MetricSum(text, "xdc_api_request_duration_seconds_sum", {R"(route="/v1/append")"}), 0);
  // Labels are route templates: a namespace name never becomes a label value.
  EXPECT_THAT(text, Not(HasSubstr(absl::StrCat("route=\"/v1/namespaces/", kNamespace))));
}

TEST_F(MetricsTest, TheStoresSizeAndWriteStallsAreExported) {
  const std::string before = Scrape(*east_client_);
  ASSERT_GT(WriteWorkflows(east_->http_address(), kNamespace, "size", 20), 0);
  const std::string after = Scrape(*east_client_);
  // What was written is in RocksDB's memtables (or already flushed to SST files).
  EXPECT_GT(MetricSum(after, "xdc_store_bytes"), MetricSum(before, "xdc_store_bytes"));
  EXPECT_GT(MetricSum(after, "xdc_store_bytes", {R"(kind="memtable")"}), 0);
  EXPECT_EQ(MetricSum(after, "xdc_store_write_stalled"), 0);  // a small store never stalls
  EXPECT_THAT(after, HasSubstr("xdc_store_pending_compaction_bytes{"));
}

// Producer and consumer health, from librdkafka's statistics: both clusters' clients are
// connected to the broker, and their round-trip times are known.
TEST_F(MetricsTest, KafkaClientHealthComesFromLibrdkafkasStatistics) {
  ASSERT_GT(WriteWorkflows(east_->http_address(), kNamespace, "kafka", 3), 0);
  ASSERT_TRUE(WaitUntil([&] {
    const std::string east = Scrape(*east_client_);
    const std::string west = Scrape(*west_client_);
    return MetricSum(east, "xdc_kafka_broker_up", {R"(client="producer")"}) >= 1 &&
           MetricSum(west, "xdc_kafka_broker_up", {R"(client="consumer")", R"(peer="east")"}) >=
               1 &&
           MetricSum(east, "xdc_kafka_broker_rtt_seconds",
                     {R"(client="producer")", R"(quantile="0.99")"}) > 0;
  })) << Scrape(*east_client_);
  const std::string east = Scrape(*east_client_);
  EXPECT_THAT(east, HasSubstr("xdc_kafka_producer_queue_messages{"));
  EXPECT_EQ(MetricSum(east, "xdc_kafka_statistics_unparsable_total"), 0);
}

// A broker that goes away shows on the client's metrics: not up, and its errors counted.
TEST(KafkaStatisticsTest, ABrokerThatGoesDownShowsAsDownWithItsErrorsCounted) {
  absl::StatusOr<std::unique_ptr<EmbeddedKafka>> kafka = EmbeddedKafka::Start(1);
  ASSERT_TRUE(kafka.ok()) << kafka.status();
  Metrics metrics("solo");
  absl::StatusOr<std::unique_ptr<KafkaProducer>> producer = KafkaProducer::Create(
      (*kafka)->bootstrap(), "stats-test", [](uint64_t, const absl::Status&) {}, {},
      KafkaStatisticsSink{/*interval_ms=*/100, metrics.publisher_probe().kafka_statistics});
  ASSERT_TRUE(producer.ok()) << producer.status();
  ASSERT_TRUE((*kafka)->CreateTopic("t", 1).ok());
  ASSERT_TRUE((*producer)->Produce("t", 0, "hello", 1).ok());
  ASSERT_TRUE((*producer)->Flush(10000).ok());
  const std::vector<std::string> producer_labels = {R"(client="producer")"};
  ASSERT_TRUE(WaitUntil([&] {
    (*producer)->Poll(10);
    return MetricSum(metrics.Serialize(), "xdc_kafka_broker_up", producer_labels) == 1;
  })) << metrics.Serialize();

  ASSERT_TRUE((*kafka)->SetBrokerDown(1).ok());
  ASSERT_TRUE(WaitUntil([&] {
    (*producer)->Poll(10);
    const std::string text = metrics.Serialize();
    return MetricSum(text, "xdc_kafka_broker_up", producer_labels) == 0 &&
           MetricSum(text, "xdc_kafka_broker_errors_total", {R"(kind="disconnect")"}) >= 1;
  })) << metrics.Serialize();

  ASSERT_TRUE((*kafka)->SetBrokerUp(1).ok());
  ASSERT_TRUE(WaitUntil([&] {
    (*producer)->Poll(10);
    return MetricSum(metrics.Serialize(), "xdc_kafka_broker_up", producer_labels) == 1;
  })) << metrics.Serialize();
}

TEST(KafkaStatisticsTest, StatisticsThatAreNotTheExpectedJsonAreCountedAndChangeNothing) {
  EXPECT_EQ(ParseKafkaStatistics("not json").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseKafkaStatistics(R"({"brokers": 3})").status().code(),
            absl::StatusCode::kInvalidArgument);
  // Bootstrap entries (nodeid -1) are not brokers of the cluster yet.
  absl::StatusOr<RdKafkaStatistics> parsed = ParseKafkaStatistics(
      R"({"type": "producer", "msg_cnt": 2, "unknown": {"x": [1]}, "brokers": {)"
      R"("b:9092/bootstrap": {"nodeid": -1, "state": "INIT"},)"
      R"("b:9092/1": {"nodeid": 1, "state": "UP", "rtt": {"p99": 1500, "cnt": 3}}}})");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->msg_cnt(), 2);
  ASSERT_EQ(parsed->brokers_size(), 1);
  EXPECT_EQ(parsed->brokers().at("b:9092/1").rtt().p99(), 1500);

  Metrics metrics("solo");
  metrics.publisher_probe().kafka_statistics("{");
  EXPECT_EQ(MetricSum(metrics.Serialize(), "xdc_kafka_statistics_unparsable_total"), 1);
  EXPECT_THAT(metrics.Serialize(), Not(HasSubstr("xdc_kafka_broker_up{")));
}

}  // namespace
}  // namespace xdc
