// What a push delivery's answer means for its task (docs/PUSH.md): ack, retry with the
// queue's backoff, dead, or "come back later" (429/503 with Retry-After: the endpoint is
// paused and the attempt not counted), and whether it counts against the endpoint's
// circuit breaker. Pure functions, unit-tested; the dispatcher's thread calls them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "client/http_client.h"
#include "engine/queue_config.h"

namespace conveyor {

enum class VerdictKind : uint8_t {
  kAck,      // 2xx
  kRetry,    // nack: again after the queue's backoff (or dead once out of attempts)
  kDead,     // nack dead: a 4xx with dead_on_4xx
  kDefer,    // back to the queue for defer_ms, attempt not counted; the endpoint pauses
  kAbandon,  // no verdict (the client was closed, too much in flight): ready again at once
};

struct Verdict {
  VerdictKind kind = VerdictKind::kRetry;
  std::string message;           // for a nack, in words (method, URL, status or failure)
  std::string result;            // kAck: the answer's body when it is JSON; else empty
  int64_t defer_ms = 0;          // kDefer
  bool endpoint_failed = false;  // counts toward opening the breaker
};

// The longest pause a Retry-After may ask for; a longer one is cut to it.
inline constexpr int64_t kMaxRetryAfterMs = 3'600'000;

// Retry-After as delay-seconds or an HTTP-date (RFC 9110 §10.2.3), in ms from now_ms
// (epoch), cut to kMaxRetryAfterMs; nullopt when it is neither.
std::optional<int64_t> RetryAfterMs(std::string_view value, int64_t now_ms);

Verdict Judge(const HttpAnswer& answer, const PushConfig& config, int64_t now_ms);

}  // namespace conveyor
