// Engine: the task state machine of one shard — its queues, their tasks, timers (delays,
// lease expiry, backoff, deadlines, retention) and long-poll waiters. Pure logic: no I/O,
// no threads, time from a Clock, every change reported to a Journal. A Shard wraps it with
// an io_context thread; unit tests drive it directly with a ManualClock.
// A new task is published (indexed, leasable, visible) only once the journal says its
// creation is durable: no worker ever sees a task that a failed fsync then takes away.
// Timers run on the monotonic clock; epoch fields are wall-clock.
// Thread-safety: none. REQUIRES: all calls on the owning shard's thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/limits.h"
#include "common/secure_random.h"
#include "engine/callback.h"
#include "engine/journal.h"
#include "engine/queue.h"
#include "engine/queue_stats.h"
#include "engine/schedule.h"
#include "engine/server_wide.h"
#include "engine/task.h"
#include "engine/task_reader.h"
#include "engine/task_table.h"
#include "engine/task_view.h"

namespace conveyor {

// Unique work (docs/API.md "Unique and debounced work"): while a task of the queue with
// this key is queued (scheduled or ready; with while_active also leased), and for at most
// ttl_ms after it was enqueued (0: no limit), another enqueue with the key is refused
// (answered with the first task's id) or, with replace, replaces that task's payload
// (debounce: the latest wins).
struct UniqueSpec {
  std::string key;
  int64_t ttl_ms = 0;
  bool while_active = false;
  bool replace = false;
};

// A validated task spec (the API layer checked types and ranges).
struct TaskSpec {
  std::string payload = "null";  // bytes of payload_kind
  PayloadKind payload_kind = PayloadKind::kJson;
  int32_t priority = 0;
  std::optional<int64_t> delay_ms;
  std::optional<int64_t> run_at;
  std::optional<int64_t> deadline;
  std::optional<uint32_t> max_attempts;
  std::string idempotency_key;
  int64_t lease_ms = 0;  // 0: the queue's
  std::string key;       // flow control's key (≤ 128 bytes); empty: none
  std::optional<UniqueSpec> unique;
};

// A nack that says "the remote told me to wait": the task runs again at retry_at (epoch
// ms) or pause_key_ms from now, its key is paused until then, and the attempt is not
// counted as a failure.
struct NackHold {
  std::optional<int64_t> retry_at;
  std::optional<int64_t> pause_key_ms;
  bool any() const { return retry_at.has_value() || pause_key_ms.has_value(); }
};

// A bulk command's count, and how many tasks are left in the state it works on.
struct BulkResult {
  uint64_t done = 0;
  uint64_t remaining = 0;
};
inline constexpr uint64_t kMaxBulkPerCall = 10000;

struct EnqueuedTask {
  uint64_t id = 0;
  TaskState state = TaskState::kReady;
  bool duplicate = false;  // an idempotency key or a unique key already held: the first's id
  bool replaced = false;   // a unique key's replace: the first task took this payload
};

struct EnqueueResult {
  Error error;
  std::vector<EnqueuedTask> tasks;
};

// A task of a topic event made on its queue's shard but not yet journaled there: the topic's
// shard journals every subscriber's tasks of the event in one batch (one durable commit),
// and only then are they published. `record` is a copy of the task's fields for that
// journal (its queue pointer is left null; `queue` names it).
struct StagedTask {
  Task record;
  std::string queue;
  std::string payload;
  std::string key;  // the task's flow-control key (record.key is null)
};

struct StageResult {
  Error error;
  std::vector<EnqueuedTask> tasks;  // one per spec (a duplicate idempotency key: the first)
  std::vector<StagedTask> staged;   // the new ones
};

struct LeaseRequest {
  uint32_t max = 1;
  int64_t wait_ms = 0;
  int64_t lease_ms = 0;  // 0: the task's, else the queue's
  std::string worker;
  // False: the lease is not journaled, only kept in memory (push deliveries: after a
  // crash the task is simply ready again, the attempt it was on not counted).
  bool journaled = true;
};

// Shared by the waits of one lease spread over several shards (a multi-queue lease whose
// queues live on different shards): the first shard to take a task for it sets `taken`,
// and every other shard then answers its wait empty without leasing. Any thread.
struct LeaseClaim {
  std::atomic<bool> taken{false};
};

struct LeaseGrant {
  uint64_t id = 0;
  std::string token;
};

struct LeaseResult {
  Error error;
  std::vector<TaskView> tasks;      // leased, each with its token
  std::vector<LeaseGrant> granted;  // to hand back if the answer cannot be delivered
  bool truncated = false;           // stopped at --max-response-bytes
};

class Engine {
 public:
  Engine(const Clock& clock, Journal& journal, ServerWide& shared, const Limits& limits,
         uint64_t seed);
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  EnqueueResult Enqueue(std::string_view queue, std::vector<TaskSpec> specs);
  // Leases at once, or parks a waiter until a task is ready or wait_ms passes.
  // done is called exactly once, possibly before Lease returns.
  void Lease(std::string_view queue, LeaseRequest request, Callback<void(LeaseResult)> done,
             uint64_t* waiter_id = nullptr);
  // The same over several queues of this shard: the most urgent ready tasks among them,
  // or one wait parked on all of them that the first task to come takes. With a claim,
  // nothing is leased once another shard has taken the claim.
  void LeaseAny(const std::vector<std::string>& queues, LeaseRequest request,
                Callback<void(LeaseResult)> done, uint64_t* waiter_id = nullptr,
                std::shared_ptr<LeaseClaim> claim = nullptr);
  // The lease order key of the most urgent ready task among `queues`, if any (to pick
  // the shard to lease from when a multi-queue lease spans shards).
  std::optional<ReadyKey> BestReady(const std::vector<std::string>& queues);
  Outcome<IdState> Ack(uint64_t id, std::string_view token, std::string result);
  Outcome<IdState> Nack(uint64_t id, std::string_view token, std::string_view message,
                        std::optional<int64_t> retry_in_ms, bool dead, NackHold hold = {});
  // The new expiry (epoch ms).
  Outcome<int64_t> Extend(uint64_t id, std::string_view token, std::optional<int64_t> lease_ms,
                          std::string progress);
  Outcome<IdState> Cancel(uint64_t id);
  Outcome<IdState> Retry(uint64_t id);

