// Engine, part 6: schedules (engine/schedule.h). The schedules of this shard, their next
// ticks in one index, claiming a due tick with its catch-up rule, and committing a tick's
// task together with the schedule's next tick. On the shard's thread, like the rest.
#include <algorithm>

#include "common/absl_view.h"
#include "engine/engine.h"
#include "engine/queue_name.h"
#include "engine/saturating.h"

namespace conveyor {
namespace {

// Ticks counted at most this far when the server was down long (catch_up).
constexpr uint32_t kMaxCountedTicks = 100000;

}  // namespace

std::string_view CatchUpName(CatchUp c) {
  switch (c) {
    case CatchUp::kNone:
      return "none";
    case CatchUp::kAll:
      return "all";
    default:
      return "one";
  }
}

std::optional<CatchUp> ParseCatchUp(std::string_view name) {
  if (name == "none") return CatchUp::kNone;
  if (name == "one") return CatchUp::kOne;
  if (name == "all") return CatchUp::kAll;
  return std::nullopt;
}

int64_t Engine::NextTick(const ScheduleState& s, int64_t after) {
  if (s.cron) {
    const absl::Time next = s.cron->NextAfter(absl::FromUnixMillis(after), s.zone);
    return next == absl::InfiniteFuture() ? kNever : absl::ToUnixMillis(next);
  }
  const int64_t every = std::max<int64_t>(1, s.view.spec.every_ms);
  const int64_t origin = s.view.created_at;
  if (after < origin) return origin + every;
  return SaturatingAdd(origin, ((after - origin) / every + 1) * every);
}

void Engine::IndexSchedule(const ScheduleState& s, bool add) {
  if (s.view.spec.paused || s.view.next_at == kNever) return;
  if (add) {
    schedule_due_.insert({s.view.next_at, s.view.name});
  } else {
    schedule_due_.erase({s.view.next_at, s.view.name});
  }
}

Outcome<ScheduleView> Engine::SetSchedule(std::string_view name, ScheduleSpec spec) {
  Tick();
  if (!journal_.writable()) return {StorageDown(), {}};
  auto fail = [](std::string why) {
    return Outcome<ScheduleView>{Error{ErrorCode::kInvalidField, std::move(why)}, {}};
  };
  ScheduleState next;
  if (!spec.cron.empty()) {
    std::string why;
    next.cron = CronExpr::Parse(spec.cron, why);
    if (!next.cron) return fail("cron: " + why);
  } else if (spec.every_ms <= 0) {
    return fail("a schedule needs cron or every_ms");
  }
  auto zone = LoadZone(spec.timezone);
  if (!zone) return fail("timezone: '" + spec.timezone.substr(0, 64) + "' is not a time zone");
  next.zone = *zone;
  const int64_t now = Now();
  auto it = schedules_.find(AbslView(name));
  if (it == schedules_.end() && schedules_.size() >= limits_.max_queues) {
    return {Error{ErrorCode::kTooManyRequests, "too many schedules (--max-queues)"}, {}};
  }
  if (it != schedules_.end()) {
    next.view = it->second.view;  // runs, last tick and creation stay
    const ScheduleSpec& old = it->second.view.spec;
    const bool same_timing =
        old.cron == spec.cron && old.timezone == spec.timezone && old.every_ms == spec.every_ms;
    next.view.spec = std::move(spec);
    if (!same_timing) next.view.next_at = NextTick(next, now);
    IndexSchedule(it->second, false);
  } else {
    next.view.name = std::string(name);
    next.view.created_at = now;
    next.view.spec = std::move(spec);
    next.view.next_at = NextTick(next, now);
  }
  ScheduleState& stored = schedules_[AbslView(name)];
  stored = std::move(next);
  IndexSchedule(stored, true);
  journal_.ScheduleChanged(stored.view);
  return Ok(stored.view);
}

Outcome<ScheduleView> Engine::GetSchedule(std::string_view name) const {
  auto it = schedules_.find(AbslView(name));
  if (it == schedules_.end()) return Fail<ScheduleView>(ErrorCode::kNotFound, "no such schedule");
  return Ok(it->second.view);
}

std::vector<ScheduleView> Engine::Schedules() const {
  std::vector<ScheduleView> all;
  all.reserve(schedules_.size());
  for (const auto& [name, s] : schedules_) all.push_back(s.view);
  return all;
}

Error Engine::DeleteSchedule(std::string_view name) {
  Tick();
  if (!journal_.writable()) return StorageDown();
  auto it = schedules_.find(AbslView(name));
  if (it == schedules_.end()) return Error{ErrorCode::kNotFound, "no such schedule"};
  IndexSchedule(it->second, false);
  schedules_.erase(it);
  journal_.ScheduleRemoved(name);
  return {};
}

Outcome<ScheduleView> Engine::PauseSchedule(std::string_view name, bool paused) {
  Tick();
  if (!journal_.writable()) return {StorageDown(), {}};
  auto it = schedules_.find(AbslView(name));
  if (it == schedules_.end()) return Fail<ScheduleView>(ErrorCode::kNotFound, "no such schedule");
  ScheduleState& s = it->second;
  IndexSchedule(s, false);
  s.view.spec.paused = paused;
  // Resumed: ticks that passed while paused are not run; the next one is after now.
  if (!paused && s.view.next_at != kNever && s.view.next_at <= Now()) {
    s.view.next_at = NextTick(s, Now());
  }
  IndexSchedule(s, true);
  journal_.ScheduleChanged(s.view);
  return Ok(s.view);
}

void Engine::RestoreSchedule(ScheduleView view) {
  ScheduleState s;
  std::string why;
  if (!view.spec.cron.empty()) s.cron = CronExpr::Parse(view.spec.cron, why);
  s.zone = LoadZone(view.spec.timezone).value_or(absl::UTCTimeZone());
  s.view = std::move(view);
  if (!s.view.spec.cron.empty() && !s.cron) s.view.next_at = kNever;  // (checked when stored)
  ScheduleState& stored = schedules_[s.view.name];
  IndexSchedule(stored, false);
  stored = std::move(s);
  IndexSchedule(stored, true);
}

int64_t Engine::NextScheduleDue() const {
  return schedule_due_.empty() ? kNever : schedule_due_.begin()->first;
}

std::optional<std::pair<ScheduleFire, TaskSpec>> Engine::DueSchedule(int64_t started_at) {
  const int64_t now = Now();
  while (!schedule_due_.empty() && schedule_due_.begin()->first <= now) {
    ScheduleState& s = schedules_.find(AbslView(schedule_due_.begin()->second))->second;
    ScheduleFire fire;
    fire.name = s.view.name;
    fire.queue = s.view.spec.queue;
    fire.tick = s.view.next_at;
    fire.claimed_next = s.view.next_at;
    if (fire.tick < started_at && s.view.spec.catch_up != CatchUp::kAll) {
      // Missed while down: count them; `one` runs the latest, `none` runs none.
      uint64_t missed = 1;
      int64_t latest = fire.tick;
      for (int64_t t = NextTick(s, latest); t <= now && missed < kMaxCountedTicks;
           t = NextTick(s, t)) {
        latest = t;
        ++missed;
      }
      if (s.view.spec.catch_up == CatchUp::kNone) {
        IndexSchedule(s, false);
        s.view.skipped += missed;
        s.view.next_at = NextTick(s, now);
        IndexSchedule(s, true);
        journal_.ScheduleChanged(s.view);
        continue;
      }
      fire.tick = latest;
      fire.skipped = missed - 1;
      fire.next_at = NextTick(s, now);
    } else if (fire.tick < started_at) {  // all: each missed one, the latest kMaxCatchUp
      uint64_t missed = 0;
      for (int64_t t = fire.tick; t <= now && missed <= kMaxCatchUp * 2; t = NextTick(s, t)) {
        ++missed;
      }
      while (missed > kMaxCatchUp) {
        fire.tick = NextTick(s, fire.tick);
        ++fire.skipped;
        --missed;
      }
      fire.next_at = NextTick(s, fire.tick);
    } else {
      fire.next_at = NextTick(s, fire.tick);
    }
    const TaskTemplate& t = s.view.spec.task;
    TaskSpec spec;
    spec.payload = t.payload;
    spec.payload_kind = t.payload_kind;
    spec.priority = t.priority;
    spec.max_attempts = t.max_attempts;
    spec.lease_ms = t.lease_ms;
    spec.key = t.key;
    spec.idempotency_key = "schedule:" + fire.name + ":" + std::to_string(fire.tick);
    if (!t.unique_key.empty()) {
      UniqueSpec u;
      u.key = t.unique_key;
      u.ttl_ms = t.unique_ttl_ms;
      u.while_active = t.unique_active;
      spec.unique = std::move(u);
    }
    return std::make_pair(std::move(fire), std::move(spec));
  }
  return std::nullopt;
}

Error Engine::CommitScheduleFire(const ScheduleFire& fire, const std::vector<StagedTask>& staged) {
  auto it = schedules_.find(AbslView(fire.name));
  if (it == schedules_.end() || it->second.view.next_at != fire.claimed_next ||
      it->second.view.spec.paused) {
    return Error{ErrorCode::kInvalidState, "the schedule changed while its tick was made"};
  }
  if (!staged.empty()) {
    if (Error e = JournalStaged(staged); !e.ok()) return e;
  } else if (!journal_.writable()) {
    return StorageDown();
  }
  ScheduleState& s = it->second;
  IndexSchedule(s, false);
  s.view.last_tick = fire.tick;
  s.view.runs += staged.empty() ? 0 : 1;
  s.view.skipped += fire.skipped + (staged.empty() ? 1 : 0);
  s.view.next_at = fire.next_at;
  IndexSchedule(s, true);
  journal_.ScheduleChanged(s.view);
  return {};
}

}  // namespace conveyor
