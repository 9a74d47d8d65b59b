// Engine, part 3: leasing and the two kinds of waiters (lease long-polls per queue, and
// GET ?wait_ms on one task). Waiters count against the server-wide --max-waiters.
#include <algorithm>

#include "engine/engine.h"
#include "engine/task_json.h"

namespace conveyor {
namespace {

int64_t SaturatingAdd(int64_t a, int64_t b) {
  if (b > 0 && a > kNever - b) return kNever;
  return a + b;
}

Error TooManyWaiters() {
  return Error{ErrorCode::kTooManyRequests,
               "too many long-polling clients are waiting (--max-waiters); retry shortly"};
}

}  // namespace

size_t Engine::AnswerBytes(const Task& task) {
  size_t bytes = 512 + task.payload.size() + task.result.size() + task.progress.size() +
                 task.lease_worker.size() + task.queue->name().size();
  // Error messages are escaped in JSON: count them twice to stay on the safe side.
  for (const TaskError& e : task.errors) bytes += 64 + 2 * e.message.size();
  return bytes;
}

std::vector<Task*> Engine::LeaseNow(Queue& queue, uint32_t max, int64_t lease_ms,
                                    std::string_view worker, int64_t now, bool* truncated) {
  std::vector<Task*> leased;
  if (queue.config().paused) return leased;
  size_t bytes = 0;
  while (leased.size() < max && !queue.ready().empty()) {
    Task& task = *FindTask(queue.ready().begin()->id);
    if (task.deadline <= now) {
      Kill(task, DeadReason::kExpired, now);
      journal_.TaskChanged(task);
      continue;
    }
    const size_t cost = AnswerBytes(task);
    if (!leased.empty() && bytes + cost > limits_.max_response_bytes) {
      if (truncated != nullptr) *truncated = true;
      break;
    }
    bytes += cost;
    queue.RecordReadyWait(now - task.ready_at);
    task.attempts++;
    task.lease_token = tokens_.Token128();
    task.lease_worker = std::string(worker);
    task.lease_expires_at = SaturatingAdd(now, EffectiveLeaseMs(task, lease_ms));
    SetState(task, TaskState::kLeased, now);
    queue.totals().leased++;
    journal_.TaskChanged(task);
    leased.push_back(&task);
  }
  return leased;
}

LeaseResult Engine::BuildLeaseResult(const std::vector<Task*>& leased, bool truncated) const {
  LeaseResult result;
  result.truncated = truncated;
  result.body = "{\"tasks\":[";
  for (size_t i = 0; i < leased.size(); ++i) {
    if (i > 0) result.body.push_back(',');
    AppendTaskJson(result.body, *leased[i], /*with_token=*/true);
    result.granted.push_back(LeaseGrant{leased[i]->id, leased[i]->lease_token});
  }
  result.body += truncated ? "],\"truncated\":true}" : "]}";
  return result;
}

void Engine::Drain() {
  draining_ = true;
  while (!waiter_deadlines_.empty()) CancelWaiter(waiter_deadlines_.begin()->second);
}

void Engine::Lease(std::string_view queue_name, LeaseRequest request,
                   std::function<void(LeaseResult)> done, uint64_t* waiter_id) {
  Tick();
  if (draining_) request.wait_ms = 0;
  if (!journal_.writable()) {
    LeaseResult refused;
    refused.error = StorageDown();
    done(std::move(refused));
    return;
  }
  const int64_t now = Now();
  Queue* queue = FindQueue(queue_name);
  if (queue != nullptr) {
    bool truncated = false;
    auto leased = LeaseNow(*queue, request.max, request.lease_ms, request.worker, now, &truncated);
    if (!leased.empty() || request.wait_ms <= 0) {
      done(BuildLeaseResult(leased, truncated));
      return;
    }
  } else if (request.wait_ms <= 0) {
    done(BuildLeaseResult({}, false));
    return;
  }
  if (queue == nullptr && queues_.size() >= limits_.max_queues) {
    LeaseResult refused;
    refused.error = TooManyQueues();
    done(std::move(refused));
    return;
  }
  // A wait on a queue never used parks on a bare queue, which is not listed and is
  // forgotten when the wait ends (a lease never creates a queue).
  Queue& q = queue != nullptr ? *queue : GetOrCreateQueue(queue_name);
  ParkLeaseWaiter(q, std::move(request), std::move(done), waiter_id);
}

void Engine::ParkLeaseWaiter(Queue& queue, LeaseRequest request,
                             std::function<void(LeaseResult)> done, uint64_t* waiter_id) {
  if (!shared_.waiters.TryTake()) {
    LeaseResult busy;
    busy.error = TooManyWaiters();
    done(std::move(busy));
    MaybeForget(queue);
    return;
  }
  const uint64_t id = next_waiter_id_++;
  const int64_t deadline = SaturatingAdd(Mono(), request.wait_ms);
  queue.waiters().push_back(LeaseWaiter{id, request.max, request.lease_ms, deadline,
                                        std::move(request.worker), std::move(done)});
  lease_waiters_.emplace(id, std::make_pair(&queue, std::prev(queue.waiters().end())));
  waiter_deadlines_.insert({deadline, id});
  if (waiter_id != nullptr) *waiter_id = id;
}

LeaseWaiter Engine::UnparkFront(Queue& queue) {
  LeaseWaiter waiter = std::move(queue.waiters().front());
  queue.waiters().pop_front();
  lease_waiters_.erase(waiter.id);
  waiter_deadlines_.erase({waiter.deadline, waiter.id});
  shared_.waiters.Give();
  return waiter;
}

void Engine::MarkReady(Queue& queue) {
  if (queue.waiters().empty()) return;
  if (std::find(queues_with_new_ready_.begin(), queues_with_new_ready_.end(), &queue) ==
      queues_with_new_ready_.end()) {
    queues_with_new_ready_.push_back(&queue);
  }
}

void Engine::ServeWaiters() {
  const int64_t now = Now();
  while (!queues_with_new_ready_.empty()) {
    Queue& queue = *queues_with_new_ready_.back();
    queues_with_new_ready_.pop_back();
    while (!queue.waiters().empty() && !queue.ready().empty() && !queue.config().paused) {
      LeaseWaiter waiter = UnparkFront(queue);
      bool truncated = false;
      auto leased = LeaseNow(queue, waiter.max, waiter.lease_ms, waiter.worker, now, &truncated);
      waiter.done(BuildLeaseResult(leased, truncated));
    }
  }
}

void Engine::CancelWaiter(uint64_t waiter_id) {
  if (auto it = lease_waiters_.find(waiter_id); it != lease_waiters_.end()) {
    auto [queue, pos] = it->second;
    LeaseWaiter waiter = std::move(*pos);
    queue->waiters().erase(pos);
    lease_waiters_.erase(it);
    waiter_deadlines_.erase({waiter.deadline, waiter.id});
    shared_.waiters.Give();
    waiter.done(BuildLeaseResult({}, false));
    MaybeForget(*queue);
    return;
  }
  if (auto it = task_waiters_.find(waiter_id); it != task_waiters_.end()) {
    TaskWaiter waiter = std::move(it->second);
    task_waiters_.erase(it);
    waiter_deadlines_.erase({waiter.deadline, waiter_id});
    shared_.waiters.Give();
    auto& list = task_waiters_by_task_[waiter.task_id];
    list.erase(std::remove(list.begin(), list.end(), waiter_id), list.end());
    if (list.empty()) task_waiters_by_task_.erase(waiter.task_id);
    Task* task = FindTask(waiter.task_id);
    waiter.done(task != nullptr ? TaskReply(*task)
                                : Fail(ErrorCode::kNotFound, "no task with this id"));
  }
}

void Engine::ReleaseUndelivered(const std::vector<LeaseGrant>& grants) {
  const int64_t now = Now();
  for (const LeaseGrant& grant : grants) {
    Task* task = FindTask(grant.id);
    if (task == nullptr || task->state != TaskState::kLeased || task->lease_token != grant.token) {
      continue;
    }
    if (task->attempts > 0) task->attempts--;
    task->lease_token.clear();
    SetState(*task, TaskState::kReady, now);
    journal_.TaskChanged(*task);
  }
  ServeWaiters();
}

void Engine::WaitTask(uint64_t id, int64_t wait_ms, std::function<void(Reply)> done,
                      uint64_t* waiter_id) {
  Tick();
  if (draining_) wait_ms = 0;
  Task* task = FindTask(id);
  if (task == nullptr) {
    done(Fail(ErrorCode::kNotFound, "no task with this id"));
    return;
  }
  if (wait_ms <= 0 || IsFinished(task->state)) {
    done(TaskReply(*task));
    return;
  }
  if (!shared_.waiters.TryTake()) {
    done(Reply{TooManyWaiters(), {}});
    return;
  }
  const uint64_t wid = next_waiter_id_++;
  const int64_t deadline = SaturatingAdd(Mono(), wait_ms);
  task_waiters_.emplace(wid, TaskWaiter{id, deadline, std::move(done)});
  task_waiters_by_task_[id].push_back(wid);
  waiter_deadlines_.insert({deadline, wid});
  if (waiter_id != nullptr) *waiter_id = wid;
}

void Engine::FinishTaskWaiters(const Task& task) {
  auto it = task_waiters_by_task_.find(task.id);
  if (it == task_waiters_by_task_.end()) return;
  std::vector<uint64_t> ids = std::move(it->second);
  task_waiters_by_task_.erase(it);
  for (uint64_t wid : ids) {
    auto w = task_waiters_.find(wid);
    if (w == task_waiters_.end()) continue;
    TaskWaiter waiter = std::move(w->second);
    task_waiters_.erase(w);
    waiter_deadlines_.erase({waiter.deadline, wid});
    shared_.waiters.Give();
    waiter.done(TaskReply(task));
  }
}

}  // namespace conveyor
