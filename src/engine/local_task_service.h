// LocalTaskService: the TaskService of one process — every command runs on the shard that
// owns its queue or task (CallShard), and state-changing answers wait for that shard's
// journal (ReplyWhenDurable). A lease over queues of several shards first asks each shard
// for its most urgent ready task and leases from the best; when it must wait it parks on
// every shard with one shared LeaseClaim, so that exactly one shard grants it and the
// others are cancelled. Shared by all I/O threads; holds no mutable state of its own.
#pragma once

#include "engine/shard_set.h"
#include "engine/task_service.h"

namespace conveyor {

class LocalTaskService final : public TaskService {
 public:
  explicit LocalTaskService(ShardSet& shards) : shards_(shards) {}

  Awaitable<EnqueueResult> Enqueue(std::string queue, std::vector<TaskSpec> specs) override;
  Awaitable<LeaseResult> Lease(LeaseCommand command, WaitSlot wait) override;
  void ReleaseUndelivered(std::vector<LeaseGrant> grants) override;
  Awaitable<Outcome<IdState>> Defer(uint64_t id, std::string token, int64_t delay_ms) override;
  Awaitable<Outcome<uint32_t>> ExpireLeasesOf(std::string queue, std::string worker,
                                              std::string message) override;
  Awaitable<Outcome<IdState>> Ack(AckCall call) override;
  Awaitable<std::vector<Error>> AckMany(std::vector<AckCall> calls) override;
  Awaitable<Outcome<IdState>> Nack(uint64_t id, NackCall call) override;
  Awaitable<Outcome<int64_t>> Extend(uint64_t id, ExtendCall call) override;
  Awaitable<Outcome<IdState>> Cancel(uint64_t id) override;
  Awaitable<Outcome<IdState>> Retry(uint64_t id) override;
  Awaitable<Outcome<IdState>> Release(uint64_t id, std::string token, int32_t priority,
                                      int64_t delay_ms) override;
  Awaitable<Outcome<IdState>> Bury(uint64_t id, std::string token, int32_t priority) override;
  Awaitable<Outcome<uint32_t>> Kick(std::string queue, uint32_t bound) override;
  Awaitable<Outcome<IdState>> KickTask(uint64_t id) override;
  Awaitable<Outcome<TaskView>> Peek(std::string queue, TaskState state) override;
  Awaitable<Outcome<IdState>> Delete(uint64_t id, std::string token) override;
  Awaitable<LeaseResult> LeaseTask(uint64_t id, LeaseRequest request) override;
  Awaitable<Error> PauseQueue(std::string queue, int64_t delay_ms, bool create) override;
  Awaitable<Outcome<TaskView>> Get(uint64_t id, int64_t wait_ms, WaitSlot wait) override;
  Awaitable<Outcome<TaskPage>> List(std::string queue, std::optional<TaskState> state, size_t limit,
                                    uint64_t after) override;
  Awaitable<QueueSnapshot> QueueStats(std::string queue) override;
  Awaitable<std::vector<QueueSnapshot>> AllQueueStats() override;
  Awaitable<Outcome<QueueConfig>> Configure(std::string queue, QueueConfigPatch patch) override;
  Awaitable<bool> StorageWritable() override;
  Awaitable<Outcome<BulkResult>> RetryDeadTasks(std::string queue, uint64_t limit) override;
  Awaitable<Outcome<BulkResult>> PurgeTasks(std::string queue, TaskState state,
                                            uint64_t limit) override;
  Awaitable<Error> DeleteQueue(std::string queue) override;
  // local_task_service_topics.cpp
  Awaitable<Outcome<std::vector<std::string>>> SetTopic(std::string topic,
                                                        std::vector<std::string> queues) override;
  Awaitable<Outcome<std::vector<std::string>>> GetTopic(std::string topic) override;
  Awaitable<Error> DeleteTopic(std::string topic) override;
  Awaitable<std::vector<TopicView>> ListTopics() override;
  Awaitable<PublishResult> Publish(std::string topic, std::vector<TaskSpec> specs) override;
  // local_task_service_schedules.cpp
  Awaitable<Outcome<ScheduleView>> SetSchedule(std::string name, ScheduleSpec spec) override;
  Awaitable<Outcome<ScheduleView>> GetSchedule(std::string name) override;
  Awaitable<std::vector<ScheduleView>> ListSchedules() override;
  Awaitable<Outcome<ScheduleView>> PauseSchedule(std::string name, bool paused) override;
  Awaitable<Error> DeleteSchedule(std::string name) override;
  // The Scheduler: enqueues one tick due on `shard` (false when none was due), its task
  // and the schedule's next tick in one durable commit. Ticks before `started_at` (epoch
  // ms) follow their catch_up rule.
  Awaitable<bool> FireDueSchedule(size_t shard, int64_t started_at);
  // Called (on the schedule's shard thread) when a schedule of that shard changed, so the
  // Scheduler looks at its next tick again.
  void OnScheduleChange(std::function<void(size_t shard)> notify) {
    schedule_changed_ = std::move(notify);
  }
  ServiceGauges Gauges() const override;

 private:
  Awaitable<LeaseResult> LeaseOnShard(Shard& shard, std::vector<std::string> queues,
                                      LeaseRequest request, WaitSlot wait);
  Awaitable<LeaseResult> LeaseAcrossShards(
      std::vector<std::pair<Shard*, std::vector<std::string>>> parts, LeaseRequest request,
      WaitSlot wait);

  ShardSet& shards_;
  std::function<void(size_t)> schedule_changed_;
};

}  // namespace conveyor
