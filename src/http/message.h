// HttpRequest / HttpResponse: what the HTTP session hands to the API layer and gets back,
// free of Beast types so that handlers compile without Beast. Connection lets a handler
// watch for the client going away during a long-poll. Each object belongs to one
// connection and lives on that connection's thread.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <string>
#include <string_view>

namespace conveyor {

// The views point into the session's parser and live as long as the handler runs.
struct HttpRequest {
  std::string_view method;  // "GET", "POST", ... (HEAD is answered as GET without a body)
  std::string_view target;  // path and query, as sent
  std::string_view content_type;
  std::string_view body;
};

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string_view content_type = "application/json";  // a string with static storage
  std::string allow;                                   // for 405
  int retry_after_s = 0;                               // for 429/503
  // Called when the answer could not be delivered (client gone, write failed), so that
  // leases granted in it are handed back at once.
  std::function<void()> on_undelivered;
};

class Connection {
 public:
  virtual ~Connection() = default;
  // Calls on_close (on this connection's thread) if the client closes the connection
  // while the handler is waiting. One watch at a time; the session ends it once the
  // handler has answered (bytes the client pipelined meanwhile are kept for the next
  // request, and the watch goes on past them).
  virtual void WatchForClose(std::function<void()> on_close) = 0;
  virtual bool closed() const = 0;
};

using HttpHandler = std::function<boost::asio::awaitable<HttpResponse>(HttpRequest&, Connection&)>;

}  // namespace conveyor
