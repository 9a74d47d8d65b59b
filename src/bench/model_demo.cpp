#include "bench/model_demo.h"

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <vector>

#include "bench/server_connection.h"
#include "client/blocking_http_client.h"
#include "common/json_raw.h"

namespace conveyor {
namespace {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;

double SecondsSince(SteadyClock::time_point t) {
  return std::chrono::duration<double>(SteadyClock::now() - t).count();
}

int64_t ParseInt(std::string_view text) {
  int64_t v = 0;
  std::from_chars(text.data(), text.data() + text.size(), v);
  return v;
}

// One phase's shared state; everything runs on one io_context thread.
struct Phase {
  Phase(const ModelOptions& options, ServerUrl u, std::string q, size_t n)
      : o(options), url(std::move(u)), queue(std::move(q)), expected(n) {}
  const ModelOptions& o;
  ServerUrl url;
  std::string queue;
  size_t expected = 0;  // tasks the workers stop after
  size_t done = 0;
  double service_seconds_sum = 0;  // lease -> ack, summed (W of Little's law)
  SteadyClock::time_point last_ack{};
  std::string error;
  bool producing = true;
};

asio::awaitable<void> Sleep(int64_t ms) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(std::chrono::milliseconds(ms));
  co_await timer.async_wait(asio::use_awaitable);
}

// A worker: lease one task, "do its I/O" (sleep payload.units time units), ack it.
asio::awaitable<void> Worker(Phase& p) {
  ServerConnection conn(co_await asio::this_coro::executor, p.url);
  const std::string target = "/v1/queues/" + p.queue + "/lease";
  while (p.done < p.expected && p.error.empty()) {
    HttpAnswer r = co_await conn.Request("POST", target, "{\"max\":1,\"wait_ms\":200}");
    if (r.status != 200) {
      p.error = FailureOf(r, "lease");
      co_return;
    }
    std::string_view task;
    ForEachJsonElement(FindJsonMember(r.body, "tasks"), [&](std::string_view t) {
      task = t;
      return false;
    });
    if (task.empty()) continue;
    const auto leased_at = SteadyClock::now();
    const int64_t units = ParseInt(FindJsonMember(FindJsonMember(task, "payload"), "units"));
    const std::string id(FindJsonMember(task, "id"));
    const std::string ack =
        "{\"lease\":" + std::string(FindJsonMember(FindJsonMember(task, "lease"), "token")) + "}";
    co_await Sleep(units * p.o.unit_ms);
    HttpAnswer a = co_await conn.Request("POST", "/v1/tasks/" + id + "/ack", ack);
    if (a.status != 200) {
      p.error = FailureOf(a, "ack");
      co_return;
    }
    p.service_seconds_sum += SecondsSince(leased_at);
    p.last_ack = SteadyClock::now();
    ++p.done;
  }
}

asio::awaitable<void> Enqueue(Phase& p, int64_t units) {
  ServerConnection conn(co_await asio::this_coro::executor, p.url);
  const std::string body = "{\"payload\":{\"units\":" + std::to_string(units) + "}}";
  HttpAnswer r = co_await conn.Request("POST", "/v1/queues/" + p.queue + "/tasks", body);
  if (r.status != 201 && p.error.empty()) {
    p.error = FailureOf(r, "enqueue");
  }
}

// All ten in one request, so that they are there together, as in the example; the clock
// of the phase starts when they are (the answer of that request).
asio::awaitable<void> EnqueueTen(Phase& p, SteadyClock::time_point& start) {
  ServerConnection conn(co_await asio::this_coro::executor, p.url);
  std::string body = "{\"tasks\":[";
  for (int64_t units = 1; units <= 10; ++units) {
    body += (units > 1 ? ",{\"payload\":{\"units\":" : "{\"payload\":{\"units\":") +
            std::to_string(units) + "}}";
  }
  body += "]}";
  HttpAnswer r = co_await conn.Request("POST", "/v1/queues/" + p.queue + "/tasks", body);
  start = SteadyClock::now();
  if (r.status != 201 && p.error.empty()) {
    p.error = FailureOf(r, "enqueue");
  }
}

// The ten tasks 1..10 units through `workers` concurrent workers: T from the moment all
// ten are enqueued to the ack of the last.
double RunTen(const ModelOptions& o, const ServerUrl& url, const std::string& queue, size_t workers,
              std::string& error) {
  asio::io_context io(1);
  Phase p(o, url, queue, 10);
  SteadyClock::time_point start = SteadyClock::now();
  asio::co_spawn(io, EnqueueTen(p, start), asio::detached);
  for (size_t w = 0; w < workers; ++w) asio::co_spawn(io, Worker(p), asio::detached);
  io.run();  // also until the other workers' long-polls end
  error = p.error;
  return std::chrono::duration<double>(p.last_ack - start).count();
}

// Sums a metric's samples whose labels contain `labels` in a /metrics page.
double MetricValue(std::string_view page, std::string_view name, std::string_view labels) {
  double sum = 0;
  size_t pos = 0;
  while ((pos = page.find(name, pos)) != std::string_view::npos) {
    size_t eol = page.find('\n', pos);
    std::string_view line = page.substr(pos, eol == std::string_view::npos ? eol : eol - pos);
    pos += name.size();
    if (line.size() <= name.size() || line[name.size()] != '{') continue;
    if (line.find(labels) == std::string_view::npos) continue;
    size_t space = line.rfind(' ');
    sum += std::strtod(std::string(line.substr(space + 1)).c_str(), nullptr);
  }
  return sum;
}

struct Little {
  double lambda = 0;  // acked per second over the window, from /metrics
  double w = 0;       // mean seconds in service (lease -> ack), from the workers
  double l = 0;       // mean tasks in service (leased), sampled from /metrics
  size_t samples = 0;
};

asio::awaitable<void> ProduceSteady(Phase& p, size_t total) {
  const auto start = SteadyClock::now();
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (size_t k = 0; k < total && p.error.empty(); ++k) {
    timer.expires_at(start + std::chrono::microseconds(static_cast<int64_t>(
                                 static_cast<double>(k) * 1e6 / p.o.little_rate)));
    co_await timer.async_wait(asio::use_awaitable);
    asio::co_spawn(co_await asio::this_coro::executor, Enqueue(p, p.o.little_service_units),
                   asio::detached);
  }
}

// L and λ from /metrics over the window (after a warm-up second).
asio::awaitable<void> SampleLittle(Phase& p, Little& out, std::string queue) {
  ServerConnection conn(co_await asio::this_coro::executor, p.url);
  const std::string leased = "queue=\"" + queue + "\",state=\"leased\"";
  const std::string acked = "queue=\"" + queue + "\"";
  co_await Sleep(1000);  // warm-up: the system reaches its steady state
  double acked_start = 0;
  const auto window = SteadyClock::now();
  double l_sum = 0;
  while (SecondsSince(window) < p.o.little_seconds && p.error.empty()) {
    HttpAnswer m = co_await conn.Request("GET", "/metrics");
    if (m.status != 200) {
      p.error = "GET /metrics failed";
      co_return;
    }
    if (out.samples == 0) acked_start = MetricValue(m.body, "conveyor_tasks_acked_total", acked);
    l_sum += MetricValue(m.body, "conveyor_queue_tasks", leased);
    ++out.samples;
    out.lambda = (MetricValue(m.body, "conveyor_tasks_acked_total", acked) - acked_start) /
                 std::max(SecondsSince(window), 1e-9);
    co_await Sleep(50);
  }
  out.l = out.samples ? l_sum / static_cast<double>(out.samples) : 0;
}

// A steady open-loop load of λ tasks/s, each `little_service_units` in service, with more
// workers than L needs; L, λ from /metrics over the measured window.
Little RunLittle(const ModelOptions& o, const ServerUrl& url, const std::string& queue,
                 std::string& error) {
  asio::io_context io(1);
  const size_t total = static_cast<size_t>(o.little_rate * (o.little_seconds + 2));
  Phase p(o, url, queue, total);
  Little out;
  const double service_s = static_cast<double>(o.little_service_units * o.unit_ms) / 1000.0;
  const size_t workers = static_cast<size_t>(o.little_rate * service_s * 2) + 4;
  asio::co_spawn(io, ProduceSteady(p, total), asio::detached);
  asio::co_spawn(io, SampleLittle(p, out, queue), asio::detached);
  for (size_t w = 0; w < workers; ++w) asio::co_spawn(io, Worker(p), asio::detached);
  io.run();
  out.w = p.done ? p.service_seconds_sum / static_cast<double>(p.done) : 0;
  error = p.error;
  return out;
}

}  // namespace

