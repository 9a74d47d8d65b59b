// Decodes the flow-control settings of a queue config (PUT /v1/queues/{q}): rate_limit,
// concurrency, fairness, key_weights, aging_ms (docs/API.md "Flow control"). Used by
// queue_config_decoder.cpp; stateless.
#pragma once

#include "api/request_fields.h"
#include "common/error.h"
#include "engine/queue_config.h"

namespace conveyor {

inline constexpr size_t kMaxKeyWeights = 1000;

Error DecodeFlowConfig(const FieldReader& f, QueueConfigPatch& out);

}  // namespace conveyor
