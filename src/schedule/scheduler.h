// Scheduler: runs the schedules. One loop per shard, on that shard's thread, sleeps until
// the earliest tick of the shard's schedules (Engine::NextScheduleDue) and then has
// LocalTaskService::FireDueSchedule enqueue it (exactly once: the task and the next tick
// are committed together). A schedule set, paused or deleted wakes its shard's loop.
// Created and stopped by `conveyor serve`; Start and Stop from any thread.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "engine/local_task_service.h"
#include "engine/shard_set.h"

namespace conveyor {

class Scheduler {
 public:
  Scheduler(ShardSet& shards, LocalTaskService& service);
  ~Scheduler();
  // Ticks due before now (epoch ms: the server's start) follow their catch_up rule.
  void Start(int64_t started_at);
  void Stop();

 private:
  struct PerShard {
    std::optional<boost::asio::steady_timer> timer;
    bool stopping = false;
  };
  boost::asio::awaitable<void> Run(size_t shard);

  ShardSet& shards_;
  LocalTaskService& service_;
  std::vector<std::unique_ptr<PerShard>> parts_;
  int64_t started_at_ = 0;
};

}  // namespace conveyor
