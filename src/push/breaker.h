// CircuitBreaker: one push endpoint's (one queue's) breaker. Closed: deliveries flow.
// After `failures` consecutive endpoint failures it opens: nothing is delivered for the
// cool-down; then it is half-open and lets exactly one delivery through as a probe; the
// probe's success closes it, its failure opens it again. Any success closes it. Times
// are the caller's (monotonic ms), so tests drive it with a manual clock. Owned by its
// dispatcher, on that dispatcher's thread.
#pragma once

#include <cstdint>
#include <string_view>

namespace conveyor {

class CircuitBreaker {
 public:
  enum class State : uint8_t { kClosed, kOpen, kHalfOpen };

  void Configure(uint32_t failures, int64_t cooldown_ms) {
    threshold_ = failures;
    cooldown_ms_ = cooldown_ms;
  }

  // May one more delivery start at now_ms? Moves an open breaker whose cool-down has
  // passed to half-open, and takes its probe: the caller must then deliver once.
  bool Allow(int64_t now_ms);
  // An open breaker's end of cool-down (when Allow may say yes again); 0 otherwise.
  int64_t probe_at() const { return state_ == State::kOpen ? opened_at_ + cooldown_ms_ : 0; }
  void OnSuccess();
  void OnFailure(int64_t now_ms);
  // A delivery that ended without a verdict (abandoned): a probe may be taken again.
  void OnAbandoned();

  State state() const { return state_; }
  uint32_t consecutive_failures() const { return consecutive_; }
  uint64_t times_opened() const { return times_opened_; }

 private:
  void Open(int64_t now_ms);

  uint32_t threshold_ = 5;
  int64_t cooldown_ms_ = 30000;
  State state_ = State::kClosed;
  uint32_t consecutive_ = 0;
  int64_t opened_at_ = 0;
  bool probing_ = false;
  uint64_t times_opened_ = 0;
};

std::string_view BreakerStateName(CircuitBreaker::State state);

}  // namespace conveyor
