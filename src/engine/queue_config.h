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

// Flow control (docs/API.md "Flow control"), kept with the queue and applied by its
// ReadyIndex when tasks are leased.
// rate_limit: a token bucket of `burst` tokens filling at `per_second`; one token a lease.
// Without per_key it holds back the whole queue; with per_key every key has its own.
struct RateLimit {
  double per_second = 1;
  uint32_t burst = 1;
  bool per_key = false;

  bool operator==(const RateLimit&) const = default;
};

// concurrency: at most `max` tasks leased at once: of the whole queue, or with per_key of
// any one key.
struct ConcurrencyLimit {
  uint32_t max = 1;
  bool per_key = false;

  bool operator==(const ConcurrencyLimit&) const = default;
};

struct QueueConfig {
  uint32_t max_attempts = 25;
  int64_t lease_ms = 30000;
  BackoffPolicy backoff;
  int64_t retention_ms = 86'400'000;
  bool paused = false;
  std::optional<PushConfig> push;  // none: pull only
  std::optional<RateLimit> rate_limit;
  std::optional<ConcurrencyLimit> concurrency;
  bool fair_by_key = false;  // fairness "key": keys take turns (weighted round robin)
  // Weights of keys for fairness (default 1), sorted by key.
  std::vector<std::pair<std::string, uint32_t>> key_weights;
  int64_t aging_ms = 0;  // a ready task gains a priority level per aging_ms waited; 0: off

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
  std::optional<std::optional<RateLimit>> rate_limit;          // nullopt inside: removed
  std::optional<std::optional<ConcurrencyLimit>> concurrency;  // nullopt inside: removed
  std::optional<bool> fair_by_key;
  std::optional<std::vector<std::pair<std::string, uint32_t>>> key_weights;
  std::optional<int64_t> aging_ms;

  void ApplyTo(QueueConfig& config) const;
};

}  // namespace conveyor
