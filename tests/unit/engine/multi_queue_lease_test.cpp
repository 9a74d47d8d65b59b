// Multi-queue leases (beanstalkd's reserve over watched tubes): on one shard through
// Engine::LeaseAny, and across shards through LocalTaskService with a shared LeaseClaim.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>
#include <future>
#include <thread>

#include "common/task_id.h"
#include "engine/engine.h"
#include "engine/local_task_service.h"

namespace conveyor {
namespace {

TaskSpec Spec(int32_t priority) {
  TaskSpec s;
  s.priority = priority;
  return s;
}

TEST(LeaseAnyTest, TakesTheMostUrgentReadyTaskAmongTheQueues) {
  Limits limits;
  ServerWide shared(limits);
  ManualClock clock;
  NullJournal journal;
  Engine engine(clock, journal, shared, limits, 1);
  const uint64_t low = engine.Enqueue("a", {Spec(1)}).tasks[0].id;
  const uint64_t high = engine.Enqueue("b", {Spec(5)}).tasks[0].id;
  LeaseRequest req;
  req.max = 1;
  LeaseResult got;
  engine.LeaseAny({"a", "b", "c"}, req, [&](LeaseResult r) { got = std::move(r); });
  ASSERT_EQ(got.granted.size(), 1u);
  EXPECT_EQ(got.granted[0].id, high);
  engine.LeaseAny({"a", "b"}, req, [&](LeaseResult r) { got = std::move(r); });
  ASSERT_EQ(got.granted.size(), 1u);
  EXPECT_EQ(got.granted[0].id, low);
}

TEST(LeaseAnyTest, AWaitOnSeveralQueuesIsServedOnceAndLeavesNoWaiterBehind) {
  Limits limits;
  ServerWide shared(limits);
  ManualClock clock;
  NullJournal journal;
  Engine engine(clock, journal, shared, limits, 1);
  LeaseRequest req;
  req.max = 5;
  req.wait_ms = 10'000;
  int answers = 0;
  LeaseResult got;
  engine.LeaseAny({"a", "b"}, req, [&](LeaseResult r) {
    ++answers;
    got = std::move(r);
  });
  EXPECT_EQ(shared.waiters.used(), 1u);
  const uint64_t id = engine.Enqueue("b", {Spec(0)}).tasks[0].id;
  ASSERT_EQ(answers, 1);
  ASSERT_EQ(got.granted.size(), 1u);
  EXPECT_EQ(got.granted[0].id, id);
  EXPECT_EQ(shared.waiters.used(), 0u);
  engine.Enqueue("a", {Spec(0)});  // nobody waits any more: it stays ready
  EXPECT_EQ(answers, 1);
  EXPECT_EQ(engine.Snapshot().size(), 2u);
}

TEST(LeaseAnyTest, AClaimTakenElsewhereLeasesNothing) {
  Limits limits;
  ServerWide shared(limits);
  ManualClock clock;
  NullJournal journal;
  Engine engine(clock, journal, shared, limits, 1);
  engine.Enqueue("a", {Spec(0)});
  auto claim = std::make_shared<LeaseClaim>();
  claim->taken = true;
  LeaseRequest req;
  LeaseResult got;
  engine.LeaseAny(
      {"a"}, req, [&](LeaseResult r) { got = std::move(r); }, nullptr, claim);
  EXPECT_TRUE(got.granted.empty());
  EXPECT_EQ(engine.Snapshot()[0].counts[static_cast<size_t>(TaskState::kReady)], 1u);
}

// Two queues on different shards of a real ShardSet, driven through LocalTaskService.
class CrossShardLeaseTest : public ::testing::Test {
 protected:
  CrossShardLeaseTest()
      : journals_{&j0_, &j1_},
        shards_(2, SystemClock::Instance(), journals_, limits_),
        service_(shards_) {
    // Two queue names that live on different shards.
    for (int i = 0; names_.size() < 2; ++i) {
      std::string name = std::to_string(i);
      name.insert(0, 1, 'q');
      size_t shard = SlotOfQueue(name) % 2;
      if (shard == names_.size()) names_.push_back(name);
    }
    runner_ = std::thread([this] { shards_.Run(); });
  }
  ~CrossShardLeaseTest() override {
    shards_.Stop();
    runner_.join();
  }
  template <typename T>
  T Run(boost::asio::awaitable<T> call) {
    auto future = boost::asio::co_spawn(shards_.io(0), std::move(call), boost::asio::use_future);
    EXPECT_EQ(future.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    return future.get();
  }
  uint64_t Add(const std::string& queue, int32_t priority) {
    return Run(service_.Enqueue(queue, {Spec(priority)})).tasks.at(0).id;
  }

  Limits limits_;
  NullJournal j0_, j1_;
  std::vector<Journal*> journals_;
  ShardSet shards_;
  LocalTaskService service_;
  std::vector<std::string> names_;
  std::thread runner_;
};

TEST_F(CrossShardLeaseTest, LeasesTheMostUrgentTaskAcrossShards) {
  const uint64_t low = Add(names_[0], 1);
  const uint64_t high = Add(names_[1], 9);
  LeaseCommand command{{names_[0], names_[1]}, LeaseRequest{}};
  LeaseResult got = Run(service_.Lease(command, nullptr));
  ASSERT_EQ(got.granted.size(), 1u);
  EXPECT_EQ(got.granted[0].id, high);
  got = Run(service_.Lease(command, nullptr));
  ASSERT_EQ(got.granted.size(), 1u);
  EXPECT_EQ(got.granted[0].id, low);
}

TEST_F(CrossShardLeaseTest, AWaitAcrossShardsTakesExactlyOneTask) {
  LeaseCommand command{{names_[0], names_[1]}, LeaseRequest{}};
  command.request.wait_ms = 5000;
  command.request.max = 10;
  auto future = boost::asio::co_spawn(shards_.io(0), service_.Lease(command, nullptr),
                                      boost::asio::use_future);
  // Both shards have parked their part of the wait.
  for (int i = 0; i < 1000 && shards_.shared().waiters.used() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(shards_.shared().waiters.used(), 2u);
  const uint64_t first = Add(names_[1], 0);
  ASSERT_EQ(future.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  LeaseResult got = future.get();
  ASSERT_EQ(got.granted.size(), 1u);
  EXPECT_EQ(got.granted[0].id, first);
  // The other shard's wait is gone: a task there stays ready for the next lease.
  Add(names_[0], 0);
  std::vector<QueueSnapshot> stats = Run(service_.AllQueueStats());
  size_t ready = 0;
  for (const auto& q : stats) ready += q.counts[static_cast<size_t>(TaskState::kReady)];
  EXPECT_EQ(ready, 1u);
  EXPECT_EQ(shards_.shared().waiters.used(), 0u);
}

}  // namespace
}  // namespace conveyor
