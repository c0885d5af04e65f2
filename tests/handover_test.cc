// Graceful handover, cancel and deadline between two whole clusters in one process (see
// tests/two_clusters.h), driven through the HTTP API as an operator and clients would.
// Process-level scenarios (SIGKILL, partitions, failback) are in tests/e2e_test.cc.
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "chaos/fault_points.h"
#include "tests/armed_fault.h"
#include "tests/ledger_client.h"
#include "tests/run_command.h"
#include "tests/two_clusters.h"

namespace xdc {
namespace {

using ::testing::HasSubstr;

DescribeNamespaceResponse Describe(HttpClient& client, const std::string& name) {
  DescribeNamespaceResponse response;
  absl::Status s = client.Call("GET", "/v1/namespaces/" + name + "/describe", nullptr, response);
  EXPECT_TRUE(s.ok()) << s;
  return response;
}

absl::StatusOr<NamespaceRecord> RequestFailover(HttpClient& client, const std::string& name,
                                                const std::string& target, bool force,
                                                int64_t timeout_ms = 0) {
  FailoverRequest request;
  request.set_target_cluster(target);
  request.set_force(force);
  request.set_timeout_ms(timeout_ms);
  NamespaceRecord record;
  if (absl::Status s =
          client.Call("POST", "/v1/namespaces/" + name + "/failover", &request, record);
      !s.ok()) {
    return s;
  }
  return record;
}

std::string Metrics(HttpClient& client) {
  absl::StatusOr<HttpResult> response = client.Request("GET", "/metrics", "");
  EXPECT_TRUE(response.ok()) << response.status();
  return response.ok() ? response->body : "";
}

class HandoverTest : public TwoClustersTest {
 protected:
  // Runs xdcctl against `daemon`, as an operator would.
  static CommandResult Ctl(Daemon& daemon, const std::string& args) {
    return RunCommand(
        absl::StrCat(XDC_BIN_DIR, "/xdcctl --address ", daemon.http_address(), " ", args));
  }

  // Puts a message that is not a frame on east's history partition 0: west parks it, with no
  // workflow to tell which namespace it belonged to, so it blocks a handover to west.
  void ProduceGarbageOnEastShard0() {
    std::mutex mu;
    std::vector<absl::Status> delivered;
    absl::StatusOr<std::unique_ptr<KafkaProducer>> producer = KafkaProducer::Create(
        east_->kafka_bootstrap(), "test", [&](uint64_t, const absl::Status& status) {
          std::lock_guard<std::mutex> lock(mu);
          delivered.push_back(status);
        });
    ASSERT_TRUE(producer.ok()) << producer.status();
    ASSERT_TRUE(
        (*producer)->Produce(HistoryTopic("east", TestTopicPrefix()), 0, "not a frame", 1).ok());
    ASSERT_TRUE((*producer)->Flush(10000).ok());
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_EQ(delivered.size(), 1u);
    ASSERT_TRUE(delivered[0].ok()) << delivered[0];
  }

