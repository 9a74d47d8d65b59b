// `conveyor bench --beanstalkd HOST:PORT`: the same workloads over the beanstalkd protocol
// (beanstalkd itself, as the peer, or a beanstalkd front end), so both are measured by one
// client. enqueue = `put` (--batch puts pipelined per round trip); drain = pipelined
// `reserve-with-timeout 0` then pipelined `delete`; e2e = both at once, each job's body
// carrying its send time for the enqueue -> reserve latency. Tubes play the queues.
#include "bench/beanstalk_load.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <charconv>
#include <iostream>

#include "bench/load_run.h"
#include "common/json_raw.h"

namespace conveyor {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// One beanstalkd connection: whole commands out, lines and bodies in.
class BeanstalkConn {
 public:
  explicit BeanstalkConn(tcp::socket socket) : socket_(std::move(socket)) {}

  static asio::awaitable<std::unique_ptr<BeanstalkConn>> Open(const ServerUrl& url,
                                                              std::string& error) {
    auto ex = co_await asio::this_coro::executor;
    tcp::resolver resolver(ex);
    auto [rec, endpoints] = co_await resolver.async_resolve(url.host, url.port, kTuple);
    if (rec) {
      error = "cannot resolve " + url.host + ": " + rec.message();
      co_return nullptr;
    }
    tcp::socket socket(ex);
    auto [cec, ep] = co_await asio::async_connect(socket, endpoints, kTuple);
    if (cec) {
      error = "cannot connect to " + url.host + ":" + url.port + ": " + cec.message();
      co_return nullptr;
    }
    socket.set_option(tcp::no_delay(true));
    co_return std::make_unique<BeanstalkConn>(std::move(socket));
  }

  asio::awaitable<bool> Send(const std::string& bytes) {
    auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(bytes), kTuple);
    co_return !ec;
  }
  // One reply line, without its \r\n; empty on a broken connection.
  asio::awaitable<std::string> Line() {
    auto [ec, n] =
        co_await asio::async_read_until(socket_, asio::dynamic_buffer(in_), "\r\n", kTuple);
    if (ec) co_return std::string();
    std::string line = in_.substr(0, n - 2);
    in_.erase(0, n);
    co_return line;
  }
  // A job body of `bytes` plus its \r\n.
  asio::awaitable<std::string> Body(size_t bytes) {
    if (in_.size() < bytes + 2) {
      auto [ec, n] =
          co_await asio::async_read(socket_, asio::dynamic_buffer(in_),
                                    asio::transfer_at_least(bytes + 2 - in_.size()), kTuple);
      if (ec) co_return std::string();
    }
    std::string body = in_.substr(0, bytes);
    in_.erase(0, bytes + 2);
    co_return body;
  }

 private:
  tcp::socket socket_;
  std::string in_;
};

asio::awaitable<void> Produce(Run& run, ConnStats& stats) {
  const LoadOptions& o = run.o;
  std::string error;
  auto conn = co_await BeanstalkConn::Open(run.url, error);
  if (!conn) {
    run.Fail(error);
    run.producers_left.fetch_sub(1);
    co_return;
  }
  const std::string filler = Filler(o.payload_bytes);
  std::string current_tube = "default";
  asio::steady_timer timer(co_await asio::this_coro::executor);
  std::string out;
  while (!run.TimeUp()) {
    size_t n = 0;
    SteadyClock::time_point due;
    if (!co_await NextRequest(run, timer, n, due)) break;
    out.clear();
    const std::string tube = run.QueueName(run.next_queue.fetch_add(1));
    size_t replies = n;
    if (tube != current_tube) {
      out += "use " + tube + "\r\n";
      current_tube = tube;
      ++replies;
    }
    const std::string body =
        "{\"t\":" + std::to_string(MicrosSince(run.start, due)) + ",\"data\":\"" + filler + "\"}";
    for (size_t i = 0; i < n; ++i) {
      out += "put 1024 0 60 " + std::to_string(body.size()) + "\r\n" + body + "\r\n";
    }
    bool ok = co_await conn->Send(out);
    size_t inserted = 0;
    for (size_t i = 0; ok && i < replies; ++i) {
      std::string line = co_await conn->Line();
      if (line.empty()) ok = false;
      if (line.rfind("INSERTED ", 0) == 0) {
        ++inserted;
      } else if (line.rfind("USING ", 0) != 0) {
        run.Fail("put answered: " + line);
      }
    }
    stats.request.Record(MicrosSince(due, SteadyClock::now()));
    run.requests.fetch_add(1, std::memory_order_relaxed);
    run.Done(run.enqueued, inserted);
    if (!ok) {
      run.Fail("connection lost");
      break;
    }
  }
  run.producers_left.fetch_sub(1);
}

