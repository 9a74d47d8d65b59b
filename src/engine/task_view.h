// What the engine answers, as plain data: a copy of a task (TaskView), a lease grant, a
// page of tasks, an id with its state. No protocol and no JSON here: the HTTP API (and
// later the beanstalkd front end) encode these. Made on the shard's thread, then owned by
// whoever holds them (they cross threads by move).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "engine/task.h"

namespace conveyor {

struct TaskView {
  uint64_t id = 0;
  std::string queue;
  PayloadKind payload_kind = PayloadKind::kJson;
  std::string payload;  // the bytes as stored: JSON text, or opaque bytes
  int32_t priority = 0;
  TaskState state = TaskState::kReady;
  DeadReason dead_reason = DeadReason::kNone;
  uint32_t attempts = 0;
  uint32_t max_attempts = 0;
  int64_t created_at = 0;
  int64_t run_at = 0;
  int64_t deadline = kNever;
  int64_t lease_ms = 0;  // the task's own lease time; 0: the queue's
  std::string result;    // as given with the ack (JSON text from HTTP); empty: none
  std::string progress;  // as given with an extend; empty: none
  std::vector<TaskError> errors;
  std::string idempotency_key;
  std::string key;         // flow control's key; empty: none
  std::string unique_key;  // unique work; empty: none
  int64_t unique_until = kNever;
  bool unique_active = false;
  uint32_t releases = 0;  // job commands on the task (beanstalkd's stats-job)
  uint32_t buries = 0;
  uint32_t kicks = 0;
  // While leased. The token only in the answer to the lease that granted it.
  int64_t lease_expires_at = 0;
  std::string lease_worker;
  std::string lease_token;
};

TaskView ViewOf(const Task& task, bool with_token);
TaskView ViewOf(const Task& task, std::string_view queue, bool with_token);
struct StoredTask;
TaskView ViewOf(const StoredTask& stored);  // without token

struct IdState {
  uint64_t id = 0;
  TaskState state = TaskState::kReady;
};

struct TaskPage {
  std::vector<TaskView> tasks;
  std::optional<uint64_t> next_after;  // more tasks follow this id
  bool truncated = false;              // cut at --max-response-bytes, before the limit
};

// An error, or the value of success.
template <typename T>
struct Outcome {
  Error error;
  T value{};
};

template <typename T>
Outcome<T> Ok(T value) {
  Outcome<T> out;
  out.value = std::move(value);
  return out;
}

}  // namespace conveyor
