#include "engine/backoff.h"

#include <gtest/gtest.h>

namespace conveyor {
namespace {

TEST(BackoffTest, GrowsExponentiallyUpToTheCap) {
  BackoffPolicy p{1000, 2.0, 5000, false};
  EXPECT_EQ(BackoffDelayMs(p, 1, 0.5), 1000);
  EXPECT_EQ(BackoffDelayMs(p, 2, 0.5), 2000);
  EXPECT_EQ(BackoffDelayMs(p, 3, 0.5), 4000);
  EXPECT_EQ(BackoffDelayMs(p, 4, 0.5), 5000);
  EXPECT_EQ(BackoffDelayMs(p, 1000000, 0.5), 5000);  // no overflow for huge exponents
}

TEST(BackoffTest, JitterStaysBetweenHalfAndFull) {
  BackoffPolicy p{1000, 2.0, 3'600'000, true};
  EXPECT_EQ(BackoffDelayMs(p, 2, 0.0), 1000);
  EXPECT_EQ(BackoffDelayMs(p, 2, 0.999999), 1999);
  int64_t mid = BackoffDelayMs(p, 2, 0.5);
  EXPECT_EQ(mid, 1500);
}

}  // namespace
}  // namespace conveyor
