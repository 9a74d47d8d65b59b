#include "storage/rocks_store.h"

#include <rocksdb/comparator.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_buffer_manager.h>

#include <cstdarg>
#include <cstdio>

#include "common/task_id.h"
#include "storage/faulty_file_system.h"
#include "storage/schedule_codec.h"
#include "storage/wal_check.h"

namespace conveyor {
namespace {

Error StorageError(const rocksdb::Status& s) {
  if (s.ok()) return {};
  return Error{ErrorCode::kStorageUnavailable, "storage write failed: " + s.ToString()};
}

Error Closed() {
  return Error{ErrorCode::kStorageUnavailable, "storage is closed after a failure; reopening"};
}

// What a WriteBatch needs of a column family handle: its id and comparator. Unlike the
// database's handles, these outlive a reopen, so shard threads may keep using them.
class BatchHandle final : public rocksdb::ColumnFamilyHandle {
 public:
  BatchHandle(std::string name, uint32_t id) : name_(std::move(name)), id_(id) {}
  const std::string& GetName() const override { return name_; }
  uint32_t GetID() const override { return id_; }
  rocksdb::Status GetDescriptor(rocksdb::ColumnFamilyDescriptor*) override {
    return rocksdb::Status::NotSupported("batch-only handle");
  }
  const rocksdb::Comparator* GetComparator() const override {
    return rocksdb::BytewiseComparator();
  }

 private:
  std::string name_;
  uint32_t id_;
};

}  // namespace

std::string HighWaterKey(size_t shard) { return "hwm/" + std::to_string(shard); }
std::string ReservationKey(size_t shard) { return "reserved/" + std::to_string(shard); }

Error RocksStore::ReserveFrom(uint64_t next_sequence) {
  const uint64_t until = next_sequence + kReserveAhead;
  rocksdb::WriteBatch batch;
  const std::string value = TaskKey(until);
  batch.Put(meta(), rocksdb::Slice("reserved/start"), rocksdb::Slice(value));
  Error error = Write(batch, /*sync=*/true);
  if (error.ok()) reserved_until_.store(until);
  return error;
}

std::optional<uint64_t> RocksStore::MaybeExtendReservation(uint64_t sequence) {
  uint64_t current = reserved_until_.load();
  while (sequence + kReserveAhead / 2 >= current) {
    const uint64_t extended = sequence + kReserveAhead;
    if (reserved_until_.compare_exchange_weak(current, extended)) return extended;
  }
  return std::nullopt;
}

namespace {

// Forwards RocksDB's warnings and errors to stderr, one line each.
class StderrLogger final : public rocksdb::Logger {
 public:
  StderrLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    char line[1024];
    std::vsnprintf(line, sizeof line, format, ap);
    std::fprintf(stderr, "conveyor: rocksdb: %s\n", line);
  }
};

}  // namespace

