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
}

}  // namespace conveyor
