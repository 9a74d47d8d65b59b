// Engine, part 5: topics (fan-out). A topic's subscriber list is owned by the topic's shard
// (the shard of its name, like a queue's). An event's tasks are made on each subscriber
// queue's shard as staged (unpublished, not journaled there: Stage), journaled all
// together by the topic's shard (JournalStaged: one batch, one durable commit, so after a
// crash an event is in every subscriber or in none), then published on each shard
// (PublishStaged) or, when that commit failed, taken back (DiscardStaged). On the
// shard's thread, like the rest of Engine.
#include <algorithm>

#include "common/absl_view.h"
#include "engine/engine.h"
#include "engine/queue_name.h"

namespace conveyor {
namespace {

constexpr size_t kMaxSubscribers = 100;

// The fields a task record holds, copied for another shard's journal.
Task RecordOf(const Task& t) {
  Task r;
  r.id = t.id;
  r.created_at = t.created_at;
  r.run_at = t.run_at;
  r.ready_at = t.ready_at;
  r.priority = t.priority;
  r.attempts = t.attempts;
  r.max_attempts = t.max_attempts;
  r.payload_size = t.payload_size;
  r.payload_kind = t.payload_kind;
  r.state = t.state;
  r.dead_reason = t.dead_reason;
  r.set_deadline(t.deadline());
  r.set_lease_ms(t.lease_ms());
  r.set_finished_at(t.finished_at());
  if (!t.idempotency_key().empty()) r.cold().idempotency_key = t.idempotency_key();
  return r;
}

}  // namespace

Outcome<std::vector<std::string>> Engine::SetTopic(std::string_view topic,
                                                   std::vector<std::string> queues) {
  Tick();
  if (!journal_.writable()) return {StorageDown(), {}};
  std::sort(queues.begin(), queues.end());
  queues.erase(std::unique(queues.begin(), queues.end()), queues.end());
  if (queues.empty() || queues.size() > kMaxSubscribers) {
    return Fail<std::vector<std::string>>(ErrorCode::kInvalidField,
                                          "queues must name 1 to 100 queues");
  }
  for (const std::string& q : queues) {
    if (!IsValidQueueName(q)) {
      return Fail<std::vector<std::string>>(
          ErrorCode::kInvalidField,
          "queues: '" + q.substr(0, 64) + "' is not a queue name ([A-Za-z0-9._-], 1-128)");
    }
  }
  auto it = topics_.find(AbslView(topic));
  if (it == topics_.end() && topics_.size() >= limits_.max_queues) {
    return {TooManyQueues(), {}};
  }
  journal_.TopicChanged(topic, queues);
  topics_[std::string(topic)] = queues;
  return Ok(std::move(queues));
}

Outcome<std::vector<std::string>> Engine::GetTopic(std::string_view topic) const {
  auto it = topics_.find(AbslView(topic));
  if (it == topics_.end()) {
    return Fail<std::vector<std::string>>(ErrorCode::kNotFound, "no such topic");
  }
  return Ok(it->second);
}

Error Engine::DeleteTopic(std::string_view topic) {
  Tick();
  if (!journal_.writable()) return StorageDown();
  auto it = topics_.find(AbslView(topic));
  if (it == topics_.end()) return Error{ErrorCode::kNotFound, "no such topic"};
  journal_.TopicChanged(topic, {});
  topics_.erase(it);
  return {};
}

std::vector<std::pair<std::string, std::vector<std::string>>> Engine::Topics() const {
  std::vector<std::pair<std::string, std::vector<std::string>>> out(topics_.begin(), topics_.end());
  return out;
}

void Engine::RestoreTopic(std::string_view topic, std::vector<std::string> queues) {
  topics_[std::string(topic)] = std::move(queues);
}

StageResult Engine::Stage(std::string_view queue_name, const std::vector<TaskSpec>& specs) {
  Tick();
  StageResult result;
  if (Error e = AdmitNewTasks(queue_name, specs.size()); !e.ok()) {
    result.error = std::move(e);
    return result;
  }
  const int64_t now = Now();
  Queue& queue = GetOrCreateQueue(queue_name);
  result.tasks.resize(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    if (FindDuplicate(queue, specs[i], result.tasks[i])) {
      shared_.live_tasks.Give();
      continue;
    }
    if (Task* holder = UniqueHolder(queue, specs[i], now)) {  // (an event never replaces)
      result.tasks[i] = EnqueuedTask{holder->id, holder->state, true};
      shared_.live_tasks.Give();
      continue;
    }
    Task t = BuildTask(queue, specs[i], now);
    result.staged.push_back(StagedTask{RecordOf(t), queue.name(), specs[i].payload, specs[i].key});
    Task& task = tasks_.Insert(MakeTask(std::move(t), specs[i].payload));
    queue.AddUnpublished();
    result.tasks[i] = EnqueuedTask{task.id, task.state, false};
  }
  return result;
}

Error Engine::JournalStaged(const std::vector<StagedTask>& staged) {
  if (!journal_.writable()) return StorageDown();
  // The records name their queue through Task::queue; these stand-ins carry the names
  // (the real queues belong to other shards' threads).
  absl::flat_hash_map<std::string, std::unique_ptr<Queue>> names;
  KeyState key;  // the same for the key's name
  for (const StagedTask& s : staged) {
    auto& queue = names[s.queue];
    if (!queue) queue = std::make_unique<Queue>(s.queue, clock_);
    Task& record = const_cast<Task&>(s.record);
    record.queue = queue.get();
    key.name = s.key;
    record.key = s.key.empty() ? nullptr : &key;
    journal_.TaskCreated(record, s.payload);
    record.queue = nullptr;
    record.key = nullptr;
  }
  return {};
}

void Engine::DiscardStaged(const std::vector<uint64_t>& ids) {
  for (uint64_t id : ids) {
    Task* task = tasks_.Find(id);
    if (task == nullptr || task->published) continue;  // reloaded meanwhile, or published
    Queue& queue = *task->queue;
    queue.RemoveUnpublished();
    queue.totals().enqueued--;
    if (!task->idempotency_key().empty()) {
      auto it = queue.idempotency().find(task->idempotency_key());
      if (it != queue.idempotency().end() && it->second == id) queue.idempotency().erase(it);
    }
    if (IsFinished(task->state)) {
      queue.totals().dead--;  // dead at once: BuildTask's live count was already given back
    } else {
      --live_tasks_;
      shared_.live_tasks.Give();
    }
    tasks_.Erase(id);
    MaybeForget(queue);
  }
}

}  // namespace conveyor