std::unique_ptr<RocksStore> RocksStore::Open(const StoreOptions& options, std::string& error) {
  std::unique_ptr<RocksStore> store(new RocksStore());
  rocksdb::DBOptions db;
  db.create_if_missing = true;
  db.create_missing_column_families = true;
  db.paranoid_checks = true;
  // A torn last record (crash mid-write) is dropped; corruption anywhere else refuses to
  // open rather than silently losing what follows it.
  db.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  db.max_total_wal_size = 256ull << 20;
  db.keep_log_file_num = 5;
  db.max_background_jobs = 2;
  // RocksDB's own info log goes to our stderr, not to db/LOG: a log file on a full disk
  // made Debian's (assertion-enabled) librocksdb abort instead of reporting the error.
  db.info_log = std::make_shared<StderrLogger>();
  // Descriptors are shared with client connections; serve reserves kStorageDescriptors.
  db.max_open_files = kMaxOpenTableFiles;
  // All memtables together stay under this (each family would otherwise grow to 64 MiB
  // before a flush): RocksDB's share of the RSS is bounded, whatever the load.
  db.write_buffer_manager = std::make_shared<rocksdb::WriteBufferManager>(kMemtableBytes);
  std::shared_ptr<rocksdb::FileSystem> fs = options.file_system;
  if (!options.fault_file.empty()) {
    fs = NewFaultyFileSystem(fs ? fs : rocksdb::FileSystem::Default(), options.fault_file);
  }
  if (fs) {
    store->env_ = rocksdb::NewCompositeEnv(fs);
    db.env = store->env_.get();
  }
  rocksdb::ColumnFamilyOptions cf;
  cf.level_compaction_dynamic_level_bytes = true;
  // Finished tasks are deleted after retention; compacting files full of tombstones keeps
  // the scan at start-up from wading through them.
  cf.periodic_compaction_seconds = 24 * 3600;
  rocksdb::BlockBasedTableOptions table;
  table.whole_key_filtering = true;
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  rocksdb::ColumnFamilyOptions payload_cf = cf;
  payload_cf.enable_blob_files = false;

  std::vector<rocksdb::ColumnFamilyDescriptor> families = {{rocksdb::kDefaultColumnFamilyName, cf},
                                                           {"tasks", cf},
                                                           {"payloads", payload_cf},
                                                           {"queues", cf},
                                                           {"meta", cf},
                                                           {"deltas", cf}};
  // RocksDB's tail-tolerant replay stops at the first bad record wherever it is; check the
  // WAL first so that only a torn final record is ever dropped.
  for (const WalFileCheck& check : CheckWalFiles(options.path)) {
    if (check.verdict == WalFileCheck::Verdict::kCorrupt) {
      error = "the write-ahead log " + check.path + " is corrupt at byte " +
              std::to_string(check.offset) +
              " with valid records after it; refusing to start rather than lose them. "
              "Restore the data dir from a backup, or move the file away to accept the loss";
      return nullptr;
    }
    if (check.verdict == WalFileCheck::Verdict::kTornTail) {
      std::fprintf(stderr,
                   "conveyor: dropping a torn record at the end of %s (byte %zu, %zu bytes): "
                   "the last write before a crash, never acknowledged\n",
                   check.path.c_str(), check.offset, check.dropped);
    }
  }
  store->db_options_ = db;
  store->families_ = std::move(families);
  store->path_ = options.path;
  rocksdb::Status s = store->OpenDb();
  if (!s.ok()) {
    error = "cannot open the task store in " + options.path + ": " + s.ToString();
    return nullptr;
  }
  for (size_t i = 1; i < store->handles_.size(); ++i) {
    store->batch_handles_.push_back(
        std::make_unique<BatchHandle>(store->handles_[i]->GetName(), store->handles_[i]->GetID()));
  }
  return store;
}

rocksdb::Status RocksStore::OpenDb() {
  handles_.clear();
  return rocksdb::DB::Open(db_options_, path_, families_, &handles_, &db_);
}

void RocksStore::CloseDb() {
  if (db_ == nullptr) return;
  for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
  handles_.clear();
  db_->Close();
  delete db_;
  db_ = nullptr;
}

RocksStore::~RocksStore() { CloseDb(); }

Error RocksStore::Write(rocksdb::WriteBatch& batch, bool sync) {
  std::shared_lock lock(mutex_);
  if (db_ == nullptr || read_only_) return Closed();
  rocksdb::WriteOptions options;
  options.sync = sync;
  return StorageError(db_->Write(options, &batch));
}

Error RocksStore::SyncWal() {
  std::shared_lock lock(mutex_);
  if (db_ == nullptr) return Closed();
  if (read_only_) return {};  // nothing is written while read-only
  return StorageError(db_->SyncWAL());
}

Error RocksStore::Recover() {
  std::unique_lock lock(mutex_);
  if (db_ != nullptr && !read_only_ && db_->Resume().ok()) return {};
  CloseDb();
  read_only_ = false;
  rocksdb::Status s = OpenDb();
  if (s.ok()) return {};
  db_ = nullptr;
  // The disk refuses writes (it cannot even open the database for them): open it read-only
  // so that reads (GET of finished tasks, pages, a shard's reload) keep working meanwhile.
  // Writes to it fail, and the next Recover() tries a full open again.
  handles_.clear();
  if (rocksdb::DB::OpenForReadOnly(db_options_, path_, families_, &handles_, &db_).ok()) {
    read_only_ = true;
  } else {
    db_ = nullptr;
  }
  return StorageError(s);
}

