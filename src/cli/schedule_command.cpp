// `conveyor schedule list|show|set|pause|resume|delete`: the server's schedules
// (docs/API.md "Schedules") over the HTTP API. `set` builds the PUT body from flags;
// every sub-command prints JSON with --json.
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cstdio>
#include <ctime>
#include <iostream>

#include "cli/commands.h"
#include "client/blocking_http_client.h"

namespace conveyor {
namespace {

namespace json = boost::json;

struct ScheduleOptions {
  std::string server = "http://127.0.0.1:8700";
  std::string name;
  std::string queue;
  std::string cron;
  int64_t every_ms = 0;
  std::string timezone;
  std::string catch_up;
  std::string payload = "null";
  int32_t priority = 0;
  std::string key;
  bool paused = false;
  bool json = false;
};

std::string When(const json::value* v) {
  if (v == nullptr || !v->is_number()) return "-";
  const std::time_t s = static_cast<std::time_t>(v->to_number<int64_t>() / 1000);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

std::string Str(const json::object& o, const char* key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string().c_str()) : "";
}

void PrintRow(const json::object& s) {
  const json::value* every = s.if_contains("every_ms");
  std::string timing = every != nullptr && every->is_number()
                           ? "every " + std::to_string(every->to_number<int64_t>()) + " ms"
                           : Str(s, "cron") + " (" + Str(s, "timezone") + ")";
  const json::value* runs = s.if_contains("runs");
  const json::value* paused = s.if_contains("paused");
  std::printf("%-24s %-20s %-32s %-7s %-21s %8llu\n", Str(s, "name").c_str(),
              Str(s, "queue").c_str(), timing.c_str(),
              paused != nullptr && paused->is_bool() && paused->as_bool() ? "paused" : "active",
              When(s.if_contains("next_run_at")).c_str(),
              static_cast<unsigned long long>(
                  runs != nullptr && runs->is_number() ? runs->to_number<uint64_t>() : 0));
}

int Run(const ScheduleOptions& o, const std::string& action) {
  std::string why;
  auto url = ParseServerUrl(o.server, why);
  if (!url) {
    std::cerr << "conveyor schedule: --server: " << why << "\n";
    return 2;
  }
  BlockingHttpClient client(*url);
  const std::string path = "/v1/schedules/" + o.name;
  HttpResult r;
  if (action == "list") {
    r = client.Request("GET", "/v1/schedules");
  } else if (action == "show") {
    r = client.Request("GET", path);
  } else if (action == "pause" || action == "resume") {
    r = client.Request("POST", path + "/" + action);
  } else if (action == "delete") {
    r = client.Request("DELETE", path);
  } else {  // set
    boost::system::error_code ec;
    json::value payload = json::parse(o.payload, ec);
    if (ec) {
      std::cerr << "conveyor schedule set: --payload is not JSON: " << ec.message() << "\n";
      return 2;
    }
    json::object task{{"payload", payload}};
    if (o.priority != 0) task["priority"] = o.priority;
    if (!o.key.empty()) task["key"] = o.key;
    json::object body{{"queue", o.queue}, {"task", task}};
    if (!o.cron.empty()) body["cron"] = o.cron;
    if (o.every_ms > 0) body["every_ms"] = o.every_ms;
    if (!o.timezone.empty()) body["timezone"] = o.timezone;
    if (!o.catch_up.empty()) body["catch_up"] = o.catch_up;
    if (o.paused) body["paused"] = true;
    r = client.Request("PUT", path, json::serialize(body));
  }
  if (r.status != 200) {
    std::cerr << "conveyor schedule " << action << ": " << ErrorMessageOf(r) << "\n";
    return 1;
  }
  if (o.json) {
    std::cout << r.body << "\n";
    return 0;
  }
  boost::system::error_code ec;
  json::value body = json::parse(r.body, ec);
  if (ec || !body.is_object()) {
    std::cout << r.body << "\n";
    return 0;
  }
  if (action == "delete") {
    std::printf("deleted schedule %s\n", o.name.c_str());
    return 0;
  }
  std::printf("%-24s %-20s %-32s %-7s %-21s %8s\n", "SCHEDULE", "QUEUE", "WHEN", "STATE",
              "NEXT RUN", "RUNS");
  if (action == "list") {
    const json::value* all = body.as_object().if_contains("schedules");
    if (all == nullptr || !all->is_array() || all->as_array().empty()) {
      std::printf("(no schedules yet)\n");
      return 0;
    }
    for (const json::value& s : all->as_array()) {
      if (s.is_object()) PrintRow(s.as_object());
    }
    return 0;
  }
  PrintRow(body.as_object());
  return 0;
}

}  // namespace

void AddScheduleCommand(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<ScheduleOptions>();
  CLI::App* cmd = app.add_subcommand(
      "schedule", "List, show, set, pause, resume or delete the server's schedules.");
  cmd->require_subcommand(1);
  auto add = [&](const char* action, const char* help, bool named) {
    CLI::App* sub = cmd->add_subcommand(action, help);
    if (named) sub->add_option("name", o->name, "The schedule's name")->required();
    AddServerOption(*sub, o->server);
    sub->add_flag("--json", o->json, "Print the server's JSON answer");
    sub->callback([o, &exit_code, action] { exit_code = Run(*o, action); });
    return sub;
  };
  add("list", "All schedules, with their next run", false);
  add("show", "One schedule", true);
  add("pause", "Stop a schedule's runs until resumed", true);
  add("resume", "Resume a paused schedule (missed runs are not made up)", true);
  add("delete", "Delete a schedule", true);
  CLI::App* set = add("set", "Create or replace a schedule", true);
  set->add_option("--queue", o->queue, "The queue its tasks go to")->required();
  auto* cron = set->add_option("--cron", o->cron, "A 5-field cron expression (or @daily, ...)");
  auto* every = set->add_option("--every-ms", o->every_ms, "Or a period in milliseconds")
                    ->check(CLI::Range(int64_t{100}, int64_t{366} * 86'400'000));
  cron->excludes(every);
  set->add_option("--timezone", o->timezone, "The cron's time zone (IANA name; default UTC)");
  set->add_option("--catch-up", o->catch_up, "Runs missed while down: none, one (default), all")
      ->check(CLI::IsMember({"none", "one", "all"}));
  set->add_option("--payload", o->payload, "The task's payload (JSON; default null)");
  set->add_option("--priority", o->priority, "The task's priority");
  set->add_option("--key", o->key, "The task's flow-control key");
  set->add_flag("--paused", o->paused, "Create it paused");
}

}  // namespace conveyor
