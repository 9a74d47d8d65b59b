// TaskReader: the engine's one read seam into storage. A finished task leaves memory once
// its final state is durable (only its id stays, in its queue's indexes); GET, pages, a
// repeated ack and retry read its record back through this, and a lease or GET the payload
// of a queued task past --payload-cache-bytes. RocksStore implements it;
// with `--durability none` there is none and finished tasks stay in memory. Called on the
// owning shard's thread; an implementation must be safe to call from any shard thread.
#pragma once

#include <cstdint>
#include <string>

#include "engine/task.h"

namespace conveyor {

// A task read back from storage: `task.queue` is null; the queue is named.
struct StoredTask {
  Task task;
  std::string queue;
  std::string payload;
  std::string key;  // the task's flow-control key (task.key is null); empty: none
};

class TaskReader {
 public:
  enum class Result { kFound, kNotFound, kError };
  virtual ~TaskReader() = default;
  virtual Result ReadTask(uint64_t id, StoredTask& out) = 0;
  // Only the payload's bytes (of a queued task whose payload is not kept in memory).
  virtual Result ReadPayload(uint64_t id, std::string& out) = 0;
};

}  // namespace conveyor
