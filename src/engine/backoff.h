// Retry backoff: the delay before attempt n+1 after a nack or failure, from the queue's
// BackoffPolicy. Pure function; the caller supplies the random draw so tests are exact.
#pragma once

#include <cstdint>

#include "engine/queue_config.h"

namespace conveyor {

// attempts: how many leases were handed out so far (>= 1 after the first failure).
// unit_random: a draw in [0, 1). With jitter the delay is uniform in [d/2, d], which keeps
// retries of a failed batch from arriving together while never retrying sooner than half.
int64_t BackoffDelayMs(const BackoffPolicy& policy, uint32_t attempts, double unit_random);

}  // namespace conveyor
