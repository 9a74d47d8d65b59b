#include "api/encoders.h"

#include "common/base64.h"
#include "common/json_writer.h"

namespace conveyor {
namespace {

void RawOrNull(JsonWriter& w, const std::string& raw) {
  if (raw.empty()) {
    w.Null();
  } else {
    w.Raw(raw);
  }
}

void AppendPayload(JsonWriter& w, const TaskView& task) {
  if (task.payload_kind == PayloadKind::kJson) {
    w.Key("payload").Raw(task.payload);
  } else if (IsValidUtf8(task.payload)) {
    w.Field("payload", std::string_view(task.payload));
  } else {
    w.Field("payload", std::string_view(Base64(task.payload)));
    w.Field("payload_encoding", std::string_view("base64"));
  }
}

}  // namespace

void AppendTaskJson(std::string& out, const TaskView& task) {
  JsonWriter w(out);
  w.BeginObject();
  w.Field("id", task.id);
  w.Field("queue", std::string_view(task.queue));
  AppendPayload(w, task);
  w.Field("priority", int64_t{task.priority});
  w.Field("state", TaskStateName(task.state));
  w.Field("attempts", task.attempts);
  w.Field("max_attempts", task.max_attempts);
  w.Field("created_at", task.created_at);
  w.Field("run_at", task.run_at);
  w.Key("deadline");
  if (task.deadline == kNever) {
    w.Null();
  } else {
    w.Int(task.deadline);
  }
  w.Key("result");
  RawOrNull(w, task.result);
  w.Key("progress");
  RawOrNull(w, task.progress);
  w.Key("errors").BeginArray();
  for (const TaskError& e : task.errors) {
    w.BeginObject();
    w.Field("at", e.at);
    w.Field("attempt", e.attempt);
    w.Field("message", std::string_view(e.message));
    w.EndObject();
  }
  w.EndArray();
  w.Key("dead_reason");
  if (task.dead_reason == DeadReason::kNone) {
    w.Null();
  } else {
    w.String(DeadReasonName(task.dead_reason));
  }
  w.Key("idempotency_key");
  if (task.idempotency_key.empty()) {
    w.Null();
  } else {
    w.String(task.idempotency_key);
  }
  w.Key("key");
  if (task.key.empty()) {
    w.Null();
  } else {
    w.String(task.key);
  }
  w.Key("unique");
  if (task.unique_key.empty()) {
    w.Null();
  } else {
    w.BeginObject();
    w.Field("key", std::string_view(task.unique_key));
    w.Field("while", std::string_view(task.unique_active ? "active" : "queued"));
    w.Key("expires_at");
    if (task.unique_until == kNever) {
      w.Null();
    } else {
      w.Int(task.unique_until);
    }
    w.EndObject();
  }
  if (task.state == TaskState::kLeased) {
    w.Key("lease").BeginObject();
    if (!task.lease_token.empty()) w.Field("token", std::string_view(task.lease_token));
    w.Field("expires_at", task.lease_expires_at);
    w.Field("worker", std::string_view(task.lease_worker));
    w.EndObject();
  }
  w.EndObject();
}

namespace {

void AppendFlowConfig(JsonWriter& w, const QueueConfig& config) {
  w.Key("rate_limit");
  if (!config.rate_limit) {
    w.Null();
  } else {
    w.BeginObject();
    w.Key("per_second").Double(config.rate_limit->per_second);
    w.Field("burst", config.rate_limit->burst);
    w.Field("per_key", config.rate_limit->per_key);
    w.EndObject();
  }
  w.Key("concurrency");
  if (!config.concurrency) {
    w.Null();
  } else {
    w.BeginObject();
    w.Field("max", config.concurrency->max);
    w.Field("per_key", config.concurrency->per_key);
    w.EndObject();
  }
  w.Field("fairness", std::string_view(config.fair_by_key ? "key" : "none"));
  w.Key("key_weights").BeginObject();
  for (const auto& [key, weight] : config.key_weights) w.Field(key, weight);
  w.EndObject();
  w.Field("aging_ms", config.aging_ms);
}

void AppendFlowStats(JsonWriter& w, const FlowSnapshot& f) {
  w.Key("flow").BeginObject();
  w.Field("keys", f.keys);
  w.Field("leased", f.leased);
  w.Key("held").BeginObject();
  w.Field("rate", f.held_by_rate);
  w.Field("concurrency", f.held_by_concurrency);
  w.Field("paused_key", f.held_by_pause);
  w.EndObject();
  w.Field("paused_keys", f.paused_keys);
  w.Field("unique_keys", f.unique_keys);
  w.Key("tokens");
  if (f.tokens < 0) {
    w.Null();
  } else {
    w.Double(f.tokens);
  }
  w.Key("top_keys").BeginArray();
  for (const auto& k : f.top_keys) {
    w.BeginObject();
    w.Field("key", std::string_view(k.key));
    w.Field("ready", k.ready);
    w.Field("leased", k.leased);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
}

}  // namespace

void AppendQueueConfigJson(std::string& out, const QueueConfig& config) {
  JsonWriter w(out);
  w.BeginObject();
  w.Field("max_attempts", config.max_attempts);
  w.Field("lease_ms", config.lease_ms);
  w.Key("backoff").BeginObject();
  w.Field("base_ms", config.backoff.base_ms);
  w.Key("factor").Double(config.backoff.factor);
  w.Field("max_ms", config.backoff.max_ms);
  w.Field("jitter", config.backoff.jitter);
  w.EndObject();
  w.Field("retention_ms", config.retention_ms);
  w.Field("paused", config.paused);
  w.Key("push");
  if (!config.push) {
    w.Null();
  } else {
    const PushConfig& p = *config.push;
    w.BeginObject();
    w.Field("url", std::string_view(p.url));
    w.Field("concurrency", p.concurrency);
    w.Field("timeout_ms", p.timeout_ms);
    w.Key("headers").BeginObject();
    for (const auto& [name, value] : p.headers) w.Field(name, std::string_view(value));
    w.EndObject();
    // A secret is never shown (docs/PUSH.md): only whether there is one.
    w.Key("secret");
    if (p.secret.empty()) {
      w.Null();
    } else {
      w.String("********");
    }
    w.Field("dead_on_4xx", p.dead_on_4xx);
    w.Key("breaker").BeginObject();
    w.Field("failures", p.breaker_failures);
    w.Field("cooldown_ms", p.breaker_cooldown_ms);
    w.EndObject();
    w.EndObject();
  }
  AppendFlowConfig(w, config);
  w.EndObject();
}

void AppendQueueStatsJson(std::string& out, const QueueSnapshot& s, std::string_view push_status) {
  JsonWriter w(out);
  w.BeginObject();
  w.Field("name", std::string_view(s.name));
  w.Key("counts").BeginObject();
  for (int i = 0; i < kTaskStateCount; ++i) {
    w.Field(TaskStateName(static_cast<TaskState>(i)), s.counts[i]);
  }
  w.EndObject();
  w.Key("totals").BeginObject();
  w.Field("enqueued", s.totals.enqueued);
  w.Field("acked", s.totals.acked);
  w.Field("nacked", s.totals.nacked);
  w.Field("expired", s.totals.expired);
  w.Field("dead", s.totals.dead);
  w.Field("deferred", s.totals.deferred);
  w.EndObject();
  AppendFlowStats(w, s.flow);
  std::string config;
  AppendQueueConfigJson(config, s.config);
  w.Key("config").Raw(config);
  if (!push_status.empty()) w.Key("push").Raw(push_status);
  w.EndObject();
}

std::string LeaseAnswerJson(const LeaseResult& result) {
  std::string out = "{\"tasks\":[";
  for (size_t i = 0; i < result.tasks.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendTaskJson(out, result.tasks[i]);
  }
  out += result.truncated ? "],\"truncated\":true}" : "]}";
  return out;
}

std::string TaskPageJson(const TaskPage& page) {
  std::string out = "{\"tasks\":[";
  for (size_t i = 0; i < page.tasks.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendTaskJson(out, page.tasks[i]);
  }
  out += "],\"next_after\":";
  out += page.next_after ? std::to_string(*page.next_after) : "null";
  out += page.truncated ? ",\"truncated\":true}" : "}";
  return out;
}

std::string IdStateJson(const IdState& id_state) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject()
      .Field("id", id_state.id)
      .Field("state", TaskStateName(id_state.state))
      .EndObject();
  return out;
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1F) : n == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; k < n; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d >> 6) != 0x2) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    // Overlong forms, surrogates and code points past U+10FFFF are not UTF-8.
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
      return false;
    }
    i += n;
  }
  return true;
}

}  // namespace conveyor
