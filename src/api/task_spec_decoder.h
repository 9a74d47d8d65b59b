// Decodes enqueue bodies — a task spec, a batch {"tasks":[...]}, or the classic
// {"task": ...} of POST /add_task — into engine TaskSpecs, checking every field's type and
// range first so a batch is refused whole before anything is stored. Stateless.
#pragma once

#include <string_view>
#include <vector>

#include "common/error.h"
#include "common/limits.h"
#include "engine/engine.h"

namespace conveyor {

// Largest delay or time a client may give: year 9999 in epoch ms.
inline constexpr int64_t kMaxEpochMs = 253'402'300'799'999;
inline constexpr int64_t kMaxDelayMs = 10LL * 365 * 24 * 3600 * 1000;  // ten years
inline constexpr size_t kMaxIdempotencyKeyBytes = 1024;
inline constexpr size_t kMaxFlowKeyBytes = 128;  // a task's flow-control key

struct EnqueueBody {
  std::vector<TaskSpec> specs;
  bool is_batch = false;
};

Error DecodeEnqueueBody(std::string_view body, const Limits& limits, EnqueueBody& out);
Error DecodeAddTaskBody(std::string_view body, const Limits& limits, TaskSpec& out);

}  // namespace conveyor
