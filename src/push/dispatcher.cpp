#include "push/dispatcher.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <iostream>

#include "push/signature.h"

namespace conveyor {

namespace asio = boost::asio;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
// A lease outlasts its delivery's timeout by this much, so that it never expires while
// the answer is still on its way (and the task is delivered twice at once).
constexpr int64_t kLeaseMarginMs = 5000;
// A parked lease is renewed this often; a storage error is retried after kErrorPauseMs.
constexpr int64_t kLeaseWaitMs = 30000;
constexpr int64_t kErrorPauseMs = 1000;
// How long a lease waits for a batch of slots to come free before it takes fewer.
constexpr int64_t kBatchWaitMs = 1;
// The worker name of push leases (shown in a task's lease).
constexpr const char* kPushWorker = "push";

}  // namespace

QueueDispatcher::QueueDispatcher(std::string queue, const PushConfig& config, Context context,
                                 std::shared_ptr<PushStatus> status)
    : queue_(std::move(queue)), ctx_(std::move(context)), status_(std::move(status)) {
  Update(config);
}

void QueueDispatcher::Update(const PushConfig& config) {
  config_ = std::make_shared<const PushConfig>(config);
  std::string why;
  // Checked by the API before it was stored.
  url_ = std::make_shared<const Url>(ParseUrl(config.url, why).value_or(Url{}));
  signing_key_ =
      config.secret.empty() ? std::string() : SigningKeyOf(config.secret, why).value_or("");
  breaker_.Configure(config.breaker_failures, config.breaker_cooldown_ms);
  Wake();
}

void QueueDispatcher::Start(asio::any_io_executor executor, bool reclaim) {
  wake_.emplace(executor);
  running_ = true;
  asio::co_spawn(executor, Run(reclaim), asio::detached);
}

void QueueDispatcher::Stop() {
  stopping_ = true;
  Wake();
}

void QueueDispatcher::Wake() {
  if (wake_) wake_->cancel();
  if (lease_wait_ && *lease_wait_) {
    interrupted_ = true;
    (*lease_wait_)->Cancel();
  }
}

void QueueDispatcher::SlotFreed() {
  if (wake_) wake_->cancel();  // a parked lease may go on waiting: it takes what it asked for
}

void QueueDispatcher::Publish() {
  status_->breaker.store(static_cast<uint8_t>(breaker_.state()), std::memory_order_relaxed);
  status_->consecutive_failures.store(breaker_.consecutive_failures(), std::memory_order_relaxed);
  status_->breaker_opened.store(breaker_.times_opened(), std::memory_order_relaxed);
  status_->in_flight.store(in_flight_, std::memory_order_relaxed);
  status_->settling.store(settling_, std::memory_order_relaxed);
}

asio::awaitable<void> QueueDispatcher::SleepUntilMono(int64_t mono_ms) {
  const int64_t now = ctx_.clock->MonoMs();
  wake_->expires_after(std::chrono::milliseconds(std::max<int64_t>(0, mono_ms - now)));
  co_await wake_->async_wait(kTuple);
}

