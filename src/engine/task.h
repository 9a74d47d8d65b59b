// Task: one unit of work and everything the engine knows about it. Tasks live in the
// Engine of the shard that owns their queue and are touched only from that shard's thread.
// The payload is stored as bytes with a kind; result and progress are what the client gave.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace conveyor {

enum class TaskState : uint8_t { kScheduled, kReady, kLeased, kSucceeded, kDead, kCanceled };
inline constexpr int kTaskStateCount = 6;

enum class DeadReason : uint8_t { kNone, kMaxAttempts, kExpired, kNack, kBuried };

// What a payload's bytes are: JSON text (HTTP sends it, and gets it back as sent), or
// opaque bytes (a beanstalkd job body: anything, \r\n and NUL included).
enum class PayloadKind : uint8_t { kJson = 0, kBytes = 1 };

std::string_view TaskStateName(TaskState state);
std::optional<TaskState> ParseTaskState(std::string_view name);
std::string_view DeadReasonName(DeadReason reason);
inline bool IsFinished(TaskState s) {
  return s == TaskState::kSucceeded || s == TaskState::kDead || s == TaskState::kCanceled;
}

inline constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

struct TaskError {
  int64_t at = 0;
  uint32_t attempt = 0;
  std::string message;
};

class Queue;

// What most queued tasks never have: allocated on the first write of any of it, so that
// a plain queued task pays one pointer for all of it.
struct TaskCold {
  std::string result;    // as given with the ack; empty = none
  std::string progress;  // as given with an extend; empty = none
  std::vector<TaskError> errors;
  std::string idempotency_key;
  std::string lease_worker;
};

enum StoredDelta : uint8_t { kStateDeltaStored = 1, kResultStored = 2, kProgressStored = 4 };

// Hot fields inline (what ordering, leasing and timers read); cold ones behind `cold_`.
struct Task {
  uint64_t id = 0;
  Queue* queue = nullptr;  // owned by the same Engine; outlives its tasks
  std::string payload;     // bytes of payload_kind
  PayloadKind payload_kind = PayloadKind::kJson;
  TaskState state = TaskState::kReady;
  DeadReason dead_reason = DeadReason::kNone;
  bool published = false;  // its creation is durable: indexed, visible (Engine)
  // Which delta records storage holds for it (bits of StoredDelta); kept by the journal on
  // the shard's thread, so that a full write or a removal deletes only those.
  mutable uint8_t stored_deltas = 0;
  int32_t priority = 0;
  uint32_t attempts = 0;
  uint32_t max_attempts = 25;
  int32_t lease_ms = 0;  // 0: use the queue's (at most 24 h)
  int64_t created_at = 0;
  int64_t run_at = 0;
  int64_t ready_at = 0;       // when it last became ready: the second key of the order
  int64_t deadline = kNever;  // not leased by then -> dead (expired)
  int64_t finished_at = 0;
  // Current (or, once acked, last) lease. The token survives the ack so that a repeated
  // ack with the same token is recognised as harmless.
  std::string lease_token;
  int64_t lease_expires_at = 0;
  // The single pending timer entry of this task in the engine's timer index.
  int64_t timer_due = kNever;

  const std::string& result() const { return cold_ ? cold_->result : Empty(); }
  const std::string& progress() const { return cold_ ? cold_->progress : Empty(); }
  const std::vector<TaskError>& errors() const { return cold_ ? cold_->errors : NoErrors(); }
  const std::string& idempotency_key() const { return cold_ ? cold_->idempotency_key : Empty(); }
  const std::string& lease_worker() const { return cold_ ? cold_->lease_worker : Empty(); }
  // For writes: the cold part, made on first use.
  TaskCold& cold() {
    if (!cold_) cold_ = std::make_unique<TaskCold>();
    return *cold_;
  }

 private:
  static const std::string& Empty() { return kEmpty; }
  static const std::vector<TaskError>& NoErrors() { return kNoErrors; }
  static inline const std::string kEmpty{};
  static inline const std::vector<TaskError> kNoErrors{};
  std::unique_ptr<TaskCold> cold_;
};

}  // namespace conveyor
