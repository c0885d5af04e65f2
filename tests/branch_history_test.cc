// Every branch readable, runs still reapply_pending in status, and when a cluster learned a
// namespace's record (issue 15 item 17), with two whole clusters in one process
// (tests/two_clusters.h): the API and xdcctl as an operator runs them.
//
// The split brain is made with the apply.hold.<peer> fault points (process-global, one per
// direction): while both are armed neither cluster applies the other's streams, control topics
// included, so east keeps writing at version 1 after west was forced active at version 2. Each
// wait is on a condition with a deadline (WaitUntil).
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "protocol/xdc.pb.h"
#include "replicator/clock.h"
#include "replicator/daemon.h"
#include "replicator/http_client.h"
#include "tests/armed_fault.h"
#include "tests/run_command.h"
#include "tests/two_clusters.h"

namespace xdc {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kWorkflow[] = "split-1";

std::string Xdcctl(const std::string& address, const std::string& args) {
  return absl::StrCat(XDC_BIN_DIR, "/xdcctl --address ", address, " ", args);
}

absl::StatusOr<GetHistoryResponse> History(HttpClient& client, const std::string& query_tail) {
  GetHistoryResponse response;
  if (absl::Status s = client.Call(
          "GET", absl::StrCat("/v1/history?namespace=orders&workflow_id=", kWorkflow, query_tail),
          nullptr, response);
      !s.ok()) {
    return s;
  }
  return response;
}

// The index of the branch whose last item has `version` (branch order is local to a cluster).
int BranchEndingAtVersion(const VersionHistories& histories, int64_t version) {
  for (int i = 0; i < histories.histories_size(); ++i) {
    const VersionHistory& branch = histories.histories(i);
    if (branch.items_size() > 0 && branch.items(branch.items_size() - 1).version() == version) {
      return i;
    }
  }
  return -1;
}

DescribeNamespaceResponse Describe(HttpClient& client) {
  DescribeNamespaceResponse response;
  absl::Status s = client.Call("GET", "/v1/namespaces/orders/describe", nullptr, response);
  EXPECT_TRUE(s.ok()) << s;
  return response;
}

class BranchHistoryTest : public TwoClustersTest {
 protected:
  NamespaceRecord ForceFailoverToWest() {
    FailoverRequest failover;
    failover.set_target_cluster("west");
    failover.set_force(true);
    NamespaceRecord record;
    absl::Status s =
        west_client_->Call("POST", "/v1/namespaces/orders/failover", &failover, record);
    EXPECT_TRUE(s.ok()) << s;
    EXPECT_EQ(record.active_cluster(), "west");
    return record;
  }
};

// East writes a signal and an activity result at version 1 while west, forced active at version
// 2, writes a timer. East hears west first: west's branch wins there, and east, not active, leaves
// the signal for west to reapply (reapply_pending). The losing branch's events stay readable with
// ?branch=N and --branch N, and differ from the current branch's.
TEST_F(BranchHistoryTest, TheLosingBranchOfASplitBrainIsReadableAndItsRunListedReapplyPending) {
  AppendResponse started;
  AppendRequest start = Append(
      kNamespace, kWorkflow, 1,
      {Event(WORKFLOW_EXECUTION_STARTED, "input"), Event(ACTIVITY_TASK_SCHEDULED, "activity")});
  ASSERT_TRUE(east_client_->Call("POST", "/v1/append", &start, started).ok());
  const std::string run = started.run_id();
  ASSERT_TRUE(WaitUntil([&] {
    absl::StatusOr<GetHistoryResponse> on_west = History(*west_client_, "");
    return on_west.ok() && on_west->next_event_id() == 3;
  }));
  EXPECT_EQ(GetStatus(*east_client_).reapply_pending_runs(), 0);

  // The split brain: neither cluster applies the other's streams.
  std::optional<ArmedFault> west_holds_east(std::in_place, "apply.hold.east");
  std::optional<ArmedFault> east_holds_west(std::in_place, "apply.hold.west");
  ASSERT_EQ(ForceFailoverToWest().failover_version(), 2);
  SignalRequest signal;
  signal.set_namespace_(kNamespace);
  signal.set_workflow_id(kWorkflow);
  signal.set_signal_name("poke");
  signal.set_input("east's signal");
  AppendResponse ack;
  ASSERT_TRUE(east_client_->Call("POST", "/v1/signal", &signal, ack).ok());
  ASSERT_EQ(ack.first_event_id(), 3);
  AppendRequest east_more = Append(kNamespace, kWorkflow, 4, {Event(ACTIVITY_TASK_COMPLETED)}, run);
  ASSERT_TRUE(east_client_->Call("POST", "/v1/append", &east_more, ack).ok());
  ASSERT_EQ(ack.version(), 1);
  AppendRequest west_more = Append(kNamespace, kWorkflow, 3, {Event(TIMER_STARTED)}, run);
  ASSERT_TRUE(west_client_->Call("POST", "/v1/append", &west_more, ack).ok());
  ASSERT_EQ(ack.version(), 2);

  // East hears west (record and branch); west still does not hear east.
  east_holds_west.reset();
  absl::StatusOr<GetHistoryResponse> current;
  ASSERT_TRUE(WaitUntil([&] {
    current = History(*east_client_, "");
    return current.ok() && current->version_histories().histories_size() == 2 &&
           current->next_event_id() == 4;
  })) << (current.ok() ? current->ShortDebugString() : current.status().ToString());
  const int losing = BranchEndingAtVersion(current->version_histories(), 1);
  ASSERT_GE(losing, 0) << current->ShortDebugString();
  EXPECT_TRUE(current->current_branch());
  EXPECT_EQ(current->branch(), current->version_histories().current_index());
  EXPECT_NE(current->branch(), losing);
  EXPECT_EQ(current->shared_with_current_through_event_id(), 3);
  ASSERT_EQ(current->events_size(), 3);
  EXPECT_EQ(current->events(2).event_type(), TIMER_STARTED);
  EXPECT_EQ(current->events(2).version(), 2);

  // The losing branch: the shared prefix, then east's own signal and activity result.
  absl::StatusOr<GetHistoryResponse> lost =
      History(*east_client_, absl::StrCat("&run_id=", run, "&branch=", losing));
  ASSERT_TRUE(lost.ok()) << lost.status();
  EXPECT_EQ(lost->branch(), losing);
  EXPECT_FALSE(lost->current_branch());
  EXPECT_EQ(lost->shared_with_current_through_event_id(), 2);
  ASSERT_EQ(lost->events_size(), 4);
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals(lost->events(i), current->events(i))) << i;
  }
  EXPECT_EQ(lost->events(2).event_type(), WORKFLOW_EXECUTION_SIGNALED);
  EXPECT_EQ(lost->events(2).version(), 1);
  SignalAttributes attributes;
  ASSERT_TRUE(attributes.ParseFromString(lost->events(2).attributes()));
  EXPECT_EQ(attributes.input(), "east's signal");
  EXPECT_EQ(lost->events(3).event_type(), ACTIVITY_TASK_COMPLETED);
  EXPECT_EQ(lost->events(3).version(), 1);
  EXPECT_NE(lost->digest(), current->digest());
  // Asking for the current branch by its index is the default answer.
  absl::StatusOr<GetHistoryResponse> by_index = History(
      *east_client_, absl::StrCat("&branch=", current->version_histories().current_index()));
  ASSERT_TRUE(by_index.ok()) << by_index.status();
  EXPECT_TRUE(MessageDifferencer::Equals(*by_index, *current));

  // The same through xdcctl.
  const std::string east = east_->http_address();
  CommandResult branches = RunCommand(Xdcctl(
      east, absl::StrCat("history --namespace orders --workflow-id ", kWorkflow, " --branches")));
  EXPECT_EQ(branches.exit_code, 0) << branches.output;
  EXPECT_THAT(branches.output, HasSubstr(" (current): (event 2, version 1) (event 3, version 2)"));
  EXPECT_THAT(branches.output,
              HasSubstr(absl::StrCat("branch ", losing,
                                     ": (event 4, version 1); shares events 1-2 with the "
                                     "current branch")));
  EXPECT_THAT(branches.output, Not(HasSubstr("WORKFLOW_EXECUTION_STARTED")));
  CommandResult losing_events =
      RunCommand(Xdcctl(east, absl::StrCat("history --namespace orders --workflow-id ", kWorkflow,
                                           " --branch ", losing)));
  EXPECT_EQ(losing_events.exit_code, 0) << losing_events.output;
  EXPECT_THAT(losing_events.output,
              HasSubstr(absl::StrCat("events of branch ", losing,
                                     " (not current): 1-2 shared with the current branch; 3-4 "
                                     "its own")));
  EXPECT_THAT(losing_events.output, HasSubstr("WORKFLOW_EXECUTION_SIGNALED"));
  EXPECT_THAT(losing_events.output, HasSubstr("ACTIVITY_TASK_COMPLETED"));
  EXPECT_THAT(losing_events.output, Not(HasSubstr("TIMER_STARTED")));

  // East cannot reapply the signal (west is active): the run is listed reapply_pending.
  StatusResponse status;
  ASSERT_TRUE(WaitUntil([&] {
    status = GetStatus(*east_client_);
    return status.reapply_pending_runs() == 1;
  })) << status.ShortDebugString();
  ASSERT_EQ(status.reapply_pending_size(), 1);
  EXPECT_EQ(status.reapply_pending(0).namespace_(), kNamespace);
  EXPECT_EQ(status.reapply_pending(0).namespace_id(), namespace_id_);
  EXPECT_EQ(status.reapply_pending(0).runs(), 1);
  ASSERT_EQ(status.reapply_pending(0).listed_size(), 1);
  EXPECT_EQ(status.reapply_pending(0).listed(0).workflow_id(), kWorkflow);
  EXPECT_EQ(status.reapply_pending(0).listed(0).run_id(), run);
  CommandResult east_status = RunCommand(Xdcctl(east, "status"));
  EXPECT_EQ(east_status.exit_code, 0) << east_status.output;
  EXPECT_THAT(east_status.output, HasSubstr("1 runs reapply_pending"));
  EXPECT_THAT(east_status.output, HasSubstr("namespace orders: 1 runs"));
  EXPECT_THAT(east_status.output, HasSubstr(absl::StrCat("workflow ", kWorkflow, " run ", run)));
  EXPECT_EQ(GetStatus(*west_client_).reapply_pending_runs(), 0);

  // West hears east: it reapplies the signal, and once the copy reaches east nothing is pending.
  west_holds_east.reset();
  ASSERT_TRUE(WaitUntil([&] {
    status = GetStatus(*east_client_);
    return status.reapply_pending_runs() == 0 && status.reapply_pending().empty();
  })) << status.ShortDebugString();
  EXPECT_THAT(RunCommand(Xdcctl(east, "status")).output, Not(HasSubstr("reapply_pending")));
  WaitForConvergence();
  // Every cluster keeps the losing branch, with the same events.
  absl::StatusOr<GetHistoryResponse> west_current = History(*west_client_, "");
  ASSERT_TRUE(west_current.ok()) << west_current.status();
  const int west_losing = BranchEndingAtVersion(west_current->version_histories(), 1);
  ASSERT_GE(west_losing, 0) << west_current->ShortDebugString();
  absl::StatusOr<GetHistoryResponse> west_lost =
      History(*west_client_, absl::StrCat("&branch=", west_losing));
  ASSERT_TRUE(west_lost.ok()) << west_lost.status();
  ASSERT_EQ(west_lost->events_size(), lost->events_size());
  for (int i = 0; i < lost->events_size(); ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals(west_lost->events(i), lost->events(i))) << i;
  }
  EXPECT_EQ(west_lost->digest(), lost->digest());
}

