// TokenBucket: a rate limit's bucket (a queue's, or one key's): `burst` tokens at most,
// filling at `per_second`, one token taken a lease. Time is the monotonic clock in ms,
// passed in (the engine's Clock; a ManualClock in tests). Owned by a ReadyIndex, on its
// shard's thread.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace conveyor {

class TokenBucket {
 public:
  // A bucket starts full: `burst` tokens (1 by default, so a limit opens without a burst).
  void Configure(double per_second, double burst, int64_t now) {
    Refill(now);
    rate_per_ms_ = per_second / 1000.0;
    if (!configured_) tokens_ = burst;
    burst_ = burst;
    tokens_ = std::min(tokens_, burst_);
    configured_ = true;
  }

  bool Has(int64_t now) {
    Refill(now);
    return tokens_ >= 1 - kSlack;
  }
  void Take(int64_t now) {
    Refill(now);
    tokens_ -= 1;
  }
  // When the next token is there (now when it is).
  int64_t NextAt(int64_t now) {
    Refill(now);
    if (tokens_ >= 1 - kSlack) return now;
    return now +
           std::max<int64_t>(1, static_cast<int64_t>(std::ceil((1 - tokens_) / rate_per_ms_)));
  }
  bool Full(int64_t now) {
    Refill(now);
    return tokens_ >= burst_ - kSlack;
  }
  // The tokens there are at `now`, without changing the bucket.
  double Peek(int64_t now) const {
    if (now <= at_) return tokens_;
    return std::min(burst_, tokens_ + static_cast<double>(now - at_) * rate_per_ms_);
  }

 private:
  static constexpr double kSlack = 1e-9;  // rounding of the refill arithmetic

  void Refill(int64_t now) {
    if (now > at_) {
      tokens_ = std::min(burst_, tokens_ + static_cast<double>(now - at_) * rate_per_ms_);
      at_ = now;
    }
  }

  double rate_per_ms_ = 0.001;
  double burst_ = 1;
  double tokens_ = 1;
  int64_t at_ = 0;
  bool configured_ = false;
};

}  // namespace conveyor
