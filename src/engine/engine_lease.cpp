// Engine, part 3: leasing and the two kinds of waiters (lease long-polls per queue, and
// GET ?wait_ms on one task). Waiters count against the server-wide --max-waiters.
#include <algorithm>

#include "engine/engine.h"
#include "engine/saturating.h"

namespace conveyor {
namespace {

Error TooManyWaiters() {
  return Error{ErrorCode::kTooManyRequests,
               "too many long-polling clients are waiting (--max-waiters); retry shortly"};
}

// About what a task's JSON costs in an answer. Error messages are escaped in JSON: they
// count twice to stay on the safe side.
size_t AnswerBytesOf(size_t payload, const std::string& result, const std::string& progress,
                     const std::string& worker, const std::vector<TaskError>& errors) {
  size_t bytes = 512 + 128 + payload + result.size() + progress.size() + worker.size();
  for (const TaskError& e : errors) bytes += 64 + 2 * e.message.size();
  return bytes;
}

}  // namespace

size_t Engine::AnswerBytes(const Task& task) {
  return AnswerBytesOf(task.payload_size, task.result(), task.progress(), task.lease_worker(),
                       task.errors());
}

size_t Engine::AnswerBytes(const TaskView& task) {
  return AnswerBytesOf(task.payload.size(), task.result, task.progress, task.lease_worker,
                       task.errors);
}

size_t Engine::LeasedBytes(const std::vector<Task*>& leased) {
  size_t bytes = 0;
  for (const Task* t : leased) bytes += AnswerBytes(*t);
  return bytes;
}

std::vector<Task*> Engine::LeaseNow(Queue& queue, uint32_t max, int64_t lease_ms,
                                    std::string_view worker, int64_t now, bool* truncated,
                                    size_t bytes, bool journaled) {
  std::vector<Task*> leased;
  if (Paused(queue)) return leased;
  while (leased.size() < max) {
    const Task* next = queue.ready().Next();  // what flow control lets go now
    if (next == nullptr) break;
    Task& task = *const_cast<Task*>(next);  // the engine owns its tasks
    if (task.deadline() <= now) {
      Kill(task, DeadReason::kExpired, now);
      journal_.TaskStateChanged(task);
      continue;
    }
    const size_t cost = AnswerBytes(task);
    if ((bytes > 0 || !leased.empty()) && bytes + cost > limits_.max_response_bytes) {
      if (truncated != nullptr) *truncated = true;
      break;
    }
    bytes += cost;
    queue.RecordReadyWait(now - task.ready_at);
    queue.ready().Taken(task);
    Grant(task, lease_ms, worker, now, journaled);
    leased.push_back(&task);
  }
  return leased;
}

void Engine::Grant(Task& task, int64_t lease_ms, std::string_view worker, int64_t now,
                   bool journaled) {
  task.attempts++;
  TaskCold& cold = task.cold();
  cold.lease_token = tokens_.Token128();
  cold.lease_worker = worker;
  cold.lease_expires_at = SaturatingAdd(now, EffectiveLeaseMs(task, lease_ms));
  SetState(task, TaskState::kLeased, now);
  task.queue->totals().leased++;
  if (journaled) journal_.TaskStateChanged(task);
}

LeaseResult Engine::BuildLeaseResult(const std::vector<Task*>& leased, bool truncated) {
  LeaseResult result;
  result.truncated = truncated;
  result.tasks.reserve(leased.size());
  for (Task* task : leased) {
    TaskView view;
    Error error;
    if (!View(*task, /*with_token=*/true, view, error)) {  // its payload is unreadable
      Unlease(*task, Now());
      if (result.tasks.empty()) result.error = std::move(error);
      continue;
    }
    result.error = Error{};
    result.tasks.push_back(std::move(view));
    result.granted.push_back(LeaseGrant{task->id, task->lease_token()});
  }
  return result;
}

void Engine::Unlease(Task& task, int64_t now) {
  if (task.attempts > 0) task.attempts--;
  task.cold().lease_token.clear();
  SetState(task, TaskState::kReady, now);
  journal_.TaskStateChanged(task);
}

Outcome<IdState> Engine::Defer(uint64_t id, std::string_view token, int64_t delay_ms) {
  StoredTask stored;
  Error refused;
  Task* task = HeldTask(id, token, stored, refused);
  if (task == nullptr) return {refused, {}};
  const int64_t now = Now();
  if (task->attempts > 0) task->attempts--;
  task->run_at = SaturatingAdd(now, std::max<int64_t>(delay_ms, 0));
  SetState(*task, delay_ms > 0 ? TaskState::kScheduled : TaskState::kReady, now);
  journal_.TaskChanged(*task);
  ServeWaiters();
  return IdStateOf(*task);
}

Outcome<uint32_t> Engine::ExpireLeasesOf(std::string_view queue_name, std::string_view worker,
                                         std::string_view message) {
  Tick();
  if (!journal_.writable()) return {StorageDown(), 0};
  Queue* queue = FindQueue(queue_name);
  if (queue == nullptr) return Ok<uint32_t>(0);
  const auto& leased = queue->ids_in(TaskState::kLeased);
  std::vector<uint64_t> ids(leased.begin(), leased.end());
  const int64_t now = Now();
  uint32_t n = 0;
  for (uint64_t id : ids) {
    Task* task = FindTask(id);
    if (task == nullptr || task->lease_worker() != worker) continue;
    AddError(*task, now, std::string(message));
    task->queue->totals().expired++;
    if (task->attempts >= task->max_attempts) {
      Kill(*task, DeadReason::kMaxAttempts, now);
    } else {
      SetState(*task, TaskState::kReady, now);
    }
    journal_.TaskChanged(*task);
    ++n;
  }
  ServeWaiters();
  return Ok(n);
}

void Engine::Drain() {
  draining_ = true;
  while (!waiter_deadlines_.empty()) CancelWaiter(waiter_deadlines_.begin()->second);
}

void Engine::Lease(std::string_view queue_name, LeaseRequest request,
                   Callback<void(LeaseResult)> done, uint64_t* waiter_id) {
  LeaseAny({std::string(queue_name)}, std::move(request), std::move(done), waiter_id);
}

Queue* Engine::MostUrgent(const std::vector<Queue*>& queues) {
  Queue* best = nullptr;
  const Task* best_head = nullptr;
  for (Queue* q : queues) {
    if (q == nullptr || Paused(*q)) continue;
    const Task* head = q->ready().Next();
    if (head == nullptr) continue;
    if (best == nullptr || BeforeAcrossQueues(*head, *best_head)) {
      best = q;
      best_head = head;
    }
  }
  return best;
}

std::optional<ReadyKey> Engine::BestReady(const std::vector<std::string>& queues) {
  Tick();
  std::vector<Queue*> found;
  for (const auto& name : queues) found.push_back(FindQueue(name));
  Queue* best = MostUrgent(found);
  if (best == nullptr) return std::nullopt;
  return ReadyKey::Of(*best->ready().Next());
}

void Engine::LeaseAny(const std::vector<std::string>& queue_names, LeaseRequest request,
                      Callback<void(LeaseResult)> done, uint64_t* waiter_id,
                      std::shared_ptr<LeaseClaim> claim) {
  Tick();
  if (!journal_.writable()) {
    LeaseResult refused;
    refused.error = StorageDown();
    done(std::move(refused));
    return;
  }
  if (draining_) request.wait_ms = 0;
  const int64_t now = Now();
  std::vector<Queue*> queues;
  for (const auto& name : queue_names) queues.push_back(FindQueue(name));
  // Tasks now: the most urgent among the queues, one at a time.
  std::vector<Task*> leased;
  bool truncated = false;
  bool claimed = false;
  while (leased.size() < request.max && !truncated) {
    Queue* best = MostUrgent(queues);
    if (best == nullptr) break;
    if (claim && !claimed) {
      if (claim->taken.exchange(true)) break;  // another shard won
      claimed = true;
    }
    auto one = LeaseNow(*best, 1, request.lease_ms, request.worker, now, &truncated,
                        leased.empty() ? 0 : LeasedBytes(leased), request.journaled);
    if (one.empty() && !truncated) continue;  // expired ready tasks were removed; look again
    leased.insert(leased.end(), one.begin(), one.end());
  }
  if (!leased.empty() || request.wait_ms <= 0 || (claim && claim->taken.load())) {
    done(BuildLeaseResult(leased, truncated));
    return;
  }
  // A wait on a queue never used parks on a bare queue, which is not listed and is
  // forgotten when the wait ends (a lease never creates a queue).
  size_t missing = 0;
  for (Queue* q : queues) missing += q == nullptr;
  if (queues_.size() + missing > limits_.max_queues) {
    LeaseResult refused;
    refused.error = TooManyQueues();
    done(std::move(refused));
    return;
  }
  for (size_t i = 0; i < queues.size(); ++i) {
    if (queues[i] == nullptr) queues[i] = &GetOrCreateQueue(queue_names[i]);
  }
  ParkLeaseWait(queues, std::move(request), std::move(done), waiter_id, std::move(claim));
}

void Engine::ParkLeaseWait(const std::vector<Queue*>& queues, LeaseRequest request,
                           Callback<void(LeaseResult)> done, uint64_t* waiter_id,
                           std::shared_ptr<LeaseClaim> claim) {
  if (!shared_.waiters.TryTake()) {
    LeaseResult busy;
    busy.error = TooManyWaiters();
    done(std::move(busy));
    for (Queue* q : queues) MaybeForget(*q);
    return;
  }
  const uint64_t id = next_waiter_id_++;
  LeaseWait wait;
  wait.max = request.max;
  wait.lease_ms = request.lease_ms;
  wait.deadline = SaturatingAdd(Mono(), request.wait_ms);
  wait.worker = std::move(request.worker);
  wait.journaled = request.journaled;
  wait.done = std::move(done);
  wait.claim = std::move(claim);
  for (Queue* q : queues) {
    if (std::any_of(wait.entries.begin(), wait.entries.end(),
                    [q](const auto& e) { return e.first == q; })) {
      continue;  // the same queue named twice waits once
    }
    q->waiters().push_back(id);
    wait.entries.emplace_back(q, std::prev(q->waiters().end()));
  }
  waiter_deadlines_.insert({wait.deadline, id});
  lease_waiters_.emplace(id, std::move(wait));
  if (waiter_id != nullptr) *waiter_id = id;
  for (Queue* q : queues) ArmFlow(*q);
}

Engine::LeaseWait Engine::Unpark(uint64_t wait_id) {
  auto it = lease_waiters_.find(wait_id);
  LeaseWait wait = std::move(it->second);
  lease_waiters_.erase(it);
  waiter_deadlines_.erase({wait.deadline, wait_id});
  for (auto& [queue, pos] : wait.entries) queue->waiters().erase(pos);
  shared_.waiters.Give();
  return wait;
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
    Queue* queue = queues_with_new_ready_.back();
    queues_with_new_ready_.pop_back();
    while (!queue->waiters().empty() && !Paused(*queue) && queue->ready().Next() != nullptr) {
      LeaseWait wait = Unpark(queue->waiters().front());
      std::vector<Task*> leased;
      bool truncated = false;
      // A wait spread over shards: only the first shard to take its claim leases.
      if (!wait.claim || !wait.claim->taken.exchange(true)) {
        leased = LeaseNow(*queue, wait.max, wait.lease_ms, wait.worker, now, &truncated, 0,
                          wait.journaled);
      }
      wait.done(BuildLeaseResult(leased, truncated));
      for (auto& [other, pos] : wait.entries) {
        if (other != queue) MaybeForget(*other);
      }
    }
    ArmFlow(*queue);
  }
}

