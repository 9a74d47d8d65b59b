#include "common/prometheus_text.h"

#include <gtest/gtest.h>

namespace conveyor {
namespace {

TEST(PrometheusTextTest, ReadsSamplesWithAndWithoutLabels) {
  auto samples = ParsePrometheusText(
      "# HELP x y\n# TYPE x counter\n"
      "conveyor_http_requests_total{route=\"enqueue\",status=\"201\"} 12\n"
      "\n"
      "conveyor_live_tasks 3\n"
      "m{a=\"q\\\"uote\\\\\",b=\"\"} 1.5e3 1700000000\n");
  ASSERT_EQ(samples.size(), 3u);
  EXPECT_EQ(samples[0].name, "conveyor_http_requests_total");
  EXPECT_EQ(samples[0].label("route"), "enqueue");
  EXPECT_EQ(samples[0].label("status"), "201");
  EXPECT_EQ(samples[0].label("absent"), "");
  EXPECT_EQ(samples[0].value, 12);
  EXPECT_EQ(samples[1].name, "conveyor_live_tasks");
  EXPECT_TRUE(samples[1].labels.empty());
  EXPECT_EQ(samples[2].label("a"), "q\"uote\\");
  EXPECT_EQ(samples[2].value, 1500);
}

TEST(PrometheusTextTest, SkipsMalformedLines) {
  auto samples = ParsePrometheusText(
      "no_value\nbad{route=\"x\" 1\nunterminated{a=\"b} 2\n9starts_with_digit 1\nx abc\n"
      "ok 7");
  ASSERT_EQ(samples.size(), 1u);
  EXPECT_EQ(samples[0].name, "ok");
  EXPECT_EQ(samples[0].value, 7);
}

}  // namespace
}  // namespace conveyor