Error RocksStore::LoadQueues(
    const LoadFilter& filter,
    const std::function<void(std::string_view, const QueueConfig&)>& visit) {
  std::shared_lock lock(mutex_);
  if (db_ == nullptr) return Closed();
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), handles_[3]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string_view name(it->key().data(), it->key().size());
    if (filter.queue && !filter.queue(name)) continue;
    QueueConfig config;
    if (!DecodeQueueConfig(std::string_view(it->value().data(), it->value().size()), config)) {
      return Error{ErrorCode::kInternal, "the stored config of queue '" + std::string(name) +
                                             "' is unreadable (corrupt or from another version)"};
    }
    visit(name, config);
  }
  return StorageError(it->status());
}

Error RocksStore::LoadTasks(const LoadFilter& filter,
                            const std::function<void(StoredTask&&, std::string_view)>& visit) {
  std::shared_lock lock(mutex_);
  if (db_ == nullptr) return Closed();
  rocksdb::ReadOptions read;
  read.fill_cache = false;
  read.readahead_size = 4 << 20;
  std::unique_ptr<rocksdb::Iterator> meta_it(db_->NewIterator(read, handles_[1]));
  std::unique_ptr<rocksdb::Iterator> payload_it(db_->NewIterator(read, handles_[2]));
  std::unique_ptr<rocksdb::Iterator> delta_it(db_->NewIterator(read, handles_[5]));
  payload_it->SeekToFirst();
  delta_it->SeekToFirst();
  for (meta_it->SeekToFirst(); meta_it->Valid(); meta_it->Next()) {
    uint64_t id = 0;
    std::string_view key(meta_it->key().data(), meta_it->key().size());
    if (!ParseTaskKey(key, id)) {
      return Error{ErrorCode::kInternal, "the task store holds a key that is not a task id"};
    }
    if (filter.task && !filter.task(id)) continue;
    StoredTask stored;
    if (!DecodeTaskMeta(std::string_view(meta_it->value().data(), meta_it->value().size()),
                        stored) ||
        stored.task.id != id) {
      return Error{ErrorCode::kInternal, "task " + std::to_string(id) +
                                             " is unreadable in storage (corrupt or from "
                                             "another version)"};
    }
    // Both families are in id order and written in the same batches: walk them together.
    while (payload_it->Valid() && payload_it->key().compare(meta_it->key()) < 0) payload_it->Next();
    if (!payload_it->Valid() || payload_it->key() != meta_it->key()) {
      return Error{ErrorCode::kInternal,
                   "task " + std::to_string(id) + " has no payload in storage: it is inconsistent"};
    }
    // Deltas sort by (id, tag): those of this task follow any of skipped (filtered) ones.
    if (Error e = ApplyDeltas(*delta_it, id, stored.task); !e.ok()) return e;
    visit(std::move(stored),
          std::string_view(payload_it->value().data(), payload_it->value().size()));
  }
  if (!meta_it->status().ok()) return StorageError(meta_it->status());
  if (!delta_it->status().ok()) return StorageError(delta_it->status());
  return StorageError(payload_it->status());
}

TaskReader::Result RocksStore::ReadTask(uint64_t id, StoredTask& out) {
  std::shared_lock lock(mutex_);
  if (db_ == nullptr) return Result::kError;
  const std::string key = TaskKey(id);
  std::string meta;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handles_[1], key, &meta);
  if (s.IsNotFound()) return Result::kNotFound;
  if (!s.ok() || !DecodeTaskMeta(meta, out) || out.task.id != id) return Result::kError;
  s = db_->Get(rocksdb::ReadOptions(), handles_[2], key, &out.payload);
  if (!s.ok()) return Result::kError;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), handles_[5]));
  it->Seek(key);
  if (!ApplyDeltas(*it, id, out.task).ok() || !it->status().ok()) return Result::kError;
  return Result::kFound;
}

TaskReader::Result RocksStore::ReadPayload(uint64_t id, std::string& out) {
  std::shared_lock lock(mutex_);
  if (db_ == nullptr) return Result::kError;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handles_[2], TaskKey(id), &out);
  if (s.IsNotFound()) return Result::kNotFound;
  return s.ok() ? Result::kFound : Result::kError;
}

