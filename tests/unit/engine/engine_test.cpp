#include "engine/engine.h"

#include <gtest/gtest.h>

#include "api/encoders.h"
#include "boost/json/parse.hpp"
#include "boost/json/serialize.hpp"
#include "boost/json/value_to.hpp"
#include "common/task_id.h"

namespace conveyor {
namespace {

namespace json = boost::json;

// Counts what reaches the journal, to check every change passes through it.
class CountingJournal final : public Journal {
 public:
  void TaskChanged(const Task&) override { ++changed; }
  void TaskRemoved(uint64_t, uint8_t) override { ++removed; }
  void QueueConfigChanged(std::string_view, const QueueConfig&) override { ++configs; }
  void WhenDurable(Callback<void(Error)> done) override { done(Error{}); }
  int changed = 0, removed = 0, configs = 0;
};

class EngineTest : public ::testing::Test {
 protected:
  EngineTest() : engine_(clock_, journal_, shared_, Limits{}, 42) {}

  uint64_t Add(std::string_view queue, TaskSpec spec = {}) {
    std::vector<TaskSpec> specs;
    specs.push_back(std::move(spec));
    auto result = engine_.Enqueue(queue, std::move(specs));
    EXPECT_TRUE(result.error.ok());
    return result.tasks.at(0).id;
  }

  TaskSpec Spec(int32_t priority = 0, std::string payload = "1") {
    TaskSpec s;
    s.priority = priority;
    s.payload = std::move(payload);
    return s;
  }

  // Leases with wait 0; returns the parsed tasks array.
  json::array LeaseNow(std::string_view queue, uint32_t max = 1, int64_t lease_ms = 0) {
    LeaseRequest req;
    req.max = max;
    req.lease_ms = lease_ms;
    json::array out;
    bool called = false;
    engine_.Lease(queue, req, [&](LeaseResult r) {
      called = true;
      EXPECT_TRUE(r.error.ok());
      out = json::parse(LeaseAnswerJson(r)).at("tasks").as_array();
    });
    EXPECT_TRUE(called);
    return out;
  }

  json::object Get(uint64_t id) {
    auto r = engine_.GetTask(id);
    EXPECT_TRUE(r.error.ok()) << r.error.message;
    std::string body;
    AppendTaskJson(body, r.value);
    return json::parse(body).as_object();
  }

  std::string State(uint64_t id) { return json::value_to<std::string>(Get(id).at("state")); }
  static std::string Token(const json::value& leased) {
    return json::value_to<std::string>(leased.at("lease").at("token"));
  }
  static uint64_t Id(const json::value& task) { return task.at("id").to_number<uint64_t>(); }

  void Advance(int64_t ms) {
    clock_.Advance(ms);
    engine_.Tick();
  }

