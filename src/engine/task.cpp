#include "engine/task.h"

namespace conveyor {

std::string_view TaskStateName(TaskState state) {
  switch (state) {
    case TaskState::kScheduled:
      return "scheduled";
    case TaskState::kReady:
      return "ready";
    case TaskState::kLeased:
      return "leased";
    case TaskState::kSucceeded:
      return "succeeded";
    case TaskState::kDead:
      return "dead";
    case TaskState::kCanceled:
      return "canceled";
  }
  return "ready";
}

std::optional<TaskState> ParseTaskState(std::string_view name) {
  for (int i = 0; i < kTaskStateCount; ++i) {
    auto state = static_cast<TaskState>(i);
    if (TaskStateName(state) == name) return state;
  }
  return std::nullopt;
}

std::string_view DeadReasonName(DeadReason reason) {
  switch (reason) {
    case DeadReason::kNone:
      return "";
    case DeadReason::kMaxAttempts:
      return "max_attempts";
    case DeadReason::kExpired:
      return "expired";
    case DeadReason::kNack:
      return "nack";
    case DeadReason::kBuried:
      return "buried";
  }
  return "";
}

}  // namespace conveyor
