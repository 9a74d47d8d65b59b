#include "storage/recovery.h"

#include <chrono>

#include "common/task_id.h"

namespace conveyor {
namespace {

LoadFilter ShardFilter(size_t index, size_t count) {
  LoadFilter filter;
  filter.task = [index, count](uint64_t id) { return SlotOfTask(id) % count == index; };
  filter.queue = [index, count](std::string_view q) { return SlotOfQueue(q) % count == index; };
  return filter;
}

}  // namespace

Error RecoverAll(RocksStore& store, ShardSet& shards, RecoveryStats& stats) {
  auto started = std::chrono::steady_clock::now();
  Error error = store.LoadQueues({}, [&](std::string_view queue, const QueueConfig& config) {
    shards.ForQueue(queue).engine().RestoreQueueConfig(queue, config);
    ++stats.queues;
  });
  if (!error.ok()) return error;
  error = store.LoadTasks({}, [&](StoredTask&& stored) {
    shards.ForTask(stored.task.id).engine().RestoreTask(std::move(stored));
    ++stats.tasks;
  });
  if (!error.ok()) return error;
  for (size_t i = 0; i < shards.size(); ++i) shards.at(i).engine().FinishRestore();
  stats.next_sequence = store.HighWaterSequence() + 1;
  error = store.ReserveFrom(stats.next_sequence);
  if (!error.ok()) return error;
  shards.next_sequence().store(stats.next_sequence);
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return {};
}

Error RecoverShard(RocksStore& store, ShardSet& shards, size_t index) {
  Shard& shard = shards.at(index);
  Engine& engine = shard.engine();
  engine.Reset();
  const LoadFilter filter = ShardFilter(index, shards.size());
  Error error = store.LoadQueues(filter, [&](std::string_view queue, const QueueConfig& config) {
    engine.RestoreQueueConfig(queue, config);
  });
  if (error.ok()) {
    error = store.LoadTasks(filter,
                            [&](StoredTask&& stored) { engine.RestoreTask(std::move(stored)); });
  }
  engine.FinishRestore();
  shard.AfterCommand();
  return error;
}

}  // namespace conveyor
