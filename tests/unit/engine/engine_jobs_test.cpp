// The job-style commands of engine_jobs.cpp (release, bury, kick, peek, delete), on a
// manual clock and a journal that is durable at once.
#include <gtest/gtest.h>

#include "engine/engine.h"
#include "now_journal.h"

namespace conveyor {
namespace {

class EngineJobsTest : public ::testing::Test {
 protected:
  EngineJobsTest() : engine_(clock_, journal_, shared_, Limits{}, 7) {}

  uint64_t Put(int32_t priority, int64_t delay_ms = 0, std::string_view queue = "q") {
    TaskSpec spec;
    spec.priority = priority;
    spec.payload = "body";
    spec.payload_kind = PayloadKind::kBytes;
    if (delay_ms > 0) spec.delay_ms = delay_ms;
    std::vector<TaskSpec> specs;
    specs.push_back(std::move(spec));
    auto result = engine_.Enqueue(queue, std::move(specs));
    EXPECT_TRUE(result.error.ok());
    return result.tasks.at(0).id;
  }

  // Leases one task of the queue at once: (id, token), or (0, "") when none is ready.
  std::pair<uint64_t, std::string> Reserve(std::string_view queue = "q") {
    std::pair<uint64_t, std::string> out;
    engine_.Lease(queue, LeaseRequest{}, [&](LeaseResult r) {
      if (!r.tasks.empty()) out = {r.tasks[0].id, r.tasks[0].lease_token};
    });
    return out;
  }

  TaskState StateOf(uint64_t id) { return engine_.GetTask(id).value.state; }

