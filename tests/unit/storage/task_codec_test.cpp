#include "storage/task_codec.h"

#include <gtest/gtest.h>

#include "engine/queue.h"
#include "storage/binary_codec.h"

namespace conveyor {
namespace {

TEST(TaskCodecTest, RoundTripsEveryField) {
  Queue queue("orders", SystemClock::Instance());
  Task t;
  t.id = 12345;
  t.queue = &queue;
  t.priority = -7;
  t.state = TaskState::kLeased;
  t.dead_reason = DeadReason::kNack;
  t.attempts = 3;
  t.max_attempts = 9;
  t.created_at = 1700000000000;
  t.run_at = 1700000000500;
  t.ready_at = 1700000000600;
  t.set_deadline(kNever);
  t.set_lease_ms(2500);
  t.set_finished_at(0);
  t.cold().result = R"({"r":1.50})";
  t.cold().progress = "[1]";
  t.cold().errors = {{1, 1, "boom"}, {2, 2, std::string("\0x", 2)}};
  t.cold().idempotency_key = "key";
  t.cold().lease_token = "tok";
  t.cold().lease_worker = "w1";
  t.set_lease_expires_at(1700000003000);
  t.cold().releases = 4;
  t.cold().buries = 1;
  t.cold().kicks = 300;
  KeyState key;
  key.name = "tenant-9";
  t.key = &key;
  t.pauses_key = true;
  t.cold().unique_key = "report:7";
  t.cold().unique_until = 1700000009000;
  t.cold().unique_active = true;
  std::string bytes;
  EncodeTaskMeta(t, bytes);
  StoredTask back;
  ASSERT_TRUE(DecodeTaskMeta(bytes, back));
  EXPECT_EQ(back.queue, "orders");
  EXPECT_EQ(back.key, "tenant-9");
  EXPECT_TRUE(back.task.pauses_key);
  EXPECT_EQ(back.task.unique_key(), "report:7");
  EXPECT_EQ(back.task.unique_until(), 1700000009000);
  EXPECT_TRUE(back.task.unique_active());
  EXPECT_EQ(back.task.releases(), 4u);
  EXPECT_EQ(back.task.buries(), 1u);
  EXPECT_EQ(back.task.kicks(), 300u);
  EXPECT_EQ(back.task.id, t.id);
  EXPECT_EQ(back.task.priority, -7);
  EXPECT_EQ(back.task.state, TaskState::kLeased);
  EXPECT_EQ(back.task.dead_reason, DeadReason::kNack);
  EXPECT_EQ(back.task.deadline(), kNever);
  EXPECT_EQ(back.task.lease_ms(), 2500);
  EXPECT_EQ(back.task.lease_token(), "tok");
  EXPECT_TRUE(back.task.result().empty());  // stored on its own (deltas family)
  ASSERT_EQ(back.task.errors().size(), 2u);
  EXPECT_EQ(back.task.errors()[1].message, std::string("\0x", 2));
  EXPECT_EQ(back.task.lease_expires_at(), t.lease_expires_at());
  // Every strict prefix is refused, never misread.
  for (size_t n = 0; n < bytes.size(); ++n) {
    StoredTask partial;
    EXPECT_FALSE(DecodeTaskMeta(std::string_view(bytes).substr(0, n), partial)) << n;
  }
}

// A record written before the job counts (version 3) still loads, with counts 0.
TEST(TaskCodecTest, VersionThreeRecordLoadsWithoutCounts) {
  Queue queue("old", SystemClock::Instance());
  Task t;
  t.id = 99;
  t.queue = &queue;
  t.attempts = 2;
  std::string bytes;
  EncodeTaskMeta(t, bytes);
  // Three zero varints (the counts), then version 5's fields: an empty key, its pause
  // flag, an empty unique key, its end (kNever) and its mode.
  std::string tail;
  BinaryWriter w(tail);
  for (int i = 0; i < 3; ++i) w.Varint(0);
  w.Bytes("");
  w.Byte(0);
  w.Bytes("");
  w.Signed(kNever);
  w.Byte(0);
  ASSERT_EQ(bytes.substr(bytes.size() - tail.size()), tail);
  bytes.resize(bytes.size() - tail.size());
  bytes[0] = 3;
  StoredTask back;
  ASSERT_TRUE(DecodeTaskMeta(bytes, back));
  EXPECT_EQ(back.task.id, 99u);
  EXPECT_EQ(back.task.attempts, 2u);
  EXPECT_EQ(back.task.releases() + back.task.buries() + back.task.kicks(), 0u);
  bytes[0] = 4;  // the same bytes claiming version 4 lack the counts
  EXPECT_FALSE(DecodeTaskMeta(bytes, back));
}

TEST(TaskCodecTest, StateDeltaIsSmallAndAppliesOnlyStateFields) {
  Queue queue("q", SystemClock::Instance());
  Task t;
  t.id = 7;
  t.queue = &queue;
  t.cold().result = std::string(1 << 20, 'r');
  for (int i = 0; i < 50; ++i) t.cold().errors.push_back({i, 1, std::string(4096, 'e')});
  t.state = TaskState::kLeased;
  t.attempts = 4;
  t.cold().lease_token = "0123456789abcdef0123456789abcdef";
  t.cold().lease_worker = "worker-1";
  t.set_lease_expires_at(1700000009000);
  std::string delta;
  EncodeStateDelta(t, delta);
  EXPECT_LT(delta.size(), 100u);  // whatever the result and errors weigh
  Task back;
  back.cold().errors = {{1, 1, "kept"}};
  ASSERT_TRUE(ApplyStateDelta(delta, back));
  EXPECT_EQ(back.state, TaskState::kLeased);
  EXPECT_EQ(back.attempts, 4u);
  EXPECT_EQ(back.lease_token(), t.lease_token());
  EXPECT_EQ(back.lease_expires_at(), t.lease_expires_at());
  ASSERT_EQ(back.errors().size(), 1u);
  for (size_t n = 0; n < delta.size(); ++n) {
    Task partial;
    EXPECT_FALSE(ApplyStateDelta(std::string_view(delta).substr(0, n), partial)) << n;
  }
  uint64_t id = 0;
  char tag = 0;
  ASSERT_TRUE(ParseDeltaKey(DeltaKey(7, kResultTag), id, tag));
  EXPECT_EQ(id, 7u);
  EXPECT_EQ(tag, kResultTag);
  EXPECT_LT(DeltaKey(7, kStateDeltaTag), TaskKey(8));  // a task's deltas sort before the next
}

TEST(TaskCodecTest, QueueConfigAndKeys) {
  QueueConfig c;
  c.max_attempts = 4;
  c.backoff.factor = 1.5;
  c.paused = true;
  std::string bytes;
  EncodeQueueConfig(c, bytes);
  QueueConfig back;
  ASSERT_TRUE(DecodeQueueConfig(bytes, back));
  EXPECT_EQ(back.max_attempts, 4u);
  EXPECT_EQ(back.backoff.factor, 1.5);
  EXPECT_TRUE(back.paused);
  EXPECT_EQ(back, c);
  // Flow control (version 3): every field back, and a record without it still loads.
  c.rate_limit = RateLimit{2.5, 7, true};
  c.concurrency = ConcurrencyLimit{3, true};
  c.fair_by_key = true;
  c.key_weights = {{"a", 2}, {"b", 9}};
  c.aging_ms = 60000;
  std::string flow;
  EncodeQueueConfig(c, flow);
  QueueConfig flow_back;
  ASSERT_TRUE(DecodeQueueConfig(flow, flow_back));
  EXPECT_EQ(flow_back, c);
  std::string v2 = bytes.substr(0, bytes.size() - 5);  // without the 5 bytes of no flow
  v2[0] = 2;
  QueueConfig old;
  ASSERT_TRUE(DecodeQueueConfig(v2, old));
  EXPECT_FALSE(old.rate_limit.has_value());
  EXPECT_EQ(old.max_attempts, 4u);
  for (size_t n = 1; n < flow.size(); ++n) {
    QueueConfig partial;
    EXPECT_FALSE(DecodeQueueConfig(std::string_view(flow).substr(0, n), partial)) << n;
  }
  uint64_t id = 0;
  ASSERT_TRUE(ParseTaskKey(TaskKey(0x0102030405060708ull), id));
  EXPECT_EQ(id, 0x0102030405060708ull);
  EXPECT_LT(TaskKey(255), TaskKey(256));  // byte order is id order
}

}  // namespace
}  // namespace conveyor
