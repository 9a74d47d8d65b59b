#include "engine/engine.h"

#include <algorithm>
#include <cstdio>

#include "common/json_writer.h"
#include "common/task_id.h"
#include "engine/backoff.h"
#include "engine/task_json.h"

namespace conveyor {
namespace {

// Debian's Abseil has its own string_view type; heterogeneous lookup needs that one.
absl::string_view AbslView(std::string_view s) { return absl::string_view(s.data(), s.size()); }

int64_t SaturatingAdd(int64_t a, int64_t b) {
  if (b > 0 && a > kNever - b) return kNever;
  return a + b;
}

}  // namespace

Engine::Engine(const Clock& clock, Journal& journal, std::atomic<uint64_t>& next_sequence,
               const Limits& limits, size_t max_waiters, uint64_t seed)
    : clock_(clock),
      journal_(journal),
      next_sequence_(next_sequence),
      limits_(limits),
      max_waiters_(max_waiters),
      random_(seed) {}

Reply Engine::Fail(ErrorCode code, std::string message) {
  return Reply{Error{code, std::move(message)}, {}};
}

Error Engine::StorageDown() {
  return Error{ErrorCode::kStorageUnavailable,
               "storage cannot take changes right now (a write failed, or fsyncs are behind); "
               "retry shortly; reads still work"};
}

Error Engine::TooManyQueues() const {
  return Error{ErrorCode::kTooManyRequests,
               "this server holds the most queues it is configured for (--max-queues)"};
}

Queue& Engine::GetOrCreateQueue(std::string_view name) {
  auto it = queues_.find(AbslView(name));
  if (it != queues_.end()) return *it->second;
  auto queue = std::make_unique<Queue>(std::string(name));
  Queue& ref = *queue;
  queues_.emplace(std::string(name), std::move(queue));
  return ref;
}

Queue* Engine::FindQueue(std::string_view name) {
  auto it = queues_.find(AbslView(name));
  return it == queues_.end() ? nullptr : it->second.get();
}

Task* Engine::FindTask(uint64_t id) {
  auto it = tasks_.find(id);
  return it == tasks_.end() ? nullptr : it->second.get();
}

int64_t Engine::EffectiveLeaseMs(const Task& task, int64_t requested) const {
  if (requested > 0) return requested;
  if (task.lease_ms > 0) return task.lease_ms;
  return task.queue->config().lease_ms;
}

std::string Engine::NewToken() {
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(random_()),
                static_cast<unsigned long long>(random_()));
  return std::string(buf, 32);
}

// ---- state changes ---------------------------------------------------------------------

void Engine::SetState(Task& task, TaskState state, int64_t now) {
  task.queue->Remove(task);  // indexes are keyed by the fields as they are now
  task.state = state;
  if (state == TaskState::kReady) {
    task.ready_at = now;
    MarkReady(*task.queue);
  }
  if (IsFinished(state)) task.finished_at = now;
  task.queue->Add(task);
  Rearm(task);
  if (IsFinished(state)) FinishTaskWaiters(task);
}

void Engine::Kill(Task& task, DeadReason reason, int64_t now) {
  task.dead_reason = reason;
  task.queue->totals().dead++;
  SetState(task, TaskState::kDead, now);
}

void Engine::Rearm(Task& task) {
  int64_t due = kNever;
  switch (task.state) {
    case TaskState::kScheduled:
      due = std::min(task.run_at, task.deadline);
      break;
    case TaskState::kReady:
      due = task.deadline;
      break;
    case TaskState::kLeased:
      due = task.lease_expires_at;
      break;
    default:
      due = SaturatingAdd(task.finished_at, task.queue->config().retention_ms);
      break;
  }
  if (due == task.timer_due) return;
  if (task.timer_due != kNever) timers_.erase({task.timer_due, task.id});
  task.timer_due = due;
  if (due != kNever) timers_.insert({due, task.id});
}

void Engine::AddError(Task& task, int64_t now, std::string_view message) {
  if (message.size() > limits_.max_error_message_bytes) {
    message = message.substr(0, limits_.max_error_message_bytes);
  }
  if (task.errors.size() >= limits_.max_errors_kept) task.errors.erase(task.errors.begin());
  task.errors.push_back(TaskError{now, task.attempts, std::string(message)});
}

