// Clock: the one source of wall-clock time for the engine (epoch milliseconds).
// The server uses SystemClock; unit tests use ManualClock so that leases, backoff,
// delays and deadlines are tested without sleeping. Both are safe to read from any thread.
#pragma once

#include <atomic>
#include <cstdint>

namespace conveyor {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowMs() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t NowMs() const override;
  static const SystemClock& Instance();
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t start_ms = 1'700'000'000'000) : now_(start_ms) {}
  int64_t NowMs() const override { return now_.load(std::memory_order_relaxed); }
  void Set(int64_t ms) { now_.store(ms, std::memory_order_relaxed); }
  void Advance(int64_t ms) { now_.fetch_add(ms, std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace conveyor
