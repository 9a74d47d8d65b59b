// `conveyor bench`: a load generator for a running server. Opens --connections keep-alive
// connections (one coroutine each, on --threads I/O threads) and drives one of:
//   enqueue   POST /v1/queues/Q/tasks, one task per request, until --tasks are in;
//   batch     the same with --batch tasks per request;
//   drain     lease up to --batch tasks and ack them with one POST /v1/ack, until empty.
// Prints throughput and latency percentiles (one line of JSON with --json).
#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include "cli/commands.h"
#include "client/http_client.h"
#include "common/json_raw.h"

namespace conveyor {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

struct BenchOptions {
  std::string server = "http://127.0.0.1:8700";
  std::string queue = "bench";
  std::string mode = "enqueue";
  size_t connections = 64;
  size_t threads = 1;
  size_t tasks = 100000;
  size_t batch = 100;
  size_t payload_bytes = 100;
  bool json = false;
};

struct Shared {
  std::atomic<int64_t> remaining;  // tasks still to enqueue (enqueue/batch modes)
  std::atomic<uint64_t> tasks_done{0};
  std::atomic<uint64_t> errors{0};
  std::atomic<bool> drained{false};
};

struct Worker {
  std::vector<double> latencies_ms;  // one per request; owned by its coroutine's thread
  std::string failure;
};

std::string Payload(size_t bytes) {
  std::string fill(bytes > 20 ? bytes - 20 : 1, 'x');
  return "{\"data\":\"" + fill + "\"}";
}

asio::awaitable<void> RunConnection(const BenchOptions& o, const tcp::resolver::results_type& ep,
                                    Shared& shared, Worker& worker) {
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  auto [cec, cep] = co_await stream.async_connect(ep, asio::as_tuple(asio::use_awaitable));
  if (cec) {
    worker.failure = "connect: " + cec.message();
    co_return;
  }
  stream.socket().set_option(tcp::no_delay(true));
  beast::flat_buffer buffer;
  const std::string payload = Payload(o.payload_bytes);
  const bool batched = o.mode == "batch";
  std::string body;
  std::string enqueue_target = "/v1/queues/" + o.queue + "/tasks";
  std::string lease_target = "/v1/queues/" + o.queue + "/lease";

  auto exchange = [&](const std::string& target, std::string request_body,
                      std::string& answer) -> asio::awaitable<int> {
    http::request<http::string_body> req{http::verb::post, target, 11};
    req.set(http::field::host, "bench");
    req.set(http::field::content_type, "application/json");
    req.body() = std::move(request_body);
    req.prepare_payload();
    auto started = Clock::now();
    auto [wec, wn] = co_await http::async_write(stream, req, asio::as_tuple(asio::use_awaitable));
    if (wec) co_return 0;
    http::response<http::string_body> res;
    auto [rec, rn] =
        co_await http::async_read(stream, buffer, res, asio::as_tuple(asio::use_awaitable));
    if (rec) co_return 0;
    worker.latencies_ms.push_back(
        std::chrono::duration<double, std::milli>(Clock::now() - started).count());
    answer = std::move(res.body());
    co_return static_cast<int>(res.result_int());
  };

  std::string answer;
  if (o.mode == "enqueue" || batched) {
    const int64_t per_request = batched ? static_cast<int64_t>(o.batch) : 1;
    for (;;) {
      int64_t before = shared.remaining.fetch_sub(per_request);
      if (before <= 0) break;
      int64_t n = std::min(before, per_request);
      if (batched) {
        body = "{\"tasks\":[";
        for (int64_t i = 0; i < n; ++i)
          body += (i ? ",{\"payload\":" : "{\"payload\":") + payload + "}";
        body += "]}";
      } else {
        body = "{\"payload\":" + payload + "}";
      }
      int status = co_await exchange(enqueue_target, body, answer);
      if (status / 100 == 2) {
        shared.tasks_done += n;
      } else {
        shared.errors++;
        if (status == 0) {
          worker.failure = "connection lost";
          co_return;
        }
      }
    }
    co_return;
  }
  // drain: lease a batch, ack it in one call, until a lease comes back empty.
  const std::string lease_body = "{\"max\":" + std::to_string(o.batch) + "}";
  while (!shared.drained.load()) {
    int status = co_await exchange(lease_target, lease_body, answer);
    if (status != 200) {
      shared.errors++;
      if (status == 0) co_return;
      continue;
    }
    std::string acks = "{\"acks\":[";
    size_t n = 0;
    ForEachJsonElement(FindJsonMember(answer, "tasks"), [&](std::string_view task) {
      std::string_view token = FindJsonMember(FindJsonMember(task, "lease"), "token");
      acks += (n++ ? ",{\"id\":" : "{\"id\":") + std::string(FindJsonMember(task, "id")) +
              ",\"lease\":" + std::string(token) + "}";
      return true;
    });
    acks += "]}";
    if (n == 0) {
      shared.drained = true;
      break;
    }
    std::string ack_answer;
    status = co_await exchange("/v1/ack", acks, ack_answer);
    if (status == 200) {
      shared.tasks_done += n;
    } else {
      shared.errors++;
    }
  }
}

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  size_t k = std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k];
}