void Engine::Fire(Task& task, int64_t now) {
  switch (task.state) {
    case TaskState::kScheduled:
    case TaskState::kReady:
      if (task.deadline <= now) {
        Kill(task, DeadReason::kExpired, now);
      } else if (task.state == TaskState::kScheduled && task.run_at <= now) {
        SetState(task, TaskState::kReady, now);
      } else {
        Rearm(task);
        return;
      }
      journal_.TaskChanged(task);
      return;
    case TaskState::kLeased:
      if (task.lease_expires_at <= now) {
        ExpireLease(task, now);
      } else {
        Rearm(task);
      }
      return;
    default:
      if (SaturatingAdd(task.finished_at, task.queue->config().retention_ms) <= now) {
        Purge(task);
      } else {
        Rearm(task);
      }
      return;
  }
}

void Engine::ExpireLease(Task& task, int64_t now) {
  task.queue->totals().expired++;
  AddError(task, now, "lease expired");
  if (task.attempts >= task.max_attempts) {
    Kill(task, DeadReason::kMaxAttempts, now);
  } else if (task.deadline <= now) {
    // It can no longer be leased before its deadline.
    Kill(task, DeadReason::kExpired, now);
  } else {
    SetState(task, TaskState::kReady, now);
  }
  journal_.TaskChanged(task);
}

void Engine::Purge(Task& task) {
  Queue& queue = *task.queue;
  queue.Remove(task);
  if (!task.idempotency_key.empty()) {
    auto it = queue.idempotency().find(task.idempotency_key);
    if (it != queue.idempotency().end() && it->second == task.id) queue.idempotency().erase(it);
  }
  if (task.timer_due != kNever) timers_.erase({task.timer_due, task.id});
  journal_.TaskRemoved(task.id);
  tasks_.erase(task.id);
}

void Engine::Tick() {
  const int64_t now = Now();
  while (!timers_.empty() && timers_.begin()->first <= now) {
    uint64_t id = timers_.begin()->second;
    timers_.erase(timers_.begin());
    Task* task = FindTask(id);
    if (task == nullptr) continue;
    task->timer_due = kNever;
    Fire(*task, now);
  }
  ServeWaiters();
  while (!waiter_deadlines_.empty() && waiter_deadlines_.begin()->first <= now) {
    CancelWaiter(waiter_deadlines_.begin()->second);
  }
}

int64_t Engine::NextWakeup() const {
  int64_t next = kNever;
  if (!timers_.empty()) next = timers_.begin()->first;
  if (!waiter_deadlines_.empty()) next = std::min(next, waiter_deadlines_.begin()->first);
  return next;
}

// ---- enqueue ---------------------------------------------------------------------------

void Engine::InsertTask(Queue& queue, const TaskSpec& spec, int64_t now, EnqueuedTask& out) {
  if (!spec.idempotency_key.empty()) {
    auto it = queue.idempotency().find(spec.idempotency_key);
    if (it != queue.idempotency().end()) {
      if (Task* first = FindTask(it->second)) {
        out = EnqueuedTask{first->id, first->state, true};
        return;
      }
    }
  }
  auto task = std::make_unique<Task>();
  Task& t = *task;
  uint64_t sequence = next_sequence_.fetch_add(1, std::memory_order_relaxed);
  t.id = MakeTaskId(sequence, SlotOfQueue(queue.name()));
  t.queue = &queue;
  t.payload = spec.payload;
  t.priority = spec.priority;
  t.max_attempts = spec.max_attempts.value_or(queue.config().max_attempts);
  t.created_at = now;
  t.run_at = spec.run_at ? *spec.run_at : spec.delay_ms ? SaturatingAdd(now, *spec.delay_ms) : now;
  t.deadline = spec.deadline.value_or(kNever);
  t.lease_ms = spec.lease_ms;
  t.idempotency_key = spec.idempotency_key;
  t.state = t.run_at > now ? TaskState::kScheduled : TaskState::kReady;
  t.ready_at = now;
  if (t.state == TaskState::kReady) t.run_at = std::max(t.run_at, now);
  tasks_.emplace(t.id, std::move(task));
  queue.Add(t);
  queue.totals().enqueued++;
  if (!t.idempotency_key.empty()) queue.idempotency()[t.idempotency_key] = t.id;
  if (t.state == TaskState::kReady) MarkReady(queue);
  Rearm(t);
  if (t.deadline <= now) Kill(t, DeadReason::kExpired, now);  // accepted, and ends dead
  journal_.TaskCreated(t);
  out = EnqueuedTask{t.id, t.state, false};
}

EnqueueResult Engine::Enqueue(std::string_view queue_name, std::vector<TaskSpec> specs) {
  Tick();
  if (!journal_.writable()) return EnqueueResult{StorageDown(), {}};
  const int64_t now = Now();
  EnqueueResult result;
  if (FindQueue(queue_name) == nullptr && queues_.size() >= limits_.max_queues) {
    result.error = TooManyQueues();
    return result;
  }
  Queue& queue = GetOrCreateQueue(queue_name);
  result.tasks.resize(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) InsertTask(queue, specs[i], now, result.tasks[i]);
  ServeWaiters();
  return result;
}

