// Unit tests for FormatResponseHead: the status line and fields the session writes before
// a body, for HTTP/1.1 and 1.0, keep-alive or not, with the optional fields.
#include "http/response_head.h"

#include <gtest/gtest.h>

namespace conveyor {
namespace {

HttpResponse Answer(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

TEST(ResponseHead, KeepAliveOnHttp11HasNoConnectionField) {
  std::string head;
  FormatResponseHead(Answer(201, "{\"id\":1}"), 11, true, head);
  EXPECT_EQ(head,
            "HTTP/1.1 201 Created\r\nServer: conveyor\r\nContent-Type: application/json\r\n"
            "Content-Length: 8\r\n\r\n");
}

TEST(ResponseHead, CloseOnHttp11AndKeepAliveOnHttp10AreSaid) {
  std::string head;
  FormatResponseHead(Answer(200, ""), 11, false, head);
  EXPECT_NE(head.find("\r\nConnection: close\r\n"), std::string::npos);
  FormatResponseHead(Answer(200, ""), 10, true, head);
  EXPECT_EQ(head.rfind("HTTP/1.0 200 OK\r\n", 0), 0u);
  EXPECT_NE(head.find("\r\nConnection: keep-alive\r\n"), std::string::npos);
  FormatResponseHead(Answer(200, ""), 10, false, head);
  EXPECT_EQ(head.find("Connection"), std::string::npos);
}

TEST(ResponseHead, AllowRetryAfterAndContentTypeAreWritten) {
  HttpResponse r = Answer(503, "{}");
  r.retry_after_s = 1;
  r.content_type = "text/plain; version=0.0.4";
  std::string head;
  FormatResponseHead(r, 11, true, head);
  EXPECT_EQ(head.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0), 0u);
  EXPECT_NE(head.find("\r\nRetry-After: 1\r\n"), std::string::npos);
  EXPECT_NE(head.find("\r\nContent-Type: text/plain; version=0.0.4\r\n"), std::string::npos);
  r = Answer(405, "");
  r.allow = "GET, HEAD";
  FormatResponseHead(r, 11, true, head);
  EXPECT_NE(head.find("\r\nAllow: GET, HEAD\r\n"), std::string::npos);
  EXPECT_EQ(head.substr(head.size() - 4), "\r\n\r\n");
}

TEST(ResponseHead, UnnamedStatusGetsAGenericReason) {
  EXPECT_EQ(ReasonPhrase(429), "Too Many Requests");
  EXPECT_EQ(ReasonPhrase(299), "Unknown");
}

}  // namespace
}  // namespace conveyor