  // Job-style commands (the beanstalkd protocol's; engine_jobs.cpp). Release: a leased
  // task back to ready (delay 0) or scheduled, with a new priority, not counted as a
  // failure. Bury: a leased task dead with reason `buried`, with a new priority.
  Outcome<IdState> Release(uint64_t id, std::string_view token, int32_t priority, int64_t delay_ms);
  Outcome<IdState> Bury(uint64_t id, std::string_view token, int32_t priority);
  // Kick: up to `bound` dead tasks of the queue back to ready (lowest ids first), or, when
  // it has none, up to `bound` scheduled ones (earliest run time first). The count.
  Outcome<uint32_t> Kick(std::string_view queue, uint32_t bound);
  // One dead or scheduled task back to ready.
  Outcome<IdState> KickTask(uint64_t id);
  // The task a lease would take next (ready), the next to run (scheduled), or the dead
  // task with the lowest id; kNotFound when there is none.
  Outcome<TaskView> Peek(std::string_view queue, TaskState state);
  // Leases one task by id, whatever queue it is in: a ready, scheduled or dead one
  // (beanstalkd's reserve-job). kInvalidState for a task in another state.
  LeaseResult LeaseTask(uint64_t id, const LeaseRequest& request);
  // No lease takes a task of the queue for delay_ms (0 or less: the pause ends now).
  // kNotFound for a queue that does not exist, unless `create`.
  Error PauseQueue(std::string_view queue, int64_t delay_ms, bool create);
  // Ends a task whatever its unfinished or dead state: a leased one (with its token) as
  // succeeded, a scheduled, ready or dead one as canceled. Succeeded or canceled tasks
  // are refused (kInvalidState).
  Outcome<IdState> Delete(uint64_t id, std::string_view token);

