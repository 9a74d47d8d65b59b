// libFuzzer target: the cron parser on arbitrary bytes, and the next firing of whatever it
// accepts (from a fixed time, in UTC and a zone with daylight saving). No crash, no
// sanitizer report, no endless loop (the search is bounded to five years), and a next
// firing is always later than its start.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "schedule/cron.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string why;
  auto expr = conveyor::CronExpr::Parse(text, why);
  if (!expr) {
    if (why.empty()) std::abort();
    return 0;
  }
  static const absl::TimeZone berlin =
      conveyor::LoadZone("Europe/Berlin").value_or(absl::UTCTimeZone());
  const absl::Time start = absl::FromUnixSeconds(1795000000);
  for (const absl::TimeZone& zone : {absl::UTCTimeZone(), berlin}) {
    const absl::Time next = expr->NextAfter(start, zone);
    if (next <= start) std::abort();
  }
  return 0;
}
