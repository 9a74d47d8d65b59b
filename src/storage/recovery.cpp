#include "storage/recovery.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "common/task_id.h"
#include "common/thread_name.h"

namespace conveyor {
namespace {

LoadFilter ShardFilter(size_t index, size_t count) {
  LoadFilter filter;
  filter.task = [index, count](uint64_t id) { return SlotOfTask(id) % count == index; };
  filter.queue = [index, count](std::string_view q) { return SlotOfQueue(q) % count == index; };
  return filter;
}

// A task read from storage on its way to its shard; `payload` is set only when the
// payload cache may keep it.
struct Restored {
  StoredTask stored;
  std::optional<std::string> payload;
  size_t payload_size = 0;
};

// A bounded hand-off of batches from the walking thread to one shard's restoring thread.
class BatchChannel {
 public:
  static constexpr size_t kMaxBatches = 8;

  void Push(std::vector<Restored> batch) {
    std::unique_lock<std::mutex> lock(mutex_);
    room_.wait(lock, [this] { return batches_.size() < kMaxBatches || closed_; });
    if (closed_) return;
    batches_.push_back(std::move(batch));
    ready_.notify_one();
  }

  // False once closed and drained.
  bool Pop(std::vector<Restored>& out) {
    std::unique_lock<std::mutex> lock(mutex_);
    ready_.wait(lock, [this] { return !batches_.empty() || closed_; });
    if (batches_.empty()) return false;
    out = std::move(batches_.front());
    batches_.pop_front();
    room_.notify_one();
    return true;
  }

  void Close() {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
    ready_.notify_all();
    room_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_, room_;
  std::deque<std::vector<Restored>> batches_;
  bool closed_ = false;
};

// One thread walks the store once and decodes; each shard's thread puts its own tasks into
// its engine meanwhile (engines share only atomics). The two halves of a restart's work,
// RocksDB's iteration with the decoding and the engine's inserts, so run on two cores even
// when one queue (one shard) holds every task.
Error LoadAllPipelined(RocksStore& store, ShardSet& shards, std::vector<size_t>& tasks) {
  constexpr size_t kBatch = 1024;
  const size_t n = shards.size();
  std::vector<BatchChannel> channels(n);
  std::vector<std::thread> restorers;
  for (size_t i = 0; i < n; ++i) {
    restorers.emplace_back([&, i] {
      NameThisThread("restore-" + std::to_string(i));
      Engine& engine = shards.at(i).engine();
      std::vector<Restored> batch;
      while (channels[i].Pop(batch)) {
        for (Restored& r : batch) {
          std::string_view payload = r.payload ? std::string_view(*r.payload) : "";
          engine.RestoreTask(std::move(r.stored), r.payload ? &payload : nullptr, r.payload_size);
        }
        tasks[i] += batch.size();
      }
    });
  }
  // The cache is empty at start-up and only these payloads fill it, in this order: a
  // payload is copied out of the walk exactly when the engine will keep it, so the batches
  // in flight never hold more payload bytes than the cache's budget.
  const size_t limit = shards.at(0).engine().PayloadCacheLimit();
  size_t promised = 0;
  std::vector<std::vector<Restored>> pending(n);
  Error error;
  try {
    error = store.LoadTasks({}, [&](StoredTask&& stored, std::string_view payload) {
      const size_t i = SlotOfTask(stored.task.id) % n;
      Restored r{std::move(stored), std::nullopt, payload.size()};
      // A finished task comes back as its id only: its payload stays in storage.
      if (!IsFinished(r.stored.task.state) && payload.size() <= limit - promised) {
        promised += payload.size();
        r.payload.emplace(payload);
      }
      pending[i].push_back(std::move(r));
      if (pending[i].size() == kBatch) {
        channels[i].Push(std::move(pending[i]));
        pending[i] = std::vector<Restored>();
        pending[i].reserve(kBatch);
      }
    });
  } catch (const std::exception& e) {  // out of memory: the restorers must still be joined
    error = Error{ErrorCode::kInternal, std::string("loading the tasks failed: ") + e.what()};
  }
  for (size_t i = 0; i < n; ++i) {
    if (error.ok() && !pending[i].empty()) channels[i].Push(std::move(pending[i]));
    channels[i].Close();
  }
  for (auto& t : restorers) t.join();
  return error;
}

}  // namespace

// At start-up (the I/O threads do not run yet): the queues' configs, then every task in
// one pipelined walk (LoadAllPipelined).
Error RecoverAll(RocksStore& store, ShardSet& shards, RecoveryStats& stats) {
  auto started = std::chrono::steady_clock::now();
  const size_t n = shards.size();
  for (size_t i = 0; i < n; ++i) {
    Engine& engine = shards.at(i).engine();
    Error error =
        store.LoadQueues(ShardFilter(i, n), [&](std::string_view queue, const QueueConfig& config) {
          engine.RestoreQueueConfig(queue, config);
          ++stats.queues;
        });
    if (!error.ok()) return error;
    error = store.LoadTopics(ShardFilter(i, n),
                             [&](std::string_view topic, std::vector<std::string> queues) {
                               engine.RestoreTopic(topic, std::move(queues));
                             });
    if (!error.ok()) return error;
    error = store.LoadSchedules(ShardFilter(i, n), [&](ScheduleView schedule) {
      engine.RestoreSchedule(std::move(schedule));
    });
    if (!error.ok()) return error;
  }
  std::vector<size_t> tasks(n, 0);
  if (Error error = LoadAllPipelined(store, shards, tasks); !error.ok()) return error;
  for (size_t i = 0; i < n; ++i) {
    stats.tasks += tasks[i];
    shards.at(i).engine().FinishRestore();
  }
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
    error = store.LoadTopics(filter, [&](std::string_view topic, std::vector<std::string> queues) {
      engine.RestoreTopic(topic, std::move(queues));
    });
  }
  if (error.ok()) {
    error = store.LoadSchedules(
        filter, [&](ScheduleView schedule) { engine.RestoreSchedule(std::move(schedule)); });
  }
  if (error.ok()) {
    error = store.LoadTasks(filter, [&](StoredTask&& stored, std::string_view payload) {
      engine.RestoreTask(std::move(stored), &payload, payload.size());
    });
  }
  engine.FinishRestore();
  shard.AfterCommand();
  return error;
}

}  // namespace conveyor
