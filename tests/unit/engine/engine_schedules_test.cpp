// Schedules in the engine: ticks on the manual clock, the claim/commit of a tick (and a
// claim made void by a change), pause and resume, and the catch_up rules for ticks missed
// before the server started. The tick's task is committed by the test as the service does.
#include <gtest/gtest.h>

#include "engine/engine.h"
#include "now_journal.h"

namespace conveyor {
namespace {

class EngineSchedulesTest : public ::testing::Test {
 protected:
  EngineSchedulesTest() : engine_(clock_, journal_, shared_, Limits{}, 7) {}

  ScheduleView Every(int64_t ms, CatchUp catch_up = CatchUp::kOne) {
    ScheduleSpec spec;
    spec.queue = "q";
    spec.every_ms = ms;
    spec.catch_up = catch_up;
    spec.task.payload = "{\"n\":1}";
    auto out = engine_.SetSchedule("s", spec);
    EXPECT_TRUE(out.error.ok()) << out.error.message;
    return out.value;
  }

  // Fires every tick due now as the service would (stage, commit, publish): their ticks.
  std::vector<int64_t> FireDue(int64_t started_at = 0) {
    std::vector<int64_t> ticks;
    while (auto claim = engine_.DueSchedule(started_at)) {
      StageResult staged = engine_.Stage(claim->first.queue, {claim->second});
      EXPECT_TRUE(engine_.CommitScheduleFire(claim->first, staged.staged).ok());
      std::vector<uint64_t> ids;
      for (const auto& t : staged.staged) ids.push_back(t.record.id);
      engine_.PublishStaged(ids);
      ticks.push_back(claim->first.tick);
    }
    return ticks;
  }