  ManualClock clock_;
  CountingJournal journal_;
  ServerWide shared_{Limits{}};
  Engine engine_;
};

TEST_F(EngineTest, IdsIncreaseAcrossQueuesAndEncodeTheQueueSlot) {
  uint64_t a = Add("alpha");
  uint64_t b = Add("beta");
  uint64_t c = Add("alpha");
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_EQ(SlotOfTask(a), SlotOfQueue("alpha"));
  EXPECT_EQ(SlotOfTask(b), SlotOfQueue("beta"));
}

TEST_F(EngineTest, LeasesByPriorityThenReadyTimeThenId) {
  uint64_t low = Add("q", Spec(0));
  clock_.Advance(1);
  uint64_t high1 = Add("q", Spec(5));
  clock_.Advance(1);
  uint64_t high2 = Add("q", Spec(5));
  uint64_t mid = Add("q", Spec(3));
  auto leased = LeaseNow("q", 10);
  ASSERT_EQ(leased.size(), 4u);
  EXPECT_EQ(Id(leased[0]), high1);
  EXPECT_EQ(Id(leased[1]), high2);
  EXPECT_EQ(Id(leased[2]), mid);
  EXPECT_EQ(Id(leased[3]), low);
}

TEST_F(EngineTest, UnusedQueueLeasesNothing) { EXPECT_TRUE(LeaseNow("never-used").empty()); }

TEST_F(EngineTest, DelayedTaskIsNotLeasedBeforeRunAt) {
  TaskSpec s = Spec();
  s.delay_ms = 1000;
  uint64_t id = Add("q", s);
  EXPECT_EQ(State(id), "scheduled");
  Advance(999);
  EXPECT_TRUE(LeaseNow("q").empty());
  Advance(1);
  EXPECT_EQ(State(id), "ready");
  EXPECT_EQ(LeaseNow("q").size(), 1u);
}

TEST_F(EngineTest, AckWithCurrentTokenSucceedsAndRepeatsHarmlessly) {
  uint64_t id = Add("q");
  auto leased = LeaseNow("q");
  std::string token = Token(leased[0]);
  EXPECT_FALSE(Get(id).at("lease").as_object().contains("token"));
  EXPECT_TRUE(engine_.Ack(id, "wrong", "").error.code == ErrorCode::kLeaseMismatch);
  auto r = engine_.Ack(id, token, R"({"ok":1})");
  ASSERT_TRUE(r.error.ok());
  EXPECT_EQ(State(id), "succeeded");
  EXPECT_EQ(json::serialize(Get(id).at("result")), R"({"ok":1})");
  EXPECT_TRUE(engine_.Ack(id, token, "").error.ok());
  EXPECT_EQ(engine_.Ack(id, "other", "").error.code, ErrorCode::kLeaseMismatch);
  EXPECT_EQ(engine_.Ack(id + 64, token, "").error.code, ErrorCode::kNotFound);
}

TEST_F(EngineTest, ExpiredLeaseMakesTaskReadyAndRefusesOldToken) {
  uint64_t id = Add("q");
  auto first = LeaseNow("q", 1, 1000);
  Advance(1000);
  EXPECT_EQ(State(id), "ready");
  auto second = LeaseNow("q");
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(Get(id).at("attempts").to_number<int>(), 2);
  EXPECT_EQ(engine_.Ack(id, Token(first[0]), "").error.code, ErrorCode::kLeaseMismatch);
  EXPECT_EQ(engine_.Extend(id, Token(first[0]), 1000, "").error.code, ErrorCode::kLeaseMismatch);
  EXPECT_TRUE(engine_.Ack(id, Token(second[0]), "").error.ok());
}

TEST_F(EngineTest, ExtendPushesExpiryAndKeepsProgress) {
  uint64_t id = Add("q");
  auto leased = LeaseNow("q", 1, 1000);
  Advance(900);
  auto r = engine_.Extend(id, Token(leased[0]), 1000, R"({"pct":50})");
  ASSERT_TRUE(r.error.ok());
  Advance(900);
  EXPECT_EQ(State(id), "leased");
  EXPECT_EQ(json::serialize(Get(id).at("progress")), R"({"pct":50})");
  Advance(100);
  EXPECT_EQ(State(id), "ready");
}

TEST_F(EngineTest, NackSchedulesWithBackoffThenDiesAtMaxAttempts) {
  TaskSpec s = Spec();
  s.max_attempts = 2;
  uint64_t id = Add("q", s);
  auto leased = LeaseNow("q");
  auto r = engine_.Nack(id, Token(leased[0]), "boom", std::nullopt, false);
  ASSERT_TRUE(r.error.ok());
  EXPECT_EQ(State(id), "scheduled");
  auto task = Get(id);
  EXPECT_EQ(task.at("errors").as_array().size(), 1u);
  // Default backoff: 1000 ms base, jitter within [500, 1000].
  Advance(499);
  EXPECT_EQ(State(id), "scheduled");
  Advance(501);
  EXPECT_EQ(State(id), "ready");
  leased = LeaseNow("q");
  ASSERT_TRUE(engine_.Nack(id, Token(leased[0]), "boom again", std::nullopt, false).error.ok());
  EXPECT_EQ(State(id), "dead");
  EXPECT_EQ(Get(id).at("dead_reason").as_string(), "max_attempts");
}

TEST_F(EngineTest, NackWithDeadFlagOrZeroRetry) {
  uint64_t a = Add("q");
  uint64_t b = Add("q");
  auto leased = LeaseNow("q", 2);
  ASSERT_TRUE(engine_.Nack(a, Token(leased[0]), "bad", std::nullopt, true).error.ok());
  EXPECT_EQ(Get(a).at("dead_reason").as_string(), "nack");
  ASSERT_TRUE(engine_.Nack(b, Token(leased[1]), "again", 0, false).error.ok());
  EXPECT_EQ(State(b), "ready");
}

TEST_F(EngineTest, LeaseExpiryCountsTowardsMaxAttempts) {
  TaskSpec s = Spec();
  s.max_attempts = 1;
  uint64_t id = Add("q", s);
  LeaseNow("q", 1, 100);
  Advance(100);
  EXPECT_EQ(State(id), "dead");
  EXPECT_EQ(Get(id).at("dead_reason").as_string(), "max_attempts");
}

TEST_F(EngineTest, DeadlineExpiresUnleasedTask) {
  TaskSpec s = Spec();
  s.deadline = clock_.NowMs() + 500;
  uint64_t id = Add("q", s);
  Advance(500);
  EXPECT_EQ(State(id), "dead");
  EXPECT_EQ(Get(id).at("dead_reason").as_string(), "expired");
  TaskSpec past = Spec();
  past.deadline = clock_.NowMs() - 1;
  uint64_t late = Add("q", past);
  EXPECT_EQ(State(late), "dead");
  EXPECT_TRUE(LeaseNow("q").empty());
}

TEST_F(EngineTest, IdempotencyKeyReturnsTheFirstTask) {
  TaskSpec s = Spec();
  s.idempotency_key = "order-1";
  uint64_t first = Add("q", s);
  std::vector<TaskSpec> again{s};
  auto dup = engine_.Enqueue("q", again);
  EXPECT_EQ(dup.tasks[0].id, first);
  EXPECT_TRUE(dup.tasks[0].duplicate);
  // Scoped to the queue.
  uint64_t other = Add("other", s);
  EXPECT_NE(other, first);
}

TEST_F(EngineTest, CancelAndRetryFollowTheStateRules) {
  uint64_t a = Add("q");
  ASSERT_TRUE(engine_.Cancel(a).error.ok());
  EXPECT_EQ(State(a), "canceled");
  EXPECT_EQ(engine_.Cancel(a).error.code, ErrorCode::kInvalidState);
  uint64_t b = Add("q");
  auto leased = LeaseNow("q");
  EXPECT_EQ(engine_.Cancel(b).error.code, ErrorCode::kInvalidState);
  EXPECT_EQ(engine_.Retry(b).error.code, ErrorCode::kInvalidState);
  ASSERT_TRUE(engine_.Nack(b, Token(leased[0]), "x", std::nullopt, true).error.ok());
  ASSERT_TRUE(engine_.Retry(b).error.ok());
  EXPECT_EQ(State(b), "ready");
  EXPECT_EQ(Get(b).at("attempts").to_number<int>(), 0);
}

TEST_F(EngineTest, FinishedTasksArePurgedAfterRetention) {
  QueueConfigPatch patch;
  patch.retention_ms = 1000;
  engine_.ConfigureQueue("q", patch);
  TaskSpec s = Spec();
  s.idempotency_key = "k";
  uint64_t id = Add("q", s);
  ASSERT_TRUE(engine_.Cancel(id).error.ok());
  Advance(999);
  EXPECT_TRUE(engine_.GetTask(id).error.ok());
  Advance(1);
  EXPECT_EQ(engine_.GetTask(id).error.code, ErrorCode::kNotFound);
  EXPECT_EQ(journal_.removed, 1);
  EXPECT_NE(Add("q", s), id);  // the key is free again
}

TEST_F(EngineTest, WaitingLeaseIsWokenByEnqueueAndTimesOutEmpty) {
  LeaseRequest req;
  req.wait_ms = 5000;
  std::optional<LeaseResult> got;
  engine_.Lease("q", req, [&](LeaseResult r) { got = std::move(r); });
  EXPECT_FALSE(got);
  uint64_t id = Add("q");
  ASSERT_TRUE(got);
  ASSERT_EQ(got->granted.size(), 1u);
  EXPECT_EQ(got->granted[0].id, id);

  std::optional<LeaseResult> empty;
  engine_.Lease("q", req, [&](LeaseResult r) { empty = std::move(r); });
  EXPECT_EQ(engine_.NextWakeup(), clock_.MonoMs() + 5000);
  Advance(4999);
  EXPECT_FALSE(empty);
  Advance(1);
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->granted.empty());
}

TEST_F(EngineTest, CanceledWaiterNeverGetsATaskAndUndeliveredLeaseIsReleased) {
  LeaseRequest req;
  req.wait_ms = 5000;
  std::optional<LeaseResult> got;
  uint64_t waiter = 0;
  engine_.Lease(
      "q", req, [&](LeaseResult r) { got = std::move(r); }, &waiter);
  engine_.CancelWaiter(waiter);
  ASSERT_TRUE(got);
  EXPECT_TRUE(got->granted.empty());
  uint64_t id = Add("q");
  EXPECT_EQ(State(id), "ready");

  auto leased = LeaseNow("q");
  engine_.ReleaseUndelivered({LeaseGrant{id, Token(leased[0])}});
  EXPECT_EQ(State(id), "ready");
  EXPECT_EQ(Get(id).at("attempts").to_number<int>(), 0);
}

TEST_F(EngineTest, PausedQueueAcceptsButLeasesNothing) {
  QueueConfigPatch pause;
  pause.paused = true;
  engine_.ConfigureQueue("q", pause);
  Add("q");
  EXPECT_TRUE(LeaseNow("q").empty());
  LeaseRequest req;
  req.wait_ms = 1000;
  std::optional<LeaseResult> got;
  engine_.Lease("q", req, [&](LeaseResult r) { got = std::move(r); });
  EXPECT_FALSE(got);
  QueueConfigPatch resume;
  resume.paused = false;
  engine_.ConfigureQueue("q", resume);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->granted.size(), 1u);
}

