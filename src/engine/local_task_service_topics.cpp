// LocalTaskService, topics: the subscriber lists on each topic's shard, and the publish of
// an event in three steps over the shards (stage on every subscriber queue's shard,
// journal them all in one batch on the topic's shard, then publish or discard on each
// shard). See engine_topics.cpp for why this is all-or-none across a crash.
#include <map>

#include "engine/local_task_service.h"

namespace conveyor {
namespace {

template <typename T>
using Awaitable = boost::asio::awaitable<T>;
using Names = std::vector<std::string>;

}  // namespace

Awaitable<Outcome<Names>> LocalTaskService::SetTopic(std::string topic, Names queues) {
  Shard& shard = shards_.ForQueue(topic);
  auto command = [topic = std::move(topic), queues = std::move(queues)](
                     Shard& s, Completion<Outcome<Names>> done) mutable {
    ReplyWhenDurable(s, s.engine().SetTopic(topic, std::move(queues)), std::move(done));
  };
  co_return co_await CallShard<Outcome<Names>>(shard, std::move(command));
}

Awaitable<Outcome<Names>> LocalTaskService::GetTopic(std::string topic) {
  Shard& shard = shards_.ForQueue(topic);
  auto command = [topic = std::move(topic)](Shard& s, Completion<Outcome<Names>> done) {
    done(s.engine().GetTopic(topic));
  };
  co_return co_await CallShard<Outcome<Names>>(shard, std::move(command));
}

Awaitable<Error> LocalTaskService::DeleteTopic(std::string topic) {
  Shard& shard = shards_.ForQueue(topic);
  auto command = [topic = std::move(topic)](Shard& s, Completion<Error> done) {
    Error e = s.engine().DeleteTopic(topic);
    if (!e.ok()) {
      done(std::move(e));
      return;
    }
    s.journal().WhenDurable(std::move(done));
  };
  co_return co_await CallShard<Error>(shard, std::move(command));
}

Awaitable<std::vector<TopicView>> LocalTaskService::ListTopics() {
  using Part = std::vector<std::pair<std::string, Names>>;
  using Fn = std::function<void(Shard&, Completion<Part>)>;
  std::vector<std::pair<Shard*, Fn>> calls;
  for (size_t i = 0; i < shards_.size(); ++i) {
    calls.emplace_back(&shards_.at(i),
                       [](Shard& s, Completion<Part> done) { done(s.engine().Topics()); });
  }
  std::vector<Part> parts = co_await CallShards<Part>(std::move(calls));
  std::vector<TopicView> all;
  for (auto& part : parts) {
    for (auto& [name, queues] : part) all.push_back(TopicView{name, std::move(queues)});
  }
  std::sort(all.begin(), all.end(),
            [](const TopicView& a, const TopicView& b) { return a.name < b.name; });
  co_return all;
}

Awaitable<PublishResult> LocalTaskService::Publish(std::string topic, std::vector<TaskSpec> specs) {
  PublishResult out;
  Shard& topic_shard = shards_.ForQueue(topic);
  auto get = [topic](Shard& s, Completion<Outcome<Names>> done) {
    done(s.engine().GetTopic(topic));
  };
  Outcome<Names> subscribers = co_await CallShard<Outcome<Names>>(topic_shard, std::move(get));
  if (!subscribers.error.ok()) {
    out.error = std::move(subscribers.error);
    co_return out;
  }
  out.queues = std::move(subscribers.value);
  // Each subscriber keeps its own copy of every payload, all in one commit: bounded like
  // the commit backlog, so that one event cannot grow past what a shard may hold pending.
  size_t bytes = 0;
  for (const TaskSpec& spec : specs) bytes += spec.payload.size() + 256;
  const size_t limit = topic_shard.engine().limits().max_commit_backlog_bytes;
  if (bytes > limit / out.queues.size()) {
    out.error =
        Error{ErrorCode::kBodyTooLarge,
              "the event would store " + std::to_string(bytes * out.queues.size()) +
                  " bytes in its " + std::to_string(out.queues.size()) +
                  " subscribers, over --max-commit-backlog-bytes (" + std::to_string(limit) + ")"};
    co_return out;
  }

  // 1. Stage: each shard makes its queues' tasks (invisible, not journaled).
  std::map<size_t, std::vector<size_t>> by_shard;  // shard -> positions in out.queues
  for (size_t i = 0; i < out.queues.size(); ++i) {
    by_shard[shards_.ForQueue(out.queues[i]).index()].push_back(i);
  }
  auto shared_specs = std::make_shared<const std::vector<TaskSpec>>(std::move(specs));
  using Staged = std::vector<StageResult>;
  using StageFn = std::function<void(Shard&, Completion<Staged>)>;
  std::vector<std::pair<Shard*, StageFn>> stage_calls;
  for (const auto& [shard, positions] : by_shard) {
    Names names;
    for (size_t p : positions) names.push_back(out.queues[p]);
    stage_calls.emplace_back(&shards_.at(shard),
                             [names, shared_specs](Shard& s, Completion<Staged> done) {
                               Staged results;
                               for (const std::string& q : names)
                                 results.push_back(s.engine().Stage(q, *shared_specs));
                               done(std::move(results));
                             });
  }
  std::vector<Staged> staged = co_await CallShards<Staged>(std::move(stage_calls));

  out.tasks.resize(out.queues.size());
  std::vector<StagedTask> records;
  std::vector<std::pair<size_t, std::vector<uint64_t>>> ids;  // shard -> its staged ids
  size_t part = 0;
  for (const auto& [shard, positions] : by_shard) {
    std::vector<uint64_t> mine;
    for (size_t k = 0; k < positions.size(); ++k) {
      StageResult& r = staged[part][k];
      if (!r.error.ok() && out.error.ok()) out.error = r.error;
      out.tasks[positions[k]] = std::move(r.tasks);
      for (StagedTask& t : r.staged) {
        mine.push_back(t.record.id);
        records.push_back(std::move(t));
      }
    }
    ids.emplace_back(shard, std::move(mine));
    ++part;
  }

  // 2. One batch on the topic's shard for all of them (when nothing failed so far).
  // Even with no new record (every spec a duplicate) the journal is asked: a duplicate of
  // an event still being committed is answered only once that one is durable.
  Error committed = out.error;
  if (committed.ok()) {
    auto journal = [records = std::move(records)](Shard& s, Completion<Error> done) mutable {
      if (Error e = s.engine().JournalStaged(records); !e.ok()) {
        done(std::move(e));
        return;
      }
      s.journal().WhenDurable([done = std::move(done)](Error e) mutable {
        if (!e.ok() && e.code != ErrorCode::kStorageTimeout) {
          e = Error{ErrorCode::kStorageUnavailable, e.message};
        }
        done(std::move(e));
      });
    };
    committed = co_await CallShard<Error>(topic_shard, std::move(journal));
  }

  // 3. Visible everywhere, or taken back everywhere.
  using Done = bool;
  using FinishFn = std::function<void(Shard&, Completion<Done>)>;
  std::vector<std::pair<Shard*, FinishFn>> finish_calls;
  const bool keep = committed.ok();
  for (auto& entry : ids) {
    if (entry.second.empty()) continue;
    finish_calls.emplace_back(&shards_.at(entry.first), [mine = std::move(entry.second), keep](
                                                            Shard& s, Completion<Done> done) {
      if (keep) {
        s.engine().PublishStaged(mine);
      } else {
        s.engine().DiscardStaged(mine);
      }
      done(true);
    });
  }
  co_await CallShards<Done>(std::move(finish_calls));
  if (!keep) {
    out.error = committed;
    out.tasks.clear();
  }
  co_return out;
}

}  // namespace conveyor