  ManualClock clock_;
  NowJournal journal_;
  ServerWide shared_{Limits{}};
  Engine engine_;
};

TEST_F(EngineJobsTest, ReleaseSetsThePriorityAndTheDelayWithoutAFailure) {
  const uint64_t a = Put(5);
  auto [id, token] = Reserve();
  ASSERT_EQ(id, a);
  EXPECT_EQ(engine_.Release(a, "not the token", 1, 0).error.code, ErrorCode::kLeaseMismatch);
  auto released = engine_.Release(a, token, 9, 2000);
  ASSERT_TRUE(released.error.ok());
  EXPECT_EQ(released.value.state, TaskState::kScheduled);
  TaskView view = engine_.GetTask(a).value;
  EXPECT_EQ(view.priority, 9);
  EXPECT_TRUE(view.errors.empty());
  EXPECT_EQ(Reserve().first, 0u);
  clock_.Advance(2000);
  engine_.Tick();
  EXPECT_EQ(StateOf(a), TaskState::kReady);
  auto again = Reserve();
  EXPECT_EQ(again.first, a);
  EXPECT_EQ(engine_.Release(a, again.second, 9, 0).value.state, TaskState::kReady);
}

TEST_F(EngineJobsTest, BuryKillsWithReasonBuriedAndKickBringsTheLowestIdsBack) {
  const uint64_t a = Put(1), b = Put(1), c = Put(1);
  for (uint64_t want : {a, b, c}) {
    auto [id, token] = Reserve();
    ASSERT_EQ(id, want);
    ASSERT_TRUE(engine_.Bury(id, token, 3).error.ok());
  }
  TaskView dead = engine_.GetTask(b).value;
  EXPECT_EQ(dead.state, TaskState::kDead);
  EXPECT_EQ(dead.dead_reason, DeadReason::kBuried);
  EXPECT_EQ(dead.priority, 3);
  EXPECT_EQ(engine_.Peek("q", TaskState::kDead).value.id, a);
  auto kicked = engine_.Kick("q", 2);
  ASSERT_TRUE(kicked.error.ok());
  EXPECT_EQ(kicked.value, 2u);
  EXPECT_EQ(StateOf(a), TaskState::kReady);
  EXPECT_EQ(StateOf(b), TaskState::kReady);
  EXPECT_EQ(StateOf(c), TaskState::kDead);
  EXPECT_EQ(engine_.KickTask(c).value.state, TaskState::kReady);
  EXPECT_EQ(engine_.KickTask(c).error.code, ErrorCode::kInvalidState);
}

TEST_F(EngineJobsTest, KickTakesScheduledTasksEarliestFirstWhenNoneIsDead) {
  const uint64_t late = Put(0, 9000), early = Put(0, 1000), mid = Put(0, 5000);
  EXPECT_EQ(engine_.Peek("q", TaskState::kScheduled).value.id, early);
  EXPECT_EQ(engine_.Kick("q", 2).value, 2u);
  EXPECT_EQ(StateOf(early), TaskState::kReady);
  EXPECT_EQ(StateOf(mid), TaskState::kReady);
  EXPECT_EQ(StateOf(late), TaskState::kScheduled);
  EXPECT_EQ(engine_.Kick("nothing-here", 5).value, 0u);
}

TEST_F(EngineJobsTest, PeekReadyIsTheTaskALeaseWouldTake) {
  Put(1);
  const uint64_t urgent = Put(7);
  EXPECT_EQ(engine_.Peek("q", TaskState::kReady).value.id, urgent);
  EXPECT_EQ(engine_.Peek("q", TaskState::kDead).error.code, ErrorCode::kNotFound);
  EXPECT_EQ(engine_.Peek("absent", TaskState::kReady).error.code, ErrorCode::kNotFound);
}

TEST_F(EngineJobsTest, DeleteEndsATaskInEveryStateButFinishedOnes) {
  const uint64_t ready = Put(0), leased = Put(0), scheduled = Put(0, 5000), dead = Put(0);
  auto lease = Reserve();
  ASSERT_EQ(lease.first, ready);
  // The first lease took `ready`; reserve the other two ready ones in turn.
  auto second = Reserve();
  ASSERT_EQ(second.first, leased);
  auto third = Reserve();
  ASSERT_EQ(third.first, dead);
  ASSERT_TRUE(engine_.Bury(dead, third.second, 0).error.ok());

  EXPECT_EQ(engine_.Delete(leased, "wrong").error.code, ErrorCode::kLeaseMismatch);
  EXPECT_EQ(engine_.Delete(leased, second.second).value.state, TaskState::kSucceeded);
  EXPECT_EQ(engine_.Delete(scheduled, "").value.state, TaskState::kCanceled);
  EXPECT_EQ(engine_.Delete(dead, "").value.state, TaskState::kCanceled);
  EXPECT_EQ(engine_.GetTask(dead).value.dead_reason, DeadReason::kNone);
  EXPECT_EQ(engine_.Delete(dead, "").error.code, ErrorCode::kInvalidState);
  EXPECT_EQ(engine_.Delete(999999, "").error.code, ErrorCode::kNotFound);
}

TEST_F(EngineJobsTest, LeaseTaskTakesAReadyScheduledOrDeadTaskById) {
  const uint64_t first = Put(9), second = Put(1), later = Put(0, 60000);
  LeaseResult got = engine_.LeaseTask(second, LeaseRequest{});
  ASSERT_EQ(got.tasks.size(), 1u);
  EXPECT_EQ(got.tasks[0].id, second);  // not the most urgent one: the one asked for
  EXPECT_EQ(engine_.LeaseTask(second, LeaseRequest{}).error.code, ErrorCode::kInvalidState);
  EXPECT_EQ(engine_.LeaseTask(later, LeaseRequest{}).tasks.at(0).id, later);
  auto [id, token] = Reserve();
  ASSERT_EQ(id, first);
  ASSERT_TRUE(engine_.Bury(first, token, 0).error.ok());
  LeaseResult revived = engine_.LeaseTask(first, LeaseRequest{});
  ASSERT_EQ(revived.tasks.size(), 1u);
  EXPECT_EQ(StateOf(first), TaskState::kLeased);
  EXPECT_EQ(engine_.GetTask(first).value.dead_reason, DeadReason::kNone);
}

TEST_F(EngineJobsTest, APauseKeepsLeasesAwayUntilItEnds) {
  const uint64_t a = Put(0);
  EXPECT_EQ(engine_.PauseQueue("absent", 1000, false).code, ErrorCode::kNotFound);
  ASSERT_TRUE(engine_.PauseQueue("q", 1000, false).ok());
  EXPECT_EQ(Reserve().first, 0u);
  // A waiting lease is served when the pause ends, by the timer.
  uint64_t served = 0;
  LeaseRequest wait;
  wait.wait_ms = 5000;
  engine_.Lease("q", wait, [&](LeaseResult r) {
    if (!r.tasks.empty()) served = r.tasks[0].id;
  });
  EXPECT_EQ(served, 0u);
  clock_.Advance(999);
  engine_.Tick();
  EXPECT_EQ(served, 0u);
  clock_.Advance(1);
  engine_.Tick();
  EXPECT_EQ(served, a);
  // Pausing again and then for 0 ends the pause at once; a new queue can be made paused.
  ASSERT_TRUE(engine_.PauseQueue("q", 60000, false).ok());
  ASSERT_TRUE(engine_.PauseQueue("q", 0, false).ok());
  Put(0);
  EXPECT_NE(Reserve().first, 0u);
  EXPECT_TRUE(engine_.PauseQueue("fresh", 5000, true).ok());
  EXPECT_EQ(engine_.QueueStats("fresh").pause_ms, 5000);
}

TEST_F(EngineJobsTest, JobCommandsAreCountedOnTheTaskAndTheQueue) {
  const uint64_t a = Put(1);
  auto [id, token] = Reserve();
  ASSERT_EQ(id, a);
  ASSERT_TRUE(engine_.Release(a, token, 1, 0).error.ok());
  token = Reserve().second;
  ASSERT_TRUE(engine_.Bury(a, token, 1).error.ok());
  ASSERT_EQ(engine_.Kick("q", 1).value, 1u);
  TaskView view = engine_.GetTask(a).value;
  EXPECT_EQ(view.releases, 1u);
  EXPECT_EQ(view.buries, 1u);
  EXPECT_EQ(view.kicks, 1u);
  // The default max_attempts renews its chances on a kick; without a limit the count stays.
  EXPECT_EQ(view.attempts, 0u);
  TaskSpec spec;
  spec.payload = "x";
  spec.max_attempts = UINT32_MAX;
  std::vector<TaskSpec> specs;
  specs.push_back(std::move(spec));
  const uint64_t b = engine_.Enqueue("unlimited", std::move(specs)).tasks.at(0).id;
  token = Reserve("unlimited").second;
  ASSERT_TRUE(engine_.Bury(b, token, 1).error.ok());
  ASSERT_EQ(engine_.KickTask(b).value.state, TaskState::kReady);
  EXPECT_EQ(engine_.GetTask(b).value.attempts, 1u);

  ASSERT_TRUE(engine_.Delete(a, "").error.ok());
  ASSERT_TRUE(engine_.PauseQueue("unlimited", 0, false).ok());
  EXPECT_EQ(engine_.QueueStats("q").totals.deletes, 1u);
  EXPECT_EQ(engine_.QueueStats("unlimited").totals.pauses, 1u);
}

TEST_F(EngineJobsTest, UrgentCountsReadyTasksAboveTheUrgentPriority) {
  const uint64_t urgent = Put(kUrgentBelowPriority + 1);
  Put(kUrgentBelowPriority);
  Put(kUrgentBelowPriority + 5, 1000);  // scheduled: not ready, not counted
  EXPECT_EQ(engine_.QueueStats("q").urgent, 1u);
  auto [id, token] = Reserve();
  ASSERT_EQ(id, urgent);
  EXPECT_EQ(engine_.QueueStats("q").urgent, 0u);
  ASSERT_TRUE(engine_.Release(id, token, 0, 0).error.ok());  // now below: not urgent
  EXPECT_EQ(engine_.QueueStats("q").urgent, 0u);
  clock_.Advance(1000);
  engine_.Tick();
  EXPECT_EQ(engine_.QueueStats("q").urgent, 1u);
}

TEST_F(EngineJobsTest, DeferHoldsATaskBackWithoutCountingTheAttempt) {
  const uint64_t a = Put(1);
  auto [id, token] = Reserve();
  ASSERT_EQ(id, a);
  EXPECT_EQ(engine_.GetTask(a).value.attempts, 1u);
  EXPECT_EQ(engine_.Defer(a, "wrong", 1000).error.code, ErrorCode::kLeaseMismatch);
  auto deferred = engine_.Defer(a, token, 1000);
  ASSERT_TRUE(deferred.error.ok());
  EXPECT_EQ(deferred.value.state, TaskState::kScheduled);
  TaskView view = engine_.GetTask(a).value;
  EXPECT_EQ(view.attempts, 0u);
  EXPECT_TRUE(view.errors.empty());
  clock_.Advance(1000);
  engine_.Tick();
  EXPECT_EQ(Reserve().first, a);
}

TEST_F(EngineJobsTest, ExpireLeasesOfEndsOnlyThatWorkersLeases) {
  const uint64_t a = Put(1), b = Put(1);
  LeaseRequest push;
  push.worker = "push";
  engine_.Lease("q", push, [](LeaseResult) {});
  LeaseRequest other;
  other.worker = "someone";
  engine_.Lease("q", other, [](LeaseResult) {});
  EXPECT_EQ(StateOf(a), TaskState::kLeased);
  EXPECT_EQ(StateOf(b), TaskState::kLeased);
  auto n = engine_.ExpireLeasesOf("q", "push", "cut short");
  ASSERT_TRUE(n.error.ok());
  EXPECT_EQ(n.value, 1u);
  EXPECT_EQ(StateOf(a), TaskState::kReady);
  EXPECT_EQ(StateOf(b), TaskState::kLeased);
  TaskView view = engine_.GetTask(a).value;
  ASSERT_EQ(view.errors.size(), 1u);
  EXPECT_EQ(view.errors[0].message, "cut short");
  EXPECT_EQ(engine_.ExpireLeasesOf("nothing", "push", "x").value, 0u);
}

}  // namespace
}  // namespace conveyor
