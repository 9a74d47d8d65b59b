// Engine, part 1: queues, enqueue and publication, and the single-task commands (ack,
// nack, extend, cancel, retry, get), listing, config and recovery. Timers are in
// engine_timers.cpp, leases and waiters in engine_lease.cpp.
#include "engine/engine.h"

#include <algorithm>

#include "common/absl_view.h"
#include "common/task_id.h"
#include "engine/backoff.h"
#include "engine/saturating.h"

namespace conveyor {

Engine::Engine(const Clock& clock, Journal& journal, ServerWide& shared, const Limits& limits,
               uint64_t seed)
    : clock_(clock),
      journal_(journal),
      shared_(shared),
      limits_(limits),
      random_(seed),
      tasks_(shared.payload_bytes) {}

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
  auto queue = std::make_unique<Queue>(std::string(name), clock_);
  Queue& ref = *queue;
  queues_.emplace(std::string(name), std::move(queue));
  return ref;
}

Queue* Engine::FindQueue(std::string_view name) {
  auto it = queues_.find(AbslView(name));
  return it == queues_.end() ? nullptr : it->second.get();
}

bool Engine::IsBare(const Queue& queue) {
  return queue.empty() && queue.config() == QueueConfig{} && queue.pause_until() == 0;
}

bool Engine::Paused(const Queue& queue) const {
  return queue.config().paused || queue.pause_until() > Mono();
}

void Engine::MaybeForget(Queue& queue) {
  if (!IsBare(queue) || !queue.waiters().empty()) return;
  std::erase(queues_with_new_ready_, &queue);
  if (queue.purge_due() != kNever) purge_timers_.erase({queue.purge_due(), &queue});
  if (queue.flow_due() != kNever) flow_timers_.erase({queue.flow_due(), &queue});
  const std::string name = queue.name();  // (a bare queue has no pause timer)
  queues_.erase(AbslView(name));
}

// Unpublished tasks (creation not yet durable) are in tasks_ but seen by no call.
Task* Engine::FindTask(uint64_t id) {
  Task* task = tasks_.Find(id);
  return task == nullptr || !task->published ? nullptr : task;
}

TaskPtr Engine::MakeTask(Task&& fields, std::string_view payload) {
  bool keep = reader_ == nullptr;  // nowhere else to read it from
  if (!keep && payload.size() <= limits_.payload_cache_bytes) {
    size_t held = shared_.payload_bytes.load(std::memory_order_relaxed);
    while (held + payload.size() <= limits_.payload_cache_bytes &&
           !shared_.payload_bytes.compare_exchange_weak(held, held + payload.size(),
                                                        std::memory_order_relaxed)) {
    }
    keep = held + payload.size() <= limits_.payload_cache_bytes;
  } else if (keep) {
    shared_.payload_bytes.fetch_add(payload.size(), std::memory_order_relaxed);
  }
  fields.payload_size = static_cast<uint32_t>(payload.size());
  return NewTask(std::move(fields), keep ? &payload : nullptr);
}

bool Engine::View(const Task& task, bool with_token, TaskView& view, Error& error) {
  view = ViewOf(task, with_token);
  if (task.payload_inline || reader_ == nullptr) return true;
  if (reader_->ReadPayload(task.id, view.payload) == TaskReader::Result::kFound) return true;
  error = Error{ErrorCode::kStorageUnavailable,
                "the task's payload could not be read from storage; retry shortly"};
  return false;
}

int64_t Engine::EffectiveLeaseMs(const Task& task, int64_t requested) const {
  if (requested > 0) return requested;
  if (task.lease_ms() > 0) return task.lease_ms();
  return task.queue->config().lease_ms;
}

// ---- state changes ---------------------------------------------------------------------

