#include "http/session.h"

#include <sys/socket.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <memory>
#include <span>
#include <tuple>

#include "common/error.h"
#include "common/json_writer.h"
#include "http/live_sessions.h"
#include "http/request_reader.h"
#include "http/response_head.h"

namespace conveyor {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
// A body buffer up to this size is kept for the connection's next request.
constexpr size_t kKeptBodyBytes = 64 * 1024;

std::string ErrorBody(ErrorCode code, std::string_view message) {
  std::string body;
  JsonWriter w(body);
  w.BeginObject().Key("error").BeginObject();
  w.Field("code", ErrorCodeName(code)).Field("message", message);
  w.EndObject().EndObject();
  return body;
}

// Watches the socket for the peer closing while a handler waits (long-poll). It reads
// into the session's buffer, so bytes the client pipelines meanwhile (even a lone CRLF)
// are kept for the next request and the watch goes on past them to see the close. The
// session ends the watch with Stop() before it touches the buffer again.
class SessionConnection final : public Connection {
 public:
  SessionConnection(tcp::socket& socket, beast::flat_buffer& buffer)
      : socket_(socket), buffer_(buffer) {}

  void WatchForClose(std::function<void()> on_close) override {
    on_close_ = std::move(on_close);
    watching_ = true;
    if (!reading_) Arm();
  }

  bool closed() const override { return closed_; }

  // Ends the watch and waits until its read has finished, so that no read is pending
  // on the socket or the buffer when the session goes on.
  asio::awaitable<void> Stop() {
    watching_ = false;
    on_close_ = nullptr;
    if (!reading_) co_return;
    boost::system::error_code ignored;
    socket_.cancel(ignored);
    asio::steady_timer done(socket_.get_executor(), asio::steady_timer::time_point::max());
    stopped_ = &done;
    co_await done.async_wait(kTuple);
    stopped_ = nullptr;
  }

  // Asks the kernel whether the peer has closed, for the moment between a long-poll's
  // answer and its write. Pipelined bytes the watch had no room for count as open.
  bool PeerHasClosed() {
    if (closed_) return true;
    char byte;
    ssize_t n = ::recv(socket_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    closed_ = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
    return closed_;
  }

 private:
  void Arm() {
    const size_t room = buffer_.max_size() - buffer_.size();
    if (room == 0) return;  // the buffer is full of pipelined bytes: backpressure
    reading_ = true;
    socket_.async_read_some(buffer_.prepare(std::min<size_t>(room, 4096)),
                            [this](boost::system::error_code ec, size_t n) { OnRead(ec, n); });
  }

  void OnRead(boost::system::error_code ec, size_t n) {
    reading_ = false;
    buffer_.commit(n);
    if (!ec && watching_) {
      Arm();
      return;
    }
    if (ec && ec != asio::error::operation_aborted) {
      closed_ = true;
      if (watching_ && on_close_) {
        auto on_close = std::move(on_close_);
        on_close();
      }
    }
    if (stopped_ != nullptr) stopped_->cancel();
  }

  tcp::socket& socket_;
  beast::flat_buffer& buffer_;
  std::function<void()> on_close_;
  bool watching_ = false;
  bool reading_ = false;
  bool closed_ = false;
  asio::steady_timer* stopped_ = nullptr;
};

// Writes a response from its preformatted head and its body in one gathered write; HEAD
// gets the same head without the body.
asio::awaitable<bool> Write(tcp::socket& socket, LiveSession& live, const std::string& head,
                            const std::string& body, bool head_only, int64_t timeout_ms) {
  std::array<asio::const_buffer, 2> buffers{asio::buffer(head), asio::buffer(body)};
  std::span<asio::const_buffer> rest = head_only ? std::span(buffers).first(1) : std::span(buffers);
  // Most answers fit in the socket's send buffer: written at once, without a trip through
  // the event loop (the socket is non-blocking, so a full buffer is would_block).
  boost::system::error_code ec;
  size_t n = socket.write_some(rest, ec);
  if (ec && ec != asio::error::would_block) co_return false;
  while (!rest.empty() && n >= rest.front().size()) {
    n -= rest.front().size();
    rest = rest.subspan(1);
  }
  if (rest.empty()) co_return true;
  rest.front() += n;
  live.ExpiresAfter(timeout_ms);
  std::tie(ec, n) = co_await asio::async_write(socket, rest, kTuple);
  live.ExpiresNever();
  co_return !ec;
}

asio::awaitable<void> WriteErrorAndClose(tcp::socket& socket, LiveSession& live, ErrorCode code,
                                         std::string_view message, int64_t timeout_ms) {
  HttpResponse answer;
  answer.status = HttpStatusFor(code);
  answer.body = ErrorBody(code, message);
  std::string head;
  FormatResponseHead(answer, 11, false, head);
  co_await Write(socket, live, head, answer.body, false, timeout_ms);
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_send, ignored);
  // Drain briefly what the client is still sending (an oversized body), so that closing
  // does not reset the connection before the client has read our answer.
  live.ExpiresAfter(1000);
  std::array<char, 16384> sink;
  for (size_t drained = 0; drained < (4u << 20);) {
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(sink), kTuple);
    if (ec) break;
    drained += n;
  }
}

}  // namespace

