#include "storage/recovery.h"

#include <chrono>
#include <thread>
#include <vector>

#include "common/task_id.h"

namespace conveyor {
namespace {

LoadFilter ShardFilter(size_t index, size_t count) {
  LoadFilter filter;
  filter.task = [index, count](uint64_t id) { return SlotOfTask(id) % count == index; };
  filter.queue = [index, count](std::string_view q) { return SlotOfQueue(q) % count == index; };
  return filter;
}

// One shard's queues and tasks into its engine (on any thread: engines share only
// atomics, and the store is safe to read from several threads).
Error LoadShard(RocksStore& store, ShardSet& shards, size_t index, size_t& queues, size_t& tasks) {
  Engine& engine = shards.at(index).engine();
  const LoadFilter filter = ShardFilter(index, shards.size());
  Error error = store.LoadQueues(filter, [&](std::string_view queue, const QueueConfig& config) {
    engine.RestoreQueueConfig(queue, config);
    ++queues;
  });
  if (!error.ok()) return error;
  return store.LoadTasks(filter, [&](StoredTask&& stored) {
    engine.RestoreTask(std::move(stored));
    ++tasks;
  });
}

}  // namespace

// At start-up every shard loads on a thread of its own, at once (the I/O threads do not
// run yet): each walks the store and keeps its own tasks.
Error RecoverAll(RocksStore& store, ShardSet& shards, RecoveryStats& stats) {
  auto started = std::chrono::steady_clock::now();
  const size_t n = shards.size();
  std::vector<Error> errors(n);
  std::vector<size_t> queues(n, 0), tasks(n, 0);
  std::vector<std::thread> threads;
  for (size_t i = 1; i < n; ++i) {
    threads.emplace_back([&, i] { errors[i] = LoadShard(store, shards, i, queues[i], tasks[i]); });
  }
  errors[0] = LoadShard(store, shards, 0, queues[0], tasks[0]);
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < n; ++i) {
    if (!errors[i].ok()) return errors[i];
    stats.queues += queues[i];
    stats.tasks += tasks[i];
  }
  for (size_t i = 0; i < n; ++i) shards.at(i).engine().FinishRestore();
  stats.next_sequence = store.HighWaterSequence() + 1;
  Error error = store.ReserveFrom(stats.next_sequence);
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
