// Clock: the engine's two sources of time. NowMs() is wall-clock epoch milliseconds, for
// the epoch fields users see (created_at, run_at, expires_at, ...); MonoMs() is a
// monotonic millisecond count, for every duration the engine waits out (lease expiry,
// delays, retention, long-poll waits), so that a step of the wall clock neither expires
// every lease at once nor stalls them. The server uses SystemClock; unit tests use
// ManualClock, which moves both together (Advance) or steps the wall clock alone
// (StepWall). Both are safe to read from any thread.
#pragma once

#include <atomic>
#include <cstdint>

namespace conveyor {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowMs() const = 0;
  virtual int64_t MonoMs() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t NowMs() const override;
  int64_t MonoMs() const override;
  static const SystemClock& Instance();
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_ms = 1'700'000'000'000) : now_(start_ms) {}
  int64_t NowMs() const override { return now_.load(std::memory_order_relaxed); }
  int64_t MonoMs() const override { return mono_.load(std::memory_order_relaxed); }
  // Time passes: both clocks move.
  void Advance(int64_t ms) {
    now_.fetch_add(ms, std::memory_order_relaxed);
    mono_.fetch_add(ms, std::memory_order_relaxed);
  }
  // The wall clock is set (NTP step, an operator): the monotonic clock does not move.
  void StepWall(int64_t ms) { now_.fetch_add(ms, std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> now_;
  std::atomic<int64_t> mono_{1'000'000};
};

}  // namespace conveyor
