// BlockingHttpClient: HttpClient driven to completion for code that is not a coroutine
// (the CLI's enqueue, stats and work). Each object runs its own io_context on the calling
// thread, one request at a time; one object per thread. Interrupt() is the one call
// that is safe from another thread (a signal handler's thread).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "client/http_client.h"
#include "common/url.h"

namespace conveyor {

using ServerUrl = Url;

// Parses http[s]://HOST[:PORT][/] (no path); nullopt, with why, for anything else.
std::optional<ServerUrl> ParseServerUrl(const std::string& url, std::string& why);

struct HttpResult {
  int status = 0;  // 0: no answer (see error)
  std::string body;
  std::string error;  // transport failure, in words
};

class BlockingHttpClient {
 public:
  explicit BlockingHttpClient(ServerUrl url, int timeout_ms = 70000);
  ~BlockingHttpClient();
  BlockingHttpClient(const BlockingHttpClient&) = delete;
  BlockingHttpClient& operator=(const BlockingHttpClient&) = delete;

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
