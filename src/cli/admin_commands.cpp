// The operators' sub-commands over the HTTP API (docs/API.md "Operating"):
//   conveyor tasks QUEUE [--state S] [--limit N] [--after ID]
//   conveyor show ID
//   conveyor retry ID | conveyor retry --all-dead QUEUE [--limit N]
//   conveyor cancel ID
//   conveyor pause QUEUE | conveyor resume QUEUE
//   conveyor purge QUEUE --state S [--limit N]
//   conveyor config QUEUE [key=value ...]   (dotted keys: backoff.base_ms=500)
// Each checks its arguments before any request and prints a table or lines, or the
// server's JSON with --json. One request each, on the blocking client.
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "client/blocking_http_client.h"
#include "engine/queue_name.h"

namespace conveyor {
namespace {

namespace json = boost::json;

struct AdminOptions {
  std::string server = "http://127.0.0.1:8700";
  std::string queue;
  std::string id;
  std::string state;
  std::string all_dead;
  size_t limit = 0;
  std::string after;
  std::vector<std::string> settings;
  bool json = false;
};

int Fail(const std::string& command, const std::string& why, int code = 1) {
  std::cerr << "conveyor " << command << ": " << why << "\n";
  return code;
}

bool CheckQueue(const std::string& command, const std::string& queue) {
  if (IsValidQueueName(queue)) return true;
  Fail(command,
       "'" + queue.substr(0, 64) + "' is not a queue name (1-128 characters of A-Z a-z 0-9 . _ -)");
  return false;
}

bool CheckId(const std::string& command, const std::string& id) {
  const bool ok =
      !id.empty() && id.size() <= 20 && id.find_first_not_of("0123456789") == std::string::npos;
  if (!ok) Fail(command, "'" + id.substr(0, 32) + "' is not a task id (a whole number)");
  return ok;
}

std::string Text(const json::value* v) {
  if (v == nullptr || v->is_null()) return "-";
  if (v->is_string()) return std::string(v->as_string().c_str());
  return json::serialize(*v);
}

std::string Cut(std::string s, size_t n) {
  if (s.size() > n) s = s.substr(0, n - 1) + "~";
  return s;
}

// Sends one request; prints the JSON answer with --json, else hands it to `print`.
template <typename Print>
int Call(const AdminOptions& o, const std::string& command, const std::string& method,
         const std::string& target, const std::string& body, Print print) {
  std::string why;
  auto url = ParseServerUrl(o.server, why);
  if (!url) return Fail(command, "--server: " + why, 2);
  BlockingHttpClient client(*url);
  HttpResult r = client.Request(method, target, body);
  if (r.status / 100 != 2) return Fail(command, ErrorMessageOf(r));
  if (o.json) {
    std::cout << r.body << "\n";
    return 0;
  }
  boost::system::error_code ec;
  json::value answer = json::parse(r.body, ec);
  if (ec || !answer.is_object()) {
    std::cout << r.body << "\n";
    return 0;
  }
  print(answer.as_object());
  return 0;
}

void PrintTask(const json::object& t) {
  for (const char* key : {"id", "queue", "state", "dead_reason", "priority", "key", "attempts",
                          "max_attempts", "created_at", "run_at", "deadline", "payload", "result",
                          "progress", "idempotency_key", "unique", "lease"}) {
    std::printf("%-16s %s\n", key, Text(t.if_contains(key)).c_str());
  }
  const json::value* errors = t.if_contains("errors");
  if (errors != nullptr && errors->is_array()) {
    for (const json::value& e : errors->as_array()) {
      if (!e.is_object()) continue;
      std::printf("%-16s attempt %s at %s: %s\n", "error",
                  Text(e.as_object().if_contains("attempt")).c_str(),
                  Text(e.as_object().if_contains("at")).c_str(),
                  Text(e.as_object().if_contains("message")).c_str());
    }
  }
}

int RunTasks(const AdminOptions& o) {
  if (!CheckQueue("tasks", o.queue)) return 2;
  std::string target =
      "/v1/queues/" + o.queue + "/tasks?limit=" + std::to_string(o.limit == 0 ? 20 : o.limit);
  if (!o.state.empty()) target += "&state=" + o.state;
  if (!o.after.empty()) {
    if (!CheckId("tasks", o.after)) return 2;
    target += "&after=" + o.after;
  }
  return Call(o, "tasks", "GET", target, "", [](const json::object& page) {
    std::printf("%-20s %-10s %8s %9s %-16s %s\n", "ID", "STATE", "ATTEMPTS", "PRIORITY", "KEY",
                "PAYLOAD");
    const json::value* tasks = page.if_contains("tasks");
    size_t n = 0;
    if (tasks != nullptr && tasks->is_array()) {
      for (const json::value& v : tasks->as_array()) {
        if (!v.is_object()) continue;
        const json::object& t = v.as_object();
        std::printf("%-20s %-10s %8s %9s %-16s %s\n", Text(t.if_contains("id")).c_str(),
                    Text(t.if_contains("state")).c_str(), Text(t.if_contains("attempts")).c_str(),
                    Text(t.if_contains("priority")).c_str(),
                    Cut(Text(t.if_contains("key")), 16).c_str(),
                    Cut(Text(t.if_contains("payload")), 60).c_str());
        ++n;
      }
    }
    if (n == 0) std::printf("(no tasks)\n");
    const json::value* next = page.if_contains("next_after");
    if (next != nullptr && !next->is_null()) {
      std::printf("(more: --after %s)\n", Text(next).c_str());
    }
  });
}

int RunConfig(const AdminOptions& o) {
  if (!CheckQueue("config", o.queue)) return 2;
  if (o.settings.empty()) {
    return Call(o, "config", "GET", "/v1/queues/" + o.queue, "", [](const json::object& q) {
      const json::value* c = q.if_contains("config");
      if (c != nullptr && c->is_object()) {
        for (const auto& [k, v] : c->as_object()) {
          std::printf("%-16s %s\n", std::string(k).c_str(), Text(&v).c_str());
        }
      }
    });
  }
  json::object patch;
  for (const std::string& setting : o.settings) {
    const size_t eq = setting.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Fail("config", "'" + setting + "' is not key=value (e.g. max_attempts=5)", 2);
    }
    const std::string path = setting.substr(0, eq);
    const std::string text = setting.substr(eq + 1);
    boost::system::error_code ec;
    json::value value = json::parse(text, ec);
    if (ec) value = json::string(text);  // a bare word is a string
    json::object* at = &patch;
    size_t start = 0;
    for (size_t dot = path.find('.'); dot != std::string::npos; dot = path.find('.', start)) {
      json::value& inner = (*at)[path.substr(start, dot - start)];
      if (!inner.is_object()) inner = json::object();
      at = &inner.as_object();
      start = dot + 1;
    }
    (*at)[path.substr(start)] = value;
  }
  return Call(o, "config", "PUT", "/v1/queues/" + o.queue, json::serialize(patch),
              [](const json::object& c) {
                for (const auto& [k, v] : c) {
                  std::printf("%-16s %s\n", std::string(k).c_str(), Text(&v).c_str());
                }
              });
}

using Runner = int (*)(const AdminOptions&);

void AddOne(CLI::App& app, int& exit_code, const std::shared_ptr<AdminOptions>& o, const char* name,
            const char* help, Runner run, const std::function<void(CLI::App&)>& options) {
  CLI::App* cmd = app.add_subcommand(name, help);
  options(*cmd);
  AddServerOption(*cmd, o->server);
  cmd->add_flag("--json", o->json, "Print the server's JSON answer");
  cmd->callback([o, &exit_code, run] { exit_code = run(*o); });
}

}  // namespace

