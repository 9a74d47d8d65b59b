// Flow control in the engine (ReadyIndex through Engine): rate limits, concurrency limits,
// paused keys, fair share, earliest deadline first and aging. A manual clock; nothing
// sleeps.
#include <gtest/gtest.h>

#include <map>

#include "engine/engine.h"
#include "now_journal.h"

namespace conveyor {
namespace {

struct Leased {
  uint64_t id = 0;
  std::string key;
  std::string token;
};

class EngineFlowTest : public ::testing::Test {
 protected:
  EngineFlowTest() : engine_(clock_, journal_, shared_, Limits{}, 7) {}

  uint64_t Put(std::string key, int32_t priority = 0, std::optional<int64_t> deadline = {}) {
    TaskSpec spec;
    spec.key = std::move(key);
    spec.priority = priority;
    spec.deadline = deadline;
    std::vector<TaskSpec> specs;
    specs.push_back(std::move(spec));
    auto result = engine_.Enqueue("q", std::move(specs));
    EXPECT_TRUE(result.error.ok()) << result.error.message;
    return result.tasks.at(0).id;
  }

  std::vector<Leased> Lease(uint32_t max) {
    std::vector<Leased> out;
    LeaseRequest request;
    request.max = max;
    engine_.Lease("q", request, [&](LeaseResult r) {
      for (auto& t : r.tasks) out.push_back({t.id, t.key, t.lease_token});
    });
    return out;
  }

  void Configure(const QueueConfigPatch& patch) {
    ASSERT_TRUE(engine_.ConfigureQueue("q", patch).error.ok());
  }

  void Ack(const Leased& t) { ASSERT_TRUE(engine_.Ack(t.id, t.token, "").error.ok()); }

  FlowSnapshot Flow() { return engine_.QueueStats("q").flow; }

  ManualClock clock_;
  NowJournal journal_;
  ServerWide shared_{Limits{}};
  Engine engine_;
};

std::string Named(const char* prefix, int n) {
  std::string name(prefix);
  name.append(std::to_string(n));
  return name;
}

QueueConfigPatch Rate(double per_second, uint32_t burst, bool per_key) {
  QueueConfigPatch p;
  p.rate_limit.emplace(RateLimit{per_second, burst, per_key});
  return p;
}

QueueConfigPatch Concurrency(uint32_t max, bool per_key) {
  QueueConfigPatch p;
  p.concurrency.emplace(ConcurrencyLimit{max, per_key});
  return p;
}

TEST_F(EngineFlowTest, AQueueRateLimitLetsBurstGoThenOneTokenAPeriod) {
  Configure(Rate(10, 3, false));  // a token every 100 ms, 3 at most
  for (int i = 0; i < 100; ++i) Put("");
  EXPECT_EQ(Lease(10).size(), 3u);  // the full bucket
  EXPECT_EQ(Lease(10).size(), 0u);
  EXPECT_EQ(Flow().held_by_rate, 97u);
  clock_.Advance(99);
  EXPECT_EQ(Lease(10).size(), 0u);
  clock_.Advance(1);
  EXPECT_EQ(Lease(10).size(), 1u);
  // Over 10 s leased every 10 ms: exactly 100 more (one a period, none saved up).
  size_t leased = 0;
  for (int step = 0; step < 1000; ++step) {
    clock_.Advance(10);
    leased += Lease(10).size();
  }
  EXPECT_EQ(leased, 96u);  // what was left: 100 - 3 - 1
}

TEST_F(EngineFlowTest, RateOverTenSecondsIsTheRateWhateverTheLeaseSize) {
  Configure(Rate(50, 1, false));
  for (int i = 0; i < 2000; ++i) Put("");
  size_t leased = 0;
  for (int step = 0; step < 1000; ++step) {  // 10 s in steps of 10 ms, 32 workers a step
    for (int w = 0; w < 32; ++w) leased += Lease(8).size();
    clock_.Advance(10);
  }
  EXPECT_EQ(leased, 500u);  // 50/s for 10 s (the first token at once, the last not yet)
}

TEST_F(EngineFlowTest, AKeyOverItsRateDoesNotHoldBackOtherKeys) {
  Configure(Rate(1, 1, true));
  for (int i = 0; i < 5; ++i) Put("busy");
  Put("calm");
  auto first = Lease(10);
  ASSERT_EQ(first.size(), 2u);  // one of each key: busy has one token
  EXPECT_EQ(first[0].key, "busy");
  EXPECT_EQ(first[1].key, "calm");
  EXPECT_EQ(Lease(10).size(), 0u);
  EXPECT_EQ(Flow().held_by_rate, 4u);
  clock_.Advance(1000);
  EXPECT_EQ(Lease(10).size(), 1u);
}

TEST_F(EngineFlowTest, QueueConcurrencyIsFreedByAckNackAndExpiry) {
  QueueConfigPatch p = Concurrency(2, false);
  p.lease_ms = 1000;
  Configure(p);
  for (int i = 0; i < 10; ++i) Put("");
  auto two = Lease(10);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(Lease(10).size(), 0u);
  EXPECT_EQ(Flow().held_by_concurrency, 8u);
  Ack(two[0]);
  auto third = Lease(10);
  ASSERT_EQ(third.size(), 1u);
  ASSERT_TRUE(engine_.Nack(third[0].id, third[0].token, "no", 5000, false).error.ok());
  ASSERT_EQ(Lease(10).size(), 1u);
  EXPECT_EQ(Lease(10).size(), 0u);
  clock_.Advance(1000);  // both leases expire
  engine_.Tick();
  EXPECT_EQ(Lease(10).size(), 2u);
}

TEST_F(EngineFlowTest, PerKeyConcurrencyLeasesOneOfEachKey) {
  Configure(Concurrency(1, true));
  for (int i = 0; i < 3; ++i) Put("a");
  Put("b");
  auto first = Lease(10);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].key, "a");
  EXPECT_EQ(first[1].key, "b");
  EXPECT_EQ(Lease(10).size(), 0u);
  Ack(first[0]);
  auto next = Lease(10);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].key, "a");
}

