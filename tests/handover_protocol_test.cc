// The control plane's pure rules (protocol/handover.h, protocol/namespace_record.h) and the
// failover damage count (protocol/failover_damage.h).
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "protocol/failover_damage.h"
#include "protocol/failover_version.h"
#include "protocol/handover.h"
#include "protocol/input_bounds.h"
#include "protocol/namespace_record.h"
#include "tests/test_histories.h"
#include "tests/test_workflows.h"

namespace xdc {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr int64_t kIncrement = 10;

class HandoverProtocolTest : public ::testing::Test {
 protected:
  HandoverProtocolTest() {
    for (const auto& [name, initial] :
         std::vector<std::pair<std::string, int64_t>>{{"east", 1}, {"west", 2}, {"north", 3}}) {
      ClusterConfig* cluster = clusters_.Add();
      cluster->set_name(name);
      cluster->set_initial_failover_version(initial);
    }
    record_.set_id("ns-1");
    record_.set_name("orders");
    for (const char* c : {"east", "west", "north"}) record_.add_clusters(c);
    record_.set_active_cluster("east");
    record_.set_failover_version(1);
    record_.set_state(NAMESPACE_STATE_ACTIVE);
    record_.set_config_version(1);
  }

  VersionLayout Layout() const { return VersionLayout{&clusters_, kIncrement}; }

  NamespaceRecord Begin(const NamespaceRecord& from, const std::string& target) {
    absl::StatusOr<NamespaceRecord> next =
        BeginHandover(from, from.active_cluster(), target, Layout(), 1000, 31000);
    EXPECT_TRUE(next.ok()) << next.status();
    return next.ok() ? *next : from;
  }

  static HandoverMarker Marker(const NamespaceRecord& handover, const std::string& other,
                               int64_t applied) {
    SourceWatermark watermark;
    watermark.set_source_cluster(other);
    watermark.set_next_task_id(applied);
    return MakeHandoverMarker(handover, {watermark});
  }

