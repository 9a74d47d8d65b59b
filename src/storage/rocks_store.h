// RocksStore: the RocksDB database under <data-dir>/db and the only code that talks to it.
// Five column families: `tasks` (id -> task record), `payloads` (id -> payload bytes,
// written once), `queues` (name -> config), `meta` (id high-water marks), `deltas` (id +
// tag -> a task's state delta, result, progress: small writes for lease, extend, ack). Writes come
// from the shards' commit threads (RocksDB groups concurrent synced writes into one WAL fsync);
// loading happens once at start-up, or on one shard's thread when it reloads after a
// storage failure. RocksDB is thread-safe for all of these.
//
// Durability contract: WriteSynced returns OK only once the batch is in the WAL and the WAL
// is fsync'd. On any write error the caller must not acknowledge; RocksDB then refuses
// further writes until Recover() succeeds, and nothing unsynced is ever reported durable.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/file_system.h>
#include <rocksdb/write_batch.h>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>

#include "common/error.h"
#include "engine/schedule.h"
#include "storage/task_codec.h"

namespace conveyor {

struct StoreOptions {
  std::string path;        // the RocksDB directory
  std::string fault_file;  // non-empty: FaultyFileSystem with this flag file (tests only)
  // Null: the real file system. Unit tests pass a wrapper that can drop unsynced bytes.
  std::shared_ptr<rocksdb::FileSystem> file_system;
};

struct LoadFilter {
  // Keep only tasks/queues for which this returns true (a shard's slots); null keeps all.
  std::function<bool(uint64_t task_id)> task;
  std::function<bool(std::string_view queue)> queue;
};

class RocksStore final : public TaskReader {
 public:
  // Table files RocksDB keeps open, and the descriptors the store may need in all (tables,
  // WAL, MANIFEST, directory handles, compaction outputs): serve keeps this many free of
  // client connections so that storage can always open a new WAL.
  static constexpr int kMaxOpenTableFiles = 128;
  static constexpr size_t kStorageDescriptors = 192;
  // Memory all of RocksDB's memtables may hold before they are flushed to table files.
  static constexpr size_t kMemtableBytes = 64u << 20;

  static std::unique_ptr<RocksStore> Open(const StoreOptions& options, std::string& error);
  ~RocksStore() override;

  // Handles for building WriteBatches on any thread. They stay valid across Recover(),
  // which replaces the database's own handles.
  rocksdb::ColumnFamilyHandle* tasks() const { return batch_handles_[0].get(); }
  rocksdb::ColumnFamilyHandle* payloads() const { return batch_handles_[1].get(); }
  rocksdb::ColumnFamilyHandle* queues() const { return batch_handles_[2].get(); }
  rocksdb::ColumnFamilyHandle* meta() const { return batch_handles_[3].get(); }
  rocksdb::ColumnFamilyHandle* deltas() const { return batch_handles_[4].get(); }

  Error Write(rocksdb::WriteBatch& batch, bool sync);
  Error SyncWal();
  // After a failed write: clears RocksDB's background error (disk full, once space is
  // back), or else closes and reopens the database, which recovers from what the WAL
  // holds (an I/O error, once the disk works). OK when writes may resume.
  Error Recover();

  Error LoadQueues(const LoadFilter& filter,
                   const std::function<void(std::string_view, const QueueConfig&)>& visit);
  // Schedules, filtered by `filter.queue` on the schedule's name.
  Error LoadSchedules(const LoadFilter& filter, const std::function<void(ScheduleView)>& visit);
  // Topics (subscriber lists), filtered by `filter.queue` on the topic's name.
  Error LoadTopics(const LoadFilter& filter,
                   const std::function<void(std::string_view, std::vector<std::string>)>& visit);
  // One task's record, payload and deltas, as recovery would load it. Thread-safe.
  Result ReadTask(uint64_t id, StoredTask& out) override;
  Result ReadPayload(uint64_t id, std::string& out) override;
  // Visits tasks in id order, each with its payload.
  // visit(task, payload): `payload` is a view of the stored bytes, valid during the call
  // only (the task's own `payload` string is left empty: the engine copies the bytes only
  // when it keeps them).
  Error LoadTasks(const LoadFilter& filter,
                  const std::function<void(StoredTask&&, std::string_view)>& visit);
  // The largest task sequence that may have been handed out: the reservations, the
  // high-water marks and the tasks. Recovery restarts the sequence above it.
  uint64_t HighWaterSequence();

  // Id reservation. A task can be seen (leased) before its creation is durable, and if a
  // crash then loses it its id must still never be handed out again. So the sequence is
  // reserved durably ahead of use: at start (synced, before serving), and again by
  // whichever shard's next batch crosses the half-way mark.
  static constexpr uint64_t kReserveAhead = 1u << 20;
  Error ReserveFrom(uint64_t next_sequence);
  // A new reservation end to record (under the caller's own key) if `sequence` nears the
  // current one; nullopt otherwise. Thread-safe.
  std::optional<uint64_t> MaybeExtendReservation(uint64_t sequence);

 private:
  RocksStore() = default;
  rocksdb::Status OpenDb();
  // Applies the deltas of task `id` from `it` (positioned at or before them).
  static Error ApplyDeltas(rocksdb::Iterator& it, uint64_t id, Task& task);
  void CloseDb();

  std::unique_ptr<rocksdb::Env> env_;
  rocksdb::DBOptions db_options_;
  std::vector<rocksdb::ColumnFamilyDescriptor> families_;
  std::string path_;
  // Shared by writes, loads and syncs; exclusive only while Recover() reopens.
  mutable std::shared_mutex mutex_;
  rocksdb::DB* db_ = nullptr;
  bool read_only_ = false;  // opened for reads only while the disk refuses writes
  // default, tasks, payloads, queues, meta, deltas
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::vector<std::unique_ptr<rocksdb::ColumnFamilyHandle>> batch_handles_;
  std::atomic<uint64_t> reserved_until_{0};
};

// Keys in the meta column family: a shard's high-water mark (an id) and a shard's
// reservation end (a sequence).
std::string HighWaterKey(size_t shard);
std::string ReservationKey(size_t shard);

}  // namespace conveyor
