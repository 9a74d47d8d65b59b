#include "client/async_http_client.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>

namespace conveyor {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

struct AsyncHttpConnection::Impl {
  Impl(asio::any_io_executor ex, ServerUrl u) : url(std::move(u)), resolver(ex), stream(ex) {}

  asio::awaitable<bool> Connect(std::string& error) {
    auto [rec, endpoints] =
        co_await resolver.async_resolve(url.host, url.port, asio::as_tuple(asio::use_awaitable));
    if (rec) {
      error = "cannot resolve " + url.host + ": " + rec.message();
      co_return false;
    }
    stream.expires_after(std::chrono::seconds(5));
    auto [cec, ep] = co_await stream.async_connect(endpoints, asio::as_tuple(asio::use_awaitable));
    if (cec) {
      error = "cannot connect to " + url.host + ":" + url.port + ": " + cec.message();
      co_return false;
    }
    stream.socket().set_option(tcp::no_delay(true));
    connected = true;
    co_return true;
  }

  void Drop() {
    connected = false;
    beast::error_code ignored;
    stream.socket().close(ignored);
    buffer.clear();
  }

  ServerUrl url;
  tcp::resolver resolver;
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  http::request<http::string_body> request;
  bool connected = false;
};

std::string FailureOf(const AsyncHttpResult& result, std::string_view what) {
  if (result.status == 0) return result.error;
  std::string s(what);
  s.append(" answered ").append(std::to_string(result.status)).append(": ").append(result.body);
  return s;
}

AsyncHttpConnection::AsyncHttpConnection(asio::any_io_executor executor, ServerUrl url)
    : impl_(std::make_unique<Impl>(std::move(executor), std::move(url))) {}

AsyncHttpConnection::~AsyncHttpConnection() = default;

void AsyncHttpConnection::Close() { impl_->Drop(); }

asio::awaitable<AsyncHttpResult> AsyncHttpConnection::Request(std::string_view method,
                                                              std::string_view target,
                                                              std::string_view body) {
  Impl& c = *impl_;
  AsyncHttpResult result;
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool fresh = !c.connected;
    if (fresh && !co_await c.Connect(result.error)) co_return result;
    // One request object per connection: its fields and body buffer are reused.
    http::request<http::string_body>& req = c.request;
    req.clear();
    req.method(http::string_to_verb(method));
    req.target(target);
    req.version(11);
    req.set(http::field::host, c.url.host);
    if (!body.empty()) req.set(http::field::content_type, "application/json");
    req.body().assign(body.data(), body.size());
    req.prepare_payload();
    c.stream.expires_after(std::chrono::seconds(120));
    auto [wec, wn] = co_await http::async_write(c.stream, req, asio::as_tuple(asio::use_awaitable));
    http::response_parser<http::string_body> parser;
    parser.body_limit(256u << 20);
    beast::error_code rec = wec;
    if (!wec) {
      auto [ec, rn] = co_await http::async_read(c.stream, c.buffer, parser,
                                                asio::as_tuple(asio::use_awaitable));
      rec = ec;
    }
    if (rec) {
      c.Drop();
      result.error = "request to " + c.url.host + ":" + c.url.port + " failed: " + rec.message();
      // A kept-alive connection the server had closed: reopen it once.
      const bool stale = rec == http::error::end_of_stream || rec == asio::error::eof ||
                         rec == asio::error::connection_reset || rec == asio::error::broken_pipe;
      if (!fresh && stale) continue;
      co_return result;
    }
    auto res = parser.release();
    result.status = static_cast<int>(res.result_int());
    result.body = std::move(res.body());
    result.error.clear();
    if (!res.keep_alive()) c.Drop();
    co_return result;
  }
  co_return result;
}

}  // namespace conveyor
