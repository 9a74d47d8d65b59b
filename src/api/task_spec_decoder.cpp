#include "api/task_spec_decoder.h"

#include <limits>

#include "api/request_fields.h"
#include "boost/json/serialize.hpp"
#include "common/json_raw.h"

namespace conveyor {
namespace {

// The exact bytes of a member, or its re-serialization when the key was spelled with
// escapes (the raw walker compares keys byte for byte).
std::string RawOrSerialized(const FieldReader& reader, const boost::json::object& object,
                            std::string_view field) {
  std::string_view raw = reader.Raw(field);
  if (!raw.empty()) return std::string(raw);
  auto it = object.find(field);
  return it == object.end() ? std::string() : boost::json::serialize(it->value());
}

Error DecodeSpec(const boost::json::value& value, std::string_view raw, const Limits& limits,
                 std::string prefix, TaskSpec& out) {
  if (!value.is_object()) {
    return Error{ErrorCode::kInvalidField, (prefix.empty() ? std::string("the task spec")
                                                           : prefix.substr(0, prefix.size() - 1)) +
                                               " must be a JSON object"};
  }
  const auto& object = value.get_object();
  FieldReader f(object, raw, std::move(prefix));
  if (object.find("payload") == object.end()) return f.Invalid("payload", "is required");
  out.payload = RawOrSerialized(f, object, "payload");

  std::optional<int64_t> priority, delay_ms, run_at, deadline, max_attempts, lease_ms;
  std::optional<std::string> key;
  if (auto e = f.Int("priority", std::numeric_limits<int32_t>::min(),
                     std::numeric_limits<int32_t>::max(), priority);
      !e.ok())
    return e;
  if (auto e = f.Int("delay_ms", 0, kMaxDelayMs, delay_ms); !e.ok()) return e;
  if (auto e = f.Int("run_at", 0, kMaxEpochMs, run_at); !e.ok()) return e;
  if (auto e = f.Int("deadline", 0, kMaxEpochMs, deadline); !e.ok()) return e;
  if (auto e = f.Int("max_attempts", 1, 1'000'000, max_attempts); !e.ok()) return e;
  if (auto e = f.Int("lease_ms", 1, limits.max_lease_ms, lease_ms); !e.ok()) return e;
  if (auto e = f.String("idempotency_key", kMaxIdempotencyKeyBytes, key); !e.ok()) return e;
  if (delay_ms && run_at) return f.Invalid("run_at", "cannot be given together with delay_ms");
  if (key && key->empty()) return f.Invalid("idempotency_key", "must not be empty");

  out.priority = static_cast<int32_t>(priority.value_or(0));
  out.delay_ms = delay_ms;
  out.run_at = run_at;
  out.deadline = deadline;
  if (max_attempts) out.max_attempts = static_cast<uint32_t>(*max_attempts);
  out.lease_ms = lease_ms.value_or(0);
  out.idempotency_key = key.value_or("");
  return {};
}

}  // namespace

Error DecodeEnqueueBody(std::string_view body, const Limits& limits, EnqueueBody& out) {
  boost::json::value root;
  if (auto e = ParseJsonBody(body, limits.max_json_depth, root); !e.ok()) return e;
  std::string_view raw = TrimJson(body);
  if (!root.is_object()) {
    return Error{ErrorCode::kInvalidField,
                 "the body must be a task spec object or {\"tasks\":[...]}"};
  }
  const auto& object = root.get_object();
  auto tasks = object.find("tasks");
  if (tasks == object.end() || object.contains("payload")) {
    out.is_batch = false;
    out.specs.resize(1);
    return DecodeSpec(root, raw, limits, "", out.specs[0]);
  }
  out.is_batch = true;
  if (!tasks->value().is_array()) {
    return Error{ErrorCode::kInvalidField, "tasks must be an array of task specs"};
  }
  const auto& array = tasks->value().get_array();
  if (array.empty()) return Error{ErrorCode::kInvalidField, "tasks must not be empty"};
  if (array.size() > limits.max_batch) {
    return Error{ErrorCode::kInvalidField, "tasks has " + std::to_string(array.size()) +
                                               " specs; a batch holds at most " +
                                               std::to_string(limits.max_batch)};
  }
  std::vector<std::string_view> raw_specs;
  raw_specs.reserve(array.size());
  ForEachJsonElement(FindJsonMember(raw, "tasks"), [&](std::string_view element) {
    raw_specs.push_back(element);
    return true;
  });
  out.specs.resize(array.size());
  for (size_t i = 0; i < array.size(); ++i) {
    std::string_view raw_spec = i < raw_specs.size() ? raw_specs[i] : std::string_view();
    auto e =
        DecodeSpec(array[i], raw_spec, limits, "tasks[" + std::to_string(i) + "].", out.specs[i]);
    if (!e.ok()) return e;
  }
  return {};
}

Error DecodeAddTaskBody(std::string_view body, const Limits& limits, TaskSpec& out) {
  boost::json::value root;
  if (auto e = ParseJsonBody(body, limits.max_json_depth, root); !e.ok()) return e;
  if (!root.is_object()) return Error{ErrorCode::kInvalidField, "the body must be {\"task\": ...}"};
  const auto& object = root.get_object();
  FieldReader f(object, TrimJson(body));
  if (object.find("task") == object.end()) return f.Invalid("task", "is required");
  out.payload = RawOrSerialized(f, object, "task");
  return {};
}

}  // namespace conveyor
