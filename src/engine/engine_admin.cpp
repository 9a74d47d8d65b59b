// Engine, part 7: operators' bulk commands — retry every dead task of a queue, purge its
// finished tasks of one state, delete an empty queue. Each call does at most
// kMaxBulkPerCall tasks, so that one request never holds the shard's thread (or one
// journal batch) for long; the service repeats it. On the shard's thread.
#include <algorithm>

#include "engine/engine.h"

namespace conveyor {

Outcome<BulkResult> Engine::RetryDeadTasks(std::string_view queue_name, uint64_t limit) {
  Tick();
  if (!journal_.writable()) return {StorageDown(), {}};
  Queue* queue = FindQueue(queue_name);
  if (queue == nullptr) return Ok(BulkResult{});
  const auto& dead = queue->ids_in(TaskState::kDead);
  const uint64_t take = std::min<uint64_t>({limit, kMaxBulkPerCall, dead.size()});
  std::vector<uint64_t> ids(dead.begin(), std::next(dead.begin(), static_cast<long>(take)));
  BulkResult out;
  for (uint64_t id : ids) {
    Task* task = nullptr;
    StoredTask stored;
    Error error;
    const TaskReader::Result found = FindOrLoad(id, task, stored, error);
    if (found == TaskReader::Result::kNotFound) continue;          // purged meanwhile
    if (found == TaskReader::Result::kError) return {error, out};  // what is done stays done
    if (task->state != TaskState::kDead) continue;
    RetryDead(task, stored);
    ++out.done;
  }
  out.remaining = queue->ids_in(TaskState::kDead).size();  // left for another call
  ServeWaiters();
  return Ok(out);
}

Outcome<BulkResult> Engine::PurgeTasks(std::string_view queue_name, TaskState state,
                                       uint64_t limit) {
  Tick();
  if (!journal_.writable()) return {StorageDown(), {}};
  if (!IsFinished(state)) {
    return Fail<BulkResult>(ErrorCode::kInvalidField,
                            "state must be succeeded, dead or canceled (finished tasks)");
  }
  Queue* queue = FindQueue(queue_name);
  if (queue == nullptr) return Ok(BulkResult{});
  const auto& finished = queue->ids_in(state);
  const uint64_t take = std::min<uint64_t>({limit, kMaxBulkPerCall, finished.size()});
  std::vector<uint64_t> ids(finished.begin(), std::next(finished.begin(), static_cast<long>(take)));
  BulkResult out;
  for (uint64_t id : ids) {
    PurgeFinished(*queue, id);  // (its entry in the purge FIFO is skipped when it comes)
    ++out.done;
  }
  out.remaining = queue->ids_in(state).size();
  MaybeForget(*queue);
  return Ok(out);
}

Error Engine::DeleteQueue(std::string_view queue_name) {
  Tick();
  if (!journal_.writable()) return StorageDown();
  Queue* queue = FindQueue(queue_name);
  if (queue == nullptr || IsBare(*queue)) {
    return Error{ErrorCode::kNotFound, "no such queue"};
  }
  if (!queue->empty()) {
    uint64_t n = 0;
    for (int i = 0; i < kTaskStateCount; ++i) n += queue->count(static_cast<TaskState>(i));
    return Error{ErrorCode::kInvalidState,
                 "the queue still has " + std::to_string(n) +
                     " tasks; cancel or finish the unfinished ones and purge the finished ones "
                     "(POST /v1/queues/" +
                     std::string(queue_name) + "/purge?state=…) first"};
  }
  journal_.QueueRemoved(queue->name());
  if (queue->pause_until() != 0) pause_timers_.erase({queue->pause_until(), queue});
  queue->set_pause(0, 0);
  queue->set_config(QueueConfig{});
  MaybeForget(*queue);  // (kept, bare and unlisted, while lease waits are parked on it)
  return {};
}

}  // namespace conveyor
