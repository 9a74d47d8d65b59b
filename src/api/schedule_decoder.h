// Decodes the body of PUT /v1/schedules/{name} (docs/API.md "Schedules") into a
// ScheduleSpec: queue, cron or every_ms, timezone, catch_up, paused and the task template.
// Unknown fields are refused. Stateless.
#pragma once

#include <string_view>

#include "common/error.h"
#include "common/limits.h"
#include "engine/schedule.h"

namespace conveyor {

inline constexpr int64_t kMinEveryMs = 100;

Error DecodeScheduleBody(std::string_view body, const Limits& limits, ScheduleSpec& out);

}  // namespace conveyor