TEST_F(EngineTest, WaitTaskAnswersWhenFinished) {
  uint64_t id = Add("q");
  std::optional<Outcome<TaskView>> got;
  engine_.WaitTask(id, 10000, [&](Outcome<TaskView> r) { got = std::move(r); });
  EXPECT_FALSE(got);
  auto leased = LeaseNow("q");
  EXPECT_FALSE(got);
  ASSERT_TRUE(engine_.Ack(id, Token(leased[0]), "").error.ok());
  ASSERT_TRUE(got);
  EXPECT_EQ(got->value.state, TaskState::kSucceeded);
}

TEST_F(EngineTest, ListsTasksByStateInPages) {
  std::vector<uint64_t> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(Add("q"));
  ASSERT_TRUE(engine_.Cancel(ids[1]).error.ok());
  auto page =
      json::parse(TaskPageJson(engine_.ListTasks("q", TaskState::kReady, 2, 0).value)).as_object();
  ASSERT_EQ(page.at("tasks").as_array().size(), 2u);
  EXPECT_EQ(Id(page.at("tasks").as_array()[1]), ids[2]);
  uint64_t next = page.at("next_after").to_number<uint64_t>();
  EXPECT_EQ(next, ids[2]);
  page = json::parse(TaskPageJson(engine_.ListTasks("q", TaskState::kReady, 2, next).value))
             .as_object();
  EXPECT_EQ(page.at("tasks").as_array().size(), 2u);
  EXPECT_TRUE(page.at("next_after").is_null());
}

TEST(EngineLimitsTest, RefusesNewQueuesBeyondTheLimit) {
  ManualClock clock;
  NullJournal journal;
  Limits limits;
  limits.max_queues = 2;
  ServerWide shared(limits);
  Engine engine(clock, journal, shared, limits, 1);
  std::vector<TaskSpec> one(1);
  EXPECT_TRUE(engine.Enqueue("a", one).error.ok());
  EXPECT_TRUE(engine.Enqueue("b", one).error.ok());
  EXPECT_EQ(engine.Enqueue("c", one).error.code, ErrorCode::kTooManyRequests);
  EXPECT_TRUE(engine.Enqueue("a", one).error.ok());
  EXPECT_EQ(engine.ConfigureQueue("d", {}).error.code, ErrorCode::kTooManyRequests);
}

TEST_F(EngineTest, EveryChangeReachesTheJournal) {
  uint64_t id = Add("q");
  int after_enqueue = journal_.changed;
  EXPECT_GE(after_enqueue, 1);
  auto leased = LeaseNow("q");
  ASSERT_TRUE(engine_.Ack(id, Token(leased[0]), "").error.ok());
  EXPECT_EQ(journal_.changed, after_enqueue + 2);
}

}  // namespace
}  // namespace conveyor
