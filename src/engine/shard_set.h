// ShardSet: the I/O threads, one io_context and one Shard each, and the routing from a
// queue name or task id to the shard that owns it. CallShard runs a command on the owning
// shard's thread and resumes the calling coroutine on its own thread with the result:
// the only way data crosses threads. Built before Run(); routing is read-only afterwards.
#pragma once

#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string_view>
#include <thread>
#include <vector>

#include "common/task_id.h"
#include "engine/callback.h"
#include "engine/shard.h"

namespace conveyor {

class ShardSet {
 public:
  // journals[i] belongs to shard i; all must outlive the ShardSet.
  ShardSet(size_t threads, const Clock& clock, std::vector<Journal*> journals,
           const Limits& limits);
  ~ShardSet();

  size_t size() const { return shards_.size(); }
  Shard& at(size_t i) { return *shards_[i]; }
  Shard& ForQueue(std::string_view queue) { return at(SlotOfQueue(queue) % size()); }
  Shard& ForTask(uint64_t id) { return at(SlotOfTask(id) % size()); }
  boost::asio::io_context& io(size_t i) { return *ios_[i]; }

  // Runs every io_context on its own thread (index 0 on the calling thread) until Stop().
  void Run();
  void Stop();
  // After Run() has returned: destroys the shards (their timers and engines, with any
  // waiter callbacks) and then the io_contexts (with any handler or coroutine frame still
  // queued), before the objects those frames point to (API, HTTP server) go. Idempotent.
  void Destroy();

  std::atomic<uint64_t>& next_sequence() { return shared_.next_sequence; }
  ServerWide& shared() { return shared_; }

 private:
  void SampleMemory();

  ServerWide shared_;
  std::vector<std::unique_ptr<boost::asio::io_context>> ios_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::unique_ptr<boost::asio::steady_timer> memory_timer_;
  size_t max_memory_bytes_ = 0;
  std::chrono::steady_clock::time_point last_trim_{};
};

// Index of the I/O thread running the caller (0 outside the I/O threads).
size_t CurrentIoThread();

template <typename Result>
using Completion = Callback<void(Result)>;

// Runs fn(shard, done) on the shard's thread; done(result) may be called then or later
// (long-poll, group commit) and resumes the awaiting coroutine on its own executor. The
// coroutine's handler travels inside `done` (no shared state, no allocation of its own);
// should `done` be dropped uncalled (shutdown), the handler's destructor hands the
// coroutine's frames back to its own executor to be destroyed there. When the caller
// already runs on the shard's thread, fn runs at once instead of being posted (one trip
// through the event loop less); the answer is still posted, so the coroutine never
// resumes inside the engine's call.
template <typename Result, typename Fn>
boost::asio::awaitable<Result> CallShard(Shard& shard, Fn fn) {
  namespace asio = boost::asio;
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(Result)>(
      [&shard, fn = std::move(fn)](auto handler) mutable {
        using Handler = decltype(handler);
        static_assert(sizeof(Handler) <= 2 * sizeof(void*), "the handler no longer fits inline");
        auto run = [&shard, fn = std::move(fn), handler = std::move(handler)]() mutable {
          fn(shard, Completion<Result>([handler = std::move(handler)](Result result) mutable {
               auto ex = asio::get_associated_executor(handler);
               asio::post(ex, [handler = std::move(handler), result = std::move(result)]() mutable {
                 std::move(handler)(std::move(result));
               });
             }));
          shard.AfterCommand();
        };
        if (shard.io().get_executor().running_in_this_thread()) {
          run();
        } else {
          asio::post(shard.io(), std::move(run));
        }
      },
      asio::use_awaitable);
}

// Runs calls[i].second(shard, done) on every shard calls[i].first at once, and resumes the
// awaiting coroutine once all of them have answered: one wait for a command that spans
// shards (a batch ack), not one wait per shard. Results come back in call order.
template <typename Result, typename Fn>
boost::asio::awaitable<std::vector<Result>> CallShards(std::vector<std::pair<Shard*, Fn>> calls) {
  namespace asio = boost::asio;
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(std::vector<Result>)>(
      [calls = std::move(calls)](auto handler) mutable {
        using Handler = decltype(handler);
        struct State {
          Handler handler;
          std::vector<Result> results;
          size_t remaining;
        };
        const size_t n = calls.size();
        auto state = std::make_shared<State>(State{std::move(handler), std::vector<Result>(n), n});
        auto ex = asio::get_associated_executor(state->handler);
        if (n == 0) {
          asio::post(ex, [state] { state->handler(std::move(state->results)); });
          return;
        }
        for (size_t i = 0; i < n; ++i) {
          Shard& shard = *calls[i].first;
          // The counting happens on the caller's executor (one thread): no atomics.
          asio::post(shard.io(), [&shard, fn = std::move(calls[i].second), state, ex, i]() mutable {
            fn(shard, Completion<Result>([state, ex, i](Result result) mutable {
                 asio::post(ex, [state, i, result = std::move(result)]() mutable {
                   state->results[i] = std::move(result);
                   if (--state->remaining == 0) state->handler(std::move(state->results));
                 });
               }));
            shard.AfterCommand();
          });
        }
      },
      asio::use_awaitable);
}

// Answers `reply` through done once the shard's journal has made every change so far
// durable; on a storage failure the reply becomes 503 storage_unavailable. An error
// reply is answered at once.
template <typename Result>
void ReplyWhenDurable(Shard& shard, Result reply, Completion<Result> done) {
  if (!reply.error.ok()) {  // a refused command changed nothing: answer at once
    done(std::move(reply));
    return;
  }
  shard.journal().WhenDurable(
      [reply = std::move(reply), done = std::move(done)](Error error) mutable {
        if (!error.ok()) {
          const bool timeout = error.code == ErrorCode::kStorageTimeout;
          reply.error = Error{timeout ? error.code : ErrorCode::kStorageUnavailable, error.message};
        }
        done(std::move(reply));
      });
}

}  // namespace conveyor