Error RocksStore::ApplyDeltas(rocksdb::Iterator& it, uint64_t id, Task& task) {
  uint64_t delta_id = 0;
  char tag = 0;
  for (; it.Valid(); it.Next()) {
    std::string_view key(it.key().data(), it.key().size());
    if (!ParseDeltaKey(key, delta_id, tag)) {
      return Error{ErrorCode::kInternal, "the task store holds a delta key that is not a task's"};
    }
    if (delta_id > id) break;
    if (delta_id < id) continue;  // a filtered-out task's, or one left by a removed task
    std::string_view value(it.value().data(), it.value().size());
    if (tag == kStateDeltaTag) {
      task.stored_deltas |= kStateDeltaStored;
      if (!ApplyStateDelta(value, task)) {
        return Error{ErrorCode::kInternal,
                     "the state of task " + std::to_string(id) + " is unreadable in storage"};
      }
    } else if (tag == kResultTag) {
      task.cold().result.assign(value);
      task.stored_deltas |= kResultStored;
    } else if (tag == kProgressTag) {
      task.cold().progress.assign(value);
      task.stored_deltas |= kProgressStored;
    }
  }
  return {};
}

Error RocksStore::LoadTopics(
    const LoadFilter& filter,
    const std::function<void(std::string_view, std::vector<std::string>)>& visit) {
  std::shared_lock lock(mutex_);
  if (db_ == nullptr) return Closed();
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), handles_[4]));
  const rocksdb::Slice prefix(kTopicKeyPrefix.data(), kTopicKeyPrefix.size());
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    std::string_view name(it->key().data() + prefix.size(), it->key().size() - prefix.size());
    if (filter.queue && !filter.queue(name)) continue;
    std::vector<std::string> queues;
    if (!DecodeTopic(std::string_view(it->value().data(), it->value().size()), queues)) {
      return Error{ErrorCode::kInternal, "the stored subscribers of topic '" + std::string(name) +
                                             "' are unreadable (corrupt or from another version)"};
    }
    visit(name, std::move(queues));
  }
  return StorageError(it->status());
}

Error RocksStore::LoadSchedules(const LoadFilter& filter,
                                const std::function<void(ScheduleView)>& visit) {
  std::shared_lock lock(mutex_);
  if (db_ == nullptr) return Closed();
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), handles_[4]));
  const rocksdb::Slice prefix(kScheduleKeyPrefix.data(), kScheduleKeyPrefix.size());
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    std::string_view name(it->key().data() + prefix.size(), it->key().size() - prefix.size());
    if (filter.queue && !filter.queue(name)) continue;
    ScheduleView schedule;
    if (!DecodeSchedule(std::string_view(it->value().data(), it->value().size()), schedule)) {
      return Error{ErrorCode::kInternal, "the stored schedule '" + std::string(name) +
                                             "' is unreadable (corrupt or from another version)"};
    }
    visit(std::move(schedule));
  }
  return StorageError(it->status());
}

uint64_t RocksStore::HighWaterSequence() {
  std::shared_lock lock(mutex_);
  uint64_t high = 0;
  if (db_ == nullptr) return high;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), handles_[4]));
  for (it->Seek("hwm/"); it->Valid() && it->key().starts_with("hwm/"); it->Next()) {
    uint64_t id = 0;
    if (ParseTaskKey(std::string_view(it->value().data(), it->value().size()), id)) {
      high = std::max(high, id >> kSlotBits);
    }
  }
  for (it->Seek("reserved/"); it->Valid() && it->key().starts_with("reserved/"); it->Next()) {
    uint64_t sequence = 0;
    if (ParseTaskKey(std::string_view(it->value().data(), it->value().size()), sequence)) {
      high = std::max(high, sequence);
    }
  }
  std::unique_ptr<rocksdb::Iterator> last(db_->NewIterator(rocksdb::ReadOptions(), handles_[1]));
  last->SeekToLast();
  uint64_t id = 0;
  if (last->Valid() && ParseTaskKey(std::string_view(last->key().data(), last->key().size()), id)) {
    high = std::max(high, id >> kSlotBits);
  }
  return high;
}

}  // namespace conveyor
