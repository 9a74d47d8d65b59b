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

namespace conveyor {

inline constexpr size_t kMaxWorkerNameBytes = 256;
inline constexpr size_t kMaxLeaseTokenBytes = 256;

struct AckCall {
  uint64_t id = 0;
  std::string token;
  std::string result;  // raw JSON, empty when absent
};

struct NackCall {
  std::string token;
  std::string message;
  std::optional<int64_t> retry_in_ms;
  bool dead = false;
};

struct ExtendCall {
  std::string token;
  std::optional<int64_t> lease_ms;
  std::string progress;  // raw JSON, empty when absent
};

Error DecodeLeaseBody(std::string_view body, const Limits& limits, LeaseRequest& out);
Error DecodeAckBody(std::string_view body, const Limits& limits, AckCall& out);
Error DecodeNackBody(std::string_view body, const Limits& limits, NackCall& out);
Error DecodeExtendBody(std::string_view body, const Limits& limits, ExtendCall& out);
Error DecodeBatchAckBody(std::string_view body, const Limits& limits, std::vector<AckCall>& out);

}  // namespace conveyor
