// BeanstalkServer: the beanstalkd-protocol listener (`serve --beanstalk ADDR`). Like the
// HTTP server it accepts on I/O thread 0 and hands each connection round-robin to an I/O
// thread, where its session lives; above Limits::max_connections (counted apart from
// HTTP's) a connection is closed at once. Holds the counters `stats` shows.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "beanstalk/stats.h"
#include "common/limits.h"
#include "engine/shard_set.h"
#include "engine/task_service.h"

namespace conveyor {
class Listener;
}

namespace conveyor::beanstalk {

class BeanstalkServer {
 public:
  BeanstalkServer(ShardSet& shards, TaskService& service, const Limits& limits);
  ~BeanstalkServer();

  // Binds host:port; returns an error sentence, or empty on success.
  std::string Listen(const std::string& host, uint16_t port);
  // Closes the listener. REQUIRES: on I/O thread 0.
  void StopAccepting();
  // Closes every connection (shutdown): each session ends after its current command and
  // makes the jobs it holds ready again. Any thread.
  void CloseAll();
  size_t open_connections() const { return open_connections_.load(std::memory_order_relaxed); }
  // Its series for /metrics (Prometheus text): commands by name, connections. Any thread.
  void AppendMetrics(std::string& out) const;

 private:
  ShardSet& shards_;
  TaskService& service_;
  const Limits& limits_;
  ServerCounters counters_;
  std::unique_ptr<Listener> listener_;
  std::atomic<size_t> open_connections_{0};
};

}  // namespace conveyor::beanstalk
