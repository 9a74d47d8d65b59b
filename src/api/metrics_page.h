// Renders GET /metrics in the Prometheus text format (names start with conveyor_,
// per-queue series carry a queue label) from queue snapshots gathered from every shard
// and the HTTP counters. Stateless; runs on the requesting connection's thread.
#pragma once

#include <string>
#include <vector>

#include "engine/queue_stats.h"
#include "engine/schedule.h"
#include "http/http_metrics.h"

namespace conveyor {

// Server-wide gauges, read from ServerWide when the page is rendered.
struct ServerGauges {
  size_t live_tasks = 0;
  size_t waiters = 0;
  size_t rss_bytes = 0;  // 0 when not sampled (no --max-memory-bytes)
  size_t payload_cache_bytes = 0;
};

// At most max_queues queues get their own series (the first by name, so that a scrape
// keeps the same ones); the rest are counted in conveyor_metrics_queues_dropped.
std::string RenderMetricsPage(std::vector<QueueSnapshot> queues, size_t max_queues,
                              const ServerGauges& gauges, const HttpMetrics& http);

// Per schedule (at most `max` of them, the first by name): runs and skipped ticks
// (counters) and the next run (epoch seconds; absent while paused).
void AppendScheduleMetrics(std::string& out, const std::vector<ScheduleView>& schedules,
                           size_t max);

}  // namespace conveyor
