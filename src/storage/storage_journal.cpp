#include "storage/storage_journal.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <chrono>
#include <iostream>
#include <iterator>

#include "common/task_id.h"
#include "common/thread_name.h"
#include "engine/queue.h"
#include "storage/schedule_codec.h"
#include "storage/task_codec.h"

namespace conveyor {
namespace {

rocksdb::Slice AsSlice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

int64_t SteadyMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace

StorageJournal::StorageJournal(RocksStore& store, bool sync, size_t shard_index,
                               size_t max_backlog_bytes, int64_t commit_timeout_ms)
    : store_(store),
      sync_(sync),
      shard_index_(shard_index),
      max_backlog_bytes_(max_backlog_bytes),
      commit_timeout_ms_(commit_timeout_ms),
      thread_([this] { CommitLoop(); }) {}

StorageJournal::~StorageJournal() { Stop(); }

void StorageJournal::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
  // Timers go while their io_context still exists (the ShardSet is destroyed after this).
  resume_timer_.reset();
  timeout_timer_.reset();
}

void StorageJournal::Bind(boost::asio::io_context& io, std::function<Error()> reload,
                          std::function<void()> after_callbacks) {
  io_ = &io;
  reload_ = std::move(reload);
  after_callbacks_ = std::move(after_callbacks);
  resume_timer_ = std::make_unique<boost::asio::steady_timer>(io);
  timeout_timer_ = std::make_unique<boost::asio::steady_timer>(io);
}

bool StorageJournal::writable() const {
  // A shard whose fsyncs stall stops taking changes once this much waits (503).
  return !failed_ && pending_.GetDataSize() < max_backlog_bytes_;
}

void StorageJournal::TaskCreated(const Task& task, std::string_view payload) {
  if (failed_) return;
  const std::string key = TaskKey(task.id);
  pending_.Put(store_.payloads(), AsSlice(key), AsSlice(payload));
  max_created_id_ = std::max(max_created_id_, task.id);
  if (auto until = store_.MaybeExtendReservation(task.id >> kSlotBits)) {
    pending_.Put(store_.meta(), AsSlice(ReservationKey(shard_index_)), AsSlice(TaskKey(*until)));
  }
  scratch_.clear();
  EncodeTaskMeta(task, scratch_);
  pending_.Put(store_.tasks(), AsSlice(key), AsSlice(scratch_));
  ScheduleFlush();
}

void StorageJournal::TaskPayloadChanged(const Task& task, std::string_view payload) {
  if (failed_) return;
  pending_.Put(store_.payloads(), AsSlice(TaskKey(task.id)), AsSlice(payload));
  TaskChanged(task);
}

// The whole record (errors included); a state delta written before it is superseded.
void StorageJournal::TaskChanged(const Task& task) {
  if (failed_) return;  // the shard reloads from storage once it recovers
  scratch_.clear();
  EncodeTaskMeta(task, scratch_);
  pending_.Put(store_.tasks(), AsSlice(TaskKey(task.id)), AsSlice(scratch_));
  if (task.stored_deltas & kStateDeltaStored) {
    pending_.Delete(store_.deltas(), AsSlice(DeltaKey(task.id, kStateDeltaTag)));
    task.stored_deltas &= ~kStateDeltaStored;
  }
  ScheduleFlush();
}

void StorageJournal::TaskStateChanged(const Task& task) {
  if (failed_) return;
  scratch_.clear();
  EncodeStateDelta(task, scratch_);
  pending_.Put(store_.deltas(), AsSlice(DeltaKey(task.id, kStateDeltaTag)), AsSlice(scratch_));
  task.stored_deltas |= kStateDeltaStored;
  ScheduleFlush();
}

void StorageJournal::TaskResultSet(const Task& task) {
  if (failed_) return;
  pending_.Put(store_.deltas(), AsSlice(DeltaKey(task.id, kResultTag)), AsSlice(task.result()));
  task.stored_deltas |= kResultStored;
  ScheduleFlush();
}

void StorageJournal::TaskProgressSet(const Task& task) {
  if (failed_) return;
  pending_.Put(store_.deltas(), AsSlice(DeltaKey(task.id, kProgressTag)), AsSlice(task.progress()));
  task.stored_deltas |= kProgressStored;
  ScheduleFlush();
}

void StorageJournal::TaskRemoved(uint64_t id, uint8_t stored_deltas) {
  if (failed_) return;
  const std::string key = TaskKey(id);
  pending_.Delete(store_.tasks(), AsSlice(key));
  pending_.Delete(store_.payloads(), AsSlice(key));
  const std::pair<uint8_t, char> deltas[] = {{kStateDeltaStored, kStateDeltaTag},
                                             {kResultStored, kResultTag},
                                             {kProgressStored, kProgressTag}};
  for (auto [bit, tag] : deltas) {
    if (stored_deltas & bit) pending_.Delete(store_.deltas(), AsSlice(DeltaKey(id, tag)));
  }
  ScheduleFlush();
}

void StorageJournal::QueueConfigChanged(std::string_view queue, const QueueConfig& config) {
  if (failed_) return;
  scratch_.clear();
  EncodeQueueConfig(config, scratch_);
  pending_.Put(store_.queues(), AsSlice(queue), AsSlice(scratch_));
  ScheduleFlush();
}

void StorageJournal::TopicChanged(std::string_view topic, const std::vector<std::string>& queues) {
  if (failed_) return;
  const std::string key = TopicKey(topic);
  if (queues.empty()) {
    pending_.Delete(store_.meta(), AsSlice(key));
  } else {
    scratch_.clear();
    EncodeTopic(queues, scratch_);
    pending_.Put(store_.meta(), AsSlice(key), AsSlice(scratch_));
  }
  ScheduleFlush();
}

void StorageJournal::ScheduleChanged(const ScheduleView& schedule) {
  if (failed_) return;
  scratch_.clear();
  EncodeSchedule(schedule, scratch_);
  pending_.Put(store_.meta(), AsSlice(ScheduleKey(schedule.name)), AsSlice(scratch_));
  ScheduleFlush();
}

void StorageJournal::QueueRemoved(std::string_view queue) {
  if (failed_) return;
  pending_.Delete(store_.queues(), AsSlice(queue));
  ScheduleFlush();
}

void StorageJournal::ScheduleRemoved(std::string_view name) {
  if (failed_) return;
  pending_.Delete(store_.meta(), AsSlice(ScheduleKey(name)));
  ScheduleFlush();
}

void StorageJournal::WhenDurable(Callback<void(Error)> done) {
  if (failed_) {
    done(Error{ErrorCode::kStorageUnavailable, "storage is failing; the change was not kept"});
    return;
  }
  pending_callbacks_.push_back(Waiting{SteadyMs(), std::move(done)});
  ScheduleFlush();
  ArmTimeout();
}

void StorageJournal::Answer(std::vector<Waiting>& waiting, const Error& error) {
  auto all = std::move(waiting);
  waiting.clear();
  for (auto& w : all) w.callback(error);
  if (!all.empty() && after_callbacks_) after_callbacks_();
}

// Checks a few times per timeout period while anything waits; answers what waited too long.
void StorageJournal::ArmTimeout() {
  if (timeout_armed_ || !timeout_timer_) return;
  timeout_armed_ = true;
  timeout_timer_->expires_after(
      std::chrono::milliseconds(std::max<int64_t>(5, commit_timeout_ms_ / 4)));
  timeout_timer_->async_wait([this](boost::system::error_code ec) {
    timeout_armed_ = false;
    if (!ec) OnTimeout();
  });
}

void StorageJournal::OnTimeout() {
  const int64_t cutoff = SteadyMs() - commit_timeout_ms_;
  const Error timeout{ErrorCode::kStorageTimeout,
                      "storage did not confirm the change in time (--commit-timeout-ms); its "
                      "outcome is unknown: read the task to see whether it was kept"};
  std::vector<Waiting> late;
  for (auto* list : {&in_flight_callbacks_, &pending_callbacks_}) {
    size_t n = 0;
    while (n < list->size() && (*list)[n].since_ms <= cutoff) ++n;
    std::move(list->begin(), list->begin() + static_cast<std::ptrdiff_t>(n),
              std::back_inserter(late));
    list->erase(list->begin(), list->begin() + static_cast<std::ptrdiff_t>(n));
  }
  if (!late.empty()) {
    std::cerr << "conveyor: shard " << shard_index_ << ": " << late.size()
              << " requests waited over " << commit_timeout_ms_ << " ms for storage" << std::endl;
  }
  Answer(late, timeout);
  if (!in_flight_callbacks_.empty() || !pending_callbacks_.empty()) ArmTimeout();
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
    Answer(pending_callbacks_, Error{});
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
  in_flight_callbacks_ = std::move(pending_callbacks_);
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
  NameThisThread("commit-" + std::to_string(shard_index_));
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
    job.reset();
    boost::asio::post(*io_, [this, error] { OnWritten(error); });
  }
}

