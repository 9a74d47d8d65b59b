#include "push/verdict.h"

#include <charconv>
#include <ctime>

#include "common/json_doc.h"

namespace conveyor {
namespace {

constexpr size_t kShownBodyBytes = 200;

// "Sun, 06 Nov 1994 08:49:37 GMT" (the IMF-fixdate form; the obsolete forms are not
// accepted).
std::optional<int64_t> ParseHttpDate(std::string_view text) {
  std::tm tm{};
  std::string copy(text);
  const char* end = strptime(copy.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  return static_cast<int64_t>(timegm(&tm)) * 1000;
}

std::string Shown(std::string_view body) {
  std::string out(body.substr(0, kShownBodyBytes));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  if (body.size() > kShownBodyBytes) out += "...";
  return out;
}

}  // namespace

std::optional<int64_t> RetryAfterMs(std::string_view value, int64_t now_ms) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  int64_t ms = 0;
  if (value.front() >= '0' && value.front() <= '9') {
    uint64_t seconds = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (end != value.data() + value.size()) return std::nullopt;
    const bool huge = ec == std::errc::result_out_of_range ||
                      seconds > static_cast<uint64_t>(kMaxRetryAfterMs / 1000);
    if (ec != std::errc() && !huge) return std::nullopt;
    ms = huge ? kMaxRetryAfterMs : static_cast<int64_t>(seconds) * 1000;
  } else {
    std::optional<int64_t> at = ParseHttpDate(value);
    if (!at) return std::nullopt;
    ms = std::max<int64_t>(0, *at - now_ms);
  }
  return std::min(ms, kMaxRetryAfterMs);
}

Verdict Judge(const HttpAnswer& answer, const PushConfig& config, int64_t now_ms) {
  Verdict v;
  if (answer.ok() && answer.status >= 200 && answer.status < 300) {
    v.kind = VerdictKind::kAck;
    thread_local JsonDoc doc;  // its own: an HTTP request may hold the thread's between awaits
    if (!answer.body.empty() && doc.Parse(answer.body, 64)) v.result = answer.body;
    return v;
  }
  const std::string where = "POST " + config.url;
  if (!answer.ok()) {
    if (answer.failure == HttpFailure::kClosed || answer.failure == HttpFailure::kOverloaded) {
      v.kind = VerdictKind::kAbandon;
      v.message = answer.error;
      return v;
    }
    v.kind = VerdictKind::kRetry;
    v.endpoint_failed = true;
    v.message = where + ": " + std::string(HttpFailureName(answer.failure)) + ": " + answer.error;
    return v;
  }
  const int status = answer.status;
  v.message = where + " answered " + std::to_string(status);
  if ((status == 429 || status == 503)) {
    if (std::optional<int64_t> ms = RetryAfterMs(answer.header("Retry-After"), now_ms)) {
      v.kind = VerdictKind::kDefer;
      v.defer_ms = *ms;
      v.message += " with Retry-After " + std::string(answer.header("Retry-After"));
      return v;
    }
  }
  if (!answer.body.empty()) v.message += ": " + Shown(answer.body);
  if (status >= 300 && status < 400) {
    v.message +=
        " (redirects are not followed; Location: " + Shown(answer.header("Location")) + ")";
    v.endpoint_failed = true;
    return v;
  }
  if (status == 408 || status >= 500 || status < 200) {
    v.endpoint_failed = true;
    return v;
  }
  if (status == 429) return v;  // throttled without a Retry-After: the backoff decides
  if (config.dead_on_4xx) v.kind = VerdictKind::kDead;
  return v;
}

}  // namespace conveyor
