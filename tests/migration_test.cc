// Federation membership online and migration backfill (docs/migration.md), with whole clusters
// in one process on a Kafka mock the test owns (so a cluster that joins later finds its topics):
// a third cluster joins while the namespace takes writes and replicates both ways; clusters that
// do not fit are refused; a removed member stops applying; and 10,000 workflows that existed
// before a member joined are backfilled to it under steady writes, with live replication lag
// bounded meanwhile and every acknowledged write on the target.
#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "protocol/branch_tasks.h"
#include "protocol/federation.h"
#include "protocol/namespace_record.h"
#include "replicator/backfill_topic.h"
#include "replicator/xdcctl_load.h"
#include "tests/ledger_client.h"
#include "tests/migration_clusters.h"
#include "tests/process_clusters.h"
#include "tests/run_command.h"
#include "tests/two_clusters.h"

namespace xdc {
namespace {

using migration::JoinOnExit;
using migration::kNamespace;
using migration::kShards;
using migration::MigrationClusters;
using migration::WriteSmallWorkflows;

using ::testing::AllOf;
using ::testing::HasSubstr;

// --- pure rules (protocol/federation.h, protocol/branch_tasks.h) ---

DaemonConfig TwoClusters() {
  DaemonConfig config = MakeConfig("east", "/unused", "", kShards);
  config.mutable_kafka()->set_bootstrap_servers("unused:9092");
  return config;
}

NamespaceRecord Orders(std::vector<std::string> members) {
  NamespaceRecord record;
  record.set_id("id-1");
  record.set_name(kNamespace);
  for (const std::string& member : members) record.add_clusters(member);
  record.set_active_cluster("east");
  record.set_failover_version(1);
  record.set_state(NAMESPACE_STATE_ACTIVE);
  record.set_config_version(7);
  return record;
}

NamespaceClustersRequest Members(const std::string& add, const std::string& remove) {
  NamespaceClustersRequest request;
  request.set_add(add);
  request.set_remove(remove);
  return request;
}

TEST(FederationRules, ANamespaceMemberChangeBumpsTheConfigVersionOnce) {
  const DaemonConfig config = TwoClusters();
  auto added = ChangeNamespaceMembers(Orders({"east"}), Members("west", ""), "east", config);
  ASSERT_TRUE(added.ok()) << added.status();
  ASSERT_TRUE(added->has_value());
  EXPECT_EQ((*added)->config_version(), 8);
  EXPECT_THAT((*added)->clusters(), ::testing::ElementsAre("east", "west"));
  // Retried: nothing changes.
  auto again = ChangeNamespaceMembers(**added, Members("west", ""), "east", config);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->has_value());
  auto removed = ChangeNamespaceMembers(**added, Members("", "west"), "east", config);
  ASSERT_TRUE(removed.ok() && removed->has_value());
  EXPECT_THAT((*removed)->clusters(), ::testing::ElementsAre("east"));
  EXPECT_EQ((*removed)->config_version(), 9);
}

TEST(FederationRules, AMemberAddedLateAwaitsItsHistoryUntilVerified) {
  const DaemonConfig config = TwoClusters();
  auto added = ChangeNamespaceMembers(Orders({"east"}), Members("west", ""), "east", config);
  ASSERT_TRUE(added.ok() && added->has_value());
  EXPECT_THAT((*added)->members_awaiting_history(), ::testing::ElementsAre("west"));
  EXPECT_TRUE(AwaitsHistory(**added, "west"));
  EXPECT_FALSE(AwaitsHistory(**added, "east"));
  // A handover to it is refused unless the caller verified the content.
  absl::Status refused = CheckTargetHoldsHistory(**added, "west", /*verified_identical=*/false);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.message(), HasSubstr("xdcctl migration cutover"));
  EXPECT_TRUE(CheckTargetHoldsHistory(**added, "west", /*verified_identical=*/true).ok());
  EXPECT_TRUE(CheckTargetHoldsHistory(**added, "east", /*verified_identical=*/false).ok());
  // Verified: a settings change of its own.
  std::optional<NamespaceRecord> verified = HistoryVerified(**added, "west");
  ASSERT_TRUE(verified.has_value());
  EXPECT_THAT(verified->members_awaiting_history(), ::testing::IsEmpty());
  EXPECT_EQ(verified->config_version(), (*added)->config_version() + 1);
  EXPECT_FALSE(HistoryVerified(*verified, "west").has_value());
  // Peers take the list with the settings (by config_version), and drop it likewise.
  std::optional<NamespaceRecord> merged = MergeNamespaceRecord(*verified, **added);
  EXPECT_FALSE(merged.has_value());  // older settings change nothing
  merged = MergeNamespaceRecord(Orders({"east"}), **added);
  ASSERT_TRUE(merged.has_value());
  EXPECT_THAT(merged->members_awaiting_history(), ::testing::ElementsAre("west"));
  merged = MergeNamespaceRecord(**added, *verified);
  ASSERT_TRUE(merged.has_value());
  EXPECT_THAT(merged->members_awaiting_history(), ::testing::IsEmpty());
  // Removed, it leaves the list; added again, it awaits again.
  auto removed = ChangeNamespaceMembers(**added, Members("", "west"), "east", config);
  ASSERT_TRUE(removed.ok() && removed->has_value());
  EXPECT_THAT((*removed)->members_awaiting_history(), ::testing::IsEmpty());
  auto readded = ChangeNamespaceMembers(*verified, Members("", "west"), "east", config);
  ASSERT_TRUE(readded.ok() && readded->has_value());
  readded = ChangeNamespaceMembers(**readded, Members("west", ""), "east", config);
  ASSERT_TRUE(readded.ok() && readded->has_value());
  EXPECT_THAT((*readded)->members_awaiting_history(), ::testing::ElementsAre("west"));
}

