// Unique and debounced work in the engine: a unique key held while queued (or active) and
// for at most ttl_ms, refused duplicates, and replace (the latest payload wins). A manual
// clock; nothing sleeps.
#include <gtest/gtest.h>

#include "engine/engine.h"
#include "now_journal.h"

namespace conveyor {
namespace {

class EngineUniqueTest : public ::testing::Test {
 protected:
  EngineUniqueTest() : engine_(clock_, journal_, shared_, Limits{}, 7) {}

  EnqueuedTask Put(std::string payload, UniqueSpec unique, std::optional<int64_t> delay = {}) {
    TaskSpec spec;
    spec.payload = std::move(payload);
    spec.unique = std::move(unique);
    spec.delay_ms = delay;
    std::vector<TaskSpec> specs;
    specs.push_back(std::move(spec));
    auto result = engine_.Enqueue("q", std::move(specs));
    EXPECT_TRUE(result.error.ok()) << result.error.message;
    return result.tasks.at(0);
  }

  static UniqueSpec Key(std::string key, bool active = false, bool replace = false,
                        int64_t ttl = 0) {
    UniqueSpec u;
    u.key = std::move(key);
    u.while_active = active;
    u.replace = replace;
    u.ttl_ms = ttl;
    return u;
  }

  std::pair<uint64_t, std::string> LeaseOne() {
    std::pair<uint64_t, std::string> out;
    engine_.Lease("q", LeaseRequest{}, [&](LeaseResult r) {
      if (!r.tasks.empty()) out = {r.tasks[0].id, r.tasks[0].lease_token};
    });
    return out;
  }

  ManualClock clock_;
  NowJournal journal_;
  ServerWide shared_{Limits{}};
  Engine engine_;
};

TEST_F(EngineUniqueTest, ASecondTaskWithTheKeyIsRefusedWhileTheFirstIsQueued) {
  const EnqueuedTask first = Put("1", Key("report:7"));
  EXPECT_FALSE(first.duplicate);
  const EnqueuedTask second = Put("2", Key("report:7"));
  EXPECT_TRUE(second.duplicate);
  EXPECT_FALSE(second.replaced);
  EXPECT_EQ(second.id, first.id);
  EXPECT_FALSE(Put("3", Key("report:8")).duplicate);  // another key
  EXPECT_EQ(engine_.QueueStats("q").counts[static_cast<int>(TaskState::kReady)], 2u);
  // Leased: no longer queued, so a new one is accepted (while "queued").
  ASSERT_EQ(LeaseOne().first, first.id);
  const EnqueuedTask third = Put("4", Key("report:7"));
  EXPECT_FALSE(third.duplicate);
  EXPECT_NE(third.id, first.id);
}

TEST_F(EngineUniqueTest, WhileActiveALeasedTaskHoldsTheKeyUntilItFinishes) {
  const EnqueuedTask first = Put("1", Key("sync:42", /*active=*/true));
  auto [id, token] = LeaseOne();
  ASSERT_EQ(id, first.id);
  EXPECT_TRUE(Put("2", Key("sync:42", true)).duplicate);
  ASSERT_TRUE(engine_.Ack(id, token, "").error.ok());
  EXPECT_FALSE(Put("3", Key("sync:42", true)).duplicate);
}

TEST_F(EngineUniqueTest, TheKeyIsLetGoAfterItsTtl) {
  const EnqueuedTask first = Put("1", Key("k", false, false, /*ttl=*/5000), /*delay=*/60000);
  clock_.Advance(4999);
  EXPECT_EQ(Put("2", Key("k")).id, first.id);
  clock_.Advance(1);
  EXPECT_NE(Put("3", Key("k")).id, first.id);
}

TEST_F(EngineUniqueTest, ReplaceGivesTheQueuedTaskTheLatestPayloadAndRunTime) {
  const EnqueuedTask first = Put("\"v1\"", Key("search:abc", false, true), 1000);
  clock_.Advance(500);
  const EnqueuedTask again = Put("\"v2-longer-payload\"", Key("search:abc", false, true), 1000);
  EXPECT_EQ(again.id, first.id);
  EXPECT_TRUE(again.duplicate);
  EXPECT_TRUE(again.replaced);
  TaskView view = engine_.GetTask(first.id).value;
  EXPECT_EQ(view.payload, "\"v2-longer-payload\"");
  EXPECT_EQ(view.run_at, clock_.NowMs() + 1000);  // the debounce window began again
  clock_.Advance(999);
  engine_.Tick();
  EXPECT_EQ(LeaseOne().first, 0u);
  clock_.Advance(1);
  engine_.Tick();
  auto [id, token] = LeaseOne();
  EXPECT_EQ(id, first.id);
  EXPECT_EQ(engine_.GetTask(id).value.payload, "\"v2-longer-payload\"");
  // Leased: with while "queued" the next one is a new task, not a replacement.
  const EnqueuedTask next = Put("\"v3\"", Key("search:abc", false, true));
  EXPECT_FALSE(next.duplicate);
  EXPECT_NE(next.id, first.id);
}

TEST_F(EngineUniqueTest, ReplaceDoesNotTouchALeasedHolder) {
  const EnqueuedTask first = Put("\"a\"", Key("k", /*active=*/true, /*replace=*/true));
  ASSERT_EQ(LeaseOne().first, first.id);
  const EnqueuedTask again = Put("\"b\"", Key("k", true, true));
  EXPECT_EQ(again.id, first.id);
  EXPECT_TRUE(again.duplicate);
  EXPECT_FALSE(again.replaced);
  EXPECT_EQ(engine_.GetTask(first.id).value.payload, "\"a\"");
}

}  // namespace
}  // namespace conveyor
