// Engine, part 2: timers (delays, deadlines, lease expiry, retention) and what firing them
// does. One entry per task in timers_, keyed by monotonic time; see engine.h.
#include <algorithm>

#include "engine/engine.h"
#include "engine/saturating.h"

namespace conveyor {

int64_t Engine::MonoDue(int64_t epoch) const {
  if (epoch == kNever) return kNever;
  int64_t in_ms = 0;
  if (__builtin_sub_overflow(epoch, Now(), &in_ms)) in_ms = epoch > 0 ? kNever : 0;
  return SaturatingAdd(Mono(), std::max<int64_t>(in_ms, 0));
}

void Engine::Rearm(Task& task) {
  int64_t epoch_due = kNever;
  switch (task.state) {
    case TaskState::kScheduled:
      epoch_due = std::min(task.run_at, task.deadline());
      break;
    case TaskState::kReady:
      epoch_due = task.deadline();
      break;
    case TaskState::kLeased:
      epoch_due = task.lease_expires_at();
      break;
    default:
      break;  // finished: purged by its queue's FIFO (ArmPurge), no timer of its own
  }
  const int64_t due = MonoDue(epoch_due);
  if (due == task.timer_due) return;
  if (task.timer_due != kNever) timers_.erase({task.timer_due, task.id});
  task.timer_due = due;
  if (due != kNever) timers_.insert({due, task.id});
}

// A timer fires only when its event is due (it was armed for exactly that event), so the
// event is told apart by the task's own fields, never by comparing with the wall clock.
void Engine::Fire(Task& task, int64_t now) {
  switch (task.state) {
    case TaskState::kScheduled:
      if (task.deadline() <= task.run_at) {
        Kill(task, DeadReason::kExpired, now);
      } else {
        SetState(task, TaskState::kReady, now);
      }
      journal_.TaskStateChanged(task);
      return;
    case TaskState::kReady:
      Kill(task, DeadReason::kExpired, now);
      journal_.TaskStateChanged(task);
      return;
    case TaskState::kLeased:
      ExpireLease(task, now);
      return;
    default:
      return;  // finished tasks have no timer
  }
}

void Engine::ExpireLease(Task& task, int64_t now) {
  task.queue->totals().expired++;
  AddError(task, now, "lease expired");
  if (task.attempts >= task.max_attempts) {
    Kill(task, DeadReason::kMaxAttempts, now);
  } else if (task.deadline() <= now) {
    // It can no longer be leased before its deadline.
    Kill(task, DeadReason::kExpired, now);
  } else {
    SetState(task, TaskState::kReady, now);
  }
  journal_.TaskChanged(task);
}

void Engine::ArmPurge(Queue& queue) {
  int64_t due = kNever;
  if (!queue.finished().empty()) {
    due = MonoDue(SaturatingAdd(queue.finished().front().first, queue.config().retention_ms));
  }
  if (due == queue.purge_due()) return;
  if (queue.purge_due() != kNever) purge_timers_.erase({queue.purge_due(), &queue});
  queue.purge_due() = due;
  if (due != kNever) purge_timers_.insert({due, &queue});
}

// Purges the queue's finished tasks whose retention has passed, oldest first, within the
// budget of this tick.
void Engine::PurgeDue(Queue& queue, int64_t now, size_t& budget) {
  auto& fifo = queue.finished();
  const int64_t retention = queue.config().retention_ms;
  while (!fifo.empty() && budget > 0 && SaturatingAdd(fifo.front().first, retention) <= now) {
    const uint64_t id = fifo.front().second;
    fifo.pop_front();
    --budget;
    PurgeFinished(queue, id);
  }
}

void Engine::PurgeFinished(Queue& queue, uint64_t id) {
  auto forget_key = [&queue](const std::string& key, uint64_t task_id) {
    auto it = queue.idempotency().find(key);
    if (it != queue.idempotency().end() && it->second == task_id) queue.idempotency().erase(it);
  };
  uint8_t stored_deltas = kStateDeltaStored | kResultStored | kProgressStored;
  if (Task* task = FindTask(id)) {
    if (!IsFinished(task->state)) return;
    stored_deltas = task->stored_deltas;
    queue.Remove(*task);
    if (!task->idempotency_key().empty()) forget_key(task->idempotency_key(), id);
    if (task->timer_due != kNever) timers_.erase({task->timer_due, id});
    tasks_.Erase(id);
  } else {
    if (!queue.RemoveFinishedId(id)) return;
    if (auto key = queue.finished_keys().find(id); key != queue.finished_keys().end()) {
      forget_key(key->second, id);
      queue.finished_keys().erase(key);
    }
  }
  journal_.TaskRemoved(id, stored_deltas);
}

void Engine::Unfinish(Queue& queue, int64_t finished_at, uint64_t id) {
  auto& fifo = queue.finished();
  const std::pair<int64_t, uint64_t> entry{finished_at, id};
  auto it = std::lower_bound(fifo.begin(), fifo.end(), entry);
  if (it == fifo.end() || *it != entry) it = std::find(fifo.begin(), fifo.end(), entry);
  if (it == fifo.end()) return;
  const bool head = it == fifo.begin();
  fifo.erase(it);
  if (head) ArmPurge(queue);
}

void Engine::Tick() {
  const int64_t now = Now();
  const int64_t mono = Mono();
  size_t fired = 0;
  timers_held_ = false;
  while (!timers_.empty() && timers_.begin()->first <= mono) {
    if (fired == kTimerSlice || !journal_.writable()) {
      timers_held_ = true;
      break;
    }
    uint64_t id = timers_.begin()->second;
    timers_.erase(timers_.begin());
    ++fired;
    Task* task = FindTask(id);
    if (task == nullptr) continue;
    task->timer_due = kNever;
    Fire(*task, now);
  }
  while (!purge_timers_.empty() && purge_timers_.begin()->first <= mono) {
    if (fired >= kTimerSlice || !journal_.writable()) {
      timers_held_ = true;
      break;
    }
    Queue* queue = purge_timers_.begin()->second;
    purge_timers_.erase(purge_timers_.begin());
    queue->purge_due() = kNever;
    size_t budget = kTimerSlice - fired;
    const size_t before = budget;
    PurgeDue(*queue, now, budget);
    fired += before - budget;
    ArmPurge(*queue);  // the next head (still due if the slice ran out: the next tick)
    MaybeForget(*queue);
  }
  while (!pause_timers_.empty() && pause_timers_.begin()->first <= mono) {
    Queue* queue = pause_timers_.begin()->second;
    pause_timers_.erase(pause_timers_.begin());
    queue->set_pause(0, 0);
    if (!Paused(*queue) && !queue->ready().empty()) MarkReady(*queue);
    MaybeForget(*queue);
  }
  while (!flow_timers_.empty() && flow_timers_.begin()->first <= mono) {
    Queue* queue = flow_timers_.begin()->second;
    flow_timers_.erase(flow_timers_.begin());
    queue->flow_due() = kNever;
    MarkReady(*queue);
    ArmFlow(*queue);  // still held back (another took the token): the next moment
  }
  ServeWaiters();
  while (!waiter_deadlines_.empty() && waiter_deadlines_.begin()->first <= mono) {
    CancelWaiter(waiter_deadlines_.begin()->second);
  }
}

int64_t Engine::NextWakeup() const {
  int64_t next = kNever;
  if (!timers_.empty()) next = timers_.begin()->first;
  if (!purge_timers_.empty()) next = std::min(next, purge_timers_.begin()->first);
  if (!pause_timers_.empty()) next = std::min(next, pause_timers_.begin()->first);
  if (!flow_timers_.empty()) next = std::min(next, flow_timers_.begin()->first);
  // Held timers: come back soon, but give other work (and a refusing journal) a moment.
  if (timers_held_) next = std::max(next, Mono() + (journal_.writable() ? 0 : 10));
  if (!waiter_deadlines_.empty()) next = std::min(next, waiter_deadlines_.begin()->first);
  return next;
}

}  // namespace conveyor
