// HttpClient: the one asynchronous HTTP/1.1 client (C++20 coroutines on an Asio executor)
// that push delivery, `conveyor bench`, the CLI (through BlockingHttpClient) and the SDK
// use. Many requests in flight at once; a keep-alive connection pool per origin;
// connect, answer and total timeouts; https with OpenSSL (the peer's certificate and host
// name verified unless told otherwise; a CA file option); redirects never followed (a 3xx
// is an answer like any other); the answer's header block and body bounded; a cap on
// requests in flight. Beast and OpenSSL stay inside the .cpp.
//
// Not thread-safe: one client per executor (thread); its requests run there. Destroying
// the client closes its idle connections; a request still in flight finishes on its own.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/url.h"

namespace conveyor {

struct HttpClientOptions {
  int64_t connect_timeout_ms = 5000;  // TCP connect and TLS handshake
  int64_t answer_timeout_ms = 30000;  // from the request's first byte to the answer's last
  int64_t total_timeout_ms = 60000;   // the whole request, connection included
  int64_t idle_timeout_ms = 30000;    // a pooled connection idle longer is closed, not used
  size_t max_answer_header_bytes = 16 * 1024;
  size_t max_answer_body_bytes = 1024 * 1024;
  size_t max_in_flight = 4096;       // more at once: failed at once (kOverloaded)
  size_t max_idle_per_origin = 256;  // pooled connections kept per origin
  bool verify_peer = true;           // https: check the certificate chain and host name
  std::string ca_file;               // https: trust these CAs (PEM) instead of the system's
  std::string user_agent = "conveyor";
};

struct HttpHeader {
  std::string name;
  std::string value;
};

// One request. `target` empty: the URL's own. The body is sent as is (not copied).
struct HttpCall {
  std::string_view method = "GET";
  std::string_view target;
  std::string_view body;
  std::string_view content_type = "application/json";  // sent when the body is not empty
  std::span<const HttpHeader> headers;
  int64_t timeout_ms = 0;  // the total timeout of this request; 0: the client's
  // False: a 2xx answer's headers are not copied out (HttpAnswer::headers stays empty);
  // other answers keep theirs. Saves a delivery's allocations when only the status counts.
  bool headers_of_success = true;
};

enum class HttpFailure : uint8_t {
  kNone,        // an answer came (any status, 3xx included)
  kConnect,     // resolve or connect failed, or refused
  kTls,         // handshake or certificate verification failed
  kTimeout,     // a timeout ran out (connect, answer or total)
  kConnection,  // the connection broke or closed before the whole answer
  kMalformed,   // the answer is not HTTP/1.x
  kTooLarge,    // the answer's header block or body is over the bounds
  kOverloaded,  // max_in_flight requests in flight already
  kClosed,      // the client was closed (Close())
};

struct HttpAnswer {
  int status = 0;  // 0: no answer; see failure and error
  HttpFailure failure = HttpFailure::kNone;
  std::string error;  // the failure, in words (names the origin)
  std::vector<HttpHeader> headers;
  std::string body;

  bool ok() const { return failure == HttpFailure::kNone; }
  // The first header of that name (case-insensitive), or empty.
  std::string_view header(std::string_view name) const;
};

class HttpClient {
 public:
  explicit HttpClient(boost::asio::any_io_executor executor, HttpClientOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  boost::asio::awaitable<HttpAnswer> Request(const Url& url, HttpCall call);
  // Closes every connection, idle or in use (requests in flight fail with kClosed), and
  // fails every later request.
  void Close();
  size_t in_flight() const;
  size_t idle_connections() const;
  const HttpClientOptions& options() const;

  struct Pool;  // the connections and counts (defined in the .cpp only)

 private:
  std::shared_ptr<Pool> pool_;
};

// Why a request did not succeed, in words: the transport error when there was no answer,
// else "<what> answered <status>: <body>".
std::string FailureOf(const HttpAnswer& answer, std::string_view what);

// The failure's name in metrics and docs: "connect", "tls", "timeout", ...
std::string_view HttpFailureName(HttpFailure failure);

}  // namespace conveyor
