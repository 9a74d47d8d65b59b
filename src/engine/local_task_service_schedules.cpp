// LocalTaskService, schedules: the schedule commands on each schedule's shard, and the
// firing of one due tick in three steps, as a topic event's publish: claim the tick on the
// schedule's shard, stage its task on the queue's shard, then journal the task with the
// schedule's next tick in one batch on the schedule's shard and publish (or discard) it.
// After a crash either both are in storage or neither: a tick enqueues exactly once.
#include <algorithm>
#include <iostream>

#include "engine/local_task_service.h"

namespace conveyor {
namespace {

template <typename T>
using Awaitable = boost::asio::awaitable<T>;
using Out = Outcome<ScheduleView>;

}  // namespace

Awaitable<Out> LocalTaskService::SetSchedule(std::string name, ScheduleSpec spec) {
  Shard& shard = shards_.ForQueue(name);
  auto notify = schedule_changed_;
  auto command = [name = std::move(name), spec = std::move(spec), notify](
                     Shard& s, Completion<Out> done) mutable {
    Out out = s.engine().SetSchedule(name, std::move(spec));
    if (out.error.ok() && notify) notify(s.index());
    ReplyWhenDurable(s, std::move(out), std::move(done));
  };
  co_return co_await CallShard<Out>(shard, std::move(command));
}

Awaitable<Out> LocalTaskService::GetSchedule(std::string name) {
  Shard& shard = shards_.ForQueue(name);
  auto command = [name = std::move(name)](Shard& s, Completion<Out> done) {
    done(s.engine().GetSchedule(name));
  };
  co_return co_await CallShard<Out>(shard, std::move(command));
}

Awaitable<std::vector<ScheduleView>> LocalTaskService::ListSchedules() {
  using Part = std::vector<ScheduleView>;
  using Fn = std::function<void(Shard&, Completion<Part>)>;
  std::vector<std::pair<Shard*, Fn>> calls;
  for (size_t i = 0; i < shards_.size(); ++i) {
    calls.emplace_back(&shards_.at(i),
                       [](Shard& s, Completion<Part> done) { done(s.engine().Schedules()); });
  }
  std::vector<Part> parts = co_await CallShards<Part>(std::move(calls));
  std::vector<ScheduleView> all;
  for (auto& part : parts) {
    for (auto& s : part) all.push_back(std::move(s));
  }
  std::sort(all.begin(), all.end(),
            [](const ScheduleView& a, const ScheduleView& b) { return a.name < b.name; });
  co_return all;
}

Awaitable<Out> LocalTaskService::PauseSchedule(std::string name, bool paused) {
  Shard& shard = shards_.ForQueue(name);
  auto notify = schedule_changed_;
  auto command = [name = std::move(name), paused, notify](Shard& s, Completion<Out> done) {
    Out out = s.engine().PauseSchedule(name, paused);
    if (out.error.ok() && notify) notify(s.index());
    ReplyWhenDurable(s, std::move(out), std::move(done));
  };
  co_return co_await CallShard<Out>(shard, std::move(command));
}

Awaitable<Error> LocalTaskService::DeleteSchedule(std::string name) {
  Shard& shard = shards_.ForQueue(name);
  auto notify = schedule_changed_;
  auto command = [name = std::move(name), notify](Shard& s, Completion<Error> done) {
    Error e = s.engine().DeleteSchedule(name);
    if (!e.ok()) {
      done(std::move(e));
      return;
    }
    if (notify) notify(s.index());
    s.journal().WhenDurable(std::move(done));
  };
  co_return co_await CallShard<Error>(shard, std::move(command));
}

Awaitable<bool> LocalTaskService::FireDueSchedule(size_t shard_index, int64_t started_at) {
  Shard& home = shards_.at(shard_index);
  using Claim = std::optional<std::pair<ScheduleFire, TaskSpec>>;
  auto claim_fn = [started_at](Shard& s, Completion<Claim> done) {
    done(s.engine().DueSchedule(started_at));
  };
  Claim claim = co_await CallShard<Claim>(home, std::move(claim_fn));
  if (!claim) co_return false;
  ScheduleFire fire = std::move(claim->first);

  // 1. Stage the tick's task on its queue's shard (invisible, not journaled).
  Shard& queue_shard = shards_.ForQueue(fire.queue);
  auto stage_fn = [queue = fire.queue, spec = std::move(claim->second)](
                      Shard& s, Completion<StageResult> done) {
    std::vector<TaskSpec> specs;
    specs.push_back(spec);
    done(s.engine().Stage(queue, specs));
  };
  StageResult staged = co_await CallShard<StageResult>(queue_shard, std::move(stage_fn));
  if (!staged.error.ok()) {
    std::cerr << "conveyor: schedule " << fire.name << ": the tick's task could not be made ("
              << staged.error.message << "); the tick is skipped" << std::endl;
  }
  std::vector<uint64_t> ids;
  for (const StagedTask& t : staged.staged) ids.push_back(t.record.id);

  // 2. The task and the schedule's next tick in one batch on the schedule's shard.
  auto commit_fn = [fire, records = std::move(staged.staged)](Shard& s,
                                                              Completion<Error> done) mutable {
    if (Error e = s.engine().CommitScheduleFire(fire, records); !e.ok()) {
      done(std::move(e));
      return;
    }
    s.journal().WhenDurable(std::move(done));
  };
  Error committed = co_await CallShard<Error>(home, std::move(commit_fn));

  // 3. Visible, or taken back.
  if (!ids.empty()) {
    const bool keep = committed.ok();
    auto finish_fn = [ids = std::move(ids), keep](Shard& s, Completion<bool> done) {
      if (keep) {
        s.engine().PublishStaged(ids);
      } else {
        s.engine().DiscardStaged(ids);
      }
      done(true);
    };
    co_await CallShard<bool>(queue_shard, std::move(finish_fn));
  }
  co_return true;
}

}  // namespace conveyor
