// The on-disk form of a schedule (meta family, key ScheduleKey(name)): its spec, task
// template and tick state, with a leading version byte. Pure functions; any thread.
#pragma once

#include <string>
#include <string_view>

#include "engine/schedule.h"

namespace conveyor {

inline constexpr std::string_view kScheduleKeyPrefix = "schedule/";
inline constexpr uint8_t kScheduleRecordVersion = 1;

std::string ScheduleKey(std::string_view name);
void EncodeSchedule(const ScheduleView& schedule, std::string& out);
bool DecodeSchedule(std::string_view in, ScheduleView& out);

}  // namespace conveyor
