// The load generator behind `conveyor bench`: --connections keep-alive connections (one
// coroutine each, spread over --threads I/O threads) drive a running server with one
// workload and report throughput and latency percentiles from HDR histograms:
//   enqueue  POST tasks (--batch per request) until --tasks are in or --duration is up;
//   drain    lease --batch at a time and ack them (one batch ack), until the queues are empty;
//   e2e      producers and consumers at once (half the connections each); every task carries
//            its send time, so the consumers measure enqueue -> lease latency;
//   mixed    e2e plus readers (an eighth of the connections) doing GET task and queue stats.
// --rate makes the producers open loop: request k is due at start + k * batch / rate, and its
// latency counts from that due time, so a stalled server cannot hide its queueing
// (no coordinated omission). Tasks go round robin over --queues queues.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace conveyor {

struct LoadOptions {
  std::string server = "http://127.0.0.1:8700";
  std::string beanstalkd;  // HOST:PORT: speak the beanstalkd protocol there instead
  std::string workload = "enqueue";
  std::string queue = "bench";  // with --queues N: bench-0 .. bench-(N-1)
  size_t connections = 64;
  size_t threads = 1;
  size_t tasks = 100000;
  double duration_s = 0;  // > 0: run this long instead of --tasks
  size_t batch = 1;
  size_t payload_bytes = 100;
  size_t queues = 1;
  size_t keys = 0;  // > 0: tasks carry keys k0 .. k(keys-1), round robin (flow control)
  double rate = 0;  // tasks/s, open loop; 0: closed loop (as fast as answers come)
  int64_t lease_ms = 30000;
  bool json = false;
  bool progress = true;  // the live line, when stderr is a terminal
};

// Returns the process exit code: 0, or 1 when requests failed, 2 for bad options.
int RunLoad(const LoadOptions& options);

}  // namespace conveyor