void Engine::ArmFlow(Queue& queue) {
  int64_t due = kNever;
  if (!queue.waiters().empty() && !queue.ready().empty() && queue.ready().Next() == nullptr) {
    due = queue.ready().NextChangeAt();
  }
  if (due == queue.flow_due()) return;
  if (queue.flow_due() != kNever) flow_timers_.erase({queue.flow_due(), &queue});
  queue.flow_due() = due;
  if (due != kNever) flow_timers_.insert({due, &queue});
}

void Engine::CancelWaiter(uint64_t waiter_id) {
  if (lease_waiters_.contains(waiter_id)) {
    LeaseWait wait = Unpark(waiter_id);
    wait.done(BuildLeaseResult({}, false));
    for (auto& [queue, pos] : wait.entries) MaybeForget(*queue);
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
    if (Task* task = FindTask(waiter.task_id)) {
      waiter.done(ViewNow(*task));
    } else {
      waiter.done(Fail<TaskView>(ErrorCode::kNotFound, "no task with this id"));
    }
  }
}

void Engine::ReleaseUndelivered(const std::vector<LeaseGrant>& grants) {
  const int64_t now = Now();
  for (const LeaseGrant& grant : grants) {
    Task* task = FindTask(grant.id);
    if (task == nullptr || task->state != TaskState::kLeased ||
        task->lease_token() != grant.token) {
      continue;
    }
    Unlease(*task, now);
  }
  ServeWaiters();
}

void Engine::WaitTask(uint64_t id, int64_t wait_ms, Callback<void(Outcome<TaskView>)> done,
                      uint64_t* waiter_id) {
  Tick();
  if (draining_) wait_ms = 0;
  Task* task = FindTask(id);
  if (task == nullptr) {  // not in memory: finished (and in storage), or unknown
    done(GetTask(id));
    return;
  }
  if (wait_ms <= 0 || IsFinished(task->state)) {
    done(ViewNow(*task));
    return;
  }
  if (!shared_.waiters.TryTake()) {
    done(Outcome<TaskView>{TooManyWaiters(), {}});
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
    waiter.done(ViewNow(task));
  }
}

}  // namespace conveyor
