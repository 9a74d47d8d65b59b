#include "api/task_spec_decoder.h"

#include <limits>

#include "api/request_fields.h"

namespace conveyor {
namespace {

// The members of a task spec, found in one walk over the object (unknown keys are
// ignored, as SPEC.md's forward compatibility asks).
struct SpecMembers {
  JsonValue payload, priority, delay_ms, run_at, deadline, max_attempts, lease_ms, idem, key,
      unique, replace;

  explicit SpecMembers(JsonValue object) {
    for (JsonValue m = object.first(); m; m = m.next()) {
      std::string unescaped;
      std::string_view k = m.raw_key();
      if (m.key_escaped()) k = unescaped = m.key();
      if (JsonValue* slot = Slot(k)) *slot = m;
    }
  }

  JsonValue* Slot(std::string_view k) {
    if (k == "payload") return &payload;
    if (k == "priority") return &priority;
    if (k == "delay_ms") return &delay_ms;
    if (k == "run_at") return &run_at;
    if (k == "deadline") return &deadline;
    if (k == "max_attempts") return &max_attempts;
    if (k == "lease_ms") return &lease_ms;
    if (k == "idempotency_key") return &idem;
    if (k == "key") return &key;
    if (k == "unique") return &unique;
    if (k == "replace") return &replace;
    return nullptr;
  }
};

// `unique: {key, ttl_ms, while: "queued" | "active", replace}`; `replace` may also stand
// beside it at the top of the spec.
Error DecodeUnique(const FieldReader& f, const SpecMembers& m, TaskSpec& out) {
  if (!m.unique || m.unique.is_null()) {
    if (m.replace && !m.replace.is_null()) return f.Invalid("replace", "needs unique");
    return {};
  }
  if (!m.unique.is_object()) return f.Invalid("unique", "must be an object {key, ttl_ms, while}");
  const std::string path = f.prefix() + "unique";  // (FieldReader keeps a view of it)
  FieldReader u(m.unique, path);
  UniqueSpec& spec = out.unique.emplace();
  std::optional<std::string> key, mode;
  std::optional<int64_t> ttl;
  std::optional<bool> replace;
  if (auto e = u.String("key", kMaxIdempotencyKeyBytes, key); !e.ok()) return e;
  if (!key || key->empty()) return u.Invalid("key", "is required (a non-empty string)");
  if (auto e = u.Int("ttl_ms", 1, kMaxDelayMs, ttl); !e.ok()) return e;
  if (auto e = u.String("while", 16, mode); !e.ok()) return e;
  if (mode && *mode != "queued" && *mode != "active") {
    return u.Invalid("while", "must be \"queued\" or \"active\"");
  }
  if (auto e = u.Bool("replace", replace); !e.ok()) return e;
  if (m.replace && !m.replace.is_null()) {
    if (!m.replace.is_bool()) return f.Invalid("replace", "must be true or false");
    replace = replace.value_or(false) || m.replace.boolean();
  }
  for (JsonValue member = m.unique.first(); member; member = member.next()) {
    const std::string k = member.key();
    if (k != "key" && k != "ttl_ms" && k != "while" && k != "replace") {
      return u.Invalid(k.substr(0, 64), "is not a setting of unique (key, ttl_ms, while, replace)");
    }
  }
  spec.key = std::move(*key);
  spec.ttl_ms = ttl.value_or(0);
  spec.while_active = mode.value_or("queued") == "active";
  spec.replace = replace.value_or(false);
  return {};  // (replace with while "active": a leased holder is refused, a queued one replaced)
}

// index: the spec's place in a batch, or -1 for a single spec.
Error DecodeSpec(JsonValue value, const Limits& limits, int64_t index, TaskSpec& out) {
  FieldReader f(value, index >= 0 ? "tasks" : "", index);
  if (!value.is_object()) {
    const std::string prefix = f.prefix();
    return Error{ErrorCode::kInvalidField, (prefix.empty() ? std::string("the task spec")
                                                           : prefix.substr(0, prefix.size() - 1)) +
                                               " must be a JSON object"};
  }
  const SpecMembers m(value);
  if (!m.payload) return f.Invalid("payload", "is required");
  out.payload.assign(m.payload.raw());

  std::optional<int64_t> priority, delay_ms, run_at, deadline, max_attempts, lease_ms;
  std::optional<std::string> key, flow_key;
  if (auto e = f.Int("priority", m.priority, std::numeric_limits<int32_t>::min(),
                     std::numeric_limits<int32_t>::max(), priority);
      !e.ok())
    return e;
  if (auto e = f.Int("delay_ms", m.delay_ms, 0, kMaxDelayMs, delay_ms); !e.ok()) return e;
  if (auto e = f.Int("run_at", m.run_at, 0, kMaxEpochMs, run_at); !e.ok()) return e;
  if (auto e = f.Int("deadline", m.deadline, 0, kMaxEpochMs, deadline); !e.ok()) return e;
  if (auto e = f.Int("max_attempts", m.max_attempts, 1, 1'000'000, max_attempts); !e.ok()) {
    return e;
  }
  if (auto e = f.Int("lease_ms", m.lease_ms, 1, limits.max_lease_ms, lease_ms); !e.ok()) return e;
  if (auto e = f.String("idempotency_key", m.idem, kMaxIdempotencyKeyBytes, key); !e.ok()) {
    return e;
  }
  if (auto e = f.String("key", m.key, kMaxFlowKeyBytes, flow_key); !e.ok()) return e;
  if (delay_ms && run_at) return f.Invalid("run_at", "cannot be given together with delay_ms");
  if (key && key->empty()) return f.Invalid("idempotency_key", "must not be empty");

  out.priority = static_cast<int32_t>(priority.value_or(0));
  out.delay_ms = delay_ms;
  out.run_at = run_at;
  out.deadline = deadline;
  if (max_attempts) out.max_attempts = static_cast<uint32_t>(*max_attempts);
  out.lease_ms = lease_ms.value_or(0);
  out.idempotency_key = key.value_or("");
  out.key = flow_key.value_or("");  // "" is no key
  return DecodeUnique(f, m, out);
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
    return DecodeSpec(root, limits, -1, out.specs[0]);
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
    auto e = DecodeSpec(spec, limits, static_cast<int64_t>(i), out.specs[i]);
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
