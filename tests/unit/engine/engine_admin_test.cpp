// Operators' bulk commands in the engine: retry-dead and purge in slices of
// kMaxBulkPerCall, and deleting only an empty queue. A manual clock; nothing sleeps.
#include <gtest/gtest.h>

#include "engine/engine.h"
#include "now_journal.h"

namespace conveyor {
namespace {

class EngineAdminTest : public ::testing::Test {
 protected:
  EngineAdminTest() : engine_(clock_, journal_, shared_, Limits{}, 7) {}

  void PutDead(size_t n) {
    std::vector<TaskSpec> specs(n);
    for (auto& s : specs) s.max_attempts = 1;
    ASSERT_TRUE(engine_.Enqueue("q", std::move(specs)).error.ok());
    LeaseRequest r;
    r.max = static_cast<uint32_t>(n);
    engine_.Lease("q", r, [&](LeaseResult got) {
      for (auto& t : got.tasks) engine_.Nack(t.id, t.lease_token, "x", std::nullopt, true);
    });
  }

  uint64_t Count(TaskState s) { return engine_.QueueStats("q").counts[static_cast<int>(s)]; }

  ManualClock clock_;
  NowJournal journal_;
  ServerWide shared_{Limits{}};
  Engine engine_;
};

TEST_F(EngineAdminTest, RetryDeadWorksInSlices) {
  PutDead(kMaxBulkPerCall + 5);
  ASSERT_EQ(Count(TaskState::kDead), kMaxBulkPerCall + 5);
  auto first = engine_.RetryDeadTasks("q", UINT64_MAX).value;
  EXPECT_EQ(first.done, kMaxBulkPerCall);
  EXPECT_EQ(first.remaining, 5u);
  auto second = engine_.RetryDeadTasks("q", 3).value;
  EXPECT_EQ(second.done, 3u);
  EXPECT_EQ(second.remaining, 2u);
  EXPECT_EQ(Count(TaskState::kReady), kMaxBulkPerCall + 3);
  EXPECT_EQ(engine_.RetryDeadTasks("absent", 10).value.done, 0u);
}

TEST_F(EngineAdminTest, PurgeOnlyFinishedStates) {
  PutDead(4);
  EXPECT_EQ(engine_.PurgeTasks("q", TaskState::kReady, 10).error.code, ErrorCode::kInvalidField);
  auto out = engine_.PurgeTasks("q", TaskState::kDead, 10).value;
  EXPECT_EQ(out.done, 4u);
  EXPECT_EQ(Count(TaskState::kDead), 0u);
}

TEST_F(EngineAdminTest, DeleteQueueOnlyWhenEmpty) {
  QueueConfigPatch p;
  p.max_attempts = 3;
  ASSERT_TRUE(engine_.ConfigureQueue("q", p).error.ok());
  PutDead(1);
  EXPECT_EQ(engine_.DeleteQueue("q").code, ErrorCode::kInvalidState);
  engine_.PurgeTasks("q", TaskState::kDead, 10);
  EXPECT_TRUE(engine_.DeleteQueue("q").ok());
  EXPECT_EQ(journal_.removed, "q");
  EXPECT_FALSE(engine_.QueueStats("q").exists);
  EXPECT_EQ(engine_.DeleteQueue("q").code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace conveyor
