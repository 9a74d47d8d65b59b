#include "api/schedule_decoder.h"

#include "api/request_fields.h"
#include "api/task_spec_decoder.h"
#include "engine/queue_name.h"

namespace conveyor {
namespace {

Error CheckKnown(const FieldReader& f, JsonValue object, std::string_view what,
                 std::initializer_list<std::string_view> known) {
  for (JsonValue m = object.first(); m; m = m.next()) {
    const std::string key = m.key();
    bool ok = false;
    for (auto k : known) ok = ok || k == key;
    if (!ok)
      return f.Invalid(key.substr(0, 64), std::string("is not a setting of ") + std::string(what));
  }
  return {};
}

Error DecodeTemplate(const FieldReader& f, JsonValue task, const Limits& limits, TaskTemplate& t) {
  if (!task.is_object()) return f.Invalid("task", "must be a task spec object");
  FieldReader r(task, "task");
  if (auto e = CheckKnown(
          r, task, "a schedule's task (payload, priority, max_attempts, lease_ms, key, unique)",
          {"payload", "priority", "max_attempts", "lease_ms", "key", "unique"});
      !e.ok()) {
    return e;
  }
  JsonValue payload = task.Find("payload");
  if (!payload) return r.Invalid("payload", "is required");
  t.payload.assign(payload.raw());
  std::optional<int64_t> priority, max_attempts, lease_ms;
  if (auto e = r.Int("priority", INT32_MIN, INT32_MAX, priority); !e.ok()) return e;
  if (auto e = r.Int("max_attempts", 1, 1'000'000, max_attempts); !e.ok()) return e;
  if (auto e = r.Int("lease_ms", 1, limits.max_lease_ms, lease_ms); !e.ok()) return e;
  std::optional<std::string> key;
  if (auto e = r.String("key", kMaxFlowKeyBytes, key); !e.ok()) return e;
  t.priority = static_cast<int32_t>(priority.value_or(0));
  if (max_attempts) t.max_attempts = static_cast<uint32_t>(*max_attempts);
  t.lease_ms = lease_ms.value_or(0);
  t.key = key.value_or("");
  if (JsonValue unique = task.Find("unique"); unique && !unique.is_null()) {
    if (!unique.is_object()) return r.Invalid("unique", "must be an object {key, ttl_ms, while}");
    FieldReader u(unique, "task.unique");
    if (auto e = CheckKnown(u, unique, "unique (key, ttl_ms, while)", {"key", "ttl_ms", "while"});
        !e.ok()) {
      return e;
    }
    std::optional<std::string> ukey, mode;
    std::optional<int64_t> ttl;
    if (auto e = u.String("key", kMaxIdempotencyKeyBytes, ukey); !e.ok()) return e;
    if (!ukey || ukey->empty()) return u.Invalid("key", "is required (a non-empty string)");
    if (auto e = u.Int("ttl_ms", 1, kMaxDelayMs, ttl); !e.ok()) return e;
    if (auto e = u.String("while", 16, mode); !e.ok()) return e;
    if (mode && *mode != "queued" && *mode != "active") {
      return u.Invalid("while", "must be \"queued\" or \"active\"");
    }
    t.unique_key = std::move(*ukey);
    t.unique_ttl_ms = ttl.value_or(0);
    t.unique_active = mode.value_or("queued") == "active";
  }
  return {};
}

}  // namespace

Error DecodeScheduleBody(std::string_view body, const Limits& limits, ScheduleSpec& out) {
  JsonValue root;
  if (auto e = ParseJsonBody(body, limits.max_json_depth, root); !e.ok()) return e;
  if (!root.is_object()) return Error{ErrorCode::kInvalidField, "the body must be a JSON object"};
  FieldReader f(root);
  if (auto e = CheckKnown(f, root, "a schedule",
                          {"queue", "cron", "every_ms", "timezone", "time_zone", "tz", "catch_up",
                           "paused", "task", "name"});
      !e.ok()) {
    return e;
  }
  std::optional<std::string> queue, cron, zone, catch_up;
  if (auto e = f.String("queue", 128, queue); !e.ok()) return e;
  if (!queue) return f.Invalid("queue", "is required");
  if (!IsValidQueueName(*queue)) {
    return f.Invalid("queue", "must be 1-128 characters of [A-Za-z0-9._-]");
  }
  out.queue = std::move(*queue);
  if (auto e = f.String("cron", 256, cron); !e.ok()) return e;
  std::optional<int64_t> every;
  if (auto e = f.Int("every_ms", kMinEveryMs, 366LL * 86'400'000, every); !e.ok()) return e;
  if (cron && every) return f.Invalid("cron", "cannot be given together with every_ms");
  if (!cron && !every) return f.Invalid("cron", "or every_ms is required");
  if (cron) {
    std::string why;
    if (!CronExpr::Parse(*cron, why)) return f.Invalid("cron", "is not usable: " + why);
    out.cron = std::move(*cron);
  } else {
    out.every_ms = *every;
  }
  // "timezone"; "time_zone" and "tz" (BullMQ's name) are read the same.
  for (const char* name : {"timezone", "time_zone", "tz"}) {
    std::optional<std::string> alias;
    if (auto e = f.String(name, 64, alias); !e.ok()) return e;
    if (alias && zone && *alias != *zone) {
      return f.Invalid(name, "names another time zone than the other field does");
    }
    if (alias) zone = std::move(alias);
  }
  if (zone && every) return f.Invalid("timezone", "applies to cron only");
  if (zone && !LoadZone(*zone)) {
    return f.Invalid("timezone",
                     "'" + *zone + "' is not a time zone this system knows (IANA name)");
  }
  out.timezone = zone.value_or("UTC");
  if (auto e = f.String("catch_up", 8, catch_up); !e.ok()) return e;
  if (catch_up) {
    auto c = ParseCatchUp(*catch_up);
    if (!c) return f.Invalid("catch_up", "must be \"none\", \"one\" or \"all\"");
    out.catch_up = *c;
  }
  std::optional<bool> paused;
  if (auto e = f.Bool("paused", paused); !e.ok()) return e;
  out.paused = paused.value_or(false);
  JsonValue task = f.Member("task");
  if (!task || task.is_null()) return f.Invalid("task", "is required (a task spec with a payload)");
  return DecodeTemplate(f, task, limits, out.task);
}

}  // namespace conveyor
