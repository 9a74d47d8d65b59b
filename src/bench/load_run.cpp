#include "bench/load_run.h"

#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdio>
#include <iostream>
#include <thread>

namespace conveyor {

namespace asio = boost::asio;

std::string Filler(size_t payload_bytes) {
  return std::string(payload_bytes > 24 ? payload_bytes - 24 : 1, 'x');
}

asio::awaitable<bool> NextRequest(Run& run, asio::steady_timer& timer, size_t& n,
                                  SteadyClock::time_point& due) {
  const LoadOptions& o = run.o;
  const int64_t before = run.to_send.fetch_sub(static_cast<int64_t>(o.batch));
  if (before <= 0) co_return false;
  n = std::min<size_t>(o.batch, static_cast<size_t>(before));
  due = SteadyClock::now();
  if (o.rate <= 0) co_return true;
  const uint64_t slot = run.next_request.fetch_add(1);
  due = run.start + std::chrono::microseconds(static_cast<int64_t>(
                        static_cast<double>(slot) * static_cast<double>(o.batch) * 1e6 / o.rate));
  if (due >= run.end_by) co_return false;
  if (due > SteadyClock::now()) {
    timer.expires_at(due);
    co_await timer.async_wait(asio::use_awaitable);
  }
  co_return true;
}

Roles RolesOf(const LoadOptions& o) {
  Roles r;
  if (o.workload == "enqueue") r.producers = o.connections;
  if (o.workload == "e2e" || o.workload == "mixed") r.producers = o.connections / 2;
  if (o.workload == "mixed" && o.connections >= 3)
    r.readers = std::max<size_t>(1, o.connections / 8);
  return r;
}

namespace {

// The live line on stderr, once a second, while the run lasts.
asio::awaitable<void> Progress(Run& run, const std::atomic<bool>& finished) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  uint64_t last = 0;
  while (!finished.load()) {
    timer.expires_after(std::chrono::seconds(1));
    co_await timer.async_wait(asio::use_awaitable);
    if (finished.load()) break;
    const bool consuming = run.o.workload != "enqueue";
    const uint64_t done = consuming ? run.consumed.load() : run.enqueued.load();
    const double elapsed = std::chrono::duration<double>(SteadyClock::now() - run.start).count();
    std::fprintf(stderr, "\r%s: %6.1f s  %12llu tasks  %10llu tasks/s  %llu errors   ",
                 run.o.workload.c_str(), elapsed, static_cast<unsigned long long>(done),
                 static_cast<unsigned long long>(done - last),
                 static_cast<unsigned long long>(run.errors.load()));
    std::fflush(stderr);
    last = done;
  }
}

double Ms(int64_t micros) { return static_cast<double>(micros) / 1000.0; }

std::string PercentilesJson(const LatencyHistogram& h) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "{\"count\":%llu,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p99_9\":%.3f,"
                "\"max\":%.3f,\"mean\":%.3f}",
                static_cast<unsigned long long>(h.count()), Ms(h.Percentile(0.5)),
                Ms(h.Percentile(0.9)), Ms(h.Percentile(0.99)), Ms(h.Percentile(0.999)), Ms(h.max()),
                h.mean() / 1000.0);
  return buf;
}

std::string PercentilesText(const LatencyHistogram& h) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f ms",
                Ms(h.Percentile(0.5)), Ms(h.Percentile(0.9)), Ms(h.Percentile(0.99)),
                Ms(h.Percentile(0.999)), Ms(h.max()));
  return buf;
}

std::string CheckOptions(const LoadOptions& o) {
  const std::string w = o.workload;
  if (w != "enqueue" && w != "drain" && w != "e2e" && w != "mixed") {
    return "unknown workload '" + w + "': use enqueue, drain, e2e or mixed";
  }
  if (o.connections == 0 || o.threads == 0 || o.batch == 0 || o.queues == 0) {
    return "--connections, --threads, --batch and --queues must be at least 1";
  }
  if ((w == "e2e" || w == "mixed") && o.connections < 2) {
    return "e2e and mixed need at least 2 connections (producers and consumers)";
  }
  if (o.rate < 0 || o.duration_s < 0) return "--rate and --duration cannot be negative";
  return {};
}

