// StorageJournal: one shard's Journal over the RocksStore, with group commit. Records given
// on the shard's thread go into a pending WriteBatch; at the end of the current turn of the
// shard's io_context the batch is handed to this shard's commit thread, which writes it
// (fsync'd in `sync` mode) while the next batch fills. Every WhenDurable() callback given
// with a batch is called on the shard's thread once that batch is on stable storage, or
// with a storage error. One commit thread per shard; RocksDB merges concurrent synced writes
// of several shards into one WAL fsync.
//
// Failure contract: on a failed write no callback of that batch or of the pending one is
// told OK; the journal turns unwritable (the engine answers 503), the shard reloads its
// state from what storage holds, and a resume is tried every second until the disk works.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/journal.h"
#include "storage/rocks_store.h"

namespace conveyor {

class StorageJournal final : public Journal {
 public:
  // sync: fsync every commit (`--durability sync`); else leave syncing to BatchSyncer.
  StorageJournal(RocksStore& store, bool sync, size_t shard_index,
                 size_t max_backlog_bytes = 64u << 20);
  ~StorageJournal() override;

  // REQUIRES: called once before the shard runs. reload rebuilds the shard from storage.
  void Bind(boost::asio::io_context& io, std::function<void()> reload);
  // Finishes the write in progress and ends the commit thread. REQUIRES: the shard's
  // io_context has stopped. Idempotent; the destructor calls it.
  void Stop();

  void TaskCreated(const Task& task) override;
  void TaskChanged(const Task& task) override;
  void TaskRemoved(uint64_t id) override;
  void QueueConfigChanged(std::string_view queue, const QueueConfig& config) override;
  void WhenDurable(std::function<void(Error)> done) override;
  bool writable() const override;

 private:
  using Callback = std::function<void(Error)>;
  struct Job {
    bool resume = false;  // a RocksStore::Recover() attempt instead of a write
    rocksdb::WriteBatch batch;
    std::vector<Callback> callbacks;
  };

  void ScheduleFlush();
  void Flush();
  void Submit(std::unique_ptr<Job> job);
  void CommitLoop();
  void OnWritten(std::unique_ptr<Job> job, Error error);
  void OnResumed(Error error);
  void ScheduleResume();

  RocksStore& store_;
  const bool sync_;
  const size_t shard_index_;
  const size_t max_backlog_bytes_;
  boost::asio::io_context* io_ = nullptr;
  std::function<void()> reload_;

  // Shard-thread state.
  rocksdb::WriteBatch pending_;
  std::vector<Callback> pending_callbacks_;
  uint64_t max_created_id_ = 0;
  bool in_flight_ = false;
  bool flush_posted_ = false;
  bool failed_ = false;
  std::unique_ptr<boost::asio::steady_timer> resume_timer_;
  std::string scratch_;

  // Hand-off to the commit thread; the mutex is shared by exactly these two threads.
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::unique_ptr<Job>> jobs_;
  bool stopping_ = false;
  std::thread thread_;
};

// `--durability batch`: fsyncs the WAL at least every interval on its own thread.
class BatchSyncer {
 public:
  BatchSyncer(RocksStore& store, std::chrono::milliseconds interval);
  ~BatchSyncer();

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace conveyor
