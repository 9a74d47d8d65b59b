// HttpClient: a small blocking HTTP/1.1 keep-alive client for the CLI commands (enqueue,
// stats, work). One connection per client object, reconnected once if the server closed
// it; one object per thread. Beast stays inside http_client.cpp.
#pragma once

#include <memory>
#include <optional>
#include <string>

namespace conveyor {

struct ServerUrl {
  std::string host = "127.0.0.1";
  std::string port = "8700";
};

// Parses http://host[:port][/]; nullopt (with why) for anything else.
std::optional<ServerUrl> ParseServerUrl(const std::string& url, std::string& why);

struct HttpResult {
  int status = 0;  // 0: no answer (see error)
  std::string body;
  std::string error;       // transport failure, in words
  bool retryable = false;  // failed in a way that means the request was never read
};

class HttpClient {
 public:
  explicit HttpClient(ServerUrl url, int timeout_ms = 70000);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  HttpResult Request(const std::string& method, const std::string& target,
                     const std::string& body = {});
  // Thread-safe: aborts a request in flight (the server sees the connection close) and
  // fails every later one. Used to stop a worker's pending long-poll at once.
  void Interrupt();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The "message" of an error body, or the raw body when it is not one.
std::string ErrorMessageOf(const HttpResult& result);

}  // namespace conveyor
