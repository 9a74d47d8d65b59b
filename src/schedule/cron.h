// CronExpr: a five-field cron expression (minute hour day-of-month month day-of-week, as
// crontab(5) has them) and the next time it fires in a time zone. Debian has no C or C++
// cron library, so this is our own; time zones are Abseil's (cctz, reading the system's
// tzdata). Used by the engine's schedules (on a shard's thread) and the API (to check a
// schedule); a CronExpr is immutable after Parse, so any thread may read it.
//
// Syntax per field: `*`, `N`, `N-M`, `*/S`, `N-M/S`, `N/S` (N to the end), comma lists of
// these; months JAN-DEC and weekdays SUN-SAT by name (any case); weekday 7 is Sunday too.
// Macros: @yearly (@annually), @monthly, @weekly, @daily (@midnight), @hourly. When both
// day fields are restricted a day matches either (crontab's rule). Time-zone changes: a
// local time that does not exist (spring forward) fires at the instant the clock jumps
// over it; a local time that comes twice (fall back) fires once, the first time.
#pragma once

#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/time/time.h"

namespace conveyor {

class CronExpr {
 public:
  // The expression, or nullopt with `why` saying what is wrong (field and value).
  static std::optional<CronExpr> Parse(std::string_view text, std::string& why);

  // The first firing strictly after `after`, or absl::InfiniteFuture() when there is none
  // within the next five years (e.g. February 30th).
  absl::Time NextAfter(absl::Time after, const absl::TimeZone& zone) const;

 private:
  bool DayMatches(int day_of_month, int weekday) const;

  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;     // 1..31
  std::bitset<13> months_;   // 1..12
  std::bitset<7> weekdays_;  // 0 = Sunday
  bool days_restricted_ = false;
  bool weekdays_restricted_ = false;
};

// A time zone by IANA name ("UTC", "Europe/Berlin"); nullopt when the system has no such
// zone (an empty name is UTC).
std::optional<absl::TimeZone> LoadZone(std::string_view name);

}  // namespace conveyor
