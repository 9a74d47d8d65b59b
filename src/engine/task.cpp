#include "engine/task.h"

#include <cstring>
#include <new>

#include "engine/queue.h"
#include "engine/task_reader.h"
#include "engine/task_view.h"

namespace conveyor {

std::string_view TaskStateName(TaskState state) {
  switch (state) {
    case TaskState::kScheduled:
      return "scheduled";
    case TaskState::kReady:
      return "ready";
    case TaskState::kLeased:
      return "leased";
    case TaskState::kSucceeded:
      return "succeeded";
    case TaskState::kDead:
      return "dead";
    case TaskState::kCanceled:
      return "canceled";
  }
  return "ready";
}

std::optional<TaskState> ParseTaskState(std::string_view name) {
  for (int i = 0; i < kTaskStateCount; ++i) {
    auto state = static_cast<TaskState>(i);
    if (TaskStateName(state) == name) return state;
  }
  return std::nullopt;
}

std::string_view DeadReasonName(DeadReason reason) {
  switch (reason) {
    case DeadReason::kNone:
      return "";
    case DeadReason::kMaxAttempts:
      return "max_attempts";
    case DeadReason::kExpired:
      return "expired";
    case DeadReason::kNack:
      return "nack";
    case DeadReason::kBuried:
      return "buried";
  }
  return "";
}

struct TaskAllocation {
  static void Mark(Task& task) { task.payload_inline.on_ = true; }
};

TaskPtr NewTask(Task&& fields, const std::string_view* payload) {
  const size_t extra = payload != nullptr ? payload->size() : 0;
  void* memory = ::operator new(sizeof(Task) + extra);
  Task* task = new (memory) Task(std::move(fields));
  if (payload != nullptr) {
    task->payload_size = static_cast<uint32_t>(payload->size());
    if (!payload->empty())
      std::memcpy(static_cast<char*>(memory) + sizeof(Task), payload->data(), payload->size());
    TaskAllocation::Mark(*task);
  }
  return TaskPtr(task);
}

void TaskDeleter::operator()(Task* task) const {
  ReadyIndex::Release(task->key);
  task->~Task();
  ::operator delete(task);
}

TaskView ViewOf(const Task& task, bool with_token) {
  return ViewOf(task, task.queue->name(), with_token);
}

TaskView ViewOf(const Task& task, std::string_view queue, bool with_token) {
  TaskView v;
  v.id = task.id;
  v.queue = std::string(queue);
  v.payload_kind = task.payload_kind;
  v.payload = task.payload();  // the Engine fills it from storage when not in memory
  v.priority = task.priority;
  v.state = task.state;
  v.dead_reason = task.dead_reason;
  v.attempts = task.attempts;
  v.max_attempts = task.max_attempts;
  v.created_at = task.created_at;
  v.run_at = task.run_at;
  v.deadline = task.deadline();
  v.lease_ms = task.lease_ms();
  v.result = task.result();
  v.progress = task.progress();
  v.errors = task.errors();
  v.idempotency_key = task.idempotency_key();
  if (task.key != nullptr) v.key = task.key->name;
  v.unique_key = task.unique_key();
  v.unique_until = task.unique_until();
  v.unique_active = task.unique_active();
  v.releases = task.releases();
  v.buries = task.buries();
  v.kicks = task.kicks();
  if (task.state == TaskState::kLeased) {
    v.lease_expires_at = task.lease_expires_at();
    v.lease_worker = task.lease_worker();
    if (with_token) v.lease_token = task.lease_token();
  }
  return v;
}

TaskView ViewOf(const StoredTask& stored) {
  TaskView v = ViewOf(stored.task, stored.queue, /*with_token=*/false);
  v.payload = stored.payload;
  v.key = stored.key;
  return v;
}

}  // namespace conveyor
