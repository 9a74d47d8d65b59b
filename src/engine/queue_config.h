// QueueConfig: a queue's settings (SPEC.md "Queue config") and the partial update a
// PUT carries. Owned by the Queue, on its shard's thread; copied out for answers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace conveyor {

struct BackoffPolicy {
  int64_t base_ms = 1000;
  double factor = 2.0;
  int64_t max_ms = 3'600'000;
  bool jitter = true;

  bool operator==(const BackoffPolicy&) const = default;
};

struct QueueConfig {
  uint32_t max_attempts = 25;
  int64_t lease_ms = 30000;
  BackoffPolicy backoff;
  int64_t retention_ms = 86'400'000;
  bool paused = false;

  bool operator==(const QueueConfig&) const = default;
};

// Fields present in a PUT body; absent ones keep their value.
struct QueueConfigPatch {
  std::optional<uint32_t> max_attempts;
  std::optional<int64_t> lease_ms;
  std::optional<int64_t> backoff_base_ms;
  std::optional<double> backoff_factor;
  std::optional<int64_t> backoff_max_ms;
  std::optional<bool> backoff_jitter;
  std::optional<int64_t> retention_ms;
  std::optional<bool> paused;

  void ApplyTo(QueueConfig& config) const;
};

}  // namespace conveyor
