#include "http/response_head.h"

#include <boost/beast/http/status.hpp>
#include <charconv>

namespace conveyor {
namespace {

void AppendNumber(std::string& out, long long value) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
  out.append(digits, end);
}

}  // namespace

std::string_view ReasonPhrase(int status) {
  auto reason =
      boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(status));
  std::string_view text(reason.data(), reason.size());
  return text.empty() || text.front() == '<' ? std::string_view("Unknown") : text;
}

void FormatResponseHead(const HttpResponse& answer, unsigned version, bool keep_alive,
                        std::string& head) {
  head.clear();
  head.append(version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  AppendNumber(head, answer.status);
  head.push_back(' ');
  head.append(ReasonPhrase(answer.status));
  head.append("\r\nServer: conveyor\r\nContent-Type: ");
  head.append(answer.content_type);
  if (!answer.allow.empty()) {
    head.append("\r\nAllow: ");
    head.append(answer.allow);
  }
  if (answer.retry_after_s > 0) {
    head.append("\r\nRetry-After: ");
    AppendNumber(head, answer.retry_after_s);
  }
  if (version == 10 && keep_alive) head.append("\r\nConnection: keep-alive");
  if (version != 10 && !keep_alive) head.append("\r\nConnection: close");
  head.append("\r\nContent-Length: ");
  AppendNumber(head, static_cast<long long>(answer.body.size()));
  head.append("\r\n\r\n");
}

}  // namespace conveyor
