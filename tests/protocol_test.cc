// Unit tests of the pure protocol layer: stable hashing, checksums, failover versions, version
// histories, workflow state transitions, history digests and message framing.

#include <cstdint>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "protocol/checksum.h"
#include "protocol/failover_version.h"
#include "protocol/history_digest.h"
#include "protocol/message_codec.h"
#include "protocol/shard_hash.h"
#include "protocol/task_sequence.h"
#include "protocol/version_history.h"
#include "protocol/workflow_state.h"
#include "protocol/xdc.pb.h"
#include "tests/test_histories.h"

namespace xdc {
namespace {

using testing_util::History;
using testing_util::Items;

using ::google::protobuf::util::MessageDifferencer;
using ::testing::HasSubstr;

HistoryEvent Event(int64_t event_id, int64_t version, EventType type, int64_t time_micros = 0,
                   std::string attributes = "") {
  HistoryEvent event;
  event.set_event_id(event_id);
  event.set_version(version);
  event.set_event_type(type);
  event.set_event_time_unix_micros(time_micros);
  event.set_attributes(std::move(attributes));
  return event;
}

WorkflowKey Key() {
  WorkflowKey key;
  key.set_namespace_id("ns");
  key.set_workflow_id("wf");
  key.set_run_id("run");
  return key;
}

// ---------------------------------------------------------------------------------------------
// Shard hash
// ---------------------------------------------------------------------------------------------

TEST(ShardHashTest, Fnv1a64KnownVectors) {
  EXPECT_EQ(Fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(Fnv1a64(""), kFnv1a64Offset);
  EXPECT_EQ(Fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(Fnv1a64("foobar"), 0x85944171f73967e8ull);
}

TEST(ShardHashTest, Fnv1a64SeedContinuesTheHash) {
  EXPECT_EQ(Fnv1a64("bar", Fnv1a64("foo")), Fnv1a64("foobar"));
}

TEST(ShardHashTest, ShardForIsStableAcrossBuilds) {
  // Literals computed independently (FNV-1a over "ns\0wf" etc., then murmur3 fmix64): a change
  // here would move every persisted workflow to another shard.
  EXPECT_EQ(ShardFor("ns", "wf", 1024), 900);
  EXPECT_EQ(ShardFor("orders", "order-42", 16), 6);
  EXPECT_EQ(ShardFor("ns", "wf", 4), ShardFor("ns", "wf", 4));
}

TEST(ShardHashTest, ShardForHashesNamespaceSeparatorAndWorkflow) {
  uint64_t h = Fnv1a64("ns");
  h = Fnv1a64(std::string_view("\0", 1), h);
  h = Fnv1a64("wf", h);
  EXPECT_EQ(h, Fnv1a64(std::string_view("ns\0wf", 5)));
  // murmur3 fmix64
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  EXPECT_EQ(ShardFor("ns", "wf", 977), static_cast<int32_t>(h % 977));
}

TEST(ShardHashTest, HighBitsOfTheInputReachLowShardBits) {
  // Plain FNV-1a mod 4 depends only on the low two bits of each byte: ids differing only in
  // higher bits would all share a shard. The finaliser must spread them.
  std::set<int32_t> shards;
  for (int c = 0; c < 256; c += 4) {
    shards.insert(ShardFor("ns", std::string("wf-") + static_cast<char>(c), 4));
  }
  EXPECT_EQ(shards.size(), 4u);
}

TEST(ShardHashTest, ShardForIsInRange) {
  for (int32_t shard_count : {1, 2, 3, 4, 16, 1000, 4096}) {
    for (int i = 0; i < 200; ++i) {
      const int32_t shard = ShardFor("namespace", "workflow-" + std::to_string(i), shard_count);
      EXPECT_GE(shard, 0);
      EXPECT_LT(shard, shard_count);
    }
  }
  EXPECT_EQ(ShardFor("anything", "at all", 1), 0);
}

TEST(ShardHashTest, SeparatorKeepsSplitPointsApart) {
  EXPECT_NE(Fnv1a64(std::string_view("ab\0c", 4)), Fnv1a64(std::string_view("a\0bc", 4)));
  EXPECT_NE(ShardFor("ab", "c", 1024), ShardFor("a", "bc", 1024));
}

// ---------------------------------------------------------------------------------------------
// CRC-32C
// ---------------------------------------------------------------------------------------------

TEST(ChecksumTest, Crc32cKnownVectors) {
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(""), 0u);
  // RFC 3720 (iSCSI) B.4 test vectors.
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(std::string(32, '\xFF')), 0x62A8AB43u);
}

TEST(ChecksumTest, Crc32cDetectsSingleBitFlip) {
  std::string data = "the quick brown fox jumps over the lazy dog";
  const uint32_t original = Crc32c(data);
  for (size_t i = 0; i < data.size(); ++i) {
    std::string flipped = data;
    flipped[i] = static_cast<char>(flipped[i] ^ 0x01);
    EXPECT_NE(Crc32c(flipped), original) << "byte " << i;
  }
}

// ---------------------------------------------------------------------------------------------
// Failover versions
// ---------------------------------------------------------------------------------------------

TEST(FailoverVersionTest, OwnsVersion) {
  EXPECT_TRUE(OwnsVersion(1, 1, 100));
  EXPECT_TRUE(OwnsVersion(101, 1, 100));
  EXPECT_TRUE(OwnsVersion(2, 2, 100));
  EXPECT_TRUE(OwnsVersion(302, 2, 100));
  EXPECT_FALSE(OwnsVersion(2, 1, 100));
  EXPECT_FALSE(OwnsVersion(101, 2, 100));
  EXPECT_FALSE(OwnsVersion(100, 1, 100));
}

TEST(FailoverVersionTest, NextVersionFor) {
  EXPECT_EQ(NextVersionFor(1, 2, 100).value(), 2);
  EXPECT_EQ(NextVersionFor(2, 1, 100).value(), 101);
  EXPECT_EQ(NextVersionFor(101, 1, 100).value(), 101);
  EXPECT_EQ(NextVersionFor(102, 1, 100).value(), 201);
  EXPECT_EQ(NextVersionFor(0, 1, 100).value(), 1);
  EXPECT_EQ(NextVersionFor(100, 1, 100).value(), 101);
  EXPECT_EQ(NextVersionFor(199, 99, 100).value(), 199);
}

TEST(FailoverVersionTest, NextVersionForIsSmallestOwnedVersionAtLeastCurrent) {
  constexpr int64_t kIncrement = 10;
  for (int64_t current = 0; current < 100; ++current) {
    for (int64_t initial = 1; initial < kIncrement; ++initial) {
      const int64_t next = NextVersionFor(current, initial, kIncrement).value();
      EXPECT_GE(next, current);
      EXPECT_TRUE(OwnsVersion(next, initial, kIncrement));
      for (int64_t v = current; v < next; ++v) {
        EXPECT_FALSE(OwnsVersion(v, initial, kIncrement)) << current << " " << initial;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Version histories
// ---------------------------------------------------------------------------------------------

TEST(VersionHistoryTest, AddEventExtendsAndAddsItems) {
  VersionHistory history;
  EXPECT_EQ(LastEventId(history), 0);
  ASSERT_TRUE(AddEventToHistory(history, 1, 1).ok());
  ASSERT_TRUE(AddEventToHistory(history, 2, 1).ok());
  ASSERT_TRUE(AddEventToHistory(history, 3, 1).ok());
  EXPECT_TRUE(MessageDifferencer::Equals(history, History({{3, 1}})));
  ASSERT_TRUE(AddEventToHistory(history, 4, 101).ok());
  ASSERT_TRUE(AddEventToHistory(history, 5, 101).ok());
  EXPECT_TRUE(MessageDifferencer::Equals(history, History({{3, 1}, {5, 101}})));
  EXPECT_EQ(LastEventId(history), 5);
}

TEST(VersionHistoryTest, AddEventRejectsOutOfOrder) {
  VersionHistory history = History({{3, 1}});
  const VersionHistory before = history;
  EXPECT_EQ(AddEventToHistory(history, 3, 1).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(AddEventToHistory(history, 5, 1).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(MessageDifferencer::Equals(history, before));

  VersionHistory empty;
  EXPECT_EQ(AddEventToHistory(empty, 2, 1).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(empty.items_size(), 0);
}

TEST(VersionHistoryTest, AddEventRejectsDecreasingVersion) {
  VersionHistory history = History({{3, 1}, {5, 101}});
  const VersionHistory before = history;
  const absl::Status status = AddEventToHistory(history, 6, 2);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(MessageDifferencer::Equals(history, before));
}

TEST(VersionHistoryTest, VersionOfEvent) {
  const VersionHistory history = History({{3, 1}, {5, 101}, {6, 202}});
  EXPECT_EQ(*VersionOfEvent(history, 1), 1);
  EXPECT_EQ(*VersionOfEvent(history, 3), 1);
  EXPECT_EQ(*VersionOfEvent(history, 4), 101);
  EXPECT_EQ(*VersionOfEvent(history, 5), 101);
  EXPECT_EQ(*VersionOfEvent(history, 6), 202);
  EXPECT_EQ(VersionOfEvent(history, 7).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(VersionOfEvent(history, 0).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(VersionOfEvent(VersionHistory(), 1).status().code(), absl::StatusCode::kNotFound);
}

TEST(VersionHistoryTest, LcaOfIdenticalBranchesIsTheTail) {
  const VersionHistory branch = History({{3, 1}, {5, 101}});
  absl::StatusOr<VersionHistoryItem> lca = FindLowestCommonAncestor(branch, branch);
  ASSERT_TRUE(lca.ok()) << lca.status();
  EXPECT_EQ(lca->event_id(), 5);
  EXPECT_EQ(lca->version(), 101);
}

TEST(VersionHistoryTest, LcaOfOnePrefixOfTheOther) {
  absl::StatusOr<VersionHistoryItem> lca =
      FindLowestCommonAncestor(History({{3, 1}}), History({{3, 1}, {6, 2}}));
  ASSERT_TRUE(lca.ok()) << lca.status();
  EXPECT_EQ(lca->event_id(), 3);
  EXPECT_EQ(lca->version(), 1);

  lca = FindLowestCommonAncestor(History({{7, 1}}), History({{4, 1}}));
  ASSERT_TRUE(lca.ok()) << lca.status();
  EXPECT_EQ(lca->event_id(), 4);
  EXPECT_EQ(lca->version(), 1);
}

TEST(VersionHistoryTest, LcaOfDivergingBranches) {
  // Local went on with version 1 to event 5; remote failed over to version 2 after event 3.
  absl::StatusOr<VersionHistoryItem> lca =
      FindLowestCommonAncestor(History({{5, 1}}), History({{3, 1}, {6, 2}}));
  ASSERT_TRUE(lca.ok()) << lca.status();
  EXPECT_EQ(lca->event_id(), 3);
  EXPECT_EQ(lca->version(), 1);

  // Both failed over (to different versions) after event 3 of version 1; the result must not
  // depend on which side is local.
  const VersionHistory a = History({{3, 1}, {5, 2}});
  const VersionHistory b = History({{3, 1}, {4, 3}});
  for (const auto& [local, remote] : {std::pair(a, b), std::pair(b, a)}) {
    lca = FindLowestCommonAncestor(local, remote);
    ASSERT_TRUE(lca.ok()) << lca.status();
    EXPECT_EQ(lca->event_id(), 3);
    EXPECT_EQ(lca->version(), 1);
  }

  // Shared prefix spanning two versions.
  lca = FindLowestCommonAncestor(History({{2, 1}, {4, 2}, {9, 3}}),
                                 History({{2, 1}, {6, 2}, {7, 4}}));
  ASSERT_TRUE(lca.ok()) << lca.status();
  EXPECT_EQ(lca->event_id(), 4);
  EXPECT_EQ(lca->version(), 2);
}

TEST(VersionHistoryTest, LcaOfBranchesWithNoCommonEvent) {
  EXPECT_EQ(FindLowestCommonAncestor(History({{2, 1}}), History({{2, 2}})).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(FindLowestCommonAncestor(History({{2, 1}, {4, 3}}), History({{5, 2}})).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(FindLowestCommonAncestor(VersionHistory(), History({{5, 2}})).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(VersionHistoryTest, ValidateVersionHistory) {
  EXPECT_TRUE(ValidateVersionHistory(History({{1, 1}})).ok());
  EXPECT_TRUE(ValidateVersionHistory(History({{3, 1}, {5, 101}, {9, 102}})).ok());
  EXPECT_EQ(ValidateVersionHistory(VersionHistory()).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateVersionHistory(History({{0, 1}})).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateVersionHistory(History({{-1, 1}})).code(), absl::StatusCode::kInvalidArgument);
  // Event ids must strictly ascend.
  EXPECT_EQ(ValidateVersionHistory(History({{3, 1}, {3, 2}})).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateVersionHistory(History({{3, 1}, {2, 2}})).code(),
            absl::StatusCode::kInvalidArgument);
  // Versions must strictly ascend.
  EXPECT_EQ(ValidateVersionHistory(History({{3, 2}, {5, 2}})).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateVersionHistory(History({{3, 2}, {5, 1}})).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(VersionHistoryTest, CurrentBranch) {
  VersionHistories histories;
  EXPECT_EQ(CurrentBranch(histories), nullptr);
  EXPECT_EQ(MutableCurrentBranch(histories), nullptr);
  *histories.add_histories() = History({{5, 1}});
  *histories.add_histories() = History({{3, 1}, {6, 2}});
  histories.set_current_index(1);
  ASSERT_NE(CurrentBranch(histories), nullptr);
  EXPECT_EQ(LastEventId(*CurrentBranch(histories)), 6);
  EXPECT_EQ(MutableCurrentBranch(histories), histories.mutable_histories(1));
  histories.set_current_index(2);
  EXPECT_EQ(CurrentBranch(histories), nullptr);
  histories.set_current_index(-1);
  EXPECT_EQ(CurrentBranch(histories), nullptr);
}

// ---------------------------------------------------------------------------------------------
// Workflow state
// ---------------------------------------------------------------------------------------------

TEST(WorkflowStateTest, NewWorkflowState) {
  const WorkflowMutableState state = NewWorkflowState(Key());
  EXPECT_TRUE(MessageDifferencer::Equals(state.key(), Key()));
  EXPECT_EQ(state.next_event_id(), 1);
  ASSERT_EQ(state.version_histories().histories_size(), 1);
  EXPECT_EQ(state.version_histories().current_index(), 0);
  EXPECT_EQ(state.version_histories().histories(0).items_size(), 0);
  EXPECT_EQ(state.status(), WORKFLOW_STATUS_UNSPECIFIED);
}

TEST(WorkflowStateTest, IsTerminalEvent) {
  EXPECT_TRUE(IsTerminalEvent(WORKFLOW_EXECUTION_COMPLETED));
  EXPECT_TRUE(IsTerminalEvent(WORKFLOW_EXECUTION_TERMINATED));
  EXPECT_FALSE(IsTerminalEvent(WORKFLOW_EXECUTION_STARTED));
  EXPECT_FALSE(IsTerminalEvent(WORKFLOW_EXECUTION_SIGNALED));
  EXPECT_FALSE(IsTerminalEvent(WORKFLOW_EXECUTION_CANCEL_REQUESTED));
}

TEST(WorkflowStateTest, AppliesARun) {
  WorkflowMutableState state = NewWorkflowState(Key());
  ASSERT_TRUE(ApplyEventToState(state, Event(1, 1, WORKFLOW_EXECUTION_STARTED, 1000)).ok());
  EXPECT_EQ(state.status(), WORKFLOW_STATUS_RUNNING);
  EXPECT_EQ(state.start_time_unix_micros(), 1000);
  EXPECT_EQ(state.next_event_id(), 2);
  ASSERT_TRUE(ApplyEventToState(state, Event(2, 1, ACTIVITY_TASK_SCHEDULED, 2000)).ok());
  ASSERT_TRUE(ApplyEventToState(state, Event(3, 101, WORKFLOW_EXECUTION_SIGNALED, 3000)).ok());
  EXPECT_EQ(state.status(), WORKFLOW_STATUS_RUNNING);
  EXPECT_EQ(state.start_time_unix_micros(), 1000);
  EXPECT_EQ(state.last_event_time_unix_micros(), 3000);
  EXPECT_EQ(state.next_event_id(), 4);
  EXPECT_TRUE(MessageDifferencer::Equals(*CurrentBranch(state.version_histories()),
                                         History({{2, 1}, {3, 101}})));
  ASSERT_TRUE(ApplyEventToState(state, Event(4, 101, WORKFLOW_EXECUTION_COMPLETED, 4000)).ok());
  EXPECT_EQ(state.status(), WORKFLOW_STATUS_COMPLETED);
  EXPECT_EQ(state.next_event_id(), 5);
}

TEST(WorkflowStateTest, TerminatedRun) {
  WorkflowMutableState state = NewWorkflowState(Key());
  ASSERT_TRUE(ApplyEventToState(state, Event(1, 1, WORKFLOW_EXECUTION_STARTED)).ok());
  ASSERT_TRUE(ApplyEventToState(state, Event(2, 1, WORKFLOW_EXECUTION_TERMINATED)).ok());
  EXPECT_EQ(state.status(), WORKFLOW_STATUS_TERMINATED);
}

// Applies `event` expecting failure with `code`, and checks `state` did not change.
void ExpectRejected(WorkflowMutableState& state, const HistoryEvent& event, absl::StatusCode code) {
  const WorkflowMutableState before = state;
  const absl::Status status = ApplyEventToState(state, event);
  EXPECT_EQ(status.code(), code) << status;
  EXPECT_FALSE(std::string(status.message()).empty());
  EXPECT_TRUE(MessageDifferencer::Equals(state, before)) << "state changed on error:\n"
                                                         << state.DebugString() << "\nwas:\n"
                                                         << before.DebugString();
}

TEST(WorkflowStateTest, FirstEventMustBeStarted) {
  WorkflowMutableState state = NewWorkflowState(Key());
  ExpectRejected(state, Event(1, 1, WORKFLOW_EXECUTION_SIGNALED),
                 absl::StatusCode::kInvalidArgument);
  ExpectRejected(state, Event(1, 1, WORKFLOW_EXECUTION_COMPLETED),
                 absl::StatusCode::kInvalidArgument);
}

TEST(WorkflowStateTest, StartOnlyAtEventOne) {
  WorkflowMutableState state = NewWorkflowState(Key());
  ASSERT_TRUE(ApplyEventToState(state, Event(1, 1, WORKFLOW_EXECUTION_STARTED)).ok());
  ExpectRejected(state, Event(2, 1, WORKFLOW_EXECUTION_STARTED),
                 absl::StatusCode::kInvalidArgument);
}

TEST(WorkflowStateTest, NoEventsAfterClose) {
  for (EventType closing : {WORKFLOW_EXECUTION_COMPLETED, WORKFLOW_EXECUTION_TERMINATED}) {
    WorkflowMutableState state = NewWorkflowState(Key());
    ASSERT_TRUE(ApplyEventToState(state, Event(1, 1, WORKFLOW_EXECUTION_STARTED)).ok());
    ASSERT_TRUE(ApplyEventToState(state, Event(2, 1, closing)).ok());
    ExpectRejected(state, Event(3, 1, WORKFLOW_EXECUTION_SIGNALED),
                   absl::StatusCode::kFailedPrecondition);
    ExpectRejected(state, Event(3, 1, WORKFLOW_EXECUTION_COMPLETED),
                   absl::StatusCode::kFailedPrecondition);
  }
}

TEST(WorkflowStateTest, UnspecifiedTypeRejected) {
  WorkflowMutableState state = NewWorkflowState(Key());
  ExpectRejected(state, Event(1, 1, EVENT_TYPE_UNSPECIFIED), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(ApplyEventToState(state, Event(1, 1, WORKFLOW_EXECUTION_STARTED)).ok());
  ExpectRejected(state, Event(2, 1, EVENT_TYPE_UNSPECIFIED), absl::StatusCode::kInvalidArgument);
}

TEST(WorkflowStateTest, OutOfOrderRejected) {
  WorkflowMutableState state = NewWorkflowState(Key());
  ExpectRejected(state, Event(2, 1, WORKFLOW_EXECUTION_SIGNALED),
                 absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(ApplyEventToState(state, Event(1, 1, WORKFLOW_EXECUTION_STARTED)).ok());
  ExpectRejected(state, Event(1, 1, WORKFLOW_EXECUTION_STARTED),
                 absl::StatusCode::kInvalidArgument);
  ExpectRejected(state, Event(3, 1, WORKFLOW_EXECUTION_SIGNALED),
                 absl::StatusCode::kInvalidArgument);
}

TEST(WorkflowStateTest, DecreasingVersionRejected) {
  WorkflowMutableState state = NewWorkflowState(Key());
  ASSERT_TRUE(ApplyEventToState(state, Event(1, 101, WORKFLOW_EXECUTION_STARTED, 5)).ok());
  ExpectRejected(state, Event(2, 1, WORKFLOW_EXECUTION_SIGNALED, 6),
                 absl::StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// History digest
// ---------------------------------------------------------------------------------------------

struct DigestInput {
  VersionHistory branch;
  google::protobuf::RepeatedPtrField<HistoryEvent> events;
};

DigestInput SampleDigestInput() {
  DigestInput input;
  input.branch = History({{2, 1}, {3, 101}});
  *input.events.Add() = Event(1, 1, WORKFLOW_EXECUTION_STARTED, 1000, "start");
  *input.events.Add() = Event(2, 1, TIMER_STARTED, 2000, std::string("t\0r", 3));
  *input.events.Add() = Event(3, 101, WORKFLOW_EXECUTION_SIGNALED, 3000, "signal");
  return input;
}

std::string Digest(const DigestInput& input) { return HistoryDigest(input.branch, input.events); }

TEST(HistoryDigestTest, EqualInputsGiveEqualDigests) {
  const std::string digest = Digest(SampleDigestInput());
  EXPECT_EQ(digest, Digest(SampleDigestInput()));
  EXPECT_EQ(digest.size(), 16u);
  EXPECT_EQ(digest.find_first_not_of("0123456789abcdef"), std::string::npos) << digest;
}

TEST(HistoryDigestTest, AnySingleFieldChangeChangesTheDigest) {
  const std::string original = Digest(SampleDigestInput());
  std::vector<std::pair<std::string, DigestInput>> variants;
  auto add = [&](std::string name, auto mutate) {
    DigestInput input = SampleDigestInput();
    mutate(input);
    variants.emplace_back(std::move(name), std::move(input));
  };
  add("attributes byte",
      [](DigestInput& in) { (*in.events.Mutable(1)->mutable_attributes())[1] = 'x'; });
  add("attributes byte flipped", [](DigestInput& in) {
    std::string& attributes = *in.events.Mutable(0)->mutable_attributes();
    attributes[0] = static_cast<char>(attributes[0] ^ 0x01);
  });
  add("attributes length",
      [](DigestInput& in) { in.events.Mutable(2)->mutable_attributes()->push_back('!'); });
  add("event version", [](DigestInput& in) { in.events.Mutable(2)->set_version(102); });
  add("event time",
      [](DigestInput& in) { in.events.Mutable(1)->set_event_time_unix_micros(2001); });
  add("event type", [](DigestInput& in) { in.events.Mutable(1)->set_event_type(TIMER_FIRED); });
  add("event id", [](DigestInput& in) { in.events.Mutable(2)->set_event_id(4); });
  add("item event id", [](DigestInput& in) { in.branch.mutable_items(0)->set_event_id(1); });
  add("item version", [](DigestInput& in) { in.branch.mutable_items(1)->set_version(102); });
  add("extra item", [](DigestInput& in) {
    VersionHistoryItem* item = in.branch.add_items();
    item->set_event_id(4);
    item->set_version(201);
  });
  add("missing event", [](DigestInput& in) { in.events.RemoveLast(); });
  // Moving a byte from one event's attributes to the next must not collide.
  add("attribute boundary", [](DigestInput& in) {
    in.events.Mutable(0)->set_attributes("star");
    in.events.Mutable(1)->set_attributes(std::string("tt\0r", 4));
  });
  for (const auto& [name, input] : variants) {
    EXPECT_NE(Digest(input), original) << name;
  }
}

// ---------------------------------------------------------------------------------------------
// Message codec
// ---------------------------------------------------------------------------------------------

HistoryMessage SampleMessage() {
  HistoryMessage message;
  ReplicationTask* task = message.mutable_task();
  task->set_task_id(7);
  task->set_shard(3);
  task->set_source_cluster("east");
  *task->mutable_workflow() = Key();
  VersionHistoryItem* item = task->add_version_history_items();
  item->set_event_id(2);
  item->set_version(1);
  *task->add_events() = Event(1, 1, WORKFLOW_EXECUTION_STARTED, 10, "hello");
  *task->add_events() = Event(2, 1, WORKFLOW_EXECUTION_SIGNALED, 20, "world");
  task->set_created_unix_micros(30);
  return message;
}

TEST(MessageCodecTest, RoundTrip) {
  const HistoryMessage original = SampleMessage();
  const std::string frame = EncodeFrame(original);
  ASSERT_GT(frame.size(), kFrameHeaderBytes);
  EXPECT_EQ(frame.substr(0, 4), std::string(kFrameMagic));
  HistoryMessage decoded;
  const absl::Status status = DecodeFrame(frame, decoded);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_TRUE(MessageDifferencer::Equals(decoded, original));
}

TEST(MessageCodecTest, RoundTripOfEmptyMessage) {
  const std::string frame = EncodeFrame(ControlMessage());
  EXPECT_EQ(frame.size(), kFrameHeaderBytes);
  ControlMessage decoded;
  EXPECT_TRUE(DecodeFrame(frame, decoded).ok());
}

TEST(MessageCodecTest, Truncated) {
  const std::string frame = EncodeFrame(SampleMessage());
  for (size_t size :
       {size_t{0}, size_t{3}, kFrameHeaderBytes - 1, kFrameHeaderBytes, frame.size() - 1}) {
    HistoryMessage decoded;
    const absl::Status status = DecodeFrame(std::string_view(frame).substr(0, size), decoded);
    EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << "size " << size << ": " << status;
  }
}

TEST(MessageCodecTest, WrongMagic) {
  std::string frame = EncodeFrame(SampleMessage());
  frame[3] = '2';
  HistoryMessage decoded;
  const absl::Status status = DecodeFrame(frame, decoded);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(status.message()), HasSubstr("magic"));
}

TEST(MessageCodecTest, FlippedPayloadBit) {
  const std::string frame = EncodeFrame(SampleMessage());
  for (size_t i = kFrameHeaderBytes; i < frame.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string corrupt = frame;
      corrupt[i] = static_cast<char>(corrupt[i] ^ (1 << bit));
      HistoryMessage decoded;
      EXPECT_EQ(DecodeFrame(corrupt, decoded).code(), absl::StatusCode::kDataLoss)
          << "byte " << i << " bit " << bit;
    }
  }
}

TEST(MessageCodecTest, FlippedChecksumByte) {
  const std::string frame = EncodeFrame(SampleMessage());
  for (size_t i = 4; i < kFrameHeaderBytes; ++i) {
    std::string corrupt = frame;
    corrupt[i] = static_cast<char>(corrupt[i] ^ 0xFF);
    HistoryMessage decoded;
    const absl::Status status = DecodeFrame(corrupt, decoded);
    EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << "byte " << i;
    EXPECT_THAT(std::string(status.message()), HasSubstr("checksum"));
  }
}

TEST(MessageCodecTest, ValidChecksumButUnparseablePayload) {
  // A payload that is not a protobuf (field 0 tag) with a correct frame header.
  const std::string payload("\x00\x01\x02", 3);
  const uint32_t crc = Crc32c(payload);
  std::string frame(kFrameMagic);
  for (int i = 0; i < 4; ++i) frame.push_back(static_cast<char>((crc >> (8 * i)) & 0xFF));
  frame += payload;
  HistoryMessage decoded;
  EXPECT_EQ(DecodeFrame(frame, decoded).code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace xdc

namespace xdc {
namespace {

TEST(TaskSequenceTest, ContiguousTasksLeaveNothingMissing) {
  TaskSequence sequence;
  for (int64_t id = 0; id < 5; ++id) ASSERT_TRUE(RecordTask(sequence, id).ok());
  EXPECT_EQ(sequence.next_task_id(), 5);
  EXPECT_EQ(MissingTaskCount(sequence), 0);
  ASSERT_TRUE(RecordTask(sequence, 3).ok());  // a resend of something seen
  EXPECT_EQ(MissingTaskCount(sequence), 0);
  EXPECT_EQ(sequence.next_task_id(), 5);
}

TEST(TaskSequenceTest, SkippedIdsAreMissingUntilTheyArrive) {
  TaskSequence sequence;
  ASSERT_TRUE(RecordTask(sequence, 0).ok());
  ASSERT_TRUE(RecordTask(sequence, 4).ok());  // 1, 2, 3 skipped (a delivery timeout, then a resend)
  EXPECT_EQ(MissingTaskCount(sequence), 3);
  ASSERT_TRUE(RecordTask(sequence, 2).ok());  // the middle of the range: it splits
  EXPECT_EQ(MissingTaskCount(sequence), 2);
  ASSERT_EQ(sequence.missing_size(), 2);
  EXPECT_EQ(sequence.missing(0).first(), 1);
  EXPECT_EQ(sequence.missing(0).next(), 2);
  EXPECT_EQ(sequence.missing(1).first(), 3);
  EXPECT_EQ(sequence.missing(1).next(), 4);
  ASSERT_TRUE(RecordTask(sequence, 1).ok());
  ASSERT_TRUE(RecordTask(sequence, 3).ok());
  EXPECT_EQ(MissingTaskCount(sequence), 0);
  EXPECT_EQ(sequence.missing_size(), 0);
}

TEST(TaskSequenceTest, AStreamStartingLateReportsWhatItNeverSaw) {
  TaskSequence sequence;
  ASSERT_TRUE(
      RecordTask(sequence, 100).ok());  // tasks 0..99 expired from Kafka before we read them
  EXPECT_EQ(MissingTaskCount(sequence), 100);
}

TEST(TaskSequenceTest, AcknowledgedIdsLeaveMissingAndAreCountedForGood) {
  TaskSequence sequence;
  ASSERT_TRUE(RecordTask(sequence, 0).ok());
  ASSERT_TRUE(RecordTask(sequence, 4).ok());  // 1..3 lost
  ASSERT_TRUE(RecordTask(sequence, 9).ok());  // 5..8 lost
  EXPECT_EQ(AcknowledgeMissing(sequence), 7);
  EXPECT_EQ(MissingTaskCount(sequence), 0);
  EXPECT_EQ(sequence.acknowledged(), 7);
  EXPECT_EQ(sequence.next_task_id(), 10);
  ASSERT_TRUE(RecordTask(sequence, 2).ok());  // a lost one arrives after all: nothing changes
  EXPECT_EQ(MissingTaskCount(sequence), 0);
  ASSERT_TRUE(RecordTask(sequence, 12)
                  .ok());  // later losses are missing again, and add up when acknowledged
  EXPECT_EQ(MissingTaskCount(sequence), 2);
  EXPECT_EQ(AcknowledgeMissing(sequence), 2);
  EXPECT_EQ(sequence.acknowledged(), 9);
  EXPECT_EQ(AcknowledgeMissing(sequence), 0);
  EXPECT_EQ(sequence.acknowledged(), 9);
}

// Issue 15, item 10: a crafted task id at the top of int64 must not wrap next_task_id around
// nor be counted as ~9e18 missing tasks (which block every handover).
TEST(TaskSequenceTest, TaskIdsAtTheTopOfInt64AreRejectedNotCountedAsMissing) {
  constexpr int64_t kTop = std::numeric_limits<int64_t>::max();
  for (int64_t crafted : {kTop, kTop - 1, kMaxTaskId + 1, int64_t{-1}}) {
    TaskSequence sequence;
    ASSERT_TRUE(RecordTask(sequence, 0).ok());
    const absl::Status refused = RecordTask(sequence, crafted);
    EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << crafted;
    EXPECT_THAT(refused.message(), ::testing::HasSubstr("maximum task id")) << crafted;
    EXPECT_EQ(sequence.next_task_id(), 1) << crafted;
    EXPECT_EQ(MissingTaskCount(sequence), 0) << crafted;
    EXPECT_FALSE(ValidateTaskId(crafted).ok()) << crafted;
  }
  // The bound itself is a task id like any other, and the arithmetic around it holds.
  TaskSequence sequence;
  ASSERT_TRUE(RecordTask(sequence, 0).ok());
  ASSERT_TRUE(RecordTask(sequence, kMaxTaskId).ok());
  EXPECT_EQ(sequence.next_task_id(), kMaxTaskId + 1);
  EXPECT_EQ(MissingTaskCount(sequence), kMaxTaskId - 1);
  ASSERT_TRUE(RecordTask(sequence, kMaxTaskId - 1).ok());
  EXPECT_EQ(MissingTaskCount(sequence), kMaxTaskId - 2);
  EXPECT_EQ(AcknowledgeMissing(sequence), kMaxTaskId - 2);
}

TEST(TaskSequenceTest, CountsOfACorruptStoredSequenceSaturateInsteadOfWrapping) {
  constexpr int64_t kTop = std::numeric_limits<int64_t>::max();
  TaskSequence sequence;  // as a store written before the bound could hold it
  for (int i = 0; i < 3; ++i) {
    TaskRange* range = sequence.add_missing();
    range->set_first(1);
    range->set_next(kTop);
  }
  TaskRange* inverted = sequence.add_missing();
  inverted->set_first(std::numeric_limits<int64_t>::min());
  inverted->set_next(kTop);
  EXPECT_EQ(MissingTaskCount(sequence), kTop);
  sequence.set_acknowledged(kTop - 1);
  EXPECT_EQ(AcknowledgeMissing(sequence), kTop);
  EXPECT_EQ(sequence.acknowledged(), kTop);
}

TEST(FailoverVersionTest, VersionsAboveTheMaximumAreRefusedWithAClearError) {
  EXPECT_TRUE(ValidateFailoverVersion(0, "v").ok());
  EXPECT_TRUE(ValidateFailoverVersion(kMaxFailoverVersion, "v").ok());
  for (int64_t version :
       {kMaxFailoverVersion + 1, std::numeric_limits<int64_t>::max(), int64_t{-1}}) {
    const absl::Status s = ValidateFailoverVersion(version, "proposed version");
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << version;
    EXPECT_THAT(s.message(), ::testing::HasSubstr("proposed version")) << version;
    EXPECT_THAT(s.message(), ::testing::HasSubstr("maximum failover version")) << version;
  }
  // No failover goes above the maximum, and none overflows on the way.
  for (int64_t current : {kMaxFailoverVersion - 5, kMaxFailoverVersion, kMaxFailoverVersion + 1,
                          std::numeric_limits<int64_t>::max()}) {
    const absl::StatusOr<int64_t> next = NextVersionFor(current, 5, 10);
    EXPECT_EQ(next.status().code(), absl::StatusCode::kOutOfRange) << current;
    EXPECT_THAT(next.status().message(), ::testing::HasSubstr("maximum failover version"))
        << current;
    const absl::StatusOr<int64_t> above = NextVersionAbove(current, 5, 10);
    EXPECT_EQ(above.status().code(), absl::StatusCode::kOutOfRange) << current;
  }
  // Right below the maximum, a version it owns is still reachable.
  const int64_t owner = kMaxFailoverVersion % 10;  // 4: the last cluster that can take a version
  EXPECT_EQ(NextVersionFor(kMaxFailoverVersion - 5, owner, 10).value(), kMaxFailoverVersion);
  EXPECT_EQ(NextVersionAbove(kMaxFailoverVersion - 1, owner, 10).value(), kMaxFailoverVersion);
}

TEST(TaskSequenceTest, MatchesASetModelUnderRandomDelivery) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 200; ++round) {
    TaskSequence sequence;
    std::set<int64_t> seen;
    bool merged = false;  // once the bound merged two ranges, the count may overstate
    const int64_t n = 1 + static_cast<int64_t>(rng() % 300);
    for (int step = 0; step < 400; ++step) {
      const int64_t id = static_cast<int64_t>(rng() % static_cast<uint64_t>(n));
      ASSERT_TRUE(RecordTask(sequence, id).ok());
      seen.insert(id);
      const int64_t high = *seen.rbegin() + 1;
      const int64_t expected_missing = high - static_cast<int64_t>(seen.size());
      // The bound may merge ranges, which overstates and never understates.
      ASSERT_GE(MissingTaskCount(sequence), expected_missing);
      merged = merged || sequence.missing_size() == kMaxMissingTaskRanges;
      if (!merged) {
        ASSERT_EQ(MissingTaskCount(sequence), expected_missing);
      }
      ASSERT_EQ(sequence.next_task_id(), high);
      ASSERT_LE(sequence.missing_size(), kMaxMissingTaskRanges);
      for (int i = 1; i < sequence.missing_size(); ++i) {
        ASSERT_LT(sequence.missing(i - 1).next(), sequence.missing(i).first() + 1);
      }
    }
  }
}

}  // namespace
}  // namespace xdc

// ---------------------------------------------------------------------------------------------
// Failover versions: malformed input
// ---------------------------------------------------------------------------------------------

namespace xdc {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

TEST(FailoverVersionTest, ValidateVersionLayout) {
  EXPECT_TRUE(ValidateVersionLayout(1, 2).ok());
  EXPECT_TRUE(ValidateVersionLayout(1, 100).ok());
  EXPECT_TRUE(ValidateVersionLayout(99, 100).ok());
  EXPECT_TRUE(ValidateVersionLayout(kMax - 1, kMax).ok());
  for (const auto& [initial, increment] :
       std::vector<std::pair<int64_t, int64_t>>{{1, 1},
                                                {0, 1},
                                                {1, 0},
                                                {0, 0},
                                                {1, -1},
                                                {1, -100},
                                                {1, kMin},  // increment below 2
                                                {0, 100},
                                                {-1, 100},
                                                {kMin, 100},  // initial below 1
                                                {100, 100},
                                                {101, 100},
                                                {kMax, 100},
                                                {2, 2}}) {  // initial >= increment
    const absl::Status status = ValidateVersionLayout(initial, increment);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument)
        << "initial " << initial << ", increment " << increment;
    EXPECT_FALSE(status.message().empty());
  }
}

TEST(FailoverVersionTest, OwnsVersionIsFalseForMalformedInput) {
  // Increment 0, 1 or negative: no cluster owns anything (and no division by zero, no
  // INT64_MIN % -1).
  for (int64_t version : {int64_t{0}, int64_t{1}, int64_t{5}, kMax, kMin}) {
    for (int64_t initial : {int64_t{0}, int64_t{1}}) {
      for (int64_t increment : {int64_t{0}, int64_t{1}, int64_t{-1}, int64_t{-100}, kMin}) {
        EXPECT_FALSE(OwnsVersion(version, initial, increment))
            << version << " " << initial << " " << increment;
      }
    }
  }
  // Initial version 0 would otherwise own every multiple of the increment.
  EXPECT_FALSE(OwnsVersion(0, 0, 100));
  EXPECT_FALSE(OwnsVersion(100, 0, 100));
  EXPECT_FALSE(OwnsVersion(-100, -100, 100));
  // Initial version at or above the increment.
  EXPECT_FALSE(OwnsVersion(100, 100, 100));
  EXPECT_FALSE(OwnsVersion(105, 105, 100));
  EXPECT_FALSE(OwnsVersion(205, 105, 100));
  // Negative versions belong to nobody.
  EXPECT_FALSE(OwnsVersion(-99, 1, 100));
  EXPECT_FALSE(OwnsVersion(-1, 1, 2));
  EXPECT_FALSE(OwnsVersion(kMin, 1, 100));
  // Well-formed extremes still work.
  EXPECT_TRUE(OwnsVersion(kMax, kMax % 10, 10));
  EXPECT_TRUE(OwnsVersion(kMax - 1, kMax - 1, kMax));
  EXPECT_TRUE(OwnsVersion(1, 1, 2));
}

TEST(FailoverVersionTest, NextVersionForRejectsMalformedInput) {
  for (const auto& [initial, increment] : std::vector<std::pair<int64_t, int64_t>>{
           {1, 0}, {1, 1}, {0, 1}, {1, -100}, {0, 100}, {-1, 100}, {100, 100}, {150, 100}}) {
    const absl::StatusOr<int64_t> next = NextVersionFor(5, initial, increment);
    EXPECT_EQ(next.status().code(), absl::StatusCode::kInvalidArgument)
        << "initial " << initial << ", increment " << increment;
  }
  for (int64_t current : {int64_t{-1}, int64_t{-100}, kMin}) {
    const absl::StatusOr<int64_t> next = NextVersionFor(current, 1, 100);
    EXPECT_EQ(next.status().code(), absl::StatusCode::kInvalidArgument) << current;
    EXPECT_FALSE(next.status().message().empty());
  }
}

TEST(FailoverVersionTest, NextVersionForFailsInsteadOfOverflowing) {
  // kMax % 100 == 7: from kMax, cluster 1's next version would be kMax + 94.
  EXPECT_FALSE(NextVersionFor(kMax, 1, 100).ok());
  EXPECT_FALSE(NextVersionFor(kMax, 8, 100).ok());
  EXPECT_FALSE(NextVersionFor(kMax - 6, 8, 100).ok());
  // Near the top: an answer is either the right one or an error, never a wrapped-around value.
  for (int64_t increment : {int64_t{2}, int64_t{10}, int64_t{100}, int64_t{1} << 40}) {
    for (int64_t initial : {int64_t{1}, increment / 2, increment - 1}) {
      if (initial < 1) continue;
      for (int64_t below = 0; below <= 3 * 100; ++below) {
        const int64_t current = kMax - below;
        const __int128 base = current - current % increment;
        __int128 expected = base + initial;
        if (expected < current) expected += increment;
        const absl::StatusOr<int64_t> next = NextVersionFor(current, initial, increment);
        if (expected > kMax) {
          EXPECT_FALSE(next.ok()) << current << " " << initial << " " << increment << " gave "
                                  << *next;
        } else if (next.ok()) {
          EXPECT_EQ(*next, static_cast<int64_t>(expected))
              << current << " " << initial << " " << increment;
        }
      }
    }
  }
}

google::protobuf::RepeatedPtrField<ClusterConfig> Clusters(
    const std::vector<std::pair<std::string, int64_t>>& clusters) {
  google::protobuf::RepeatedPtrField<ClusterConfig> result;
  for (const auto& [name, initial] : clusters) {
    ClusterConfig* cluster = result.Add();
    cluster->set_name(name);
    cluster->set_initial_failover_version(initial);
  }
  return result;
}

TEST(FailoverVersionTest, OwnerOfVersion) {
  const auto clusters = Clusters({{"east", 1}, {"west", 2}, {"south", 99}});
  EXPECT_EQ(OwnerOfVersion(1, clusters, 100).value(), "east");
  EXPECT_EQ(OwnerOfVersion(101, clusters, 100).value(), "east");
  EXPECT_EQ(OwnerOfVersion(2, clusters, 100).value(), "west");
  EXPECT_EQ(OwnerOfVersion(1002, clusters, 100).value(), "west");
  EXPECT_EQ(OwnerOfVersion(199, clusters, 100).value(), "south");
  for (int64_t version : {int64_t{0}, int64_t{3}, int64_t{100}, int64_t{-1}, int64_t{-99}, kMin}) {
    const absl::StatusOr<std::string> owner = OwnerOfVersion(version, clusters, 100);
    EXPECT_EQ(owner.status().code(), absl::StatusCode::kNotFound) << version;
    EXPECT_FALSE(owner.status().message().empty());
  }
  EXPECT_EQ(OwnerOfVersion(1, Clusters({}), 100).status().code(), absl::StatusCode::kNotFound);
  // A malformed layout owns nothing.
  EXPECT_EQ(OwnerOfVersion(1, clusters, 0).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(OwnerOfVersion(0, Clusters({{"zero", 0}}), 100).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(OwnerOfVersion(100, Clusters({{"zero", 0}, {"east", 1}}), 100).status().code(),
            absl::StatusCode::kNotFound);
}

// ---------------------------------------------------------------------------------------------
// Version histories: truncation, membership, ordering, malformed input
// ---------------------------------------------------------------------------------------------

void ExpectTruncated(const VersionHistory& history, int64_t last_event_id,
                     const VersionHistory& expected) {
  absl::StatusOr<VersionHistory> truncated = TruncateHistory(history, last_event_id);
  ASSERT_TRUE(truncated.ok()) << "cut at " << last_event_id << ": " << truncated.status();
  EXPECT_TRUE(MessageDifferencer::Equals(*truncated, expected))
      << "cut at " << last_event_id << ": " << truncated->ShortDebugString();
}

TEST(VersionHistoryTest, TruncateHistory) {
  const VersionHistory history = History({{3, 1}, {5, 2}, {9, 4}});
  ExpectTruncated(history, 4, History({{3, 1}, {4, 2}}));  // inside an item
  ExpectTruncated(history, 7, History({{3, 1}, {5, 2}, {7, 4}}));
  ExpectTruncated(history, 1, History({{1, 1}}));
  ExpectTruncated(history, 3, History({{3, 1}}));  // at item boundaries
  ExpectTruncated(history, 5, History({{3, 1}, {5, 2}}));
  ExpectTruncated(history, 9, history);  // the whole branch
  ExpectTruncated(history, 0, VersionHistory());
  ExpectTruncated(VersionHistory(), 0, VersionHistory());
  for (int64_t beyond : {int64_t{10}, int64_t{100}, int64_t{-1}, kMax, kMin}) {
    const absl::StatusOr<VersionHistory> truncated = TruncateHistory(history, beyond);
    EXPECT_EQ(truncated.status().code(), absl::StatusCode::kInvalidArgument) << beyond;
    EXPECT_FALSE(truncated.status().message().empty());
  }
  EXPECT_EQ(TruncateHistory(VersionHistory(), 1).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(VersionHistoryTest, TruncateHistoryKeepsEveryEventUpToTheCut) {
  const VersionHistory history = History({{2, 1}, {3, 5}, {8, 6}, {9, 10}});
  for (int64_t cut = 0; cut <= 9; ++cut) {
    absl::StatusOr<VersionHistory> truncated = TruncateHistory(history, cut);
    ASSERT_TRUE(truncated.ok()) << truncated.status();
    EXPECT_EQ(LastEventId(*truncated), cut);
    if (cut > 0) {
      EXPECT_TRUE(ValidateVersionHistory(*truncated).ok()) << cut;
    }
    for (int64_t id = 1; id <= 9; ++id) {
      if (id <= cut) {
        EXPECT_EQ(VersionOfEvent(*truncated, id).value(), VersionOfEvent(history, id).value());
      } else {
        EXPECT_FALSE(VersionOfEvent(*truncated, id).ok()) << cut << " " << id;
      }
    }
  }
}

TEST(VersionHistoryTest, ContainsEvent) {
  const VersionHistory history = History({{3, 1}, {5, 2}});
  EXPECT_TRUE(ContainsEvent(history, 1, 1));
  EXPECT_TRUE(ContainsEvent(history, 3, 1));
  EXPECT_TRUE(ContainsEvent(history, 4, 2));
  EXPECT_TRUE(ContainsEvent(history, 5, 2));
  EXPECT_FALSE(ContainsEvent(history, 4, 1));  // event 4 is on the branch, with another version
  EXPECT_FALSE(ContainsEvent(history, 3, 2));
  EXPECT_FALSE(ContainsEvent(history, 6, 2));  // beyond the branch
  EXPECT_FALSE(ContainsEvent(history, 0, 1));
  EXPECT_FALSE(ContainsEvent(history, -1, 1));
  EXPECT_FALSE(ContainsEvent(history, kMin, 1));
  EXPECT_FALSE(ContainsEvent(VersionHistory(), 1, 1));
  EXPECT_FALSE(ContainsEvent(VersionHistory(), 0, 0));
}

int Sign(int x) { return (x > 0) - (x < 0); }

TEST(VersionHistoryTest, CompareBranchesHigherLastVersionWins) {
  // Higher last version wins even when the branch is shorter.
  EXPECT_GT(CompareBranches(History({{3, 1}, {4, 3}}), History({{10, 2}})), 0);
  EXPECT_LT(CompareBranches(History({{10, 2}}), History({{3, 1}, {4, 3}})), 0);
  EXPECT_GT(CompareBranches(History({{1, 101}}), History({{3, 1}, {50, 100}})), 0);
  // Equal last versions (not produced by a correct federation) still order deterministically.
  EXPECT_GT(CompareBranches(History({{5, 2}}), History({{3, 2}})), 0);
  EXPECT_NE(CompareBranches(History({{2, 1}, {5, 3}}), History({{4, 2}, {5, 3}})), 0);
  EXPECT_EQ(CompareBranches(History({{3, 1}, {5, 2}}), History({{3, 1}, {5, 2}})), 0);
  EXPECT_EQ(CompareBranches(VersionHistory(), VersionHistory()), 0);
  EXPECT_LT(CompareBranches(VersionHistory(), History({{1, 0}})), 0);
  EXPECT_GT(CompareBranches(History({{1, 1}}), VersionHistory()), 0);
}

// A random valid history over small ranges, so that equal last versions, prefixes and equal
// histories all occur.
VersionHistory RandomHistory(std::mt19937_64& rng) {
  VersionHistory history;
  const int items = std::uniform_int_distribution<int>(0, 3)(rng);
  int64_t event_id = 0;
  int64_t version = 0;
  for (int i = 0; i < items; ++i) {
    event_id += std::uniform_int_distribution<int64_t>(1, 3)(rng);
    version += std::uniform_int_distribution<int64_t>(1, 2)(rng);
    VersionHistoryItem* item = history.add_items();
    item->set_event_id(event_id);
    item->set_version(version);
  }
  return history;
}

int64_t LastVersion(const VersionHistory& history) {
  return history.items_size() == 0 ? -1 : history.items(history.items_size() - 1).version();
}

TEST(VersionHistoryTest, CompareBranchesIsATotalOrder) {
  std::mt19937_64 rng(11);
  for (int i = 0; i < 20000; ++i) {
    const VersionHistory a = RandomHistory(rng);
    const VersionHistory b = RandomHistory(rng);
    const VersionHistory c = RandomHistory(rng);
    const int ab = CompareBranches(a, b);
    ASSERT_EQ(Sign(ab), -Sign(CompareBranches(b, a)))
        << a.ShortDebugString() << " vs " << b.ShortDebugString();
    ASSERT_EQ(ab == 0, MessageDifferencer::Equals(a, b))
        << a.ShortDebugString() << " vs " << b.ShortDebugString();
    ASSERT_EQ(CompareBranches(a, a), 0);
    if (LastVersion(a) != LastVersion(b)) {
      ASSERT_EQ(ab > 0, LastVersion(a) > LastVersion(b))
          << a.ShortDebugString() << " vs " << b.ShortDebugString();
    }
    const int bc = CompareBranches(b, c);
    if (ab <= 0 && bc <= 0) {
      ASSERT_LE(CompareBranches(a, c), 0) << a.ShortDebugString() << " <= " << b.ShortDebugString()
                                          << " <= " << c.ShortDebugString();
    }
  }
}

TEST(VersionHistoryTest, LcaOfAForkIsTheForkPoint) {
  // `b` is `a` cut at a random event, then continued with versions `a` never used (a version is
  // written by one cluster on one branch): their LCA is the cut.
  std::mt19937_64 rng(5);
  for (int i = 0; i < 5000; ++i) {
    VersionHistory a;
    int64_t event_id = 0;
    int64_t version = -1;
    const int items = std::uniform_int_distribution<int>(1, 4)(rng);
    for (int j = 0; j < items; ++j) {
      event_id += std::uniform_int_distribution<int64_t>(1, 4)(rng);
      version += 2 * std::uniform_int_distribution<int64_t>(1, 2)(rng);  // odd versions
      VersionHistoryItem* item = a.add_items();
      item->set_event_id(event_id);
      item->set_version(version);
    }
    const int64_t cut = std::uniform_int_distribution<int64_t>(0, LastEventId(a))(rng);
    VersionHistory b = TruncateHistory(a, cut).value();
    int64_t b_version = 0;  // even versions above the cut's
    if (cut > 0) b_version = VersionOfEvent(a, cut).value() + 1;
    int64_t b_event = cut;
    const int extra = std::uniform_int_distribution<int>(1, 3)(rng);
    for (int j = 0; j < extra; ++j) {
      b_event += std::uniform_int_distribution<int64_t>(1, 3)(rng);
      b_version += 2;
      VersionHistoryItem* item = b.add_items();
      item->set_event_id(b_event);
      item->set_version(b_version);
    }
    ASSERT_TRUE(ValidateVersionHistory(b).ok()) << b.ShortDebugString();
    for (const auto& [x, y] : {std::pair(a, b), std::pair(b, a)}) {
      absl::StatusOr<VersionHistoryItem> lca = FindLowestCommonAncestor(x, y);
      if (cut == 0) {
        EXPECT_EQ(lca.status().code(), absl::StatusCode::kNotFound)
            << x.ShortDebugString() << " / " << y.ShortDebugString();
      } else {
        ASSERT_TRUE(lca.ok()) << x.ShortDebugString() << " / " << y.ShortDebugString();
        EXPECT_EQ(lca->event_id(), cut) << x.ShortDebugString() << " / " << y.ShortDebugString();
        EXPECT_EQ(lca->version(), VersionOfEvent(a, cut).value());
      }
    }
    absl::StatusOr<VersionHistoryItem> self = FindLowestCommonAncestor(a, a);
    ASSERT_TRUE(self.ok());
    EXPECT_EQ(self->event_id(), LastEventId(a));
    if (HasFailure()) return;
  }
}

// Histories no valid branch has.
std::vector<std::pair<std::string, VersionHistory>> MalformedHistories() {
  return {
      {"empty", VersionHistory()},
      {"ids not ascending", History({{5, 1}, {3, 2}})},
      {"ids repeated", History({{3, 1}, {3, 2}})},
      {"versions not ascending", History({{3, 2}, {5, 1}})},
      {"versions repeated", History({{3, 1}, {5, 1}})},
      {"event id 0", History({{0, 1}})},
      {"negative event id", History({{-4, 1}})},
      {"negative event id later", History({{3, 1}, {-2, 2}})},
      {"zero event id later", History({{3, 1}, {0, 2}})},
      {"extreme ids", History({{kMin, 1}, {kMax, 2}})},
  };
}

TEST(VersionHistoryTest, ValidateVersionHistoryRejectsMalformedInput) {
  for (const auto& [name, history] : MalformedHistories()) {
    const absl::Status status = ValidateVersionHistory(history);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_FALSE(status.message().empty()) << name;
  }
}

TEST(VersionHistoryTest, LcaOfMalformedInputIsRejected) {
  std::vector<std::pair<std::string, VersionHistory>> inputs = MalformedHistories();
  inputs.emplace_back("valid", History({{3, 1}, {5, 2}}));
  for (const auto& [name_a, a] : inputs) {
    for (const auto& [name_b, b] : inputs) {
      const absl::StatusOr<VersionHistoryItem> lca = FindLowestCommonAncestor(a, b);
      auto malformed = [](const VersionHistory& h) {
        return h.items_size() > 0 && !ValidateVersionHistory(h).ok();
      };
      if (malformed(a) || malformed(b)) {
        EXPECT_EQ(lca.status().code(), absl::StatusCode::kInvalidArgument)
            << name_a << " / " << name_b;
      } else if (a.items_size() == 0 || b.items_size() == 0) {
        EXPECT_EQ(lca.status().code(), absl::StatusCode::kNotFound) << name_a << " / " << name_b;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Workflow state: rebuild after a branch switch, reapply_pending
// ---------------------------------------------------------------------------------------------

// Events 1..n of a random run: a start, then non-terminal events with non-decreasing versions,
// sometimes closed by a terminal event.
std::vector<HistoryEvent> RandomRun(std::mt19937_64& rng) {
  static constexpr EventType kMiddle[] = {ACTIVITY_TASK_SCHEDULED,
                                          ACTIVITY_TASK_COMPLETED,
                                          TIMER_STARTED,
                                          TIMER_FIRED,
                                          WORKFLOW_EXECUTION_SIGNALED,
                                          WORKFLOW_EXECUTION_CANCEL_REQUESTED};
  const int64_t n = std::uniform_int_distribution<int64_t>(1, 20)(rng);
  std::vector<HistoryEvent> events;
  int64_t version = std::uniform_int_distribution<int64_t>(1, 3)(rng);
  for (int64_t id = 1; id <= n; ++id) {
    if (std::bernoulli_distribution(0.2)(rng)) version += 100;
    EventType type = kMiddle[std::uniform_int_distribution<int>(0, 5)(rng)];
    if (id == 1) type = WORKFLOW_EXECUTION_STARTED;
    if (id == n && id > 1 && std::bernoulli_distribution(0.3)(rng)) {
      type = std::bernoulli_distribution(0.5)(rng) ? WORKFLOW_EXECUTION_COMPLETED
                                                   : WORKFLOW_EXECUTION_TERMINATED;
    }
    events.push_back(Event(id, version, type, 1000 * id + version, "attrs"));
  }
  return events;
}

// `state` with `branch` (the history of `events`) made current behind another branch, and its
// derived fields scrambled, as after a switch and before the rebuild.
WorkflowMutableState SwitchedState(const VersionHistory& branch) {
  WorkflowMutableState state = NewWorkflowState(Key());
  VersionHistories* histories = state.mutable_version_histories();
  *histories->mutable_histories(0) = History({{1, 0}});
  *histories->add_histories() = branch;
  histories->set_current_index(1);
  state.set_next_event_id(999);
  state.set_status(WORKFLOW_STATUS_TERMINATED);
  state.set_start_time_unix_micros(-5);
  state.set_last_event_time_unix_micros(-6);
  state.set_reapply_pending(true);
  return state;
}

TEST(WorkflowStateTest, RebuildMatchesApplyingTheEventsOneByOne) {
  std::mt19937_64 rng(3);
  for (int i = 0; i < 1000; ++i) {
    const std::vector<HistoryEvent> events = RandomRun(rng);
    WorkflowMutableState expected = NewWorkflowState(Key());
    for (const HistoryEvent& event : events) {
      ASSERT_TRUE(ApplyEventToState(expected, event).ok());
    }
    const VersionHistory branch = *CurrentBranch(expected.version_histories());
    WorkflowMutableState state = SwitchedState(branch);
    const VersionHistories histories_before = state.version_histories();
    const absl::Status status = RebuildFromCurrentBranch(state, events);
    ASSERT_TRUE(status.ok()) << status;
    EXPECT_EQ(state.next_event_id(), expected.next_event_id());
    EXPECT_EQ(state.status(), expected.status());
    EXPECT_EQ(state.start_time_unix_micros(), expected.start_time_unix_micros());
    EXPECT_EQ(state.last_event_time_unix_micros(), expected.last_event_time_unix_micros());
    // Kept: the key, every branch and which is current.
    EXPECT_TRUE(MessageDifferencer::Equals(state.key(), Key()));
    EXPECT_TRUE(MessageDifferencer::Equals(state.version_histories(), histories_before));
    if (HasFailure()) return;
  }
}

TEST(WorkflowStateTest, RebuildKeepsReapplyPendingOfAnOpenRun) {
  const std::vector<HistoryEvent> events = {Event(1, 1, WORKFLOW_EXECUTION_STARTED, 10),
                                            Event(2, 1, WORKFLOW_EXECUTION_SIGNALED, 20)};
  WorkflowMutableState state = SwitchedState(History({{2, 1}}));
  ASSERT_TRUE(RebuildFromCurrentBranch(state, events).ok());
  EXPECT_TRUE(state.reapply_pending());
  EXPECT_EQ(state.status(), WORKFLOW_STATUS_RUNNING);
  EXPECT_EQ(state.next_event_id(), 3);
  EXPECT_EQ(state.start_time_unix_micros(), 10);
  EXPECT_EQ(state.last_event_time_unix_micros(), 20);
}

TEST(WorkflowStateTest, RebuildRejectsEventsThatDisagreeWithTheBranch) {
  const VersionHistory branch = History({{2, 1}, {4, 2}});
  const std::vector<HistoryEvent> good = {
      Event(1, 1, WORKFLOW_EXECUTION_STARTED, 10), Event(2, 1, TIMER_STARTED, 20),
      Event(3, 2, TIMER_FIRED, 30), Event(4, 2, WORKFLOW_EXECUTION_SIGNALED, 40)};
  {
    WorkflowMutableState state = SwitchedState(branch);
    ASSERT_TRUE(RebuildFromCurrentBranch(state, good).ok());
  }
  std::vector<std::pair<std::string, std::vector<HistoryEvent>>> bad;
  bad.emplace_back("no events", std::vector<HistoryEvent>());
  bad.emplace_back("last event missing", std::vector<HistoryEvent>(good.begin(), good.end() - 1));
  bad.emplace_back("first event missing", std::vector<HistoryEvent>(good.begin() + 1, good.end()));
  {
    std::vector<HistoryEvent> events = good;
    events.push_back(Event(5, 2, TIMER_STARTED, 50));
    bad.emplace_back("extra event", events);
  }
  {
    std::vector<HistoryEvent> events = good;
    events[2].set_version(1);  // the version boundary moves
    bad.emplace_back("wrong version inside", events);
  }
  {
    std::vector<HistoryEvent> events = good;
    events[3].set_version(3);
    bad.emplace_back("wrong last version", events);
  }
  {
    std::vector<HistoryEvent> events = good;
    std::swap(events[1], events[2]);
    bad.emplace_back("out of order", events);
  }
  {
    std::vector<HistoryEvent> events = good;
    events[1].set_event_type(WORKFLOW_EXECUTION_COMPLETED);  // events after the run closed
    bad.emplace_back("event after close", events);
  }
  {
    std::vector<HistoryEvent> events = good;
    events[0].set_event_type(WORKFLOW_EXECUTION_SIGNALED);
    bad.emplace_back("no start", events);
  }
  for (const auto& [name, events] : bad) {
    WorkflowMutableState state = SwitchedState(branch);
    const WorkflowMutableState before = state;
    const absl::Status status = RebuildFromCurrentBranch(state, events);
    EXPECT_FALSE(status.ok()) << name;
    EXPECT_FALSE(status.message().empty()) << name;
    EXPECT_TRUE(MessageDifferencer::Equals(state, before)) << name << ": state changed on error";
  }
}

TEST(WorkflowStateTest, RebuildWithoutCurrentBranchFails) {
  WorkflowMutableState state = SwitchedState(History({{1, 1}}));
  state.mutable_version_histories()->set_current_index(7);
  const WorkflowMutableState before = state;
  EXPECT_FALSE(RebuildFromCurrentBranch(state, {Event(1, 1, WORKFLOW_EXECUTION_STARTED)}).ok());
  EXPECT_TRUE(MessageDifferencer::Equals(state, before));
}

TEST(WorkflowStateTest, TerminalEventClearsReapplyPending) {
  for (EventType closing : {WORKFLOW_EXECUTION_COMPLETED, WORKFLOW_EXECUTION_TERMINATED}) {
    WorkflowMutableState state = NewWorkflowState(Key());
    ASSERT_TRUE(ApplyEventToState(state, Event(1, 1, WORKFLOW_EXECUTION_STARTED)).ok());
    state.set_reapply_pending(true);
    ASSERT_TRUE(ApplyEventToState(state, Event(2, 1, WORKFLOW_EXECUTION_SIGNALED)).ok());
    EXPECT_TRUE(state.reapply_pending()) << "only a closed run has nothing left to take";
    ASSERT_TRUE(ApplyEventToState(state, Event(3, 1, closing)).ok());
    EXPECT_FALSE(state.reapply_pending()) << EventType_Name(closing);
  }
}

}  // namespace
}  // namespace xdc