  // Why an ack, nack or extend is refused for this task (kLeaseMismatch).
  static Error LeaseMismatchError(const Task& task);
  Outcome<TaskView> GetTask(uint64_t id);
  // Answers when the task reaches a final state or wait_ms passes (its state then).
  void WaitTask(uint64_t id, int64_t wait_ms, Callback<void(Outcome<TaskView>)> done,
                uint64_t* waiter_id = nullptr);
  Outcome<TaskPage> ListTasks(std::string_view queue, std::optional<TaskState> state, size_t limit,
                              uint64_t after);
  // Stats of one queue; a queue never used answers zero counts and the default config.
  QueueSnapshot QueueStats(std::string_view queue);
  // The full config after merging.
  Outcome<QueueConfig> ConfigureQueue(std::string_view queue, const QueueConfigPatch& patch);
  std::vector<QueueSnapshot> Snapshot() const;

  // ---- topics (engine_topics.cpp): a topic's subscriber queues live on the topic's shard;
  // an event's tasks are staged on each subscriber queue's shard, journaled together by
  // the topic's shard, then published (or discarded when that commit fails).
  Outcome<std::vector<std::string>> SetTopic(std::string_view topic,
                                             std::vector<std::string> queues);
  Outcome<std::vector<std::string>> GetTopic(std::string_view topic) const;
  Error DeleteTopic(std::string_view topic);
  std::vector<std::pair<std::string, std::vector<std::string>>> Topics() const;
  void RestoreTopic(std::string_view topic, std::vector<std::string> queues);
  StageResult Stage(std::string_view queue, const std::vector<TaskSpec>& specs);
  // On the topic's shard: the staged tasks of every subscriber into this journal.
  Error JournalStaged(const std::vector<StagedTask>& staged);
  void PublishStaged(const std::vector<uint64_t>& ids) { Publish(ids); }
  void DiscardStaged(const std::vector<uint64_t>& ids);

  // ---- schedules (engine_schedules.cpp): each lives on the shard of its name. A tick is
  // claimed (DueSchedule), its task staged on the queue's shard, then committed here with
  // the schedule's next tick in one batch (CommitScheduleFire), and published.
  Outcome<ScheduleView> SetSchedule(std::string_view name, ScheduleSpec spec);
  Outcome<ScheduleView> GetSchedule(std::string_view name) const;
  std::vector<ScheduleView> Schedules() const;
  Error DeleteSchedule(std::string_view name);
  Outcome<ScheduleView> PauseSchedule(std::string_view name, bool paused);
  void RestoreSchedule(ScheduleView view);
  // Epoch ms of the earliest tick of an unpaused schedule of this shard; kNever: none.
  int64_t NextScheduleDue() const;
  // The first tick due by now (catch_up applied to ticks before `started_at`, epoch ms:
  // when the server started), with the task spec it enqueues; nullopt: none due. Ticks
  // that catch_up passes over without running are recorded here at once.
  std::optional<std::pair<ScheduleFire, TaskSpec>> DueSchedule(int64_t started_at);
  // The staged task of `fire` (none when staging failed) and the schedule's next tick,
  // in one journal batch. kInvalidState when the schedule changed since it was claimed.
  Error CommitScheduleFire(const ScheduleFire& fire, const std::vector<StagedTask>& staged);

  // ---- admin (engine_admin.cpp): bulk commands for operators, each at most
  // kMaxBulkPerCall tasks a call (the caller repeats while `remaining`).
  // Every dead task of the queue (at most `limit`) back to ready, like Retry, lowest ids
  // first.
  Outcome<BulkResult> RetryDeadTasks(std::string_view queue, uint64_t limit);
  // Deletes the queue's finished tasks in `state` (succeeded, dead or canceled) now,
  // before their retention ends.
  Outcome<BulkResult> PurgeTasks(std::string_view queue, TaskState state, uint64_t limit);
  // Forgets a queue without tasks (its config too); kInvalidState while it has any.
  Error DeleteQueue(std::string_view queue);

  // Durable modes: finished tasks leave memory once their final state is durable and are
  // read back through `reader` when asked for. Null (`--durability none`): they stay.
  void SetReader(TaskReader* reader) { reader_ = reader; }
  const Limits& limits() const { return limits_; }
  // Called after every command (Shard::AfterCommand): hands the finished tasks of the
  // command to the journal, to leave memory once durable.
  void AfterCommand();