// Both sides of a split brain change the members at the same config_version: every cluster
// ends with the same list whichever order the records meet in (each kept its own for good).
TEST(FederationRules, MemberChangesOnBothSidesOfASplitBrainConverge) {
  const DaemonConfig config = TwoClusters();
  const NamespaceRecord base = Orders({"east", "west"});
  auto on_east = ChangeNamespaceMembers(base, Members("", "west"), "east", config);
  NamespaceRecord forced = base;  // west forced a failover to itself during the partition
  forced.set_active_cluster("west");
  forced.set_failover_version(2);
  auto on_west = ChangeNamespaceMembers(forced, Members("", "east"), "west", config);
  ASSERT_TRUE(on_east.ok() && on_east->has_value() && on_west.ok() && on_west->has_value());
  ASSERT_EQ((*on_east)->config_version(), (*on_west)->config_version());
  // Each side merges the other's record.
  const NamespaceRecord east_view = MergeNamespaceRecord(**on_east, **on_west).value_or(**on_east);
  const NamespaceRecord west_view = MergeNamespaceRecord(**on_west, **on_east).value_or(**on_west);
  EXPECT_THAT(east_view.clusters(), ::testing::ElementsAreArray(west_view.clusters()));
  // The change made at the higher failover version wins, as the failover part does.
  EXPECT_THAT(east_view.clusters(), ::testing::ElementsAre("west"));
  EXPECT_EQ(east_view.active_cluster(), "west");
  // Converged: merging either way again changes nothing.
  EXPECT_FALSE(MergeNamespaceRecord(east_view, west_view).has_value());
  EXPECT_FALSE(MergeNamespaceRecord(west_view, east_view).has_value());
}

TEST(FederationRules, MemberChangesThatWouldBreakTheNamespaceAreRefused) {
  const DaemonConfig config = TwoClusters();
  // Only on the active cluster.
  EXPECT_EQ(ChangeNamespaceMembers(Orders({"east", "west"}), Members("", "east"), "west", config)
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
  // Not both, not neither.
  EXPECT_EQ(ChangeNamespaceMembers(Orders({"east"}), Members("west", "east"), "east", config)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      ChangeNamespaceMembers(Orders({"east"}), Members("", ""), "east", config).status().code(),
      absl::StatusCode::kInvalidArgument);
  // Not a handover's target.
  NamespaceRecord handing_over = Orders({"east", "west"});
  handing_over.set_state(NAMESPACE_STATE_HANDOVER);
  handing_over.mutable_handover()->set_target_cluster("west");
  auto refused = ChangeNamespaceMembers(handing_over, Members("", "west"), "east", config);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("handing over to 'west'"));
}

TEST(FederationRules, ANewClusterMustShareTheLayout) {
  const DaemonConfig config = TwoClusters();
  AddClusterRequest north;
  north.set_name("north");
  north.set_initial_failover_version(3);
  north.set_failover_version_increment(100);
  north.set_shard_count(kShards);
  EXPECT_TRUE(ValidateNewCluster(config, north).ok());
  AddClusterRequest known = north;
  known.set_name("west");
  known.set_initial_failover_version(2);
  EXPECT_EQ(ValidateNewCluster(config, known).code(), absl::StatusCode::kAlreadyExists);
  AddClusterRequest zero = north;
  zero.set_initial_failover_version(0);
  EXPECT_EQ(ValidateNewCluster(config, zero).code(), absl::StatusCode::kInvalidArgument);
}

