#include "storage/storage_journal.h"

#include <boost/asio/post.hpp>
#include <iostream>

#include "common/task_id.h"
#include "engine/queue.h"
#include "storage/task_codec.h"

namespace conveyor {
namespace {

rocksdb::Slice AsSlice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

}  // namespace

StorageJournal::StorageJournal(RocksStore& store, bool sync, size_t shard_index,
                               size_t max_backlog_bytes)
    : store_(store),
      sync_(sync),
      shard_index_(shard_index),
      max_backlog_bytes_(max_backlog_bytes),
      thread_([this] { CommitLoop(); }) {}

StorageJournal::~StorageJournal() { Stop(); }

void StorageJournal::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void StorageJournal::Bind(boost::asio::io_context& io, std::function<void()> reload) {
  io_ = &io;
  reload_ = std::move(reload);
  resume_timer_ = std::make_unique<boost::asio::steady_timer>(io);
}

bool StorageJournal::writable() const {
  // A shard whose fsyncs stall stops taking changes once this much waits (503).
  return !failed_ && pending_.GetDataSize() < max_backlog_bytes_;
}

void StorageJournal::TaskCreated(const Task& task) {
  if (failed_) return;
  const std::string key = TaskKey(task.id);
  pending_.Put(store_.payloads(), AsSlice(key), AsSlice(task.payload));
  max_created_id_ = std::max(max_created_id_, task.id);
  if (auto until = store_.MaybeExtendReservation(task.id >> kSlotBits)) {
    pending_.Put(store_.meta(), AsSlice(ReservationKey(shard_index_)), AsSlice(TaskKey(*until)));
  }
  TaskChanged(task);
}

void StorageJournal::TaskChanged(const Task& task) {
  if (failed_) return;  // the shard reloads from storage once it recovers
  scratch_.clear();
  EncodeTaskMeta(task, scratch_);
  pending_.Put(store_.tasks(), AsSlice(TaskKey(task.id)), AsSlice(scratch_));
  ScheduleFlush();
}

void StorageJournal::TaskRemoved(uint64_t id) {
  if (failed_) return;
  const std::string key = TaskKey(id);
  pending_.Delete(store_.tasks(), AsSlice(key));
  pending_.Delete(store_.payloads(), AsSlice(key));
  ScheduleFlush();
}

void StorageJournal::QueueConfigChanged(std::string_view queue, const QueueConfig& config) {
  if (failed_) return;
  scratch_.clear();
  EncodeQueueConfig(config, scratch_);
  pending_.Put(store_.queues(), AsSlice(queue), AsSlice(scratch_));
  ScheduleFlush();
}

void StorageJournal::WhenDurable(std::function<void(Error)> done) {
  if (failed_) {
    done(Error{ErrorCode::kStorageUnavailable, "storage is failing; the change was not kept"});
    return;
  }
  pending_callbacks_.push_back(std::move(done));
  ScheduleFlush();
}

// Flushing after the current handler lets every change made in this turn of the event loop
// (a batch enqueue, several connections' requests) share one write.
void StorageJournal::ScheduleFlush() {
  if (flush_posted_ || in_flight_) return;
  flush_posted_ = true;
  boost::asio::post(*io_, [this] {
    flush_posted_ = false;
    Flush();
  });
}

void StorageJournal::Flush() {
  if (in_flight_ || failed_) return;
  if (pending_.Count() == 0) {
    // Nothing new to write, and nothing in flight: all earlier changes are durable.
    auto callbacks = std::move(pending_callbacks_);
    pending_callbacks_.clear();
    for (auto& cb : callbacks) cb(Error{});
    return;
  }
  auto job = std::make_unique<Job>();
  if (max_created_id_ != 0) {
    // Ids are never reused, even after their tasks are purged: the high-water mark rides
    // along with the creation it covers.
    pending_.Put(store_.meta(), AsSlice(HighWaterKey(shard_index_)),
                 AsSlice(TaskKey(max_created_id_)));
    max_created_id_ = 0;
  }
  std::swap(job->batch, pending_);
  job->callbacks = std::move(pending_callbacks_);
  pending_callbacks_.clear();
  in_flight_ = true;
  Submit(std::move(job));
}

void StorageJournal::Submit(std::unique_ptr<Job> job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
}

void StorageJournal::CommitLoop() {
  for (;;) {
    std::unique_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, nothing left
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    if (job->resume) {
      Error error = store_.Recover();
      boost::asio::post(*io_, [this, error] { OnResumed(error); });
      continue;
    }
    Error error = store_.Write(job->batch, sync_);
    auto* raw = job.release();
    boost::asio::post(*io_, [this, raw, error] { OnWritten(std::unique_ptr<Job>(raw), error); });
  }
}

void StorageJournal::OnWritten(std::unique_ptr<Job> job, Error error) {
  in_flight_ = false;
  if (error.ok()) {
    for (auto& cb : job->callbacks) cb(Error{});
    if (pending_.Count() > 0 || !pending_callbacks_.empty()) Flush();
    return;
  }
  // Nothing of this batch, nor of the one waiting behind it, may be acknowledged.
  std::cerr << "conveyor: shard " << shard_index_ << ": " << error.message
            << "; refusing changes until storage recovers" << std::endl;
  failed_ = true;
  auto waiting = std::move(pending_callbacks_);
  pending_callbacks_.clear();
  pending_.Clear();
  max_created_id_ = 0;
  for (auto& cb : job->callbacks) cb(error);
  for (auto& cb : waiting) cb(error);
  // Memory now holds changes storage does not: go back to what storage has.
  if (reload_) reload_();
  ScheduleResume();
}

void StorageJournal::ScheduleResume() {
  resume_timer_->expires_after(std::chrono::seconds(1));
  resume_timer_->async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    auto job = std::make_unique<Job>();
    job->resume = true;
    Submit(std::move(job));
  });
}

void StorageJournal::OnResumed(Error error) {
  if (!error.ok()) {
    ScheduleResume();
    return;
  }
  failed_ = false;
  if (reload_) reload_();  // what storage holds is the truth, timers included
  std::cerr << "conveyor: shard " << shard_index_ << ": storage recovered; accepting changes"
            << std::endl;
}

BatchSyncer::BatchSyncer(RocksStore& store, std::chrono::milliseconds interval)
    : thread_([this, &store, interval] {
        std::unique_lock<std::mutex> lock(mutex_);
        while (!wake_.wait_for(lock, interval, [this] { return stopping_; })) {
          lock.unlock();
          Error error = store.SyncWal();
          if (!error.ok()) std::cerr << "conveyor: WAL sync failed: " << error.message << std::endl;
          lock.lock();
        }
      }) {}

BatchSyncer::~BatchSyncer() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

}  // namespace conveyor
