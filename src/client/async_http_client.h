// AsyncHttpConnection: one keep-alive HTTP/1.1 client connection driven by C++20
// coroutines on the Asio executor it was made on (`conveyor bench`, and later push
// delivery). A request is written whole and its answer read whole; a connection the peer
// closed is reopened once before the next request. Beast stays inside the .cpp. One
// connection is used by one coroutine at a time, on its executor's thread.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <memory>
#include <string>
#include <string_view>

#include "client/http_client.h"

namespace conveyor {

struct AsyncHttpResult {
  int status = 0;  // 0: no answer (see error)
  std::string body;
  std::string error;
};

// Why a request did not succeed, in words: the transport error when there was no answer,
// else "<what> answered <status>: <body>".
std::string FailureOf(const AsyncHttpResult& result, std::string_view what);

class AsyncHttpConnection {
 public:
  AsyncHttpConnection(boost::asio::any_io_executor executor, ServerUrl url);
  ~AsyncHttpConnection();
  AsyncHttpConnection(const AsyncHttpConnection&) = delete;
  AsyncHttpConnection& operator=(const AsyncHttpConnection&) = delete;

  // method: "GET", "POST", "DELETE", ...; body sent as application/json when not empty.
  boost::asio::awaitable<AsyncHttpResult> Request(std::string_view method, std::string_view target,
                                                  std::string_view body = {});
  void Close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace conveyor
