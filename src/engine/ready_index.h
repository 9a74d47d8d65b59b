// ReadyIndex: one queue's ready tasks in lease order, and which of them may be leased now
// under the queue's flow control (docs/API.md "Flow control"): rate limits (a token bucket
// for the queue or one per key), concurrency limits (of the queue, of one key), paused
// keys, fair share between keys, earliest deadline first and aging.
//
// Ready tasks are kept per key (KeyState; tasks without a key share one). The keys that
// may be leased from now are `eligible_`, ordered by their first task (or, with fairness,
// by priority and then by the share each key has had); a key held back by its rate or a
// pause waits in `waiting_` until its time, one held back by its concurrency is out of
// both until one of its leases ends. So a lease takes the next task in O(log keys), and
// keys that are over their limits never block the others.
//
// Owned by its Queue, on the shard's thread, like the rest of it. Time is the Clock's
// monotonic ms.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "common/clock.h"
#include "engine/queue_config.h"
#include "engine/task.h"
#include "engine/token_bucket.h"

namespace conveyor {

// The lease order within one queue (docs/API.md "Lease order"): higher priority first
// (with aging: priority + waited / aging_ms), then the nearer deadline (none is last),
// then the earlier ready time, then the lower id. A task's fields that it reads do not
// change while the task is ready.
struct ReadyOrder {
  int64_t aging_ms = 0;
  bool operator()(const Task* a, const Task* b) const;
};
using ReadySet = absl::btree_set<const Task*, ReadyOrder>;

// The same order between the heads of different queues (a lease over several queues,
// beanstalkd's watch list): aging is a queue's own, so it is left out.
bool BeforeAcrossQueues(const Task& a, const Task& b);

class ReadyIndex;

// One key of a queue: its ready tasks, its limits' state, its share. Lives while tasks in
// memory carry it (refs), and after that until its limits have nothing to remember.
struct KeyState {
  std::string name;
  ReadyIndex* owner = nullptr;
  uint64_t seq = 0;     // order of creation: the last tie-breaker between keys
  uint32_t refs = 0;    // tasks in memory (any state) with this key
  uint32_t leased = 0;  // its tasks leased now
  uint32_t weight = 1;  // its share with fairness
  ReadySet ready;
  TokenBucket bucket;        // with a per-key rate limit
  int64_t paused_until = 0;  // monotonic; a nack's pause_key_ms / retry_at
  uint64_t pass = 0;         // fairness: the share it has had (stride scheduling)
  enum class Place : uint8_t { kNone, kEligible, kWaiting, kSlots };
  Place place = Place::kNone;  // kNone: no ready task
  int64_t wait_due = 0;        // in waiting_ (kWaiting)
  bool held_by_rate = false;   // kWaiting because of its bucket (else a pause)
  bool idle_listed = false;
};

// Counts for GET /v1/queues/{q} and /metrics, taken on the shard's thread.
struct FlowSnapshot {
  uint64_t keys = 0;          // keys known (with tasks, or limits to remember)
  uint64_t held_by_rate = 0;  // ready tasks a rate limit holds back now
  uint64_t held_by_concurrency = 0;
  uint64_t held_by_pause = 0;  // ready tasks of paused keys
  uint64_t paused_keys = 0;
  uint64_t leased = 0;
  uint64_t unique_keys = 0;  // unique keys taken by unfinished tasks (Queue::unique)
  double tokens = -1;        // the queue's bucket (without per_key); -1: no rate limit
  struct KeyGauge {
    std::string key;
    uint64_t ready = 0;
    uint64_t leased = 0;
  };
  std::vector<KeyGauge> top_keys;  // the busiest keys (ready + leased), at most the cap
};

// The order of the keys a lease may take from: by their first tasks' lease order, or with
// fairness by those tasks' priority and then by the share each key has had.
struct KeyOrder {
  ReadyOrder order;
  bool fair = false;
  bool operator()(const KeyState* a, const KeyState* b) const;
};

class ReadyIndex {
 public:
  explicit ReadyIndex(const Clock& clock);
  ReadyIndex(const ReadyIndex&) = delete;
  ReadyIndex& operator=(const ReadyIndex&) = delete;
  ~ReadyIndex();

  // The queue's flow settings; re-sorts everything when the order changes.
  void Configure(const QueueConfig& config);

  // The key of a task being made (a reference it keeps until it is deleted; null for no
  // key). Release comes from the task's deleter.
  KeyState* Intern(std::string_view key);
  static void Release(KeyState* key);

  // A task enters or leaves the ready state (Queue::Add/Remove).
  void Add(const Task& task);
  void Remove(const Task& task);
  // A task enters or leaves the leased state (concurrency counts).
  void LeasedAdded(const Task& task);
  void LeasedRemoved(const Task& task);

  // The task a lease takes next, or null when none may be leased now.
  const Task* Next();
  // That task is being leased: its tokens are taken and its key's share counted. Call
  // before its state changes.
  void Taken(const Task& task);
  // No task of this task's key is leased before `until` (monotonic).
  void PauseKey(const Task& task, int64_t until);
  // The next monotonic time at which Next() may find a task it does not find now
  // (a bucket refilled, a pause over); kNever when only a lease ending can.
  int64_t NextChangeAt();

  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  // The first ready task in lease order whatever the limits (beanstalkd's peek-ready).
  const Task* AnyHead();
  bool limits_concurrency() const { return max_ > 0 || per_key_max_ > 0; }
  FlowSnapshot Snapshot(size_t top_keys) const;

 private:
  static constexpr uint64_t kStride = 1 << 20;

  KeyState& KeyOf(const Task& task) { return task.key != nullptr ? *task.key : none_; }
  void InitKey(KeyState& key);
  void Unplace(KeyState& key);
  void Place(KeyState& key, int64_t now);
  void Refresh(int64_t now);
  void CollectIdle(int64_t now, size_t budget);
  void Rebuild();

  const Clock& clock_;
  // Settings.
  std::optional<RateLimit> rate_;
  uint32_t max_ = 0;
  uint32_t per_key_max_ = 0;
  bool fair_ = false;
  int64_t aging_ms_ = 0;
  absl::flat_hash_map<std::string, uint32_t> weights_;

  TokenBucket bucket_;  // the queue's, without per_key
  KeyState none_;       // tasks without a key
  absl::flat_hash_map<std::string, std::unique_ptr<KeyState>> keys_;
  absl::btree_set<KeyState*, KeyOrder> eligible_;
  absl::btree_set<std::pair<int64_t, KeyState*>> waiting_;
  std::deque<KeyState*> idle_;  // keys whose last task went: to forget when they may
  size_t size_ = 0;
  uint32_t leased_ = 0;
  uint64_t vtime_ = 0;  // fairness: the pass of the key served last
  uint64_t next_seq_ = 1;
};

}  // namespace conveyor