  // Every workflow of the namespace on `client` has exactly one branch.
  void ExpectNoForks(HttpClient& client) {
    absl::StatusOr<ListDigestsResponse> digests = Digests(client, kNamespace);
    ASSERT_TRUE(digests.ok()) << digests.status();
    for (const WorkflowDigest& workflow : digests->workflows()) {
      GetHistoryResponse history;
      ASSERT_TRUE(client
                      .Call("GET",
                            absl::StrCat("/v1/history?namespace=", kNamespace,
                                         "&workflow_id=", workflow.workflow_id()),
                            nullptr, history)
                      .ok());
      EXPECT_EQ(history.version_histories().histories_size(), 1) << workflow.workflow_id();
    }
  }
};

TEST_F(HandoverTest, GracefulHandoverUnderLoadLosesNothingAndForksNothing) {
  LedgerClient client({{"east", east_->http_address()}, {"west", west_->http_address()}}, "east");
  std::atomic<bool> stop{false};
  std::thread load([&] { client.Run(stop); });
  ASSERT_TRUE(WaitUntil([&] {
    std::lock_guard<std::mutex> lock(client.mu_);
    return client.acked_.size() >= 200;
  }));

  absl::StatusOr<NamespaceRecord> started =
      RequestFailover(*east_client_, kNamespace, "west", /*force=*/false);
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_EQ(started->handover().target_cluster(), "west");
  EXPECT_EQ(started->handover().proposed_version(), 2);
  ASSERT_TRUE(WaitUntil([&] {
    NamespaceRecord on_east = GetRecord(*east_client_, kNamespace);
    return on_east.active_cluster() == "west" && on_east.state() == NAMESPACE_STATE_ACTIVE;
  }));
  // The load follows the namespace to west and keeps writing there.
  ASSERT_TRUE(WaitUntil([&] {
    std::lock_guard<std::mutex> lock(client.mu_);
    return client.versions_.contains(2) && client.acked_.size() >= 400;
  }));
  stop = true;
  load.join();
  EXPECT_THAT(client.errors_, ::testing::IsEmpty());

  WaitForConvergence();
  ASSERT_NO_FATAL_FAILURE(ExpectNoForks(*east_client_));
  ASSERT_NO_FATAL_FAILURE(ExpectNoForks(*west_client_));
  ASSERT_NO_FATAL_FAILURE(client.ExpectAcknowledgedOn({east_client_.get(), west_client_.get()}));

  // The failover history: one graceful handover, writes refused for a measured time, no damage.
  for (HttpClient* c : {east_client_.get(), west_client_.get()}) {
    DescribeNamespaceResponse described = Describe(*c, kNamespace);
    ASSERT_EQ(described.namespace_().failover_history_size(), 1);
    const FailoverEvent& event = described.namespace_().failover_history(0);
    EXPECT_EQ(event.kind(), FAILOVER_KIND_GRACEFUL);
    EXPECT_EQ(event.from_cluster(), "east");
    EXPECT_EQ(event.to_cluster(), "west");
    EXPECT_EQ(event.from_version(), 1);
    EXPECT_EQ(event.failover_version(), 2);
    EXPECT_GT(event.writes_refused_micros(), 0);
    EXPECT_EQ(event.writes_refused_micros(),
              event.completed_unix_micros() - event.started_unix_micros());
    ASSERT_EQ(described.damage_size(), 1);
    EXPECT_EQ(described.damage(0).events_on_losing_branches(), 0);
    EXPECT_EQ(described.damage(0).workflows_forked(), 0);
  }
}

TEST_F(HandoverTest, HandoverToATargetThatIsDownWaitsRefusingWritesThenCompletes) {
  WriteWorkflows(east_->http_address(), kNamespace, "before", 6);
  WaitForConvergence();
  StopWest();
  absl::StatusOr<NamespaceRecord> started =
      RequestFailover(*east_client_, kNamespace, "west", /*force=*/false);
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_EQ(started->state(), NAMESPACE_STATE_HANDOVER);
  // A retried request is answered with the handover in progress, not a second one.
  absl::StatusOr<NamespaceRecord> again =
      RequestFailover(*east_client_, kNamespace, "west", /*force=*/false);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->handover().proposed_version(), started->handover().proposed_version());

  // Writes are refused as retryable, with a hint of when to retry.
  ApiError refused =
      RequestError(*east_client_, "POST", "/v1/append",
                   JsonOf(Append(kNamespace, "during", 1, {Event(WORKFLOW_EXECUTION_STARTED)})));
  EXPECT_EQ(refused.http_status, 503);
  EXPECT_TRUE(refused.error.retryable());
  EXPECT_GT(refused.error.retry_after_ms(), 0);
  EXPECT_THAT(refused.error.message(), HasSubstr("handing over from 'east' to 'west'"));
  DescribeNamespaceResponse waiting = Describe(*east_client_, kNamespace);
  ASSERT_EQ(waiting.waiting_for_size(), 1);
  EXPECT_THAT(waiting.waiting_for(0), HasSubstr("'west' to decide the handover"));
  // What the XdcHandoverStuck alert watches.
  const std::string during = Metrics(*east_client_);
  EXPECT_GT(MetricSum(during, "xdc_namespace_handover_seconds"), 0);
  EXPECT_EQ(MetricSum(during, "xdc_namespace_active"), 0);

