// LatencyHistogram: a high-dynamic-range histogram of durations in microseconds, in the
// manner of HdrHistogram: values below 2048 µs are counted exactly, larger ones in
// power-of-two ranges split into 1024 linear buckets each (relative error under 0.1%),
// up to about 73 minutes. Fixed memory (~190 KiB), O(1) record, mergeable. Used by
// `conveyor bench`: one per connection coroutine, merged at the end; not thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace conveyor {

class LatencyHistogram {
 public:
  LatencyHistogram();

  void Record(int64_t micros);
  void Merge(const LatencyHistogram& other);
  uint64_t count() const { return count_; }
  int64_t max() const { return max_; }
  int64_t min() const { return count_ == 0 ? 0 : min_; }
  double mean() const { return count_ == 0 ? 0 : static_cast<double>(sum_) / count_; }
  // The smallest recorded value v such that at least `fraction` of the values are <= v,
  // to the histogram's precision (the upper edge of v's bucket, never above max()).
  int64_t Percentile(double fraction) const;

  static constexpr int kLinearBits = 11;  // values < 2^11 are exact
  static constexpr int kSubBits = 10;     // 1024 buckets per power of two above that
  static constexpr int kMaxExponent = 32;
  static size_t IndexOf(uint64_t v);
  static uint64_t UpperEdge(size_t index);

 private:
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  int64_t max_ = 0;
  int64_t min_ = 0;
};

}  // namespace conveyor
