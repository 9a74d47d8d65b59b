// QueueDispatcher: push delivery for one queue (docs/PUSH.md). On the queue's shard
// thread it leases the queue's ready tasks like a pull worker (at most `concurrency` in
// flight, in lease order, each under a lease a little longer than the delivery's
// timeout), POSTs each to the endpoint with HttpClient, and settles it by the answer
// (push/verdict.h): ack, nack, dead, or deferred while the endpoint asks to wait. A
// circuit breaker stops deliveries after consecutive failures and probes after a
// cool-down. Everything here runs on that one thread; PushStatus is what other threads
// may read.
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <optional>
#include <string>

#include "client/http_client.h"
#include "common/clock.h"
#include "common/limits.h"
#include "common/url.h"
#include "engine/queue_config.h"
#include "engine/task_service.h"
#include "push/breaker.h"
#include "push/verdict.h"

namespace conveyor {

// One push queue's figures, written by its dispatcher's thread and read by any (GET
// /v1/queues/{q}, /metrics, conveyor stats): relaxed atomics.
struct PushStatus {
  std::atomic<uint8_t> breaker{0};  // CircuitBreaker::State
  std::atomic<uint32_t> consecutive_failures{0};
  std::atomic<uint64_t> in_flight{0};
  std::atomic<uint64_t> settling{0};   // answered; the ack or nack not yet durable
  std::atomic<uint64_t> delivered{0};  // answered 2xx
  std::atomic<uint64_t> failed{0};     // nacked (retry or dead) on an answer or a failure
  std::atomic<uint64_t> deferred{0};   // 429/503 with Retry-After
  std::atomic<uint64_t> breaker_opened{0};
  std::atomic<int64_t> paused_until{0};  // epoch ms of a Retry-After pause; 0: none
};

class QueueDispatcher : public std::enable_shared_from_this<QueueDispatcher> {
 public:
  struct Context {
    TaskService* service = nullptr;
    std::shared_ptr<HttpClient> client;  // this thread's
    const Clock* clock = nullptr;
    const Limits* limits = nullptr;
  };

  QueueDispatcher(std::string queue, const PushConfig& config, Context context,
                  std::shared_ptr<PushStatus> status);

  // Starts leasing and delivering on `executor` (the queue's shard thread). After a
  // restart (`reclaim`), the leases an earlier process's dispatcher held first expire at
  // once: their deliveries died with it.
  void Start(boost::asio::any_io_executor executor, bool reclaim);
  // A new push config for the same queue: applies to the next deliveries.
  void Update(const PushConfig& config);
  // No new leases; deliveries in flight finish and settle.
  void Stop();
  size_t in_flight() const { return in_flight_; }
  bool stopped() const { return stopping_ && !running_ && in_flight_ == 0; }

 private:
  boost::asio::awaitable<void> Run(bool reclaim);
  boost::asio::awaitable<void> Deliver(TaskView task);
  boost::asio::awaitable<void> Settle(const TaskView& task, const Verdict& verdict);
  // Acks wait here for the end of the event loop's turn and then go in one AckMany.
  boost::asio::awaitable<void> FlushAcks();
  boost::asio::awaitable<void> SleepUntilMono(int64_t mono_ms);
  void Wake();       // ends a sleep and a parked lease (config change, a pause, stop)
  void SlotFreed();  // ends a sleep only (Run waits for free slots)
  void Publish();
  std::vector<HttpHeader> HeadersFor(const TaskView& task) const;

  std::string queue_;
  // Shared with the deliveries in flight, which keep the config they started with.
  std::shared_ptr<const PushConfig> config_;
  std::shared_ptr<const Url> url_;
  std::string signing_key_;  // empty: deliveries are not signed
  Context ctx_;
  std::shared_ptr<PushStatus> status_;
  CircuitBreaker breaker_;
  std::optional<boost::asio::steady_timer> wake_;
  TaskService::WaitSlot lease_wait_;  // the parked lease, to cancel it
  size_t in_flight_ = 0;
  size_t settling_ = 0;
  std::vector<AckCall> pending_acks_;
  bool flush_scheduled_ = false;
  bool interrupted_ = false;  // the parked lease was cut short by Wake(), not by the engine
  int64_t paused_until_mono_ = 0;
  bool stopping_ = false;
  bool running_ = false;
};

}  // namespace conveyor