  // Recovery: rebuild state from stored records, without journaling them. A recorded
  // lease stays valid until its expiry; Tick() then handles whatever is already due.
  // A finished task is restored as its id only (with a reader). FinishRestore() after
  // the last one orders the purge FIFOs and arms their timers.
  void RestoreQueueConfig(std::string_view queue, const QueueConfig& config);
  // `payload`: the stored bytes (copied only if the payload cache keeps them); null when
  // the caller already knows the cache has no room (the payload of `payload_size` bytes
  // stays in storage).
  void RestoreTask(StoredTask&& stored, const std::string_view* payload, size_t payload_size);
  // The bytes of payloads the engine keeps in memory at most (all of them, SIZE_MAX, when
  // there is no storage to read them back from).
  size_t PayloadCacheLimit() const;
  void FinishRestore();
  // Drops all state (waiters are answered empty first), before a reload from storage.
  void Reset();

  // Shutdown: every parked waiter is answered now with what it has, and new lease or task
  // waits answer at once instead of parking.
  void Drain();

  // A waiter whose client went away: answered at once (empty), never leased to.
  void CancelWaiter(uint64_t waiter_id);
  // Leases that were granted but could not be delivered: ready again at once, the attempt
  // not counted.
  void ReleaseUndelivered(const std::vector<LeaseGrant>& grants);
  // A leased task that its worker was told to hold back ("come back later": a push
  // endpoint's 429 with Retry-After): scheduled delay_ms from now (ready at once for 0),
  // the attempt not counted and no error recorded. Durable like an ack.
  Outcome<IdState> Defer(uint64_t id, std::string_view token, int64_t delay_ms);
  // Ends at once every lease of the queue held by `worker` as an expiry would (the
  // attempt counted, `message` recorded): a push dispatcher's leases after a restart,
  // whose deliveries died with the old process. The count. Durable like the rest.
  Outcome<uint32_t> ExpireLeasesOf(std::string_view queue, std::string_view worker,
                                   std::string_view message);

  // Fires the timers due by now, at most kTimerSlice of them (a mass expiry is worked off
  // in slices between other work), and none while the journal refuses records (its
  // backlog is full, or storage is failing). Public calls do this first on their own.
  void Tick();
  static constexpr size_t kTimerSlice = 4096;
  // Monotonic ms (Clock::MonoMs) of the next timer or waiter deadline, or kNever.
  int64_t NextWakeup() const;

  size_t task_count() const { return tasks_.size(); }
  size_t waiter_count() const { return lease_waiters_.size() + task_waiters_.size(); }
  size_t queue_count() const { return queues_.size(); }

 private:
  struct TaskWaiter {
    uint64_t task_id = 0;
    int64_t deadline = 0;
    Callback<void(Outcome<TaskView>)> done;
  };

  Queue& GetOrCreateQueue(std::string_view name);
  Error TooManyQueues() const;
  static Error StorageDown();
  Error CheckCapacity(size_t new_tasks);
  Queue* FindQueue(std::string_view name);
  Task* FindTask(uint64_t id);
  // A task made from `fields`, its payload's bytes in memory if the payload cache has
  // room for them (always without storage to read them back from), else only in storage.
  TaskPtr MakeTask(Task&& fields, std::string_view payload);
  // The same when the payload is not at hand (it is in storage and is not kept).
  TaskPtr MakeTaskWithoutPayload(Task&& fields, size_t payload_size);
  // A view of a task in memory, its payload read from storage if not in memory; false
  // (with `error`) when storage could not give it.
  bool View(const Task& task, bool with_token, TaskView& view, Error& error);
  Outcome<TaskView> ViewNow(const Task& task) {
    Outcome<TaskView> out;
    View(task, /*with_token=*/false, out.value, out.error);
    return out;
  }
  int64_t Now() const { return clock_.NowMs(); }
  int64_t Mono() const { return clock_.MonoMs(); }
  // The monotonic time at which the epoch time `epoch` comes (kNever stays kNever).
  int64_t MonoDue(int64_t epoch) const;
  int64_t EffectiveLeaseMs(const Task& task, int64_t requested) const;
  // A queue with no tasks and the default config is not listed, and is forgotten once no
  // waiter is parked on it either.
  static bool IsBare(const Queue& queue);
  // Paused by its config, or for a while (PauseQueue).
  bool Paused(const Queue& queue) const;
  void Grant(Task& task, int64_t lease_ms, std::string_view worker, int64_t now,
             bool journaled = true);
  void MaybeForget(Queue& queue);

