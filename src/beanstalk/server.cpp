#include "beanstalk/server.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "beanstalk/session.h"
#include "common/clock.h"
#include "net/listener.h"

namespace conveyor::beanstalk {

namespace asio = boost::asio;
using asio::ip::tcp;

BeanstalkServer::BeanstalkServer(ShardSet& shards, TaskService& service, const Limits& limits)
    : shards_(shards), service_(service), limits_(limits) {
  counters_.started_mono_ms = SystemClock::Instance().MonoMs();
}

BeanstalkServer::~BeanstalkServer() = default;

std::string BeanstalkServer::Listen(const std::string& host, uint16_t port) {
  listener_ = std::make_unique<Listener>(
      shards_, limits_.max_connections, open_connections_,
      [this](tcp::socket socket, size_t thread) {
        asio::co_spawn(shards_.io(thread),
                       RunSession(std::move(socket),
                                  SessionContext{service_, limits_, counters_, open_connections_}),
                       asio::detached);
      },
      [](tcp::socket socket, size_t) {
        boost::system::error_code ignored;
        socket.close(ignored);  // beanstalkd has no reply for "too many connections"
      });
  return listener_->Listen(host, port, "beanstalkd protocol");
}

void BeanstalkServer::StopAccepting() {
  if (listener_) listener_->Stop();
}

}  // namespace conveyor::beanstalk
