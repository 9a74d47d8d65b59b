// The Conveyor C++ SDK (library target conveyor::client): a coroutine client for the HTTP
// API (docs/API.md) and a Worker whose handlers are C++20 coroutines. Everything runs on
// the Asio executor the Client was made with (one thread); failures throw
// conveyor::sdk::Error. Payloads and results are JSON text, as the API carries them.
// This header is the SDK's whole surface: nothing of the server's internals is in it.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace conveyor::sdk {

template <typename T>
using awaitable = boost::asio::awaitable<T>;

// A request that failed: no answer (status 0: connection, timeout) or an error answer.
class Error : public std::runtime_error {
 public:
  Error(int status, std::string code, const std::string& message)
      : std::runtime_error(message), status_(status), code_(std::move(code)) {}
  int status() const { return status_; }
  // The API's error code ("not_found", "overloaded", ...); empty without an answer.
  const std::string& code() const { return code_; }

 private:
  int status_;
  std::string code_;
};

struct EnqueueOptions {
  int32_t priority = 0;
  std::optional<int64_t> delay_ms;
  std::optional<int64_t> deadline;  // epoch ms
  std::optional<uint32_t> max_attempts;
  std::string idempotency_key;
};

struct Enqueued {
  uint64_t id = 0;
  std::string state;
  bool duplicate = false;
};

// A task as the API shows it (GET /v1/tasks/{id}), or as a lease hands it to a worker.
struct Task {
  uint64_t id = 0;
  std::string queue;
  std::string payload;  // JSON text
  int32_t priority = 0;
  std::string state;
  uint32_t attempts = 0;
  uint32_t max_attempts = 0;
  std::string result;       // JSON text; empty: none
  std::string lease_token;  // leased to this worker: the token its ack needs
  int64_t lease_expires_at = 0;
};

struct QueueStats {
  std::string name;
  uint64_t scheduled = 0, ready = 0, leased = 0, succeeded = 0, dead = 0, canceled = 0;
};

class Client {
 public:
  // server: http://HOST:PORT (https too).
  Client(boost::asio::any_io_executor executor, const std::string& server);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // (No default arguments on these coroutines: GCC 12 destroys a default argument's
  // temporary twice when it is written inside a co_await. The shorter overloads are plain
  // functions that forward.)
  awaitable<Enqueued> Enqueue(std::string queue, std::string payload_json, EnqueueOptions options);
  awaitable<Enqueued> Enqueue(std::string queue, std::string payload_json);
  // One request, all or nothing; the ids in order.
  awaitable<std::vector<uint64_t>> EnqueueBatch(std::string queue,
                                                std::vector<std::string> payloads_json,
                                                EnqueueOptions options);
  awaitable<std::vector<uint64_t>> EnqueueBatch(std::string queue,
                                                std::vector<std::string> payloads_json);
  awaitable<Task> Get(uint64_t id);
  awaitable<QueueStats> Stats(std::string queue);

  // The pull protocol, for workers of one's own (Worker below uses these).
  awaitable<std::vector<Task>> Lease(std::string queue, uint32_t max, int64_t wait_ms,
                                     int64_t lease_ms, std::string worker);
  awaitable<void> Ack(const Task& task, std::string result_json);
  awaitable<void> Ack(const Task& task);
  // retry_in_ms: again after that long (nullopt: the queue's backoff); dead: at once.
  awaitable<void> Nack(const Task& task, std::string message, std::optional<int64_t> retry_in_ms,
                       bool dead);
  awaitable<void> Extend(const Task& task, int64_t lease_ms);

  boost::asio::any_io_executor executor() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// What a handler decided about its task.
struct Outcome {
  enum class Kind { kAck, kRetry, kDead } kind = Kind::kAck;
  std::string result;   // kAck: JSON text (empty: none)
  std::string message;  // kRetry, kDead
  std::optional<int64_t> retry_in_ms;

  static Outcome Ack(std::string result_json = {}) {
    Outcome o;
    o.result = std::move(result_json);
    return o;
  }
  // Again after in_ms (or the queue's backoff).
  static Outcome Retry(std::string message, std::optional<int64_t> in_ms = {}) {
    Outcome o;
    o.kind = Kind::kRetry;
    o.message = std::move(message);
    o.retry_in_ms = in_ms;
    return o;
  }
  static Outcome Dead(std::string message) {
    Outcome o;
    o.kind = Kind::kDead;
    o.message = std::move(message);
    return o;
  }
};

struct WorkerOptions {
  uint32_t concurrency = 4;  // handlers running at once
  int64_t lease_ms = 30000;  // extended every lease_ms / 3 while a handler runs
  int64_t wait_ms = 10000;   // a lease's long-poll
  std::string name = "sdk-worker";
};

// Leases tasks of one queue and runs `handler` on each, at most `concurrency` at once, on
// the client's executor. A handler that throws is a retry with the exception's message.
// Stop() ends it gracefully: no new leases, the running handlers finish and settle.
class Worker {
 public:
  using Handler = std::function<awaitable<Outcome>(Task)>;

  Worker(Client& client, std::string queue, Handler handler, WorkerOptions options = {});
  ~Worker();
  // Returns once stopped and every handler has settled.
  awaitable<void> Run();
  void Stop();
  uint64_t handled() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace conveyor::sdk
