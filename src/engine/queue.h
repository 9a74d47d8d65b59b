// Queue: one named queue's indexes inside its shard's Engine: the ready order, the ids of
// its tasks by state (for listing pages and counts), the purge FIFO of finished tasks,
// counters, idempotency keys, long-poll waiters and the ready-to-leased wait histogram.
// Owned by the Engine and touched only on its thread; it holds no Task memory (the Engine
// owns tasks), only ids and keys. A finished task costs the queue an id in its state's
// index and a (finished_at, id) entry in the FIFO: about 30 bytes, whatever its payload.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <string>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "common/clock.h"
#include "engine/queue_config.h"
#include "engine/ready_index.h"
#include "engine/task.h"

namespace conveyor {

// The lease order key of a queue's most urgent ready task, to compare queues (the order
// of BeforeAcrossQueues: priority, deadline, ready time, id).
struct ReadyKey {
  int32_t priority;
  int64_t deadline;
  int64_t ready_at;
  uint64_t id;

  static ReadyKey Of(const Task& t) { return ReadyKey{t.priority, t.deadline(), t.ready_at, t.id}; }

  bool operator<(const ReadyKey& o) const {
    if (priority != o.priority) return priority > o.priority;
    if (deadline != o.deadline) return deadline < o.deadline;
    if (ready_at != o.ready_at) return ready_at < o.ready_at;
    return id < o.id;
  }
};

// A priority above this is beanstalkd's pri below 1024 (its "urgent" jobs).
inline constexpr int32_t kUrgentBelowPriority = 2147483647 - 1024;

struct QueueTotals {
  uint64_t enqueued = 0;
  uint64_t leased = 0;
  uint64_t acked = 0;
  uint64_t nacked = 0;
  uint64_t expired = 0;
  uint64_t dead = 0;
  uint64_t deferred = 0;  // nacks that held their key (retry_at, pause_key_ms): no failure
  uint64_t deletes = 0;   // Engine::Delete and Engine::PauseQueue calls (beanstalkd's
  uint64_t pauses = 0;    // cmd-delete and cmd-pause-tube of a tube)
};

// Upper bounds (ms) of the ready->leased wait histogram buckets; +Inf is implicit.
inline constexpr std::array<int64_t, 12> kWaitBucketsMs = {1,   5,    10,   50,    100,   250,
                                                           500, 1000, 5000, 10000, 60000, 300000};

class Queue {
 public:
  Queue(std::string name, const Clock& clock) : name_(std::move(name)), ready_(clock) {}

  const std::string& name() const { return name_; }
  const QueueConfig& config() const { return config_; }
  // A new config; the ready index takes its flow settings.
  void set_config(const QueueConfig& config) {
    config_ = config;
    ready_.Configure(config_);
  }

  // Index upkeep, called by the Engine on every state change.
  void Add(const Task& task);
  void Remove(const Task& task);
  void AddReady(const Task& task) {
    ready_.Add(task);
    urgent_ += task.priority > kUrgentBelowPriority;
  }
  void RemoveReady(const Task& task) {
    const size_t before = ready_.size();
    ready_.Remove(task);
    if (ready_.size() < before) urgent_ -= task.priority > kUrgentBelowPriority;
  }
  // Ready tasks above kUrgentBelowPriority (a task's priority never changes while ready).
  uint64_t urgent() const { return urgent_; }

  // The ready tasks in lease order, and what flow control lets a lease take now.
  ReadyIndex& ready() { return ready_; }
  const ReadyIndex& ready() const { return ready_; }
  // Scheduled tasks by (run_at, id), earliest first: a task's run_at never changes while
  // it is scheduled (it leaves the index first), so peek-delayed and kick need no scan.
  const absl::btree_set<std::pair<int64_t, uint64_t>>& scheduled() const { return scheduled_; }
  const absl::btree_set<uint64_t>& ids_in(TaskState s) const { return by_state_[Index(s)]; }
  uint64_t count(TaskState s) const { return by_state_[Index(s)].size(); }
  // No task at all, tasks whose creation is not yet durable included.
  bool empty() const;