  ASSERT_NO_FATAL_FAILURE(StartWest());
  ASSERT_TRUE(
      WaitUntil([&] { return GetRecord(*east_client_, kNamespace).active_cluster() == "west"; }));
  NamespaceRecord on_west = GetRecord(*west_client_, kNamespace);
  EXPECT_EQ(on_west.active_cluster(), "west");
  EXPECT_EQ(on_west.failover_version(), 2);
  AppendResponse appended;
  AppendRequest write = Append(kNamespace, "after", 1, {Event(WORKFLOW_EXECUTION_STARTED)});
  ASSERT_TRUE(west_client_->Call("POST", "/v1/append", &write, appended).ok());
  EXPECT_EQ(appended.version(), 2);
  WaitForConvergence();
  ASSERT_NO_FATAL_FAILURE(ExpectNoForks(*east_client_));
  const std::string after = Metrics(*west_client_);
  EXPECT_EQ(MetricSum(after, "xdc_namespace_active"), 1);
  EXPECT_EQ(MetricSum(after, "xdc_namespace_failover_version"), 2);
  EXPECT_EQ(MetricSum(after, "xdc_namespace_failovers"), 1);  // one entry, graceful
  EXPECT_THAT(after, HasSubstr("kind=\"graceful\",namespace=\"orders\"} 1"));
  EXPECT_EQ(MetricSum(Metrics(*east_client_), "xdc_namespace_handover_seconds"), 0);
}

// East -> west -> east: the second handover's target has written before, and its own stream
// needs no applying to activate.
TEST_F(HandoverTest, FailbackReturnsTheNamespaceWithNothingLostAndNoFork) {
  WriteWorkflows(east_->http_address(), kNamespace, "on-east", 6);
  ASSERT_TRUE(RequestFailover(*east_client_, kNamespace, "west", /*force=*/false).ok());
  ASSERT_TRUE(
      WaitUntil([&] { return GetRecord(*east_client_, kNamespace).active_cluster() == "west"; }));
  WriteWorkflows(west_->http_address(), kNamespace, "on-west", 6);
  absl::StatusOr<NamespaceRecord> back =
      RequestFailover(*west_client_, kNamespace, "east", /*force=*/false);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->handover().proposed_version(), 101);
  ASSERT_TRUE(WaitUntil([&] {
    return GetRecord(*west_client_, kNamespace).active_cluster() == "east";
  })) << absl::StrJoin(Describe(*east_client_, kNamespace).waiting_for(), "\n");
  WriteWorkflows(east_->http_address(), kNamespace, "back-on-east", 6);
  EXPECT_EQ(WaitForConvergence(), 18u);
  ASSERT_NO_FATAL_FAILURE(ExpectNoForks(*east_client_));
  NamespaceRecord record = GetRecord(*east_client_, kNamespace);
  EXPECT_EQ(record.failover_version(), 101);
  EXPECT_FALSE(record.has_handover());
  ASSERT_EQ(record.failover_history_size(), 2);
  EXPECT_EQ(record.failover_history(1).kind(), FAILOVER_KIND_GRACEFUL);
  EXPECT_EQ(record.failover_history(1).from_cluster(), "west");
}

