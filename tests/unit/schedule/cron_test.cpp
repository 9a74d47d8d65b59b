// CronExpr: parsing (fields, lists, ranges, steps, names, macros, errors) and the next
// firing time, in UTC and across daylight-saving changes. Pure functions; no clock.
#include "schedule/cron.h"

#include <gtest/gtest.h>

#include "absl/time/civil_time.h"

namespace conveyor {
namespace {

absl::Time Utc(int y, int mo, int d, int h, int mi) {
  return absl::FromCivil(absl::CivilMinute(y, mo, d, h, mi), absl::UTCTimeZone());
}

CronExpr Must(std::string_view text) {
  std::string why;
  auto e = CronExpr::Parse(text, why);
  EXPECT_TRUE(e.has_value()) << text << ": " << why;
  return e.value_or(*CronExpr::Parse("* * * * *", why));
}

TEST(CronTest, NextFiringOfCommonExpressions) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  const absl::Time t = Utc(2026, 12, 2, 10, 7);  // a Wednesday
  EXPECT_EQ(Must("* * * * *").NextAfter(t, utc), Utc(2026, 12, 2, 10, 8));
  EXPECT_EQ(Must("*/15 * * * *").NextAfter(t, utc), Utc(2026, 12, 2, 10, 15));
  EXPECT_EQ(Must("0 * * * *").NextAfter(t, utc), Utc(2026, 12, 2, 11, 0));
  EXPECT_EQ(Must("30 9 * * *").NextAfter(t, utc), Utc(2026, 12, 3, 9, 30));
  EXPECT_EQ(Must("0 0 1 * *").NextAfter(t, utc), Utc(2027, 1, 1, 0, 0));
  EXPECT_EQ(Must("0 8 * * MON-FRI").NextAfter(t, utc), Utc(2026, 12, 3, 8, 0));
  EXPECT_EQ(Must("0 8 * * sat,sun").NextAfter(t, utc), Utc(2026, 12, 5, 8, 0));
  EXPECT_EQ(Must("0 8 * * 7").NextAfter(t, utc), Utc(2026, 12, 6, 8, 0));  // 7 is Sunday
  EXPECT_EQ(Must("0 0 29 2 *").NextAfter(t, utc), Utc(2028, 2, 29, 0, 0));
  EXPECT_EQ(Must("5-10/5 1 * jan *").NextAfter(t, utc), Utc(2027, 1, 1, 1, 5));
  EXPECT_EQ(Must("50/5 10 * * *").NextAfter(t, utc), Utc(2026, 12, 2, 10, 50));
  EXPECT_EQ(Must("@hourly").NextAfter(t, utc), Utc(2026, 12, 2, 11, 0));
  EXPECT_EQ(Must("@daily").NextAfter(t, utc), Utc(2026, 12, 3, 0, 0));
  EXPECT_EQ(Must("@weekly").NextAfter(t, utc), Utc(2026, 12, 6, 0, 0));
  EXPECT_EQ(Must("@yearly").NextAfter(t, utc), Utc(2027, 1, 1, 0, 0));
  // Strictly after: a time that matches is not its own next.
  EXPECT_EQ(Must("7 10 * * *").NextAfter(t, utc), Utc(2026, 12, 3, 10, 7));
}

TEST(CronTest, BothDayFieldsRestrictedMatchEither) {
  const absl::TimeZone utc = absl::UTCTimeZone();
  // The 15th, or any Friday: from Wed Dec 2 the first is Friday Dec 4.
  EXPECT_EQ(Must("0 0 15 * 5").NextAfter(Utc(2026, 12, 2, 0, 0), utc), Utc(2026, 12, 4, 0, 0));
  EXPECT_EQ(Must("0 0 15 * 5").NextAfter(Utc(2026, 12, 12, 0, 0), utc), Utc(2026, 12, 15, 0, 0));
}

TEST(CronTest, NeverIsInfiniteFuture) {
  EXPECT_EQ(Must("0 0 30 2 *").NextAfter(Utc(2026, 1, 1, 0, 0), absl::UTCTimeZone()),
            absl::InfiniteFuture());
}

TEST(CronTest, DaylightSavingChanges) {
  auto berlin = LoadZone("Europe/Berlin");
  ASSERT_TRUE(berlin.has_value());
  // Spring forward 2027-03-28: 02:00 local jumps to 03:00 (01:00 UTC). 02:30 does not
  // exist: it fires at the jump, once.
  const CronExpr e = Must("30 2 * * *");
  const absl::Time before = Utc(2027, 3, 27, 12, 0);
  const absl::Time jump = Utc(2027, 3, 28, 1, 0);
  EXPECT_EQ(e.NextAfter(before, *berlin), jump);
  EXPECT_EQ(e.NextAfter(jump, *berlin), Utc(2027, 3, 29, 0, 30));  // 02:30 CEST
  // Fall back 2027-10-31: 02:30 local comes twice; it fires once, the first time (CEST).
  const absl::Time first = Utc(2027, 10, 31, 0, 30);
  EXPECT_EQ(e.NextAfter(Utc(2027, 10, 30, 12, 0), *berlin), first);
  EXPECT_EQ(e.NextAfter(first, *berlin), Utc(2027, 11, 1, 1, 30));
  // Every minute in New York near its fall-back: no minute is skipped or fired twice
  // within the hour that repeats, counted in UTC.
  auto ny = LoadZone("America/New_York");
  ASSERT_TRUE(ny.has_value());
  const CronExpr each = Must("* * * * *");
  absl::Time t = Utc(2027, 11, 7, 5, 0);  // 01:00 EDT
  int steps = 0;
  while (t < Utc(2027, 11, 7, 7, 0)) {
    t = each.NextAfter(t, *ny);
    ++steps;
  }
  EXPECT_GE(steps, 60);  // at least the minutes of one local hour ...
  EXPECT_LE(steps, 120);
}

TEST(CronTest, BadExpressionsSayWhy) {
  for (std::string_view bad :
       {"", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * 32 * *",
        "* * * 13 *", "* * * * 8", "*/0 * * * *", "5-1 * * * *", "a * * * *", "* * * FOO *",
        "1,,2 * * * *", "@every", "*/99 * * * *", "-5 * * * *"}) {
    std::string why;
    EXPECT_FALSE(CronExpr::Parse(bad, why).has_value()) << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
  std::string why;
  EXPECT_FALSE(CronExpr::Parse("61 * * * *", why).has_value());
  EXPECT_NE(why.find("minute"), std::string::npos) << why;
}

TEST(CronTest, ZonesByName) {
  EXPECT_TRUE(LoadZone("UTC").has_value());
  EXPECT_TRUE(LoadZone("").has_value());
  EXPECT_TRUE(LoadZone("Asia/Tokyo").has_value());
  EXPECT_FALSE(LoadZone("Mars/Olympus").has_value());
  EXPECT_FALSE(LoadZone("../../etc/passwd").has_value());
}

}  // namespace
}  // namespace conveyor
