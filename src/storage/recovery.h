// Recovery: rebuilds the engines' in-memory state from the RocksStore — all shards at
// start-up (before the I/O threads run: one thread walks the store and decodes, one thread
// per shard inserts that shard's tasks meanwhile), or one shard after a storage failure
// (on that shard's thread). Also sets the id sequence past every id ever handed out.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/error.h"
#include "engine/shard_set.h"
#include "storage/rocks_store.h"

namespace conveyor {

struct RecoveryStats {
  size_t tasks = 0;
  size_t queues = 0;
  uint64_t next_sequence = 1;
  double seconds = 0;
};

Error RecoverAll(RocksStore& store, ShardSet& shards, RecoveryStats& stats);
Error RecoverShard(RocksStore& store, ShardSet& shards, size_t index);

}  // namespace conveyor
