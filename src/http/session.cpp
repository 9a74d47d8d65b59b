#include "http/session.h"

#include <sys/socket.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <memory>

#include "common/error.h"
#include "common/json_writer.h"

namespace conveyor {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

std::chrono::milliseconds Ms(int64_t ms) { return std::chrono::milliseconds(ms); }

std::string ErrorBody(ErrorCode code, std::string_view message) {
  std::string body;
  JsonWriter w(body);
  w.BeginObject().Key("error").BeginObject();
  w.Field("code", ErrorCodeName(code)).Field("message", message);
  w.EndObject().EndObject();
  return body;
}

// Watches the socket for the peer closing while a handler waits (long-poll). The state is
// shared with the pending wait's handler, which may run after the session has moved on.
class SessionConnection final : public Connection {
 public:
  explicit SessionConnection(tcp::socket& socket) : socket_(socket) {}

  void WatchForClose(std::function<void()> on_close) override {
    auto state = state_;
    state->watching = true;
    int fd = socket_.native_handle();
    socket_.async_wait(tcp::socket::wait_read,
                       [state, fd, on_close = std::move(on_close)](boost::system::error_code ec) {
                         if (ec || !state->watching) return;
                         char byte;
                         ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
                         if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
                           state->closed = true;
                           on_close();
                         }
                         // n > 0: the client pipelined its next request; not a close.
                       });
  }

  void StopWatching() override {
    if (!state_->watching) return;
    state_->watching = false;
    boost::system::error_code ignored;
    socket_.cancel(ignored);
  }

  bool closed() const override { return state_->closed; }

