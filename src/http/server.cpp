#include "http/server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "http/session.h"

namespace conveyor {

namespace asio = boost::asio;
using asio::ip::tcp;

struct HttpServer::Acceptor {
  explicit Acceptor(asio::io_context& io) : acceptor(io) {}
  tcp::acceptor acceptor;
};

HttpServer::HttpServer(ShardSet& shards, const Limits& limits, HttpHandler handler)
    : shards_(shards), limits_(limits), handler_(std::move(handler)) {}

HttpServer::~HttpServer() = default;

std::string HttpServer::Listen(const std::string& host, uint16_t port) {
  boost::system::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec) return "invalid listen address '" + host + "': " + ec.message();
  acceptor_ = std::make_shared<Acceptor>(shards_.io(0));
  tcp::endpoint endpoint(address, port);
  auto& a = acceptor_->acceptor;
  a.open(endpoint.protocol(), ec);
  if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) a.bind(endpoint, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return "cannot listen on " + host + ":" + std::to_string(port) + ": " + ec.message();
  asio::co_spawn(shards_.io(0), AcceptLoop(), asio::detached);
  return {};
}

void HttpServer::StopAccepting() {
  if (!acceptor_) return;
  boost::system::error_code ignored;
  acceptor_->acceptor.close(ignored);
  acceptor_.reset();  // the accept loop holds it until its cancelled accept completes
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

asio::awaitable<void> HttpServer::AcceptLoop() {
  size_t next_thread = 0;
  std::shared_ptr<Acceptor> holder = acceptor_;
  tcp::acceptor& acceptor = holder->acceptor;
  for (;;) {
    size_t thread = next_thread++ % shards_.size();
    auto [ec, socket] =
        co_await acceptor.async_accept(shards_.io(thread), asio::as_tuple(asio::use_awaitable));
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {
      // e.g. EMFILE: pause a moment, then keep accepting once descriptors free up.
      asio::steady_timer pause(shards_.io(0), std::chrono::milliseconds(50));
      co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    if (open_connections_.fetch_add(1, std::memory_order_relaxed) >= limits_.max_connections) {
      open_connections_.fetch_sub(1, std::memory_order_relaxed);
      asio::co_spawn(shards_.io(thread), RefuseConnection(std::move(socket)), asio::detached);
      continue;
    }
    asio::co_spawn(shards_.io(thread),
                   RunSession(std::move(socket),
                              SessionContext{limits_, handler_, open_connections_, draining_}),
                   asio::detached);
  }
}

}  // namespace conveyor
