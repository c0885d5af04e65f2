// ShardCursor: the publisher's send/acknowledge bookkeeping of one shard.
#include "gtest/gtest.h"
#include "replicator/shard_publisher.h"

namespace xdc {
namespace {

TEST(ShardCursorTest, DeliveredAdvancesOverContiguousAcknowledgements) {
  ShardCursor cursor(10);
  for (int64_t id = 10; id < 14; ++id) cursor.OnSent(id);
  cursor.OnDelivered(11);  // out of order: waits for 10
  EXPECT_EQ(cursor.delivered(), 10);
  cursor.OnDelivered(10);
  EXPECT_EQ(cursor.delivered(), 12);
  cursor.OnDelivered(12);
  cursor.OnDelivered(13);
  EXPECT_EQ(cursor.delivered(), 14);
  EXPECT_EQ(cursor.in_flight(), 0u);
}

TEST(ShardCursorTest, AFailedTaskIsResentEvenUnderSteadyLoad) {
  ShardCursor cursor(0);
  int64_t next_new = 0;
  auto send_new = [&](int n) {
    for (int i = 0; i < n && cursor.may_send(); ++i) cursor.OnSent(next_new++);
  };
  send_new(5);         // 0..4 in flight
  cursor.OnFailed(3);  // 3 times out
  cursor.OnDelivered(0);
  cursor.OnDelivered(1);
  cursor.OnDelivered(2);
  // The publisher offers more new work every round; none may go out before the rewind.
  cursor.MaybeRewind();
  send_new(10);
  EXPECT_EQ(cursor.next_to_send(), 5);
  EXPECT_FALSE(cursor.may_send());
  cursor.OnDelivered(4);  // the last one in flight drains
  cursor.MaybeRewind();
  EXPECT_TRUE(cursor.may_send());
  EXPECT_EQ(cursor.next_to_send(), 3);  // resend from the first unacknowledged task
  EXPECT_EQ(cursor.delivered(), 3);
  for (int64_t id = 3; id < 5; ++id) cursor.OnSent(id);
  cursor.OnDelivered(3);
  cursor.OnDelivered(4);
  EXPECT_EQ(cursor.delivered(), 5);
  EXPECT_EQ(cursor.in_flight(), 0u);
}

// After a startup check raised the outbox's task ids (StoreWrite::task_id_floors), the outbox has
// no tasks in between: they count as delivered once everything before them is, so the publish
// pointer moves on instead of waiting for tasks that were never assigned.
TEST(ShardCursorTest, IdsTheOutboxNeverHeldCountAsDeliveredInOrder) {
  ShardCursor cursor(10);
  cursor.OnSent(10);
  cursor.OnSent(11);
  cursor.OnAbsent(12, 50);  // the next task in the outbox is 50
  EXPECT_EQ(cursor.next_to_send(), 50);
  EXPECT_EQ(cursor.delivered(), 10);  // 10 and 11 are still in flight
  cursor.OnSent(50);
  cursor.OnDelivered(50);
  cursor.OnDelivered(10);
  EXPECT_EQ(cursor.delivered(), 11);
  cursor.OnDelivered(11);
  EXPECT_EQ(cursor.delivered(), 51);
  cursor.OnAbsent(12, 50);  // read again after a rewind: no change
  EXPECT_EQ(cursor.delivered(), 51);
  EXPECT_EQ(cursor.next_to_send(), 51);
  EXPECT_EQ(cursor.in_flight(), 0u);
}

}  // namespace
}  // namespace xdc
