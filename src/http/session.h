// One HTTP/1.1 keep-alive connection: reads requests with Beast under the limits of
// Limits (header/body size, header/idle/write timeouts), hands each to the API handler and
// writes the answer, in order (pipelined requests wait in the read buffer: backpressure).
// Runs as one coroutine on the I/O thread that the connection was given to.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "common/limits.h"
#include "http/http_metrics.h"
#include "http/message.h"

namespace conveyor {

struct SessionContext {
  const Limits& limits;
  const HttpHandler& handler;
  std::atomic<size_t>& open_connections;  // decremented when the session ends
  const std::atomic<bool>& draining;      // shutting down: close after the current answer
};

boost::asio::awaitable<void> RunSession(boost::asio::ip::tcp::socket socket,
                                        SessionContext context);

// Closes the sessions that live on the calling I/O thread: only those waiting idle for
// a next request, or all of them. REQUIRES: on an I/O thread.
void CloseSessionsOnThisThread(bool idle_only);

}  // namespace conveyor