// Durations of completed failovers are histograms on the cluster that completed each one (the
// new active), counted once however often /metrics is scraped.
TEST_F(HandoverTest, EachCompletedFailoverIsObservedOnceOnTheClusterThatCompletedIt) {
  WriteWorkflows(east_->http_address(), kNamespace, "before", 3);
  ASSERT_TRUE(RequestFailover(*east_client_, kNamespace, "west", /*force=*/false).ok());
  ASSERT_TRUE(WaitUntil([&] {
    NamespaceRecord on_west = GetRecord(*west_client_, kNamespace);
    return on_west.active_cluster() == "west" && on_west.state() == NAMESPACE_STATE_ACTIVE;
  }));
  // East takes the namespace back by force (as after losing west). Its record may not show the
  // handover's completion yet: the merged history keeps it anyway.
  ASSERT_TRUE(RequestFailover(*east_client_, kNamespace, "east", /*force=*/true).ok());
  ASSERT_TRUE(
      WaitUntil([&] { return GetRecord(*west_client_, kNamespace).active_cluster() == "east"; }));
  // East learns of the handover's completion when west's record reaches it, which may be after
  // its own forced failover: the histories are merged then.
  ASSERT_TRUE(WaitUntil([&] {
    return GetRecord(*east_client_, kNamespace).failover_history_size() == 2;
  })) << GetRecord(*east_client_, kNamespace).DebugString();

  const std::vector<std::string> graceful = {R"(kind="graceful")"};
  const std::vector<std::string> forced = {R"(kind="forced")"};
  for (int scrape = 0; scrape < 2; ++scrape) {
    const std::string west = Metrics(*west_client_);
    const std::string east = Metrics(*east_client_);
    EXPECT_EQ(MetricSum(west, "xdc_failover_duration_seconds_count", graceful), 1);
    EXPECT_EQ(MetricSum(west, "xdc_failover_writes_refused_seconds_count", graceful), 1);
    EXPECT_EQ(MetricSum(west, "xdc_failover_duration_seconds_count", forced), 0);
    EXPECT_EQ(MetricSum(east, "xdc_failover_duration_seconds_count", forced), 1);
    EXPECT_EQ(MetricSum(east, "xdc_failover_duration_seconds_count", graceful), 0);
    // The histogram's sum is the refused time `xdcctl namespace history` shows.
    const NamespaceRecord record = GetRecord(*east_client_, kNamespace);
    ASSERT_EQ(record.failover_history_size(), 2) << record.DebugString();
    EXPECT_DOUBLE_EQ(MetricSum(west, "xdc_failover_writes_refused_seconds_sum", graceful),
                     static_cast<double>(record.failover_history(0).writes_refused_micros()) / 1e6);
  }
}

