// LatencyHistogram: exact below 2048 µs, within 0.1% above, percentiles by rank, merging.
#include "bench/latency_histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace conveyor {
namespace {

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  LatencyHistogram h;
  for (int v = 1; v <= 100; ++v) h.Record(v);
  EXPECT_EQ(h.count(), 100u);
  EXPECT_EQ(h.Percentile(0.5), 50);
  EXPECT_EQ(h.Percentile(0.99), 99);
  EXPECT_EQ(h.Percentile(1.0), 100);
  EXPECT_EQ(h.min(), 1);
  EXPECT_EQ(h.max(), 100);
  EXPECT_DOUBLE_EQ(h.mean(), 50.5);
}

TEST(LatencyHistogramTest, LargeValuesKeepThreeSignificantDigits) {
  std::mt19937_64 rng(42);
  std::vector<int64_t> values;
  LatencyHistogram h;
  for (int i = 0; i < 100000; ++i) {
    int64_t v = static_cast<int64_t>(std::exp(std::uniform_real_distribution<>(0, 22)(rng)));
    values.push_back(v);
    h.Record(v);
  }
  std::sort(values.begin(), values.end());
  for (double p : {0.5, 0.9, 0.99, 0.999}) {
    const int64_t exact = values[static_cast<size_t>(std::ceil(p * values.size())) - 1];
    const int64_t got = h.Percentile(p);
    EXPECT_GE(got, exact) << p;
    EXPECT_LE(static_cast<double>(got), static_cast<double>(exact) * 1.001 + 1) << p;
  }
  EXPECT_EQ(h.Percentile(1.0), values.back());
}

TEST(LatencyHistogramTest, IndexAndEdgeAgree) {
  for (uint64_t v :
       {0ull, 1ull, 2047ull, 2048ull, 2049ull, 4095ull, 4096ull, 123456789ull, (1ull << 32) - 1}) {
    const size_t i = LatencyHistogram::IndexOf(v);
    EXPECT_GE(LatencyHistogram::UpperEdge(i), v) << v;
    if (i > 0) {
      EXPECT_LT(LatencyHistogram::UpperEdge(i - 1), v) << v;
    }
  }
  // Beyond the range: counted in the last bucket, the max still exact.
  LatencyHistogram h;
  h.Record(int64_t{1} << 40);
  h.Record(-5);
  EXPECT_EQ(h.max(), int64_t{1} << 40);
  EXPECT_EQ(h.min(), 0);
}

TEST(LatencyHistogramTest, MergeIsTheSameAsRecordingAll) {
  LatencyHistogram a, b, all;
  for (int v = 0; v < 5000; v += 3) {
    (v % 2 ? a : b).Record(v * 7);
    all.Record(v * 7);
  }
  a.Merge(b);
  EXPECT_EQ(a.count(), all.count());
  for (double p : {0.1, 0.5, 0.9, 0.99}) EXPECT_EQ(a.Percentile(p), all.Percentile(p));
  EXPECT_EQ(a.max(), all.max());
  EXPECT_EQ(a.min(), all.min());
  LatencyHistogram empty;
  EXPECT_EQ(empty.Percentile(0.5), 0);
}

}  // namespace
}  // namespace conveyor
