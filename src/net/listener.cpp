#include "net/listener.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>

namespace conveyor {

namespace asio = boost::asio;
using asio::ip::tcp;

struct Listener::Acceptor {
  explicit Acceptor(asio::io_context& io) : acceptor(io) {}
  tcp::acceptor acceptor;
};

Listener::Listener(ShardSet& shards, size_t max_connections, std::atomic<size_t>& open_connections,
                   Handoff serve, Handoff refuse)
    : shards_(shards),
      max_connections_(max_connections),
      open_connections_(open_connections),
      serve_(std::move(serve)),
      refuse_(std::move(refuse)) {}

Listener::~Listener() = default;

std::string Listener::Listen(const std::string& host, uint16_t port, const std::string& what) {
  boost::system::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec) return "invalid " + what + " address '" + host + "': " + ec.message();
  acceptor_ = std::make_shared<Acceptor>(shards_.io(0));
  tcp::endpoint endpoint(address, port);
  auto& a = acceptor_->acceptor;
  a.open(endpoint.protocol(), ec);
  if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) a.bind(endpoint, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return "cannot listen (" + what + ") on " + host + ":" + std::to_string(port) + ": " +
           ec.message();
  }
  asio::co_spawn(shards_.io(0), AcceptLoop(), asio::detached);
  return {};
}

void Listener::Stop() {
  if (!acceptor_) return;
  boost::system::error_code ignored;
  acceptor_->acceptor.close(ignored);
  acceptor_.reset();  // the accept loop holds it until its cancelled accept completes
}

asio::awaitable<void> Listener::AcceptLoop() {
  size_t next_thread = 0;
  std::shared_ptr<Acceptor> holder = acceptor_;
  tcp::acceptor& acceptor = holder->acceptor;
  for (;;) {
    const size_t thread = next_thread++ % shards_.size();
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
    if (open_connections_.fetch_add(1, std::memory_order_relaxed) >= max_connections_) {
      open_connections_.fetch_sub(1, std::memory_order_relaxed);
      refuse_(std::move(socket), thread);
      continue;
    }
    serve_(std::move(socket), thread);
  }
}

}  // namespace conveyor