  ManualClock clock_;
  NowJournal journal_;
  ServerWide shared_{Limits{}};
  Engine engine_;
};

TEST_F(EngineSchedulesTest, TicksComeOnTimeOnceEach) {
  const ScheduleView s = Every(1000);
  EXPECT_EQ(s.next_at, s.created_at + 1000);
  EXPECT_EQ(engine_.NextScheduleDue(), s.next_at);
  EXPECT_TRUE(FireDue().empty());
  clock_.Advance(999);
  EXPECT_TRUE(FireDue().empty());
  clock_.Advance(1);
  EXPECT_EQ(FireDue(), std::vector<int64_t>{s.created_at + 1000});
  EXPECT_TRUE(FireDue().empty());  // not twice
  clock_.Advance(1000);
  EXPECT_EQ(FireDue(), std::vector<int64_t>{s.created_at + 2000});
  auto view = engine_.GetSchedule("s").value;
  EXPECT_EQ(view.runs, 2u);
  EXPECT_EQ(view.last_tick, s.created_at + 2000);
  EXPECT_EQ(journal_.last.next_at, s.created_at + 3000);  // stored with the tick
  EXPECT_EQ(engine_.QueueStats("q").counts[static_cast<int>(TaskState::kReady)], 2u);
  // The tick's task: the template, and the tick in its idempotency key.
  auto page = engine_.ListTasks("q", std::nullopt, 10, 0).value;
  ASSERT_EQ(page.tasks.size(), 2u);
  EXPECT_EQ(page.tasks[0].payload, "{\"n\":1}");
  EXPECT_EQ(page.tasks[0].idempotency_key, "schedule:s:" + std::to_string(s.created_at + 1000));
}

TEST_F(EngineSchedulesTest, ARunnerLateByTicksRunsEachOfThem) {
  const ScheduleView s = Every(100);
  clock_.Advance(350);  // the server was busy: ticks at 100, 200, 300 are due
  EXPECT_EQ(FireDue(/*started_at=*/0).size(), 3u);
  (void)s;
}

TEST_F(EngineSchedulesTest, AClaimIsVoidWhenTheScheduleChangedMeanwhile) {
  Every(100);
  clock_.Advance(100);
  auto claim = engine_.DueSchedule(0);
  ASSERT_TRUE(claim.has_value());
  ASSERT_TRUE(engine_.PauseSchedule("s", true).error.ok());
  EXPECT_FALSE(engine_.CommitScheduleFire(claim->first, {}).ok());
  EXPECT_EQ(engine_.GetSchedule("s").value.runs, 0u);
}

TEST_F(EngineSchedulesTest, PausedSchedulesDoNotTickAndResumeAfterNow) {
  const ScheduleView s = Every(100);
  ASSERT_TRUE(engine_.PauseSchedule("s", true).error.ok());
  EXPECT_EQ(engine_.NextScheduleDue(), kNever);
  clock_.Advance(1000);
  EXPECT_TRUE(FireDue().empty());
  auto resumed = engine_.PauseSchedule("s", false).value;
  EXPECT_GT(resumed.next_at, clock_.NowMs());
  EXPECT_EQ(resumed.next_at, s.created_at + 1100);
  EXPECT_TRUE(FireDue().empty());
}

// Ticks before started_at were missed while the server was down.
TEST_F(EngineSchedulesTest, CatchUpOneRunsOnlyTheLatestMissedTick) {
  const ScheduleView s = Every(100, CatchUp::kOne);
  clock_.Advance(1050);  // ticks 100 … 1000 missed
  const int64_t started = clock_.NowMs();
  EXPECT_EQ(FireDue(started), std::vector<int64_t>{s.created_at + 1000});
  auto view = engine_.GetSchedule("s").value;
  EXPECT_EQ(view.skipped, 9u);
  EXPECT_EQ(view.next_at, s.created_at + 1100);
}

TEST_F(EngineSchedulesTest, CatchUpNoneRunsNoMissedTick) {
  const ScheduleView s = Every(100, CatchUp::kNone);
  clock_.Advance(1050);
  const int64_t started = clock_.NowMs();
  EXPECT_TRUE(FireDue(started).empty());
  auto view = engine_.GetSchedule("s").value;
  EXPECT_EQ(view.skipped, 10u);
  EXPECT_EQ(view.next_at, s.created_at + 1100);
  clock_.Advance(50);
  EXPECT_EQ(FireDue(started), std::vector<int64_t>{s.created_at + 1100});  // on time again
}

TEST_F(EngineSchedulesTest, CatchUpAllRunsEveryMissedTickBounded) {
  const ScheduleView s = Every(100, CatchUp::kAll);
  clock_.Advance(1050);
  EXPECT_EQ(FireDue(clock_.NowMs()).size(), 10u);
  // Down for longer than kMaxCatchUp ticks: only the latest kMaxCatchUp run.
  clock_.Advance(100 * (kMaxCatchUp + 500));
  const std::vector<int64_t> ticks = FireDue(clock_.NowMs());
  EXPECT_EQ(ticks.size(), kMaxCatchUp);
  EXPECT_EQ(engine_.GetSchedule("s").value.skipped, 500u);
  (void)s;
}

TEST_F(EngineSchedulesTest, CronSchedulesTickOnTheMinute) {
  ScheduleSpec spec;
  spec.queue = "q";
  spec.cron = "*/5 * * * *";
  spec.timezone = "Europe/Berlin";
  auto out = engine_.SetSchedule("c", spec);
  ASSERT_TRUE(out.error.ok()) << out.error.message;
  EXPECT_EQ(out.value.next_at % (5 * 60000), 0);  // Berlin's offset is whole hours
  EXPECT_GT(out.value.next_at, clock_.NowMs());
  spec.cron = "61 * * * *";
  EXPECT_EQ(engine_.SetSchedule("c", spec).error.code, ErrorCode::kInvalidField);
  spec.cron = "* * * * *";
  spec.timezone = "Nowhere/Land";
  EXPECT_EQ(engine_.SetSchedule("c", spec).error.code, ErrorCode::kInvalidField);
}

TEST_F(EngineSchedulesTest, ARestoredScheduleKeepsItsNextTick) {
  const ScheduleView s = Every(100);
  clock_.Advance(100);
  FireDue();
  ScheduleView stored = journal_.last;
  engine_.Reset();
  EXPECT_EQ(engine_.NextScheduleDue(), kNever);
  engine_.RestoreSchedule(stored);
  EXPECT_EQ(engine_.NextScheduleDue(), s.created_at + 200);
  EXPECT_EQ(engine_.GetSchedule("s").value.runs, 1u);
  ASSERT_TRUE(engine_.DeleteSchedule("s").ok());
  EXPECT_EQ(engine_.NextScheduleDue(), kNever);
  EXPECT_EQ(engine_.DeleteSchedule("s").code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace conveyor
