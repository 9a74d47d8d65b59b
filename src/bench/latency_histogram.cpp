#include "bench/latency_histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace conveyor {

namespace {
constexpr uint64_t kLinear = uint64_t{1} << LatencyHistogram::kLinearBits;
constexpr uint64_t kSub = uint64_t{1} << LatencyHistogram::kSubBits;
constexpr size_t kBuckets =
    kLinear + (LatencyHistogram::kMaxExponent - LatencyHistogram::kLinearBits) * kSub;
constexpr uint64_t kLargest = (uint64_t{1} << LatencyHistogram::kMaxExponent) - 1;
}  // namespace

LatencyHistogram::LatencyHistogram() : counts_(kBuckets, 0) {}

// Below 2^11: the value itself. Above: for v in [2^e, 2^(e+1)), e >= 11, the range number
// (e - 11) and the top 10 bits after the leading one.
size_t LatencyHistogram::IndexOf(uint64_t v) {
  v = std::min(v, kLargest);
  if (v < kLinear) return static_cast<size_t>(v);
  const int e = 63 - std::countl_zero(v);  // position of the leading one, >= 11
  const uint64_t sub = (v >> (e - kSubBits)) - kSub;
  return static_cast<size_t>(kLinear + (e - kLinearBits) * kSub + sub);
}

uint64_t LatencyHistogram::UpperEdge(size_t index) {
  if (index < kLinear) return index;
  const size_t range = (index - kLinear) / kSub;
  const uint64_t sub = (index - kLinear) % kSub;
  const int e = static_cast<int>(range) + kLinearBits;
  const uint64_t width = uint64_t{1} << (e - kSubBits);
  return ((kSub + sub) << (e - kSubBits)) + width - 1;
}

void LatencyHistogram::Record(int64_t micros) {
  const uint64_t v = micros < 0 ? 0 : static_cast<uint64_t>(micros);
  ++counts_[IndexOf(v)];
  if (count_ == 0 || static_cast<int64_t>(v) < min_) min_ = static_cast<int64_t>(v);
  ++count_;
  sum_ += v;
  max_ = std::max(max_, static_cast<int64_t>(v));
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  if (other.count_ == 0) return;
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  min_ = count_ == 0 ? other.min_ : std::min(min_, other.min_);
  count_ += other.count_;
  sum_ += other.sum_;
  max_ = std::max(max_, other.max_);
}

int64_t LatencyHistogram::Percentile(double fraction) const {
  if (count_ == 0) return 0;
  fraction = std::clamp(fraction, 0.0, 1.0);
  const uint64_t rank = std::max<uint64_t>(
      1, static_cast<uint64_t>(std::ceil(fraction * static_cast<double>(count_))));
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min<int64_t>(static_cast<int64_t>(UpperEdge(i)), max_);
  }
  return max_;
}

}  // namespace conveyor
