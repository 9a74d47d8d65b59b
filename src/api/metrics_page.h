// Renders GET /metrics in the Prometheus text format (names start with conveyor_,
// per-queue series carry a queue label) from queue snapshots gathered from every shard
// and the HTTP counters. Stateless; runs on the requesting connection's thread.
#pragma once

#include <string>
#include <vector>

#include "engine/queue_stats.h"
#include "http/http_metrics.h"

namespace conveyor {

std::string RenderMetricsPage(const std::vector<QueueSnapshot>& queues, const HttpMetrics& http);

}  // namespace conveyor
