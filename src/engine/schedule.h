// Schedule: a named recurring enqueue (docs/API.md "Schedules"): a cron expression in a
// time zone, or a period (every_ms), a queue and a task template. Each one lives in the
// Engine of the shard its name maps to (like a topic) and is touched only on that thread;
// ScheduleView is the plain copy handed out. The task of a tick is committed in the same
// storage batch as the schedule's next tick, so each tick enqueues exactly once, across
// crashes too (LocalTaskService::FireSchedule).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "engine/task.h"
#include "schedule/cron.h"

namespace conveyor {

// What happens to ticks missed while the server was down: none are run, the latest one
// runs once, or each runs (at most kMaxCatchUp of them, the latest ones).
enum class CatchUp : uint8_t { kNone, kOne, kAll };
inline constexpr uint32_t kMaxCatchUp = 1000;

std::string_view CatchUpName(CatchUp c);
std::optional<CatchUp> ParseCatchUp(std::string_view name);

// The task each tick enqueues (a subset of a task spec: no times, no idempotency key —
// each tick's task gets "schedule:<name>:<tick epoch ms>").
struct TaskTemplate {
  std::string payload = "null";
  PayloadKind payload_kind = PayloadKind::kJson;
  int32_t priority = 0;
  std::optional<uint32_t> max_attempts;
  int64_t lease_ms = 0;
  std::string key;
  // Unique work for the tick's task (e.g. skip a tick while the last one still runs).
  std::string unique_key;
  int64_t unique_ttl_ms = 0;
  bool unique_active = false;

  bool operator==(const TaskTemplate&) const = default;
};

struct ScheduleSpec {
  std::string queue;
  std::string cron;      // empty: every_ms
  std::string timezone;  // IANA name; empty: UTC
  int64_t every_ms = 0;
  CatchUp catch_up = CatchUp::kOne;
  bool paused = false;
  TaskTemplate task;

  bool operator==(const ScheduleSpec&) const = default;
};

// The stored and shown state of a schedule.
struct ScheduleView {
  std::string name;
  ScheduleSpec spec;
  int64_t created_at = 0;
  int64_t next_at = kNever;  // epoch ms of the next tick; kNever: none to come
  int64_t last_tick = 0;     // epoch ms of the last tick enqueued; 0: none yet
  uint64_t runs = 0;         // ticks enqueued
  uint64_t skipped = 0;      // ticks missed and not run (catch_up)
};

// A tick due now, for LocalTaskService::FireSchedule: its task, and the schedule's next
// tick once this one is committed.
struct ScheduleFire {
  std::string name;
  std::string queue;
  int64_t tick = 0;
  int64_t claimed_next = 0;  // the schedule's next_at when claimed (changed since: void)
  int64_t next_at = kNever;
  uint64_t skipped = 0;  // ticks passed over to get here (catch_up)
};

}  // namespace conveyor
