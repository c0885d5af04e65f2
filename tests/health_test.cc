// /healthz and /readyz: alive is not the same as ready. A cluster is ready when its store
// accepts writes, Kafka answers, no applier halted and no peer shard is further behind than
// readyz_max_lag_seconds; /readyz names every check, and 503 says which failed and why.
// (A Kafka that does not answer is shown on a real broker in tests/broker_test.cc.)
#include <string>

#include "chaos/fault_points.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "replicator/readiness.h"
#include "tests/two_clusters.h"

namespace xdc {
namespace {

using ::testing::HasSubstr;

StatusResponse HealthyStatus() {
  StatusResponse status;
  status.set_kafka_bootstrap("127.0.0.1:9092");
  ShardStatus* shard = status.add_shards();
  shard->set_shard(3);
  PeerShardStatus* peer = shard->add_peers();
  peer->set_peer("east");
  peer->set_lag_seconds(1.5);
  peer->set_lag_tasks(7);
  return status;
}

const ReadinessCheck& Check(const ReadinessResponse& response, const std::string& name) {
  for (const ReadinessCheck& check : response.checks()) {
    if (check.name() == name) return check;
  }
  ADD_FAILURE() << "no check " << name << " in " << response.ShortDebugString();
  static const ReadinessCheck kMissing;
  return kMissing;
}

TEST(ReadinessTest, ReadyWhenEveryCheckPasses) {
  const ReadinessResponse ready = EvaluateReadiness(HealthyStatus(), absl::OkStatus(), 30);
  EXPECT_TRUE(ready.ready());
  ASSERT_EQ(ready.checks_size(), 5);
  for (const ReadinessCheck& check : ready.checks()) {
    EXPECT_TRUE(check.ok()) << check.name();
    EXPECT_TRUE(check.detail().empty()) << check.name();
  }
}

TEST(ReadinessTest, EachFailedCheckSaysWhatIsWrong) {
  StatusResponse status = HealthyStatus();
  status.set_store_write_error("IO error: No space left on device");
  status.add_halted_appliers("applier for peer east halted: topic recreated");
  status.mutable_shards(0)->mutable_peers(0)->set_lag_seconds(31);
  status.mutable_startup_check()->set_state(StartupCheck::STATE_WAITING);
  status.mutable_startup_check()->add_waiting_for("east");
  const ReadinessResponse response =
      EvaluateReadiness(status, absl::UnavailableError("Local: Broker transport failure"), 30);
  EXPECT_FALSE(response.ready());
  EXPECT_THAT(Check(response, "store").detail(), HasSubstr("No space left on device"));
  EXPECT_THAT(Check(response, "kafka").detail(),
              HasSubstr("Kafka at 127.0.0.1:9092 did not answer"));
  EXPECT_THAT(Check(response, "appliers").detail(), HasSubstr("topic recreated"));
  EXPECT_THAT(Check(response, "caught_up").detail(),
              HasSubstr("shard 3 is 31.0 s (7 tasks) behind peer east"));
  EXPECT_THAT(Check(response, "startup_check").detail(),
              HasSubstr("writes wait for the startup check: east have not answered"));
  for (const ReadinessCheck& check : response.checks()) EXPECT_FALSE(check.ok()) << check.name();
}

// West must stay within half a second of east to be ready.
class HealthTest : public TwoClustersTest {
 protected:
  HealthTest() { west_tunables_.readyz_max_lag_seconds = 0.5; }
  void TearDown() override {
    fault::Disarm(kHoldEast);
    TwoClustersTest::TearDown();
  }

  // GET /readyz: the HTTP status and the decoded body.
  static std::pair<int, ReadinessResponse> Readyz(HttpClient& client) {
    ReadinessResponse response;
    absl::StatusOr<HttpResult> result = client.Request("GET", "/readyz");
    EXPECT_TRUE(result.ok()) << result.status();
    if (!result.ok()) return {0, response};
    EXPECT_TRUE(FromJson(result->body, response).ok()) << result->body;
    return {result->status, response};
  }

  static constexpr char kHoldEast[] = "apply.hold.east";
};

TEST_F(HealthTest, AStandbyFallingBehindIsAliveButNotReadyUntilItCatchesUp) {
  for (HttpClient* client : {east_client_.get(), west_client_.get()}) {
    absl::StatusOr<HttpResult> healthz = client->Request("GET", "/healthz");
    ASSERT_TRUE(healthz.ok());
    EXPECT_EQ(healthz->status, 200);
    auto [code, readiness] = Readyz(*client);
    EXPECT_EQ(code, 200) << readiness.ShortDebugString();
    EXPECT_TRUE(readiness.ready());
  }

  fault::Arm(kHoldEast);  // west applies nothing of east's
  ASSERT_GT(WriteWorkflows(east_->http_address(), kNamespace, "behind", 4), 0);
  std::pair<int, ReadinessResponse> west;
  ASSERT_TRUE(WaitUntil([&] {
    west = Readyz(*west_client_);
    return west.first == 503;
  })) << "west stayed ready while it applied nothing";
  EXPECT_FALSE(west.second.ready());
  EXPECT_FALSE(Check(west.second, "caught_up").ok());
  EXPECT_THAT(Check(west.second, "caught_up").detail(), HasSubstr("behind peer east"));
  EXPECT_TRUE(Check(west.second, "kafka").ok());
  absl::StatusOr<HttpResult> healthz = west_client_->Request("GET", "/healthz");
  ASSERT_TRUE(healthz.ok());
  EXPECT_EQ(healthz->status, 200);  // alive all along

  fault::Disarm(kHoldEast);
  ASSERT_TRUE(WaitUntil([&] { return Readyz(*west_client_).first == 200; }))
      << "west did not become ready after catching up";
  WaitForConvergence();
}

}  // namespace
}  // namespace xdc
