// TaskService: the one asynchronous command interface through which every front end (the
// HTTP API now; the beanstalkd protocol and the C++ SDK next) reaches the engine: enqueue,
// lease (over one queue or several), ack, nack, extend, cancel, retry, get, list, stats,
// config. A backend implements it: LocalTaskService over this process's shards today, a
// Redis-backed store later, with no front end changing. Results are the engine's plain
// views (engine/task_view.h); no protocol, no JSON. Calls are made from a front end's
// coroutine on its I/O thread and resume there.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/queue_stats.h"
#include "engine/task_view.h"

namespace conveyor {

struct AckCall {
  uint64_t id = 0;
  std::string token;
  std::string result;  // as the front end carries it (JSON text from HTTP); empty: none
};

struct NackCall {
  std::string token;
  std::string message;
  std::optional<int64_t> retry_in_ms;
  bool dead = false;
  // "The remote told me to wait" (flow control): the task's key is paused until retry_at
  // (epoch ms) or for pause_key_ms, the task runs again then, the attempt not counted.
  std::optional<int64_t> retry_at;
  std::optional<int64_t> pause_key_ms;
};

struct ExtendCall {
  std::string token;
  std::optional<int64_t> lease_ms;
  std::string progress;  // empty: unchanged
};

// A lease over one queue or several (beanstalkd's reserve on every watched tube). With
// several queues the most urgent ready task among them is taken; a wait takes exactly one
// grant, from whichever queue has a task first.
struct LeaseCommand {
  std::vector<std::string> queues;
  LeaseRequest request;
};

// A topic and the queues subscribed to it.
struct TopicView {
  std::string name;
  std::vector<std::string> queues;
};

// What one topic event (or batch of them) made: tasks[i][j] is spec j's task in queues[i].
struct PublishResult {
  Error error;
  std::vector<std::string> queues;
  std::vector<std::vector<EnqueuedTask>> tasks;
};

// Lets a front end end a parked wait early (its client went away); the wait then answers
// at once with what it has (nothing). Cancel() is called on the front end's own thread.
class WaitHandle {
 public:
  virtual ~WaitHandle() = default;
  virtual void Cancel() = 0;
};

// Server-wide figures for /metrics and the like.
struct ServiceGauges {
  size_t live_tasks = 0;
  size_t waiters = 0;
  size_t rss_bytes = 0;
  size_t payload_cache_bytes = 0;  // payload bytes of tasks held in memory
};

class TaskService {
 public:
  template <typename T>
  using Awaitable = boost::asio::awaitable<T>;
  // Set by a call that may park, before it suspends; null for calls that do not wait.
  using WaitSlot = std::shared_ptr<std::shared_ptr<WaitHandle>>;

  virtual ~TaskService() = default;