TEST(BranchTasks, ABranchSplitsIntoOrderedTasksEachWithItsHistoryPrefix) {
  WorkflowKey key;
  key.set_namespace_id("ns");
  key.set_workflow_id("wf");
  key.set_run_id("run");
  VersionHistory branch;
  VersionHistoryItem* first = branch.add_items();
  first->set_event_id(3);
  first->set_version(1);
  VersionHistoryItem* second = branch.add_items();
  second->set_event_id(5);
  second->set_version(2);
  std::vector<HistoryEvent> events;
  for (int64_t id = 1; id <= 5; ++id) {
    HistoryEvent event;
    event.set_event_id(id);
    event.set_version(id <= 3 ? 1 : 2);
    events.push_back(event);
  }
  absl::StatusOr<std::vector<ReplicationTask>> tasks =
      SplitBranchIntoTasks(key, branch, events, /*max_events=*/2, /*max_bytes=*/1 << 20);
  ASSERT_TRUE(tasks.ok()) << tasks.status();
  ASSERT_EQ(tasks->size(), 3u);
  EXPECT_EQ((*tasks)[0].events(0).event_id(), 1);
  EXPECT_EQ((*tasks)[1].events(0).event_id(), 3);
  EXPECT_EQ((*tasks)[2].events(0).event_id(), 5);
  // The second task ends at event 4: its history is (3, v1), (4, v2).
  ASSERT_EQ((*tasks)[1].version_history_items_size(), 2);
  EXPECT_EQ((*tasks)[1].version_history_items(1).event_id(), 4);
  EXPECT_EQ((*tasks)[2].version_history_items(1).event_id(), 5);
}

// The fixture of the tests below (tests/migration_clusters.h).
class MigrationTest : public MigrationClusters {
 protected:
  // East and west run; orders is registered on east alone, with `runs` workflows written there
  // that west (not a member) skipped or will skip.
  void StartWithRunsWestIsNotAMemberOf(int runs) {
    ASSERT_NO_FATAL_FAILURE(Start("east"));
    ASSERT_NO_FATAL_FAILURE(Start("west"));
    ASSERT_NO_FATAL_FAILURE(Register({"east"}));
    ASSERT_TRUE(WaitUntil([&] { return !Record("west").id().empty(); }));
    ASSERT_NO_FATAL_FAILURE(WriteSmallWorkflows(AddressOf("east"), runs));
  }

  void AddWestToTheNamespace() {
    ASSERT_TRUE(ChangeMembers("east", "west", "").ok());
    ASSERT_TRUE(WaitUntil([&] { return IsNamespaceMember(Record("west"), "west"); }));
  }

  // East's backfill of the namespace as GET /v1/namespaces/orders/backfill answers it; false if
  // the request failed.
  bool BackfillStatus(MigrationStatusResponse& status) {
    return Client("east")
        .Call("GET", absl::StrCat("/v1/namespaces/", kNamespace, "/backfill"), nullptr, status)
        .ok();
  }
};

TEST_F(MigrationTest, AThirdClusterJoinsOnlineWhileTheNamespaceTakesWrites) {
  ASSERT_NO_FATAL_FAILURE(Start("east"));
  ASSERT_NO_FATAL_FAILURE(Start("west"));
  ASSERT_NO_FATAL_FAILURE(Register({"east", "west"}));
  ASSERT_TRUE(WaitUntil([&] { return !Record("west").id().empty(); }));
  LedgerClient load([&](const std::string& cluster) { return AddressOf(cluster); }, "east",
                    kNamespace, LedgerClient::TransportErrors::kFail);
  std::atomic<bool> stop{false};
  std::thread writer([&] { load.Run(stop); });
  JoinOnExit join_writer{stop, writer};
  ASSERT_TRUE(WaitUntil([&] { return load.acked_count() >= 50; }));

  // North starts with a config that lists all three; east and west learn of it online.
  ASSERT_NO_FATAL_FAILURE(Start("north"));
  for (const char* existing : {"east", "west"}) {
    absl::StatusOr<ListClustersResponse> added = AddNorth(existing);
    ASSERT_TRUE(added.ok()) << existing << ": " << added.status();
    ASSERT_EQ(added->clusters_size(), 3);
    EXPECT_EQ(added->clusters(2).name(), "north");
    EXPECT_FALSE(added->clusters(2).from_config());
    // A retried request changes nothing.
    ASSERT_TRUE(AddNorth(existing).ok());
  }
  const size_t before_add = load.acked_count();
  absl::StatusOr<NamespaceRecord> changed = ChangeMembers("east", "north", "");
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_EQ(changed->config_version(), 2);
  EXPECT_THAT(changed->clusters(), ::testing::ElementsAre("east", "west", "north"));
  ASSERT_TRUE(WaitUntil([&] {
    return IsNamespaceMember(Record("north"), "north") &&
           IsNamespaceMember(Record("west"), "north");
  }));
  // The namespace kept taking writes throughout.
  ASSERT_TRUE(WaitUntil([&] { return load.acked_count() >= before_add + 100; }));

  // A workflow started after north became a member replicates to it whole.
  HttpClient east_client(AddressOf("east"));
  ASSERT_TRUE(WriteWorkflow(east_client, kNamespace, "after-join", true).ok());
  ASSERT_TRUE(WaitUntil([&] {
    GetHistoryResponse east_history;
    GetHistoryResponse north_history;
    const std::string target =
        absl::StrCat("/v1/history?namespace=", kNamespace, "&workflow_id=after-join");
    return Client("east").Call("GET", target, nullptr, east_history).ok() &&
           Client("north").Call("GET", target, nullptr, north_history).ok() &&
           east_history.digest() == north_history.digest();
  }));

  // Every write acknowledged so far is on all three (north got the runs it missed at their
  // next write through a resend, the rest live).
  stop = true;
  writer.join();
  ASSERT_THAT(load.errors_, ::testing::IsEmpty());
  for (const char* standby : {"west", "north"}) {
    ASSERT_TRUE(WaitUntil([&] { return SameDigests("east", standby); })) << standby;
    ASSERT_NO_FATAL_FAILURE(ExpectAckedOn(load, standby));
  }

  // The membership survives a restart of east (it is in east's store, not its config file).
  Stop("east");
  ASSERT_NO_FATAL_FAILURE(Start("east"));
  ListClustersResponse listed;
  ASSERT_TRUE(Client("east").Call("GET", "/v1/clusters", nullptr, listed).ok());
  ASSERT_EQ(listed.clusters_size(), 3);

  // Three clusters work both ways: hand the namespace over to north, write there (new runs of
  // the load's workflows), and east and west apply north's stream (their appliers for it
  // started online).
  FailoverRequest to_north;
  to_north.set_target_cluster("north");
  // North joined after the namespace had runs: the digests compared above show it holds them
  // (what `xdcctl migration cutover` verifies before it sets this).
  to_north.set_target_verified_identical(true);
  NamespaceRecord started;
  ASSERT_TRUE(Client("east")
                  .Call("POST", absl::StrCat("/v1/namespaces/", kNamespace, "/failover"), &to_north,
                        started)
                  .ok());
  ASSERT_TRUE(WaitUntil([&] { return Record("east").active_cluster() == "north"; }));
  LedgerClient north_load([&](const std::string& cluster) { return AddressOf(cluster); }, "north",
                          kNamespace, LedgerClient::TransportErrors::kFail);
  std::atomic<bool> stop_north{false};
  std::thread north_writer([&] { north_load.Run(stop_north); });
  const bool north_wrote =
      WaitUntil([&] { return north_load.acked_at(3) >= 50; });  // north owns version 3
  stop_north = true;
  north_writer.join();
  ASSERT_TRUE(north_wrote);
  ASSERT_THAT(north_load.errors_, ::testing::IsEmpty());
  for (const char* standby : {"east", "west"}) {
    ASSERT_TRUE(WaitUntil([&] { return SameDigests("north", standby); })) << standby;
    ASSERT_NO_FATAL_FAILURE(ExpectAckedOn(north_load, standby));
  }
}

