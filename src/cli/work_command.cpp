// `conveyor work QUEUE -- CMD ARGS...`: a generic worker. Each of --concurrency threads
// leases one task at a time and runs CMD with the payload on stdin: exit 0 acks with
// stdout as the result, anything else nacks with the tail of stderr; the lease is extended
// while CMD runs. SIGINT/SIGTERM stop leasing; running commands finish, then it exits 0.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <boost/json/parse.hpp>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>

#include "cli/child_process.h"
#include "cli/commands.h"
#include "client/blocking_http_client.h"
#include "common/json_raw.h"
#include "common/json_writer.h"

namespace conveyor {
namespace {

std::atomic<bool> stop_requested{false};

struct WorkOptions {
  std::string server = "http://127.0.0.1:8700";
  std::string queue;
  size_t concurrency = 1;
  int64_t lease_ms = 30000;
  int64_t wait_ms = 1000;
  std::string worker;
  std::vector<std::string> command;
};

std::mutex log_mutex;
void Log(const std::string& line) {
  std::lock_guard<std::mutex> lock(log_mutex);  // CLI output only; not a server path
  std::cerr << line << std::endl;
}

// stdout as a result: JSON if it parses, else a JSON string; empty means null.
std::string ResultJson(const ChildResult& child) {
  std::string_view trimmed = TrimJson(child.out);
  if (trimmed.empty()) return "null";
  if (!child.out_truncated) {
    boost::system::error_code ec;
    boost::json::parse(trimmed, ec);
    if (!ec && !HasDuplicateJsonKeys(trimmed)) return std::string(trimmed);
  }
  std::string s;
  AppendJsonString(s, child.out);
  return s;
}

struct LeasedTask {
  std::string id;
  std::string token;
  std::string payload;
  std::string attempts;
};

std::vector<LeasedTask> ParseLease(const std::string& body) {
  std::vector<LeasedTask> tasks;
  ForEachJsonElement(FindJsonMember(body, "tasks"), [&](std::string_view task) {
    LeasedTask t;
    t.id = std::string(FindJsonMember(task, "id"));
    t.payload = std::string(FindJsonMember(task, "payload"));
    t.attempts = std::string(FindJsonMember(task, "attempts"));
    std::string_view token = FindJsonMember(FindJsonMember(task, "lease"), "token");
    if (token.size() >= 2) t.token = std::string(token.substr(1, token.size() - 2));
    tasks.push_back(std::move(t));
    return true;
  });
  return tasks;
}

void RunTask(BlockingHttpClient& client, const WorkOptions& o, const LeasedTask& task) {
  const std::string base = "/v1/tasks/" + task.id;
  std::string token_json;
  AppendJsonString(token_json, task.token);
  ChildOptions child;
  child.argv = o.command;
  child.input = task.payload;
  child.extra_env = {"CONVEYOR_TASK_ID=" + task.id, "CONVEYOR_QUEUE=" + o.queue,
                     "CONVEYOR_ATTEMPT=" + task.attempts};
  child.heartbeat_every = std::chrono::milliseconds(std::max<int64_t>(100, o.lease_ms / 3));
  child.heartbeat = [&] {
    HttpResult r = client.Request(
        "POST", base + "/extend",
        "{\"lease\":" + token_json + ",\"lease_ms\":" + std::to_string(o.lease_ms) + "}");
    if (r.status != 200) Log("task " + task.id + ": could not extend lease: " + ErrorMessageOf(r));
  };
  // Keeps the whole nack message within the server's default error size (4096 bytes).
  child.stderr_tail = 3000;
  auto started = std::chrono::steady_clock::now();
  ChildResult result = RunChild(child);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  char took[32];
  std::snprintf(took, sizeof took, "%.2fs", seconds);

  HttpResult r;
  if (result.exit_code == 0) {
    r = client.Request("POST", base + "/ack",
                       "{\"lease\":" + token_json + ",\"result\":" + ResultJson(result) + "}");
    Log("task " + task.id + ": succeeded in " + took +
        (r.status == 200 ? "" : " (ack refused: " + ErrorMessageOf(r) + ")"));
    return;
  }
  std::string why =
      !result.failure.empty() ? result.failure : "exit code " + std::to_string(result.exit_code);
  std::string message = result.err_tail.empty() ? why : why + ": " + result.err_tail;
  std::string message_json;
  AppendJsonString(message_json, message);
  r = client.Request("POST", base + "/nack",
                     "{\"lease\":" + token_json + ",\"error\":" + message_json + "}");
  Log("task " + task.id + ": failed (" + why + ") in " + took +
      (r.status == 200 ? "" : " (nack refused: " + ErrorMessageOf(r) + ")"));
}

// lease_client is only for leasing, so that a stop can interrupt its long-poll while
// task_client still acks the commands that are running.
void WorkerLoop(BlockingHttpClient& lease_client, const ServerUrl& url, const WorkOptions& o,
                size_t index) {
  BlockingHttpClient client(url);
  std::string worker_json;
  AppendJsonString(worker_json, o.worker + "/" + std::to_string(index));
  const std::string lease_body = "{\"max\":1,\"wait_ms\":" + std::to_string(o.wait_ms) +
                                 ",\"lease_ms\":" + std::to_string(o.lease_ms) +
                                 ",\"worker\":" + worker_json + "}";
  const std::string target = "/v1/queues/" + o.queue + "/lease";
  while (!stop_requested.load()) {
    HttpResult r = lease_client.Request("POST", target, lease_body);
    if (r.status == 0 && stop_requested.load()) break;
    if (r.status != 200) {
      Log("conveyor work: lease failed: " + ErrorMessageOf(r) + "; retrying in 1s");
      for (int i = 0; i < 10 && !stop_requested.load(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      continue;
    }
    for (const LeasedTask& task : ParseLease(r.body)) RunTask(client, o, task);
  }
}

int RunWork(WorkOptions& o) {
  if (o.command.empty()) {
    std::cerr << "conveyor work: give the command after --, e.g. conveyor work emails -- "
                 "./send.sh\n";
    return 2;
  }
  std::string why;
  auto url = ParseServerUrl(o.server, why);
  if (!url) {
    std::cerr << "conveyor work: --server: " << why << "\n";
    return 2;
  }
  if (o.worker.empty()) {
    char host[256] = "worker";
    gethostname(host, sizeof host - 1);
    o.worker = std::string(host) + ":" + std::to_string(getpid());
  }
  // SIGINT/SIGTERM are taken synchronously by this thread (sigtimedwait below), so the
  // pending long-polls are interrupted the moment a signal arrives.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  Log("conveyor work: " + std::to_string(o.concurrency) + " worker(s) on queue " + o.queue +
      " at " + o.server);
  std::vector<std::unique_ptr<BlockingHttpClient>> lease_clients;
  std::vector<std::thread> threads;
  std::atomic<size_t> running{o.concurrency};
  for (size_t i = 0; i < o.concurrency; ++i) {
    lease_clients.push_back(std::make_unique<BlockingHttpClient>(*url));
    threads.emplace_back([&, i] {
      WorkerLoop(*lease_clients[i], *url, o, i);
      running.fetch_sub(1);
    });
  }
  const timespec tick{0, 100'000'000};
  int signal_taken = 0;
  while (running.load() > 0) {
    signal_taken = sigtimedwait(&stop_signals, nullptr, &tick);
    if (signal_taken > 0) break;
  }
  stop_requested.store(true);
  // Closing the pending long-polls makes the server drop those waiters (and hand back any
  // task it was leasing to them at that moment): nothing is leased once this line is out.
  for (auto& client : lease_clients) client->Interrupt();
  if (signal_taken > 0) {
    Log(std::string("conveyor work: stopping on ") +
        (signal_taken == SIGINT ? "SIGINT" : "SIGTERM") +
        "; no new leases, running commands finish first");
  }
  for (auto& t : threads) t.join();
  Log("conveyor work: stopped");
  return 0;
}

}  // namespace

void AddWorkCommand(CLI::App& app, int& exit_code, const std::vector<std::string>& command) {
  auto o = std::make_shared<WorkOptions>();
  o->command = command;
  CLI::App* cmd = app.add_subcommand(
      "work",
      "Lease tasks from QUEUE and run a command for each: conveyor work QUEUE -- CMD ARGS...");
  cmd->add_option("queue", o->queue, "Queue name")->required();
  cmd->add_option("--concurrency", o->concurrency, "Commands run at once")
      ->check(CLI::Range(size_t{1}, size_t{1024}))
      ->capture_default_str();
  cmd->add_option("--lease-ms", o->lease_ms, "Lease time; extended while the command runs")
      ->check(CLI::Range(int64_t{1000}, int64_t{86400000}))
      ->capture_default_str();
  cmd->add_option("--wait-ms", o->wait_ms, "Long-poll time of each lease request")
      ->check(CLI::Range(int64_t{0}, int64_t{60000}))
      ->capture_default_str();
  cmd->add_option("--worker", o->worker, "Worker name shown on leased tasks");
  AddServerOption(*cmd, o->server);
  cmd->footer(
      "The payload is written to CMD's stdin; CONVEYOR_TASK_ID, CONVEYOR_QUEUE and "
      "CONVEYOR_ATTEMPT are set in its environment.");
  cmd->callback([o, &exit_code] { exit_code = RunWork(*o); });
}

}  // namespace conveyor