void StorageJournal::OnWritten(Error error) {
  in_flight_ = false;
  if (error.ok() && !failed_) {
    Answer(in_flight_callbacks_, Error{});
    if (pending_.Count() > 0 || !pending_callbacks_.empty()) Flush();
    return;
  }
  // A failed write, or one that landed after storage was found failing (a failed sync in
  // batch mode): not safe, never acknowledged.
  Error refused{ErrorCode::kStorageUnavailable,
                error.ok() ? "storage failed while this change was being written" : error.message};
  Answer(in_flight_callbacks_, refused);
  Fail(refused);
}

void StorageJournal::Fail(Error error) {
  if (failed_) return;  // already degraded; the resume loop is running
  std::cerr << "conveyor: shard " << shard_index_ << ": " << error.message
            << "; refusing changes until storage recovers" << std::endl;
  failed_ = true;
  pending_.Clear();
  max_created_id_ = 0;
  // Nothing waiting behind the failure may be acknowledged either. (A write still in
  // flight is answered by OnWritten, which sees failed_.)
  Answer(pending_callbacks_, Error{ErrorCode::kStorageUnavailable, error.message});
  // Memory now holds changes storage does not: go back to what storage has. Whether or
  // not this reload works, changes stay refused until a resume and a reload succeed.
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
  // What storage holds is the truth, timers included: reload before taking changes.
  if (error.ok() && reload_) error = reload_();
  if (!error.ok()) {
    std::cerr << "conveyor: shard " << shard_index_ << ": still refusing changes: " << error.message
              << std::endl;
    ScheduleResume();
    return;
  }
  failed_ = false;
  std::cerr << "conveyor: shard " << shard_index_ << ": storage recovered; accepting changes"
            << std::endl;
  if (after_callbacks_) after_callbacks_();
}

BatchSyncer::BatchSyncer(RocksStore& store, std::chrono::milliseconds interval,
                         std::function<void(Error)> on_failure)
    : store_(store), thread_([this, &store, interval, on_failure = std::move(on_failure)] {
        NameThisThread("wal-sync");
        std::unique_lock<std::mutex> lock(mutex_);
        bool failing = false;
        while (!wake_.wait_for(lock, interval, [this] { return stopping_; })) {
          lock.unlock();
          Error error = store.SyncWal();
          // Never retried blindly: a failed sync degrades the shards, which recover
          // (RocksStore::Recover) and reload before they take changes again.
          if (!error.ok() && !failing) {
            std::cerr << "conveyor: WAL sync failed: " << error.message << std::endl;
            if (on_failure) on_failure(error);
          }
          failing = !error.ok();
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
  store_.SyncWal();  // at shutdown: what was written is synced before the store closes
}

}  // namespace conveyor