int RunBench(const BenchOptions& o) {
  std::string why;
  auto url = ParseServerUrl(o.server, why);
  if (!url) {
    std::cerr << "conveyor bench: --server: " << why << "\n";
    return 2;
  }
  asio::io_context resolver_io;
  tcp::resolver resolver(resolver_io);
  boost::system::error_code ec;
  auto endpoints = resolver.resolve(url->host, url->port, ec);
  if (ec) {
    std::cerr << "conveyor bench: cannot resolve " << url->host << ": " << ec.message() << "\n";
    return 1;
  }
  Shared shared;
  shared.remaining = static_cast<int64_t>(o.tasks);
  std::vector<std::unique_ptr<asio::io_context>> ios;
  for (size_t t = 0; t < o.threads; ++t) ios.push_back(std::make_unique<asio::io_context>(1));
  std::vector<Worker> workers(o.connections);
  for (size_t c = 0; c < o.connections; ++c) {
    asio::co_spawn(*ios[c % o.threads], RunConnection(o, endpoints, shared, workers[c]),
                   asio::detached);
  }
  auto started = Clock::now();
  std::vector<std::thread> threads;
  for (size_t t = 1; t < o.threads; ++t) threads.emplace_back([&, t] { ios[t]->run(); });
  ios[0]->run();
  for (auto& t : threads) t.join();
  double seconds = std::chrono::duration<double>(Clock::now() - started).count();

  std::vector<double> all;
  std::string failure;
  for (auto& w : workers) {
    all.insert(all.end(), w.latencies_ms.begin(), w.latencies_ms.end());
    if (failure.empty()) failure = w.failure;
  }
  const double rate = shared.tasks_done.load() / seconds;
  const double p50 = Percentile(all, 0.50), p99 = Percentile(all, 0.99);
  if (o.json) {
    std::printf(
        "{\"mode\":\"%s\",\"connections\":%zu,\"tasks\":%llu,\"seconds\":%.3f,"
        "\"tasks_per_second\":%.0f,\"requests\":%zu,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
        "\"errors\":%llu}\n",
        o.mode.c_str(), o.connections, (unsigned long long)shared.tasks_done.load(), seconds, rate,
        all.size(), p50, p99, (unsigned long long)shared.errors.load());
  } else {
    std::printf(
        "%s: %llu tasks in %.2f s = %.0f tasks/s over %zu connections; "
        "request latency p50 %.2f ms, p99 %.2f ms; %llu errors\n",
        o.mode.c_str(), (unsigned long long)shared.tasks_done.load(), seconds, rate, o.connections,
        p50, p99, (unsigned long long)shared.errors.load());
  }
  if (!failure.empty()) std::cerr << "conveyor bench: " << failure << "\n";
  return shared.errors.load() == 0 && failure.empty() ? 0 : 1;
}

}  // namespace

void AddBenchCommand(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand("bench", "Load a running server and measure it.");
  cmd->add_option("--mode", o->mode, "enqueue | batch | drain")
      ->check(CLI::IsMember({"enqueue", "batch", "drain"}))
      ->capture_default_str();
  cmd->add_option("--queue", o->queue, "Queue to use")->capture_default_str();
  cmd->add_option("--connections", o->connections, "Concurrent keep-alive connections")
      ->check(CLI::Range(size_t{1}, size_t{10000}))
      ->capture_default_str();
  cmd->add_option("--threads", o->threads, "Client I/O threads")
      ->check(CLI::Range(size_t{1}, size_t{64}))
      ->capture_default_str();
  cmd->add_option("--tasks", o->tasks, "Tasks to enqueue (enqueue, batch)")
      ->check(CLI::Range(size_t{1}, size_t{100000000}))
      ->capture_default_str();
  cmd->add_option("--batch", o->batch, "Tasks per request (batch) or per lease (drain)")
      ->check(CLI::Range(size_t{1}, size_t{1000}))
      ->capture_default_str();
  cmd->add_option("--payload-bytes", o->payload_bytes, "Approximate payload size")
      ->check(CLI::Range(size_t{1}, size_t{900000}))
      ->capture_default_str();
  cmd->add_flag("--json", o->json, "Print one JSON line");
  AddServerOption(*cmd, o->server);
  cmd->callback([o, &exit_code] { exit_code = RunBench(*o); });
}

}  // namespace conveyor
