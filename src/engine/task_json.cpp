#include "engine/task_json.h"

#include "common/json_writer.h"
#include "engine/queue.h"

namespace conveyor {

void AppendTaskJson(std::string& out, const Task& task, bool with_token) {
  JsonWriter w(out);
  w.BeginObject();
  w.Field("id", task.id);
  w.Field("queue", std::string_view(task.queue->name()));
  w.Key("payload").Raw(task.payload);
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
  w.Key("result").Raw(task.result);
  w.Key("progress").Raw(task.progress);
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
  if (task.state == TaskState::kLeased) {
    w.Key("lease").BeginObject();
    if (with_token) w.Field("token", std::string_view(task.lease_token));
    w.Field("expires_at", task.lease_expires_at);
    w.Field("worker", std::string_view(task.lease_worker));
    w.EndObject();
  }
  w.EndObject();
}

}  // namespace conveyor