  // A finished task that is no longer in memory (its record is in storage): only its id.
  void AddFinishedId(uint64_t id, TaskState state) { by_state_[Index(state)].insert(id); }
  // Removes a finished id whatever its state; false when it was not there.
  bool RemoveFinishedId(uint64_t id);
  bool HasFinishedId(uint64_t id) const;

  // Finished tasks in the order they finished: (finished_at epoch ms, id). Purged from the
  // front once finished_at + retention has passed. An entry of a task since retried is
  // taken out by the Engine.
  std::deque<std::pair<int64_t, uint64_t>>& finished() { return finished_; }
  // The idempotency keys of finished tasks that are no longer in memory (to forget the
  // key when the task is purged).
  absl::flat_hash_map<uint64_t, std::string>& finished_keys() { return finished_keys_; }
  // The monotonic time the Engine's purge timer of this queue is armed for, or kNever.
  int64_t& purge_due() { return purge_due_; }
  // The monotonic time the Engine's flow timer of this queue is armed for (a rate limit's
  // next token or a key's pause ending, while lease waits are parked), or kNever.
  int64_t& flow_due() { return flow_due_; }
  // A pause for a while (beanstalkd's pause-tube), on the monotonic clock: no lease takes
  // a task of the queue before it ends; 0 when there is none. Not stored: a restart ends
  // it, as beanstalkd's. pause_ms is the length it was given.
  int64_t pause_until() const { return pause_until_; }
  int64_t pause_ms() const { return pause_ms_; }
  void set_pause(int64_t until, int64_t ms) {
    pause_until_ = until;
    pause_ms_ = ms;
  }
  void AddUnpublished() { ++unpublished_; }
  void RemoveUnpublished() { --unpublished_; }

  QueueTotals& totals() { return totals_; }
  const QueueTotals& totals() const { return totals_; }

  absl::flat_hash_map<std::string, uint64_t>& idempotency() { return idempotency_; }
  // Unique keys and the task that last took each (it holds it while Task::HoldsUnique).
  absl::flat_hash_map<std::string, uint64_t>& unique() { return unique_; }
  size_t unique_count() const { return unique_.size(); }
  // Ids of the lease waits parked on this queue, oldest first (the Engine owns the waits).
  std::list<uint64_t>& waiters() { return waiters_; }

  void RecordReadyWait(int64_t wait_ms);
  const std::array<uint64_t, kWaitBucketsMs.size() + 1>& wait_buckets() const {
    return wait_buckets_;
  }
  int64_t wait_sum_ms() const { return wait_sum_ms_; }

 private:
  static size_t Index(TaskState s) { return static_cast<size_t>(s); }

  std::string name_;
  QueueConfig config_;
  ReadyIndex ready_;
  uint64_t urgent_ = 0;
  absl::btree_set<std::pair<int64_t, uint64_t>> scheduled_;
  std::array<absl::btree_set<uint64_t>, kTaskStateCount> by_state_;
  std::deque<std::pair<int64_t, uint64_t>> finished_;
  absl::flat_hash_map<uint64_t, std::string> finished_keys_;
  int64_t purge_due_ = kNever;
  int64_t flow_due_ = kNever;
  int64_t pause_until_ = 0;
  int64_t pause_ms_ = 0;
  QueueTotals totals_;
  absl::flat_hash_map<std::string, uint64_t> idempotency_;
  absl::flat_hash_map<std::string, uint64_t> unique_;
  std::list<uint64_t> waiters_;
  std::array<uint64_t, kWaitBucketsMs.size() + 1> wait_buckets_{};
  int64_t wait_sum_ms_ = 0;
  size_t unpublished_ = 0;
};

}  // namespace conveyor
