// libFuzzer target for the HTTP request path: Beast's request parser, then the router and
// handlers of the real Api over a one-shard engine in memory. Checks that every answer
// has a known status and that every JSON answer parses.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <cstdint>
#include <cstdlib>

#include "api/handlers.h"
#include "common/clock.h"
#include "engine/local_task_service.h"

namespace {

using namespace conveyor;

class NoConnection final : public Connection {
 public:
  void WatchForClose(std::function<void()>) override {}
  bool closed() const override { return false; }
};

struct World {
  World() {
    limits.max_wait_ms = 5;  // long-polls must not stall the fuzzer
    limits.max_body_bytes = 64 * 1024;
  }
  Limits limits;
  NullJournal journal;
  ShardSet shards{1, SystemClock::Instance(), {&journal}, limits};
  LocalTaskService service{shards};
  Api api{service, limits, 1};
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace http = boost::beast::http;
  static World* world = new World();

  http::request_parser<http::string_body> parser;
  parser.eager(true);
  parser.header_limit(16 * 1024);
  parser.body_limit(world->limits.max_body_bytes);
  boost::system::error_code ec;
  parser.put(boost::asio::buffer(data, size), ec);
  if (!ec && !parser.is_done()) parser.put_eof(ec);
  if (ec || !parser.is_done()) return 0;

  auto& req = parser.get();
  HttpRequest request;
  // The views point into the parser, which outlives the handler, as in the session.
  request.method = std::string_view(req.method_string());
  request.target = std::string_view(req.target());
  request.content_type = std::string_view(req[http::field::content_type]);
  request.body = req.body();

  NoConnection connection;
  HttpResponse response;
  bool done = false;
  auto& io = world->shards.io(0);
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        response = co_await world->api.Handle(request, connection);
        done = true;
      },
      boost::asio::detached);
  io.restart();
  while (!done) io.run_one();

  static const int kKnown[] = {200, 201, 400, 404, 405, 409, 413, 415, 429, 431, 503};
  bool known = false;
  for (int s : kKnown) known = known || s == response.status;
  if (!known) std::abort();
  if (response.content_type == "application/json") {
    boost::json::parse(response.body, ec);
    if (ec) std::abort();
  }
  return 0;
}