int RunModel(const ModelOptions& o) {
  std::string why;
  auto url = ParseServerUrl(o.server, why);
  if (!url) {
    std::cerr << "conveyor bench: --server: " << why << "\n";
    return 2;
  }
  const std::string suffix =
      "-" + std::to_string(SteadyClock::now().time_since_epoch().count() % 1000000);
  std::string error;
  const double unit_s = static_cast<double>(o.unit_ms) / 1000.0;
  const double t_seq = RunTen(o, *url, o.queue + "-sequential" + suffix, 1, error);
  if (!error.empty()) {
    std::cerr << "conveyor bench --model: " << error << "\n";
    return 1;
  }
  const double t_con = RunTen(o, *url, o.queue + "-concurrent" + suffix, 10, error);
  if (!error.empty()) {
    std::cerr << "conveyor bench --model: " << error << "\n";
    return 1;
  }
  Little little = RunLittle(o, *url, o.queue + "-little" + suffix, error);
  if (!error.empty()) {
    std::cerr << "conveyor bench --model: " << error << "\n";
    return 1;
  }
  const double lw = little.lambda * little.w;
  if (o.json) {
    std::printf(
        "{\"unit_ms\":%lld,\"tasks\":10,\"sequential\":{\"seconds\":%.3f,\"units\":%.2f,"
        "\"expected_units\":55,\"throughput_per_unit\":%.4f},\"concurrent\":{\"workers\":10,"
        "\"seconds\":%.3f,\"units\":%.2f,\"expected_units\":10,\"throughput_per_unit\":%.4f},"
        "\"little\":{\"lambda_per_second\":%.2f,\"w_seconds\":%.4f,\"l_measured\":%.3f,"
        "\"lambda_w\":%.3f,\"samples\":%zu}}\n",
        static_cast<long long>(o.unit_ms), t_seq, t_seq / unit_s, 10 / (t_seq / unit_s), t_con,
        t_con / unit_s, 10 / (t_con / unit_s), little.lambda, little.w, little.l, lw,
        little.samples);
    return 0;
  }
  std::printf(
      "The asynchronous model through Conveyor: 10 I/O-bound tasks of 1, 2, ..., 10 units "
      "(1 unit = %lld ms)\n",
      static_cast<long long>(o.unit_ms));
  std::printf(
      "  one worker, one after another: T = %.2f units (sum of t_i = 55), Q = n/T = %.3f "
      "tasks/unit\n",
      t_seq / unit_s, 10 / (t_seq / unit_s));
  std::printf(
      "  ten concurrent workers:        T = %.2f units (max t_i = 10),   Q = n/T = %.3f "
      "tasks/unit\n",
      t_con / unit_s, 10 / (t_con / unit_s));
  std::printf("  speed-up %.2fx (55/10 = 5.5x ideal)\n", t_seq / t_con);
  std::printf("Little's law under a steady load (lambda %.0f/s offered, W %.0f ms in service):\n",
              o.little_rate, static_cast<double>(o.little_service_units * o.unit_ms));
  std::printf(
      "  lambda = %.2f tasks/s (acked, /metrics), W = %.4f s (lease -> ack), "
      "lambda*W = %.3f\n",
      little.lambda, little.w, lw);
  std::printf(
      "  L = %.3f tasks in service (mean of %zu /metrics samples of the leased count); "
      "L / (lambda*W) = %.3f\n",
      little.l, little.samples, lw > 0 ? little.l / lw : 0);
  return 0;
}

}  // namespace conveyor