  google::protobuf::RepeatedPtrField<ClusterConfig> clusters_;
  NamespaceRecord record_;
};

// --- records ----------------------------------------------------------------------------------

TEST_F(HandoverProtocolTest, RecordsMergeByVersionThenSequenceAndSettingsByConfigVersion) {
  NamespaceRecord handover = Begin(record_, "west");
  std::optional<NamespaceRecord> merged = MergeNamespaceRecord(record_, handover);
  ASSERT_TRUE(merged.has_value());
  EXPECT_EQ(merged->state(), NAMESPACE_STATE_HANDOVER);
  EXPECT_EQ(merged->handover().target_cluster(), "west");
  // The older state of the same version changes nothing (a late or duplicated message).
  EXPECT_FALSE(MergeNamespaceRecord(handover, record_).has_value());
  EXPECT_FALSE(MergeNamespaceRecord(handover, handover).has_value());

  // Settings move by config_version alone, whatever the failover part says.
  NamespaceRecord settings = record_;
  settings.set_config_version(2);
  settings.add_clusters("south");
  merged = MergeNamespaceRecord(handover, settings);
  ASSERT_TRUE(merged.has_value());
  EXPECT_EQ(merged->state(), NAMESPACE_STATE_HANDOVER);
  EXPECT_THAT(merged->clusters(), SizeIs(4));

  // A newer failover version wins over any sequence of an older one.
  NamespaceRecord west = record_;
  west.set_active_cluster("west");
  west.set_failover_version(2);
  west.set_state_sequence(0);
  handover.set_state_sequence(7);
  EXPECT_TRUE(FailoverPartNewer(west, handover));
  merged = MergeNamespaceRecord(handover, west);
  ASSERT_TRUE(merged.has_value());
  EXPECT_EQ(merged->active_cluster(), "west");
  EXPECT_EQ(merged->state(), NAMESPACE_STATE_ACTIVE);
}

// A forced failover decided on one side of a partition, by a cluster that never saw the
// graceful handover the other side completed, does not erase it: both records end with both
// failovers, whichever arrives first.
TEST_F(HandoverProtocolTest, FailoverHistoriesOfBothSidesOfAPartitionAreKept) {
  NamespaceRecord graceful = record_;  // west activated after east's handover
  graceful.set_active_cluster("west");
  graceful.set_failover_version(2);
  FailoverEvent handover;
  handover.set_kind(FAILOVER_KIND_GRACEFUL);
  handover.set_from_cluster("east");
  handover.set_to_cluster("west");
  handover.set_failover_version(2);
  AppendFailoverEvent(graceful, handover);

  absl::StatusOr<NamespaceRecord> forced =  // north, cut off, forces at east's version 1
      ForceFailover(record_, "north", Layout(), 0, 5000, 0);
  ASSERT_TRUE(forced.ok()) << forced.status();
  ASSERT_EQ(forced->failover_history_size(), 1);

  std::optional<NamespaceRecord> at_west = MergeNamespaceRecord(graceful, *forced);
  std::optional<NamespaceRecord> at_north = MergeNamespaceRecord(*forced, graceful);
  ASSERT_TRUE(at_west.has_value());
  ASSERT_TRUE(at_north.has_value());  // the failover part is north's, the history is not
  for (const NamespaceRecord* merged : {&*at_west, &*at_north}) {
    EXPECT_EQ(merged->active_cluster(), "north");
    ASSERT_EQ(merged->failover_history_size(), 2);
    EXPECT_EQ(merged->failover_history(0).kind(), FAILOVER_KIND_GRACEFUL);
    EXPECT_EQ(merged->failover_history(1).kind(), FAILOVER_KIND_FORCED);
  }
  // Once both have both, nothing changes any more.
  EXPECT_FALSE(MergeNamespaceRecord(*at_west, *at_north).has_value());
  EXPECT_FALSE(MergeNamespaceRecord(*at_north, *at_west).has_value());
}

TEST_F(HandoverProtocolTest, FailoverHistoryKeepsTheNewestEntries) {
  NamespaceRecord record = record_;
  for (int i = 0; i < kMaxFailoverHistory + 5; ++i) {
    FailoverEvent event;
    event.set_failover_version(i);
    AppendFailoverEvent(record, event);
  }
  ASSERT_EQ(record.failover_history_size(), kMaxFailoverHistory);
  EXPECT_EQ(record.failover_history(0).failover_version(), 5);
  EXPECT_EQ(record.failover_history(kMaxFailoverHistory - 1).failover_version(),
            kMaxFailoverHistory + 4);
}

// --- source ------------------------------------------------------------------------------------

TEST_F(HandoverProtocolTest, BeginHandoverRefusesWhatCannotBeHandedOver) {
  auto refused = [&](const NamespaceRecord& from, const std::string& self,
                     const std::string& target) {
    absl::StatusOr<NamespaceRecord> next = BeginHandover(from, self, target, Layout(), 0, 1);
    EXPECT_FALSE(next.ok());
    return std::string(next.status().message());
  };
  EXPECT_THAT(refused(record_, "west", "north"), HasSubstr("send the handover request to 'east'"));
  EXPECT_THAT(refused(record_, "east", "east"), HasSubstr("already active on 'east'"));
  EXPECT_THAT(refused(record_, "east", "south"), HasSubstr("'south' is not a member"));
  NamespaceRecord two = record_;
  two.clear_clusters();
  two.add_clusters("east");
  two.add_clusters("west");
  EXPECT_THAT(refused(two, "east", "north"), HasSubstr("'north' is not a member"));
  EXPECT_THAT(refused(Begin(record_, "west"), "east", "north"),
              HasSubstr("already handing over to 'west'"));
}

TEST_F(HandoverProtocolTest, EachProposalIsANewHigherVersionOwnedByTheTarget) {
  NamespaceRecord first = Begin(record_, "west");
  EXPECT_EQ(first.state(), NAMESPACE_STATE_HANDOVER);
  EXPECT_EQ(first.state_sequence(), 1);
  EXPECT_EQ(first.failover_version(), 1);  // the source keeps its version while handing over
  EXPECT_EQ(first.handover().proposed_version(), 2);
  EXPECT_EQ(first.last_proposed_version(), 2);
  EXPECT_EQ(first.handover().started_unix_micros(), 1000);
  EXPECT_EQ(first.handover().deadline_unix_micros(), 31000);

  // The target cancels; the source resumes at its version, and a second attempt proposes 12.
  HandoverDecision cancelled;
  cancelled.set_namespace_id("ns-1");
  cancelled.set_source_cluster("east");
  cancelled.set_proposed_version(2);
  cancelled.set_outcome(HANDOVER_OUTCOME_CANCELLED);
  cancelled.set_reason("freeze");
  std::optional<NamespaceRecord> resumed = ApplyDecisionAtSource(first, "east", cancelled, 5000);
  ASSERT_TRUE(resumed.has_value());
  EXPECT_EQ(resumed->state(), NAMESPACE_STATE_ACTIVE);
  EXPECT_EQ(resumed->failover_version(), 1);
  EXPECT_EQ(resumed->state_sequence(), 2);
  EXPECT_FALSE(resumed->has_handover());
  ASSERT_EQ(resumed->failover_history_size(), 1);
  const FailoverEvent& event = resumed->failover_history(0);
  EXPECT_EQ(event.kind(), FAILOVER_KIND_HANDOVER_CANCELLED);
  EXPECT_EQ(event.failover_version(), 2);
  EXPECT_EQ(event.writes_refused_micros(), 4000);
  EXPECT_EQ(event.reason(), "freeze");
  NamespaceRecord second = Begin(*resumed, "west");
  EXPECT_EQ(second.handover().proposed_version(), 12);
  EXPECT_EQ(second.state_sequence(), 3);
}

TEST_F(HandoverProtocolTest, TheSourceResumesOnlyOnTheTargetsCancelOfItsCurrentProposal) {
  NamespaceRecord handover = Begin(record_, "west");
  HandoverDecision decision;
  decision.set_namespace_id("ns-1");
  decision.set_source_cluster("east");
  decision.set_proposed_version(2);
  decision.set_outcome(HANDOVER_OUTCOME_ACTIVATED);
  EXPECT_FALSE(ApplyDecisionAtSource(handover, "east", decision, 0).has_value())
      << "an activation arrives as the target's record, not as a resume";
  decision.set_outcome(HANDOVER_OUTCOME_CANCELLED);
  decision.set_proposed_version(12);
  EXPECT_FALSE(ApplyDecisionAtSource(handover, "east", decision, 0).has_value())
      << "another proposal's decision";
  decision.set_proposed_version(2);
  EXPECT_FALSE(ApplyDecisionAtSource(handover, "west", decision, 0).has_value())
      << "not the source";
  EXPECT_FALSE(ApplyDecisionAtSource(record_, "east", decision, 0).has_value())
      << "not in handover (a duplicate after resuming)";
  EXPECT_TRUE(ApplyDecisionAtSource(handover, "east", decision, 0).has_value());
}

TEST_F(HandoverProtocolTest, ACancelRequestIsRecordedOnceAsANewStateOfTheSameVersion) {
  EXPECT_FALSE(RequestCancel(record_, "east", "freeze").has_value());
  NamespaceRecord handover = Begin(record_, "west");
  EXPECT_FALSE(RequestCancel(handover, "west", "freeze").has_value());
  std::optional<NamespaceRecord> asked = RequestCancel(handover, "east", "freeze");
  ASSERT_TRUE(asked.has_value());
  EXPECT_TRUE(asked->handover().cancel_requested());
  // Every resend of the request carries the reason, also after a restart.
  EXPECT_EQ(asked->handover().cancel_reason(), "freeze");
  EXPECT_EQ(asked->state(), NAMESPACE_STATE_HANDOVER);  // still waiting for the target
  EXPECT_TRUE(FailoverPartNewer(*asked, handover));
  EXPECT_FALSE(RequestCancel(*asked, "east", "another reason").has_value());
}

// --- target ------------------------------------------------------------------------------------

TEST_F(HandoverProtocolTest, MarkersAreCollectedPerShardForThePendingProposal) {
  NamespaceRecord handover = Begin(record_, "west");
  HandoverTargetState state;
  EXPECT_EQ(ApplyMarker(state, "north", "east", 0, Marker(handover, "north", 0)),
            MarkerEffect::kIgnored);  // not for north
  EXPECT_EQ(ApplyMarker(state, "west", "east", 1, Marker(handover, "north", 5)),
            MarkerEffect::kNewProposal);
  EXPECT_TRUE(HasPendingProposal(state));
  EXPECT_EQ(state.source_cluster(), "east");
  EXPECT_EQ(state.source_version(), 1);
  EXPECT_EQ(state.proposed_version(), 2);
  EXPECT_EQ(ApplyMarker(state, "west", "east", 1, Marker(handover, "north", 5)),
            MarkerEffect::kDuplicate);
  EXPECT_EQ(ApplyMarker(state, "west", "east", 0, Marker(handover, "north", 7)),
            MarkerEffect::kShardSeen);
  EXPECT_THAT(state.shards_seen(), ElementsAre(0, 1));
  ASSERT_EQ(state.required_size(), 2);
  EXPECT_EQ(state.required(1).shard(), 0);
  EXPECT_EQ(state.required(1).applied().next_task_id(), 7);

  // A newer proposal replaces the pending one; an older one is ignored afterwards.
  NamespaceRecord newer = handover;
  newer.mutable_handover()->set_proposed_version(12);
  EXPECT_EQ(ApplyMarker(state, "west", "east", 3, Marker(newer, "north", 1)),
            MarkerEffect::kNewProposal);
  EXPECT_THAT(state.shards_seen(), ElementsAre(3));
  EXPECT_EQ(ApplyMarker(state, "west", "east", 2, Marker(handover, "north", 1)),
            MarkerEffect::kIgnored);
}

TEST_F(HandoverProtocolTest, ActivationWaitsForEveryMarkerAndEveryOtherClustersProgress) {
  NamespaceRecord handover = Begin(record_, "west");
  HandoverTargetState state;
  std::map<std::pair<std::string, int32_t>, TaskSequence> applied;
  auto lookup = [&](const std::string& source, int32_t shard) -> absl::StatusOr<TaskSequence> {
    return applied[{source, shard}];
  };
  ASSERT_EQ(ApplyMarker(state, "west", "east", 0, Marker(handover, "north", 10)),
            MarkerEffect::kNewProposal);
  absl::StatusOr<std::vector<std::string>> blockers = ActivationBlockers(state, "west", 2, lookup);
  ASSERT_TRUE(blockers.ok());
  ASSERT_THAT(*blockers, SizeIs(2));
  EXPECT_THAT((*blockers)[0], HasSubstr("markers of 1 of 2 shards not applied yet (1)"));
  EXPECT_THAT((*blockers)[1], HasSubstr("shard 0: behind cluster 'north'"));

  ASSERT_EQ(ApplyMarker(state, "west", "east", 1, Marker(handover, "north", 0)),
            MarkerEffect::kShardSeen);
  applied[{"north", 0}].set_next_task_id(10);
  TaskRange* missing = applied[{"north", 0}].add_missing();
  missing->set_first(4);
  missing->set_next(5);
  blockers = ActivationBlockers(state, "west", 2, lookup);
  ASSERT_THAT(*blockers, SizeIs(1));
  EXPECT_THAT((*blockers)[0], HasSubstr("with some missing"));

  applied[{"north", 0}].clear_missing();
  TaskRange* source_missing = applied[{"east", 1}].add_missing();
  source_missing->set_first(0);
  source_missing->set_next(2);
  applied[{"east", 1}].set_next_task_id(9);
  blockers = ActivationBlockers(state, "west", 2, lookup);
  ASSERT_THAT(*blockers, SizeIs(1));
  EXPECT_THAT((*blockers)[0], HasSubstr("shard 1: 2 tasks of 'east' are missing"));

  applied[{"east", 1}].clear_missing();
  blockers = ActivationBlockers(state, "west", 2, lookup);
  EXPECT_THAT(*blockers, IsEmpty());

  // The target's own stream in a marker (a failback: west had written before) needs nothing.
  HandoverTargetState own = state;
  HandoverTargetState::ShardRequirement* self = own.add_required();
  self->set_shard(0);
  self->mutable_applied()->set_source_cluster("west");
  self->mutable_applied()->set_next_task_id(109);
  blockers = ActivationBlockers(own, "west", 2, lookup);
  EXPECT_THAT(*blockers, IsEmpty());

  NamespaceRecord local = handover;
  EXPECT_FALSE(ProposalSuperseded(state, local));
  HandoverTargetState decided = state;
  HandoverDecision decision = DecidePending(decided, HANDOVER_OUTCOME_ACTIVATED, "", 9000);
  EXPECT_EQ(decision.outcome(), HANDOVER_OUTCOME_ACTIVATED);
  EXPECT_FALSE(HasPendingProposal(decided));
  NamespaceRecord activated = ActivatedRecord(local, state, "west", 9000);
  EXPECT_EQ(activated.active_cluster(), "west");
  EXPECT_EQ(activated.failover_version(), 2);
  EXPECT_EQ(activated.state(), NAMESPACE_STATE_ACTIVE);
  EXPECT_EQ(activated.state_sequence(), 0);
  EXPECT_FALSE(activated.has_handover());
  EXPECT_TRUE(FailoverPartNewer(activated, handover));
  ASSERT_EQ(activated.failover_history_size(), 1);
  EXPECT_EQ(activated.failover_history(0).kind(), FAILOVER_KIND_GRACEFUL);
  EXPECT_EQ(activated.failover_history(0).writes_refused_micros(), 8000);

  // Markers of the decided proposal change nothing any more.
  EXPECT_EQ(ApplyMarker(decided, "west", "east", 0, Marker(handover, "north", 10)),
            MarkerEffect::kIgnored);
}

TEST_F(HandoverProtocolTest, AProposalSupersededByANewerRecordIsNotActivated) {
  NamespaceRecord handover = Begin(record_, "west");
  HandoverTargetState state;
  ASSERT_EQ(ApplyMarker(state, "west", "east", 0, Marker(handover, "north", 0)),
            MarkerEffect::kNewProposal);
  NamespaceRecord forced = record_;
  forced.set_active_cluster("north");
  forced.set_failover_version(3);
  EXPECT_TRUE(ProposalSuperseded(state, forced));
  EXPECT_FALSE(ProposalSuperseded(state, record_));  // an older view than the source's is fine
}

TEST_F(HandoverProtocolTest, TheTargetDecidesACancelOnceWhateverTheOrder) {
  NamespaceRecord handover = Begin(record_, "west");
  HandoverCancel cancel;
  cancel.set_namespace_id("ns-1");
  cancel.set_target_cluster("west");
  cancel.set_proposed_version(2);
  cancel.set_reason("freeze");

  // The cancel overtakes every marker: decided at once, and the markers change nothing later.
  HandoverTargetState early;
  bool changed = false;
  HandoverDecision decision = DecideCancel(early, cancel, "east", 100, changed);
  EXPECT_TRUE(changed);
  EXPECT_EQ(decision.outcome(), HANDOVER_OUTCOME_CANCELLED);
  EXPECT_EQ(decision.reason(), "freeze");
  EXPECT_EQ(early.decided_version(), 2);
  EXPECT_EQ(ApplyMarker(early, "west", "east", 0, Marker(handover, "north", 0)),
            MarkerEffect::kIgnored);
  EXPECT_FALSE(HasPendingProposal(early));
  // A duplicate cancel gets the same answer and changes nothing.
  HandoverDecision again = DecideCancel(early, cancel, "east", 200, changed);
  EXPECT_FALSE(changed);
  EXPECT_EQ(again.outcome(), HANDOVER_OUTCOME_CANCELLED);
  EXPECT_EQ(again.decided_unix_micros(), 100);

  // The cancel arrives after the activation: the answer is the activation.
  HandoverTargetState late;
  ASSERT_EQ(ApplyMarker(late, "west", "east", 0, Marker(handover, "north", 0)),
            MarkerEffect::kNewProposal);
  DecidePending(late, HANDOVER_OUTCOME_ACTIVATED, "", 50);
  decision = DecideCancel(late, cancel, "east", 100, changed);
  EXPECT_FALSE(changed);
  EXPECT_EQ(decision.outcome(), HANDOVER_OUTCOME_ACTIVATED);

  // A cancel of an older proposal nobody here remembers: it was never activated.
  cancel.set_proposed_version(1);
  decision = DecideCancel(late, cancel, "east", 100, changed);
  EXPECT_FALSE(changed);
  EXPECT_EQ(decision.outcome(), HANDOVER_OUTCOME_CANCELLED);
  EXPECT_THAT(decision.reason(), HasSubstr("superseded"));
}

// Found by the model checker: a cancel of an old proposal that was activated must be answered
// with the activation, however many cancellations came after it.
TEST_F(HandoverProtocolTest, ActivationsAreRememberedPastTheBoundOnDecisions) {
  HandoverTargetState state;
  state.set_namespace_id("ns-1");
  state.set_proposed_version(2);
  DecidePending(state, HANDOVER_OUTCOME_ACTIVATED, "", 1);
  for (int i = 1; i <= kMaxHandoverDecisions + 10; ++i) {
    HandoverCancel later;
    later.set_namespace_id("ns-1");
    later.set_target_cluster("west");
    later.set_proposed_version(2 + 10 * i);
    bool changed = false;
    EXPECT_EQ(DecideCancel(state, later, "east", 2, changed).outcome(), HANDOVER_OUTCOME_CANCELLED);
  }
  EXPECT_EQ(state.decisions_size(), kMaxHandoverDecisions);
  HandoverCancel old;
  old.set_namespace_id("ns-1");
  old.set_target_cluster("west");
  old.set_proposed_version(2);
  bool changed = false;
  EXPECT_EQ(DecideCancel(state, old, "east", 3, changed).outcome(), HANDOVER_OUTCOME_ACTIVATED);
  EXPECT_FALSE(changed);
}

// Found by the model checker: markers of the same proposed version from two sources (after a
// forced failover made two clusters active) must not add up to one proposal.
TEST_F(HandoverProtocolTest, MarkersOfTwoSourcesForOneVersionDoNotMix) {
  NamespaceRecord from_east = Begin(record_, "west");  // east at 1 proposes 2
  NamespaceRecord north = record_;
  north.set_active_cluster("north");
  north.set_failover_version(3);
  north.set_last_proposed_version(0);
  NamespaceRecord from_north = Begin(north, "west");       // north at 3 proposes 12
  from_north.mutable_handover()->set_proposed_version(2);  // a stale view proposing the same
  HandoverTargetState state;
  ASSERT_EQ(ApplyMarker(state, "west", "north", 0, Marker(from_north, "east", 0)),
            MarkerEffect::kNewProposal);
  // East's marker of the same version, from an older source version: not part of it.
  EXPECT_EQ(ApplyMarker(state, "west", "east", 1, Marker(from_east, "north", 0)),
            MarkerEffect::kIgnored);
  EXPECT_THAT(state.shards_seen(), ElementsAre(0));
  EXPECT_EQ(state.source_cluster(), "north");
  // The other way round, the newer source replaces the older one's markers.
  HandoverTargetState reversed;
  ASSERT_EQ(ApplyMarker(reversed, "west", "east", 1, Marker(from_east, "north", 0)),
            MarkerEffect::kNewProposal);
  EXPECT_EQ(ApplyMarker(reversed, "west", "north", 0, Marker(from_north, "east", 0)),
            MarkerEffect::kNewProposal);
  EXPECT_THAT(reversed.shards_seen(), ElementsAre(0));
  EXPECT_EQ(reversed.source_cluster(), "north");
  EXPECT_EQ(reversed.source_version(), 3);
}

// Issue 15, item 6: a proposal that reuses a version the target already decided (possible after
// a forced failover that never heard of the earlier, cancelled proposal) must be answered to the
// cluster that asks, which then leaves HANDOVER; models/handover.pml answers the requester too.
TEST_F(HandoverProtocolTest, AReusedProposalIsAnsweredToTheRequesterWhichResumes) {
  // east (at 1) proposes 3 to north; east's deadline passes and north cancels 3.
  NamespaceRecord from_east = Begin(record_, "north");
  ASSERT_EQ(from_east.handover().proposed_version(), 3);
  HandoverTargetState north;
  ASSERT_EQ(ApplyMarker(north, "north", "east", 0, Marker(from_east, "west", 0)),
            MarkerEffect::kNewProposal);
  std::optional<NamespaceRecord> east_asked = RequestCancel(from_east, "east", "deadline");
  ASSERT_TRUE(east_asked.has_value());
  HandoverCancel east_cancel;
  east_cancel.set_namespace_id("ns-1");
  east_cancel.set_target_cluster("north");
  east_cancel.set_proposed_version(3);
  east_cancel.set_reason("deadline");
  bool changed = false;
  HandoverDecision to_east = DecideCancel(north, east_cancel, "east", 100, changed);
  ASSERT_TRUE(changed);
  ASSERT_EQ(to_east.source_cluster(), "east");
  ASSERT_TRUE(ApplyDecisionAtSource(*east_asked, "east", to_east, 150).has_value());

  // west, cut off from east's records, is forced active at 2 and proposes 3 to north: the same
  // version, already decided there.
  absl::StatusOr<NamespaceRecord> west_forced =
      ForceFailover(record_, "west", Layout(), /*decided_version=*/0, 200, 0);
  ASSERT_TRUE(west_forced.ok()) << west_forced.status();
  ASSERT_EQ(west_forced->failover_version(), 2);
  NamespaceRecord from_west = Begin(*west_forced, "north");
  ASSERT_EQ(from_west.handover().proposed_version(), 3);
  EXPECT_EQ(ApplyMarker(north, "north", "west", 0, Marker(from_west, "east", 0)),
            MarkerEffect::kIgnored)
      << "a decided version is never decided again";

  // west's deadline passes: it asks north to cancel 3, and north answers west.
  std::optional<NamespaceRecord> west_asked = RequestCancel(from_west, "west", "deadline");
  ASSERT_TRUE(west_asked.has_value());
  HandoverCancel west_cancel = east_cancel;
  west_cancel.set_reason("west's deadline");
  HandoverDecision to_west = DecideCancel(north, west_cancel, "west", 300, changed);
  EXPECT_FALSE(changed) << "the stored decision is reused, not a second one";
  EXPECT_EQ(to_west.outcome(), HANDOVER_OUTCOME_CANCELLED);
  EXPECT_EQ(to_west.proposed_version(), 3);
  EXPECT_EQ(to_west.source_cluster(), "west") << "addressed to the requester";
  std::optional<NamespaceRecord> west_resumed =
      ApplyDecisionAtSource(*west_asked, "west", to_west, 400);
  ASSERT_TRUE(west_resumed.has_value()) << "west must leave HANDOVER, not wait forever";
  EXPECT_EQ(west_resumed->state(), NAMESPACE_STATE_ACTIVE);
  EXPECT_EQ(west_resumed->failover_version(), 2);
  ASSERT_GE(west_resumed->failover_history_size(), 1);
  EXPECT_EQ(west_resumed->failover_history().rbegin()->kind(), FAILOVER_KIND_HANDOVER_CANCELLED);
  EXPECT_THAT(west_resumed->failover_history().rbegin()->reason(), HasSubstr("east"));
  // The next attempt proposes a version north has not decided.
  EXPECT_EQ(Begin(*west_resumed, "north").handover().proposed_version(), 13);

  // A decision addressed to another cluster resumes nobody else.
  EXPECT_FALSE(ApplyDecisionAtSource(*west_asked, "west", to_east, 400).has_value());
  // An activation stays an activation, whoever asks: the requester follows north's record.
  HandoverTargetState activated;
  ASSERT_EQ(ApplyMarker(activated, "north", "east", 0, Marker(from_east, "west", 0)),
            MarkerEffect::kNewProposal);
  DecidePending(activated, HANDOVER_OUTCOME_ACTIVATED, "", 50);
  HandoverDecision activation = DecideCancel(activated, west_cancel, "west", 300, changed);
  EXPECT_EQ(activation.outcome(), HANDOVER_OUTCOME_ACTIVATED);
  EXPECT_FALSE(ApplyDecisionAtSource(*west_asked, "west", activation, 400).has_value());
}

// --- forced failover ---------------------------------------------------------------------------

TEST_F(HandoverProtocolTest, AForcedFailoverTakesAVersionAboveEverythingProposedOrDecided) {
  NamespaceRecord handover = Begin(record_, "west");  // proposes 2
  absl::StatusOr<NamespaceRecord> forced =
      ForceFailover(handover, "east", Layout(), /*decided_version=*/0, 10000, 0);
  ASSERT_TRUE(forced.ok()) << forced.status();
  // The source overrides its own handover: above the proposal, so it beats a late activation.
  EXPECT_EQ(forced->failover_version(), 11);
  EXPECT_EQ(forced->state(), NAMESPACE_STATE_ACTIVE);
  EXPECT_FALSE(forced->has_handover());
  EXPECT_TRUE(FailoverPartNewer(*forced, handover));

  forced = ForceFailover(record_, "north", Layout(), /*decided_version=*/22, 10000, 7000);
  ASSERT_TRUE(forced.ok());
  EXPECT_EQ(forced->failover_version(), 23);
  EXPECT_EQ(forced->active_cluster(), "north");
  ASSERT_EQ(forced->failover_history_size(), 1);
  const FailoverEvent& event = forced->failover_history(0);
  EXPECT_EQ(event.kind(), FAILOVER_KIND_FORCED);
  EXPECT_EQ(event.from_cluster(), "east");
  EXPECT_EQ(event.from_version(), 1);
  EXPECT_EQ(event.old_active_last_heard_unix_micros(), 7000);
  EXPECT_EQ(event.writes_refused_micros(), 3000);

  NamespaceRecord two = record_;
  two.clear_clusters();
  two.add_clusters("east");
  EXPECT_FALSE(ForceFailover(two, "west", Layout(), 0, 0, 0).ok());
}

// Issue 15, item 10: failing over from a version at (or near) the top of int64 fails with a
// clear error naming the maximum, never by overflowing.
TEST_F(HandoverProtocolTest, FailingOverFromTheTopOfTheVersionRangeFailsClearly) {
  constexpr int64_t kTop = std::numeric_limits<int64_t>::max();
  for (int64_t version : {kTop, kTop - 1, kTop - 7}) {
    NamespaceRecord top = record_;
    top.set_failover_version(version);
    absl::StatusOr<NamespaceRecord> forced = ForceFailover(top, "west", Layout(), 0, 0, 0);
    EXPECT_EQ(forced.status().code(), absl::StatusCode::kOutOfRange) << version;
    EXPECT_THAT(forced.status().message(), HasSubstr("maximum failover version")) << version;
    absl::StatusOr<NamespaceRecord> begun = BeginHandover(top, "east", "west", Layout(), 0, 0);
    EXPECT_EQ(begun.status().code(), absl::StatusCode::kOutOfRange) << version;
    EXPECT_THAT(begun.status().message(), HasSubstr("maximum failover version")) << version;

    // The same from a proposal or a decision at that version.
    NamespaceRecord proposed = record_;
    proposed.set_last_proposed_version(version);
    EXPECT_EQ(BeginHandover(proposed, "east", "west", Layout(), 0, 0).status().code(),
              absl::StatusCode::kOutOfRange)
        << version;
    EXPECT_EQ(ForceFailover(proposed, "west", Layout(), 0, 0, 0).status().code(),
              absl::StatusCode::kOutOfRange)
        << version;
    EXPECT_EQ(ForceFailover(record_, "west", Layout(), version, 0, 0).status().code(),
              absl::StatusCode::kOutOfRange)
        << version;
  }
}

// Issue 15, item 10: a peer's record, cancel, decision or marker carrying a version beyond the
// maximum is refused where it is received (and parked), so it never wins a merge or a decision.
TEST_F(HandoverProtocolTest, VersionsBeyondTheMaximumInPeerMessagesAreRefused) {
  constexpr int64_t kTop = std::numeric_limits<int64_t>::max();
  EXPECT_TRUE(ValidateRecordVersions(record_).ok());
  EXPECT_TRUE(ValidateRecordVersions(Begin(record_, "west")).ok());
  std::vector<NamespaceRecord> crafted(4, record_);
  crafted[0].set_failover_version(kTop);
  crafted[1].set_last_proposed_version(kMaxFailoverVersion + 1);
  crafted[2] = Begin(record_, "west");
  crafted[2].mutable_handover()->set_proposed_version(kTop);
  FailoverEvent event;
  event.set_failover_version(kTop);
  AppendFailoverEvent(crafted[3], event);
  for (const NamespaceRecord& record : crafted) {
    const absl::Status s = ValidateRecordVersions(record);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << record.DebugString();
    EXPECT_THAT(s.message(), HasSubstr("'orders'"));
    EXPECT_THAT(s.message(), HasSubstr("maximum failover version"));
    ControlMessage message;
    *message.mutable_namespace_record() = record;
    EXPECT_FALSE(ValidateControlBounds(message).ok());
  }
  ControlMessage cancel;
  cancel.mutable_handover_cancel()->set_proposed_version(kTop);
  EXPECT_THAT(ValidateControlBounds(cancel).message(), HasSubstr("handover cancel"));
  ControlMessage decision;
  decision.mutable_handover_decision()->set_proposed_version(kMaxFailoverVersion + 1);
  EXPECT_THAT(ValidateControlBounds(decision).message(), HasSubstr("handover decision"));
  cancel.mutable_handover_cancel()->set_proposed_version(kMaxFailoverVersion);
  EXPECT_TRUE(ValidateControlBounds(cancel).ok());

  ReplicationTask task;
  task.set_task_id(7);
  *task.mutable_handover_marker() = Marker(Begin(record_, "west"), "north", 3);
  EXPECT_TRUE(ValidateTaskBounds(task).ok());
  ReplicationTask bad = task;
  bad.set_task_id(kTop);
  EXPECT_THAT(ValidateTaskBounds(bad).message(), HasSubstr("maximum task id"));
  bad = task;
  bad.mutable_handover_marker()->set_proposed_version(kTop);
  EXPECT_THAT(ValidateTaskBounds(bad).message(), HasSubstr("proposed version"));
  bad = task;
  bad.mutable_handover_marker()->set_source_version(kTop);
  EXPECT_THAT(ValidateTaskBounds(bad).message(), HasSubstr("source version"));
  bad = task;
  bad.mutable_handover_marker()->mutable_applied(0)->set_next_task_id(kTop);
  EXPECT_THAT(ValidateTaskBounds(bad).message(), HasSubstr("'north'"));
  bad = task;
  bad.add_events()->set_version(kTop);
  EXPECT_THAT(ValidateTaskBounds(bad).message(), HasSubstr("event version"));
  bad = task;
  bad.add_version_history_items()->set_version(kTop);
  EXPECT_THAT(ValidateTaskBounds(bad).message(), HasSubstr("version history"));
}

// --- damage ------------------------------------------------------------------------------------

using testing_util::Branch;
using testing_util::History;
using testing_util::MakeEvent;

TEST(FailoverDamageTest, LosingBranchEventsAreChargedToTheWinningFailoverOnce) {
  WorkflowMutableState state;
  state.mutable_key()->set_run_id("run");
  // Branch 0 (lost): 1@1 2@1 3:signal@1 4:timer@1 5:signal@1 (forked after event 2).
  // Branch 1 (lost, shares 3 and 4 with branch 0): ... 4:timer@1.
  // Branch 2 (current): 1@1 2@1 3:timer@12 4:copy of 3@1 (reapplied).
  VersionHistories& histories = *state.mutable_version_histories();
  *histories.add_histories() = History({{5, 1}});
  *histories.add_histories() = History({{4, 1}});
  *histories.add_histories() = History({{2, 1}, {4, 12}});
  histories.set_current_index(2);
  std::map<std::string, std::vector<HistoryEvent>> branches;
  std::vector<HistoryEvent> lost = Branch({{1, WORKFLOW_EXECUTION_STARTED},
                                           {1, ACTIVITY_TASK_SCHEDULED},
                                           {1, WORKFLOW_EXECUTION_SIGNALED},
                                           {1, TIMER_STARTED},
                                           {1, WORKFLOW_EXECUTION_SIGNALED}});
  std::vector<HistoryEvent> current = {lost[0], lost[1], MakeEvent(3, 12, TIMER_STARTED),
                                       MakeEvent(4, 12, WORKFLOW_EXECUTION_SIGNALED)};
  current[3].mutable_reapplied_from()->set_run_id("run");
  current[3].mutable_reapplied_from()->set_event_id(3);
  current[3].mutable_reapplied_from()->set_version(1);
  BranchReader read = [&](const VersionHistory& branch)
      -> absl::StatusOr<google::protobuf::RepeatedPtrField<HistoryEvent>> {
    google::protobuf::RepeatedPtrField<HistoryEvent> events;
    const bool is_current = branch.items_size() == 2;
    const int64_t last = branch.items(branch.items_size() - 1).event_id();
    for (const HistoryEvent& event : is_current ? current : lost) {
      if (event.event_id() <= last) *events.Add() = event;
    }
    return events;
  };
  std::map<int64_t, FailoverDamage> damage;
  ASSERT_TRUE(AccumulateFailoverDamage(state, read, damage).ok());
  ASSERT_EQ(damage.size(), 1u);
  const FailoverDamage& charged = damage.at(12);
  EXPECT_EQ(charged.workflows_forked(), 1);
  EXPECT_EQ(charged.events_on_losing_branches(), 3);   // events 3, 4 and 5 of version 1
  EXPECT_EQ(charged.events_reapplied(), 1);            // the signal at 3
  EXPECT_EQ(charged.reapplicable_not_reapplied(), 1);  // the signal at 5

  // One branch: nothing lost.
  WorkflowMutableState single;
  *single.mutable_version_histories()->add_histories() = History({{5, 1}});
  std::map<int64_t, FailoverDamage> none;
  ASSERT_TRUE(AccumulateFailoverDamage(single, read, none).ok());
  EXPECT_TRUE(none.empty());
}

}  // namespace
}  // namespace xdc
