// PushManager: the push dispatchers of the server, one per queue with a push config, each
// on its queue's shard thread with that thread's HttpClient. Told of config changes by the
// API (any thread; the change hops to the queue's thread), started for the stored configs
// after recovery, and stopped in two steps at shutdown (no new leases; then, past the
// deadline, close what is still in flight: those tasks are ready again, attempt not
// counted). The status of each push queue is kept in a registry any thread may read (a
// mutex, touched only by config changes and by GET /v1/queues and /metrics).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "client/http_client.h"
#include "common/limits.h"
#include "engine/queue_config.h"
#include "engine/shard_set.h"
#include "engine/task_service.h"
#include "push/dispatcher.h"

namespace conveyor {

class PushManager {
 public:
  // ca_file: the CAs https endpoints are verified against (empty: the system's).
  PushManager(ShardSet& shards, TaskService& service, const Limits& limits,
              const std::string& ca_file = {});
  ~PushManager();

  // Any thread: the queue's config now (push or not); starts, updates or stops its
  // dispatcher on the queue's thread.
  // after_restart: the config was stored before this process started (StartAll).
  void Configure(const std::string& queue, const QueueConfig& config, bool after_restart = false);
  // A coroutine on any I/O thread: a dispatcher for every stored push config.
  boost::asio::awaitable<void> StartAll();
  // Shutdown, step 1 (any thread): no new leases anywhere.
  void StopLeasing();
  // Deliveries in flight, all queues (any thread).
  size_t in_flight() const;
  // Shutdown, step 2 (any thread): every client closed; deliveries still in flight end at
  // once, their tasks ready again.
  void CloseAll();

  // After the I/O threads have stopped and before their io_contexts go: drops the clients
  // and their idle connections (sockets must not outlive their io_context).
  void Release();

  // `"push":{...}` status members for the queue's JSON, or empty when it has no push.
  std::string StatusJson(std::string_view queue) const;
  void AppendMetrics(std::string& out) const;

 private:
  struct ShardPush;  // one per shard; touched only on that shard's thread

  size_t ShardOf(std::string_view queue) const;
  void ConfigureHere(size_t shard, const std::string& queue, const QueueConfig& config,
                     bool after_restart);

  ShardSet& shards_;
  TaskService& service_;
  const Limits& limits_;
  std::vector<std::unique_ptr<ShardPush>> per_shard_;
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<PushStatus>, std::less<>> statuses_;
};

}  // namespace conveyor
