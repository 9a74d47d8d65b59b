#include "bench/load_generator.h"

#include <unistd.h>

#include <algorithm>
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
#include <memory>
#include <thread>
#include <vector>

#include "bench/latency_histogram.h"
#include "client/async_http_client.h"
#include "common/json_raw.h"

namespace conveyor {
namespace {

namespace asio = boost::asio;
using SteadyClock = std::chrono::steady_clock;

int64_t MicrosSince(SteadyClock::time_point epoch, SteadyClock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t - epoch).count();
}

// What every connection shares; atomics only, relaxed: counts, never a lock.
struct Run {
  const LoadOptions& o;
  ServerUrl url;
  SteadyClock::time_point start = SteadyClock::now();
  SteadyClock::time_point end_by = SteadyClock::time_point::max();  // --duration
  std::atomic<int64_t> to_send{0};        // tasks producers may still enqueue (--tasks)
  std::atomic<uint64_t> next_request{0};  // open loop: the schedule's next slot
  std::atomic<uint64_t> next_queue{0};    // producers' round robin over the queues
  std::atomic<uint64_t> enqueued{0};
  std::atomic<uint64_t> consumed{0};  // leased and acked
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> errors{0};
  std::atomic<size_t> producers_left{0};
  std::atomic<uint64_t> last_id{0};  // a recent task id, for the readers of `mixed`
  std::atomic<bool> stop{false};
  std::string first_error;  // set once, under first_error_set
  std::atomic<bool> first_error_set{false};

