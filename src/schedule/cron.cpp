#include "schedule/cron.h"

#include <array>
#include <cctype>
#include <vector>

#include "absl/time/civil_time.h"

namespace conveyor {
namespace {

struct FieldRule {
  const char* name;
  int min;
  int max;
  const char* const* names;  // names for min.. (null: numbers only)
};

constexpr const char* kMonthNames[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                       "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr const char* kDayNames[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

constexpr std::array<FieldRule, 5> kFields = {{
    {"minute", 0, 59, nullptr},
    {"hour", 0, 23, nullptr},
    {"day of month", 1, 31, nullptr},
    {"month", 1, 12, kMonthNames},
    {"day of week", 0, 7, kDayNames},  // 7 is Sunday too
}};

std::vector<std::string_view> Split(std::string_view text, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    const size_t at = text.find(sep, start);
    out.push_back(text.substr(start, at == std::string_view::npos ? at : at - start));
    if (at == std::string_view::npos) return out;
    start = at + 1;
  }
}

// A number or (for months and weekdays) a name; -1 when neither.
int ValueOf(std::string_view token, const FieldRule& rule) {
  if (token.empty() || token.size() > 4) return -1;
  if (std::isdigit(static_cast<unsigned char>(token[0]))) {
    int v = 0;
    for (char c : token) {
      if (!std::isdigit(static_cast<unsigned char>(c))) return -1;
      v = v * 10 + (c - '0');
    }
    return v;
  }
  if (rule.names == nullptr || token.size() != 3) return -1;
  const int count = rule.max - rule.min + 1 - (rule.max == 7 ? 1 : 0);
  for (int i = 0; i < count; ++i) {
    bool same = true;
    for (int c = 0; c < 3; ++c) {
      same = same && std::toupper(static_cast<unsigned char>(token[c])) == rule.names[i][c];
    }
    if (same) return rule.min + i;
  }
  return -1;
}

// One field into `bits` (bit v for value v); false with `why`.
bool ParseField(std::string_view text, const FieldRule& rule, std::vector<bool>& bits,
                bool& restricted, std::string& why) {
  bits.assign(static_cast<size_t>(rule.max) + 1, false);
  restricted = text != "*" && text != "?";
  auto fail = [&](std::string_view what) {
    why = std::string(rule.name) + " field '" + std::string(text.substr(0, 32)) +
          "': " + std::string(what);
    return false;
  };
  for (std::string_view item : Split(text, ',')) {
    if (item.empty()) return fail("an empty list item");
    int step = 1;
    if (size_t slash = item.find('/'); slash != std::string_view::npos) {
      std::string_view s = item.substr(slash + 1);
      step = ValueOf(s, FieldRule{rule.name, 0, 0, nullptr});
      if (step < 1 || step > rule.max)
        return fail("the step must be from 1 to " + std::to_string(rule.max));
      item = item.substr(0, slash);
    }
    int lo = rule.min, hi = rule.max;
    if (item == "*" || item == "?") {
      if (rule.max == 7) hi = 6;  // * is every weekday once
    } else if (size_t dash = item.find('-'); dash != std::string_view::npos) {
      lo = ValueOf(item.substr(0, dash), rule);
      hi = ValueOf(item.substr(dash + 1), rule);
      if (lo < 0 || hi < 0) return fail("not a number or name");
      if (lo > hi) return fail("a range must go upwards");
    } else {
      lo = ValueOf(item, rule);
      if (lo < 0) return fail("not a number or name");
      if (step == 1) hi = lo;  // N alone; N/S runs to the end
    }
    if (lo < rule.min || hi > rule.max) {
      return fail("values go from " + std::to_string(rule.min) + " to " + std::to_string(rule.max));
    }
    for (int v = lo; v <= hi; v += step) bits[static_cast<size_t>(v)] = true;
  }
  return true;
}

std::string_view Expand(std::string_view text) {
  if (text == "@yearly" || text == "@annually") return "0 0 1 1 *";
  if (text == "@monthly") return "0 0 1 * *";
  if (text == "@weekly") return "0 0 * * 0";
  if (text == "@daily" || text == "@midnight") return "0 0 * * *";
  if (text == "@hourly") return "0 * * * *";
  return text;
}

}  // namespace

std::optional<CronExpr> CronExpr::Parse(std::string_view text, std::string& why) {
  if (text.size() > 256) {
    why = "a cron expression is at most 256 characters";
    return std::nullopt;
  }
  text = Expand(text);
  std::vector<std::string_view> fields;
  for (std::string_view part : Split(text, ' ')) {
    if (!part.empty()) fields.push_back(part);
  }
  if (fields.size() != 5) {
    why =
        "a cron expression has 5 fields (minute hour day-of-month month day-of-week), or is "
        "one of @yearly @monthly @weekly @daily @hourly; this one has " +
        std::to_string(fields.size());
    return std::nullopt;
  }
  CronExpr e;
  std::vector<bool> bits;
  bool restricted = false;
  for (size_t f = 0; f < 5; ++f) {
    if (!ParseField(fields[f], kFields[f], bits, restricted, why)) return std::nullopt;
    for (size_t v = 0; v < bits.size(); ++v) {
      if (!bits[v]) continue;
      switch (f) {
        case 0:
          e.minutes_.set(v);
          break;
        case 1:
          e.hours_.set(v);
          break;
        case 2:
          e.days_.set(v);
          break;
        case 3:
          e.months_.set(v);
          break;
        default:
          e.weekdays_.set(v % 7);
          break;
      }
    }
    if (f == 2) e.days_restricted_ = restricted;
    if (f == 4) e.weekdays_restricted_ = restricted;
  }
  return e;
}

bool CronExpr::DayMatches(int day_of_month, int weekday) const {
  const bool dom = days_.test(static_cast<size_t>(day_of_month));
  const bool dow = weekdays_.test(static_cast<size_t>(weekday));
  if (days_restricted_ && weekdays_restricted_) return dom || dow;
  return dom && dow;
}

absl::Time CronExpr::NextAfter(absl::Time after, const absl::TimeZone& zone) const {
  absl::CivilMinute m = absl::ToCivilMinute(after, zone) + 1;
  const absl::CivilYear last = absl::CivilYear(m) + 5;
  while (absl::CivilYear(m) <= last) {
    if (!months_.test(static_cast<size_t>(m.month()))) {
      m = absl::CivilMinute(absl::CivilMonth(m) + 1);
      continue;
    }
    const int weekday = static_cast<int>(absl::GetWeekday(absl::CivilDay(m)));  // Monday = 0
    if (!DayMatches(m.day(), (weekday + 1) % 7)) {
      m = absl::CivilMinute(absl::CivilDay(m) + 1);
      continue;
    }
    if (!hours_.test(static_cast<size_t>(m.hour()))) {
      m = absl::CivilMinute(absl::CivilHour(m) + 1);
      continue;
    }
    if (!minutes_.test(static_cast<size_t>(m.minute()))) {
      m += 1;
      continue;
    }
    // A local time that is skipped maps past the jump (pre-transition offset); one that
    // comes twice maps to its first instant.
    const absl::TimeZone::TimeInfo info = zone.At(m);
    const absl::Time at = info.kind == absl::TimeZone::TimeInfo::SKIPPED ? info.trans : info.pre;
    if (at > after) return at;
    m += 1;
  }
  return absl::InfiniteFuture();
}

std::optional<absl::TimeZone> LoadZone(std::string_view name) {
  if (name.empty() || name == "UTC") return absl::UTCTimeZone();
  if (name.size() > 64 || name.find("..") != std::string_view::npos) return std::nullopt;
  absl::TimeZone zone;
  if (!absl::LoadTimeZone(std::string(name), &zone)) return std::nullopt;
  return zone;
}

}  // namespace conveyor