void Engine::SetState(Task& task, TaskState state, int64_t now) {
  task.queue->Remove(task);  // indexes are keyed by the fields as they are now
  // A lease ending frees a concurrency slot: parked lease waits may take a task now.
  if (task.state == TaskState::kLeased && task.queue->ready().limits_concurrency()) {
    MarkReady(*task.queue);
  }
  if (task.state == TaskState::kScheduled) task.pauses_key = false;
  CountLive(task.state, state);
  task.state = state;
  if (state == TaskState::kReady) {
    task.ready_at = now;
    MarkReady(*task.queue);
  }
  if (IsFinished(state)) task.set_finished_at(now);
  task.queue->Add(task);
  Rearm(task);
  if (IsFinished(state)) {
    OnFinished(task);
    FinishTaskWaiters(task);
  }
}

void Engine::OnFinished(Task& task) {
  Queue& queue = *task.queue;
  if (!task.unique_key().empty()) {
    auto it = queue.unique().find(task.unique_key());
    if (it != queue.unique().end() && it->second == task.id) queue.unique().erase(it);
  }
  queue.finished().emplace_back(task.finished_at(), task.id);
  if (queue.finished().size() == 1) ArmPurge(queue);
  if (reader_ != nullptr) finished_this_command_.push_back(task.id);
}

void Engine::AfterCommand() {
  if (finished_this_command_.empty()) return;
  // Out of memory once durable: from then on storage holds the final state.
  journal_.WhenDurable(
      [this, generation = generation_, ids = std::move(finished_this_command_)](Error e) {
        if (e.ok() && generation == generation_) Evict(ids);
      });
  finished_this_command_.clear();
}

void Engine::Evict(const std::vector<uint64_t>& ids) {
  for (uint64_t id : ids) {
    Task* found = tasks_.Find(id);
    if (found == nullptr || !IsFinished(found->state)) continue;  // purged, retried
    Task& task = *found;
    if (task.timer_due != kNever) timers_.erase({task.timer_due, id});
    if (!task.idempotency_key().empty()) {
      task.queue->finished_keys()[id] = std::move(task.cold().idempotency_key);
    }
    tasks_.Erase(id);  // its id stays in the queue's finished index and FIFO
  }
}

TaskReader::Result Engine::LoadFinished(uint64_t id, StoredTask& out, Error& error) {
  if (reader_ == nullptr) return TaskReader::Result::kNotFound;
  switch (reader_->ReadTask(id, out)) {
    case TaskReader::Result::kFound:
      break;
    case TaskReader::Result::kNotFound:
      return TaskReader::Result::kNotFound;
    case TaskReader::Result::kError:
      error = Error{ErrorCode::kStorageUnavailable,
                    "the task's record could not be read from storage; retry shortly"};
      return TaskReader::Result::kError;
  }
  // Storage may still hold a task whose purge is not written yet: the index decides.
  Queue* queue = FindQueue(out.queue);
  if (queue == nullptr || !queue->HasFinishedId(id) || !IsFinished(out.task.state)) {
    return TaskReader::Result::kNotFound;
  }
  return TaskReader::Result::kFound;
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
  auto& errors = task.cold().errors;
  if (errors.size() >= limits_.max_errors_kept) errors.erase(errors.begin());
  errors.push_back(TaskError{now, task.attempts, std::string(message)});
}

// ---- enqueue ---------------------------------------------------------------------------