  explicit Run(const LoadOptions& options) : o(options) {}
  bool TimeUp() const { return SteadyClock::now() >= end_by || stop.load(); }
  std::string QueueName(size_t i) const {
    return o.queues <= 1 ? o.queue : o.queue + "-" + std::to_string(i % o.queues);
  }
  void Fail(const std::string& what) {
    errors.fetch_add(1, std::memory_order_relaxed);
    if (!first_error_set.exchange(true)) first_error = what;
  }
};

// One connection's own figures, merged after the run.
struct ConnStats {
  LatencyHistogram request;  // request -> answer (from the due time when open loop)
  LatencyHistogram enqueue_to_lease;
};

std::string Filler(size_t payload_bytes) {
  return std::string(payload_bytes > 24 ? payload_bytes - 24 : 1, 'x');
}

// The body of one enqueue of n tasks stamped with `sent_us` (µs since the run's start).
void BuildEnqueueBody(std::string& body, size_t n, int64_t sent_us, const std::string& filler) {
  body.clear();
  auto one = [&] {
    body += "{\"payload\":{\"t\":";
    body += std::to_string(sent_us);
    body += ",\"data\":\"";
    body += filler;
    body += "\"}}";
  };
  if (n == 1) {
    one();
    return;
  }
  body += "{\"tasks\":[";
  for (size_t i = 0; i < n; ++i) {
    if (i) body += ',';
    one();
  }
  body += "]}";
}

bool IsSuccess(int status) { return status / 100 == 2; }

asio::awaitable<void> Produce(Run& run, ConnStats& stats) {
  const LoadOptions& o = run.o;
  AsyncHttpConnection conn(co_await asio::this_coro::executor, run.url);
  asio::steady_timer timer(co_await asio::this_coro::executor);
  std::string target;
  const std::string filler = Filler(o.payload_bytes);
  std::string body;
  while (!run.TimeUp()) {
    int64_t before = run.to_send.fetch_sub(static_cast<int64_t>(o.batch));
    if (before <= 0) break;
    const size_t n = std::min<size_t>(o.batch, static_cast<size_t>(before));
    SteadyClock::time_point due = SteadyClock::now();
    if (o.rate > 0) {
      const uint64_t slot = run.next_request.fetch_add(1);
      due =
          run.start + std::chrono::microseconds(static_cast<int64_t>(
                          static_cast<double>(slot) * static_cast<double>(o.batch) * 1e6 / o.rate));
      if (due >= run.end_by) break;
      if (due > SteadyClock::now()) {
        timer.expires_at(due);
        co_await timer.async_wait(asio::use_awaitable);
      }
    }
    BuildEnqueueBody(body, n, MicrosSince(run.start, due), filler);
    target = "/v1/queues/" + run.QueueName(run.next_queue.fetch_add(1)) + "/tasks";
    AsyncHttpResult r = co_await conn.Request("POST", target, body);
    stats.request.Record(MicrosSince(due, SteadyClock::now()));
    run.requests.fetch_add(1, std::memory_order_relaxed);
    if (!IsSuccess(r.status)) {
      run.Fail(r.status == 0 ? r.error
                             : "enqueue answered " + std::to_string(r.status) + ": " + r.body);
      if (r.status == 0) break;
      continue;
    }
    run.enqueued.fetch_add(n, std::memory_order_relaxed);
    if (n == 1) {
      uint64_t id = 0;
      std::string_view text = FindJsonMember(r.body, "id");
      std::from_chars(text.data(), text.data() + text.size(), id);
      if (id != 0) run.last_id.store(id, std::memory_order_relaxed);
    }
  }
  run.producers_left.fetch_sub(1);
}

// The acks of one lease answer: one batch ack body, and the single ack of the last task
// (used when the answer held one task).
struct Acks {
  std::string batch;
  std::string single_target;
  std::string single_body;
};

// Reads a lease answer: records each task's enqueue -> lease latency from its stamp (µs
// since the run's start, in the payload's "t") and builds the acks. Returns the count.
size_t TakeLeased(std::string_view answer, int64_t got_us, ConnStats& stats, Acks& acks) {
  acks.batch = "{\"acks\":[";
  size_t n = 0;
  ForEachJsonElement(FindJsonMember(answer, "tasks"), [&](std::string_view task) {
    std::string_view id = FindJsonMember(task, "id");
    std::string_view token = FindJsonMember(FindJsonMember(task, "lease"), "token");
    std::string_view t = FindJsonMember(FindJsonMember(task, "payload"), "t");
    int64_t stamp = 0;
    if (!t.empty() && std::from_chars(t.data(), t.data() + t.size(), stamp).ec == std::errc{}) {
      stats.enqueue_to_lease.Record(got_us - stamp);
    }
    if (n++) acks.batch += ',';
    acks.batch.append("{\"id\":").append(id).append(",\"lease\":").append(token).append("}");
    acks.single_target.assign("/v1/tasks/").append(id).append("/ack");
    acks.single_body.assign("{\"lease\":").append(token).append("}");
    return true;
  });
  acks.batch += "]}";
  return n;
}

// Leases up to --batch, acks them, records enqueue -> lease from each task's stamp.
// `wait`: long-poll while producers are still at work (e2e, mixed); drain stops at empty.
asio::awaitable<void> Consume(Run& run, ConnStats& stats, size_t index, bool wait) {
  const LoadOptions& o = run.o;
  AsyncHttpConnection conn(co_await asio::this_coro::executor, run.url);
  // Starts on queue `index`; once the producers are done, an empty queue sends it on to
  // the next, and it stops when every queue answered empty in a row.
  size_t queue_index = index;
  size_t empty_in_a_row = 0;
  std::string lease_target = "/v1/queues/" + run.QueueName(queue_index) + "/lease";
  Acks acks;
  for (;;) {
    const bool producing = wait && run.producers_left.load() > 0;
    const std::string lease_body = "{\"max\":" + std::to_string(o.batch) +
                                   ",\"lease_ms\":" + std::to_string(o.lease_ms) +
                                   ",\"wait_ms\":" + (producing ? "200" : "0") + "}";
    SteadyClock::time_point sent = SteadyClock::now();
    AsyncHttpResult r = co_await conn.Request("POST", lease_target, lease_body);
    const SteadyClock::time_point got = SteadyClock::now();
    run.requests.fetch_add(1, std::memory_order_relaxed);
    if (r.status != 200) {
      run.Fail(r.status == 0 ? r.error
                             : "lease answered " + std::to_string(r.status) + ": " + r.body);
      if (r.status == 0) co_return;
      continue;
    }
    stats.request.Record(MicrosSince(sent, got));
    const size_t n = TakeLeased(r.body, MicrosSince(run.start, got), stats, acks);
    if (n == 0) {
      if (producing || (wait && run.producers_left.load() > 0)) continue;
      if (++empty_in_a_row >= o.queues) co_return;
      lease_target = "/v1/queues/" + run.QueueName(++queue_index) + "/lease";
      continue;
    }
    empty_in_a_row = 0;
    sent = SteadyClock::now();
    AsyncHttpResult a;
    if (n == 1) {
      a = co_await conn.Request("POST", acks.single_target, acks.single_body);
    } else {
      a = co_await conn.Request("POST", "/v1/ack", acks.batch);
    }
    stats.request.Record(MicrosSince(sent, SteadyClock::now()));
    run.requests.fetch_add(1, std::memory_order_relaxed);
    if (a.status != 200) {
      run.Fail(a.status == 0 ? a.error
                             : "ack answered " + std::to_string(a.status) + ": " + a.body);
      if (a.status == 0) co_return;
      continue;
    }
    run.consumed.fetch_add(n, std::memory_order_relaxed);
  }
}

// `mixed`: reads beside the traffic: a recent task, then its queue's stats, in turn.
asio::awaitable<void> Read(Run& run, ConnStats& stats, size_t index) {
  AsyncHttpConnection conn(co_await asio::this_coro::executor, run.url);
  const std::string stats_target = "/v1/queues/" + run.QueueName(index);
  bool task_turn = true;
  while (run.producers_left.load() > 0 && !run.TimeUp()) {
    const uint64_t id = run.last_id.load(std::memory_order_relaxed);
    const std::string target =
        task_turn && id != 0 ? "/v1/tasks/" + std::to_string(id) : stats_target;
    task_turn = !task_turn;
    const SteadyClock::time_point sent = SteadyClock::now();
    AsyncHttpResult r = co_await conn.Request("GET", target);
    stats.request.Record(MicrosSince(sent, SteadyClock::now()));
    run.requests.fetch_add(1, std::memory_order_relaxed);
    if (r.status != 200) {
      run.Fail(r.status == 0 ? r.error : "GET answered " + std::to_string(r.status));
      if (r.status == 0) co_return;
    }
  }
}

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

// Who does what: all produce (enqueue), all consume (drain); e2e halves them; mixed also
// gives an eighth (at least one) to readers. Connections go round robin over the threads.
void SpawnConnections(Run& run, std::vector<std::unique_ptr<asio::io_context>>& ios,
                      std::vector<ConnStats>& stats) {
  const LoadOptions& o = run.o;
  size_t producers = 0, readers = 0;
  if (o.workload == "enqueue") producers = o.connections;
  if (o.workload == "e2e" || o.workload == "mixed") producers = o.connections / 2;
  if (o.workload == "mixed" && o.connections >= 3) readers = std::max<size_t>(1, o.connections / 8);
  run.producers_left = producers;
  run.start = SteadyClock::now();
  if (o.duration_s > 0) {
    run.end_by = run.start + std::chrono::microseconds(static_cast<int64_t>(o.duration_s * 1e6));
  }
  for (size_t c = 0; c < o.connections; ++c) {
    asio::io_context& io = *ios[c % ios.size()];
    if (c < producers) {
      asio::co_spawn(io, Produce(run, stats[c]), asio::detached);
    } else if (c < producers + readers) {
      asio::co_spawn(io, Read(run, stats[c], c), asio::detached);
    } else {
      const bool wait = o.workload != "drain";
      asio::co_spawn(io, Consume(run, stats[c], c - producers - readers, wait), asio::detached);
    }
  }
}

}  // namespace

int RunLoad(const LoadOptions& o) {
  if (std::string why = CheckOptions(o); !why.empty()) {
    std::cerr << "conveyor bench: " << why << "\n";
    return 2;
  }
  std::string why;
  auto url = ParseServerUrl(o.server, why);
  if (!url) {
    std::cerr << "conveyor bench: --server: " << why << "\n";
    return 2;
  }
  Run run(o);
  run.url = *url;
  run.to_send = o.duration_s > 0 ? INT64_MAX / 2 : static_cast<int64_t>(o.tasks);
  std::vector<std::unique_ptr<asio::io_context>> ios;
  for (size_t t = 0; t < o.threads; ++t) ios.push_back(std::make_unique<asio::io_context>(1));
  std::vector<ConnStats> stats(o.connections);
  SpawnConnections(run, ios, stats);
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
  const double seconds = std::chrono::duration<double>(SteadyClock::now() - run.start).count();
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
