#include "engine/queue.h"

namespace conveyor {

// Hinted at the end: a new task has the highest id, and usually comes last in the ready
// order too; a wrong hint costs two comparisons before the usual descent.
void Queue::Add(const Task& task) {
  auto& ids = by_state_[Index(task.state)];
  ids.insert(ids.end(), task.id);
  if (task.state == TaskState::kReady) AddReady(task);
  if (task.state == TaskState::kScheduled) scheduled_.insert({task.run_at, task.id});
  if (task.state == TaskState::kLeased) ready_.LeasedAdded(task);
}

void Queue::Remove(const Task& task) {
  by_state_[Index(task.state)].erase(task.id);
  if (task.state == TaskState::kReady) RemoveReady(task);
  if (task.state == TaskState::kScheduled) scheduled_.erase({task.run_at, task.id});
  if (task.state == TaskState::kLeased) ready_.LeasedRemoved(task);
}

bool Queue::empty() const {
  if (unpublished_ != 0) return false;
  for (const auto& ids : by_state_) {
    if (!ids.empty()) return false;
  }
  return true;
}

bool Queue::RemoveFinishedId(uint64_t id) {
  for (TaskState s : {TaskState::kSucceeded, TaskState::kDead, TaskState::kCanceled}) {
    if (by_state_[Index(s)].erase(id) > 0) return true;
  }
  return false;
}

bool Queue::HasFinishedId(uint64_t id) const {
  for (TaskState s : {TaskState::kSucceeded, TaskState::kDead, TaskState::kCanceled}) {
    if (by_state_[Index(s)].contains(id)) return true;
  }
  return false;
}

void Queue::RecordReadyWait(int64_t wait_ms) {
  if (wait_ms < 0) wait_ms = 0;
  size_t bucket = 0;
  while (bucket < kWaitBucketsMs.size() && wait_ms > kWaitBucketsMs[bucket]) ++bucket;
  ++wait_buckets_[bucket];
  wait_sum_ms_ += wait_ms;
}

}  // namespace conveyor
