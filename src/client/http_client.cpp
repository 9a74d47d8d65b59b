#include "client/http_client.h"

#include <sys/socket.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <chrono>
#include <mutex>

namespace conveyor {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;

std::optional<ServerUrl> ParseServerUrl(const std::string& url, std::string& why) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) {
    why = "the server URL must start with http://";
    return std::nullopt;
  }
  std::string rest = url.substr(scheme.size());
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.empty() || rest.find('/') != std::string::npos) {
    why = "the server URL must be http://HOST[:PORT]";
    return std::nullopt;
  }
  ServerUrl out;
  size_t colon = rest.rfind(':');
  if (colon == std::string::npos) {
    out.host = rest;
    out.port = "80";
  } else {
    out.host = rest.substr(0, colon);
    out.port = rest.substr(colon + 1);
  }
  return out;
}

struct HttpClient::Impl {
  Impl(ServerUrl u, int timeout) : url(std::move(u)), timeout_ms(timeout), stream(io) {}

  bool Connect(std::string& error) {
    boost::system::error_code ec;
    tcp::resolver resolver(io);
    auto endpoints = resolver.resolve(url.host, url.port, ec);
    if (ec) {
      error = "cannot resolve " + url.host + ": " + ec.message();
      return false;
    }
    stream.expires_after(std::chrono::milliseconds(5000));
    stream.connect(endpoints, ec);
    if (ec) {
      error = "cannot connect to " + url.host + ":" + url.port + ": " + ec.message();
      return false;
    }
    connected = true;
    return true;
  }

  HttpResult Once(const std::string& method, const std::string& target, const std::string& body) {
    HttpResult result;
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (interrupted) {
        result.error = "interrupted";
        return result;
      }
      if (!connected && !Connect(result.error)) return result;
    }
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, url.host);
    req.set(http::field::user_agent, "conveyor-cli");
    if (!body.empty()) req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
    req.keep_alive(true);
    boost::system::error_code ec;
    stream.expires_after(std::chrono::milliseconds(timeout_ms));
    http::write(stream, req, ec);
    http::response_parser<http::string_body> parser;
    parser.body_limit(64u << 20);
    if (!ec) http::read(stream, buffer, parser, ec);
    if (ec) {
      connected = false;
      // The classic stale keep-alive: the server had closed before our request arrived.
      result.retryable = ec == http::error::end_of_stream || ec == asio::error::eof ||
                         ec == asio::error::connection_reset || ec == asio::error::broken_pipe;
      std::lock_guard<std::mutex> lock(mutex);
      beast::error_code ignored;
      stream.socket().close(ignored);
      buffer.clear();
      result.error = "request to " + url.host + ":" + url.port + " failed: " + ec.message();
      return result;
    }
    auto res = parser.release();
    result.status = static_cast<int>(res.result_int());
    result.body = std::move(res.body());
    if (!res.keep_alive()) {
      std::lock_guard<std::mutex> lock(mutex);
      connected = false;
      beast::error_code ignored;
      stream.socket().close(ignored);
    }
    return result;
  }

  ServerUrl url;
  int timeout_ms;
  asio::io_context io;
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  bool connected = false;
  // Guards the socket's open/close against Interrupt() from another thread (CLI only).
  std::mutex mutex;
  bool interrupted = false;
};

void HttpClient::Interrupt() {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->interrupted = true;
  if (impl_->stream.socket().is_open()) {
    ::shutdown(impl_->stream.socket().native_handle(), SHUT_RDWR);
  }
}

HttpClient::HttpClient(ServerUrl url, int timeout_ms)
    : impl_(std::make_unique<Impl>(std::move(url), timeout_ms)) {}

HttpClient::~HttpClient() = default;

HttpResult HttpClient::Request(const std::string& method, const std::string& target,
                               const std::string& body) {
  const bool reused = impl_->connected;
  HttpResult result = impl_->Once(method, target, body);
  // A kept-alive connection the server closed while idle: try once on a fresh one.
  if (result.status == 0 && reused && result.retryable && result.error != "interrupted")
    result = impl_->Once(method, target, body);
  return result;
}

std::string ErrorMessageOf(const HttpResult& result) {
  if (result.status == 0) return result.error;
  boost::system::error_code ec;
  auto value = boost::json::parse(result.body, ec);
  if (!ec && value.is_object()) {
    if (auto* error = value.as_object().if_contains("error"); error && error->is_object()) {
      if (auto* message = error->as_object().if_contains("message");
          message && message->is_string()) {
        return "HTTP " + std::to_string(result.status) + ": " +
               std::string(message->as_string().c_str());
      }
    }
  }
  return "HTTP " + std::to_string(result.status) + ": " + result.body.substr(0, 500);
}

}  // namespace conveyor