TEST_F(MigrationTest, ClustersThatDoNotFitAreRefusedWithTheReason) {
  ASSERT_NO_FATAL_FAILURE(Start("east"));
  ASSERT_NO_FATAL_FAILURE(Register({"east"}));
  auto refused = [&](const AddClusterRequest& request) {
    return RequestError(Client("east"), "POST", "/v1/clusters", JsonOf(request));
  };
  AddClusterRequest good;
  good.set_name("north");
  good.set_initial_failover_version(3);
  good.set_failover_version_increment(100);
  good.set_shard_count(kShards);

  AddClusterRequest increment = good;
  increment.set_failover_version_increment(1000);
  ApiError error = refused(increment);
  EXPECT_EQ(error.http_status, 400);
  EXPECT_THAT(error.error.message(), HasSubstr("failover_version_increment 1000"));
  EXPECT_THAT(error.error.message(), HasSubstr("uses 100"));

  AddClusterRequest shards = good;
  shards.set_shard_count(kShards * 2);
  error = refused(shards);
  EXPECT_EQ(error.http_status, 400);
  EXPECT_THAT(error.error.message(), HasSubstr("shard_count 16"));

  AddClusterRequest duplicate = good;
  duplicate.set_initial_failover_version(2);  // west's
  error = refused(duplicate);
  EXPECT_EQ(error.http_status, 400);
  EXPECT_THAT(error.error.message(), HasSubstr("already used by cluster 'west'"));

  AddClusterRequest out_of_range = good;
  out_of_range.set_initial_failover_version(100);
  error = refused(out_of_range);
  EXPECT_EQ(error.http_status, 400);
  EXPECT_THAT(error.error.message(), HasSubstr("initial_failover_version 100"));

  AddClusterRequest bad_name = good;
  bad_name.set_name("no/slash");
  error = refused(bad_name);
  EXPECT_EQ(error.http_status, 400);
  EXPECT_THAT(error.error.message(), HasSubstr("may only contain"));

  // Nothing was added by the refusals.
  ListClustersResponse listed;
  ASSERT_TRUE(Client("east").Call("GET", "/v1/clusters", nullptr, listed).ok());
  EXPECT_EQ(listed.clusters_size(), 2);

  ASSERT_TRUE(AddNorth("east").ok());
  AddClusterRequest renumbered = good;
  renumbered.set_initial_failover_version(4);
  error = refused(renumbered);
  EXPECT_EQ(error.http_status, 409);
  EXPECT_THAT(error.error.message(), HasSubstr("never changes"));

  // Namespace members: only clusters of the federation; not the active one; only on the
  // active cluster; a config-file cluster or a member cannot leave the federation online.
  error =
      RequestError(Client("east"), "POST", absl::StrCat("/v1/namespaces/", kNamespace, "/clusters"),
                   R"({"add":"south"})");
  EXPECT_EQ(error.http_status, 400);
  EXPECT_THAT(error.error.message(), HasSubstr("not in the federation"));
  error =
      RequestError(Client("east"), "POST", absl::StrCat("/v1/namespaces/", kNamespace, "/clusters"),
                   R"({"remove":"east"})");
  EXPECT_EQ(error.http_status, 409);
  EXPECT_THAT(error.error.message(), HasSubstr("is the active cluster"));
  ASSERT_TRUE(ChangeMembers("east", "north", "").ok());
  error = RequestError(Client("east"), "POST", "/v1/clusters/north/remove");
  EXPECT_EQ(error.http_status, 409);
  EXPECT_THAT(error.error.message(), HasSubstr("still a member of namespace(s) orders"));
  error = RequestError(Client("east"), "POST", "/v1/clusters/west/remove");
  EXPECT_EQ(error.http_status, 409);
  EXPECT_THAT(error.error.message(), HasSubstr("config file"));
  ASSERT_TRUE(ChangeMembers("east", "", "north").ok());
  ListClustersResponse after_remove;
  ASSERT_TRUE(Client("east").Call("POST", "/v1/clusters/north/remove", nullptr, after_remove).ok());
  EXPECT_EQ(after_remove.clusters_size(), 2);
  // And it stays removed across a restart.
  Stop("east");
  ASSERT_NO_FATAL_FAILURE(Start("east"));
  ASSERT_TRUE(Client("east").Call("GET", "/v1/clusters", nullptr, listed).ok());
  EXPECT_EQ(listed.clusters_size(), 2);
}

