// Journal: the one narrow interface through which every engine state change passes, as a
// record a storage layer can persist and replay (a task's full state, a task's removal, a
// queue's config). The Engine calls it on its shard's thread right after each change; the
// shard runtime then asks WhenDurable() before it answers a state-changing request.
// NullJournal is `--durability none`: nothing is kept, everything is "durable" at once.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "engine/callback.h"
#include "engine/queue_config.h"

namespace conveyor {

struct Task;
struct QueueConfig;
struct ScheduleView;

class Journal {
 public:
  virtual ~Journal() = default;
  // A new task: the first record of it, and the only one that carries its payload.
  // The payload's bytes come apart: the task may keep none of them in memory.
  virtual void TaskCreated(const Task& task, std::string_view /*payload*/) { TaskChanged(task); }
  // A debounce replaced the payload of a queued task: the payload and the record again.
  virtual void TaskPayloadChanged(const Task& task, std::string_view /*payload*/) {
    TaskChanged(task);
  }
  // Any change: the task's record is written again (errors included).
  virtual void TaskChanged(const Task& task) = 0;
  // A change of state fields only (state, attempts, times, the lease): lease, extend,
  // ack, cancel, a timer. A storage layer writes a small delta instead of the record.
  virtual void TaskStateChanged(const Task& task) { TaskChanged(task); }
  // The result (ack) or the progress (extend) was set: written on their own, once.
  virtual void TaskResultSet(const Task& task) { TaskChanged(task); }
  virtual void TaskProgressSet(const Task& task) { TaskChanged(task); }
  // stored_deltas: which delta records to delete with it (Task::stored_deltas; all of them
  // when the task is no longer in memory).
  virtual void TaskRemoved(uint64_t id, uint8_t stored_deltas) = 0;
  virtual void QueueConfigChanged(std::string_view queue, const QueueConfig& config) = 0;
  // A queue deleted (it had no task): its config goes.
  virtual void QueueRemoved(std::string_view queue) { QueueConfigChanged(queue, QueueConfig{}); }
  // A topic's subscriber queues; none: the topic is deleted.
  virtual void TopicChanged(std::string_view /*topic*/,
                            const std::vector<std::string>& /*queues*/) {}
  // A schedule's whole state (spec and next tick); removed: the schedule is deleted.
  virtual void ScheduleChanged(const ScheduleView& /*schedule*/) {}
  virtual void ScheduleRemoved(std::string_view /*name*/) {}
  // Calls done once every record given so far is on stable storage (or failed to get there).
  virtual void WhenDurable(Callback<void(Error)> done) = 0;
  // False while storage is failing: the engine then refuses state-changing commands.
  virtual bool writable() const { return true; }
};

class NullJournal final : public Journal {
 public:
  void TaskChanged(const Task&) override {}
  void TaskStateChanged(const Task&) override {}
  void TaskResultSet(const Task&) override {}
  void TaskProgressSet(const Task&) override {}
  void TaskRemoved(uint64_t, uint8_t) override {}
  void QueueConfigChanged(std::string_view, const QueueConfig&) override {}
  void WhenDurable(Callback<void(Error)> done) override { done(Error{}); }
};

}  // namespace conveyor
