#include "http/http_metrics.h"

namespace conveyor {

std::string_view RouteName(Route route) {
  static constexpr std::string_view kNames[kRouteCount] = {
      "add_task",        "enqueue",        "lease",          "ack",          "nack",
      "extend",          "batch_ack",      "get_task",       "cancel",       "retry",
      "list_queues",     "get_queue",      "put_queue",      "list_tasks",   "delete_queue",
      "retry_dead",      "purge",          "list_topics",    "get_topic",    "put_topic",
      "delete_topic",    "publish",        "list_schedules", "get_schedule", "put_schedule",
      "delete_schedule", "pause_schedule", "metrics",        "healthz",      "other"};
  return kNames[static_cast<size_t>(route)];
}

HttpMetrics::HttpMetrics(size_t threads) : rows_(threads) {}

void HttpMetrics::Count(size_t thread, Route route, int status) {
  size_t column = kStatuses.size() - 1;  // "other"
  for (size_t i = 0; i + 2 < kStatuses.size(); ++i) {
    if (kStatuses[i] == status) column = i;
  }
  rows_[thread % rows_.size()].counts[static_cast<size_t>(route)][column].fetch_add(
      1, std::memory_order_relaxed);
}

void HttpMetrics::AppendPrometheus(std::string& out) const {
  out += "# HELP conveyor_http_requests_total HTTP requests answered, by route and status.\n";
  out += "# TYPE conveyor_http_requests_total counter\n";
  for (size_t r = 0; r < kRouteCount; ++r) {
    for (size_t c = 0; c < kStatuses.size(); ++c) {
      if (c + 2 == kStatuses.size()) continue;  // unused slot
      uint64_t total = 0;
      for (const Row& row : rows_) total += row.counts[r][c].load(std::memory_order_relaxed);
      if (total == 0) continue;
      std::string status = c + 1 == kStatuses.size() ? "other" : std::to_string(kStatuses[c]);
      out += "conveyor_http_requests_total{route=\"" + std::string(RouteName(Route(r))) +
             "\",status=\"" + status + "\"} " + std::to_string(total) + "\n";
    }
  }
}

}  // namespace conveyor
