#include "engine/queue_config.h"

namespace conveyor {

void QueueConfigPatch::ApplyTo(QueueConfig& config) const {
  if (max_attempts) config.max_attempts = *max_attempts;
  if (lease_ms) config.lease_ms = *lease_ms;
  if (backoff_base_ms) config.backoff.base_ms = *backoff_base_ms;
  if (backoff_factor) config.backoff.factor = *backoff_factor;
  if (backoff_max_ms) config.backoff.max_ms = *backoff_max_ms;
  if (backoff_jitter) config.backoff.jitter = *backoff_jitter;
  if (retention_ms) config.retention_ms = *retention_ms;
  if (paused) config.paused = *paused;
  if (push) config.push = *push;
  if (rate_limit) config.rate_limit = *rate_limit;
  if (concurrency) config.concurrency = *concurrency;
  if (fair_by_key) config.fair_by_key = *fair_by_key;
  if (key_weights) config.key_weights = *key_weights;
  if (aging_ms) config.aging_ms = *aging_ms;
}

}  // namespace conveyor