// The target decides: a cancel sent to the source is a request; the source stays in HANDOVER
// until the target answers. A DLQ entry that may hold the namespace's events keeps the target
// from activating, so the cancel wins here deterministically.
TEST_F(HandoverTest, CancelIsDecidedByTheTargetAndALaterHandoverStillWorks) {
  WriteWorkflows(east_->http_address(), kNamespace, "before", 4);
  ASSERT_NO_FATAL_FAILURE(ProduceGarbageOnEastShard0());
  ASSERT_TRUE(WaitUntil([&] { return GetDlq(*west_client_).tasks_size() == 1; }));

  absl::StatusOr<NamespaceRecord> started =
      RequestFailover(*east_client_, kNamespace, "west", /*force=*/false);
  ASSERT_TRUE(started.ok()) << started.status();
  const int64_t first_proposal = started->handover().proposed_version();
  // West has every marker but waits on the DLQ entry, and says so.
  ASSERT_TRUE(WaitUntil([&] {
    DescribeNamespaceResponse d = Describe(*west_client_, kNamespace);
    return d.handover_target().shards_seen_size() == 4 && d.waiting_for_size() > 0;
  }));
  DescribeNamespaceResponse on_target = Describe(*west_client_, kNamespace);
  EXPECT_THAT(absl::StrJoin(on_target.waiting_for(), "\n"), HasSubstr("DLQ entries (1)"));

  NamespaceRecord cancelled;
  CancelHandoverRequest cancel;
  cancel.set_reason("change freeze");
  ASSERT_TRUE(east_client_
                  ->Call("POST", absl::StrCat("/v1/namespaces/", kNamespace, "/cancel-handover"),
                         &cancel, cancelled)
                  .ok());
  ASSERT_TRUE(WaitUntil(
      [&] { return GetRecord(*east_client_, kNamespace).state() == NAMESPACE_STATE_ACTIVE; }));
  NamespaceRecord resumed = GetRecord(*east_client_, kNamespace);
  EXPECT_EQ(resumed.active_cluster(), "east");
  EXPECT_EQ(resumed.failover_version(), 1);
  ASSERT_EQ(resumed.failover_history_size(), 1);
  EXPECT_EQ(resumed.failover_history(0).kind(), FAILOVER_KIND_HANDOVER_CANCELLED);
  EXPECT_EQ(resumed.failover_history(0).reason(), "change freeze");
  EXPECT_EQ(resumed.failover_history(0).failover_version(), first_proposal);
  DescribeNamespaceResponse decided = Describe(*west_client_, kNamespace);
  EXPECT_EQ(decided.handover_target().decided_version(), first_proposal);
  ASSERT_EQ(decided.handover_target().decisions_size(), 1);
  EXPECT_EQ(decided.handover_target().decisions(0).outcome(), HANDOVER_OUTCOME_CANCELLED);
  // East takes writes again.
  AppendResponse appended;
  AppendRequest write = Append(kNamespace, "after-cancel", 1, {Event(WORKFLOW_EXECUTION_STARTED)});
  ASSERT_TRUE(east_client_->Call("POST", "/v1/append", &write, appended).ok());
  EXPECT_EQ(appended.version(), 1);

  // Once the entry is purged, a new handover (a new, higher proposal) completes.
  DlqRequest purge;
  purge.set_all(true);
  DlqActionResponse purged;
  ASSERT_TRUE(west_client_->Call("POST", "/v1/dlq/purge", &purge, purged).ok());
  absl::StatusOr<NamespaceRecord> second =
      RequestFailover(*east_client_, kNamespace, "west", /*force=*/false);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_GT(second->handover().proposed_version(), first_proposal);
  ASSERT_TRUE(
      WaitUntil([&] { return GetRecord(*east_client_, kNamespace).active_cluster() == "west"; }));
  EXPECT_EQ(GetRecord(*west_client_, kNamespace).failover_version(),
            second->handover().proposed_version());
}