TEST_F(BranchHistoryTest, ABranchThatIsNotAnIndexOrOutOfRangeIsRefusedNamingTheRange) {
  AppendRequest start = Append(kNamespace, kWorkflow, 1, {Event(WORKFLOW_EXECUTION_STARTED)});
  AppendResponse started;
  ASSERT_TRUE(east_client_->Call("POST", "/v1/append", &start, started).ok());
  const std::string path = absl::StrCat("/v1/history?namespace=orders&workflow_id=", kWorkflow);
  for (const char* bad : {"abc", "-1", "1.5", "99999999999999999999"}) {
    SCOPED_TRACE(bad);
    ApiError error = RequestError(*east_client_, "GET", absl::StrCat(path, "&branch=", bad));
    EXPECT_EQ(error.http_status, 400) << error.body;
    EXPECT_EQ(error.error.code(), "INVALID_ARGUMENT");
    EXPECT_THAT(error.error.message(),
                HasSubstr("query parameter 'branch' must be a branch index, a number from 0 to 0"));
    EXPECT_THAT(error.error.message(), HasSubstr("has 1 branch, 0 to 0 (the current one is 0)"));
  }
  ApiError missing = RequestError(*east_client_, "GET", path + "&branch=1");
  EXPECT_EQ(missing.http_status, 404) << missing.body;
  EXPECT_EQ(missing.error.code(), "NOT_FOUND");
  EXPECT_THAT(missing.error.message(),
              HasSubstr(absl::StrCat("branch 1 does not exist: workflow '", kWorkflow, "' run '",
                                     started.run_id(), "' has 1 branch, 0 to 0")));
  // An empty value is the default, the current branch.
  GetHistoryResponse history;
  ASSERT_TRUE(east_client_->Call("GET", path + "&branch=", nullptr, history).ok());
  EXPECT_EQ(history.branch(), 0);
  EXPECT_TRUE(history.current_branch());
  EXPECT_EQ(history.shared_with_current_through_event_id(), 1);

  // xdcctl checks the value itself (usage, exit 2), and passes the server's 404 on (exit 1).
  const std::string east = east_->http_address();
  const std::string history_command =
      absl::StrCat("history --namespace orders --workflow-id ", kWorkflow);
  CommandResult not_a_number = RunCommand(Xdcctl(east, history_command + " --branch one"));
  EXPECT_EQ(not_a_number.exit_code, 2) << not_a_number.output;
  EXPECT_THAT(not_a_number.output, HasSubstr("--branch takes a branch index"));
  CommandResult both = RunCommand(Xdcctl(east, history_command + " --branch 0 --branches"));
  EXPECT_EQ(both.exit_code, 2) << both.output;
  CommandResult out_of_range = RunCommand(Xdcctl(east, history_command + " --branch 3"));
  EXPECT_EQ(out_of_range.exit_code, 1) << out_of_range.output;
  EXPECT_THAT(out_of_range.output, HasSubstr("branch 3 does not exist"));
  CommandResult current = RunCommand(Xdcctl(east, history_command + " --branch 0"));
  EXPECT_EQ(current.exit_code, 0) << current.output;
  EXPECT_THAT(current.output, HasSubstr("events of branch 0 (current):"));
}

