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

#include "bench/beanstalk_load.h"
#include "bench/load_run.h"
#include "bench/server_connection.h"
#include "common/json_raw.h"

namespace conveyor {
namespace {

namespace asio = boost::asio;

// The body of one enqueue of n tasks stamped with `sent_us` (µs since the run's start).
// With keys > 0 each task carries the next key of `next_key`'s round robin.
void BuildEnqueueBody(std::string& body, size_t n, int64_t sent_us, const std::string& filler,
                      size_t keys, std::atomic<uint64_t>& next_key) {
  body.clear();
  auto one = [&] {
    body += "{\"payload\":{\"t\":";
    body += std::to_string(sent_us);
    body += ",\"data\":\"";
    body += filler;
    body += "\"}";
    if (keys > 0) {
      body += ",\"key\":\"k";
      body += std::to_string(next_key.fetch_add(1, std::memory_order_relaxed) % keys);
      body += '"';
    }
    body += '}';
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
  ServerConnection conn(co_await asio::this_coro::executor, run.url);
  asio::steady_timer timer(co_await asio::this_coro::executor);
  std::string target;
  const std::string filler = Filler(o.payload_bytes);
  std::string body;
  while (!run.TimeUp()) {
    size_t n = 0;
    SteadyClock::time_point due;
    if (!co_await NextRequest(run, timer, n, due)) break;
    BuildEnqueueBody(body, n, MicrosSince(run.start, due), filler, o.keys, run.next_key);
    target = "/v1/queues/" + run.QueueName(run.next_queue.fetch_add(1)) + "/tasks";
    HttpAnswer r = co_await conn.Request("POST", target, body);
    stats.request.Record(MicrosSince(due, SteadyClock::now()));
    run.requests.fetch_add(1, std::memory_order_relaxed);
    if (!IsSuccess(r.status)) {
      run.Fail(FailureOf(r, "enqueue"));
      if (r.status == 0) break;
      continue;
    }
    run.Done(run.enqueued, n);
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
  ServerConnection conn(co_await asio::this_coro::executor, run.url);
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
    HttpAnswer r = co_await conn.Request("POST", lease_target, lease_body);
    const SteadyClock::time_point got = SteadyClock::now();
    run.requests.fetch_add(1, std::memory_order_relaxed);
    if (r.status != 200) {
      run.Fail(FailureOf(r, "lease"));
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
    HttpAnswer a;
    if (n == 1) {
      a = co_await conn.Request("POST", acks.single_target, acks.single_body);
    } else {
      a = co_await conn.Request("POST", "/v1/ack", acks.batch);
    }
    stats.request.Record(MicrosSince(sent, SteadyClock::now()));
    run.requests.fetch_add(1, std::memory_order_relaxed);
    if (a.status != 200) {
      run.Fail(FailureOf(a, "ack"));
      if (a.status == 0) co_return;
      continue;
    }
    run.Done(run.consumed, n);
  }
}

// `mixed`: reads beside the traffic: a recent task, then its queue's stats, in turn.
asio::awaitable<void> Read(Run& run, ConnStats& stats, size_t index) {
  ServerConnection conn(co_await asio::this_coro::executor, run.url);
  const std::string stats_target = "/v1/queues/" + run.QueueName(index);
  bool task_turn = true;
  while (run.producers_left.load() > 0 && !run.TimeUp()) {
    const uint64_t id = run.last_id.load(std::memory_order_relaxed);
    const std::string target =
        task_turn && id != 0 ? "/v1/tasks/" + std::to_string(id) : stats_target;
    task_turn = !task_turn;
    const SteadyClock::time_point sent = SteadyClock::now();
    HttpAnswer r = co_await conn.Request("GET", target);
    stats.request.Record(MicrosSince(sent, SteadyClock::now()));
    run.requests.fetch_add(1, std::memory_order_relaxed);
    if (r.status != 200) {
      run.Fail(FailureOf(r, "GET"));
      if (r.status == 0) co_return;
    }
  }
}

// Who does what: all produce (enqueue), all consume (drain); e2e halves them; mixed also
// gives an eighth (at least one) to readers. Connections go round robin over the threads.
void SpawnConnections(Run& run, IoThreads& ios, std::vector<ConnStats>& stats) {
  const LoadOptions& o = run.o;
  const auto [producers, readers] = RolesOf(o);
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
  if (!o.beanstalkd.empty()) return RunBeanstalkLoad(o);
  std::string why;
  auto url = ParseServerUrl(o.server, why);
  if (!url) {
    std::cerr << "conveyor bench: --server: " << why << "\n";
    return 2;
  }
  return RunWith(o, *url, SpawnConnections);
}

}  // namespace conveyor
