#include "engine/queue_stats.h"

namespace conveyor {

QueueSnapshot SnapshotOf(const Queue& queue) {
  QueueSnapshot s;
  s.name = queue.name();
  for (int i = 0; i < kTaskStateCount; ++i) s.counts[i] = queue.count(static_cast<TaskState>(i));
  s.totals = queue.totals();
  s.config = queue.config();
  s.wait_buckets = queue.wait_buckets();
  s.wait_sum_ms = queue.wait_sum_ms();
  s.urgent = queue.urgent();
  s.pause_ms = queue.pause_ms();
  s.pause_until_mono = queue.pause_until();
  s.flow = queue.ready().Snapshot(kTopKeysShown);
  s.flow.unique_keys = queue.unique_count();
  return s;
}

}  // namespace conveyor
