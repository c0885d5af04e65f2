// What an operator reads on /metrics while replication runs: the standby's lag (in tasks and in
// seconds, per peer and shard) rises while it falls behind and returns to zero once it catches
// up; every API request is counted and timed by route template, method and status code.
#include <string>

#include "absl/strings/str_cat.h"
#include "chaos/fault_points.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/two_clusters.h"

namespace xdc {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class MetricsTest : public TwoClustersTest {
 protected:
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
  EXPECT_EQ(MetricSum(Scrape(*west_client_), "xdc_replication_lag_tasks", from_east), 0);

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

}  // namespace
}  // namespace xdc