TEST_F(MigrationTest, ARemovedMemberStopsApplyingTheNamespace) {
  ASSERT_NO_FATAL_FAILURE(Start("east"));
  ASSERT_NO_FATAL_FAILURE(Start("west"));
  ASSERT_NO_FATAL_FAILURE(Register({"east", "west"}));
  HttpClient east(AddressOf("east"));
  ASSERT_TRUE(WriteWorkflow(east, kNamespace, "before", false).ok());
  ASSERT_TRUE(WaitUntil([&] { return SameDigests("east", "west"); }));

  absl::StatusOr<NamespaceRecord> removed = ChangeMembers("east", "", "west");
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_THAT(removed->clusters(), ::testing::ElementsAre("east"));
  ASSERT_TRUE(WaitUntil([&] { return Record("west").config_version() == 2; }));
  // Failing over to a cluster that is no longer a member is refused.
  FailoverRequest to_west;
  to_west.set_target_cluster("west");
  ApiError error =
      RequestError(Client("east"), "POST", absl::StrCat("/v1/namespaces/", kNamespace, "/failover"),
                   JsonOf(to_west));
  EXPECT_EQ(error.http_status, 400);
  EXPECT_THAT(error.error.message(), HasSubstr("not a member"));

  ASSERT_TRUE(WriteWorkflow(east, kNamespace, "after", true).ok());
  // West consumed east's new tasks and skipped them whole: nothing of them applied.
  ASSERT_TRUE(WaitUntil([&] {
    int64_t skipped = 0;
    int64_t lag = 0;
    for (const PeerShardStatus& shard : PeerStatus("west", "east")) {
      skipped += shard.tasks_skipped_not_member();
      lag += shard.lag_tasks();
    }
    return skipped >= 4 && lag == 0;
  }));
  ApiError missing =
      RequestError(Client("west"), "GET",
                   absl::StrCat("/v1/history?namespace=", kNamespace, "&workflow_id=after"));
  EXPECT_EQ(missing.http_status, 404);
  EXPECT_EQ(GetStatus(Client("west")).parked_tasks(), 0);
  // East is unaffected.
  HttpClient east_again(AddressOf("east"));
  ASSERT_TRUE(WriteWorkflow(east_again, kNamespace, "still-writing", true).ok());
}

