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
// state from what storage holds, and a resume is tried every second until the disk works
// and a reload from it succeeds: a shard never takes changes over partial memory. In
// `batch` mode a failed WAL sync (BatchSyncer) degrades every shard the same way.
// A callback that waits longer than the commit timeout is answered storage_timeout
// ("outcome unknown": the write may still land), so no request hangs on a stalled disk.
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
                 size_t max_backlog_bytes = 64u << 20, int64_t commit_timeout_ms = 10000);
  ~StorageJournal() override;

  // REQUIRES: called once before the shard runs. reload rebuilds the shard from storage
  // (an error leaves the journal refusing, and it is tried again); after_callbacks runs on
  // the shard's thread whenever durability callbacks ran (the shard re-arms its timer).
  void Bind(boost::asio::io_context& io, std::function<Error()> reload,
            std::function<void()> after_callbacks = nullptr);
  // A failure seen outside this journal's own writes (a failed WAL sync in batch mode):
  // degrade exactly as after a failed write. REQUIRES: on the shard's thread.
  void Fail(Error error);
  // Finishes the write in progress and ends the commit thread. REQUIRES: the shard's
  // io_context has stopped. Idempotent; the destructor calls it.
  void Stop();

  void TaskCreated(const Task& task, std::string_view payload) override;
  void TaskChanged(const Task& task) override;
  void TaskPayloadChanged(const Task& task, std::string_view payload) override;
  void TaskStateChanged(const Task& task) override;
  void TaskResultSet(const Task& task) override;
  void TaskProgressSet(const Task& task) override;
  // Bytes waiting for the next commit (tests).
  size_t pending_bytes() const { return pending_.GetDataSize(); }
  void TaskRemoved(uint64_t id, uint8_t stored_deltas) override;
  void QueueConfigChanged(std::string_view queue, const QueueConfig& config) override;
  void TopicChanged(std::string_view topic, const std::vector<std::string>& queues) override;
  void ScheduleChanged(const ScheduleView& schedule) override;
  void QueueRemoved(std::string_view queue) override;
  void ScheduleRemoved(std::string_view name) override;
  void WhenDurable(Callback<void(Error)> done) override;
  bool writable() const override;

 private:
  using Done = Callback<void(Error)>;
  struct Job {
    bool resume = false;  // a RocksStore::Recover() attempt instead of a write
    rocksdb::WriteBatch batch;
  };
  struct Waiting {
    int64_t since_ms;  // steady clock
    Done callback;
  };

  void ScheduleFlush();
  void Flush();
  void Submit(std::unique_ptr<Job> job);
  void CommitLoop();
  void OnWritten(Error error);
  void OnResumed(Error error);
  void ScheduleResume();
  void Answer(std::vector<Waiting>& waiting, const Error& error);
  void ArmTimeout();
  void OnTimeout();

  RocksStore& store_;
  const bool sync_;
  const size_t shard_index_;
  const size_t max_backlog_bytes_;
  const int64_t commit_timeout_ms_;
  boost::asio::io_context* io_ = nullptr;
  std::function<Error()> reload_;
  std::function<void()> after_callbacks_;

  // Shard-thread state.
  rocksdb::WriteBatch pending_;
  std::vector<Waiting> pending_callbacks_;
  std::vector<Waiting> in_flight_callbacks_;
  std::unique_ptr<boost::asio::steady_timer> timeout_timer_;
  bool timeout_armed_ = false;
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
  // on_failure runs on the syncer's thread after a failed sync (it must post, not act).
  BatchSyncer(RocksStore& store, std::chrono::milliseconds interval,
              std::function<void(Error)> on_failure);
  ~BatchSyncer();

 private:
  RocksStore& store_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace conveyor