void AddAdminCommands(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<AdminOptions>();
  AddOne(app, exit_code, o, "tasks", "List a queue's tasks (by id; --state to filter)", RunTasks,
         [&](CLI::App& c) {
           c.add_option("queue", o->queue, "The queue")->required();
           c.add_option("--state", o->state, "Only tasks in this state")
               ->check(CLI::IsMember(
                   {"scheduled", "ready", "leased", "succeeded", "dead", "canceled"}));
           c.add_option("--limit", o->limit, "At most this many (default 20)")
               ->check(CLI::Range(size_t{1}, size_t{1000}));
           c.add_option("--after", o->after, "Only ids after this one (the next page)");
         });
  AddOne(
      app, exit_code, o, "show", "Show one task's whole record",
      [](const AdminOptions& a) {
        if (!CheckId("show", a.id)) return 2;
        return Call(a, "show", "GET", "/v1/tasks/" + a.id, "", PrintTask);
      },
      [&](CLI::App& c) { c.add_option("id", o->id, "The task id")->required(); });
  AddOne(
      app, exit_code, o, "retry", "Retry a dead task, or every dead task of a queue",
      [](const AdminOptions& a) {
        if (!a.all_dead.empty()) {
          if (!CheckQueue("retry", a.all_dead)) return 2;
          std::string target = "/v1/queues/" + a.all_dead + "/retry-dead";
          if (a.limit > 0) target += "?limit=" + std::to_string(a.limit);
          return Call(a, "retry", "POST", target, "", [](const json::object& r) {
            std::printf("retried %s dead tasks (%s left)\n", Text(r.if_contains("retried")).c_str(),
                        Text(r.if_contains("remaining")).c_str());
          });
        }
        if (a.id.empty()) return Fail("retry", "give a task id, or --all-dead QUEUE", 2);
        if (!CheckId("retry", a.id)) return 2;
        return Call(a, "retry", "POST", "/v1/tasks/" + a.id + "/retry", "",
                    [](const json::object& r) {
                      std::printf("task %s is %s\n", Text(r.if_contains("id")).c_str(),
                                  Text(r.if_contains("state")).c_str());
                    });
      },
      [&](CLI::App& c) {
        auto* id = c.add_option("id", o->id, "The task id");
        auto* all = c.add_option("--all-dead", o->all_dead, "Every dead task of this queue");
        id->excludes(all);
        c.add_option("--limit", o->limit, "With --all-dead: at most this many")
            ->check(CLI::PositiveNumber);
      });
  AddOne(
      app, exit_code, o, "cancel", "Cancel a scheduled or ready task",
      [](const AdminOptions& a) {
        if (!CheckId("cancel", a.id)) return 2;
        return Call(a, "cancel", "DELETE", "/v1/tasks/" + a.id, "", [](const json::object& r) {
          std::printf("task %s is %s\n", Text(r.if_contains("id")).c_str(),
                      Text(r.if_contains("state")).c_str());
        });
      },
      [&](CLI::App& c) { c.add_option("id", o->id, "The task id")->required(); });
  for (const char* verb : {"pause", "resume"}) {
    const bool pause = std::string(verb) == "pause";
    AddOne(
        app, exit_code, o, verb,
        pause ? "Pause a queue (enqueues accepted, nothing leased)" : "Resume a paused queue",
        pause ? Runner([](const AdminOptions& a) {
          if (!CheckQueue("pause", a.queue)) return 2;
          return Call(a, "pause", "PUT", "/v1/queues/" + a.queue, "{\"paused\":true}",
                      [&a](const json::object&) { std::printf("paused %s\n", a.queue.c_str()); });
        })
              : Runner([](const AdminOptions& a) {
                  if (!CheckQueue("resume", a.queue)) return 2;
                  return Call(
                      a, "resume", "PUT", "/v1/queues/" + a.queue, "{\"paused\":false}",
                      [&a](const json::object&) { std::printf("resumed %s\n", a.queue.c_str()); });
                }),
        [&](CLI::App& c) { c.add_option("queue", o->queue, "The queue")->required(); });
  }
  AddOne(
      app, exit_code, o, "purge", "Delete a queue's finished tasks in one state now",
      [](const AdminOptions& a) {
        if (!CheckQueue("purge", a.queue)) return 2;
        std::string target = "/v1/queues/" + a.queue + "/purge?state=" + a.state;
        if (a.limit > 0) target += "&limit=" + std::to_string(a.limit);
        return Call(a, "purge", "POST", target, "", [](const json::object& r) {
          std::printf("purged %s tasks (%s left)\n", Text(r.if_contains("purged")).c_str(),
                      Text(r.if_contains("remaining")).c_str());
        });
      },
      [&](CLI::App& c) {
        c.add_option("queue", o->queue, "The queue")->required();
        c.add_option("--state", o->state, "succeeded, dead or canceled")
            ->required()
            ->check(CLI::IsMember({"succeeded", "dead", "canceled"}));
        c.add_option("--limit", o->limit, "At most this many")->check(CLI::PositiveNumber);
      });
  AddOne(app, exit_code, o, "config", "Show a queue's config, or change it: key=value ...",
         RunConfig, [&](CLI::App& c) {
           c.add_option("queue", o->queue, "The queue")->required();
           c.add_option(
               "settings", o->settings,
               "key=value (JSON values; dotted keys for nested ones: backoff.base_ms=500)");
         });
}

}  // namespace conveyor
