// Decodes the partial queue config of PUT /v1/queues/{q}. Unknown fields are refused
// (a typo in a config must not pass silently). Stateless.
#pragma once

#include <string_view>

#include "common/error.h"
#include "common/limits.h"
#include "engine/queue_config.h"

namespace conveyor {

Error DecodeQueueConfigPatch(std::string_view body, const Limits& limits, QueueConfigPatch& out);

}  // namespace conveyor