// Task ids lost from Kafka never arrive, so a handover to the cluster that misses them waits.
// runbooks/missing-tasks.md: once the runs are repaired and nothing differs, the operator
// declares the ids lost (xdcctl missing-tasks acknowledge) and the handover completes.
TEST_F(HandoverTest, AHandoverBlockedByLostTaskIdsCompletesOnceTheOperatorDeclaresThemLost) {
  const std::string east = east_->http_address();
  const std::string west = west_->http_address();
  auto missing = [&] { return MissingTasks(GetStatus(*west_client_)); };
  {
    // East's publisher loses every 5th task of a shard; the runs that got a later task are
    // resent, the others are repaired below.
    ArmedFault lose(fault::kPublishLoseTask);
    WriteWorkflows(east, kNamespace, "lost", 20);
    ASSERT_TRUE(WaitUntil([&] { return PublishedAll(GetStatus(*east_client_)); }));
  }
  ASSERT_TRUE(WaitUntil([&] {
    return CaughtUp(GetStatus(*west_client_)) && GetDlq(*west_client_).tasks_size() == 0 &&
           missing() > 0;
  }));
  const int64_t seen_lost = missing();
  CommandResult repaired =
      Ctl(*east_, absl::StrCat("migration verify --namespace ", kNamespace, " --source ", east,
                               " --target ", west, " --repair"));
  ASSERT_EQ(repaired.exit_code, 0) << repaired.output;
  EXPECT_THAT(repaired.output, HasSubstr("IDENTICAL"));
  // Repairs are new tasks: the lost ids stay missing.
  EXPECT_GE(missing(), seen_lost);

  CommandResult started = Ctl(*east_, "namespace failover orders --to west --no-wait");
  ASSERT_EQ(started.exit_code, 0) << started.output;
  ASSERT_TRUE(WaitUntil([&] {
    DescribeNamespaceResponse d = Describe(*west_client_, kNamespace);
    return d.handover_target().shards_seen_size() == 4 &&
           absl::StrContains(absl::StrJoin(d.waiting_for(), "\n"), "tasks of 'east' are missing");
  }));
  EXPECT_EQ(GetRecord(*east_client_, kNamespace).state(), NAMESPACE_STATE_HANDOVER);
  // A shard's last lost task shows only once a later task arrives (a repair, a handover marker).
  // East refuses writes now and west applied every marker: once west's status shows them
  // applied (caught up), the count is final.
  ASSERT_TRUE(WaitUntil([&] { return CaughtUp(GetStatus(*west_client_)); }));
  const int64_t lost = missing();
  EXPECT_GE(lost, seen_lost);

  // Bad requests change nothing and say what was wrong.
  CommandResult no_peer = Ctl(*west_, "missing-tasks acknowledge");
  EXPECT_EQ(no_peer.exit_code, 2) << no_peer.output;
  EXPECT_THAT(no_peer.output, HasSubstr("needs --peer CLUSTER"));
  CommandResult unknown = Ctl(*west_, "missing-tasks acknowledge --peer north");
  EXPECT_EQ(unknown.exit_code, 1) << unknown.output;
  EXPECT_THAT(unknown.output,
              HasSubstr("no stream of cluster 'north' here: this cluster applies those of east"));
  CommandResult bad_shard = Ctl(*west_, "missing-tasks acknowledge --peer east --shards 1,9");
  EXPECT_EQ(bad_shard.exit_code, 1) << bad_shard.output;
  EXPECT_THAT(bad_shard.output, HasSubstr("shard 9 does not exist: shards are 0 to 3"));
  EXPECT_EQ(missing(), lost);

  CommandResult acknowledged = Ctl(*west_, "missing-tasks acknowledge --peer east");
  ASSERT_EQ(acknowledged.exit_code, 0) << acknowledged.output;
  EXPECT_THAT(acknowledged.output,
              HasSubstr(absl::StrCat(lost, " missing task ids of east declared lost on 4 shards")));
  EXPECT_EQ(missing(), 0);
  ASSERT_TRUE(
      WaitUntil([&] { return GetRecord(*east_client_, kNamespace).active_cluster() == "west"; }));
  EXPECT_EQ(GetRecord(*west_client_, kNamespace).state(), NAMESPACE_STATE_ACTIVE);
  int64_t declared = 0;
  const StatusResponse status = GetStatus(*west_client_);
  for (const ShardStatus& shard : status.shards()) {
    for (const PeerShardStatus& peer : shard.peers()) {
      declared += peer.missing_tasks_acknowledged();
    }
  }
  EXPECT_EQ(declared, lost);  // kept, and stored: status still shows that tasks were lost
  EXPECT_THAT(Ctl(*west_, "status").output,
              HasSubstr(absl::StrCat(lost, " task ids of east were declared lost by an operator")));
  ASSERT_NO_FATAL_FAILURE(StopWest());
  ASSERT_NO_FATAL_FAILURE(StartWest());
  EXPECT_EQ(missing(), 0);
  EXPECT_EQ(WaitForConvergence(), 20u);
}

// Past its deadline the source asks the target to cancel; it still waits for the answer.
TEST_F(HandoverTest, AHandoverNotDecidedInTimeIsCancelledThroughTheTarget) {
  ASSERT_NO_FATAL_FAILURE(ProduceGarbageOnEastShard0());
  ASSERT_TRUE(WaitUntil([&] { return GetDlq(*west_client_).tasks_size() == 1; }));
  absl::StatusOr<NamespaceRecord> started =
      RequestFailover(*east_client_, kNamespace, "west", /*force=*/false, /*timeout_ms=*/300);
  ASSERT_TRUE(started.ok()) << started.status();
  ASSERT_TRUE(WaitUntil(
      [&] { return GetRecord(*east_client_, kNamespace).state() == NAMESPACE_STATE_ACTIVE; }));
  NamespaceRecord resumed = GetRecord(*east_client_, kNamespace);
  EXPECT_EQ(resumed.active_cluster(), "east");
  ASSERT_EQ(resumed.failover_history_size(), 1);
  EXPECT_EQ(resumed.failover_history(0).kind(), FAILOVER_KIND_HANDOVER_CANCELLED);
  EXPECT_THAT(resumed.failover_history(0).reason(), HasSubstr("not decided within 0.3 s"));
  EXPECT_GE(resumed.failover_history(0).writes_refused_micros(), 300000);
}

