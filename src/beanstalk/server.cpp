#include "beanstalk/server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "beanstalk/session.h"
#include "common/clock.h"

namespace conveyor::beanstalk {

namespace asio = boost::asio;
using asio::ip::tcp;

struct BeanstalkServer::Acceptor {
  explicit Acceptor(asio::io_context& io) : acceptor(io) {}
  tcp::acceptor acceptor;
};

BeanstalkServer::BeanstalkServer(ShardSet& shards, TaskService& service, const Limits& limits)
    : shards_(shards), service_(service), limits_(limits) {
  counters_.started_mono_ms = SystemClock::Instance().MonoMs();
}

BeanstalkServer::~BeanstalkServer() = default;

std::string BeanstalkServer::Listen(const std::string& host, uint16_t port) {
  boost::system::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec) return "invalid --beanstalk address '" + host + "': " + ec.message();
  acceptor_ = std::make_shared<Acceptor>(shards_.io(0));
  tcp::endpoint endpoint(address, port);
  auto& a = acceptor_->acceptor;
  a.open(endpoint.protocol(), ec);
  if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) a.bind(endpoint, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return "cannot listen (beanstalkd protocol) on " + host + ":" + std::to_string(port) + ": " +
           ec.message();
  }
  asio::co_spawn(shards_.io(0), AcceptLoop(), asio::detached);
  return {};
}

void BeanstalkServer::StopAccepting() {
  if (!acceptor_) return;
  boost::system::error_code ignored;
  acceptor_->acceptor.close(ignored);
  acceptor_.reset();
}

asio::awaitable<void> BeanstalkServer::AcceptLoop() {
  size_t next_thread = 0;
  std::shared_ptr<Acceptor> holder = acceptor_;
  tcp::acceptor& acceptor = holder->acceptor;
  for (;;) {
    const size_t thread = next_thread++ % shards_.size();
    auto [ec, socket] =
        co_await acceptor.async_accept(shards_.io(thread), asio::as_tuple(asio::use_awaitable));
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {
      asio::steady_timer pause(shards_.io(0), std::chrono::milliseconds(50));
      co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    if (open_connections_.fetch_add(1, std::memory_order_relaxed) >= limits_.max_connections) {
      open_connections_.fetch_sub(1, std::memory_order_relaxed);
      socket.close(ignored);  // beanstalkd has no reply for "too many connections"
      continue;
    }
    asio::co_spawn(shards_.io(thread),
                   RunSession(std::move(socket),
                              SessionContext{service_, limits_, counters_, open_connections_}),
                   asio::detached);
  }
}

}  // namespace conveyor::beanstalk
