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
struct KeyState;

// What most queued tasks never have: allocated on the first write of any of it (a lease,
// an ack, an error, a deadline), so that a plain queued task pays one pointer for all of it.
struct TaskCold {
  std::string result;    // as given with the ack; empty = none
  std::string progress;  // as given with an extend; empty = none
  std::vector<TaskError> errors;
  std::string idempotency_key;
  // Current (or, once acked, last) lease. The token survives the ack so that a repeated
  // ack with the same token is recognised as harmless.
  std::string lease_worker;
  std::string lease_token;
  int64_t lease_expires_at = 0;
  int64_t finished_at = 0;
  int64_t deadline = kNever;  // not leased by then -> dead (expired)
  int32_t lease_ms = 0;       // 0: use the queue's (at most 24 h)
  // How often the task was released, buried and kicked (the job commands; beanstalkd's
  // stats-job counts them).
  uint32_t releases = 0;
  uint32_t buries = 0;
  uint32_t kicks = 0;
  // Unique work: the key this task holds while queued (or active), until unique_until.
  std::string unique_key;
  int64_t unique_until = kNever;
  bool unique_active = false;  // while "active": leased tasks hold it too
};

enum StoredDelta : uint8_t { kStateDeltaStored = 1, kResultStored = 2, kProgressStored = 4 };

// True only on a task made by NewTask with its payload in the same allocation; a Task
// moved or copied by value (a record read back from storage) never claims those bytes.
class InlinePayloadMark {
 public:
  InlinePayloadMark() = default;
  InlinePayloadMark(const InlinePayloadMark&) noexcept {}
  InlinePayloadMark& operator=(const InlinePayloadMark&) noexcept {
    on_ = false;
    return *this;
  }
  explicit operator bool() const { return on_; }

 private:
  friend struct TaskAllocation;
  bool on_ = false;
};

// Hot fields inline (what ordering, leasing and timers read of a queued task), cold ones
// behind `cold_`, and the payload's bytes right after the struct in the same allocation
// (NewTask) or, past --payload-cache-bytes, only in storage. 88 bytes plus the payload.
struct Task {
  uint64_t id = 0;
  Queue* queue = nullptr;  // owned by the same Engine; outlives its tasks
  // The task's key (flow control), interned by its queue's ReadyIndex and held until the
  // task is deleted; null: no key.
  KeyState* key = nullptr;
  int64_t created_at = 0;
  int64_t run_at = 0;
  int64_t ready_at = 0;  // when it last became ready: the second key of the order
  // The single pending timer entry of this task in the engine's timer index (monotonic).
  int64_t timer_due = kNever;
  int32_t priority = 0;
  uint32_t attempts = 0;
  uint32_t max_attempts = 25;
  uint32_t payload_size = 0;  // whether or not its bytes are in memory
  PayloadKind payload_kind = PayloadKind::kJson;
  TaskState state = TaskState::kReady;
  DeadReason dead_reason = DeadReason::kNone;
  bool published = false;  // its creation is durable: indexed, visible (Engine)
  // Scheduled by a nack that paused its key until run_at: a restart pauses the key again.
  bool pauses_key = false;
  // Which delta records storage holds for it (bits of StoredDelta); kept by the journal on
  // the shard's thread, so that a full write or a removal deletes only those.
  mutable uint8_t stored_deltas = 0;
  InlinePayloadMark payload_inline;

  // The payload's bytes when they are in memory (payload_inline), else empty: the Engine
  // reads them back from storage then.
  std::string_view payload() const {
    if (!payload_inline) return {};
    return {reinterpret_cast<const char*>(this + 1), payload_size};
  }

  const std::string& result() const { return cold_ ? cold_->result : Empty(); }
  const std::string& progress() const { return cold_ ? cold_->progress : Empty(); }
  const std::vector<TaskError>& errors() const { return cold_ ? cold_->errors : NoErrors(); }
  const std::string& idempotency_key() const { return cold_ ? cold_->idempotency_key : Empty(); }
  const std::string& lease_worker() const { return cold_ ? cold_->lease_worker : Empty(); }
  const std::string& lease_token() const { return cold_ ? cold_->lease_token : Empty(); }
  int64_t lease_expires_at() const { return cold_ ? cold_->lease_expires_at : 0; }
  int64_t finished_at() const { return cold_ ? cold_->finished_at : 0; }
  int64_t deadline() const { return cold_ ? cold_->deadline : kNever; }
  int32_t lease_ms() const { return cold_ ? cold_->lease_ms : 0; }
  uint32_t releases() const { return cold_ ? cold_->releases : 0; }
  uint32_t buries() const { return cold_ ? cold_->buries : 0; }
  uint32_t kicks() const { return cold_ ? cold_->kicks : 0; }
  const std::string& unique_key() const { return cold_ ? cold_->unique_key : Empty(); }
  int64_t unique_until() const { return cold_ ? cold_->unique_until : kNever; }
  bool unique_active() const { return cold_ ? cold_->unique_active : false; }
  // Whether this task holds its unique key at `now` (epoch ms).
  bool HoldsUnique(int64_t now) const {
    if (!cold_ || cold_->unique_key.empty() || now >= cold_->unique_until) return false;
    return state == TaskState::kScheduled || state == TaskState::kReady ||
           (cold_->unique_active && state == TaskState::kLeased);
  }
  // Setters that leave a default value unallocated.
  void set_deadline(int64_t v) {
    if (cold_ || v != kNever) cold().deadline = v;
  }
  void set_lease_ms(int32_t v) {
    if (cold_ || v != 0) cold().lease_ms = v;
  }
  void set_finished_at(int64_t v) {
    if (cold_ || v != 0) cold().finished_at = v;
  }
  void set_lease_expires_at(int64_t v) {
    if (cold_ || v != 0) cold().lease_expires_at = v;
  }
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

struct TaskDeleter {
  void operator()(Task* task) const;
};
using TaskPtr = std::unique_ptr<Task, TaskDeleter>;

// The Engine's tasks: `fields` moved into one allocation that also holds `payload`'s
// bytes, or (`payload` null: kept only in storage) none of them. payload_size is set from
// `payload` when given, else kept as it is.
TaskPtr NewTask(Task&& fields, const std::string_view* payload);

}  // namespace conveyor
