// conveyor::sdk::Worker: a lease loop and one coroutine per task on the client's executor.
// A running handler's lease is extended every lease_ms / 3; Stop() ends the lease loop
// (its pending long-poll is left to end by itself within wait_ms) and Run() returns once
// every handler has settled.
#include <conveyor/client.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>

namespace conveyor::sdk {

namespace asio = boost::asio;

namespace {
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
}  // namespace

struct Worker::Impl : std::enable_shared_from_this<Impl> {
  Impl(Client& c, std::string q, Handler h, WorkerOptions o)
      : client(c),
        queue(std::move(q)),
        handler(std::move(h)),
        options(std::move(o)),
        wake(c.executor()) {}

  awaitable<void> Run() {
    auto self = shared_from_this();
    while (!stopping) {
      if (handlers >= options.concurrency) {
        wake.expires_after(std::chrono::hours(1));
        co_await wake.async_wait(kTuple);  // a handler ended, or Stop()
        continue;
      }
      std::vector<Task> tasks;
      bool failed = false;
      try {
        tasks = co_await client.Lease(queue, options.concurrency - handlers, options.wait_ms,
                                      options.lease_ms, options.name);
      } catch (const std::exception&) {  // sdk::Error, or an answer that was not a lease
        failed = true;
      }
      if (failed) {
        wake.expires_after(std::chrono::seconds(1));  // the server is away: try again soon
        co_await wake.async_wait(kTuple);
        continue;
      }
      for (Task& task : tasks) {
        ++running;
        ++handlers;
        asio::co_spawn(client.executor(), Handle(std::move(task)), asio::detached);
      }
    }
    while (running > 0) {
      wake.expires_after(std::chrono::hours(1));
      co_await wake.async_wait(kTuple);
    }
  }

  // Extends the task's lease while its handler runs (until *done).
  awaitable<void> KeepLeased(Task task, std::shared_ptr<bool> done,
                             std::shared_ptr<asio::steady_timer> timer) {
    auto self = shared_from_this();
    // Counted like a handler, so that Run() returns (and the Client may go) only once no
    // extend is in flight either.
    struct Counted {
      Impl& impl;
      ~Counted() {
        --impl.running;
        impl.wake.cancel();
      }
    } counted{*this};
    const auto every = std::chrono::milliseconds(std::max<int64_t>(options.lease_ms / 3, 10));
    while (!*done) {
      timer->expires_after(every);
      co_await timer->async_wait(kTuple);
      if (*done) break;
      try {
        co_await client.Extend(task, options.lease_ms);
      } catch (const std::exception&) {
        // The lease may be gone (expired, the server restarted): the handler goes on; its
        // ack then fails and the task is redelivered, as at-least-once allows.
      }
    }
  }

  awaitable<void> Handle(Task task) {
    auto self = shared_from_this();
    auto done = std::make_shared<bool>(false);
    auto timer = std::make_shared<asio::steady_timer>(client.executor());
    ++running;  // the lease keeper's
    asio::co_spawn(client.executor(), KeepLeased(task, done, timer), asio::detached);
    Outcome outcome;
    try {
      outcome = co_await handler(task);
    } catch (const std::exception& e) {
      outcome = Outcome::Retry(std::string("the handler threw: ") + e.what());
    } catch (...) {
      outcome = Outcome::Retry("the handler threw something that is not a std::exception");
    }
    *done = true;
    timer->cancel();
    try {
      switch (outcome.kind) {
        case Outcome::Kind::kAck:
          co_await client.Ack(task, outcome.result);
          break;
        case Outcome::Kind::kRetry:
          co_await client.Nack(task, outcome.message, outcome.retry_in_ms, false);
          break;
        case Outcome::Kind::kDead:
          co_await client.Nack(task, outcome.message, std::nullopt, true);
          break;
      }
      ++handled;
    } catch (const std::exception&) {
      // Not settled (the lease expired, the server is away): the task comes back.
    }
    --running;
    --handlers;
    wake.cancel();
  }

  Client& client;
  std::string queue;
  Handler handler;
  WorkerOptions options;
  asio::steady_timer wake;
  uint32_t running = 0;   // handlers and their lease keepers
  uint32_t handlers = 0;  // handlers only (the concurrency)
  uint64_t handled = 0;
  bool stopping = false;
};

Worker::Worker(Client& client, std::string queue, Handler handler, WorkerOptions options)
    : impl_(std::make_shared<Impl>(client, std::move(queue), std::move(handler),
                                   std::move(options))) {}

Worker::~Worker() = default;

awaitable<void> Worker::Run() { co_await impl_->Run(); }

void Worker::Stop() {
  impl_->stopping = true;
  impl_->wake.cancel();
}

uint64_t Worker::handled() const { return impl_->handled; }

}  // namespace conveyor::sdk