// A new task's fields from its spec (id, defaults from the queue, state; dead at once
// when its deadline has passed), counted in the queue's totals and the live count.
Task Engine::BuildTask(Queue& queue, const TaskSpec& spec, int64_t now) {
  Task t;
  uint64_t sequence = shared_.next_sequence.fetch_add(1, std::memory_order_relaxed);
  t.id = MakeTaskId(sequence, SlotOfQueue(queue.name()));
  t.queue = &queue;
  t.payload_kind = spec.payload_kind;
  t.priority = spec.priority;
  t.max_attempts = spec.max_attempts.value_or(queue.config().max_attempts);
  t.created_at = now;
  t.run_at = spec.run_at ? *spec.run_at : spec.delay_ms ? SaturatingAdd(now, *spec.delay_ms) : now;
  t.set_deadline(spec.deadline.value_or(kNever));
  t.set_lease_ms(static_cast<int32_t>(spec.lease_ms));
  if (!spec.idempotency_key.empty()) t.cold().idempotency_key = spec.idempotency_key;
  t.key = queue.ready().Intern(spec.key);
  t.state = t.run_at > now ? TaskState::kScheduled : TaskState::kReady;
  t.ready_at = now;
  if (t.state == TaskState::kReady) t.run_at = std::max(t.run_at, now);
  ++live_tasks_;
  queue.totals().enqueued++;
  if (t.deadline() <= now) {  // accepted, and ends dead
    t.dead_reason = DeadReason::kExpired;
    queue.totals().dead++;
    CountLive(t.state, TaskState::kDead);
    t.state = TaskState::kDead;
    t.set_finished_at(now);
  }
  if (!t.idempotency_key().empty()) queue.idempotency()[t.idempotency_key()] = t.id;
  if (spec.unique && !IsFinished(t.state)) {
    TaskCold& cold = t.cold();
    cold.unique_key = spec.unique->key;
    cold.unique_until = spec.unique->ttl_ms > 0 ? SaturatingAdd(now, spec.unique->ttl_ms) : kNever;
    cold.unique_active = spec.unique->while_active;
    queue.unique()[cold.unique_key] = t.id;
  }
  return t;
}

Task* Engine::UniqueHolder(Queue& queue, const TaskSpec& spec, int64_t now) {
  if (!spec.unique) return nullptr;
  auto it = queue.unique().find(spec.unique->key);
  if (it == queue.unique().end()) return nullptr;
  Task* holder = tasks_.Find(it->second);  // published or not
  if (holder == nullptr || !holder->HoldsUnique(now)) {
    queue.unique().erase(it);  // it let go of the key: the new task takes it
    return nullptr;
  }
  return holder;
}

EnqueuedTask Engine::ReplacePayload(Task& holder, const TaskSpec& spec, int64_t now) {
  Queue& queue = *holder.queue;
  const uint64_t id = holder.id;
  const bool published = holder.published;
  if (published) queue.Remove(holder);  // its indexes hold the old allocation
  Task fields = std::move(holder);
  holder.key = nullptr;  // the key's reference moves with the fields
  fields.payload_kind = spec.payload_kind;
  if (spec.delay_ms || spec.run_at) {  // the debounce window starts again
    fields.run_at = spec.run_at ? *spec.run_at : SaturatingAdd(now, *spec.delay_ms);
    if (fields.state == TaskState::kReady && fields.run_at > now) {
      fields.state = TaskState::kScheduled;
    } else if (fields.state == TaskState::kScheduled && fields.run_at <= now) {
      fields.state = TaskState::kReady;
      fields.ready_at = now;
    }
  }
  tasks_.Erase(id);
  Task& task = tasks_.Insert(MakeTask(std::move(fields), spec.payload));
  if (published) {
    queue.Add(task);
    if (task.state == TaskState::kReady) MarkReady(queue);
    Rearm(task);
  }
  journal_.TaskPayloadChanged(task, spec.payload);
  return EnqueuedTask{task.id, task.state, true, true};
}

// Creates the task and journals its creation; it is published (indexed, timed, leasable)
// once that creation is durable. REQUIRES: one unit of shared_.live_tasks taken for it.
bool Engine::FindDuplicate(Queue& queue, const TaskSpec& spec, EnqueuedTask& out) {
  if (spec.idempotency_key.empty()) return false;
  auto it = queue.idempotency().find(spec.idempotency_key);
  if (it == queue.idempotency().end()) return false;
  if (const Task* first = tasks_.Find(it->second)) {  // published or not
    out = EnqueuedTask{first->id, first->state, true};
    return true;
  }
  StoredTask stored;
  Error ignored;
  if (LoadFinished(it->second, stored, ignored) == TaskReader::Result::kFound) {
    out = EnqueuedTask{it->second, stored.task.state, true};
    return true;
  }
  return false;
}

