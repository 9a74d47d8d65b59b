// Listener: a listening TCP socket on I/O thread 0 whose accepted connections are handed
// round-robin to the I/O threads and counted against a limit. Each front end (HTTP, the
// beanstalkd protocol) owns one and says what becomes of a connection: `serve` it (its
// session, on the thread given) or, above the limit, `refuse` it. The count is the front
// end's: its session decrements it when it ends.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <functional>
#include <memory>
#include <string>

#include "engine/shard_set.h"

namespace conveyor {

class Listener {
 public:
  // Called on thread 0 with the socket (already on the io_context of `thread`).
  using Handoff = std::function<void(boost::asio::ip::tcp::socket socket, size_t thread)>;

  Listener(ShardSet& shards, size_t max_connections, std::atomic<size_t>& open_connections,
           Handoff serve, Handoff refuse);
  ~Listener();

  // Binds host:port and starts accepting; an error sentence naming `what`, or empty.
  std::string Listen(const std::string& host, uint16_t port, const std::string& what);
  // Closes the listening socket. REQUIRES: on I/O thread 0.
  void Stop();

 private:
  struct Acceptor;
  boost::asio::awaitable<void> AcceptLoop();

  ShardSet& shards_;
  const size_t max_connections_;
  std::atomic<size_t>& open_connections_;
  Handoff serve_;
  Handoff refuse_;
  std::shared_ptr<Acceptor> acceptor_;  // also held by the accept loop while it runs
};

}  // namespace conveyor