// What an operator does with a handover that cannot complete, as the runbooks tell it
// (runbooks/handover-stuck.md): cancel it on the target, or force a failover on either side.
// West's DLQ holds an entry that blocks the handover, so each case starts from the same state.
class StuckHandoverTest : public HandoverTest {
 protected:
  void StartBlockedHandover() {
    WriteWorkflows(east_->http_address(), kNamespace, "before", 4);
    ASSERT_NO_FATAL_FAILURE(ProduceGarbageOnEastShard0());
    ASSERT_TRUE(WaitUntil([&] { return GetDlq(*west_client_).tasks_size() == 1; }));
    CommandResult started = Ctl(*east_, "namespace failover orders --to west --no-wait");
    ASSERT_EQ(started.exit_code, 0) << started.output;
    ASSERT_TRUE(WaitUntil([&] {
      return Describe(*west_client_, kNamespace).handover_target().shards_seen_size() == 4;
    }));
    CommandResult waiting = Ctl(*west_, "--json namespace describe orders");
    ASSERT_EQ(waiting.exit_code, 0) << waiting.output;
    EXPECT_THAT(waiting.output, HasSubstr("DLQ entries (1)"));
  }
};

TEST_F(StuckHandoverTest, ACancelSentToTheTargetIsDecidedThereAndTheSourceResumes) {
  ASSERT_NO_FATAL_FAILURE(StartBlockedHandover());
  CommandResult cancel = Ctl(*west_, "namespace cancel orders --reason 'west incomplete'");
  EXPECT_EQ(cancel.exit_code, 0) << cancel.output;
  ASSERT_TRUE(WaitUntil(
      [&] { return GetRecord(*east_client_, kNamespace).state() == NAMESPACE_STATE_ACTIVE; }));
  EXPECT_EQ(GetRecord(*east_client_, kNamespace).active_cluster(), "east");
  CommandResult history = Ctl(*east_, "namespace history orders");
  EXPECT_THAT(history.output, HasSubstr("cancelled"));
  EXPECT_THAT(history.output, HasSubstr("reason: west incomplete"));
  CommandResult json = Ctl(*east_, "--json namespace history orders");
  EXPECT_THAT(json.output, HasSubstr("FAILOVER_KIND_HANDOVER_CANCELLED"));
}

// The source forces itself out of its own handover: a version above the proposal, so a late
// activation of the proposal could never win; the target decides the proposal superseded.
TEST_F(StuckHandoverTest, TheSourceForcingItselfOutSupersedesTheProposal) {
  ASSERT_NO_FATAL_FAILURE(StartBlockedHandover());
  CommandResult forced = Ctl(*east_, "namespace failover orders --to east --force");
  ASSERT_EQ(forced.exit_code, 0) << forced.output;
  EXPECT_THAT(forced.output, HasSubstr("active=east failover_version=101"));
  ASSERT_TRUE(WaitUntil([&] {
    const HandoverTargetState target = Describe(*west_client_, kNamespace).handover_target();
    return target.decided_version() == 2 && target.decisions_size() == 1 &&
           target.decisions(0).outcome() == HANDOVER_OUTCOME_CANCELLED;
  }));
  // Even with the blocking entry gone, west never activates the old proposal.
  DlqRequest purge;
  purge.set_all(true);
  DlqActionResponse purged;
  ASSERT_TRUE(west_client_->Call("POST", "/v1/dlq/purge", &purge, purged).ok());
  AppendResponse appended;
  AppendRequest write = Append(kNamespace, "after-force", 1, {Event(WORKFLOW_EXECUTION_STARTED)});
  ASSERT_TRUE(east_client_->Call("POST", "/v1/append", &write, appended).ok());
  EXPECT_EQ(appended.version(), 101);
  WaitForConvergence();
  EXPECT_EQ(GetRecord(*west_client_, kNamespace).active_cluster(), "east");
  EXPECT_EQ(GetRecord(*west_client_, kNamespace).failover_version(), 101);
}

