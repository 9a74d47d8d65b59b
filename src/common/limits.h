// Every limit the network can push on, with its reason and default, in one place so that
// the server, the tests and docs/CONFIG.md read the same numbers. Filled once at start-up
// by the CLI (flags, environment, config file) and read-only afterwards: any thread may read.
#pragma once

#include <cstddef>
#include <cstdint>

namespace conveyor {

struct Limits {
  // Request bodies are buffered whole; 1 MiB keeps a thousand connections well under 1 GiB.
  size_t max_body_bytes = 1 << 20;
  // Beast's header parser buffers the block; 16 KiB fits any sane client and stops floods.
  size_t max_header_bytes = 16 << 10;
  // A batch is applied all-or-nothing in one shard turn; bounded so one turn stays short.
  size_t max_batch = 1000;
  // Most tasks one lease call may take; each is encoded into one answer.
  size_t max_lease_batch = 1000;
  // Long-poll waits are bounded so that a waiter never outlives a proxy's idle timeout.
  int64_t max_wait_ms = 60000;
  // Nesting beyond this is refused before it can hurt a recursive reader downstream.
  size_t max_json_depth = 128;
  // Open connections; one more is answered 503 and closed. Well below the FD limit.
  size_t max_connections = 10000;
  // A request must be read completely within this time of its first byte (slowloris).
  int64_t header_timeout_ms = 10000;
  // An idle keep-alive connection is closed after this.
  int64_t idle_timeout_ms = 60000;
  // A response must be written within this time (slow readers).
  int64_t write_timeout_ms = 10000;
  // Queues per shard (each costs a few KiB even when empty); new ones beyond get 429.
  size_t max_queues = 100000;
  // Long-poll waiters per server; more are answered 429.
  size_t max_waiters = 10000;
  // Stored error messages are cut to this size, and a task keeps this many of them.
  size_t max_error_message_bytes = 4096;
  size_t max_errors_kept = 50;
  // Changes waiting for a shard's next commit while one is in flight (a stalled fsync);
  // beyond this the shard answers 503 instead of growing without bound.
  size_t max_commit_backlog_bytes = 64u << 20;
  // Longest lease a client may ask for (24 h).
  int64_t max_lease_ms = 86'400'000;
  // Unfinished (scheduled, ready, leased) tasks in the whole server; each lives in RAM, so
  // beyond this enqueues get 503 overloaded. 0: no count limit (memory still bounds).
  size_t max_tasks = 10'000'000;
  // Resident memory of the server; past it enqueues get 503 overloaded (never an OOM
  // kill). 0: no limit.
  size_t max_memory_bytes = 0;
  // Bytes of queued tasks' payloads kept in memory in all (durable modes); a task created
  // (or recovered) past it keeps its payload in storage only, read back when it is leased
  // or shown. With --durability none every payload stays in memory.
  size_t payload_cache_bytes = 16u << 20;
  // Largest lease answer or task page; always at least one task, then "truncated": true.
  size_t max_response_bytes = 16u << 20;
  // Queues with their own series in /metrics; the rest are counted in
  // conveyor_metrics_queues_dropped (a scrape stays small whatever clients name).
  size_t max_metrics_queues = 1000;
  // A state-changing request waits this long for its fsync, then gets 503 storage_timeout
  // ("outcome unknown"): no request hangs on a stalled disk.
  int64_t commit_timeout_ms = 10000;
  // SIGTERM/SIGINT: in-flight requests get this long to finish (their durability wait
  // included) before the remaining connections are closed; then storage is flushed.
  int64_t shutdown_timeout_ms = 15000;
};

}  // namespace conveyor