// ---- lease -----------------------------------------------------------------------------

std::vector<Task*> Engine::LeaseNow(Queue& queue, uint32_t max, int64_t lease_ms,
                                    std::string_view worker, int64_t now) {
  std::vector<Task*> leased;
  if (queue.config().paused) return leased;
  while (leased.size() < max && !queue.ready().empty()) {
    Task& task = *FindTask(queue.ready().begin()->id);
    if (task.deadline <= now) {
      Kill(task, DeadReason::kExpired, now);
      journal_.TaskChanged(task);
      continue;
    }
    queue.RecordReadyWait(now - task.ready_at);
    task.attempts++;
    task.lease_token = NewToken();
    task.lease_worker = std::string(worker);
    task.lease_expires_at = SaturatingAdd(now, EffectiveLeaseMs(task, lease_ms));
    SetState(task, TaskState::kLeased, now);
    queue.totals().leased++;
    journal_.TaskChanged(task);
    leased.push_back(&task);
  }
  return leased;
}

LeaseResult Engine::BuildLeaseResult(const std::vector<Task*>& leased) const {
  LeaseResult result;
  result.body = "{\"tasks\":[";
  for (size_t i = 0; i < leased.size(); ++i) {
    if (i > 0) result.body.push_back(',');
    AppendTaskJson(result.body, *leased[i], /*with_token=*/true);
    result.granted.push_back(LeaseGrant{leased[i]->id, leased[i]->lease_token});
  }
  result.body += "]}";
  return result;
}