TEST_F(EngineFlowTest, AParkedLeaseIsServedWhenASlotFreesAndWhenATokenComes) {
  Configure(Concurrency(1, false));
  Put("");
  Put("");
  auto first = Lease(1);
  ASSERT_EQ(first.size(), 1u);
  std::vector<uint64_t> got;
  LeaseRequest wait;
  wait.wait_ms = 60000;
  engine_.Lease("q", wait, [&](LeaseResult r) {
    for (auto& t : r.tasks) got.push_back(t.id);
  });
  EXPECT_TRUE(got.empty());
  Ack(first[0]);
  ASSERT_EQ(got.size(), 1u);

  QueueConfigPatch rate = Rate(2, 1, false);  // a token each 500 ms
  rate.concurrency.emplace(std::nullopt);
  Configure(rate);
  Put("");
  Put("");
  got.clear();
  ASSERT_EQ(Lease(1).size(), 1u);  // the bucket's one token
  engine_.Lease("q", wait, [&](LeaseResult r) {
    for (auto& t : r.tasks) got.push_back(t.id);
  });
  EXPECT_TRUE(got.empty());
  EXPECT_LE(engine_.NextWakeup(), clock_.MonoMs() + 500);  // a flow timer is armed
  clock_.Advance(500);
  engine_.Tick();
  EXPECT_EQ(got.size(), 1u);
}

TEST_F(EngineFlowTest, FairnessLetsSmallKeysThroughABigKeysBurst) {
  QueueConfigPatch p;
  p.fair_by_key = true;
  Configure(p);
  for (int i = 0; i < 1000; ++i) Put("big");
  for (int k = 0; k < 10; ++k) {
    for (int i = 0; i < 10; ++i) Put(Named("small", k));
  }
  // Eleven keys take turns: within 110 leases every small task is out.
  size_t small = 0;
  for (int i = 0; i < 110; ++i) {
    auto one = Lease(1);
    ASSERT_EQ(one.size(), 1u);
    small += one[0].key != "big";
  }
  EXPECT_EQ(small, 100u);
}

TEST_F(EngineFlowTest, WithoutFairnessTheBigKeyGoesFirst) {
  for (int i = 0; i < 100; ++i) Put("big");
  Put("small");
  auto hundred = Lease(100);
  for (const auto& t : hundred) EXPECT_EQ(t.key, "big");
}

TEST_F(EngineFlowTest, WeightsShareInProportion) {
  QueueConfigPatch p;
  p.fair_by_key = true;
  p.key_weights.emplace(std::vector<std::pair<std::string, uint32_t>>{{"a", 3}});
  Configure(p);
  for (int i = 0; i < 100; ++i) {
    Put("a");
    Put("b");
  }
  std::map<std::string, int> share;
  for (const auto& t : Lease(40)) share[t.key]++;
  EXPECT_EQ(share["a"], 30);
  EXPECT_EQ(share["b"], 10);
}

TEST_F(EngineFlowTest, PriorityStillWinsAcrossKeysWithFairness) {
  QueueConfigPatch p;
  p.fair_by_key = true;
  Configure(p);
  for (int i = 0; i < 5; ++i) Put("low", 0);
  const uint64_t urgent = Put("other", 10);
  auto first = Lease(1);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].id, urgent);
}