void Report(const LoadOptions& o, const Run& run, double seconds, const ConnStats& all) {
  const bool consuming = o.workload != "enqueue";
  const uint64_t tasks = consuming ? run.consumed.load() : run.enqueued.load();
  const double rate = seconds > 0 ? static_cast<double>(tasks) / seconds : 0;
  const bool e2e = o.workload == "e2e" || o.workload == "mixed";
  if (o.json) {
    std::printf(
        "{\"workload\":\"%s\",\"mode\":\"%s\",\"connections\":%zu,\"batch\":%zu,\"queues\":%zu,"
        "\"rate\":%.0f,\"payload_bytes\":%zu,\"tasks\":%llu,\"enqueued\":%llu,\"seconds\":%.3f,"
        "\"tasks_per_second\":%.0f,\"requests\":%llu,\"errors\":%llu,\"p50_ms\":%.3f,"
        "\"p99_ms\":%.3f,\"latency_ms\":%s",
        o.workload.c_str(), o.workload.c_str(), o.connections, o.batch, o.queues, o.rate,
        o.payload_bytes, static_cast<unsigned long long>(tasks),
        static_cast<unsigned long long>(run.enqueued.load()), seconds, rate,
        static_cast<unsigned long long>(run.requests.load()),
        static_cast<unsigned long long>(run.errors.load()), Ms(all.request.Percentile(0.5)),
        Ms(all.request.Percentile(0.99)), PercentilesJson(all.request).c_str());
    if (e2e)
      std::printf(",\"enqueue_to_lease_ms\":%s", PercentilesJson(all.enqueue_to_lease).c_str());
    std::printf("}\n");
  } else {
    std::printf(
        "%s: %llu tasks in %.2f s = %.0f tasks/s; %zu connections, batch %zu, %zu queue(s)%s\n",
        o.workload.c_str(), static_cast<unsigned long long>(tasks), seconds, rate, o.connections,
        o.batch, o.queues,
        o.rate > 0
            ? (", open loop at " + std::to_string(static_cast<int64_t>(o.rate)) + "/s").c_str()
            : "");
    std::printf("  requests %llu, errors %llu; request latency %s\n",
                static_cast<unsigned long long>(run.requests.load()),
                static_cast<unsigned long long>(run.errors.load()),
                PercentilesText(all.request).c_str());
    if (e2e)
      std::printf("  enqueue -> lease latency %s\n", PercentilesText(all.enqueue_to_lease).c_str());
  }
  std::fflush(stdout);
}

}  // namespace

int RunWith(const LoadOptions& o, const ServerUrl& url, const Spawner& spawn) {
  if (std::string why = CheckOptions(o); !why.empty()) {
    std::cerr << "conveyor bench: " << why << "\n";
    return 2;
  }
  Run run(o);
  run.url = url;
  run.to_send = o.duration_s > 0 ? INT64_MAX / 2 : static_cast<int64_t>(o.tasks);
  IoThreads ios;
  for (size_t t = 0; t < o.threads; ++t) ios.push_back(std::make_unique<asio::io_context>(1));
  std::vector<ConnStats> stats(o.connections);
  run.producers_left = RolesOf(o).producers;
  run.start = SteadyClock::now();
  if (o.duration_s > 0) {
    run.end_by = run.start + std::chrono::microseconds(static_cast<int64_t>(o.duration_s * 1e6));
  }
  spawn(run, ios, stats);
  std::atomic<bool> finished{false};
  asio::io_context progress_io(1);
  std::thread progress_thread;
  if (o.progress && !o.json && isatty(STDERR_FILENO)) {
    asio::co_spawn(progress_io, Progress(run, finished), asio::detached);
    progress_thread = std::thread([&] { progress_io.run(); });
  }
  std::vector<std::thread> threads;
  for (size_t t = 1; t < o.threads; ++t) threads.emplace_back([&, t] { ios[t]->run(); });
  ios[0]->run();
  for (auto& t : threads) t.join();
  double seconds = std::chrono::duration<double>(SteadyClock::now() - run.start).count();
  if (run.last_done_us.load() > 0) seconds = static_cast<double>(run.last_done_us.load()) / 1e6;
  finished = true;
  if (progress_thread.joinable()) {
    progress_io.stop();
    progress_thread.join();
    std::fprintf(stderr, "\n");
  }
  ConnStats all;
  for (const ConnStats& s : stats) {
    all.request.Merge(s.request);
    all.enqueue_to_lease.Merge(s.enqueue_to_lease);
  }
  Report(o, run, seconds, all);
  if (run.first_error_set.load()) std::cerr << "conveyor bench: " << run.first_error << "\n";
  return run.errors.load() == 0 ? 0 : 1;
}

}  // namespace conveyor
