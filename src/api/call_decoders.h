// Decoders for the bodies of lease, ack, nack, extend and batch ack calls. Each checks
// types and ranges and names the offending field; the engine only sees valid requests.
// Stateless.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "common/limits.h"
#include "engine/engine.h"
#include "engine/task_service.h"

namespace conveyor {

inline constexpr size_t kMaxWorkerNameBytes = 256;
inline constexpr size_t kMaxLeaseTokenBytes = 256;

Error DecodeLeaseBody(std::string_view body, const Limits& limits, LeaseRequest& out);
Error DecodeAckBody(std::string_view body, const Limits& limits, AckCall& out);
Error DecodeNackBody(std::string_view body, const Limits& limits, NackCall& out);
Error DecodeExtendBody(std::string_view body, const Limits& limits, ExtendCall& out);
Error DecodeBatchAckBody(std::string_view body, const Limits& limits, std::vector<AckCall>& out);

}  // namespace conveyor
