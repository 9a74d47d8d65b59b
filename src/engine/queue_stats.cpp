#include "engine/queue_stats.h"

#include "common/json_writer.h"

namespace conveyor {

QueueSnapshot SnapshotOf(const Queue& queue) {
  QueueSnapshot s;
  s.name = queue.name();
  for (int i = 0; i < kTaskStateCount; ++i) s.counts[i] = queue.count(static_cast<TaskState>(i));
  s.totals = queue.totals();
  s.config = queue.config();
  s.wait_buckets = queue.wait_buckets();
  s.wait_sum_ms = queue.wait_sum_ms();
  return s;
}

void AppendQueueStatsJson(std::string& out, const QueueSnapshot& s) {
  JsonWriter w(out);
  w.BeginObject();
  w.Field("name", std::string_view(s.name));
  w.Key("counts").BeginObject();
  for (int i = 0; i < kTaskStateCount; ++i) {
    w.Field(TaskStateName(static_cast<TaskState>(i)), s.counts[i]);
  }
  w.EndObject();
  w.Key("totals").BeginObject();
  w.Field("enqueued", s.totals.enqueued);
  w.Field("acked", s.totals.acked);
  w.Field("nacked", s.totals.nacked);
  w.Field("expired", s.totals.expired);
  w.Field("dead", s.totals.dead);
  w.EndObject();
  std::string config;
  AppendQueueConfigJson(config, s.config);
  w.Key("config").Raw(config);
  w.EndObject();
}

}  // namespace conveyor