asio::awaitable<void> QueueDispatcher::Run(bool reclaim) {
  auto self = shared_from_this();  // alive while this loop runs
  auto executor = co_await asio::this_coro::executor;
  bool waited_for_batch = false;
  if (reclaim) {
    std::string queue = queue_, worker = kPushWorker;
    std::string why = "the push delivery was cut short: the server restarted";
    Outcome<uint32_t> n =
        co_await ctx_.service->ExpireLeasesOf(std::move(queue), std::move(worker), std::move(why));
    if (!n.error.ok()) {
      std::cerr << "conveyor: push " << queue_ << ": " << n.error.message
                << " (its earlier leases end when they expire)" << std::endl;
    }
  }
  while (!stopping_) {
    const int64_t now = ctx_.clock->MonoMs();
    if (paused_until_mono_ > now) {  // the endpoint asked for a pause (Retry-After)
      co_await SleepUntilMono(paused_until_mono_);
      continue;
    }
    const size_t room = config_->concurrency > in_flight_ ? config_->concurrency - in_flight_ : 0;
    // Lease in batches: wait a moment for an eighth of the slots to be free, so that a
    // steady stream is one lease per several deliveries, not one each; after that moment
    // take what room there is, so that every slot is used.
    const size_t batch = std::max<size_t>(1, config_->concurrency / 8);
    if (room > 0 && room < batch && in_flight_ > 0 && !waited_for_batch) {
      waited_for_batch = true;
      co_await SleepUntilMono(now + kBatchWaitMs);
      continue;
    }
    waited_for_batch = false;
    if (room == 0) {
      co_await SleepUntilMono(now + kLeaseWaitMs);  // woken when a delivery ends
      continue;
    }
    if (!breaker_.Allow(now)) {
      const int64_t probe_at = breaker_.probe_at();
      co_await SleepUntilMono(probe_at > 0 ? probe_at : now + kLeaseWaitMs);
      continue;
    }
    const bool probe = breaker_.state() == CircuitBreaker::State::kHalfOpen;
    Publish();
    LeaseCommand command;
    command.queues.push_back(queue_);
    command.request.max =
        probe ? 1 : static_cast<uint32_t>(std::min<size_t>(room, ctx_.limits->max_lease_batch));
    command.request.wait_ms = std::min<int64_t>(kLeaseWaitMs, ctx_.limits->max_wait_ms);
    command.request.lease_ms =
        std::min<int64_t>(config_->timeout_ms + kLeaseMarginMs, ctx_.limits->max_lease_ms);
    command.request.worker = kPushWorker;
    // In memory only: after a crash the task is ready again at once (PUSH.md).
    command.request.journaled = false;
    lease_wait_ = std::make_shared<std::shared_ptr<WaitHandle>>();
    interrupted_ = false;
    const int64_t asked = ctx_.clock->MonoMs();
    LeaseResult leased = co_await ctx_.service->Lease(std::move(command), lease_wait_);
    lease_wait_.reset();
    if (leased.tasks.empty()) {
      if (probe) breaker_.OnAbandoned();
      const bool spun = !interrupted_ && ctx_.clock->MonoMs() - asked < 5;
      if (!leased.error.ok() || spun) {
        // Storage refusing, the waiter limit, a draining engine: do not spin.
        if (!stopping_) co_await SleepUntilMono(ctx_.clock->MonoMs() + kErrorPauseMs);
      }
      continue;
    }
    if (stopping_ || paused_until_mono_ > ctx_.clock->MonoMs() ||
        breaker_.state() == CircuitBreaker::State::kOpen) {
      if (probe) breaker_.OnAbandoned();  // the probe was not made: one may go later
      ctx_.service->ReleaseUndelivered(std::move(leased.granted));  // not counted
      continue;
    }
    for (TaskView& task : leased.tasks) {
      ++in_flight_;
      asio::co_spawn(executor, Deliver(std::move(task)), asio::detached);
    }
    Publish();
  }
  running_ = false;
}

std::vector<HttpHeader> QueueDispatcher::HeadersFor(const TaskView& task) const {
  std::vector<HttpHeader> headers;
  headers.reserve(config_->headers.size() + 6);
  const std::string id = std::to_string(task.id);
  // The id stays the same on every attempt, so a receiver can drop duplicates by it.
  headers.push_back({"webhook-id", id});
  headers.push_back({"Conveyor-Task-Id", id});
  headers.push_back({"Conveyor-Queue", queue_});
  headers.push_back({"Conveyor-Attempt", std::to_string(task.attempts)});
  for (const auto& [name, value] : config_->headers) headers.push_back({name, value});
  return headers;
}