TEST_F(EngineFlowTest, WithinAPriorityTheNearerDeadlineGoesFirst) {
  const int64_t now = clock_.NowMs();
  const uint64_t plain = Put("");
  const uint64_t later = Put("", 0, now + 60000);
  const uint64_t sooner = Put("", 0, now + 10000);
  const uint64_t urgent = Put("", 1);
  auto all = Lease(4);
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[0].id, urgent);  // priority first
  EXPECT_EQ(all[1].id, sooner);
  EXPECT_EQ(all[2].id, later);
  EXPECT_EQ(all[3].id, plain);  // no deadline: last
}

TEST_F(EngineFlowTest, AgingLetsALongWaitingTaskPassHigherPriorities) {
  QueueConfigPatch p;
  p.aging_ms = 100;  // a priority level a 100 ms waited
  Configure(p);
  const uint64_t old = Put("", 0);
  clock_.Advance(1000);              // it has gained 10 levels
  const uint64_t five = Put("", 5);  // rank 1000 - 500 = 500 > 0
  auto first = Lease(1);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].id, old);
  clock_.Advance(100);
  const uint64_t twenty = Put("", 20);  // 1100 - 2000 < 500: goes first
  auto next = Lease(2);
  ASSERT_EQ(next.size(), 2u);
  EXPECT_EQ(next[0].id, twenty);
  EXPECT_EQ(next[1].id, five);
}

TEST_F(EngineFlowTest, AHeldNackPausesItsKeyWithoutCountingAnAttempt) {
  for (int i = 0; i < 3; ++i) Put("remote");
  const uint64_t other = Put("other");
  auto first = Lease(1);
  ASSERT_EQ(first.size(), 1u);
  ASSERT_EQ(first[0].key, "remote");
  NackHold hold;
  hold.pause_key_ms = 2000;
  auto nacked = engine_.Nack(first[0].id, first[0].token, "429", std::nullopt, false, hold);
  ASSERT_TRUE(nacked.error.ok());
  EXPECT_EQ(nacked.value.state, TaskState::kScheduled);
  TaskView view = engine_.GetTask(first[0].id).value;
  EXPECT_EQ(view.attempts, 0u);
  EXPECT_TRUE(view.errors.empty());
  auto during = Lease(10);
  ASSERT_EQ(during.size(), 1u);  // only the other key
  EXPECT_EQ(during[0].id, other);
  EXPECT_EQ(Flow().paused_keys, 1u);
  EXPECT_EQ(Flow().held_by_pause, 2u);
  clock_.Advance(2000);
  engine_.Tick();
  EXPECT_EQ(Lease(10).size(), 3u);
  EXPECT_EQ(engine_.QueueStats("q").totals.deferred, 1u);
}

TEST_F(EngineFlowTest, RetryAtPausesTheKeyUntilThen) {
  Put("k");
  Put("k");
  auto first = Lease(1);
  NackHold hold;
  hold.retry_at = clock_.NowMs() + 5000;
  ASSERT_TRUE(engine_.Nack(first[0].id, first[0].token, "", std::nullopt, false, hold).error.ok());
  EXPECT_EQ(engine_.GetTask(first[0].id).value.run_at, clock_.NowMs() + 5000);
  EXPECT_EQ(Lease(10).size(), 0u);
  clock_.Advance(5000);
  engine_.Tick();
  EXPECT_EQ(Lease(10).size(), 2u);
}

TEST_F(EngineFlowTest, KeysAreForgottenWhenTheirTasksAreGone) {
  Configure(Rate(1000, 1, true));
  for (int k = 0; k < 50; ++k) Put(Named("k", k));
  EXPECT_EQ(Flow().keys, 50u);
  for (const auto& t : Lease(100)) Ack(t);
  QueueConfigPatch p;
  p.retention_ms = 0;
  Configure(p);
  clock_.Advance(10);
  engine_.Tick();
  Lease(1);  // a lease forgets idle keys, a few at a time
  for (int i = 0; i < 10; ++i) Lease(1);
  EXPECT_EQ(Flow().keys, 0u);
}

TEST_F(EngineFlowTest, ConfigChangesReorderAndReplaceKeys) {
  for (int i = 0; i < 3; ++i) Put("a");
  Put("b");
  QueueConfigPatch p;
  p.fair_by_key = true;
  Configure(p);
  auto two = Lease(2);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].key, "a");
  EXPECT_EQ(two[1].key, "b");
  Configure(Concurrency(1, true));
  EXPECT_EQ(Lease(10).size(), 0u);  // a and b each hold one
  QueueConfigPatch off;
  off.concurrency.emplace(std::nullopt);
  Configure(off);
  EXPECT_EQ(Lease(10).size(), 2u);
}

}  // namespace
}  // namespace conveyor
