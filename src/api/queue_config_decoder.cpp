#include "api/queue_config_decoder.h"

#include "api/request_fields.h"
#include "api/task_spec_decoder.h"

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

}  // namespace

Error DecodeQueueConfigPatch(std::string_view body, const Limits& limits, QueueConfigPatch& out) {
  JsonValue root;
  if (auto e = ParseJsonBody(body, limits.max_json_depth, root); !e.ok()) return e;
  if (!root.is_object()) return Error{ErrorCode::kInvalidField, "the body must be a JSON object"};
  if (auto e = CheckKnown(
          root, {"max_attempts", "lease_ms", "backoff", "retention_ms", "paused", "name"}, "");
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
  return {};
}

}  // namespace conveyor
