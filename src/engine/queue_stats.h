// QueueSnapshot: a copy of one queue's counters taken on its shard's thread, handed to
// another thread to render /v1/queues and /metrics. Plain data; owned by whoever holds it.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "engine/queue.h"

namespace conveyor {

// The busiest keys of a queue shown in its stats and /metrics (a cardinality cap).
inline constexpr size_t kTopKeysShown = 20;

struct QueueSnapshot {
  std::string name;
  std::array<uint64_t, kTaskStateCount> counts{};
  QueueTotals totals;
  QueueConfig config;
  std::array<uint64_t, kWaitBucketsMs.size() + 1> wait_buckets{};
  int64_t wait_sum_ms = 0;
  // Only from Engine::QueueStats (one queue): the queue exists.
  bool exists = false;
  uint64_t urgent = 0;   // ready tasks above kUrgentBelowPriority (beanstalkd's urgent jobs)
  int64_t pause_ms = 0;  // a timed pause's length (PauseQueue); 0: none
  int64_t pause_until_mono = 0;  // its end on the monotonic clock
  FlowSnapshot flow;             // flow control: keys, tasks held back, the busiest keys
};

QueueSnapshot SnapshotOf(const Queue& queue);

}  // namespace conveyor
