#include "beanstalk/server.h"

#include <fmt/format.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>

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
                       RunSession(std::move(socket), SessionContext{shards_, service_, limits_,
                                                                    counters_, open_connections_}),
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

void BeanstalkServer::CloseAll() {
  for (size_t i = 0; i < shards_.size(); ++i) {
    asio::post(shards_.io(i), [] { CloseSessionsOnThisThread(); });
  }
}

void BeanstalkServer::AppendMetrics(std::string& out) const {
  out += "# HELP conveyor_beanstalk_commands_total beanstalkd-protocol commands, by command.\n";
  out += "# TYPE conveyor_beanstalk_commands_total counter\n";
  for (size_t k = 0; k < counters_.commands.size(); ++k) {
    const auto kind = static_cast<CommandKind>(k);
    const uint64_t n = counters_.count(kind);
    if (n == 0) continue;
    out += fmt::format("conveyor_beanstalk_commands_total{{command=\"{}\"}} {}\n",
                       CommandName(kind), n);
  }
  out += "# HELP conveyor_beanstalk_connections Open beanstalkd-protocol connections.\n";
  out += "# TYPE conveyor_beanstalk_connections gauge\n";
  out += fmt::format("conveyor_beanstalk_connections {}\n",
                     open_connections_.load(std::memory_order_relaxed));
  out += "# HELP conveyor_beanstalk_connections_total beanstalkd-protocol connections accepted.\n";
  out += "# TYPE conveyor_beanstalk_connections_total counter\n";
  out += fmt::format("conveyor_beanstalk_connections_total {}\n",
                     counters_.total_connections.load(std::memory_order_relaxed));
}

}  // namespace conveyor::beanstalk
