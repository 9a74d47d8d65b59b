// One beanstalkd-protocol connection: reads command lines and put bodies under the
// protocol's bounds, turns each command into TaskService calls (the same engine commands
// as HTTP), and writes beanstalkd's replies in order (pipelined commands are answered in
// order; replies are flushed before the session waits). The connection's state is its
// used tube, its watch list and the jobs it has reserved (id -> lease token); closing it
// releases those jobs at once, as beanstalkd does. Runs as one coroutine on the I/O thread
// the connection was given to.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "beanstalk/stats.h"
#include "common/limits.h"
#include "engine/shard_set.h"
#include "engine/task_service.h"

namespace conveyor::beanstalk {

struct SessionContext {
  ShardSet& shards;  // to ask every I/O thread about its sessions (stats-tube, list-tubes)
  TaskService& service;
  const Limits& limits;
  ServerCounters& counters;               // the `stats` counters, shared by the sessions
  std::atomic<size_t>& open_connections;  // decremented when the session ends
};

boost::asio::awaitable<void> RunSession(boost::asio::ip::tcp::socket socket,
                                        SessionContext context);

// Shuts down every beanstalkd connection of the calling I/O thread (shutdown); each session
// ends after its current command and releases the jobs it holds. REQUIRES: an I/O thread.
void CloseSessionsOnThisThread();

// The largest job body a put may send (beanstalkd's -z): the HTTP body limit.
size_t MaxJobBytes(const Limits& limits);

}  // namespace conveyor::beanstalk
