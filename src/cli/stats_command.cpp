// `conveyor stats [QUEUE]`: queue counts and totals as a table and, for the whole server,
// its traffic by door and command (HTTP routes, beanstalkd commands; read from /metrics).
#include <algorithm>
#include <boost/json/parse.hpp>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <map>

#include "cli/commands.h"
#include "client/blocking_http_client.h"
#include "common/prometheus_text.h"

namespace conveyor {
namespace {

namespace json = boost::json;

struct StatsOptions {
  std::string server = "http://127.0.0.1:8700";
  std::string queue;
};

uint64_t Count(const json::value& q, const char* group, const char* name) {
  const json::value* v = q.as_object().if_contains(group);
  if (v == nullptr || !v->is_object()) return 0;
  const json::value* n = v->as_object().if_contains(name);
  return n != nullptr && n->is_number() ? n->to_number<uint64_t>() : 0;
}

// Push queues: the delivery state GET /v1/queues shows under "push".
void PrintPush(const json::array& queues) {
  bool header = false;
  for (const json::value& q : queues) {
    const json::value* push = q.is_object() ? q.as_object().if_contains("push") : nullptr;
    if (push == nullptr || !push->is_object()) continue;
    if (!header) {
      std::printf("\n%-24s %-9s %9s %10s %9s %9s %9s\n", "PUSH QUEUE", "BREAKER", "IN_FLIGHT",
                  "DELIVERED", "FAILED", "DEFERRED", "FAILURES");
      header = true;
    }
    const json::object& p = push->as_object();
    const json::value* name = q.as_object().if_contains("name");
    const json::value* breaker = p.if_contains("breaker");
    auto n = [&p](const char* key) {
      const json::value* v = p.if_contains(key);
      return static_cast<unsigned long long>(
          v != nullptr && v->is_number() ? v->to_number<uint64_t>() : 0);
    };
    std::printf("%-24s %-9s %9llu %10llu %9llu %9llu %9llu\n",
                name && name->is_string() ? name->as_string().c_str() : "?",
                breaker && breaker->is_string() ? breaker->as_string().c_str() : "?",
                n("in_flight"), n("delivered"), n("failed"), n("deferred"),
                n("consecutive_failures"));
  }
}

// Flow control: the queues with limits, fairness or keys, and what is held back now.
void PrintFlow(const json::array& queues) {
  bool header = false;
  for (const json::value& q : queues) {
    if (!q.is_object()) continue;
    const json::value* flow = q.as_object().if_contains("flow");
    const json::value* config = q.as_object().if_contains("config");
    if (flow == nullptr || !flow->is_object() || config == nullptr || !config->is_object()) {
      continue;
    }
    const json::object& c = config->as_object();
    auto set = [&c](const char* key) {
      const json::value* v = c.if_contains(key);
      return v != nullptr && !v->is_null();
    };
    const json::value* fairness = c.if_contains("fairness");
    const bool fair = fairness && fairness->is_string() && fairness->as_string() == "key";
    if (!set("rate_limit") && !set("concurrency") && !fair && Count(q, "flow", "keys") == 0) {
      continue;
    }
    if (!header) {
      std::printf("\n%-24s %8s %8s %10s %12s %11s %9s\n", "FLOW QUEUE", "KEYS", "LEASED",
                  "HELD_RATE", "HELD_CONCUR", "PAUSED_KEYS", "DEFERRED");
      header = true;
    }
    const json::value* held = flow->as_object().if_contains("held");
    auto h = [held](const char* key) -> unsigned long long {
      if (held == nullptr || !held->is_object()) return 0;
      const json::value* v = held->as_object().if_contains(key);
      return v != nullptr && v->is_number() ? v->to_number<uint64_t>() : 0;
    };
    const json::value* name = q.as_object().if_contains("name");
    std::printf("%-24s %8llu %8llu %10llu %12llu %11llu %9llu\n",
                name && name->is_string() ? name->as_string().c_str() : "?",
                (unsigned long long)Count(q, "flow", "keys"),
                (unsigned long long)Count(q, "flow", "leased"), h("rate"), h("concurrency"),
                (unsigned long long)Count(q, "flow", "paused_keys"),
                (unsigned long long)Count(q, "totals", "deferred"));
  }
}

// Schedules: runs, skipped ticks and the next run of each (nothing without any).
void PrintSchedules(BlockingHttpClient& client) {
  HttpResult r = client.Request("GET", "/v1/schedules");
  if (r.status != 200) return;
  boost::system::error_code ec;
  json::value body = json::parse(r.body, ec);
  const json::value* all =
      !ec && body.is_object() ? body.as_object().if_contains("schedules") : nullptr;
  if (all == nullptr || !all->is_array() || all->as_array().empty()) return;
  std::printf("\n%-24s %-24s %-7s %9s %9s %14s\n", "SCHEDULE", "QUEUE", "STATE", "RUNS", "SKIPPED",
              "NEXT_RUN_IN_S");
  for (const json::value& s : all->as_array()) {
    if (!s.is_object()) continue;
    const json::object& o = s.as_object();
    auto str = [&o](const char* key) {
      const json::value* v = o.if_contains(key);
      return v != nullptr && v->is_string() ? std::string(v->as_string().c_str()) : "?";
    };
    auto num = [&o](const char* key) -> long long {
      const json::value* v = o.if_contains(key);
      return v != nullptr && v->is_number() ? v->to_number<long long>() : -1;
    };
    const json::value* paused = o.if_contains("paused");
    const long long next = num("next_run_at");
    const long long now_ms = static_cast<long long>(std::time(nullptr)) * 1000;
    const std::string in = next < 0 ? "-" : std::to_string(std::max(0LL, (next - now_ms) / 1000));
    std::printf("%-24s %-24s %-7s %9lld %9lld %14s\n", str("name").c_str(), str("queue").c_str(),
                paused && paused->is_bool() && paused->as_bool() ? "paused" : "active", num("runs"),
                num("skipped"), in.c_str());
  }
}

// The server's request counters: HTTP requests by route (all statuses), beanstalkd
// commands by command. Nothing when /metrics cannot be read (an older server).
void PrintTraffic(BlockingHttpClient& client) {
  HttpResult r = client.Request("GET", "/metrics");
  if (r.status != 200) return;
  std::map<std::pair<std::string, std::string>, double> rows;  // (door, command) -> count
  for (const PrometheusSample& s : ParsePrometheusText(r.body)) {
    if (s.name == "conveyor_http_requests_total") {
      rows[{"http", std::string(s.label("route"))}] += s.value;
    } else if (s.name == "conveyor_beanstalk_commands_total") {
      rows[{"beanstalkd", std::string(s.label("command"))}] += s.value;
    }
  }
  std::printf("\n%-12s %-24s %12s\n", "DOOR", "COMMAND", "COUNT");
  for (const auto& [key, count] : rows) {
    std::printf("%-12s %-24s %12.0f\n", key.first.c_str(), key.second.c_str(), count);
  }
  if (rows.empty()) std::printf("(no requests yet)\n");
}

int RunStats(const StatsOptions& o) {
  std::string why;
  auto url = ParseServerUrl(o.server, why);
  if (!url) {
    std::cerr << "conveyor stats: --server: " << why << "\n";
    return 2;
  }
  BlockingHttpClient client(*url);
  HttpResult r = client.Request("GET", o.queue.empty() ? "/v1/queues" : "/v1/queues/" + o.queue);
  if (r.status != 200) {
    std::cerr << "conveyor stats: " << ErrorMessageOf(r) << "\n";
    return 1;
  }
  boost::system::error_code ec;
  json::value body = json::parse(r.body, ec);
  if (ec || !body.is_object()) {
    std::cerr << "conveyor stats: the server's answer is not JSON\n";
    return 1;
  }
  json::array queues;
  if (o.queue.empty()) {
    if (auto* list = body.as_object().if_contains("queues"); list && list->is_array()) {
      queues = list->as_array();
    }
  } else {
    queues.push_back(body);
  }
  std::printf("%-24s %9s %9s %9s %9s %9s %9s %10s %10s\n", "QUEUE", "SCHEDULED", "READY", "LEASED",
              "SUCCEEDED", "DEAD", "CANCELED", "ENQUEUED", "ACKED");
  for (const json::value& q : queues) {
    if (!q.is_object()) continue;
    const json::value* name = q.as_object().if_contains("name");
    std::string shown = name && name->is_string() ? std::string(name->as_string().c_str()) : "?";
    std::printf("%-24s %9llu %9llu %9llu %9llu %9llu %9llu %10llu %10llu\n", shown.c_str(),
                (unsigned long long)Count(q, "counts", "scheduled"),
                (unsigned long long)Count(q, "counts", "ready"),
                (unsigned long long)Count(q, "counts", "leased"),
                (unsigned long long)Count(q, "counts", "succeeded"),
                (unsigned long long)Count(q, "counts", "dead"),
                (unsigned long long)Count(q, "counts", "canceled"),
                (unsigned long long)Count(q, "totals", "enqueued"),
                (unsigned long long)Count(q, "totals", "acked"));
  }
  if (queues.empty()) std::printf("(no queues yet)\n");
  PrintPush(queues);
  PrintFlow(queues);
  if (o.queue.empty()) PrintSchedules(client);
  if (o.queue.empty()) PrintTraffic(client);
  return 0;
}

}  // namespace

void AddStatsCommand(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<StatsOptions>();
  CLI::App* cmd = app.add_subcommand(
      "stats", "Show queue counts as a table, and the server's traffic by door and command.");
  cmd->add_option("queue", o->queue, "Only this queue");
  AddServerOption(*cmd, o->server);
  cmd->callback([o, &exit_code] { exit_code = RunStats(*o); });
}

}  // namespace conveyor
