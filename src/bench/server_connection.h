// ServerConnection: one bench coroutine's keep-alive connection to the server under test,
// over HttpClient (one request at a time, so its pool holds one connection). On the
// coroutine's executor.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <string>

#include "client/http_client.h"

namespace conveyor {

class ServerConnection {
 public:
  ServerConnection(boost::asio::any_io_executor executor, Url url)
      : client_(std::move(executor), Options()), url_(std::move(url)) {}

  // No default argument on a coroutine (GCC 12 mishandles their temporaries in co_await).
  boost::asio::awaitable<HttpAnswer> Request(std::string_view method, std::string target) {
    return Request(method, std::move(target), std::string());
  }
  boost::asio::awaitable<HttpAnswer> Request(std::string_view method, std::string target,
                                             std::string body) {
    HttpCall call;
    call.method = method;
    call.target = target;
    call.body = body;
    co_return co_await client_.Request(url_, call);
  }

 private:
  static HttpClientOptions Options() {
    HttpClientOptions o;
    o.answer_timeout_ms = 120000;
    o.total_timeout_ms = 120000;
    o.max_answer_body_bytes = 256u << 20;
    o.user_agent = "conveyor-bench";
    return o;
  }

  HttpClient client_;
  Url url_;
};

}  // namespace conveyor
