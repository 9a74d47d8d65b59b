// HttpServer: the listening socket (on I/O thread 0) and the connection limit. Accepted
// connections are handed round-robin to the I/O threads, where each lives for good; above
// Limits::max_connections a connection is answered 503 with Retry-After and closed.
// Shutdown: StopAccepting() closes the listener; BeginDrain() makes every connection close
// after the answer it is working on, and closes the idle ones at once.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "common/limits.h"
#include "engine/shard_set.h"
#include "http/message.h"

namespace conveyor {

class Listener;

class HttpServer {
 public:
  HttpServer(ShardSet& shards, const Limits& limits, HttpHandler handler);
  ~HttpServer();

  // Binds host:port; returns an error sentence, or empty on success.
  std::string Listen(const std::string& host, uint16_t port);
  // Closes and frees the listener. REQUIRES: on I/O thread 0.
  void StopAccepting();
  // Any thread.
  void BeginDrain();
  // Closes every connection still open, whatever it is doing (the drain's time is up).
  void CloseAll();
  size_t open_connections() const { return open_connections_.load(std::memory_order_relaxed); }

 private:
  ShardSet& shards_;
  const Limits& limits_;
  HttpHandler handler_;
  std::unique_ptr<Listener> listener_;
  std::atomic<size_t> open_connections_{0};
  std::atomic<bool> draining_{false};
};

}  // namespace conveyor