void Engine::InsertTask(Queue& queue, const TaskSpec& spec, int64_t now, EnqueuedTask& out,
                        std::vector<uint64_t>& created) {
  if (FindDuplicate(queue, spec, out)) {
    shared_.live_tasks.Give();
    return;
  }
  if (Task* holder = UniqueHolder(queue, spec, now)) {
    shared_.live_tasks.Give();
    const bool queued =
        holder->state == TaskState::kScheduled || holder->state == TaskState::kReady;
    out = spec.unique->replace && queued ? ReplacePayload(*holder, spec, now)
                                         : EnqueuedTask{holder->id, holder->state, true};
    return;
  }
  Task t = BuildTask(queue, spec, now);
  Task& task = tasks_.Insert(MakeTask(std::move(t), spec.payload));
  journal_.TaskCreated(task, spec.payload);
  queue.AddUnpublished();
  created.push_back(task.id);
  out = EnqueuedTask{task.id, task.state, false};
}

void Engine::Publish(const std::vector<uint64_t>& ids) {
  for (uint64_t id : ids) {
    Task* found = tasks_.Find(id);
    if (found == nullptr || found->published) continue;
    Task& t = *found;
    t.published = true;
    t.queue->RemoveUnpublished();
    t.queue->Add(t);
    if (t.state == TaskState::kReady) MarkReady(*t.queue);
    Rearm(t);
    if (IsFinished(t.state)) OnFinished(t);
  }
  ServeWaiters();
}

Error Engine::AdmitNewTasks(std::string_view queue_name, size_t n) {
  if (!journal_.writable()) return StorageDown();
  if (FindQueue(queue_name) == nullptr && queues_.size() >= limits_.max_queues) {
    return TooManyQueues();
  }
  return CheckCapacity(n);
}

EnqueueResult Engine::Enqueue(std::string_view queue_name, std::vector<TaskSpec> specs) {
  Tick();
  const int64_t now = Now();
  EnqueueResult result;
  if (Error e = AdmitNewTasks(queue_name, specs.size()); !e.ok()) {
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
  return Outcome<T>{Engine::LeaseMismatchError(task), {}};
}

constexpr const char* kNoTask = "no task with this id";

}  // namespace

Task* Engine::HeldTask(uint64_t id, std::string_view token, StoredTask& stored, Error& refused) {
  Tick();
  if (!journal_.writable()) {
    refused = StorageDown();
    return nullptr;
  }
  Task* task = nullptr;
  if (Outcome<IdState> r; !Locate(id, task, stored, r)) {
    refused = std::move(r.error);
    return nullptr;
  }
  if (task->state != TaskState::kLeased || task->lease_token() != token) {
    refused = LeaseMismatchError(*task);
    return nullptr;
  }
  return task;
}

Error Engine::LeaseMismatchError(const Task& task) {
  std::string message = task.state == TaskState::kLeased
                            ? "the lease token is not the current lease of this task"
                            : "the task is not leased (its lease expired or it was finished)";
  return Error{ErrorCode::kLeaseMismatch, std::move(message)};
}

TaskReader::Result Engine::FindOrLoad(uint64_t id, Task*& task, StoredTask& stored, Error& error) {
  task = FindTask(id);
  if (task != nullptr) return TaskReader::Result::kFound;
  TaskReader::Result r = LoadFinished(id, stored, error);
  if (r == TaskReader::Result::kFound) task = &stored.task;
  return r;
}

template <typename T>
bool Engine::Locate(uint64_t id, Task*& task, StoredTask& stored, Outcome<T>& refused) {
  Error error;
  switch (FindOrLoad(id, task, stored, error)) {
    case TaskReader::Result::kFound:
      return true;
    case TaskReader::Result::kNotFound:
      refused = Fail<T>(ErrorCode::kNotFound, "no task with this id");
      return false;
    case TaskReader::Result::kError:
      refused.error = std::move(error);
      return false;
  }
  return false;
}

// engine_jobs.cpp locates tasks too.
template bool Engine::Locate<IdState>(uint64_t, Task*&, StoredTask&, Outcome<IdState>&);

