#include "engine/queue.h"

namespace conveyor {

void Queue::Add(const Task& task) {
  all_ids_.insert(task.id);
  by_state_[Index(task.state)].insert(task.id);
  if (task.state == TaskState::kReady) AddReady(task);
}

void Queue::Remove(const Task& task) {
  all_ids_.erase(task.id);
  by_state_[Index(task.state)].erase(task.id);
  if (task.state == TaskState::kReady) RemoveReady(task);
}

void Queue::RecordReadyWait(int64_t wait_ms) {
  if (wait_ms < 0) wait_ms = 0;
  size_t bucket = 0;
  while (bucket < kWaitBucketsMs.size() && wait_ms > kWaitBucketsMs[bucket]) ++bucket;
  ++wait_buckets_[bucket];
  wait_sum_ms_ += wait_ms;
}

}  // namespace conveyor
