// The machinery every protocol's workloads share in `conveyor bench`: the run's shared
// counters (Run), a connection's histograms (ConnStats), the options check, the live
// progress line, the report, and RunWith, which owns the I/O threads. Used by
// load_generator.cpp (HTTP) and beanstalk_load.cpp (the beanstalkd protocol).
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bench/latency_histogram.h"
#include "bench/load_generator.h"
#include "client/blocking_http_client.h"

namespace conveyor {

using SteadyClock = std::chrono::steady_clock;

inline int64_t MicrosSince(SteadyClock::time_point epoch, SteadyClock::time_point t) {
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
  std::atomic<uint64_t> next_key{0};      // with --keys: tasks' keys round robin
  std::atomic<uint64_t> enqueued{0};
  std::atomic<uint64_t> consumed{0};  // leased and acked
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> errors{0};
  std::atomic<size_t> producers_left{0};
  std::atomic<uint64_t> last_id{0};  // a recent task id, for the readers of `mixed`
  std::atomic<bool> stop{false};
  // µs from the start to the last task enqueued (enqueue) or consumed (the others): the
  // run's length, without the consumers' last empty long-poll.
  std::atomic<int64_t> last_done_us{0};
  void Done(std::atomic<uint64_t>& counter, uint64_t n) {
    counter.fetch_add(n, std::memory_order_relaxed);
    last_done_us.store(MicrosSince(start, SteadyClock::now()), std::memory_order_relaxed);
  }
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

std::string Filler(size_t payload_bytes);

// A producer's next request: takes up to --batch tasks of what is left (n), and its due
// time: now when closed loop; with --rate its slot of the schedule, waited for on `timer`.
// False when nothing is left or the slot falls past --duration.
boost::asio::awaitable<bool> NextRequest(Run& run, boost::asio::steady_timer& timer, size_t& n,
                                         SteadyClock::time_point& due);

// Who does what among the connections: all produce (enqueue), all consume (drain); e2e
// halves them; mixed also gives an eighth (at least one) to readers.
struct Roles {
  size_t producers = 0;
  size_t readers = 0;
};
Roles RolesOf(const LoadOptions& o);

using IoThreads = std::vector<std::unique_ptr<boost::asio::io_context>>;
// Spawns the connections' coroutines on the threads' io_contexts.
using Spawner = std::function<void(Run&, IoThreads&, std::vector<ConnStats>&)>;
// Checks the options, runs the spawned connections on --threads threads until all end,
// reports. Returns the exit code (0; 1 when requests failed; 2 for bad options).
int RunWith(const LoadOptions& o, const ServerUrl& url, const Spawner& spawn);

}  // namespace conveyor
