// Engine regression tests for the foundation: monotonic timers, timer slices, no dirty
// reads, server-wide budgets, bare queues, bounded answers, retention changes.
#include <gtest/gtest.h>

#include <deque>

#include "api/encoders.h"
#include "boost/json/parse.hpp"
#include "engine/engine.h"

namespace conveyor {
namespace {

namespace json = boost::json;

// A journal whose durability the test decides: WhenDurable callbacks wait until Settle().
class ManualJournal final : public Journal {
 public:
  void TaskChanged(const Task&) override { ++records; }
  void TaskRemoved(uint64_t, uint8_t) override { ++records; }
  void QueueConfigChanged(std::string_view, const QueueConfig&) override { ++records; }
  void WhenDurable(Callback<void(Error)> done) override { waiting.push_back(std::move(done)); }
  bool writable() const override { return writable_; }
  void Settle(Error e = {}) {
    auto all = std::move(waiting);
    waiting.clear();
    for (auto& cb : all) cb(e);
  }
  std::deque<Callback<void(Error)>> waiting;
  int records = 0;
  bool writable_ = true;
};

class Fixture : public ::testing::Test {
 protected:
  explicit Fixture(Limits limits = {}) : limits_(limits), shared_(limits_) {}

  Engine& engine() {
    if (!engine_) engine_ = std::make_unique<Engine>(clock_, journal_, shared_, limits_, 7);
    return *engine_;
  }
  uint64_t Add(std::string_view queue, std::string payload = "1", int64_t delay_ms = 0) {
    std::vector<TaskSpec> specs(1);
    specs[0].payload = std::move(payload);
    if (delay_ms > 0) specs[0].delay_ms = delay_ms;
    auto result = engine().Enqueue(queue, std::move(specs));
    EXPECT_TRUE(result.error.ok()) << result.error.message;
    journal_.Settle();
    return result.error.ok() ? result.tasks.at(0).id : 0;
  }
  LeaseResult Lease(std::string_view queue, uint32_t max = 1, int64_t lease_ms = 0) {
    LeaseRequest req;
    req.max = max;
    req.lease_ms = lease_ms;
    LeaseResult out;
    engine().Lease(queue, req, [&](LeaseResult r) { out = std::move(r); });
    return out;
  }
  std::string State(uint64_t id) {
    auto r = engine().GetTask(id);
    if (!r.error.ok()) return "gone";
    return std::string(TaskStateName(r.value.state));
  }
  void Advance(int64_t ms) {
    clock_.Advance(ms);
    engine().Tick();
  }