asio::awaitable<void> QueueDispatcher::Deliver(TaskView task) {
  auto self = shared_from_this();
  std::vector<HttpHeader> headers = HeadersFor(task);
  if (!signing_key_.empty()) {
    const std::string timestamp = std::to_string(ctx_.clock->NowMs() / 1000);
    headers.push_back({"webhook-timestamp", timestamp});
    headers.push_back({"webhook-signature", WebhookSignature(signing_key_, headers.front().value,
                                                             timestamp, task.payload)});
  }
  HttpCall call;
  call.method = "POST";
  call.body = task.payload;
  call.content_type =
      task.payload_kind == PayloadKind::kBytes ? "application/octet-stream" : "application/json";
  call.headers = headers;
  call.timeout_ms = config_->timeout_ms;
  call.headers_of_success = false;                           // a 2xx needs only its body
  const std::shared_ptr<const PushConfig> config = config_;  // as when the delivery started
  const std::shared_ptr<const Url> url = url_;
  HttpAnswer answer = co_await ctx_.client->Request(*url, call);
  Verdict verdict = Judge(answer, *config, ctx_.clock->NowMs());
  switch (verdict.kind) {
    case VerdictKind::kAck:
      if (breaker_.state() != CircuitBreaker::State::kClosed) Wake();  // the probe succeeded
      breaker_.OnSuccess();
      status_->delivered.fetch_add(1, std::memory_order_relaxed);
      break;
    case VerdictKind::kDefer: {
      const int64_t until = ctx_.clock->MonoMs() + verdict.defer_ms;
      paused_until_mono_ = std::max(paused_until_mono_, until);
      status_->paused_until.store(ctx_.clock->NowMs() + verdict.defer_ms,
                                  std::memory_order_relaxed);
      status_->deferred.fetch_add(1, std::memory_order_relaxed);
      breaker_.OnAbandoned();
      Wake();  // the parked lease must not take more tasks during the pause
      break;
    }
    case VerdictKind::kAbandon:
      breaker_.OnAbandoned();
      break;
    default:
      status_->failed.fetch_add(1, std::memory_order_relaxed);
      if (verdict.endpoint_failed) {
        breaker_.OnFailure(ctx_.clock->MonoMs());
        // Just opened: a parked lease must not take more tasks for this endpoint.
        if (breaker_.state() == CircuitBreaker::State::kOpen) Wake();
      } else {
        breaker_.OnSuccess();  // the endpoint answered; it refused this task only
      }
      break;
  }
  // The endpoint has answered: its slot is free now, while the ack or nack becomes
  // durable (the task stays leased until then, so nothing is delivered twice).
  --in_flight_;
  Publish();
  // Run waits for a batch of free slots (or none in flight); wake it only then.
  const size_t batch = std::max<size_t>(1, config_->concurrency / 8);
  const size_t room = config_->concurrency > in_flight_ ? config_->concurrency - in_flight_ : 0;
  if (room == batch || in_flight_ == 0) SlotFreed();
  ++settling_;  // counted until durable, so a shutdown waits for it (PushManager::in_flight)
  co_await Settle(task, verdict);
}

asio::awaitable<void> QueueDispatcher::FlushAcks() {
  auto self = shared_from_this();
  // Let the deliveries answered in this turn of the event loop add theirs.
  co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
  std::vector<AckCall> acks;
  acks.swap(pending_acks_);
  flush_scheduled_ = false;
  std::vector<uint64_t> ids;
  ids.reserve(acks.size());
  for (const AckCall& a : acks) ids.push_back(a.id);
  const size_t count = acks.size();
  std::vector<Error> errors = co_await ctx_.service->AckMany(std::move(acks));
  settling_ -= count;
  Publish();
  for (size_t i = 0; i < errors.size(); ++i) {
    // A lease that ran out meanwhile (the task is someone else's now) or storage
    // refusing: the task is not lost; it comes back when its lease expires.
    if (!errors[i].ok()) {
      std::cerr << "conveyor: push " << queue_ << ": acking task " << ids[i]
                << " failed: " << errors[i].message << std::endl;
    }
  }
}

asio::awaitable<void> QueueDispatcher::Settle(const TaskView& task, const Verdict& v) {
  Outcome<IdState> out;
  switch (v.kind) {
    case VerdictKind::kAck:
      pending_acks_.push_back(AckCall{task.id, task.lease_token, v.result});
      if (!flush_scheduled_) {
        flush_scheduled_ = true;
        asio::co_spawn(co_await asio::this_coro::executor, FlushAcks(), asio::detached);
      }
      co_return;
    case VerdictKind::kRetry:
    case VerdictKind::kDead: {
      NackCall nack;
      nack.token = task.lease_token;
      nack.message = v.message;
      nack.dead = v.kind == VerdictKind::kDead;
      out = co_await ctx_.service->Nack(task.id, std::move(nack));
      break;
    }
    case VerdictKind::kDefer: {
      std::string token = task.lease_token;
      out = co_await ctx_.service->Defer(task.id, std::move(token), v.defer_ms);
      break;
    }
    case VerdictKind::kAbandon:
      ctx_.service->ReleaseUndelivered({LeaseGrant{task.id, task.lease_token}});
      --settling_;
      Publish();
      co_return;
  }
  --settling_;
  Publish();
  // A lease that ran out meanwhile (the task is someone else's now) or storage refusing:
  // the task is not lost; it comes back when its lease expires.
  if (!out.error.ok()) {
    std::cerr << "conveyor: push " << queue_ << ": settling task " << task.id
              << " failed: " << out.error.message << std::endl;
  }
}

}  // namespace conveyor