// Reserves up to --batch jobs in one round trip; records enqueue -> reserve from each
// body's stamp; deletes them in the next. Returns how many it got, or -1 when broken.
asio::awaitable<int> ReserveRound(BeanstalkConn& conn, Run& run, ConnStats& stats, int timeout_s) {
  std::string out;
  for (size_t i = 0; i < run.o.batch; ++i) {
    out += "reserve-with-timeout " + std::to_string(timeout_s) + "\r\n";
  }
  const auto sent = SteadyClock::now();
  if (!co_await conn.Send(out)) co_return -1;
  std::string deletes;
  int got = 0;
  for (size_t i = 0; i < run.o.batch; ++i) {
    std::string line = co_await conn.Line();
    if (line.empty()) co_return -1;
    if (line.rfind("RESERVED ", 0) != 0) continue;  // TIMED_OUT
    const size_t space = line.find(' ', 9);
    size_t bytes = 0;
    std::from_chars(line.data() + space + 1, line.data() + line.size(), bytes);
    std::string body = co_await conn.Body(bytes);
    std::string_view t = FindJsonMember(body, "t");
    int64_t stamp = 0;
    if (!t.empty() && std::from_chars(t.data(), t.data() + t.size(), stamp).ec == std::errc{}) {
      stats.enqueue_to_lease.Record(MicrosSince(run.start, SteadyClock::now()) - stamp);
    }
    deletes += "delete " + line.substr(9, space - 9) + "\r\n";
    ++got;
  }
  stats.request.Record(MicrosSince(sent, SteadyClock::now()));
  run.requests.fetch_add(1, std::memory_order_relaxed);
  if (got == 0) co_return 0;
  const auto del_sent = SteadyClock::now();
  if (!co_await conn.Send(deletes)) co_return -1;
  for (int i = 0; i < got; ++i) {
    std::string line = co_await conn.Line();
    if (line.empty()) co_return -1;
    if (line != "DELETED") run.Fail("delete answered: " + line);
  }
  stats.request.Record(MicrosSince(del_sent, SteadyClock::now()));
  run.requests.fetch_add(1, std::memory_order_relaxed);
  run.Done(run.consumed, static_cast<uint64_t>(got));
  co_return got;
}

// Watches its tube; when the producers are done, an empty tube sends it on to the next.
asio::awaitable<void> Consume(Run& run, ConnStats& stats, size_t index, bool wait) {
  std::string error;
  auto conn = co_await BeanstalkConn::Open(run.url, error);
  if (!conn) {
    run.Fail(error);
    co_return;
  }
  size_t tube_index = index;
  size_t empty_in_a_row = 0;
  std::string watched = "default";
  for (;;) {
    const std::string tube = run.QueueName(tube_index);
    if (tube != watched) {
      if (!co_await conn->Send("watch " + tube + "\r\nignore " + watched + "\r\n")) break;
      co_await conn->Line();
      co_await conn->Line();
      watched = tube;
    }
    const bool producing = wait && run.producers_left.load() > 0;
    const int got = co_await ReserveRound(*conn, run, stats, producing ? 1 : 0);
    if (got < 0) {
      run.Fail("connection lost");
      co_return;
    }
    if (got > 0) {
      empty_in_a_row = 0;
      continue;
    }
    if (producing || (wait && run.producers_left.load() > 0)) continue;
    if (++empty_in_a_row >= run.o.queues) co_return;
    ++tube_index;
  }
}

void Spawn(Run& run, IoThreads& ios, std::vector<ConnStats>& stats) {
  const auto [producers, readers] = RolesOf(run.o);
  for (size_t c = 0; c < run.o.connections; ++c) {
    asio::io_context& io = *ios[c % ios.size()];
    if (c < producers) {
      asio::co_spawn(io, Produce(run, stats[c]), asio::detached);
    } else {
      asio::co_spawn(io, Consume(run, stats[c], c - producers, run.o.workload != "drain"),
                     asio::detached);
    }
  }
}

}  // namespace

int RunBeanstalkLoad(const LoadOptions& o) {
  if (o.workload == "mixed") {
    std::cerr << "conveyor bench: --beanstalkd runs enqueue, drain or e2e\n";
    return 2;
  }
  ServerUrl url;
  const size_t colon = o.beanstalkd.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == o.beanstalkd.size()) {
    std::cerr << "conveyor bench: --beanstalkd wants HOST:PORT\n";
    return 2;
  }
  url.host = o.beanstalkd.substr(0, colon);
  url.port = o.beanstalkd.substr(colon + 1);
  return RunWith(o, url, Spawn);
}

}  // namespace conveyor
