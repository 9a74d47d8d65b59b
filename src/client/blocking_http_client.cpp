#include "client/blocking_http_client.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/json/parse.hpp>
#include <chrono>
#include <future>
#include <mutex>

namespace conveyor {

namespace asio = boost::asio;

std::optional<ServerUrl> ParseServerUrl(const std::string& url, std::string& why) {
  std::optional<Url> parsed = ParseUrl(url, why);
  if (!parsed) {
    why = "the server URL must be http://HOST[:PORT]: " + why;
    return std::nullopt;
  }
  if (parsed->target != "/") {
    why = "the server URL must be http://HOST[:PORT], without a path";
    return std::nullopt;
  }
  return parsed;
}

struct BlockingHttpClient::Impl {
  Impl(ServerUrl u, int timeout_ms)
      : url(std::move(u)), client(io.get_executor(), Options(timeout_ms)) {}

  static HttpClientOptions Options(int timeout_ms) {
    HttpClientOptions o;
    o.total_timeout_ms = timeout_ms;
    o.answer_timeout_ms = timeout_ms;
    o.max_answer_body_bytes = 64u << 20;  // pages and batches of a CLI command
    o.user_agent = "conveyor-cli";
    return o;
  }

  ServerUrl url;
  asio::io_context io;
  HttpClient client;
  // Interrupt() against Request(): whether a request is running on `io` now, and whether
  // the client was interrupted (every later request fails at once).
  std::mutex mutex;
  bool running = false;
  bool interrupted = false;
};

namespace {

asio::awaitable<void> RunOne(HttpClient* client, const Url* url, const std::string* method,
                             const std::string* target, const std::string* body, HttpResult* out) {
  HttpCall call;
  call.method = *method;
  call.target = *target;
  call.body = *body;
  HttpAnswer answer = co_await client->Request(*url, call);
  out->status = answer.status;
  out->body = std::move(answer.body);
  out->error = std::move(answer.error);
}

}  // namespace

BlockingHttpClient::BlockingHttpClient(ServerUrl url, int timeout_ms)
    : impl_(std::make_unique<Impl>(std::move(url), timeout_ms)) {}

BlockingHttpClient::~BlockingHttpClient() = default;

HttpResult BlockingHttpClient::Request(const std::string& method, const std::string& target,
                                       const std::string& body) {
  HttpResult result;
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    if (impl_->interrupted) {
      result.error = "interrupted";
      return result;
    }
    impl_->running = true;
    impl_->io.restart();
  }
  asio::co_spawn(impl_->io, RunOne(&impl_->client, &impl_->url, &method, &target, &body, &result),
                 asio::detached);
  impl_->io.run();
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->running = false;
    // An Interrupt() that came as the request ended: run its Close now, so it is not
    // left waiting.
    if (impl_->interrupted) {
      impl_->io.restart();
      impl_->io.poll();
    }
  }
  if (result.status == 0 && result.error.empty()) result.error = "interrupted";
  return result;
}

// The Close runs on the request's thread (HttpClient is single-threaded); when a request
// is running, this waits for it, so that the connection is closed when Interrupt returns.
void BlockingHttpClient::Interrupt() {
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> closed = done->get_future();
  bool wait = false;
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    if (impl_->interrupted) return;
    impl_->interrupted = true;
    wait = impl_->running;
    asio::post(impl_->io, [impl = impl_.get(), done] {
      impl->client.Close();
      done->set_value();
    });
  }
  if (wait) closed.wait_for(std::chrono::seconds(2));
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
