// The JSON form of a task as SPEC.md lists it ("A task as returned"). Called on the owning
// shard's thread, where the task lives; the payload, result and progress are spliced raw.
#pragma once

#include <string>

#include "engine/task.h"

namespace conveyor {

// with_token: only the lease answer carries the token; GET never does.
void AppendTaskJson(std::string& out, const Task& task, bool with_token);

}  // namespace conveyor
