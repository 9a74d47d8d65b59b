// SaturatingAdd: a + b for epoch and monotonic milliseconds that stops at kNever (and at
// the lowest value) instead of overflowing: a delay of "forever" stays forever. Used by
// the engine's files, on the shard's thread.
#pragma once

#include <cstdint>
#include <limits>

#include "engine/task.h"

namespace conveyor {

inline int64_t SaturatingAdd(int64_t a, int64_t b) {
  if (b > 0 && a > kNever - b) return kNever;
  if (b < 0 && a < std::numeric_limits<int64_t>::min() - b) {
    return std::numeric_limits<int64_t>::min();
  }
  return a + b;
}

}  // namespace conveyor
