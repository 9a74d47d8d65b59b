#include "api/metrics_page.h"

#include <algorithm>
#include <cstdio>

namespace conveyor {
namespace {

// Queue names are [A-Za-z0-9._-], so they need no escaping inside a label value.
std::string QueueLabel(const QueueSnapshot& q) { return "queue=\"" + q.name + "\""; }

void Header(std::string& out, const char* name, const char* type, const char* help) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

void Counter(std::string& out, const std::vector<QueueSnapshot>& queues, const char* name,
             const char* help, uint64_t QueueTotals::*field) {
  Header(out, name, "counter", help);
  for (const auto& q : queues) {
    out += std::string(name) + "{" + QueueLabel(q) + "} " + std::to_string(q.totals.*field) + "\n";
  }
}

std::string Seconds(int64_t ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", static_cast<double>(ms) / 1000.0);
  return buf;
}

void Gauge(std::string& out, const char* name, const char* help, size_t value) {
  Header(out, name, "gauge", help);
  out += std::string(name) + " " + std::to_string(value) + "\n";
}

// A label value in the text format: backslash, double quote and line feed escaped.
std::string LabelValue(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

// Flow control: tasks held back by reason, keys known, and the busiest keys of each queue
// (at most kTopKeysShown a queue: a cap on the series' cardinality).
void AppendFlowMetrics(std::string& out, const std::vector<QueueSnapshot>& queues) {
  Header(out, "conveyor_queue_held_tasks", "gauge",
         "Ready tasks that flow control holds back now, by reason.");
  for (const auto& q : queues) {
    const std::string label = "conveyor_queue_held_tasks{" + QueueLabel(q) + ",reason=\"";
    out += label + "rate\"} " + std::to_string(q.flow.held_by_rate) + "\n";
    out += label + "concurrency\"} " + std::to_string(q.flow.held_by_concurrency) + "\n";
    out += label + "paused_key\"} " + std::to_string(q.flow.held_by_pause) + "\n";
  }
  Header(out, "conveyor_queue_keys", "gauge", "Keys the queue knows (tasks, or limits to keep).");
  for (const auto& q : queues) {
    out += "conveyor_queue_keys{" + QueueLabel(q) + "} " + std::to_string(q.flow.keys) + "\n";
  }
  Header(out, "conveyor_key_tasks", "gauge",
         "Ready and leased tasks of the busiest keys of each queue (20 at most a queue).");
  for (const auto& q : queues) {
    for (const auto& k : q.flow.top_keys) {
      const std::string label =
          "conveyor_key_tasks{" + QueueLabel(q) + ",key=\"" + LabelValue(k.key) + "\",state=\"";
      out += label + "ready\"} " + std::to_string(k.ready) + "\n";
      out += label + "leased\"} " + std::to_string(k.leased) + "\n";
    }
  }
}

}  // namespace

void AppendScheduleMetrics(std::string& out, const std::vector<ScheduleView>& schedules,
                           size_t max) {
  const size_t n = std::min(max, schedules.size());
  auto label = [](const ScheduleView& s) {
    return "{schedule=\"" + s.name + "\",queue=\"" + s.spec.queue + "\"} ";
  };
  Header(out, "conveyor_schedule_runs_total", "counter", "Ticks of the schedule that enqueued.");
  for (size_t i = 0; i < n; ++i) {
    out += "conveyor_schedule_runs_total" + label(schedules[i]) +
           std::to_string(schedules[i].runs) + "\n";
  }
  Header(out, "conveyor_schedule_skipped_total", "counter",
         "Ticks not run (missed while down per catch_up, or refused by a unique key).");
  for (size_t i = 0; i < n; ++i) {
    out += "conveyor_schedule_skipped_total" + label(schedules[i]) +
           std::to_string(schedules[i].skipped) + "\n";
  }
  Header(out, "conveyor_schedule_next_run_timestamp_seconds", "gauge",
         "When the schedule runs next (Unix time); absent while paused.");
  for (size_t i = 0; i < n; ++i) {
    const ScheduleView& s = schedules[i];
    if (s.spec.paused || s.next_at == kNever) continue;
    char when[40];
    std::snprintf(when, sizeof when, "%lld.%03lld", static_cast<long long>(s.next_at / 1000),
                  static_cast<long long>(s.next_at % 1000));
    out += "conveyor_schedule_next_run_timestamp_seconds" + label(s) + when + "\n";
  }
}

std::string RenderMetricsPage(std::vector<QueueSnapshot> queues, size_t max_queues,
                              const ServerGauges& gauges, const HttpMetrics& http) {
  std::sort(queues.begin(), queues.end(),
            [](const QueueSnapshot& a, const QueueSnapshot& b) { return a.name < b.name; });
  const size_t dropped = queues.size() > max_queues ? queues.size() - max_queues : 0;
  queues.resize(queues.size() - dropped);
  std::string out;
  Gauge(out, "conveyor_metrics_queues_dropped",
        "Queues left out of the per-queue series (--max-metrics-queues).", dropped);
  Gauge(out, "conveyor_live_tasks", "Unfinished tasks in the server (--max-tasks counts these).",
        gauges.live_tasks);
  Gauge(out, "conveyor_waiters", "Parked long-polls (--max-waiters counts these).", gauges.waiters);
  Gauge(out, "conveyor_payload_cache_bytes",
        "Payload bytes of tasks held in memory (--payload-cache-bytes bounds them).",
        gauges.payload_cache_bytes);
  if (gauges.rss_bytes != 0) {
    Gauge(out, "conveyor_resident_memory_bytes", "Sampled RSS (--max-memory-bytes).",
          gauges.rss_bytes);
  }
  Counter(out, queues, "conveyor_tasks_enqueued_total", "Tasks enqueued.", &QueueTotals::enqueued);
  Counter(out, queues, "conveyor_tasks_leased_total", "Leases handed out.", &QueueTotals::leased);
  Counter(out, queues, "conveyor_tasks_acked_total", "Tasks acknowledged.", &QueueTotals::acked);
  Counter(out, queues, "conveyor_tasks_nacked_total", "Tasks nacked.", &QueueTotals::nacked);
  Counter(out, queues, "conveyor_tasks_expired_total", "Leases that expired.",
          &QueueTotals::expired);
  Counter(out, queues, "conveyor_tasks_dead_total", "Tasks that became dead.", &QueueTotals::dead);
  Counter(out, queues, "conveyor_tasks_deferred_total",
          "Nacks that paused their key (retry_at, pause_key_ms): not failures.",
          &QueueTotals::deferred);

  Header(out, "conveyor_queue_tasks", "gauge", "Tasks in the queue by state.");
  for (const auto& q : queues) {
    for (int i = 0; i < kTaskStateCount; ++i) {
      out += "conveyor_queue_tasks{" + QueueLabel(q) + ",state=\"" +
             std::string(TaskStateName(static_cast<TaskState>(i))) + "\"} " +
             std::to_string(q.counts[i]) + "\n";
    }
  }

  Header(out, "conveyor_ready_wait_seconds", "histogram",
         "Time from a task becoming ready to being leased.");
  for (const auto& q : queues) {
    uint64_t cumulative = 0;
    for (size_t b = 0; b < q.wait_buckets.size(); ++b) {
      cumulative += q.wait_buckets[b];
      std::string le = b < kWaitBucketsMs.size() ? Seconds(kWaitBucketsMs[b]) : "+Inf";
      out += "conveyor_ready_wait_seconds_bucket{" + QueueLabel(q) + ",le=\"" + le + "\"} " +
             std::to_string(cumulative) + "\n";
    }
    out +=
        "conveyor_ready_wait_seconds_sum{" + QueueLabel(q) + "} " + Seconds(q.wait_sum_ms) + "\n";
    out += "conveyor_ready_wait_seconds_count{" + QueueLabel(q) + "} " +
           std::to_string(cumulative) + "\n";
  }
  AppendFlowMetrics(out, queues);
  http.AppendPrometheus(out);
  return out;
}

}  // namespace conveyor
