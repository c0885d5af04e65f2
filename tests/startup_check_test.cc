// The startup check's judgement (protocol/startup_check.h) and the record it moves to
// (MoveToFreshVersion): when a store is older than what its cluster published, and what it must
// continue from so that nothing it writes can be mistaken for what its lost state wrote.
#include "protocol/startup_check.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "protocol/handover.h"

namespace xdc {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

// East (initial version 1, increment 100), two shards at task ids 40 and 7, active for "ns-1" at
// version 101, in its 5th incarnation.
StartupSelf East() {
  StartupSelf self;
  self.cluster = "east";
  self.incarnation = 5;
  self.outbox_next_task_ids = {40, 7};
  self.active_versions = {{"ns-1", 101}};
  self.initial_failover_version = 1;
  self.failover_version_increment = 100;
  return self;
}

StartupReport Report(int64_t incarnation_seen, std::vector<int64_t> next_task_ids,
                     std::map<std::string, int64_t> versions = {{"ns-1", 101}}) {
  StartupReport report;
  report.set_cluster("east");
  report.set_incarnation(5);
  report.set_probe_id("p");
  report.set_highest_incarnation_seen(incarnation_seen);
  for (int64_t id : next_task_ids) report.add_next_task_ids(id);
  for (const auto& [id, version] : versions) (*report.mutable_failover_versions())[id] = version;
  return report;
}

TEST(JudgeStartupTest, AStoreHoldingEverythingItPublishedPasses) {
  // The peer applied up to our last tasks (next ids 40 and 7), from incarnation 4; our topic's
  // last messages are tasks 39 and 6.
  const StartupVerdict verdict = JudgeStartup(
      East(), {Report(4, {40, 7})},
      {PublishedTail{.shard = 0, .task_id = 39, .incarnation = 4, .highest_version = 101},
       PublishedTail{.shard = 1, .task_id = 6, .incarnation = 4, .highest_version = 101}});
  EXPECT_FALSE(verdict.restored) << verdict.why;
  EXPECT_THAT(verdict.task_id_floors, ElementsAre(40, 7));
}

TEST(JudgeStartupTest, APeerHoldingLaterTasksShowsARestoredStore) {
  const StartupVerdict verdict = JudgeStartup(East(), {Report(4, {55, 7})}, {});
  EXPECT_TRUE(verdict.restored);
  EXPECT_THAT(verdict.why, HasSubstr("holds task 54 of shard 0, our outbox is at 40"));
  EXPECT_THAT(verdict.task_id_floors, ElementsAre(55, 7));  // continue above what it holds
}

TEST(JudgeStartupTest, APeerThatSawThisIncarnationAlreadyShowsARestoredStore) {
  // Incarnation 5 published before (and this store, restored, opened as 5 again).
  const StartupVerdict verdict = JudgeStartup(East(), {Report(5, {40, 7})}, {});
  EXPECT_TRUE(verdict.restored);
  EXPECT_THAT(verdict.why, HasSubstr("saw store incarnation 5, this start is 5"));
}

TEST(JudgeStartupTest, OurOwnTopicShowsWhatLaggingPeersWillStillReceive) {
  const StartupVerdict verdict = JudgeStartup(
      East(), {Report(4, {40, 7})},
      {PublishedTail{.shard = 1, .task_id = 12, .incarnation = 5, .highest_version = 201}});
  EXPECT_TRUE(verdict.restored);
  EXPECT_THAT(verdict.task_id_floors, ElementsAre(40, 13));
  EXPECT_THAT(verdict.version_floors, UnorderedElementsAre(Pair("ns-1", 201)));
}

TEST(JudgeStartupTest, AVersionOfOursAPeerHoldsAboveOurRecordShowsALostRecordChange) {
  const StartupVerdict verdict = JudgeStartup(East(), {Report(4, {40, 7}, {{"ns-1", 301}})}, {});
  EXPECT_TRUE(verdict.restored);
  EXPECT_THAT(verdict.why, HasSubstr("failover version 301 of ours"));
  EXPECT_THAT(verdict.version_floors, UnorderedElementsAre(Pair("ns-1", 301)));
}

TEST(JudgeStartupTest, ANewerVersionOfAnotherClusterIsAFailoverNotARestore) {
  // West (initial version 2) took the namespace over at 202: its record will arrive here.
  const StartupVerdict verdict = JudgeStartup(East(), {Report(4, {40, 7}, {{"ns-1", 202}})}, {});
  EXPECT_FALSE(verdict.restored) << verdict.why;
}

TEST(StartupReportTest, AReportAnswersOnlyItsOwnProbe) {
  StartupProbe probe;
  probe.set_incarnation(5);
  probe.set_probe_id("p");
  ShardApplyProgress shard0;
  shard0.mutable_task_sequence()->set_next_task_id(40);
  shard0.set_source_incarnation(4);
  ShardApplyProgress shard1;
  shard1.mutable_task_sequence()->set_next_task_id(7);
  shard1.set_source_incarnation(3);
  NamespaceRecord record;
  record.set_id("ns-1");
  record.set_failover_version(101);
  const StartupReport report = MakeStartupReport("east", probe, {shard0, shard1}, {record});
  EXPECT_THAT(report.next_task_ids(), ElementsAre(40, 7));
  EXPECT_EQ(report.highest_incarnation_seen(), 4);
  EXPECT_TRUE(ReportAnswersProbe(report, "east", 5, "p"));
  EXPECT_FALSE(ReportAnswersProbe(report, "east", 5, "an earlier start's probe"));
  EXPECT_FALSE(ReportAnswersProbe(report, "east", 6, "p"));
  EXPECT_FALSE(ReportAnswersProbe(report, "west", 5, "p"));
}

TEST(MoveToFreshVersionTest, TakesTheNextOwnVersionAboveEveryReportedOne) {
  google::protobuf::RepeatedPtrField<ClusterConfig> clusters;
  ClusterConfig* east = clusters.Add();
  east->set_name("east");
  east->set_initial_failover_version(1);
  ClusterConfig* west = clusters.Add();
  west->set_name("west");
  west->set_initial_failover_version(2);
  NamespaceRecord record;
  record.set_id("ns-1");
  record.set_name("orders");
  record.add_clusters("east");
  record.add_clusters("west");
  record.set_active_cluster("east");
  record.set_failover_version(101);
  absl::StatusOr<NamespaceRecord> moved = MoveToFreshVersion(
      record, "east", VersionLayout{&clusters, 100}, 301, 5'000'000, "a peer holds task 54");
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(moved->failover_version(), 401);
  EXPECT_EQ(moved->active_cluster(), "east");
  ASSERT_EQ(moved->failover_history_size(), 1);
  EXPECT_EQ(moved->failover_history(0).kind(), FAILOVER_KIND_RESTORED_STORE);
  EXPECT_EQ(moved->failover_history(0).from_version(), 101);
  EXPECT_EQ(moved->failover_history(0).reason(), "a peer holds task 54");

  record.set_active_cluster("west");
  EXPECT_EQ(
      MoveToFreshVersion(record, "east", VersionLayout{&clusters, 100}, 301, 0, "").status().code(),
      absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace xdc
