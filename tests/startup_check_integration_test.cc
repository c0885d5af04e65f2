// The startup check on running clusters (replicator/startup_checker.h): a restarted active cluster
// writes only once its peers confirmed that its store holds its latest state, an operator can lift
// the wait, and a store restored from a backup moves to a fresh failover version and task ids, so
// that what it writes next reaches its peers instead of being dropped as a duplicate of what its
// lost state wrote.
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "protocol/xdc.pb.h"
#include "replicator/http_client.h"
#include "tests/armed_fault.h"
#include "tests/two_clusters.h"

namespace xdc {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

class StartupCheckTest : public TwoClustersTest {
 protected:
  static constexpr char kWestNamespace[] = "payments";

  // Registers kWestNamespace active on west, known to east.
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(TwoClustersTest::SetUp());
    RegisterNamespaceRequest request;
    request.set_name(kWestNamespace);
    request.add_clusters("east");
    request.add_clusters("west");
    request.set_active_cluster("west");
    NamespaceRecord record;
    ASSERT_TRUE(west_client_->Call("POST", "/v1/namespaces", &request, record).ok());
    ASSERT_TRUE(WaitUntil([&] {
      NamespaceRecord on_east;
      return east_client_
          ->Call("GET", absl::StrCat("/v1/namespaces/", kWestNamespace), nullptr, on_east)
          .ok();
    }));
  }

  void RestartWest() {
    StopWest();
    ASSERT_NO_FATAL_FAILURE(StartWest());
  }

  StartupCheck WestCheck() { return GetStatus(*west_client_).startup_check(); }

  bool WestCheckIs(StartupCheck::State state) { return WestCheck().state() == state; }

  absl::StatusOr<AppendResponse> AppendOnWest(const std::string& workflow_id, int64_t expected,
                                              const std::string& attributes,
                                              const std::string& run_id = "") {
    AppendRequest append = Append(
        kWestNamespace, workflow_id, expected,
        {Event(expected == 1 ? WORKFLOW_EXECUTION_STARTED : TIMER_STARTED, attributes)}, run_id);
    AppendResponse response;
    if (absl::Status s = west_client_->Call("POST", "/v1/append", &append, response); !s.ok()) {
      return s;
    }
    return response;
  }

  // East's current history of `workflow_id` once it has `next_event_id`.
  GetHistoryResponse EastHistoryWhen(const std::string& workflow_id, int64_t next_event_id) {
    GetHistoryResponse history;
    EXPECT_TRUE(WaitUntil([&] {
      return east_client_
                 ->Call("GET",
                        absl::StrCat("/v1/history?namespace=", kWestNamespace,
                                     "&workflow_id=", workflow_id),
                        nullptr, history)
                 .ok() &&
             history.next_event_id() == next_event_id;
    })) << history.DebugString();
    return history;
  }
};

TEST_F(StartupCheckTest, ARestartedActiveClusterWritesOnceItsPeerConfirmedItsStore) {
  ASSERT_TRUE(AppendOnWest("w-1", 1, "start").ok());
  {
    // East applies nothing of west's streams: west's probe goes unanswered.
    ArmedFault hold(std::string(fault::kApplyHoldPrefix) + "west");
    ASSERT_NO_FATAL_FAILURE(RestartWest());
    const StartupCheck waiting = WestCheck();
    EXPECT_EQ(waiting.state(), StartupCheck::STATE_WAITING);
    EXPECT_THAT(waiting.waiting_for(), ::testing::ElementsAre("east"));
    EXPECT_EQ(waiting.incarnation(), 2);
    AppendRequest refused_append =
        Append(kWestNamespace, "w-2", 1, {Event(WORKFLOW_EXECUTION_STARTED)});
    ApiError refused = RequestError(*west_client_, "POST", "/v1/append", JsonOf(refused_append));
    EXPECT_EQ(refused.http_status, 503) << refused.body;
    EXPECT_TRUE(refused.error.retryable());
    EXPECT_THAT(refused.error.message(),
                AllOf(HasSubstr("waiting for east to answer its startup probe"),
                      HasSubstr("startup-check")));
    // The namespace active on east is not held back.
    AppendRequest on_east = Append(kNamespace, "e-1", 1, {Event(WORKFLOW_EXECUTION_STARTED)});
    AppendResponse accepted;
    EXPECT_TRUE(east_client_->Call("POST", "/v1/append", &on_east, accepted).ok());
    absl::StatusOr<HttpResult> ready = west_client_->Request("GET", "/readyz", "");
    ASSERT_TRUE(ready.ok()) << ready.status();
    EXPECT_EQ(ready->status, 503);
    EXPECT_THAT(ready->body, HasSubstr("startup_check"));
  }
  ASSERT_TRUE(WaitUntil([&] { return WestCheckIs(StartupCheck::STATE_PASSED); }))
      << WestCheck().DebugString();
  absl::StatusOr<AppendResponse> after = AppendOnWest("w-2", 1, "after the check");
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->version(), 2);  // the store was whole: no new version
}

