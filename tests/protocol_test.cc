// Unit tests of the pure protocol layer: stable hashing, checksums, failover versions, version
// histories, workflow state transitions, history digests and message framing.

#include <cstdint>
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
  EXPECT_EQ(NextVersionFor(1, 2, 100), 2);
  EXPECT_EQ(NextVersionFor(2, 1, 100), 101);
  EXPECT_EQ(NextVersionFor(101, 1, 100), 101);
  EXPECT_EQ(NextVersionFor(102, 1, 100), 201);
  EXPECT_EQ(NextVersionFor(0, 1, 100), 1);
  EXPECT_EQ(NextVersionFor(100, 1, 100), 101);
  EXPECT_EQ(NextVersionFor(199, 99, 100), 199);
}

TEST(FailoverVersionTest, NextVersionForIsSmallestOwnedVersionAtLeastCurrent) {
  constexpr int64_t kIncrement = 10;
  for (int64_t current = 0; current < 100; ++current) {
    for (int64_t initial = 1; initial < kIncrement; ++initial) {
      const int64_t next = NextVersionFor(current, initial, kIncrement);
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
  for (int64_t id = 0; id < 5; ++id) RecordTask(sequence, id);
  EXPECT_EQ(sequence.next_task_id(), 5);
  EXPECT_EQ(MissingTaskCount(sequence), 0);
  RecordTask(sequence, 3);  // a resend of something seen
  EXPECT_EQ(MissingTaskCount(sequence), 0);
  EXPECT_EQ(sequence.next_task_id(), 5);
}

TEST(TaskSequenceTest, SkippedIdsAreMissingUntilTheyArrive) {
  TaskSequence sequence;
  RecordTask(sequence, 0);
  RecordTask(sequence, 4);  // 1, 2, 3 skipped (a delivery timeout, then a resend)
  EXPECT_EQ(MissingTaskCount(sequence), 3);
  RecordTask(sequence, 2);  // the middle of the range: it splits
  EXPECT_EQ(MissingTaskCount(sequence), 2);
  ASSERT_EQ(sequence.missing_size(), 2);
  EXPECT_EQ(sequence.missing(0).first(), 1);
  EXPECT_EQ(sequence.missing(0).next(), 2);
  EXPECT_EQ(sequence.missing(1).first(), 3);
  EXPECT_EQ(sequence.missing(1).next(), 4);
  RecordTask(sequence, 1);
  RecordTask(sequence, 3);
  EXPECT_EQ(MissingTaskCount(sequence), 0);
  EXPECT_EQ(sequence.missing_size(), 0);
}

TEST(TaskSequenceTest, AStreamStartingLateReportsWhatItNeverSaw) {
  TaskSequence sequence;
  RecordTask(sequence, 100);  // tasks 0..99 expired from Kafka before we read them
  EXPECT_EQ(MissingTaskCount(sequence), 100);
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
      RecordTask(sequence, id);
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