void Engine::Lease(std::string_view queue_name, LeaseRequest request,
                   std::function<void(LeaseResult)> done, uint64_t* waiter_id) {
  Tick();
  if (!journal_.writable()) {
    LeaseResult refused;
    refused.error = StorageDown();
    done(std::move(refused));
    return;
  }
  const int64_t now = Now();
  Queue* queue = FindQueue(queue_name);
  if (queue != nullptr) {
    auto leased = LeaseNow(*queue, request.max, request.lease_ms, request.worker, now);
    if (!leased.empty() || request.wait_ms <= 0) {
      done(BuildLeaseResult(leased));
      return;
    }
  } else if (request.wait_ms <= 0) {
    done(BuildLeaseResult({}));
    return;
  }
  if (waiter_count() >= max_waiters_) {
    LeaseResult busy;
    busy.error = Error{ErrorCode::kTooManyRequests,
                       "too many long-polling clients are waiting; retry shortly"};
    done(std::move(busy));
    return;
  }
  if (queue == nullptr && queues_.size() >= limits_.max_queues) {
    LeaseResult refused;
    refused.error = TooManyQueues();
    done(std::move(refused));
    return;
  }
  Queue& q = queue != nullptr ? *queue : GetOrCreateQueue(queue_name);
  const uint64_t id = next_waiter_id_++;
  const int64_t deadline = SaturatingAdd(now, request.wait_ms);
  q.waiters().push_back(LeaseWaiter{id, request.max, request.lease_ms, deadline,
                                    std::move(request.worker), std::move(done)});
  lease_waiters_.emplace(id, std::make_pair(&q, std::prev(q.waiters().end())));
  waiter_deadlines_.insert({deadline, id});
  if (waiter_id != nullptr) *waiter_id = id;
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
      LeaseWaiter waiter = std::move(queue.waiters().front());
      queue.waiters().pop_front();
      lease_waiters_.erase(waiter.id);
      waiter_deadlines_.erase({waiter.deadline, waiter.id});
      auto leased = LeaseNow(queue, waiter.max, waiter.lease_ms, waiter.worker, now);
      waiter.done(BuildLeaseResult(leased));
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
    waiter.done(BuildLeaseResult({}));
    return;
  }
  if (auto it = task_waiters_.find(waiter_id); it != task_waiters_.end()) {
    TaskWaiter waiter = std::move(it->second);
    task_waiters_.erase(it);
    waiter_deadlines_.erase({waiter.deadline, waiter_id});
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

// ---- ack / nack / extend ---------------------------------------------------------------

Reply Engine::IdState(const Task& task) const {
  Reply reply;
  JsonWriter w(reply.body);
  w.BeginObject().Field("id", task.id).Field("state", TaskStateName(task.state)).EndObject();
  return reply;
}

Reply Engine::TaskReply(const Task& task) const {
  Reply reply;
  AppendTaskJson(reply.body, task, /*with_token=*/false);
  return reply;
}

namespace {

Reply LeaseMismatch(const Task& task) {
  std::string message = task.state == TaskState::kLeased
                            ? "the lease token is not the current lease of this task"
                            : "the task is not leased (its lease expired or it was finished)";
  return Reply{Error{ErrorCode::kLeaseMismatch, std::move(message)}, {}};
}

}  // namespace

Reply Engine::Ack(uint64_t id, std::string_view token, std::string result) {
  Tick();
  if (!journal_.writable()) return Reply{StorageDown(), {}};
  Task* task = FindTask(id);
  if (task == nullptr) return Fail(ErrorCode::kNotFound, "no task with this id");
  if (task->state == TaskState::kSucceeded && !token.empty() && task->lease_token == token) {
    return IdState(*task);  // a repeated ack: harmless
  }
  if (task->state != TaskState::kLeased || task->lease_token != token) {
    return LeaseMismatch(*task);
  }
  task->result = std::move(result);
  task->queue->totals().acked++;
  SetState(*task, TaskState::kSucceeded, Now());
  journal_.TaskChanged(*task);
  ServeWaiters();
  return IdState(*task);
}

Reply Engine::Nack(uint64_t id, std::string_view token, std::string_view message,
                   std::optional<int64_t> retry_in_ms, bool dead) {
  Tick();
  if (!journal_.writable()) return Reply{StorageDown(), {}};
  const int64_t now = Now();
  Task* task = FindTask(id);
  if (task == nullptr) return Fail(ErrorCode::kNotFound, "no task with this id");
  if (task->state != TaskState::kLeased || task->lease_token != token) {
    return LeaseMismatch(*task);
  }
  task->queue->totals().nacked++;
  AddError(*task, now, message);
  if (dead) {
    Kill(*task, DeadReason::kNack, now);
  } else if (task->attempts >= task->max_attempts) {
    Kill(*task, DeadReason::kMaxAttempts, now);
  } else {
    int64_t delay = retry_in_ms ? *retry_in_ms
                                : BackoffDelayMs(task->queue->config().backoff, task->attempts,
                                                 std::uniform_real_distribution<>(0, 1)(random_));
    task->run_at = SaturatingAdd(now, delay);
    SetState(*task, delay > 0 ? TaskState::kScheduled : TaskState::kReady, now);
  }
  journal_.TaskChanged(*task);
  ServeWaiters();
  return IdState(*task);
}

Reply Engine::Extend(uint64_t id, std::string_view token, std::optional<int64_t> lease_ms,
                     std::string progress) {
  Tick();
  if (!journal_.writable()) return Reply{StorageDown(), {}};
  Task* task = FindTask(id);
  if (task == nullptr) return Fail(ErrorCode::kNotFound, "no task with this id");
  if (task->state != TaskState::kLeased || task->lease_token != token) {
    return LeaseMismatch(*task);
  }
  task->lease_expires_at = SaturatingAdd(Now(), EffectiveLeaseMs(*task, lease_ms.value_or(0)));
  if (!progress.empty()) task->progress = std::move(progress);
  Rearm(*task);
  journal_.TaskChanged(*task);
  Reply reply;
  JsonWriter(reply.body).BeginObject().Field("expires_at", task->lease_expires_at).EndObject();
  return reply;
}

// ---- cancel / retry / get --------------------------------------------------------------

Reply Engine::Cancel(uint64_t id) {
  Tick();
  if (!journal_.writable()) return Reply{StorageDown(), {}};
  Task* task = FindTask(id);
  if (task == nullptr) return Fail(ErrorCode::kNotFound, "no task with this id");
  if (task->state != TaskState::kScheduled && task->state != TaskState::kReady) {
    return Fail(ErrorCode::kInvalidState,
                std::string("only a scheduled or ready task can be canceled; this one is ") +
                    std::string(TaskStateName(task->state)));
  }
  SetState(*task, TaskState::kCanceled, Now());
  journal_.TaskChanged(*task);
  return IdState(*task);
}

Reply Engine::Retry(uint64_t id) {
  Tick();
  if (!journal_.writable()) return Reply{StorageDown(), {}};
  Task* task = FindTask(id);
  if (task == nullptr) return Fail(ErrorCode::kNotFound, "no task with this id");
  if (task->state != TaskState::kDead) {
    return Fail(ErrorCode::kInvalidState,
                std::string("only a dead task can be retried; this one is ") +
                    std::string(TaskStateName(task->state)));
  }
  task->attempts = 0;
  task->dead_reason = DeadReason::kNone;
  task->deadline = kNever;  // a manual retry is a new chance; the old deadline has passed
  SetState(*task, TaskState::kReady, Now());
  journal_.TaskChanged(*task);
  ServeWaiters();
  return IdState(*task);
}

Reply Engine::GetTask(uint64_t id) {
  Tick();
  Task* task = FindTask(id);
  if (task == nullptr) return Fail(ErrorCode::kNotFound, "no task with this id");
  return TaskReply(*task);
}

void Engine::WaitTask(uint64_t id, int64_t wait_ms, std::function<void(Reply)> done,
                      uint64_t* waiter_id) {
  Tick();
  Task* task = FindTask(id);
  if (task == nullptr) {
    done(Fail(ErrorCode::kNotFound, "no task with this id"));
    return;
  }
  if (wait_ms <= 0 || IsFinished(task->state)) {
    done(TaskReply(*task));
    return;
  }
  if (waiter_count() >= max_waiters_) {
    done(Fail(ErrorCode::kTooManyRequests, "too many clients are waiting; retry shortly"));
    return;
  }
  const uint64_t wid = next_waiter_id_++;
  const int64_t deadline = SaturatingAdd(Now(), wait_ms);
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
    waiter.done(TaskReply(task));
  }
}