  // Asks the kernel directly whether the peer has closed, for the moment between a
  // long-poll's answer and its write, when the watch may not have run yet.
  bool PeerHasClosed() {
    if (state_->closed) return true;
    char byte;
    ssize_t n = ::recv(socket_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    state_->closed = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
    return state_->closed;
  }

 private:
  struct State {
    bool watching = false;
    bool closed = false;
  };
  tcp::socket& socket_;
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

struct ReadFailure {
  ErrorCode code;
  const char* message;
};

// Maps a Beast read error to the answer we give before closing, or nothing (just close).
std::optional<ReadFailure> AnswerForReadError(const boost::system::error_code& ec) {
  if (ec == http::error::body_limit) {
    return ReadFailure{ErrorCode::kBodyTooLarge, "the request body is larger than the limit"};
  }
  if (ec == http::error::header_limit) {
    return ReadFailure{ErrorCode::kHeadersTooLarge, "the request header block is too large"};
  }
  // A request cut short (peer gone, timeout) gets no answer: there is no one to read it.
  if (ec == http::error::partial_message || ec == http::error::end_of_stream) return std::nullopt;
  if (ec.category() == make_error_code(http::error::bad_method).category()) {
    return ReadFailure{ErrorCode::kBadRequest, "the HTTP request is malformed"};
  }
  return std::nullopt;
}

http::response<http::string_body> MakeResponse(HttpResponse& answer, unsigned version,
                                               bool keep_alive) {
  http::response<http::string_body> res{static_cast<http::status>(answer.status), version};
  res.set(http::field::server, "conveyor");
  res.set(http::field::content_type, answer.content_type);
  if (!answer.allow.empty()) res.set(http::field::allow, answer.allow);
  if (answer.retry_after_s > 0)
    res.set(http::field::retry_after, std::to_string(answer.retry_after_s));
  res.keep_alive(keep_alive);
  res.body() = std::move(answer.body);
  res.prepare_payload();
  return res;
}

// Writes a response; HEAD gets the same header without the body.
asio::awaitable<bool> Write(beast::tcp_stream& stream, http::response<http::string_body>& res,
                            bool head, int64_t timeout_ms) {
  stream.expires_after(Ms(timeout_ms));
  if (head) {
    http::response<http::empty_body> header_only{res.base()};
    header_only.content_length(res.body().size());
    auto [ec, n] = co_await http::async_write(stream, header_only, kTuple);
    co_return !ec;
  }
  auto [ec, n] = co_await http::async_write(stream, res, kTuple);
  co_return !ec;
}

asio::awaitable<void> WriteErrorAndClose(beast::tcp_stream& stream, ErrorCode code,
                                         std::string_view message, int64_t timeout_ms) {
  HttpResponse answer;
  answer.status = HttpStatusFor(code);
  answer.body = ErrorBody(code, message);
  auto res = MakeResponse(answer, 11, false);
  co_await Write(stream, res, false, timeout_ms);
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  // Drain briefly what the client is still sending (an oversized body), so that closing
  // does not reset the connection before the client has read our answer.
  stream.expires_after(Ms(1000));
  std::array<char, 16384> sink;
  for (size_t drained = 0; drained < (4u << 20);) {
    auto [ec, n] = co_await stream.async_read_some(asio::buffer(sink), kTuple);
    if (ec) break;
    drained += n;
  }
}

}  // namespace

asio::awaitable<void> RunSession(tcp::socket socket, SessionContext context) {
  struct Release {
    std::atomic<size_t>& count;
    ~Release() { count.fetch_sub(1, std::memory_order_relaxed); }
  } release{context.open_connections};

  const Limits& limits = context.limits;
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  SessionConnection connection(stream.socket());

  for (;;) {
    if (buffer.size() == 0) {
      // Idle keep-alive wait: the request timeout starts with its first byte.
      stream.expires_after(Ms(limits.idle_timeout_ms));
      auto [ec, n] = co_await stream.async_read_some(buffer.prepare(4096), kTuple);
      if (ec) co_return;
      buffer.commit(n);
    }
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
    parser.body_limit(limits.max_body_bytes);
    stream.expires_after(Ms(limits.header_timeout_ms));
    // Beast's header_limit bounds each parse step, not the whole block, so the block is
    // first gathered here: its end must show up within max_header_bytes.
    boost::system::error_code hec;
    for (;;) {
      std::string_view head(static_cast<const char*>(buffer.data().data()),
                            std::min(buffer.size(), limits.max_header_bytes + 4));
      // A bare-LF end is handed to Beast too, which refuses it with a 400 at once.
      if (head.find("\r\n\r\n") != std::string_view::npos ||
          head.find("\n\n") != std::string_view::npos)
        break;
      if (buffer.size() > limits.max_header_bytes) {
        hec = http::error::header_limit;
        break;
      }
      auto [ec, n] = co_await stream.async_read_some(buffer.prepare(16384), kTuple);
      if (ec) {
        hec = http::error::partial_message;
        break;
      }
      buffer.commit(n);
    }
    if (!hec) {
      auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, kTuple);
      hec = ec;
    }
    if (hec) {
      if (auto failure = AnswerForReadError(hec)) {
        co_await WriteErrorAndClose(stream, failure->code, failure->message,
                                    limits.write_timeout_ms);
      }
      co_return;
    }
    // RFC 9112 6.3: a Transfer-Encoding whose last coding is not chunked leaves the body
    // length unknowable; answering it could desynchronise us from a proxy (smuggling).
    if (parser.get().count(http::field::transfer_encoding) > 0 && !parser.chunked()) {
      co_await WriteErrorAndClose(stream, ErrorCode::kBadRequest,
                                  "Transfer-Encoding must end with chunked",
                                  limits.write_timeout_ms);
      co_return;
    }
    if (!parser.is_done()) {
      if (beast::iequals(parser.get()[http::field::expect], "100-continue")) {
        http::response<http::empty_body> cont{http::status::continue_, 11};
        auto [cec, cn] = co_await http::async_write(stream, cont, kTuple);
        if (cec) co_return;
      }
      auto [bec, bn] = co_await http::async_read(stream, buffer, parser, kTuple);
      if (bec) {
        if (auto failure = AnswerForReadError(bec)) {
          co_await WriteErrorAndClose(stream, failure->code, failure->message,
                                      limits.write_timeout_ms);
        }
        co_return;
      }
    }
    stream.expires_never();

    auto& req = parser.get();
    const bool head = req.method() == http::verb::head;
    HttpRequest request;
    request.method = head ? "GET" : std::string(req.method_string());
    request.target = std::string(req.target());
    request.content_type = std::string(req[http::field::content_type]);
    request.body = std::move(req.body());
    const bool keep_alive = req.keep_alive();
    const unsigned version = req.version();

    HttpResponse answer = co_await context.handler(request, connection);
    connection.StopWatching();
    if (answer.on_undelivered && connection.PeerHasClosed()) {
      if (answer.on_undelivered) answer.on_undelivered();
      co_return;
    }
    auto res = MakeResponse(answer, version, keep_alive);
    bool written = co_await Write(stream, res, head, limits.write_timeout_ms);
    if (!written) {
      if (answer.on_undelivered) answer.on_undelivered();
      co_return;
    }
    if (!keep_alive) {
      boost::system::error_code ignored;
      stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
      co_return;
    }
  }
}

}  // namespace conveyor
