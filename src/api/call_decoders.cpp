#include "api/call_decoders.h"

#include "api/request_fields.h"
#include "api/task_spec_decoder.h"
#include "boost/json/serialize.hpp"
#include "common/json_raw.h"

namespace conveyor {
namespace {

// Parses the body and requires a JSON object; `object` and `raw` refer into `root`/`body`.
Error ParseObject(std::string_view body, const Limits& limits, boost::json::value& root) {
  if (auto e = ParseJsonBody(body, limits.max_json_depth, root); !e.ok()) return e;
  if (!root.is_object()) return Error{ErrorCode::kInvalidField, "the body must be a JSON object"};
  return {};
}

std::string RawMember(const FieldReader& f, const boost::json::object& object,
                      std::string_view field) {
  auto it = object.find(field);
  if (it == object.end()) return {};
  std::string_view raw = f.Raw(field);
  return raw.empty() ? boost::json::serialize(it->value()) : std::string(raw);
}

Error RequiredToken(const FieldReader& f, std::string& out) {
  std::optional<std::string> token;
  if (auto e = f.String("lease", kMaxLeaseTokenBytes, token); !e.ok()) return e;
  if (!token) return f.Invalid("lease", "is required (the token from the lease answer)");
  out = std::move(*token);
  return {};
}

Error DecodeAckObject(const boost::json::object& object, std::string_view raw,
                      const std::string& prefix, bool with_id, AckCall& out) {
  FieldReader f(object, raw, prefix);
  if (with_id) {
    auto it = object.find("id");
    if (it == object.end() || !it->value().is_number()) return f.Invalid("id", "is required");
    const auto& v = it->value();
    if (v.is_uint64()) {
      out.id = v.get_uint64();
    } else if (v.is_int64() && v.get_int64() >= 0) {
      out.id = static_cast<uint64_t>(v.get_int64());
    } else {
      return f.Invalid("id", "must be a task id (an unsigned integer)");
    }
  }
  if (auto e = RequiredToken(f, out.token); !e.ok()) return e;
  out.result = RawMember(f, object, "result");
  return {};
}

}  // namespace

Error DecodeLeaseBody(std::string_view body, const Limits& limits, LeaseRequest& out) {
  boost::json::value root;
  if (auto e = ParseObject(body, limits, root); !e.ok()) return e;
  FieldReader f(root.get_object(), TrimJson(body));
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
  boost::json::value root;
  if (auto e = ParseObject(body, limits, root); !e.ok()) return e;
  return DecodeAckObject(root.get_object(), TrimJson(body), "", /*with_id=*/false, out);
}

Error DecodeNackBody(std::string_view body, const Limits& limits, NackCall& out) {
  boost::json::value root;
  if (auto e = ParseObject(body, limits, root); !e.ok()) return e;
  FieldReader f(root.get_object(), TrimJson(body));
  if (auto e = RequiredToken(f, out.token); !e.ok()) return e;
  std::optional<std::string> message;
  std::optional<bool> dead;
  // Long messages are accepted and cut by the engine to Limits::max_error_message_bytes.
  if (auto e = f.String("error", limits.max_body_bytes, message); !e.ok()) return e;
  if (auto e = f.Int("retry_in_ms", 0, kMaxDelayMs, out.retry_in_ms); !e.ok()) return e;
  if (auto e = f.Bool("dead", dead); !e.ok()) return e;
  out.message = message.value_or("");
  out.dead = dead.value_or(false);
  return {};
}

Error DecodeExtendBody(std::string_view body, const Limits& limits, ExtendCall& out) {
  boost::json::value root;
  if (auto e = ParseObject(body, limits, root); !e.ok()) return e;
  const auto& object = root.get_object();
  FieldReader f(object, TrimJson(body));
  if (auto e = RequiredToken(f, out.token); !e.ok()) return e;
  if (auto e = f.Int("lease_ms", 1, limits.max_lease_ms, out.lease_ms); !e.ok()) return e;
  out.progress = RawMember(f, object, "progress");
  return {};
}

Error DecodeBatchAckBody(std::string_view body, const Limits& limits, std::vector<AckCall>& out) {
  boost::json::value root;
  if (auto e = ParseObject(body, limits, root); !e.ok()) return e;
  std::string_view raw = TrimJson(body);
  const auto& object = root.get_object();
  auto acks = object.find("acks");
  if (acks == object.end() || !acks->value().is_array()) {
    return Error{ErrorCode::kInvalidField, "acks is required: an array of {id, lease, result}"};
  }
  const auto& array = acks->value().get_array();
  if (array.empty()) return Error{ErrorCode::kInvalidField, "acks must not be empty"};
  if (array.size() > limits.max_batch) {
    return Error{ErrorCode::kInvalidField,
                 "acks holds at most " + std::to_string(limits.max_batch) + " items"};
  }
  std::vector<std::string_view> raw_items;
  ForEachJsonElement(FindJsonMember(raw, "acks"), [&](std::string_view element) {
    raw_items.push_back(element);
    return true;
  });
  out.resize(array.size());
  for (size_t i = 0; i < array.size(); ++i) {
    std::string prefix = "acks[" + std::to_string(i) + "].";
    if (!array[i].is_object()) {
      return Error{ErrorCode::kInvalidField, "acks[" + std::to_string(i) + "] must be an object"};
    }
    std::string_view raw_item = i < raw_items.size() ? raw_items[i] : std::string_view();
    auto e = DecodeAckObject(array[i].get_object(), raw_item, prefix, /*with_id=*/true, out[i]);
    if (!e.ok()) return e;
  }
  return {};
}

}  // namespace conveyor
