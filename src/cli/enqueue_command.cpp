// `conveyor enqueue QUEUE [JSON]`: enqueues one payload, or JSON lines from stdin in
// batches (with a progress bar when stderr is a terminal).
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <iostream>

#include "cli/commands.h"
#include "client/blocking_http_client.h"
#include "common/json_raw.h"

namespace conveyor {
namespace {

struct EnqueueOptions {
  std::string server = "http://127.0.0.1:8700";
  std::string queue;
  std::string payload;
  std::optional<int32_t> priority;
  std::optional<int64_t> delay_ms;
  std::optional<int64_t> run_at;
  std::optional<int64_t> deadline;
  std::optional<uint32_t> max_attempts;
  std::string idempotency_key;
  std::string key;
  size_t batch = 500;
};

std::string JsonString(const std::string& text) {
  return boost::json::serialize(boost::json::value(boost::json::string(text)));
}

std::string SpecJson(const std::string& payload, const EnqueueOptions& o) {
  std::string spec = "{\"payload\":" + payload;
  if (o.priority) spec += ",\"priority\":" + std::to_string(*o.priority);
  if (o.delay_ms) spec += ",\"delay_ms\":" + std::to_string(*o.delay_ms);
  if (o.run_at) spec += ",\"run_at\":" + std::to_string(*o.run_at);
  if (o.deadline) spec += ",\"deadline\":" + std::to_string(*o.deadline);
  if (o.max_attempts) spec += ",\"max_attempts\":" + std::to_string(*o.max_attempts);
  if (!o.idempotency_key.empty()) spec += ",\"idempotency_key\":" + JsonString(o.idempotency_key);
  if (!o.key.empty()) spec += ",\"key\":" + JsonString(o.key);
  return spec + "}";
}

void DrawProgress(size_t done, size_t lines_read, bool finished) {
  const int width = 30;
  // The total of a stream is unknown; the bar fills with what was read so far.
  size_t filled = lines_read == 0 ? 0 : width * done / lines_read;
  std::cerr << "\r[" << std::string(filled, '#') << std::string(width - filled, '.') << "] " << done
            << " enqueued" << (finished ? "\n" : "") << std::flush;
}

int RunEnqueue(const EnqueueOptions& o) {
  std::string why;
  auto url = ParseServerUrl(o.server, why);
  if (!url) {
    std::cerr << "conveyor enqueue: --server: " << why << "\n";
    return 2;
  }
  BlockingHttpClient client(*url);
  const std::string target = "/v1/queues/" + o.queue + "/tasks";

  if (!o.payload.empty() && o.payload != "-") {
    HttpResult r = client.Request("POST", target, SpecJson(o.payload, o));
    if (r.status / 100 != 2) {
      std::cerr << "conveyor enqueue: " << ErrorMessageOf(r) << "\n";
      return 1;
    }
    std::cout << r.body << "\n";
    return 0;
  }

  if (!o.idempotency_key.empty()) {
    std::cerr << "conveyor enqueue: --idempotency-key goes with one payload, not with lines "
                 "from stdin (every line would be the same task)\n";
    return 2;
  }
  const bool progress = isatty(STDERR_FILENO);
  size_t enqueued = 0, lines = 0, line_number = 0;
  std::string batch;
  size_t in_batch = 0;
  auto flush = [&]() -> bool {
    if (in_batch == 0) return true;
    HttpResult r = client.Request("POST", target, "{\"tasks\":[" + batch + "]}");
    if (r.status / 100 != 2) {
      std::cerr << (progress ? "\n" : "") << "conveyor enqueue: batch ending at line "
                << line_number << " refused: " << ErrorMessageOf(r) << "\n";
      return false;
    }
    enqueued += in_batch;
    batch.clear();
    in_batch = 0;
    if (progress) DrawProgress(enqueued, lines, false);
    return true;
  };
  std::string line;
  while (std::getline(std::cin, line)) {
    ++line_number;
    std::string_view trimmed = TrimJson(line);
    if (trimmed.empty()) continue;
    ++lines;
    boost::system::error_code ec;
    boost::json::parse(trimmed, ec);
    if (ec) {
      std::cerr << (progress ? "\n" : "") << "conveyor enqueue: line " << line_number
                << " is not valid JSON (" << ec.message() << "); " << enqueued
                << " tasks were enqueued before it\n";
      return 1;
    }
    if (in_batch > 0) batch.push_back(',');
    batch += SpecJson(std::string(trimmed), o);
    if (++in_batch == o.batch && !flush()) return 1;
  }
  if (!flush()) return 1;
  if (progress) DrawProgress(enqueued, lines, true);
  std::cout << "enqueued " << enqueued << " tasks into " << o.queue << "\n";
  return 0;
}

}  // namespace

void AddEnqueueCommand(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<EnqueueOptions>();
  CLI::App* cmd = app.add_subcommand(
      "enqueue", "Enqueue a JSON payload, or JSON lines from stdin (one task per line).");
  cmd->add_option("queue", o->queue, "Queue name")->required();
  cmd->add_option("payload", o->payload, "The task's JSON payload; omit or '-' to read stdin");
  cmd->add_option("--priority", o->priority, "Higher runs first (int32)");
  auto* delay =
      cmd->add_option("--delay-ms", o->delay_ms, "Run no earlier than this many ms from now")
          ->check(CLI::NonNegativeNumber);
  cmd->add_option("--run-at", o->run_at, "Run no earlier than this time (epoch ms)")
      ->check(CLI::NonNegativeNumber)
      ->excludes(delay);
  cmd->add_option("--deadline", o->deadline, "Dead (expired) if not leased by this time (epoch ms)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--max-attempts", o->max_attempts,
                  "Leases before it is dead (default: the queue's)")
      ->check(CLI::Range(uint32_t{1}, uint32_t{1000000}));
  cmd->add_option("--idempotency-key", o->idempotency_key,
                  "A second enqueue with this key answers the first task (one payload only)");
  cmd->add_option("--key", o->key, "The task's flow-control key (a tenant, an endpoint)");
  cmd->add_option("--batch", o->batch, "Lines per request when reading stdin")
      ->check(CLI::Range(size_t{1}, size_t{1000}))
      ->capture_default_str();
  AddServerOption(*cmd, o->server);
  cmd->callback([o, &exit_code] { exit_code = RunEnqueue(*o); });
}

}  // namespace conveyor