// The time and source of the record each cluster holds are local (the replicated records stay
// equal), change when a newer record is stored, and survive a restart.
TEST_F(BranchHistoryTest, EachClusterKeepsWhenAndFromWhomItLearnedTheRecordAcrossARestart) {
  const int64_t now = SystemNowMicros();
  const DescribeNamespaceResponse east_first = Describe(*east_client_);
  EXPECT_EQ(east_first.record_learned_from(), "east");  // registered there
  EXPECT_GT(east_first.record_learned_unix_micros(), now - 120'000'000);
  EXPECT_LE(east_first.record_learned_unix_micros(), now);
  const DescribeNamespaceResponse west_first = Describe(*west_client_);
  EXPECT_EQ(west_first.record_learned_from(), "east");  // merged from east's control topic
  EXPECT_GE(west_first.record_learned_unix_micros(), east_first.record_learned_unix_micros());
  EXPECT_LE(west_first.record_learned_unix_micros(), now);
  EXPECT_TRUE(MessageDifferencer::Equals(GetRecord(*east_client_, kNamespace),
                                         GetRecord(*west_client_, kNamespace)));

  ASSERT_NO_FATAL_FAILURE(StopWest());
  ASSERT_NO_FATAL_FAILURE(StartWest());
  const DescribeNamespaceResponse west_restarted = Describe(*west_client_);
  EXPECT_EQ(west_restarted.record_learned_unix_micros(), west_first.record_learned_unix_micros());
  EXPECT_EQ(west_restarted.record_learned_from(), "east");

  // A forced failover is a newer record: west stores it itself, east learns it from west.
  const int64_t before_failover = SystemNowMicros();
  ASSERT_EQ(ForceFailoverToWest().failover_version(), 2);
  const DescribeNamespaceResponse west_forced = Describe(*west_client_);
  EXPECT_EQ(west_forced.record_learned_from(), "west");
  EXPECT_GE(west_forced.record_learned_unix_micros(), before_failover);
  DescribeNamespaceResponse east_learned;
  ASSERT_TRUE(WaitUntil([&] {
    east_learned = Describe(*east_client_);
    return east_learned.namespace_().active_cluster() == "west";
  }));
  EXPECT_EQ(east_learned.record_learned_from(), "west");
  EXPECT_GE(east_learned.record_learned_unix_micros(), west_forced.record_learned_unix_micros());
  CommandResult described = RunCommand(Xdcctl(east_->http_address(), "namespace describe orders"));
  EXPECT_EQ(described.exit_code, 0) << described.output;
  EXPECT_THAT(described.output, HasSubstr("record learned at 20"));
  EXPECT_THAT(described.output, HasSubstr(" from west"));

  ASSERT_NO_FATAL_FAILURE(StopWest());
  ASSERT_NO_FATAL_FAILURE(StartWest());
  const DescribeNamespaceResponse west_again = Describe(*west_client_);
  EXPECT_EQ(west_again.record_learned_unix_micros(), west_forced.record_learned_unix_micros());
  EXPECT_EQ(west_again.record_learned_from(), "west");
}

}  // namespace
}  // namespace xdc