void CloseSessionsOnThisThread(bool idle_only) { LiveSession::CloseAllOnThisThread(idle_only); }

asio::awaitable<void> RunSession(tcp::socket socket, SessionContext context) {
  struct Release {
    std::atomic<size_t>& count;
    ~Release() { count.fetch_sub(1, std::memory_order_relaxed); }
  } release{context.open_connections};

  const Limits& limits = context.limits;
  LiveSession live(socket, limits);
  boost::system::error_code ignored_ec;
  socket.non_blocking(true, ignored_ec);  // for the first, synchronous try of each write
  beast::flat_buffer buffer(ReadBufferLimit(limits));
  SessionConnection connection(socket, buffer);
  std::string response_head;  // reused by every response of this connection
  RequestArena arena;         // each request's header fields
  std::string body_store;     // the last request's body buffer, for the next one

  for (;;) {
    if (context.draining.load(std::memory_order_relaxed)) co_return;
    if (buffer.size() == 0) {
      // Idle keep-alive wait: the request timeout starts with its first byte.
      live.ExpiresAfter(limits.idle_timeout_ms);
      live.set_idle(true);
      auto [ec, n] = co_await socket.async_read_some(buffer.prepare(4096), kTuple);
      live.set_idle(false);
      if (ec) co_return;
      buffer.commit(n);
    }
    live.ExpiresAfter(limits.header_timeout_ms);
    arena.Reset();  // the last request's parser, its only user, is gone
    RequestParser parser(std::piecewise_construct, std::make_tuple(),
                         std::make_tuple(ArenaAllocator<char>(arena)));
    body_store.clear();
    parser.get().body().swap(body_store);
    ReadOutcome read = co_await ReadRequest(socket, buffer, parser, limits);
    if (!read.ok) {
      if (read.refusal) {
        co_await WriteErrorAndClose(socket, live, read.refusal->code, read.refusal->message,
                                    limits.write_timeout_ms);
      }
      co_return;
    }
    live.ExpiresNever();

    auto& req = parser.get();
    const bool head = req.method() == http::verb::head;
    HttpRequest request;
    request.method = head ? std::string_view("GET") : std::string_view(req.method_string());
    request.target = OriginForm(req.target());
    request.content_type = req[http::field::content_type];
    request.body = req.body();
    bool keep_alive = req.keep_alive();
    const unsigned version = req.version();

    HttpResponse answer = co_await context.handler(request, connection);
    co_await connection.Stop();
    if (answer.on_undelivered && connection.PeerHasClosed()) {
      answer.on_undelivered();
      co_return;
    }
    keep_alive = keep_alive && !context.draining.load(std::memory_order_relaxed);
    FormatResponseHead(answer, version, keep_alive, response_head);
    bool written =
        co_await Write(socket, live, response_head, answer.body, head, limits.write_timeout_ms);
    if (!written) {
      if (answer.on_undelivered) answer.on_undelivered();
      co_return;
    }
    if (req.body().capacity() <= kKeptBodyBytes) body_store.swap(req.body());
    if (!keep_alive) {
      boost::system::error_code ignored;
      socket.shutdown(tcp::socket::shutdown_send, ignored);
      co_return;
    }
  }
}

}  // namespace conveyor