// A member that joins late skipped the namespace's tasks until then (issue: a handover to it
// activated without the runs written before it joined). A plain graceful handover to it is refused
// with what to run; a completed backfill alone does not clear it, a content comparison does, and
// the handover then leaves every acknowledged run on the new active cluster. Removing and
// re-adding the member makes it wait again.
TEST_F(MigrationTest, AHandoverToAMemberThatJoinedLateIsRefusedUntilItHoldsTheHistory) {
  constexpr int kPreExisting = 20;
  ASSERT_NO_FATAL_FAILURE(StartWithRunsWestIsNotAMemberOf(kPreExisting));
  // West consumed every task of them and skipped it whole (it was not a member).
  ASSERT_TRUE(WaitUntil([&] {
    int64_t skipped = 0;
    for (const PeerShardStatus& shard : PeerStatus("west", "east")) {
      skipped += shard.tasks_skipped_not_member();
    }
    return skipped >= kPreExisting;
  }));
  ASSERT_NO_FATAL_FAILURE(AddWestToTheNamespace());

  const std::string failover = absl::StrCat("/v1/namespaces/", kNamespace, "/failover");
  auto expect_refused = [&](const char* when) {
    ApiError error = RequestError(Client("east"), "POST", failover, R"({"target_cluster":"west"})");
    EXPECT_EQ(error.http_status, 409) << when;
    EXPECT_THAT(error.error.message(),
                AllOf(HasSubstr("'west' joined namespace 'orders' after it was registered"),
                      HasSubstr("xdcctl migration start --namespace orders --target west"),
                      HasSubstr("xdcctl migration cutover")))
        << when;
    // Nothing changed: east is still active and takes writes.
    EXPECT_EQ(Record("east").state(), NAMESPACE_STATE_ACTIVE) << when;
    EXPECT_EQ(Record("east").active_cluster(), "east") << when;
  };
  ASSERT_NO_FATAL_FAILURE(expect_refused("before the backfill"));
  HttpClient east(AddressOf("east"));
  ASSERT_TRUE(WriteWorkflow(east, kNamespace, "after-refusal", true).ok());

  // The backfill brings the runs west skipped; it alone does not clear the check (it says what
  // was published, not what west applied).
  StartMigrationRequest start;
  start.set_target_cluster("west");
  MigrationStatusResponse status;
  ASSERT_TRUE(
      Client("east")
          .Call("POST", absl::StrCat("/v1/namespaces/", kNamespace, "/backfill"), &start, status)
          .ok());
  ASSERT_TRUE(WaitUntil([&] {
    return BackfillStatus(status) && status.backfill().phase() == BACKFILL_PHASE_COMPLETED;
  }));
  ASSERT_NO_FATAL_FAILURE(expect_refused("after the backfill"));

  // What `xdcctl migration cutover` does: compare the content, then hand over saying so.
  ASSERT_TRUE(WaitUntil([&] { return SameDigests("east", "west"); }));
  FailoverRequest verified;
  verified.set_target_cluster("west");
  verified.set_target_verified_identical(true);
  NamespaceRecord started;
  ASSERT_TRUE(Client("east").Call("POST", failover, &verified, started).ok());
  ASSERT_TRUE(WaitUntil([&] {
    return Record("east").active_cluster() == "west" && Record("west").active_cluster() == "west";
  }));
  EXPECT_THAT(Record("west").members_awaiting_history(), ::testing::IsEmpty());
  for (int i = 0; i < kPreExisting; ++i) {
    GetHistoryResponse history;
    absl::Status read = Client("west").Call(
        "GET", absl::StrFormat("/v1/history?namespace=%s&workflow_id=old-%06d", kNamespace, i),
        nullptr, history);
    EXPECT_TRUE(read.ok()) << "run " << i << " is not on west after the handover: " << read;
  }

  // Removed and added again, east waits for its history in turn.
  ASSERT_TRUE(ChangeMembers("west", "", "east").ok());
  absl::StatusOr<NamespaceRecord> readded = ChangeMembers("west", "east", "");
  ASSERT_TRUE(readded.ok()) << readded.status();
  EXPECT_THAT(readded->members_awaiting_history(), ::testing::ElementsAre("east"));
  ApiError error = RequestError(Client("west"), "POST", failover, R"({"target_cluster":"east"})");
  EXPECT_EQ(error.http_status, 409);
  EXPECT_THAT(error.error.message(), HasSubstr("'east' joined namespace 'orders' after"));
}

