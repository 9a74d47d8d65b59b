#include "storage/schedule_codec.h"

#include <cstdint>

#include "storage/binary_codec.h"

namespace conveyor {

std::string ScheduleKey(std::string_view name) {
  std::string key(kScheduleKeyPrefix);
  key.append(name);
  return key;
}

void EncodeSchedule(const ScheduleView& s, std::string& out) {
  BinaryWriter w(out);
  w.Byte(kScheduleRecordVersion);
  w.Bytes(s.name);
  w.Bytes(s.spec.queue);
  w.Bytes(s.spec.cron);
  w.Bytes(s.spec.timezone);
  w.Signed(s.spec.every_ms);
  w.Byte(static_cast<uint8_t>(s.spec.catch_up));
  w.Byte(s.spec.paused ? 1 : 0);
  const TaskTemplate& t = s.spec.task;
  w.Bytes(t.payload);
  w.Byte(static_cast<uint8_t>(t.payload_kind));
  w.Signed(t.priority);
  w.Signed(t.max_attempts ? static_cast<int64_t>(*t.max_attempts) : -1);
  w.Signed(t.lease_ms);
  w.Bytes(t.key);
  w.Bytes(t.unique_key);
  w.Signed(t.unique_ttl_ms);
  w.Byte(t.unique_active ? 1 : 0);
  w.Signed(s.created_at);
  w.Signed(s.next_at);
  w.Signed(s.last_tick);
  w.Varint(s.runs);
  w.Varint(s.skipped);
}

bool DecodeSchedule(std::string_view in, ScheduleView& s) {
  BinaryReader r(in);
  uint8_t version, catch_up, paused, kind, active;
  int64_t priority, max_attempts;
  TaskTemplate& t = s.spec.task;
  if (!r.Byte(version) || version != kScheduleRecordVersion || !r.Bytes(s.name) ||
      !r.Bytes(s.spec.queue) || !r.Bytes(s.spec.cron) || !r.Bytes(s.spec.timezone) ||
      !r.Signed(s.spec.every_ms) || !r.Byte(catch_up) || !r.Byte(paused) || !r.Bytes(t.payload) ||
      !r.Byte(kind) || !r.Signed(priority) || !r.Signed(max_attempts) || !r.Signed(t.lease_ms) ||
      !r.Bytes(t.key) || !r.Bytes(t.unique_key) || !r.Signed(t.unique_ttl_ms) || !r.Byte(active) ||
      !r.Signed(s.created_at) || !r.Signed(s.next_at) || !r.Signed(s.last_tick) ||
      !r.Varint(s.runs) || !r.Varint(s.skipped) || !r.done()) {
    return false;
  }
  if (catch_up > static_cast<uint8_t>(CatchUp::kAll) ||
      kind > static_cast<uint8_t>(PayloadKind::kBytes) || priority < INT32_MIN ||
      priority > INT32_MAX || max_attempts > UINT32_MAX) {
    return false;
  }
  s.spec.catch_up = static_cast<CatchUp>(catch_up);
  s.spec.paused = paused != 0;
  t.payload_kind = static_cast<PayloadKind>(kind);
  t.priority = static_cast<int32_t>(priority);
  if (max_attempts >= 0) {
    t.max_attempts = static_cast<uint32_t>(max_attempts);
  } else {
    t.max_attempts.reset();
  }
  t.unique_active = active != 0;
  return true;
}

}  // namespace conveyor
