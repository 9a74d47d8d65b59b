#include "schedule/scheduler.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>

#include "common/clock.h"

namespace conveyor {

namespace asio = boost::asio;

namespace {
// A loop looks again at least this often (a clock that jumps, a missed wake-up).
constexpr int64_t kMaxSleepMs = 60000;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
}  // namespace

Scheduler::Scheduler(ShardSet& shards, LocalTaskService& service)
    : shards_(shards), service_(service) {
  for (size_t i = 0; i < shards.size(); ++i) parts_.push_back(std::make_unique<PerShard>());
}

Scheduler::~Scheduler() = default;

void Scheduler::Start(int64_t started_at) {
  started_at_ = started_at;
  // Called on the schedule's own shard thread: its loop's timer is that thread's.
  service_.OnScheduleChange([this](size_t shard) {
    if (parts_[shard]->timer) parts_[shard]->timer->cancel();
  });
  for (size_t i = 0; i < shards_.size(); ++i) {
    asio::co_spawn(shards_.io(i), Run(i), asio::detached);
  }
}

void Scheduler::Stop() {
  for (size_t i = 0; i < shards_.size(); ++i) {
    asio::post(shards_.io(i), [part = parts_[i].get()] {
      part->stopping = true;
      if (part->timer) part->timer->cancel();
    });
  }
}

asio::awaitable<void> Scheduler::Run(size_t shard) {
  PerShard& part = *parts_[shard];
  part.timer.emplace(shards_.io(shard));
  const Clock& clock = SystemClock::Instance();
  while (!part.stopping) {
    const int64_t next = shards_.at(shard).engine().NextScheduleDue();
    const int64_t now = clock.NowMs();
    if (next <= now) {
      const bool fired = co_await service_.FireDueSchedule(shard, started_at_);
      if (fired) continue;
    }
    const int64_t wait = next <= now ? 10 : std::min<int64_t>(next - now, kMaxSleepMs);
    part.timer->expires_after(std::chrono::milliseconds(wait));
    co_await part.timer->async_wait(kTuple);
  }
  part.timer.reset();
}

}  // namespace conveyor
