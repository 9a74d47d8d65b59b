#include "client/http_client.h"

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>
#include <fcntl.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <optional>

namespace conveyor {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using asio::ip::tcp;
using SteadyTime = std::chrono::steady_clock::time_point;
using Ms = std::chrono::milliseconds;
using boost::system::error_code;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

SteadyTime Now() { return std::chrono::steady_clock::now(); }

SteadyTime Sooner(SteadyTime deadline, int64_t ms) { return std::min(deadline, Now() + Ms(ms)); }

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

struct Connection {
  explicit Connection(asio::any_io_executor ex) : plain(std::in_place, ex) {}

  beast::tcp_stream& lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }
  // shutdown first: a FIN goes out even while a child process (conveyor work's command,
  // forked before the descriptor was marked close-on-exec) still holds the descriptor.
  void Close() {
    error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    lowest().socket().close(ignored);
  }

  std::optional<beast::tcp_stream> plain;  // moved into `secure` for https
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;
  std::string head;  // the request head being written, kept for the next request
  SteadyTime idle_since;
};

}  // namespace

struct HttpClient::Pool {
  Pool(asio::any_io_executor ex, HttpClientOptions o)
      : executor(std::move(ex)), options(std::move(o)) {}

  asio::any_io_executor executor;
  HttpClientOptions options;
  std::optional<ssl::context> tls;  // made at the first https request
  std::string tls_error;            // why it could not be made
  absl::flat_hash_map<std::string, std::vector<std::unique_ptr<Connection>>> idle;
  absl::flat_hash_set<Connection*> busy;
  size_t in_flight = 0;
  size_t idle_count = 0;
  bool closed = false;