  // Whether n new tasks may go into the queue: storage writable, the queue limit, the
  // capacity (taking n units of shared_.live_tasks when it says yes).
  Error AdmitNewTasks(std::string_view queue, size_t n);
  Task BuildTask(Queue& queue, const TaskSpec& spec, int64_t now);
  // An idempotency key already used in the queue: `out` is the first task's.
  bool FindDuplicate(Queue& queue, const TaskSpec& spec, EnqueuedTask& out);
  // The task that holds the spec's unique key now, if any.
  Task* UniqueHolder(Queue& queue, const TaskSpec& spec, int64_t now);
  // Debounce: the holder takes the spec's payload (and its run time, when it gives one).
  EnqueuedTask ReplacePayload(Task& holder, const TaskSpec& spec, int64_t now);
  void InsertTask(Queue& queue, const TaskSpec& spec, int64_t now, EnqueuedTask& out,
                  std::vector<uint64_t>& created);
  // A task not in memory: read from storage (finished, evicted). kNotFound without a
  // reader; kError when storage failed (then `error` says so).
  TaskReader::Result LoadStored(uint64_t id, StoredTask& out, Error& error);
  void Evict(const std::vector<uint64_t>& ids);
  void ArmPurge(Queue& queue);
  void PurgeDue(Queue& queue, int64_t now, size_t& budget);
  void PurgeFinished(Queue& queue, uint64_t id);
  // A finished task becomes live again (retry): its FIFO entry goes.
  void Unfinish(Queue& queue, int64_t finished_at, uint64_t id);
  // The task in memory, or else its stored record (finished) in `stored`.
  TaskReader::Result FindOrLoad(uint64_t id, Task*& task, StoredTask& stored, Error& error);
  // FindOrLoad for a command: false with `refused` set (404, or storage unreadable).
  template <typename T>
  bool Locate(uint64_t id, Task*& task, StoredTask& stored, Outcome<T>& refused);
  Task* Revive(StoredTask stored);
  // For a command on a leased task: the task when `token` is its current lease; else null
  // and `refused` says why (storage refusing changes, no such task, not this lease).
  Task* HeldTask(uint64_t id, std::string_view token, StoredTask& stored, Error& refused);
  // A finished task (in memory, or `stored` when it was read back) out of its finished
  // indexes, in memory again; the caller sets its next state.
  Task* Unfinished(Task* task, StoredTask& stored);
  Task* RetryDead(Task* task, StoredTask& stored);
  // Up to n scheduled tasks of the queue, earliest run time first (a walk of timers_).
  std::vector<Task*> EarliestScheduled(const Queue& queue, size_t n);
  void RunNow(Task& task);
  void Publish(const std::vector<uint64_t>& ids);
  void CountLive(TaskState from, TaskState to);
  void SetState(Task& task, TaskState state, int64_t now);
  void Kill(Task& task, DeadReason reason, int64_t now);
  void Rearm(Task& task);
  void Fire(Task& task, int64_t now);
  void ExpireLease(Task& task, int64_t now);
  // A task just finished: into its queue's purge FIFO, and (durable modes) out of memory
  // once its final state is durable.
  void OnFinished(Task& task);
  // A task not in memory that its queue still lists as finished: its stored record.
  TaskReader::Result LoadFinished(uint64_t id, StoredTask& out, Error& error);
  void AddError(Task& task, int64_t now, std::string_view message);
  std::string NewToken();