Outcome<IdState> Engine::Ack(uint64_t id, std::string_view token, std::string result) {
  Tick();
  if (!journal_.writable()) return {StorageDown(), {}};
  Task* task = nullptr;
  StoredTask stored;
  if (Outcome<IdState> refused; !Locate(id, task, stored, refused)) return refused;
  if (task->state == TaskState::kSucceeded && !token.empty() && task->lease_token() == token) {
    return Ok(IdState{id, task->state});  // a repeated ack: harmless
  }
  if (task->state != TaskState::kLeased || task->lease_token() != token) {
    return LeaseMismatch<IdState>(*task);
  }
  const bool has_result = !result.empty();
  if (has_result) task->cold().result = std::move(result);
  task->queue->totals().acked++;
  SetState(*task, TaskState::kSucceeded, Now());
  if (has_result) journal_.TaskResultSet(*task);
  journal_.TaskStateChanged(*task);
  ServeWaiters();
  return IdStateOf(*task);
}

Outcome<IdState> Engine::Nack(uint64_t id, std::string_view token, std::string_view message,
                              std::optional<int64_t> retry_in_ms, bool dead, NackHold hold) {
  StoredTask stored;
  Error refused;
  Task* task = HeldTask(id, token, stored, refused);
  if (task == nullptr) return {refused, {}};
  const int64_t now = Now();
  if (hold.any() && !dead) {
    // Not a failure: the attempt is given back and its key waits, like the task.
    int64_t until = now;
    if (hold.retry_at) until = std::max(until, *hold.retry_at);
    if (hold.pause_key_ms) until = std::max(until, SaturatingAdd(now, *hold.pause_key_ms));
    if (task->attempts > 0) task->attempts--;
    task->queue->totals().deferred++;
    task->run_at = until;
    SetState(*task, until > now ? TaskState::kScheduled : TaskState::kReady, now);
    if (task->state == TaskState::kScheduled) {
      task->pauses_key = true;
      task->queue->ready().PauseKey(*task, MonoDue(until));
    }
    journal_.TaskChanged(*task);
    ServeWaiters();
    return IdStateOf(*task);
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
  StoredTask stored;
  Error refused;
  Task* task = HeldTask(id, token, stored, refused);
  if (task == nullptr) return {refused, {}};
  task->set_lease_expires_at(SaturatingAdd(Now(), EffectiveLeaseMs(*task, lease_ms.value_or(0))));
  Rearm(*task);
  if (!progress.empty()) {
    task->cold().progress = std::move(progress);
    journal_.TaskProgressSet(*task);
  }
  journal_.TaskStateChanged(*task);
  return Ok(task->lease_expires_at());
}

// ---- cancel / retry / get --------------------------------------------------------------

Outcome<IdState> Engine::Cancel(uint64_t id) {
  Tick();
  if (!journal_.writable()) return {StorageDown(), {}};
  Task* task = nullptr;
  StoredTask stored;
  if (Outcome<IdState> refused; !Locate(id, task, stored, refused)) return refused;
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
  Task* task = nullptr;
  StoredTask stored;
  if (Outcome<IdState> refused; !Locate(id, task, stored, refused)) return refused;
  if (task->state != TaskState::kDead) {
    return Fail<IdState>(ErrorCode::kInvalidState,
                         std::string("only a dead task can be retried; this one is ") +
                             std::string(TaskStateName(task->state)));
  }
  task = RetryDead(task, stored);
  ServeWaiters();
  return IdStateOf(*task);
}

Task* Engine::RetryDead(Task* task, StoredTask& stored) {
  task = Unfinished(task, stored);
  // A new chance against max_attempts; a task without a limit (a beanstalkd job) keeps its
  // count, which is then only a count (beanstalkd's reserves).
  if (task->max_attempts != UINT32_MAX) task->attempts = 0;
  task->dead_reason = DeadReason::kNone;
  task->set_deadline(kNever);  // a manual retry is a new chance; the old deadline has passed
  SetState(*task, TaskState::kReady, Now());
  journal_.TaskChanged(*task);
  return task;
}

Task* Engine::Unfinished(Task* task, StoredTask& stored) {
  if (task == &stored.task) task = Revive(std::move(stored));
  Unfinish(*task->queue, task->finished_at(), task->id);
  return task;
}

Outcome<TaskView> Engine::GetTask(uint64_t id) {
  Tick();
  if (Task* task = FindTask(id)) return ViewNow(*task);
  StoredTask stored;
  Error error;
  switch (LoadFinished(id, stored, error)) {
    case TaskReader::Result::kFound:
      return Ok(ViewOf(stored));
    case TaskReader::Result::kError:
      return {error, {}};
    case TaskReader::Result::kNotFound:
      break;
  }
  return Fail<TaskView>(ErrorCode::kNotFound, kNoTask);
}

// A finished task back in memory (a retry): from its stored record, with its queue's
// indexes moved from the bare id to the task.
Task* Engine::Revive(StoredTask stored) {
  Queue& queue = *FindQueue(stored.queue);
  const uint64_t id = stored.task.id;
  queue.RemoveFinishedId(id);
  Task& task = tasks_.Insert(MakeTask(std::move(stored.task), stored.payload));
  task.queue = &queue;
  task.key = queue.ready().Intern(stored.key);
  task.timer_due = kNever;
  task.published = true;
  if (auto key = queue.finished_keys().find(id); key != queue.finished_keys().end()) {
    task.cold().idempotency_key = std::move(key->second);
    queue.finished_keys().erase(key);
  }
  queue.Add(task);
  return &task;
}

// ---- queues ----------------------------------------------------------------------------

Outcome<TaskPage> Engine::ListTasks(std::string_view queue_name, std::optional<TaskState> state,
                                    size_t limit, uint64_t after) {
  Tick();
  Outcome<TaskPage> out;
  TaskPage& page = out.value;
  Queue* queue = FindQueue(queue_name);
  if (queue == nullptr) return out;
  // Ids in id order over the state asked for, or merged over all states.
  using Iter = absl::btree_set<uint64_t>::const_iterator;
  std::vector<std::pair<Iter, Iter>> cursors;
  for (int i = 0; i < kTaskStateCount; ++i) {
    const auto s = static_cast<TaskState>(i);
    if (state && *state != s) continue;
    const auto& ids = queue->ids_in(s);
    cursors.emplace_back(ids.upper_bound(after), ids.end());
  }
  auto next_id = [&cursors]() -> std::optional<uint64_t> {
    std::pair<Iter, Iter>* best = nullptr;
    for (auto& c : cursors) {
      if (c.first != c.second && (best == nullptr || *c.first < *best->first)) best = &c;
    }
    if (best == nullptr) return std::nullopt;
    return *best->first++;
  };
  size_t bytes = 0;
  uint64_t last = 0;
  while (std::optional<uint64_t> id = next_id()) {
    TaskView view;
    if (const Task* task = FindTask(*id)) {
      if (!View(*task, /*with_token=*/false, view, out.error)) return out;
    } else {
      StoredTask stored;
      TaskReader::Result r = LoadFinished(*id, stored, out.error);
      if (r == TaskReader::Result::kError) return out;
      if (r == TaskReader::Result::kNotFound) continue;
      view = ViewOf(stored);
    }
    const size_t cost = AnswerBytes(view);
    page.truncated = !page.tasks.empty() && bytes + cost > limits_.max_response_bytes;
    if (page.tasks.size() == limit || page.truncated) {
      page.next_after = last;
      break;
    }
    bytes += cost;
    last = *id;
    page.tasks.push_back(std::move(view));
  }
  return out;
}

QueueSnapshot Engine::QueueStats(std::string_view queue_name) {
  Tick();
  if (Queue* queue = FindQueue(queue_name)) {
    QueueSnapshot snapshot = SnapshotOf(*queue);
    snapshot.exists = true;
    return snapshot;
  }
  return SnapshotOf(Queue(std::string(queue_name), clock_));
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
  QueueConfig config = queue.config();
  patch.ApplyTo(config);
  queue.set_config(config);
  journal_.QueueConfigChanged(queue.name(), queue.config());
  // Tasks that finished before the change follow the new retention too; the ones now
  // past it are purged by the next ticks, a slice at a time.
  if (queue.config().retention_ms != old_retention) ArmPurge(queue);
  if (!Paused(queue) && !queue.ready().empty()) MarkReady(queue);
  ServeWaiters();
  Outcome<QueueConfig> out = Ok(queue.config());
  MaybeForget(queue);
  return out;
}

// ---- recovery ---------------------------------------------------------------------------

void Engine::RestoreQueueConfig(std::string_view queue, const QueueConfig& config) {
  GetOrCreateQueue(queue).set_config(config);
}

size_t Engine::PayloadCacheLimit() const {
  return reader_ == nullptr ? SIZE_MAX : limits_.payload_cache_bytes;
}

TaskPtr Engine::MakeTaskWithoutPayload(Task&& fields, size_t payload_size) {
  fields.payload_size = static_cast<uint32_t>(payload_size);
  return NewTask(std::move(fields), nullptr);
}

void Engine::RestoreTask(StoredTask&& stored, const std::string_view* payload,
                         size_t payload_size) {
  Task& task = stored.task;
  if (restoring_ == nullptr || restoring_->name() != stored.queue) {
    restoring_ = &GetOrCreateQueue(stored.queue);
  }
  Queue& queue = *restoring_;
  if (tasks_.Contains(task.id)) return;  // ids are unique keys in storage; never twice
  if (IsFinished(task.state)) {
    queue.finished().emplace_back(task.finished_at(), task.id);
    if (!task.idempotency_key().empty()) queue.idempotency()[task.idempotency_key()] = task.id;
    if (reader_ != nullptr) {  // its id only: the record stays in storage
      if (!task.idempotency_key().empty()) {
        queue.finished_keys()[task.id] = std::move(task.cold().idempotency_key);
      }
      queue.AddFinishedId(task.id, task.state);
      return;
    }
  }
  Task& t = tasks_.Insert(payload != nullptr || reader_ == nullptr
                              ? MakeTask(std::move(task), payload ? *payload : "")
                              : MakeTaskWithoutPayload(std::move(task), payload_size));
  t.queue = &queue;
  t.key = queue.ready().Intern(stored.key);
  t.timer_due = kNever;
  t.published = true;
  queue.Add(t);
  // A key paused by a nack stays paused across the restart, until the task's run time.
  if (t.pauses_key && t.state == TaskState::kScheduled)
    queue.ready().PauseKey(t, MonoDue(t.run_at));
  if (!IsFinished(t.state)) {
    ++live_tasks_;
    shared_.live_tasks.Take();
  }
  if (!t.idempotency_key().empty()) queue.idempotency()[t.idempotency_key()] = t.id;
  if (!t.unique_key().empty() && !IsFinished(t.state)) {
    uint64_t& holder = queue.unique()[t.unique_key()];
    holder = std::max(holder, t.id);  // the newest unfinished task with the key took it
  }
  Rearm(t);
}

void Engine::FinishRestore() {
  restoring_ = nullptr;
  for (auto& [name, queue] : queues_) {
    auto& fifo = queue->finished();
    std::sort(fifo.begin(), fifo.end());  // restored in id order; purged in finish order
    ArmPurge(*queue);
  }
}

void Engine::Reset() {
  restoring_ = nullptr;
  while (!waiter_deadlines_.empty()) CancelWaiter(waiter_deadlines_.begin()->second);
  ++generation_;
  purge_timers_.clear();
  flow_timers_.clear();
  pause_timers_.clear();  // (a reload ends the pauses: they are not stored)
  finished_this_command_.clear();
  shared_.live_tasks.Give(live_tasks_);
  live_tasks_ = 0;
  timers_.clear();
  tasks_.Clear();
  queues_.clear();
  topics_.clear();
  schedules_.clear();
  schedule_due_.clear();
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
