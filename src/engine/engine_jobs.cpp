// Engine, part 4: the job-style commands that the beanstalkd protocol needs (release with
// a priority and a delay, bury, kick, peek, delete in any state). They are plain task
// operations, named by what they do to a task; the engine still knows no protocol. On the
// shard's thread, like the rest of Engine.
#include <algorithm>

#include "engine/engine.h"
#include "engine/saturating.h"

namespace conveyor {
namespace {

void CountUp(uint32_t& n) {
  if (n < UINT32_MAX) ++n;
}

}  // namespace

Outcome<IdState> Engine::Release(uint64_t id, std::string_view token, int32_t priority,
                                 int64_t delay_ms) {
  StoredTask stored;
  Error refused;
  Task* task = HeldTask(id, token, stored, refused);
  if (task == nullptr) return {refused, {}};
  const int64_t now = Now();
  task->priority = priority;  // a leased task is in no index ordered by priority
  CountUp(task->cold().releases);
  task->run_at = SaturatingAdd(now, std::max<int64_t>(delay_ms, 0));
  SetState(*task, delay_ms > 0 ? TaskState::kScheduled : TaskState::kReady, now);
  journal_.TaskChanged(*task);
  ServeWaiters();
  return IdStateOf(*task);
}

Outcome<IdState> Engine::Bury(uint64_t id, std::string_view token, int32_t priority) {
  StoredTask stored;
  Error refused;
  Task* task = HeldTask(id, token, stored, refused);
  if (task == nullptr) return {refused, {}};
  task->priority = priority;
  CountUp(task->cold().buries);
  Kill(*task, DeadReason::kBuried, Now());
  journal_.TaskChanged(*task);
  return IdStateOf(*task);
}

std::vector<Task*> Engine::EarliestScheduled(const Queue& queue, size_t n) {
  std::vector<Task*> out;
  for (const auto& [run_at, id] : queue.scheduled()) {
    if (out.size() >= n) break;
    if (Task* task = FindTask(id)) out.push_back(task);
  }
  return out;
}

// A scheduled task ready now (a kick): its run time becomes now.
void Engine::RunNow(Task& task) {
  const int64_t now = Now();
  SetState(task, TaskState::kReady, now);  // first: the scheduled index is keyed by run_at
  task.run_at = now;
  journal_.TaskChanged(task);
}

Outcome<uint32_t> Engine::Kick(std::string_view queue_name, uint32_t bound) {
  Tick();
  if (!journal_.writable()) return {StorageDown(), {}};
  Queue* queue = FindQueue(queue_name);
  if (queue == nullptr || bound == 0) return Ok<uint32_t>(0);
  uint32_t kicked = 0;
  if (queue->count(TaskState::kDead) > 0) {
    const auto& dead = queue->ids_in(TaskState::kDead);
    std::vector<uint64_t> ids(dead.begin(),
                              std::next(dead.begin(), std::min<size_t>(bound, dead.size())));
    for (uint64_t id : ids) {
      Task* task = nullptr;
      StoredTask stored;
      if (Outcome<IdState> refused; !Locate(id, task, stored, refused)) {
        if (kicked == 0) return {refused.error, 0};
        break;  // a storage error part way: what was kicked stays kicked
      }
      CountUp(task->cold().kicks);
      RetryDead(task, stored);
      ++kicked;
    }
  } else {
    for (Task* task : EarliestScheduled(*queue, bound)) {
      CountUp(task->cold().kicks);
      RunNow(*task);
      ++kicked;
    }
  }
  ServeWaiters();
  return Ok(kicked);
}

Outcome<IdState> Engine::KickTask(uint64_t id) {
  Tick();
  if (!journal_.writable()) return {StorageDown(), {}};
  Task* task = nullptr;
  StoredTask stored;
  if (Outcome<IdState> refused; !Locate(id, task, stored, refused)) return refused;
  if (task->state == TaskState::kDead) {
    CountUp(task->cold().kicks);
    task = RetryDead(task, stored);
  } else if (task->state == TaskState::kScheduled) {
    CountUp(task->cold().kicks);
    RunNow(*task);
  } else {
    return Fail<IdState>(ErrorCode::kInvalidState,
                         std::string("only a dead or scheduled task can be kicked; this one is ") +
                             std::string(TaskStateName(task->state)));
  }
  ServeWaiters();
  return IdStateOf(*task);
}

Outcome<TaskView> Engine::Peek(std::string_view queue_name, TaskState state) {
  Tick();
  Queue* queue = FindQueue(queue_name);
  const Task* found = nullptr;
  if (queue != nullptr && state == TaskState::kReady && !queue->ready().empty()) {
    found = queue->ready().AnyHead();
  } else if (queue != nullptr && state == TaskState::kScheduled) {
    std::vector<Task*> next = EarliestScheduled(*queue, 1);
    if (!next.empty()) found = next.front();
  } else if (queue != nullptr && state == TaskState::kDead && queue->count(state) > 0) {
    return GetTask(*queue->ids_in(state).begin());
  }
  if (found == nullptr) {
    return Fail<TaskView>(
        ErrorCode::kNotFound,
        std::string("no ") + std::string(TaskStateName(state)) + " task in this queue");
  }
  return ViewNow(*found);
}

LeaseResult Engine::LeaseTask(uint64_t id, const LeaseRequest& request) {
  Tick();
  LeaseResult out;
  if (!journal_.writable()) {
    out.error = StorageDown();
    return out;
  }
  Task* task = nullptr;
  StoredTask stored;
  if (Outcome<IdState> refused; !Locate(id, task, stored, refused)) {
    out.error = std::move(refused.error);
    return out;
  }
  if (task->state == TaskState::kDead) {
    task = Unfinished(task, stored);
    task->dead_reason = DeadReason::kNone;
  } else if (task->state != TaskState::kReady && task->state != TaskState::kScheduled) {
    out.error = Error{ErrorCode::kInvalidState,
                      std::string("only a ready, scheduled or dead task can be leased by id; "
                                  "this one is ") +
                          std::string(TaskStateName(task->state))};
    return out;
  }
  Grant(*task, request.lease_ms, request.worker, Now());
  return BuildLeaseResult({task}, /*truncated=*/false);
}

Error Engine::PauseQueue(std::string_view name, int64_t delay_ms, bool create) {
  Tick();
  Queue* queue = FindQueue(name);
  if (queue == nullptr && create) {
    if (queues_.size() >= limits_.max_queues) return TooManyQueues();
    queue = &GetOrCreateQueue(name);
  }
  if (queue == nullptr) return Error{ErrorCode::kNotFound, "no such queue"};
  queue->totals().pauses++;
  if (queue->pause_until() != 0) pause_timers_.erase({queue->pause_until(), queue});
  if (delay_ms <= 0) {
    queue->set_pause(0, 0);
    if (!Paused(*queue) && !queue->ready().empty()) MarkReady(*queue);
    ServeWaiters();
    MaybeForget(*queue);
    return Error{};
  }
  queue->set_pause(SaturatingAdd(Mono(), delay_ms), delay_ms);
  pause_timers_.insert({queue->pause_until(), queue});
  return Error{};
}

Outcome<IdState> Engine::Delete(uint64_t id, std::string_view token) {
  Tick();
  if (!journal_.writable()) return {StorageDown(), {}};
  const int64_t now = Now();
  Task* task = nullptr;
  StoredTask stored;
  if (Outcome<IdState> refused; !Locate(id, task, stored, refused)) return refused;
  switch (task->state) {
    case TaskState::kLeased:
      if (task->lease_token() != token) return {LeaseMismatchError(*task), {}};
      task->queue->totals().acked++;
      SetState(*task, TaskState::kSucceeded, now);
      journal_.TaskStateChanged(*task);
      break;
    case TaskState::kScheduled:
    case TaskState::kReady:
      SetState(*task, TaskState::kCanceled, now);
      journal_.TaskStateChanged(*task);
      break;
    case TaskState::kDead:
      task = Unfinished(task, stored);
      task->dead_reason = DeadReason::kNone;
      SetState(*task, TaskState::kCanceled, now);
      journal_.TaskChanged(*task);
      break;
    default:
      return Fail<IdState>(ErrorCode::kInvalidState, std::string("the task is already ") +
                                                         std::string(TaskStateName(task->state)));
  }
  task->queue->totals().deletes++;
  ServeWaiters();
  return IdStateOf(*task);
}

}  // namespace conveyor
