#include "api/call_decoders.h"

#include "api/request_fields.h"
#include "api/task_spec_decoder.h"

namespace conveyor {
namespace {

// Parses the body and requires a JSON object.
Error ParseObject(std::string_view body, const Limits& limits, JsonValue& root) {
  if (auto e = ParseJsonBody(body, limits.max_json_depth, root); !e.ok()) return e;
  if (!root.is_object()) return Error{ErrorCode::kInvalidField, "the body must be a JSON object"};
  return {};
}

// The member's exact text (null included); empty when absent.
std::string RawMember(const FieldReader& f, std::string_view field) {
  return std::string(f.Raw(field));
}

Error RequiredToken(const FieldReader& f, std::string& out) {
  std::optional<std::string> token;
  if (auto e = f.String("lease", kMaxLeaseTokenBytes, token); !e.ok()) return e;
  if (!token) return f.Invalid("lease", "is required (the token from the lease answer)");
  out = std::move(*token);
  return {};
}

// index: the ack's place in a batch ack, or -1.
Error DecodeAckObject(JsonValue object, int64_t index, bool with_id, AckCall& out) {
  FieldReader f(object, index >= 0 ? "acks" : "", index);
  if (with_id) {
    JsonValue v = f.Member("id");
    if (!v || !v.is_number()) return f.Invalid("id", "is required");
    if (v.type() == JsonType::kUint) {
      out.id = v.uint64();
    } else if (v.type() == JsonType::kInt && v.int64() >= 0) {
      out.id = static_cast<uint64_t>(v.int64());
    } else {
      return f.Invalid("id", "must be a task id (an unsigned integer)");
    }
  }
  if (auto e = RequiredToken(f, out.token); !e.ok()) return e;
  out.result = RawMember(f, "result");
  return {};
}

}  // namespace

Error DecodeLeaseBody(std::string_view body, const Limits& limits, LeaseRequest& out) {
  JsonValue root;
  if (auto e = ParseObject(body, limits, root); !e.ok()) return e;
  FieldReader f(root);
  std::optional<int64_t> max, wait_ms, lease_ms;
  std::optional<std::string> worker;
  if (auto e = f.Int("max", 1, static_cast<int64_t>(limits.max_lease_batch), max); !e.ok())
    return e;
  if (auto e = f.Int("wait_ms", 0, limits.max_wait_ms, wait_ms); !e.ok()) return e;
  if (auto e = f.Int("lease_ms", 1, limits.max_lease_ms, lease_ms); !e.ok()) return e;
  if (auto e = f.String("worker", kMaxWorkerNameBytes, worker); !e.ok()) return e;
  out.max = static_cast<uint32_t>(max.value_or(1));
  out.wait_ms = wait_ms.value_or(0);
  out.lease_ms = lease_ms.value_or(0);
  out.worker = worker.value_or("");
  return {};
}

Error DecodeAckBody(std::string_view body, const Limits& limits, AckCall& out) {
  JsonValue root;
  if (auto e = ParseObject(body, limits, root); !e.ok()) return e;
  return DecodeAckObject(root, -1, /*with_id=*/false, out);
}

Error DecodeNackBody(std::string_view body, const Limits& limits, NackCall& out) {
  JsonValue root;
  if (auto e = ParseObject(body, limits, root); !e.ok()) return e;
  FieldReader f(root);
  if (auto e = RequiredToken(f, out.token); !e.ok()) return e;
  std::optional<std::string> message;
  std::optional<bool> dead;
  // Long messages are accepted and cut by the engine to Limits::max_error_message_bytes.
  if (auto e = f.String("error", limits.max_body_bytes, message); !e.ok()) return e;
  if (auto e = f.Int("retry_in_ms", 0, kMaxDelayMs, out.retry_in_ms); !e.ok()) return e;
  if (auto e = f.Bool("dead", dead); !e.ok()) return e;
  if (auto e = f.Int("retry_at", 0, kMaxEpochMs, out.retry_at); !e.ok()) return e;
  if (auto e = f.Int("pause_key_ms", 0, kMaxDelayMs, out.pause_key_ms); !e.ok()) return e;
  if ((out.retry_at || out.pause_key_ms) && dead.value_or(false)) {
    return f.Invalid("dead", "cannot be given together with retry_at or pause_key_ms");
  }
  if (out.retry_at && out.retry_in_ms) {
    return f.Invalid("retry_at", "cannot be given together with retry_in_ms");
  }
  out.message = message.value_or("");
  out.dead = dead.value_or(false);
  return {};
}

Error DecodeExtendBody(std::string_view body, const Limits& limits, ExtendCall& out) {
  JsonValue root;
  if (auto e = ParseObject(body, limits, root); !e.ok()) return e;
  FieldReader f(root);
  if (auto e = RequiredToken(f, out.token); !e.ok()) return e;
  if (auto e = f.Int("lease_ms", 1, limits.max_lease_ms, out.lease_ms); !e.ok()) return e;
  out.progress = RawMember(f, "progress");
  return {};
}

Error DecodeBatchAckBody(std::string_view body, const Limits& limits, std::vector<AckCall>& out) {
  JsonValue root;
  if (auto e = ParseObject(body, limits, root); !e.ok()) return e;
  JsonValue acks = root.Find("acks");
  if (!acks || !acks.is_array()) {
    return Error{ErrorCode::kInvalidField, "acks is required: an array of {id, lease, result}"};
  }
  if (acks.size() == 0) return Error{ErrorCode::kInvalidField, "acks must not be empty"};
  if (acks.size() > limits.max_batch) {
    return Error{ErrorCode::kInvalidField,
                 "acks holds at most " + std::to_string(limits.max_batch) + " items"};
  }
  out.resize(acks.size());
  size_t i = 0;
  for (JsonValue item = acks.first(); item; item = item.next(), ++i) {
    if (!item.is_object()) {
      return Error{ErrorCode::kInvalidField, "acks[" + std::to_string(i) + "] must be an object"};
    }
    auto e = DecodeAckObject(item, static_cast<int64_t>(i), /*with_id=*/true, out[i]);
    if (!e.ok()) return e;
  }
  return {};
}

}  // namespace conveyor