  // `bytes`: what the answer already holds (for --max-response-bytes).
  std::vector<Task*> LeaseNow(Queue& queue, uint32_t max, int64_t lease_ms, std::string_view worker,
                              int64_t now, bool* truncated, size_t bytes = 0,
                              bool journaled = true);
  static size_t LeasedBytes(const std::vector<Task*>& leased);
  LeaseResult BuildLeaseResult(const std::vector<Task*>& leased, bool truncated);
  // A granted lease taken back (its answer could not be made or delivered): ready again,
  // the attempt not counted.
  void Unlease(Task& task, int64_t now);
  // About what a task's JSON costs in an answer, to keep answers within
  // --max-response-bytes before they are built.
  static size_t AnswerBytes(const Task& task);
  static size_t AnswerBytes(const TaskView& task);
  struct LeaseWait {  // one parked lease, over one or more queues of this shard
    uint32_t max = 1;
    int64_t lease_ms = 0;
    int64_t deadline = 0;
    std::string worker;
    bool journaled = true;
    Callback<void(LeaseResult)> done;
    std::shared_ptr<LeaseClaim> claim;
    std::vector<std::pair<Queue*, std::list<uint64_t>::iterator>> entries;
  };
  void ParkLeaseWait(const std::vector<Queue*>& queues, LeaseRequest request,
                     Callback<void(LeaseResult)> done, uint64_t* waiter_id,
                     std::shared_ptr<LeaseClaim> claim);
  LeaseWait Unpark(uint64_t wait_id);
  Queue* MostUrgent(const std::vector<Queue*>& queues);
  void MarkReady(Queue& queue);
  void ServeWaiters();
  // While lease waits are parked on a queue that flow control holds back, a timer for the
  // moment it may let a task go (a token, a pause's end).
  void ArmFlow(Queue& queue);
  void FinishTaskWaiters(const Task& task);
  template <typename T>
  static Outcome<T> Fail(ErrorCode code, std::string message) {
    return Outcome<T>{Error{code, std::move(message)}, {}};
  }
  static Outcome<IdState> IdStateOf(const Task& task) { return Ok(IdState{task.id, task.state}); }

  const Clock& clock_;
  Journal& journal_;
  ServerWide& shared_;
  const Limits limits_;
  std::mt19937_64 random_;  // backoff jitter only
  SecureRandom tokens_;

  absl::flat_hash_map<std::string, std::unique_ptr<Queue>> queues_;
  absl::flat_hash_map<std::string, std::vector<std::string>> topics_;
  struct ScheduleState {
    ScheduleView view;
    std::optional<CronExpr> cron;
    absl::TimeZone zone;
  };
  // The tick after `after` (epoch ms), or kNever.
  static int64_t NextTick(const ScheduleState& s, int64_t after);
  void IndexSchedule(const ScheduleState& s, bool add);
  absl::flat_hash_map<std::string, ScheduleState> schedules_;
  absl::btree_set<std::pair<int64_t, std::string>> schedule_due_;  // unpaused: (next_at, name)
  Queue* restoring_ = nullptr;  // the queue of the task restored last (restores come in runs)
  // Every task in memory: unfinished ones, and finished ones until their final state is
  // durable. One created but not yet durable (!published) is in no index and seen by no
  // call: no dirty reads.
  TaskTable tasks_;
  uint64_t generation_ = 0;  // bumped by Reset(): publications of older tasks are void
  size_t live_tasks_ = 0;    // this shard's share of shared_.live_tasks
  // (monotonic due, task id): one entry per unfinished task with a pending timer.
  absl::btree_set<std::pair<int64_t, uint64_t>> timers_;
  // (monotonic due, queue): when the head of a queue's finished FIFO is due for purge.
  absl::btree_set<std::pair<int64_t, Queue*>> purge_timers_;
  // (monotonic due, queue): flow timers (ArmFlow).
  absl::btree_set<std::pair<int64_t, Queue*>> flow_timers_;
  // The ends of timed pauses (monotonic), one entry per paused queue.
  absl::btree_set<std::pair<int64_t, Queue*>> pause_timers_;
  TaskReader* reader_ = nullptr;
  std::vector<uint64_t> finished_this_command_;
  bool timers_held_ = false;
  bool draining_ = false;  // due timers left for later (slice full, journal refusing)

  uint64_t next_waiter_id_ = 1;
  absl::flat_hash_map<uint64_t, LeaseWait> lease_waiters_;
  absl::flat_hash_map<uint64_t, TaskWaiter> task_waiters_;
  absl::flat_hash_map<uint64_t, std::vector<uint64_t>> task_waiters_by_task_;
  // (monotonic deadline, waiter id) for both kinds of waiters.
  absl::btree_set<std::pair<int64_t, uint64_t>> waiter_deadlines_;
  std::vector<Queue*> queues_with_new_ready_;
};

}  // namespace conveyor
