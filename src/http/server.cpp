#include "http/server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "http/session.h"
#include "net/listener.h"

namespace conveyor {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

const std::string& OverloadedResponse() {
  static const std::string response = [] {
    std::string body =
        R"({"error":{"code":"overloaded","message":"too many open connections; retry in a moment."}})";
    return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
           "Retry-After: 1\r\nConnection: close\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  }();
  return response;
}

asio::awaitable<void> RefuseConnection(tcp::socket socket) {
  // Best effort: the connection is closed whether or not the answer got through.
  co_await asio::async_write(socket, asio::buffer(OverloadedResponse()),
                             asio::as_tuple(asio::use_awaitable));
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
}

}  // namespace

HttpServer::HttpServer(ShardSet& shards, const Limits& limits, HttpHandler handler)
    : shards_(shards), limits_(limits), handler_(std::move(handler)) {}

HttpServer::~HttpServer() = default;

std::string HttpServer::Listen(const std::string& host, uint16_t port) {
  listener_ = std::make_unique<Listener>(
      shards_, limits_.max_connections, open_connections_,
      [this](tcp::socket socket, size_t thread) {
        asio::co_spawn(shards_.io(thread),
                       RunSession(std::move(socket),
                                  SessionContext{limits_, handler_, open_connections_, draining_}),
                       asio::detached);
      },
      [this](tcp::socket socket, size_t thread) {
        asio::co_spawn(shards_.io(thread), RefuseConnection(std::move(socket)), asio::detached);
      });
  return listener_->Listen(host, port, "HTTP");
}

void HttpServer::StopAccepting() {
  if (listener_) listener_->Stop();
}

void HttpServer::BeginDrain() {
  draining_.store(true, std::memory_order_relaxed);
  for (size_t i = 0; i < shards_.size(); ++i) {
    asio::post(shards_.io(i), [] { CloseSessionsOnThisThread(/*idle_only=*/true); });
  }
}

void HttpServer::CloseAll() {
  for (size_t i = 0; i < shards_.size(); ++i) {
    asio::post(shards_.io(i), [] { CloseSessionsOnThisThread(/*idle_only=*/false); });
  }
}

}  // namespace conveyor