// ---- queues ----------------------------------------------------------------------------

Reply Engine::ListTasks(std::string_view queue_name, std::optional<TaskState> state, size_t limit,
                        uint64_t after) {
  Tick();
  Reply reply;
  JsonWriter w(reply.body);
  w.BeginObject().Key("tasks").BeginArray();
  std::optional<uint64_t> next_after;
  if (Queue* queue = FindQueue(queue_name)) {
    const auto& ids = state ? queue->ids_in(*state) : queue->all_ids();
    size_t n = 0;
    for (auto it = ids.upper_bound(after); it != ids.end(); ++it) {
      if (n == limit) {
        next_after = *std::prev(it);
        break;
      }
      if (n > 0) reply.body.push_back(',');
      AppendTaskJson(reply.body, *FindTask(*it), /*with_token=*/false);
      ++n;
    }
  }
  reply.body += "]";
  if (next_after) {
    reply.body += ",\"next_after\":" + std::to_string(*next_after) + "}";
  } else {
    reply.body += ",\"next_after\":null}";
  }
  return reply;
}

Reply Engine::QueueStatsJson(std::string_view queue_name) {
  Tick();
  Reply reply;
  if (Queue* queue = FindQueue(queue_name)) {
    AppendQueueStatsJson(reply.body, SnapshotOf(*queue));
  } else {
    AppendQueueStatsJson(reply.body, SnapshotOf(Queue(std::string(queue_name))));
  }
  return reply;
}

Reply Engine::ConfigureQueue(std::string_view queue_name, const QueueConfigPatch& patch) {
  Tick();
  if (!journal_.writable()) return Reply{StorageDown(), {}};
  if (FindQueue(queue_name) == nullptr && queues_.size() >= limits_.max_queues) {
    return Reply{TooManyQueues(), {}};
  }
  Queue& queue = GetOrCreateQueue(queue_name);
  patch.ApplyTo(queue.config());
  journal_.QueueConfigChanged(queue.name(), queue.config());
  if (!queue.config().paused && !queue.ready().empty()) MarkReady(queue);
  ServeWaiters();
  Reply reply;
  AppendQueueConfigJson(reply.body, queue.config());
  return reply;
}

// ---- recovery ---------------------------------------------------------------------------

void Engine::RestoreQueueConfig(std::string_view queue, const QueueConfig& config) {
  GetOrCreateQueue(queue).config() = config;
}

void Engine::RestoreTask(std::string_view queue_name, Task task) {
  Queue& queue = GetOrCreateQueue(queue_name);
  auto owned = std::make_unique<Task>(std::move(task));
  Task& t = *owned;
  t.queue = &queue;
  t.timer_due = kNever;
  if (tasks_.contains(t.id)) return;  // ids are unique keys in storage; never twice
  tasks_.emplace(t.id, std::move(owned));
  queue.Add(t);
  if (!t.idempotency_key.empty()) queue.idempotency()[t.idempotency_key] = t.id;
  Rearm(t);
}

void Engine::Reset() {
  while (!waiter_deadlines_.empty()) CancelWaiter(waiter_deadlines_.begin()->second);
  timers_.clear();
  tasks_.clear();
  queues_.clear();
  queues_with_new_ready_.clear();
}

std::vector<QueueSnapshot> Engine::Snapshot() const {
  std::vector<QueueSnapshot> out;
  out.reserve(queues_.size());
  for (const auto& [name, queue] : queues_) out.push_back(SnapshotOf(*queue));
  return out;
}

}  // namespace conveyor
