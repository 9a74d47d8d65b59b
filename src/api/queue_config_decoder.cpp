#include "api/queue_config_decoder.h"

#include <algorithm>

#include "api/flow_config_decoder.h"
#include "api/request_fields.h"
#include "api/task_spec_decoder.h"
#include "common/url.h"
#include "push/signature.h"

namespace conveyor {
namespace {

Error CheckKnown(JsonValue object, std::initializer_list<std::string_view> known,
                 std::string_view prefix) {
  for (JsonValue member = object.first(); member; member = member.next()) {
    const std::string key = member.key();
    bool ok = false;
    for (auto k : known) ok = ok || k == key;
    if (!ok) {
      std::string shown = std::string(prefix) + std::string(key.substr(0, 64));
      return Error{ErrorCode::kInvalidField, shown + " is not a queue setting"};
    }
  }
  return {};
}

constexpr size_t kMaxPushHeaders = 32;

bool IsTokenChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// Header names the dispatcher sets itself (or HTTP/1.1 framing owns).
bool IsReservedHeader(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (std::string_view r :
       {"host", "content-length", "content-type", "transfer-encoding", "connection", "te",
        "upgrade", "trailer", "keep-alive", "expect", "user-agent"}) {
    if (lower == r) return true;
  }
  return lower.starts_with("webhook-") || lower.starts_with("conveyor-");
}

Error DecodePushHeaders(const FieldReader& p, JsonValue headers, PushConfig& out) {
  if (!headers.is_object()) return p.Invalid("headers", "must be an object of strings");
  for (JsonValue h = headers.first(); h; h = h.next()) {
    const std::string name = h.key();
    const std::string shown = "push.headers." + name.substr(0, 64);
    if (out.headers.size() >= kMaxPushHeaders) {
      return Error{ErrorCode::kInvalidField, "push.headers may hold at most 32 headers"};
    }
    if (name.empty() || name.size() > 128 || !std::all_of(name.begin(), name.end(), IsTokenChar)) {
      return Error{ErrorCode::kInvalidField, shown + " is not a valid header name"};
    }
    if (IsReservedHeader(name)) {
      return Error{ErrorCode::kInvalidField, shown + " is set by Conveyor itself"};
    }
    if (!h.is_string()) return Error{ErrorCode::kInvalidField, shown + " must be a string"};
    std::string value = h.string();
    if (value.size() > 4096 ||
        value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
      return Error{ErrorCode::kInvalidField,
                   shown + " must be at most 4096 bytes, without CR, LF or NUL"};
    }
    out.headers.emplace_back(name, std::move(value));
  }
  return {};
}

Error DecodePush(JsonValue push, const Limits& limits, PushConfig& out) {
  if (!push.is_object()) {
    return Error{ErrorCode::kInvalidField, "push must be an object (or null to remove it)"};
  }
  if (auto e = CheckKnown(
          push, {"url", "concurrency", "timeout_ms", "headers", "secret", "dead_on_4xx", "breaker"},
          "push.");
      !e.ok()) {
    return e;
  }
  FieldReader p(push, "push");
  std::optional<std::string> url;
  if (auto e = p.String("url", 2048, url); !e.ok()) return e;
  if (!url) return p.Invalid("url", "is required");
  std::string why;
  if (!ParseUrl(*url, why)) return p.Invalid("url", "is not usable: " + why);
  out.url = std::move(*url);
  std::optional<int64_t> n;
  if (auto e = p.Int("concurrency", 1, 10000, n); !e.ok()) return e;
  if (n) out.concurrency = static_cast<uint32_t>(*n);
  n.reset();
  // A delivery's lease is its timeout and 5 s more, within --max-lease-ms.
  if (auto e = p.Int("timeout_ms", 100, std::max<int64_t>(100, limits.max_lease_ms - 5000), n);
      !e.ok()) {
    return e;
  }
  if (n) out.timeout_ms = *n;
  if (JsonValue headers = p.Member("headers"); headers && !headers.is_null()) {
    if (auto e = DecodePushHeaders(p, headers, out); !e.ok()) return e;
  }
  std::optional<std::string> secret;
  if (auto e = p.String("secret", 512, secret); !e.ok()) return e;
  if (secret && !secret->empty()) {
    if (!SigningKeyOf(*secret, why)) return p.Invalid("secret", "is not usable: " + why);
    out.secret = std::move(*secret);
  }
  std::optional<bool> dead;
  if (auto e = p.Bool("dead_on_4xx", dead); !e.ok()) return e;
  out.dead_on_4xx = dead.value_or(false);
  if (JsonValue breaker = p.Member("breaker"); breaker && !breaker.is_null()) {
    if (!breaker.is_object()) return p.Invalid("breaker", "must be an object");
    if (auto e = CheckKnown(breaker, {"failures", "cooldown_ms"}, "push.breaker."); !e.ok()) {
      return e;
    }
    FieldReader b(breaker, "push.breaker");
    n.reset();
    if (auto e = b.Int("failures", 0, 1000, n); !e.ok()) return e;
    if (n) out.breaker_failures = static_cast<uint32_t>(*n);
    n.reset();
    if (auto e = b.Int("cooldown_ms", 100, 86'400'000, n); !e.ok()) return e;
    if (n) out.breaker_cooldown_ms = *n;
  }
  return {};
}

}  // namespace

Error DecodeQueueConfigPatch(std::string_view body, const Limits& limits, QueueConfigPatch& out) {
  JsonValue root;
  if (auto e = ParseJsonBody(body, limits.max_json_depth, root); !e.ok()) return e;
  if (!root.is_object()) return Error{ErrorCode::kInvalidField, "the body must be a JSON object"};
  if (auto e =
          CheckKnown(root,
                     {"max_attempts", "lease_ms", "backoff", "retention_ms", "paused", "push",
                      "name", "rate_limit", "concurrency", "fairness", "key_weights", "aging_ms"},
                     "");
      !e.ok()) {
    return e;
  }
  FieldReader f(root);
  std::optional<int64_t> max_attempts;
  if (auto e = f.Int("max_attempts", 1, 1'000'000, max_attempts); !e.ok()) return e;
  if (max_attempts) out.max_attempts = static_cast<uint32_t>(*max_attempts);
  if (auto e = f.Int("lease_ms", 1, limits.max_lease_ms, out.lease_ms); !e.ok()) return e;
  if (auto e = f.Int("retention_ms", 0, kMaxDelayMs, out.retention_ms); !e.ok()) return e;
  if (auto e = f.Bool("paused", out.paused); !e.ok()) return e;
  if (JsonValue backoff = f.Member("backoff"); backoff && !backoff.is_null()) {
    if (!backoff.is_object()) return f.Invalid("backoff", "must be an object");
    if (auto e = CheckKnown(backoff, {"base_ms", "factor", "max_ms", "jitter"}, "backoff.");
        !e.ok()) {
      return e;
    }
    FieldReader b(backoff, "backoff");
    if (auto e = b.Int("base_ms", 0, kMaxDelayMs, out.backoff_base_ms); !e.ok()) return e;
    if (auto e = b.Double("factor", 1.0, 100.0, out.backoff_factor); !e.ok()) return e;
    if (auto e = b.Int("max_ms", 0, kMaxDelayMs, out.backoff_max_ms); !e.ok()) return e;
    if (auto e = b.Bool("jitter", out.backoff_jitter); !e.ok()) return e;
  }
  if (auto e = DecodeFlowConfig(f, out); !e.ok()) return e;
  if (JsonValue push = f.Member("push")) {
    if (push.is_null()) {
      out.push.emplace(std::nullopt);
    } else if (auto e = DecodePush(push, limits, out.push.emplace().emplace()); !e.ok()) {
      return e;
    }
  }
  return {};
}

}  // namespace conveyor