// A backfill step whose messages Kafka did not deliver (the broker was down for longer than
// message.timeout.ms) is not counted: the cursor stays, the step is retried, and the backfill
// completes only once every run reached the target (it reported COMPLETED with runs lost, as
// rd_kafka_flush succeeds once failed messages left the queue).
TEST_F(MigrationTest, ABackfillStepKafkaDidNotDeliverIsRetriedNotSkipped) {
  if (kafka_ == nullptr) GTEST_SKIP() << "needs the embedded mock to take its broker down";
  constexpr int kPreExisting = 20;
  kafka_properties_["message.timeout.ms"] = "1500";
  ASSERT_NO_FATAL_FAILURE(StartWithRunsWestIsNotAMemberOf(kPreExisting));
  ASSERT_NO_FATAL_FAILURE(AddWestToTheNamespace());

  ASSERT_TRUE(kafka_->SetBrokerDown(1).ok());
  StartMigrationRequest start;
  start.set_target_cluster("west");
  MigrationStatusResponse status;
  const std::string backfill = absl::StrCat("/v1/namespaces/", kNamespace, "/backfill");
  ASSERT_TRUE(Client("east").Call("POST", backfill, &start, status).ok());
  // The first step's messages time out: the step fails and says why, or (the bug) it completes.
  ASSERT_TRUE(WaitUntil([&] {
    return BackfillStatus(status) && (status.backfill().phase() == BACKFILL_PHASE_COMPLETED ||
                                      !status.backfill().error().empty());
  }));
  EXPECT_EQ(status.backfill().phase(), BACKFILL_PHASE_RUNNING);
  EXPECT_THAT(status.backfill().error(), HasSubstr("Kafka did not deliver"));
  EXPECT_EQ(status.workflows_done(), 0);

  ASSERT_TRUE(kafka_->SetBrokerUp(1).ok());
  ASSERT_TRUE(WaitUntil(
      [&] {
        return BackfillStatus(status) && status.backfill().phase() == BACKFILL_PHASE_COMPLETED;
      },
      std::chrono::seconds(60)))
      << status.DebugString();
  EXPECT_EQ(status.workflows_done(), kPreExisting);
  // Every run reached west.
  ASSERT_TRUE(WaitUntil([&] { return SameDigests("east", "west"); }));
}

TEST_F(MigrationTest, BackfillsTenThousandWorkflowsUnderLoadWithLiveLagBounded) {
  constexpr int kPreExisting = 10000;
  // s: live replication lag the target may show while the backfill runs (the daemon's readiness
  // bound, tunables.readyz_max_lag_seconds, is 30 s).
  constexpr double kLiveLagBoundSeconds = 10;
  ASSERT_NO_FATAL_FAILURE(StartWithRunsWestIsNotAMemberOf(kPreExisting));

  // West joins the namespace; steady writes go on from here to the end.
  ASSERT_NO_FATAL_FAILURE(AddWestToTheNamespace());
  LedgerClient load([&](const std::string& cluster) { return AddressOf(cluster); }, "east",
                    kNamespace, LedgerClient::TransportErrors::kFail);
  std::atomic<bool> stop{false};
  std::thread writer([&] { load.Run(stop); });
  JoinOnExit join_writer{stop, writer};

  StartMigrationRequest start;
  start.set_target_cluster("west");
  start.set_rate_workflows_per_second(2500);
  MigrationStatusResponse status;
  ASSERT_TRUE(
      Client("east")
          .Call("POST", absl::StrCat("/v1/namespaces/", kNamespace, "/backfill"), &start, status)
          .ok());
  EXPECT_EQ(status.workflows_total(), kPreExisting);
  EXPECT_EQ(status.backfill().phase(), BACKFILL_PHASE_RUNNING);

  double max_live_lag = 0;
  int64_t samples_in_progress = 0;
  bool saw_rate = false;
  ASSERT_TRUE(WaitUntil(
      [&] {
        for (const PeerShardStatus& shard : PeerStatus("west", "east")) {
          max_live_lag = std::max(max_live_lag, shard.lag_seconds());
        }
        MigrationStatusResponse now;
        if (!Client("east")
                 .Call("GET", absl::StrCat("/v1/namespaces/", kNamespace, "/backfill"), nullptr,
                       now)
                 .ok()) {
          return false;
        }
        if (now.backfill().phase() == BACKFILL_PHASE_RUNNING) {
          ++samples_in_progress;
          saw_rate = saw_rate || now.rate_workflows_per_second() > 0;
        }
        status = now;
        return now.backfill().phase() == BACKFILL_PHASE_COMPLETED;
      },
      std::chrono::seconds(120)))
      << status.workflows_done() << " of " << status.workflows_total();
  std::printf("backfill: %lld runs; live lag at most %.2f s while it ran (%lld samples)\n",
              static_cast<long long>(status.workflows_done()), max_live_lag,
              static_cast<long long>(samples_in_progress));
  // Runs the load started after the count are walked (and counted) too.
  EXPECT_GE(status.workflows_done(), kPreExisting);
  EXPECT_EQ(status.workflows_done(), status.workflows_total());
  EXPECT_GT(samples_in_progress, 0);
  EXPECT_TRUE(saw_rate);
  EXPECT_LT(max_live_lag, kLiveLagBoundSeconds);

  stop = true;
  writer.join();
  ASSERT_THAT(load.errors_, ::testing::IsEmpty());
  ASSERT_TRUE(WaitUntil([&] { return SameDigests("east", "west"); }, std::chrono::seconds(60)));
  absl::StatusOr<ListDigestsResponse> digests = Digests(Client("west"), kNamespace);
  ASSERT_TRUE(digests.ok());
  EXPECT_EQ(digests->workflows_size(), kPreExisting + LedgerClient::kWorkflows);
  ASSERT_NO_FATAL_FAILURE(ExpectAckedOn(load, "west"));
}