  Limits limits_;
  ManualClock clock_;
  ManualJournal journal_;
  ServerWide shared_;
  std::unique_ptr<Engine> engine_;
};

using EngineFoundationTest = Fixture;

TEST_F(EngineFoundationTest, WallClockStepForwardDoesNotExpireLeases) {
  uint64_t id = Add("q");
  ASSERT_EQ(Lease("q", 1, 30000).granted.size(), 1u);
  clock_.StepWall(3'600'000);
  engine().Tick();
  EXPECT_EQ(State(id), "leased");
  Advance(29999);
  EXPECT_EQ(State(id), "leased");
  Advance(1);
  EXPECT_EQ(State(id), "ready");
}

TEST_F(EngineFoundationTest, WallClockStepBackDoesNotStallLeases) {
  uint64_t id = Add("q");
  ASSERT_EQ(Lease("q", 1, 30000).granted.size(), 1u);
  clock_.StepWall(-3'600'000);
  Advance(30000);
  EXPECT_EQ(State(id), "ready");
}

TEST_F(EngineFoundationTest, TaskIsNotLeasableBeforeItsCreationIsDurable) {
  std::vector<TaskSpec> specs(1);
  auto result = engine().Enqueue("q", std::move(specs));
  ASSERT_TRUE(result.error.ok());
  const uint64_t id = result.tasks[0].id;
  EXPECT_TRUE(Lease("q").granted.empty());
  EXPECT_EQ(State(id), "gone");
  // A long-poll parked meanwhile gets it the moment it is durable.
  LeaseRequest wait;
  wait.wait_ms = 1000;
  std::optional<LeaseResult> got;
  engine().Lease("q", wait, [&](LeaseResult r) { got = std::move(r); });
  EXPECT_FALSE(got);
  journal_.Settle();
  ASSERT_TRUE(got);
  ASSERT_EQ(got->granted.size(), 1u);
  EXPECT_EQ(got->granted[0].id, id);
}

TEST_F(EngineFoundationTest, TaskWhoseCreationFailedIsNeverSeen) {
  std::vector<TaskSpec> specs(1);
  auto result = engine().Enqueue("q", std::move(specs));
  const uint64_t id = result.tasks[0].id;
  // The storage layer reloads the shard after a failed write; the reload comes first.
  engine().Reset();
  journal_.Settle(Error{ErrorCode::kStorageUnavailable, "fsync failed"});
  EXPECT_TRUE(Lease("q").granted.empty());
  EXPECT_EQ(State(id), "gone");
  EXPECT_EQ(shared_.live_tasks.used(), 0u);
}

TEST_F(EngineFoundationTest, MassExpiryIsWorkedOffInSlices) {
  const size_t n = Engine::kTimerSlice * 2 + 10;
  std::vector<TaskSpec> specs(n);
  ASSERT_TRUE(engine().Enqueue("q", std::move(specs)).error.ok());
  journal_.Settle();
  ASSERT_EQ(Lease("q", static_cast<uint32_t>(n), 1000).granted.size(), n);
  clock_.Advance(1000);
  engine().Tick();
  auto ready = [&] {  // Snapshot() does not tick, unlike the commands
    return static_cast<int64_t>(
        engine().Snapshot().at(0).counts[static_cast<size_t>(TaskState::kReady)]);
  };
  EXPECT_LE(ready(), static_cast<int64_t>(3 * Engine::kTimerSlice));
  EXPECT_LT(ready(), static_cast<int64_t>(n));
  EXPECT_LE(engine().NextWakeup(), clock_.MonoMs());  // more is due at once
  for (int i = 0; i < 5; ++i) engine().Tick();
  EXPECT_EQ(ready(), static_cast<int64_t>(n));
}

TEST_F(EngineFoundationTest, TimersWaitWhileTheJournalRefuses) {
  uint64_t id = Add("q");
  ASSERT_EQ(Lease("q", 1, 1000).granted.size(), 1u);
  journal_.writable_ = false;
  Advance(2000);
  EXPECT_EQ(State(id), "leased");
  EXPECT_GT(engine().NextWakeup(), clock_.MonoMs());  // no busy loop while refused
  journal_.writable_ = true;
  engine().Tick();
  EXPECT_EQ(State(id), "ready");
}

TEST_F(EngineFoundationTest, LoweringRetentionPurgesTasksAlreadyFinished) {
  QueueConfigPatch keep;
  keep.retention_ms = 3'600'000;
  ASSERT_TRUE(engine().ConfigureQueue("q", keep).error.ok());
  uint64_t id = Add("q");
  auto grant = Lease("q");
  ASSERT_EQ(grant.granted.size(), 1u);
  ASSERT_TRUE(engine().Ack(id, grant.granted[0].token, "").error.ok());
  Advance(10'000);
  EXPECT_EQ(State(id), "succeeded");
  QueueConfigPatch lower;
  lower.retention_ms = 1000;
  ASSERT_TRUE(engine().ConfigureQueue("q", lower).error.ok());
  engine().Tick();
  EXPECT_EQ(State(id), "gone");
}

TEST_F(EngineFoundationTest, LeaseWaitDoesNotCreateAQueue) {
  LeaseRequest wait;
  wait.wait_ms = 100;
  bool answered = false;
  engine().Lease("ghost", wait, [&](LeaseResult) { answered = true; });
  EXPECT_TRUE(engine().Snapshot().empty());
  Advance(100);
  EXPECT_TRUE(answered);
  EXPECT_EQ(engine().queue_count(), 0u);
}

TEST_F(EngineFoundationTest, QueueWithNoTasksAndDefaultConfigIsForgotten) {
  QueueConfigPatch short_retention;
  short_retention.retention_ms = 10;
  ASSERT_TRUE(engine().ConfigureQueue("q", short_retention).error.ok());
  uint64_t id = Add("q");
  auto grant = Lease("q");
  ASSERT_TRUE(engine().Ack(id, grant.granted[0].token, "").error.ok());
  QueueConfigPatch back;
  back.retention_ms = QueueConfig{}.retention_ms;
  ASSERT_TRUE(engine().ConfigureQueue("q", back).error.ok());
  EXPECT_EQ(engine().queue_count(), 1u);  // the finished task still holds it
  QueueConfigPatch again;
  again.retention_ms = 10;
  ASSERT_TRUE(engine().ConfigureQueue("q", again).error.ok());
  Advance(20);
  ASSERT_TRUE(engine().ConfigureQueue("q", back).error.ok());
  EXPECT_EQ(engine().queue_count(), 0u);
}

TEST(EngineBudgetTest, WaitersAreLimitedPerServerAcrossShards) {
  Limits limits;
  limits.max_waiters = 3;
  ServerWide shared(limits);
  ManualClock clock;
  NullJournal journal;
  Engine a(clock, journal, shared, limits, 1), b(clock, journal, shared, limits, 2);
  LeaseRequest wait;
  wait.wait_ms = 1000;
  std::vector<ErrorCode> codes;
  auto record = [&](LeaseResult r) { codes.push_back(r.error.code); };
  a.Lease("q", wait, record);
  a.Lease("q", wait, record);
  b.Lease("r", wait, record);
  EXPECT_TRUE(codes.empty());
  b.Lease("r", wait, record);
  ASSERT_EQ(codes.size(), 1u);
  EXPECT_EQ(codes[0], ErrorCode::kTooManyRequests);
  clock.Advance(1000);
  a.Tick();
  EXPECT_EQ(shared.waiters.used(), 1u);
}

TEST(EngineBudgetTest, MaxTasksCountsUnfinishedTasksServerWide) {
  Limits limits;
  limits.max_tasks = 3;
  ServerWide shared(limits);
  ManualClock clock;
  NullJournal journal;
  Engine a(clock, journal, shared, limits, 1), b(clock, journal, shared, limits, 2);
  EXPECT_TRUE(a.Enqueue("q", std::vector<TaskSpec>(2)).error.ok());
  EXPECT_EQ(b.Enqueue("r", std::vector<TaskSpec>(2)).error.code, ErrorCode::kOverloaded);
  EXPECT_TRUE(b.Enqueue("r", std::vector<TaskSpec>(1)).error.ok());
  LeaseResult got;
  a.Lease("q", LeaseRequest{}, [&](LeaseResult r) { got = std::move(r); });
  ASSERT_EQ(got.granted.size(), 1u);
  ASSERT_TRUE(a.Ack(got.granted[0].id, got.granted[0].token, "").error.ok());
  EXPECT_TRUE(b.Enqueue("r", std::vector<TaskSpec>(1)).error.ok());
}

TEST(EngineAnswerTest, LeaseAnswerStopsAtMaxResponseBytesButHoldsOneTask) {
  Limits limits;
  limits.max_response_bytes = 10'000;
  ServerWide shared(limits);
  ManualClock clock;
  NullJournal journal;
  Engine engine(clock, journal, shared, limits, 1);
  std::vector<TaskSpec> specs(10);
  for (auto& s : specs) s.payload = "\"" + std::string(3000, 'x') + "\"";
  ASSERT_TRUE(engine.Enqueue("q", specs).error.ok());
  LeaseRequest req;
  req.max = 10;
  LeaseResult got;
  engine.Lease("q", req, [&](LeaseResult r) { got = std::move(r); });
  EXPECT_TRUE(got.truncated);
  EXPECT_GE(got.granted.size(), 1u);
  EXPECT_LT(got.granted.size(), 10u);
  EXPECT_LE(LeaseAnswerJson(got).size(), limits.max_response_bytes);
  EXPECT_EQ(got.tasks.size(), got.granted.size());

  std::vector<TaskSpec> big(1);
  big[0].payload = "\"" + std::string(20'000, 'y') + "\"";
  ASSERT_TRUE(engine.Enqueue("big", big).error.ok());
  engine.Lease("big", req, [&](LeaseResult r) { got = std::move(r); });
  EXPECT_EQ(got.granted.size(), 1u);
  EXPECT_FALSE(got.truncated);
}

}  // namespace
}  // namespace conveyor
