#include "api/task_spec_decoder.h"

#include <limits>

#include "api/request_fields.h"

namespace conveyor {
namespace {

Error DecodeSpec(JsonValue value, const Limits& limits, std::string prefix, TaskSpec& out) {
  if (!value.is_object()) {
    return Error{ErrorCode::kInvalidField, (prefix.empty() ? std::string("the task spec")
                                                           : prefix.substr(0, prefix.size() - 1)) +
                                               " must be a JSON object"};
  }
  FieldReader f(value, std::move(prefix));
  JsonValue payload = f.Member("payload");
  if (!payload) return f.Invalid("payload", "is required");
  out.payload = std::string(payload.raw());

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
  JsonValue root;
  if (auto e = ParseJsonBody(body, limits.max_json_depth, root); !e.ok()) return e;
  if (!root.is_object()) {
    return Error{ErrorCode::kInvalidField,
                 "the body must be a task spec object or {\"tasks\":[...]}"};
  }
  JsonValue tasks = root.Find("tasks");
  if (!tasks || root.Find("payload")) {
    out.is_batch = false;
    out.specs.resize(1);
    return DecodeSpec(root, limits, "", out.specs[0]);
  }
  out.is_batch = true;
  if (!tasks.is_array()) {
    return Error{ErrorCode::kInvalidField, "tasks must be an array of task specs"};
  }
  if (tasks.size() == 0) return Error{ErrorCode::kInvalidField, "tasks must not be empty"};
  if (tasks.size() > limits.max_batch) {
    return Error{ErrorCode::kInvalidField, "tasks has " + std::to_string(tasks.size()) +
                                               " specs; a batch holds at most " +
                                               std::to_string(limits.max_batch)};
  }
  out.specs.resize(tasks.size());
  size_t i = 0;
  for (JsonValue spec = tasks.first(); spec; spec = spec.next(), ++i) {
    auto e = DecodeSpec(spec, limits, "tasks[" + std::to_string(i) + "].", out.specs[i]);
    if (!e.ok()) return e;
  }
  return {};
}

Error DecodeAddTaskBody(std::string_view body, const Limits& limits, TaskSpec& out) {
  JsonValue root;
  if (auto e = ParseJsonBody(body, limits.max_json_depth, root); !e.ok()) return e;
  if (!root.is_object()) return Error{ErrorCode::kInvalidField, "the body must be {\"task\": ...}"};
  FieldReader f(root);
  JsonValue task = f.Member("task");
  if (!task) return f.Invalid("task", "is required");
  out.payload = std::string(task.raw());
  return {};
}

}  // namespace conveyor
