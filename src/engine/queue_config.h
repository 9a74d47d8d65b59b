// QueueConfig: a queue's settings (SPEC.md "Queue config") and the partial update a
// PUT carries. Owned by the Queue, on its shard's thread; copied out for answers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace conveyor {

struct BackoffPolicy {
  int64_t base_ms = 1000;
  double factor = 2.0;
  int64_t max_ms = 3'600'000;
  bool jitter = true;

  bool operator==(const BackoffPolicy&) const = default;
};

// Push delivery (docs/PUSH.md): the server POSTs each ready task of the queue to `url`.
// The engine only keeps it with the queue; the push dispatcher (src/push/) acts on it.
struct PushConfig {
  std::string url;             // http:// or https://, checked by the API
  uint32_t concurrency = 10;   // deliveries in flight at once
  int64_t timeout_ms = 30000;  // one delivery, connection included
  std::vector<std::pair<std::string, std::string>> headers;  // sent with every delivery
  std::string secret;                   // signs deliveries (Standard Webhooks); empty: none
  bool dead_on_4xx = false;             // a 4xx other than 408/429: dead at once
  uint32_t breaker_failures = 5;        // consecutive failures that open the breaker; 0: never
  int64_t breaker_cooldown_ms = 30000;  // an open breaker's wait before its one probe

  bool operator==(const PushConfig&) const = default;
};

struct QueueConfig {
  uint32_t max_attempts = 25;
  int64_t lease_ms = 30000;
  BackoffPolicy backoff;
  int64_t retention_ms = 86'400'000;
  bool paused = false;
  std::optional<PushConfig> push;  // none: pull only

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
  // Set: the push config is replaced as a whole (nullopt inside: push removed).
  std::optional<std::optional<PushConfig>> push;

  void ApplyTo(QueueConfig& config) const;
};

}  // namespace conveyor
