#include "engine/backoff.h"

#include <algorithm>
#include <cmath>

namespace conveyor {

int64_t BackoffDelayMs(const BackoffPolicy& policy, uint32_t attempts, double unit_random) {
  const double exponent = attempts > 0 ? attempts - 1 : 0;
  // Computed in double and clamped before converting, so huge exponents never overflow.
  double delay = static_cast<double>(policy.base_ms) * std::pow(policy.factor, exponent);
  delay = std::min(delay, static_cast<double>(policy.max_ms));
  if (!(delay >= 0)) delay = 0;  // NaN guard
  if (policy.jitter) delay = delay / 2 + delay / 2 * std::clamp(unit_random, 0.0, 1.0);
  return static_cast<int64_t>(delay);
}

}  // namespace conveyor