// East and west as processes on their own Kafka mock process: west leaves the namespace, east
// writes workflows west skips, west rejoins, and the backfill (started and watched with xdcctl)
// survives a SIGKILL of the source and then of the target, resuming from its cursor each time.
class MigrationKillTest : public ProcessClustersTest {
 protected:
  static constexpr int kPreExisting = 3000;
  static constexpr int kRate = 400;  // runs/s: the backfill lasts several seconds

  MigrationKillTest() : ProcessClustersTest(kNamespace) {}

  CommandResult Ctl(const Cluster& cluster, const std::string& args) {
    return RunCommand(
        absl::StrCat(BinPath("xdcctl"), " --address ", cluster.endpoint.address(), " ", args));
  }

  MigrationStatusResponse BackfillStatus() {
    MigrationStatusResponse status;
    HttpClient east(east_->endpoint.address());
    absl::Status s =
        east.Call("GET", absl::StrCat("/v1/namespaces/", kNamespace, "/backfill"), nullptr, status);
    return s.ok() ? status : MigrationStatusResponse();
  }

  NamespaceRecord RecordOn(const Cluster& cluster) {
    NamespaceRecord record;
    HttpClient client(cluster.endpoint.address());
    absl::Status s =
        client.Call("GET", absl::StrCat("/v1/namespaces/", kNamespace), nullptr, record);
    return s.ok() ? record : NamespaceRecord();
  }

  bool Converged() {
    HttpClient east(east_->endpoint.address());
    HttpClient west(west_->endpoint.address());
    absl::StatusOr<ListDigestsResponse> left = Digests(east, kNamespace);
    absl::StatusOr<ListDigestsResponse> right = Digests(west, kNamespace);
    return left.ok() && right.ok() && left->workflows_size() == kPreExisting &&
           google::protobuf::util::MessageDifferencer::Equals(*left, *right);
  }
};

TEST_F(MigrationKillTest, BackfillResumesFromItsCursorAfterSigkillOfSourceAndTarget) {
  CommandResult removed =
      Ctl(*east_, absl::StrCat("namespace remove-cluster ", kNamespace, " --cluster west"));
  ASSERT_EQ(removed.exit_code, 0) << removed.output;
  ASSERT_TRUE(WaitUntil([&] { return !IsNamespaceMember(RecordOn(*west_), "west"); }));
  ASSERT_NO_FATAL_FAILURE(WriteSmallWorkflows(east_->endpoint.address(), kPreExisting));

  CommandResult added =
      Ctl(*east_, absl::StrCat("namespace add-cluster ", kNamespace, " --cluster west"));
  ASSERT_EQ(added.exit_code, 0) << added.output;
  CommandResult started =
      Ctl(*east_, absl::StrCat("migration start --namespace ", kNamespace, " --to west --rate ",
                               kRate, " --target-address ", west_->endpoint.address()));
  ASSERT_EQ(started.exit_code, 0) << started.output;
  EXPECT_THAT(started.output, HasSubstr("backfill running"));

  // SIGKILL the source a while in: it resumes from its stored cursor, not from zero.
  MigrationStatusResponse before;
  ASSERT_TRUE(WaitUntil([&] {
    before = BackfillStatus();
    return before.workflows_done() >= kPreExisting / 5;
  }));
  ASSERT_LT(before.workflows_done(), kPreExisting) << "the backfill ended before the kill";
  ASSERT_NO_FATAL_FAILURE(CrashCluster(*east_));
  ASSERT_NO_FATAL_FAILURE(StartCluster(*east_));
  MigrationStatusResponse resumed = BackfillStatus();
  EXPECT_EQ(resumed.backfill().resumed_count(), 1);
  EXPECT_GE(resumed.workflows_done(), before.workflows_done());
  EXPECT_LT(resumed.workflows_done(), kPreExisting);
  CommandResult shown = Ctl(*east_, absl::StrCat("migration status --namespace ", kNamespace));
  ASSERT_EQ(shown.exit_code, 0) << shown.output;
  EXPECT_THAT(shown.output, HasSubstr("resumed 1 times"));

  // SIGKILL the target a while later: its apply progress is in its store, so it goes on.
  ASSERT_TRUE(WaitUntil([&] {
    return BackfillStatus().workflows_done() >= resumed.workflows_done() + kPreExisting / 5;
  }));
  ASSERT_NO_FATAL_FAILURE(CrashCluster(*west_));
  ASSERT_NO_FATAL_FAILURE(StartCluster(*west_));

  MigrationStatusResponse done;
  ASSERT_TRUE(WaitUntil(
      [&] {
        done = BackfillStatus();
        return done.backfill().phase() == BACKFILL_PHASE_COMPLETED;
      },
      std::chrono::seconds(60)))
      << done.workflows_done() << " of " << done.workflows_total();
  EXPECT_EQ(done.workflows_done(), kPreExisting);
  EXPECT_EQ(done.backfill().resumed_count(), 1);
  ASSERT_TRUE(WaitUntil([&] { return Converged(); }, std::chrono::seconds(60)));
}

}  // namespace
}  // namespace xdc