  // State-changing calls answer once the change is durable (per the durability mode).
  virtual Awaitable<EnqueueResult> Enqueue(std::string queue, std::vector<TaskSpec> specs) = 0;
  virtual Awaitable<LeaseResult> Lease(LeaseCommand command, WaitSlot wait) = 0;
  // Grants whose answer could not be delivered: ready again at once, attempt not counted.
  virtual void ReleaseUndelivered(std::vector<LeaseGrant> grants) = 0;
  // A leased task held back for delay_ms, the attempt not counted (Engine::Defer). Durable.
  virtual Awaitable<Outcome<IdState>> Defer(uint64_t id, std::string token, int64_t delay_ms) = 0;
  // The queue's leases held by `worker`, expired at once (Engine::ExpireLeasesOf). Durable.
  virtual Awaitable<Outcome<uint32_t>> ExpireLeasesOf(std::string queue, std::string worker,
                                                      std::string message) = 0;
  virtual Awaitable<Outcome<IdState>> Ack(AckCall call) = 0;
  // One error (or OK) per ack, in order; all owning shards at once, one wait.
  virtual Awaitable<std::vector<Error>> AckMany(std::vector<AckCall> calls) = 0;
  virtual Awaitable<Outcome<IdState>> Nack(uint64_t id, NackCall call) = 0;
  virtual Awaitable<Outcome<int64_t>> Extend(uint64_t id, ExtendCall call) = 0;
  virtual Awaitable<Outcome<IdState>> Cancel(uint64_t id) = 0;
  virtual Awaitable<Outcome<IdState>> Retry(uint64_t id) = 0;
  // Job-style commands (the beanstalkd protocol's; see Engine): release with a priority
  // and a delay, bury, kick a queue's dead (else scheduled) tasks or one task, peek at the
  // head of a state, delete in any unfinished or dead state. All but Peek are durable.
  virtual Awaitable<Outcome<IdState>> Release(uint64_t id, std::string token, int32_t priority,
                                              int64_t delay_ms) = 0;
  virtual Awaitable<Outcome<IdState>> Bury(uint64_t id, std::string token, int32_t priority) = 0;
  virtual Awaitable<Outcome<uint32_t>> Kick(std::string queue, uint32_t bound) = 0;
  virtual Awaitable<Outcome<IdState>> KickTask(uint64_t id) = 0;
  virtual Awaitable<Outcome<TaskView>> Peek(std::string queue, TaskState state) = 0;
  virtual Awaitable<Outcome<IdState>> Delete(uint64_t id, std::string token) = 0;
  virtual Awaitable<LeaseResult> LeaseTask(uint64_t id, LeaseRequest request) = 0;
  // Not stored (a restart ends the pause), so not durable either.
  virtual Awaitable<Error> PauseQueue(std::string queue, int64_t delay_ms, bool create) = 0;
  // wait_ms > 0: answers when the task is finished, or with its state when time runs out.
  virtual Awaitable<Outcome<TaskView>> Get(uint64_t id, int64_t wait_ms, WaitSlot wait) = 0;
  virtual Awaitable<Outcome<TaskPage>> List(std::string queue, std::optional<TaskState> state,
                                            size_t limit, uint64_t after) = 0;
  virtual Awaitable<QueueSnapshot> QueueStats(std::string queue) = 0;
  virtual Awaitable<std::vector<QueueSnapshot>> AllQueueStats() = 0;
  virtual Awaitable<Outcome<QueueConfig>> Configure(std::string queue, QueueConfigPatch patch) = 0;
  // Topics (fan-out). SetTopic replaces the subscriber list (sorted, without repeats).
  virtual Awaitable<Outcome<std::vector<std::string>>> SetTopic(
      std::string topic, std::vector<std::string> queues) = 0;
  virtual Awaitable<Outcome<std::vector<std::string>>> GetTopic(std::string topic) = 0;
  virtual Awaitable<Error> DeleteTopic(std::string topic) = 0;
  virtual Awaitable<std::vector<TopicView>> ListTopics() = 0;
  // A task for each spec in every subscribed queue: all of them or none, in one durable
  // commit; answered once they are durable (and visible).
  virtual Awaitable<PublishResult> Publish(std::string topic, std::vector<TaskSpec> specs) = 0;
  // Schedules (docs/API.md "Schedules"): each on the shard of its name. Set, pause and
  // delete answer once durable.
  virtual Awaitable<Outcome<ScheduleView>> SetSchedule(std::string name, ScheduleSpec spec) = 0;
  virtual Awaitable<Outcome<ScheduleView>> GetSchedule(std::string name) = 0;
  virtual Awaitable<std::vector<ScheduleView>> ListSchedules() = 0;
  virtual Awaitable<Outcome<ScheduleView>> PauseSchedule(std::string name, bool paused) = 0;
  virtual Awaitable<Error> DeleteSchedule(std::string name) = 0;
  // Operators' bulk commands (engine_admin.cpp), durable when answered. Retry and purge
  // go on in slices until `limit` tasks (or all) are done.
  virtual Awaitable<Outcome<BulkResult>> RetryDeadTasks(std::string queue, uint64_t limit) = 0;
  virtual Awaitable<Outcome<BulkResult>> PurgeTasks(std::string queue, TaskState state,
                                                    uint64_t limit) = 0;
  virtual Awaitable<Error> DeleteQueue(std::string queue) = 0;
  // False while storage refuses changes (degraded).
  virtual Awaitable<bool> StorageWritable() = 0;
  virtual ServiceGauges Gauges() const = 0;
};

}  // namespace conveyor