TEST_F(StartupCheckTest, AnOperatorCanLetAClusterWriteWithoutHearingItsPeers) {
  ArmedFault hold(std::string(fault::kApplyHoldPrefix) + "west");
  ASSERT_NO_FATAL_FAILURE(RestartWest());
  ASSERT_EQ(WestCheck().state(), StartupCheck::STATE_WAITING);
  ApiError no_reason = RequestError(*west_client_, "POST", "/v1/startup-check/skip", "{}");
  EXPECT_EQ(no_reason.http_status, 400) << no_reason.body;
  EXPECT_THAT(no_reason.error.message(), HasSubstr("reason is required"));
  StartupCheck skipped;
  SkipStartupCheckRequest skip;
  skip.set_reason("east is gone for good");
  ASSERT_TRUE(west_client_->Call("POST", "/v1/startup-check/skip", &skip, skipped).ok());
  EXPECT_EQ(skipped.state(), StartupCheck::STATE_SKIPPED);
  EXPECT_THAT(skipped.outcome(), HasSubstr("east is gone for good"));
  EXPECT_TRUE(AppendOnWest("w-1", 1, "start").ok());
  ApiError again = RequestError(*west_client_, "POST", "/v1/startup-check/skip", JsonOf(skip));
  EXPECT_EQ(again.http_status, 409) << again.body;
}

// West's store is restored from a backup taken before it wrote events 3-4 of a run, which east
// holds. Restarted, west learns from east (and its own topic) that its store is older than what
// it published: it moves the namespace to a fresh failover version, and its next write there
// (event 3 again, with other content) reaches east as a newer branch. Before the check, it wrote
// event 3 at the old version again, and east dropped it as a duplicate of the lost event 3: the
// two clusters diverged for good.
TEST_F(StartupCheckTest, ARestoredStoreMovesToAFreshVersionSoItsNewWritesReachItsPeers) {
  absl::StatusOr<AppendResponse> started = AppendOnWest("r-1", 1, "start");
  ASSERT_TRUE(started.ok()) << started.status();
  const std::string run = started->run_id();
  ASSERT_TRUE(AppendOnWest("r-1", 2, "two", run).ok());
  EastHistoryWhen("r-1", 3);

  StopWest();
  const std::string backup = west_dir_.path() + ".backup";
  std::filesystem::remove_all(backup);
  std::filesystem::copy(west_dir_.path(), backup, std::filesystem::copy_options::recursive);
  ASSERT_NO_FATAL_FAILURE(StartWest());
  ASSERT_TRUE(WaitUntil([&] { return WestCheckIs(StartupCheck::STATE_PASSED); }))
      << WestCheck().DebugString();
  ASSERT_TRUE(AppendOnWest("r-1", 3, "lost three", run).ok());
  ASSERT_TRUE(AppendOnWest("r-1", 4, "lost four", run).ok());
  EastHistoryWhen("r-1", 5);

  StopWest();
  std::filesystem::remove_all(west_dir_.path());
  std::filesystem::copy(backup, west_dir_.path(), std::filesystem::copy_options::recursive);
  std::filesystem::remove_all(backup);
  ASSERT_NO_FATAL_FAILURE(StartWest());
  ASSERT_TRUE(WaitUntil([&] { return WestCheckIs(StartupCheck::STATE_RESTORED); }))
      << WestCheck().DebugString();
  EXPECT_THAT(WestCheck().outcome(), AllOf(HasSubstr("restored store"), HasSubstr("holds task")));
  const NamespaceRecord record = GetRecord(*west_client_, kWestNamespace);
  EXPECT_EQ(record.active_cluster(), "west");
  EXPECT_EQ(record.failover_version(), 102);
  ASSERT_GT(record.failover_history_size(), 0);
  EXPECT_EQ(record.failover_history().rbegin()->kind(), FAILOVER_KIND_RESTORED_STORE);

  absl::StatusOr<AppendResponse> rewritten = AppendOnWest("r-1", 3, "three after restore", run);
  ASSERT_TRUE(rewritten.ok()) << rewritten.status();
  EXPECT_EQ(rewritten->version(), 102);
  // East holds the lost events on a losing branch and west's new event on the current one.
  const GetHistoryResponse on_east = EastHistoryWhen("r-1", 4);
  ASSERT_EQ(on_east.events_size(), 3) << on_east.DebugString();
  EXPECT_EQ(on_east.events(2).version(), 102);
  EXPECT_EQ(on_east.events(2).attributes(), "three after restore");
  EXPECT_EQ(on_east.version_histories().histories_size(), 2);
  // East saw no task ids skipped: west's new tasks continue above what east already held.
  const StatusResponse east_status = GetStatus(*east_client_);
  for (const ShardStatus& shard : east_status.shards()) {
    for (const PeerShardStatus& peer : shard.peers()) {
      EXPECT_EQ(peer.missing_tasks(), 0) << shard.ShortDebugString();
    }
  }
}

}  // namespace
}  // namespace xdc