  ssl::context* Tls() {
    if (tls || !tls_error.empty()) return tls ? &*tls : nullptr;
    tls.emplace(ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(tls->native_handle(), TLS1_2_VERSION);
    error_code ec;
    if (options.ca_file.empty()) {
      tls->set_default_verify_paths(ec);
    } else {
      tls->load_verify_file(options.ca_file, ec);
    }
    if (ec) {
      tls_error = "cannot load the CA certificates" +
                  (options.ca_file.empty() ? std::string() : " of " + options.ca_file) + ": " +
                  ec.message();
      tls.reset();
      return nullptr;
    }
    tls->set_verify_mode(options.verify_peer ? ssl::verify_peer : ssl::verify_none);
    return &*tls;
  }

  std::unique_ptr<Connection> TakeIdle(const std::string& origin) {
    auto it = idle.find(origin);
    if (it == idle.end()) return nullptr;
    auto& list = it->second;
    while (!list.empty()) {
      std::unique_ptr<Connection> c = std::move(list.back());
      list.pop_back();
      --idle_count;
      const bool fresh = Now() - c->idle_since < Ms(options.idle_timeout_ms);
      if (fresh && c->lowest().socket().is_open()) return c;
      c->Close();
    }
    return nullptr;
  }

  void GiveBack(const std::string& origin, std::unique_ptr<Connection> c) {
    auto& list = idle[origin];
    if (closed || list.size() >= options.max_idle_per_origin) {
      c->Close();
      return;
    }
    c->idle_since = Now();
    list.push_back(std::move(c));
    ++idle_count;
    // The oldest idle connections are at the front: close those past the idle timeout, so
    // that connections the server closed do not linger (CLOSE_WAIT) until reused.
    size_t stale = 0;
    while (stale < list.size() && Now() - list[stale]->idle_since >= Ms(options.idle_timeout_ms)) {
      list[stale++]->Close();
    }
    if (stale > 0) {
      list.erase(list.begin(), list.begin() + static_cast<std::ptrdiff_t>(stale));
      idle_count -= stale;
    }
  }

  void CloseIdle() {
    for (auto& [origin, list] : idle) {
      for (auto& c : list) c->Close();
    }
    idle.clear();
    idle_count = 0;
  }
};

namespace {

HttpFailure FailureOfError(const error_code& ec) {
  if (ec == beast::error::timeout) return HttpFailure::kTimeout;
  if (ec == asio::error::operation_aborted) return HttpFailure::kClosed;
  if (ec == http::error::body_limit || ec == http::error::header_limit ||
      ec == http::error::buffer_overflow) {
    return HttpFailure::kTooLarge;
  }
  if (ec.category() == http::make_error_code(http::error::bad_version).category() &&
      ec != http::error::end_of_stream && ec != http::error::partial_message) {
    return HttpFailure::kMalformed;
  }
  return HttpFailure::kConnection;
}

std::string Describe(HttpFailure failure, const error_code& ec, const Url& url,
                     const HttpClientOptions& o) {
  const std::string at = url.origin();
  switch (failure) {
    case HttpFailure::kTimeout:
      return at + " did not answer in time";
    case HttpFailure::kTooLarge:
      return at + " answered more than the bounds allow (header block " +
             std::to_string(o.max_answer_header_bytes) + " bytes, body " +
             std::to_string(o.max_answer_body_bytes) + " bytes)";
    case HttpFailure::kMalformed:
      return at + " answered something that is not HTTP/1.1: " + ec.message();
    case HttpFailure::kClosed:
      return "the client was closed";
    default:
      return "the connection to " + at + " failed: " + ec.message();
  }
}

// Resolves, connects and (https) shakes hands; kNone when the connection is ready.
asio::awaitable<HttpFailure> Open(HttpClient::Pool* pool, Connection& c, const Url& url,
                                  SteadyTime deadline, std::string& error) {
  const HttpClientOptions& o = pool->options;
  error_code address_error;
  const asio::ip::address address = asio::ip::make_address(url.host, address_error);
  error_code cec;
  if (!address_error) {  // an address: no lookup (and no resolver thread)
    c.plain->expires_at(Sooner(deadline, o.connect_timeout_ms));
    const tcp::endpoint endpoint(address, static_cast<unsigned short>(std::stoi(url.port)));
    auto [ec] = co_await c.plain->async_connect(endpoint, kTuple);
    cec = ec;
  } else {
    // The lookup is bounded by the connect timeout too: a guard timer cancels it. (The
    // resolver is shared with the guard's handler, which may run after this returns.)
    auto resolver = std::make_shared<tcp::resolver>(pool->executor);
    asio::steady_timer guard(pool->executor);
    guard.expires_at(Sooner(deadline, o.connect_timeout_ms));
    guard.async_wait([resolver](error_code ec) {
      if (!ec) resolver->cancel();
    });
    auto [rec, endpoints] = co_await resolver->async_resolve(url.host, url.port, kTuple);
    guard.cancel();
    if (rec) {
      const bool timeout = rec == asio::error::operation_aborted && !pool->closed;
      error = "cannot resolve " + url.host + ": " +
              (timeout ? std::string("the lookup timed out") : rec.message());
      co_return timeout ? HttpFailure::kTimeout : HttpFailure::kConnect;
    }
    c.plain->expires_at(Sooner(deadline, o.connect_timeout_ms));
    auto [ec, ep] = co_await c.plain->async_connect(endpoints, kTuple);
    cec = ec;
  }
  if (cec) {
    const bool timeout = cec == beast::error::timeout;
    error = "cannot connect to " + url.origin() + ": " +
            (timeout ? std::string("timed out") : cec.message());
    co_return timeout ? HttpFailure::kTimeout : HttpFailure::kConnect;
  }
  error_code ignored;
  c.plain->socket().set_option(tcp::no_delay(true), ignored);
  ::fcntl(c.plain->socket().native_handle(), F_SETFD, FD_CLOEXEC);  // not for child processes
  if (!url.tls()) co_return HttpFailure::kNone;

  ssl::context* tls = pool->Tls();
  if (tls == nullptr) {
    error = pool->tls_error;
    co_return HttpFailure::kTls;
  }
  c.secure.emplace(std::move(*c.plain), *tls);
  c.plain.reset();
  if (!SSL_set_tlsext_host_name(c.secure->native_handle(), url.host.c_str())) {
    error = "cannot set the TLS server name " + url.host;
    co_return HttpFailure::kTls;
  }
  if (o.verify_peer) c.secure->set_verify_callback(ssl::host_name_verification(url.host));
  c.lowest().expires_at(Sooner(deadline, o.connect_timeout_ms));
  auto [hec] = co_await c.secure->async_handshake(ssl::stream_base::client, kTuple);
  if (hec) {
    const bool timeout = hec == beast::error::timeout;
    error = "the TLS handshake with " + url.origin() +
            " failed: " + (timeout ? std::string("timed out") : hec.message());
    co_return timeout ? HttpFailure::kTimeout : HttpFailure::kTls;
  }
  co_return HttpFailure::kNone;
}

struct Exchanged {
  bool keep_alive = false;
  bool stale = false;  // failed before any byte of an answer, as a closed keep-alive does
};

bool HasLineBreak(std::string_view text) {
  return text.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

// The request's head, written by hand into the connection's buffer (Beast's fields and
// serializer cost an allocation a field); false when a name or value could split a line.
bool BuildHead(std::string& head, const HttpClientOptions& o, const Url& url,
               const HttpCall& call) {
  const std::string_view target = call.target.empty() ? std::string_view(url.target) : call.target;
  if (HasLineBreak(call.method) || HasLineBreak(target) ||
      call.method.find(' ') != std::string_view::npos ||
      target.find(' ') != std::string_view::npos) {
    return false;
  }
  head.clear();
  head.append(call.method).append(" ").append(target).append(" HTTP/1.1\r\nHost: ");
  head.append(url.host_header()).append("\r\nUser-Agent: ").append(o.user_agent);
  for (const HttpHeader& h : call.headers) {
    if (h.name.empty() || HasLineBreak(h.name) || HasLineBreak(h.value) ||
        h.name.find(':') != std::string::npos) {
      return false;
    }
    head.append("\r\n").append(h.name).append(": ").append(h.value);
  }
  if (!call.body.empty()) head.append("\r\nContent-Type: ").append(call.content_type);
  const bool has_body = !call.body.empty() || (call.method != "GET" && call.method != "HEAD");
  if (has_body) head.append("\r\nContent-Length: ").append(std::to_string(call.body.size()));
  head.append("\r\n\r\n");
  return true;
}

template <typename Stream>
asio::awaitable<Exchanged> Exchange(Stream& stream, Connection& c, const HttpClientOptions& o,
                                    const Url& url, const HttpCall& call, SteadyTime deadline,
                                    HttpAnswer& out) {
  Exchanged result;
  if (!BuildHead(c.head, o, url, call)) {
    out.failure = HttpFailure::kMalformed;
    out.error = "the request to " + url.origin() +
                " has a method, target or header that "
                "would split a line (CR, LF, NUL)";
    result.keep_alive = true;  // nothing was sent
    co_return result;
  }
  c.lowest().expires_at(Sooner(deadline, o.answer_timeout_ms));
  const std::array<asio::const_buffer, 2> request = {asio::buffer(c.head), asio::buffer(call.body)};
  auto [wec, wn] = co_await asio::async_write(stream, request, kTuple);
  // Interim answers (1xx: 100 Continue, 103 Early Hints) come before the final one; at
  // most a few are skipped, each within the same bounds.
  std::optional<http::response_parser<http::string_body>> parser;
  error_code ec = wec;
  bool got_some = false;
  for (int interim = 0; !ec && interim < 8; ++interim) {
    parser.emplace();
    parser->header_limit(static_cast<uint32_t>(o.max_answer_header_bytes));
    parser->body_limit(o.max_answer_body_bytes);
    if (call.method == "HEAD") parser->skip(true);
    auto [rec, rn] = co_await http::async_read(stream, c.buffer, *parser, kTuple);
    ec = rec;
    got_some = got_some || parser->got_some();
    if (ec) break;
    const unsigned status = parser->get().result_int();
    if (status < 100 || status >= 200 || status == 101) break;
    if (interim == 7) ec = http::error::bad_status;
  }
  if (ec) {
    out.failure = FailureOfError(ec);
    out.error = Describe(out.failure, ec, url, o);
    result.stale = out.failure == HttpFailure::kConnection && !got_some;
    co_return result;
  }
  auto& res = parser->get();
  out.status = static_cast<int>(res.result_int());
  if (call.headers_of_success || out.status < 200 || out.status >= 300) {
    for (const auto& field : res) {
      out.headers.push_back({std::string(field.name_string()), std::string(field.value())});
    }
  }
  out.body = std::move(res.body());
  // Bytes after the answer (a server that answered more than asked, a 101): the
  // connection is not reused, so no later request reads them as its answer.
  result.keep_alive = res.keep_alive() && c.buffer.size() == 0 && out.status != 101;
  co_return result;
}

}  // namespace

std::string_view HttpAnswer::header(std::string_view name) const {
  for (const HttpHeader& h : headers) {
    if (IEquals(h.name, name)) return h.value;
  }
  return {};
}

std::string FailureOf(const HttpAnswer& answer, std::string_view what) {
  if (answer.status == 0) return answer.error;
  std::string s(what);
  s.append(" answered ").append(std::to_string(answer.status)).append(": ").append(answer.body);
  return s;
}

std::string_view HttpFailureName(HttpFailure failure) {
  switch (failure) {
    case HttpFailure::kNone:
      return "none";
    case HttpFailure::kConnect:
      return "connect";
    case HttpFailure::kTls:
      return "tls";
    case HttpFailure::kTimeout:
      return "timeout";
    case HttpFailure::kConnection:
      return "connection";
    case HttpFailure::kMalformed:
      return "malformed";
    case HttpFailure::kTooLarge:
      return "too_large";
    case HttpFailure::kOverloaded:
      return "overloaded";
    case HttpFailure::kClosed:
      return "closed";
  }
  return "unknown";
}

HttpClient::HttpClient(asio::any_io_executor executor, HttpClientOptions options)
    : pool_(std::make_shared<Pool>(std::move(executor), std::move(options))) {}

HttpClient::~HttpClient() {
  // Idle connections go now; a request in flight keeps the pool alive until it ends.
  pool_->closed = true;
  pool_->CloseIdle();
}

void HttpClient::Close() {
  pool_->closed = true;
  pool_->CloseIdle();
  for (Connection* c : pool_->busy) c->Close();  // their operations end operation_aborted
}

size_t HttpClient::in_flight() const { return pool_->in_flight; }
size_t HttpClient::idle_connections() const { return pool_->idle_count; }
const HttpClientOptions& HttpClient::options() const { return pool_->options; }

asio::awaitable<HttpAnswer> HttpClient::Request(const Url& url, HttpCall call) {
  std::shared_ptr<Pool> pool = pool_;  // outlives the client while this request runs
  const HttpClientOptions& o = pool->options;
  HttpAnswer out;
  if (pool->closed) {
    out.failure = HttpFailure::kClosed;
    out.error = "the client was closed";
    co_return out;
  }
  if (pool->in_flight >= o.max_in_flight) {
    out.failure = HttpFailure::kOverloaded;
    out.error = std::to_string(o.max_in_flight) + " requests are in flight already";
    co_return out;
  }
  struct InFlight {
    Pool& pool;
    ~InFlight() { --pool.in_flight; }
  } counted{*pool};
  ++pool->in_flight;
  const SteadyTime deadline =
      Now() + Ms(call.timeout_ms > 0 ? call.timeout_ms : o.total_timeout_ms);
  const std::string origin = url.origin();

  for (int attempt = 0; attempt < 2; ++attempt) {
    std::unique_ptr<Connection> c = pool->TakeIdle(origin);
    const bool reused = c != nullptr;
    if (!reused) {
      c = std::make_unique<Connection>(pool->executor);
      pool->busy.insert(c.get());
      out.failure = co_await Open(pool.get(), *c, url, deadline, out.error);
      pool->busy.erase(c.get());
      if (pool->closed) {
        out.failure = HttpFailure::kClosed;
        out.error = "the client was closed";
      }
      if (out.failure != HttpFailure::kNone) {
        c->Close();
        co_return out;
      }
    }
    pool->busy.insert(c.get());
    Exchanged done = c->secure ? co_await Exchange(*c->secure, *c, o, url, call, deadline, out)
                               : co_await Exchange(*c->plain, *c, o, url, call, deadline, out);
    pool->busy.erase(c.get());
    if (out.ok()) {
      if (done.keep_alive && !pool->closed) {
        pool->GiveBack(origin, std::move(c));
      } else {
        c->Close();
      }
      co_return out;
    }
    c->Close();
    // A kept-alive connection the server had closed while it was idle: once more, fresh.
    if (!(reused && done.stale && attempt == 0 && !pool->closed)) break;
    out = HttpAnswer{};
  }
  co_return out;
}

}  // namespace conveyor