// The target forces a failover to itself while the source waits: the source follows the newer
// record and never resumes at its old version.
TEST_F(StuckHandoverTest, TheTargetForcingAFailoverEndsTheHandoverOnTheSource) {
  ASSERT_NO_FATAL_FAILURE(StartBlockedHandover());
  CommandResult forced = Ctl(*west_, "namespace failover orders --to west --force");
  ASSERT_EQ(forced.exit_code, 0) << forced.output;
  EXPECT_THAT(forced.output, HasSubstr("active=west failover_version=102"));
  ASSERT_TRUE(
      WaitUntil([&] { return GetRecord(*east_client_, kNamespace).active_cluster() == "west"; }));
  const NamespaceRecord on_east = GetRecord(*east_client_, kNamespace);
  EXPECT_EQ(on_east.state(), NAMESPACE_STATE_ACTIVE);
  EXPECT_EQ(on_east.failover_version(), 102);
  ASSERT_EQ(on_east.failover_history_size(), 1);  // no cancelled entry: east never resumed
  EXPECT_EQ(on_east.failover_history(0).kind(), FAILOVER_KIND_FORCED);
  ApiError refused =
      RequestError(*east_client_, "POST", "/v1/append",
                   JsonOf(Append(kNamespace, "late", 1, {Event(WORKFLOW_EXECUTION_STARTED)})));
  EXPECT_EQ(refused.http_status, 409);
  EXPECT_EQ(refused.error.active_cluster(), "west");
  CommandResult compare = Ctl(*west_, absl::StrCat("compare --namespace orders --peer ",
                                                   east_->http_address(), " --wait 60"));
  EXPECT_EQ(compare.exit_code, 0) << compare.output;
  // Nothing was written on both sides, so the forced failover lost nothing.
  CommandResult history = Ctl(*west_, "namespace history orders");
  EXPECT_THAT(history.output, HasSubstr("forced"));
  DescribeNamespaceResponse described = Describe(*west_client_, kNamespace);
  ASSERT_EQ(described.damage_size(), 1);
  EXPECT_EQ(described.damage(0).events_on_losing_branches(), 0);
}

TEST_F(HandoverTest, BadHandoverRequestsAreRefusedAndChangeNothing) {
  ApiError not_member =
      RequestError(*east_client_, "POST", absl::StrCat("/v1/namespaces/", kNamespace, "/failover"),
                   R"({"target_cluster":"north"})");
  EXPECT_EQ(not_member.http_status, 400);
  EXPECT_THAT(not_member.error.message(), HasSubstr("'north' is not a member"));
  ApiError on_standby =
      RequestError(*west_client_, "POST", absl::StrCat("/v1/namespaces/", kNamespace, "/failover"),
                   R"({"target_cluster":"west"})");
  EXPECT_EQ(on_standby.http_status, 409);
  EXPECT_THAT(on_standby.error.message(), HasSubstr("send the graceful handover to 'east'"));
  ApiError timeout =
      RequestError(*east_client_, "POST", absl::StrCat("/v1/namespaces/", kNamespace, "/failover"),
                   R"({"target_cluster":"west","timeout_ms":-5})");
  EXPECT_EQ(timeout.http_status, 400);
  ApiError unknown = RequestError(*east_client_, "POST", "/v1/namespaces/nope/cancel-handover");
  EXPECT_EQ(unknown.http_status, 404);
  NamespaceRecord record = GetRecord(*east_client_, kNamespace);
  EXPECT_EQ(record.state(), NAMESPACE_STATE_ACTIVE);
  EXPECT_EQ(record.state_sequence(), 0);
  EXPECT_EQ(record.failover_history_size(), 0);
}

}  // namespace
}  // namespace xdc
