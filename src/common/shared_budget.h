// SharedBudget: a server-wide count against a limit (long-poll waiters, unfinished tasks),
// taken and given back by every shard with relaxed atomics: no lock, and a limit that means
// the whole server, whatever --threads is. A limit of 0 means unlimited. Any thread.
#pragma once

#include <atomic>
#include <cstddef>

namespace conveyor {

class SharedBudget {
 public:
  explicit SharedBudget(size_t limit = 0) : limit_(limit) {}

  // Takes n units if they fit under the limit.
  bool TryTake(size_t n = 1) {
    size_t now = used_.fetch_add(n, std::memory_order_relaxed);
    if (limit_ != 0 && now + n > limit_) {
      used_.fetch_sub(n, std::memory_order_relaxed);
      return false;
    }
    return true;
  }
  // Takes n units whatever the limit (recovery, a retry of a dead task).
  void Take(size_t n = 1) { used_.fetch_add(n, std::memory_order_relaxed); }
  void Give(size_t n = 1) { used_.fetch_sub(n, std::memory_order_relaxed); }

  size_t used() const { return used_.load(std::memory_order_relaxed); }
  size_t limit() const { return limit_; }

 private:
  const size_t limit_;
  std::atomic<size_t> used_{0};
};

}  // namespace conveyor
