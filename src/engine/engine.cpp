// Engine, part 1: queues, enqueue and publication, and the single-task commands (ack,
// nack, extend, cancel, retry, get), listing, config and recovery. Timers are in
// engine_timers.cpp, leases and waiters in engine_lease.cpp.
#include "engine/engine.h"

#include <algorithm>

#include "common/task_id.h"
#include "engine/backoff.h"

namespace conveyor {
namespace {

// Debian's Abseil has its own string_view type; heterogeneous lookup needs that one.
absl::string_view AbslView(std::string_view s) { return absl::string_view(s.data(), s.size()); }

int64_t SaturatingAdd(int64_t a, int64_t b) {
  if (b > 0 && a > kNever - b) return kNever;
  return a + b;
}

}  // namespace

Engine::Engine(const Clock& clock, Journal& journal, ServerWide& shared, const Limits& limits,
               uint64_t seed)
    : clock_(clock), journal_(journal), shared_(shared), limits_(limits), random_(seed) {}

Error Engine::StorageDown() {
  return Error{ErrorCode::kStorageUnavailable,
               "storage cannot take changes right now (a write failed, or fsyncs are behind); "
               "retry shortly; reads still work"};
}

Error Engine::TooManyQueues() const {
  return Error{ErrorCode::kTooManyRequests,
               "this server holds the most queues it is configured for (--max-queues)"};
}

// Takes room for new_tasks unfinished tasks in the server-wide budget.
Error Engine::CheckCapacity(size_t new_tasks) {
  if (limits_.max_memory_bytes != 0 &&
      shared_.rss_bytes.load(std::memory_order_relaxed) > limits_.max_memory_bytes) {
    return Error{ErrorCode::kOverloaded,
                 "the server is at its memory limit (--max-memory-bytes); retry once workers "
                 "have drained some tasks"};
  }
  if (!shared_.live_tasks.TryTake(new_tasks)) {
    return Error{ErrorCode::kOverloaded,
                 "the server holds the most unfinished tasks it is configured for "
                 "(--max-tasks); retry once workers have drained some"};
  }
  return {};
}

void Engine::CountLive(TaskState from, TaskState to) {
  if (!IsFinished(from) && IsFinished(to)) {
    --live_tasks_;
    shared_.live_tasks.Give();
  } else if (IsFinished(from) && !IsFinished(to)) {
    ++live_tasks_;
    shared_.live_tasks.Take();
  }
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

bool Engine::IsBare(const Queue& queue) { return queue.empty() && queue.config() == QueueConfig{}; }

void Engine::MaybeForget(Queue& queue) {
  if (!IsBare(queue) || !queue.waiters().empty()) return;
  std::erase(queues_with_new_ready_, &queue);
  const std::string name = queue.name();
  queues_.erase(AbslView(name));
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

// ---- state changes ---------------------------------------------------------------------

void Engine::SetState(Task& task, TaskState state, int64_t now) {
  task.queue->Remove(task);  // indexes are keyed by the fields as they are now
  CountLive(task.state, state);
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

void Engine::AddError(Task& task, int64_t now, std::string_view message) {
  if (message.size() > limits_.max_error_message_bytes) {
    message = message.substr(0, limits_.max_error_message_bytes);
  }
  if (task.errors.size() >= limits_.max_errors_kept) task.errors.erase(task.errors.begin());
  task.errors.push_back(TaskError{now, task.attempts, std::string(message)});
}

// ---- enqueue ---------------------------------------------------------------------------

// Creates the task and journals its creation; it is published (indexed, timed, leasable)
// once that creation is durable. REQUIRES: one unit of shared_.live_tasks taken for it.
void Engine::InsertTask(Queue& queue, const TaskSpec& spec, int64_t now, EnqueuedTask& out,
                        std::vector<uint64_t>& created) {
  if (!spec.idempotency_key.empty()) {
    auto it = queue.idempotency().find(spec.idempotency_key);
    if (it != queue.idempotency().end()) {
      const Task* first = FindTask(it->second);
      if (first == nullptr) {
        auto pending = unpublished_.find(it->second);
        if (pending != unpublished_.end()) first = pending->second.get();
      }
      if (first != nullptr) {
        out = EnqueuedTask{first->id, first->state, true};
        shared_.live_tasks.Give();
        return;
      }
    }
  }
  auto task = std::make_unique<Task>();
  Task& t = *task;
  uint64_t sequence = shared_.next_sequence.fetch_add(1, std::memory_order_relaxed);
  t.id = MakeTaskId(sequence, SlotOfQueue(queue.name()));
  t.queue = &queue;
  t.payload = spec.payload;
  t.payload_kind = spec.payload_kind;
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
  ++live_tasks_;
  queue.totals().enqueued++;
  if (t.deadline <= now) {  // accepted, and ends dead
    t.dead_reason = DeadReason::kExpired;
    queue.totals().dead++;
    CountLive(t.state, TaskState::kDead);
    t.state = TaskState::kDead;
    t.finished_at = now;
  }
  if (!t.idempotency_key.empty()) queue.idempotency()[t.idempotency_key] = t.id;
  journal_.TaskCreated(t);
  queue.AddUnpublished();
  created.push_back(t.id);
  out = EnqueuedTask{t.id, t.state, false};
  unpublished_.emplace(t.id, std::move(task));
}

void Engine::Publish(const std::vector<uint64_t>& ids) {
  for (uint64_t id : ids) {
    auto it = unpublished_.find(id);
    if (it == unpublished_.end()) continue;
    std::unique_ptr<Task> owned = std::move(it->second);
    unpublished_.erase(it);
    Task& t = *owned;
    t.queue->RemoveUnpublished();
    tasks_.emplace(t.id, std::move(owned));
    t.queue->Add(t);
    if (t.state == TaskState::kReady) MarkReady(*t.queue);
    Rearm(t);
  }
  ServeWaiters();
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
  if (Error e = CheckCapacity(specs.size()); !e.ok()) {
    result.error = std::move(e);
    return result;
  }
  Queue& queue = GetOrCreateQueue(queue_name);
  result.tasks.resize(specs.size());
  std::vector<uint64_t> created;
  created.reserve(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    InsertTask(queue, specs[i], now, result.tasks[i], created);
  }
  if (!created.empty()) {
    // No dirty reads: workers see the tasks only once their creation is durable. After a
    // failed write the shard reloads (generation_ moves on) and they never existed.
    journal_.WhenDurable([this, generation = generation_, created = std::move(created)](Error e) {
      if (e.ok() && generation == generation_) Publish(created);
    });
  }
  return result;
}

// ---- ack / nack / extend ---------------------------------------------------------------

namespace {

template <typename T>
Outcome<T> LeaseMismatch(const Task& task) {
  std::string message = task.state == TaskState::kLeased
                            ? "the lease token is not the current lease of this task"
                            : "the task is not leased (its lease expired or it was finished)";
  return Outcome<T>{Error{ErrorCode::kLeaseMismatch, std::move(message)}, {}};
}

constexpr const char* kNoTask = "no task with this id";

}  // namespace

Outcome<IdState> Engine::Ack(uint64_t id, std::string_view token, std::string result) {
  Tick();
  if (!journal_.writable()) return {StorageDown(), {}};
  Task* task = FindTask(id);
  if (task == nullptr) return Fail<IdState>(ErrorCode::kNotFound, kNoTask);
  if (task->state == TaskState::kSucceeded && !token.empty() && task->lease_token == token) {
    return IdStateOf(*task);  // a repeated ack: harmless
  }
  if (task->state != TaskState::kLeased || task->lease_token != token) {
    return LeaseMismatch<IdState>(*task);
  }
  const bool has_result = !result.empty();
  task->result = std::move(result);
  task->queue->totals().acked++;
  SetState(*task, TaskState::kSucceeded, Now());
  if (has_result) journal_.TaskResultSet(*task);
  journal_.TaskStateChanged(*task);
  ServeWaiters();
  return IdStateOf(*task);
}

Outcome<IdState> Engine::Nack(uint64_t id, std::string_view token, std::string_view message,
                              std::optional<int64_t> retry_in_ms, bool dead) {
  Tick();
  if (!journal_.writable()) return {StorageDown(), {}};
  const int64_t now = Now();
  Task* task = FindTask(id);
  if (task == nullptr) return Fail<IdState>(ErrorCode::kNotFound, kNoTask);
  if (task->state != TaskState::kLeased || task->lease_token != token) {
    return LeaseMismatch<IdState>(*task);
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
  return IdStateOf(*task);
}

Outcome<int64_t> Engine::Extend(uint64_t id, std::string_view token,
                                std::optional<int64_t> lease_ms, std::string progress) {
  Tick();
  if (!journal_.writable()) return {StorageDown(), {}};
  Task* task = FindTask(id);
  if (task == nullptr) return Fail<int64_t>(ErrorCode::kNotFound, kNoTask);
  if (task->state != TaskState::kLeased || task->lease_token != token) {
    return LeaseMismatch<int64_t>(*task);
  }
  task->lease_expires_at = SaturatingAdd(Now(), EffectiveLeaseMs(*task, lease_ms.value_or(0)));
  Rearm(*task);
  if (!progress.empty()) {
    task->progress = std::move(progress);
    journal_.TaskProgressSet(*task);
  }
  journal_.TaskStateChanged(*task);
  return Ok(task->lease_expires_at);
}

// ---- cancel / retry / get --------------------------------------------------------------

Outcome<IdState> Engine::Cancel(uint64_t id) {
  Tick();
  if (!journal_.writable()) return {StorageDown(), {}};
  Task* task = FindTask(id);
  if (task == nullptr) return Fail<IdState>(ErrorCode::kNotFound, kNoTask);
  if (task->state != TaskState::kScheduled && task->state != TaskState::kReady) {
    return Fail<IdState>(
        ErrorCode::kInvalidState,
        std::string("only a scheduled or ready task can be canceled; this one is ") +
            std::string(TaskStateName(task->state)));
  }
  SetState(*task, TaskState::kCanceled, Now());
  journal_.TaskStateChanged(*task);
  return IdStateOf(*task);
}

Outcome<IdState> Engine::Retry(uint64_t id) {
  Tick();
  if (!journal_.writable()) return {StorageDown(), {}};
  Task* task = FindTask(id);
  if (task == nullptr) return Fail<IdState>(ErrorCode::kNotFound, kNoTask);
  if (task->state != TaskState::kDead) {
    return Fail<IdState>(ErrorCode::kInvalidState,
                         std::string("only a dead task can be retried; this one is ") +
                             std::string(TaskStateName(task->state)));
  }
  task->attempts = 0;
  task->dead_reason = DeadReason::kNone;
  task->deadline = kNever;  // a manual retry is a new chance; the old deadline has passed
  SetState(*task, TaskState::kReady, Now());
  journal_.TaskChanged(*task);
  ServeWaiters();
  return IdStateOf(*task);
}

Outcome<TaskView> Engine::GetTask(uint64_t id) {
  Tick();
  Task* task = FindTask(id);
  if (task == nullptr) return Fail<TaskView>(ErrorCode::kNotFound, kNoTask);
  return Ok(ViewOf(*task, /*with_token=*/false));
}

// ---- queues ----------------------------------------------------------------------------

Outcome<TaskPage> Engine::ListTasks(std::string_view queue_name, std::optional<TaskState> state,
                                    size_t limit, uint64_t after) {
  Tick();
  Outcome<TaskPage> out;
  TaskPage& page = out.value;
  Queue* queue = FindQueue(queue_name);
  if (queue == nullptr) return out;
  const auto& ids = state ? queue->ids_in(*state) : queue->all_ids();
  size_t bytes = 0;
  for (auto it = ids.upper_bound(after); it != ids.end(); ++it) {
    const Task& task = *FindTask(*it);
    const size_t cost = AnswerBytes(task);
    page.truncated = !page.tasks.empty() && bytes + cost > limits_.max_response_bytes;
    if (page.tasks.size() == limit || page.truncated) {
      page.next_after = *std::prev(it);
      break;
    }
    bytes += cost;
    page.tasks.push_back(ViewOf(task, /*with_token=*/false));
  }
  return out;
}

QueueSnapshot Engine::QueueStats(std::string_view queue_name) {
  Tick();
  if (Queue* queue = FindQueue(queue_name)) return SnapshotOf(*queue);
  return SnapshotOf(Queue(std::string(queue_name)));
}

Outcome<QueueConfig> Engine::ConfigureQueue(std::string_view queue_name,
                                            const QueueConfigPatch& patch) {
  Tick();
  if (!journal_.writable()) return {StorageDown(), {}};
  if (FindQueue(queue_name) == nullptr && queues_.size() >= limits_.max_queues) {
    return {TooManyQueues(), {}};
  }
  Queue& queue = GetOrCreateQueue(queue_name);
  const int64_t old_retention = queue.config().retention_ms;
  patch.ApplyTo(queue.config());
  journal_.QueueConfigChanged(queue.name(), queue.config());
  if (queue.config().retention_ms != old_retention) {
    // Tasks that finished before the change follow the new retention too; the ones now
    // past it are purged by the next ticks, a slice at a time.
    for (TaskState s : {TaskState::kSucceeded, TaskState::kDead, TaskState::kCanceled}) {
      for (uint64_t id : queue.ids_in(s)) Rearm(*FindTask(id));
    }
  }
  if (!queue.config().paused && !queue.ready().empty()) MarkReady(queue);
  ServeWaiters();
  Outcome<QueueConfig> out = Ok(queue.config());
  MaybeForget(queue);
  return out;
}

// ---- recovery ---------------------------------------------------------------------------

void Engine::RestoreQueueConfig(std::string_view queue, const QueueConfig& config) {
  GetOrCreateQueue(queue).config() = config;
}

void Engine::RestoreTask(std::string_view queue_name, Task task) {
  Queue& queue = GetOrCreateQueue(queue_name);
  if (tasks_.contains(task.id)) return;  // ids are unique keys in storage; never twice
  auto owned = std::make_unique<Task>(std::move(task));
  Task& t = *owned;
  t.queue = &queue;
  t.timer_due = kNever;
  tasks_.emplace(t.id, std::move(owned));
  queue.Add(t);
  if (!IsFinished(t.state)) {
    ++live_tasks_;
    shared_.live_tasks.Take();
  }
  if (!t.idempotency_key.empty()) queue.idempotency()[t.idempotency_key] = t.id;
  Rearm(t);
}

void Engine::Reset() {
  while (!waiter_deadlines_.empty()) CancelWaiter(waiter_deadlines_.begin()->second);
  ++generation_;
  shared_.live_tasks.Give(live_tasks_);
  live_tasks_ = 0;
  timers_.clear();
  tasks_.clear();
  unpublished_.clear();
  queues_.clear();
  queues_with_new_ready_.clear();
}

std::vector<QueueSnapshot> Engine::Snapshot() const {
  std::vector<QueueSnapshot> out;
  out.reserve(queues_.size());
  for (const auto& [name, queue] : queues_) {
    if (!IsBare(*queue)) out.push_back(SnapshotOf(*queue));
  }
  return out;
}

}  // namespace conveyor
