// ServerWide: the little state every shard's Engine shares: the task id sequence and the
// server-wide budgets (long-poll waiters, unfinished tasks, the sampled RSS). All atomics,
// used with relaxed ordering: counts, never a lock. Owned by the ShardSet; any thread.
#pragma once

#include <atomic>
#include <cstdint>

#include "common/limits.h"
#include "common/shared_budget.h"

namespace conveyor {

struct ServerWide {
  explicit ServerWide(const Limits& limits)
      : waiters(limits.max_waiters), live_tasks(limits.max_tasks) {}

  std::atomic<uint64_t> next_sequence{1};
  SharedBudget waiters;     // parked lease and task waiters (--max-waiters)
  SharedBudget live_tasks;  // scheduled + ready + leased tasks (--max-tasks)
  // Bytes of queued tasks' payloads held in memory (--payload-cache-bytes).
  std::atomic<size_t> payload_bytes{0};
  // Resident memory of the process, sampled every 100 ms (--max-memory-bytes).
  std::atomic<size_t> rss_bytes{0};
};

}  // namespace conveyor
