#include "push/breaker.h"

namespace conveyor {

bool CircuitBreaker::Allow(int64_t now_ms) {
  switch (state_) {
    case State::kClosed:
      return true;
    case State::kOpen:
      if (now_ms < opened_at_ + cooldown_ms_) return false;
      state_ = State::kHalfOpen;
      probing_ = true;
      return true;
    case State::kHalfOpen:
      if (probing_) return false;
      probing_ = true;
      return true;
  }
  return false;
}

void CircuitBreaker::OnSuccess() {
  state_ = State::kClosed;
  consecutive_ = 0;
  probing_ = false;
}

void CircuitBreaker::OnFailure(int64_t now_ms) {
  if (consecutive_ < UINT32_MAX) ++consecutive_;
  if (state_ == State::kHalfOpen) {
    Open(now_ms);  // the probe (or a delivery from before) failed
    return;
  }
  if (state_ == State::kClosed && threshold_ > 0 && consecutive_ >= threshold_) Open(now_ms);
}

void CircuitBreaker::OnAbandoned() {
  if (state_ == State::kHalfOpen) probing_ = false;
}

void CircuitBreaker::Open(int64_t now_ms) {
  state_ = State::kOpen;
  opened_at_ = now_ms;
  probing_ = false;
  ++times_opened_;
}

std::string_view BreakerStateName(CircuitBreaker::State state) {
  switch (state) {
    case CircuitBreaker::State::kClosed:
      return "closed";
    case CircuitBreaker::State::kOpen:
      return "open";
    case CircuitBreaker::State::kHalfOpen:
      return "half_open";
  }
  return "closed";
}

}  // namespace conveyor
