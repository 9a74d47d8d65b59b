#include "engine/local_task_service.h"

#include <map>

namespace conveyor {
namespace {

template <typename T>
using Awaitable = boost::asio::awaitable<T>;

// Every command below is a named lambda moved into CallShard: GCC 12 frees a lambda
// temporary written inside a co_await expression twice (heap corruption at run time).

// The parked waits of one call: (shard, waiter id) pairs. Ids are written and read on
// their shard's thread only; the list itself is built and cancelled on the caller's.
class ShardWaits final : public WaitHandle {
 public:
  std::shared_ptr<uint64_t> Add(Shard& shard) {
    parts_.emplace_back(&shard, std::make_shared<uint64_t>(0));
    return parts_.back().second;
  }
  void Cancel() override {
    for (auto& [shard, id] : parts_) CancelOn(*shard, id);
  }
  static void CancelOn(Shard& shard, std::shared_ptr<uint64_t> id) {
    boost::asio::post(shard.io(), [&shard, id] {
      if (*id != 0) shard.engine().CancelWaiter(*id);
      shard.AfterCommand();
    });
  }
  const std::vector<std::pair<Shard*, std::shared_ptr<uint64_t>>>& parts() const { return parts_; }

 private:
  std::vector<std::pair<Shard*, std::shared_ptr<uint64_t>>> parts_;
};

template <typename R>
void Durable(Shard& s, R reply, Completion<R> done) {
  ReplyWhenDurable(s, std::move(reply), std::move(done));
}

}  // namespace

Awaitable<EnqueueResult> LocalTaskService::Enqueue(std::string queue, std::vector<TaskSpec> specs) {
  Shard& shard = shards_.ForQueue(queue);
  auto command = [queue = std::move(queue), specs = std::move(specs)](
                     Shard& s, Completion<EnqueueResult> done) mutable {
    Durable(s, s.engine().Enqueue(queue, std::move(specs)), std::move(done));
  };
  co_return co_await CallShard<EnqueueResult>(shard, std::move(command));
}

Awaitable<LeaseResult> LocalTaskService::Lease(LeaseCommand command, WaitSlot wait) {
  std::map<size_t, std::vector<std::string>> by_shard;
  for (auto& q : command.queues) by_shard[shards_.ForQueue(q).index()].push_back(std::move(q));
  if (by_shard.size() <= 1) {
    Shard& shard = by_shard.empty() ? shards_.at(0) : shards_.at(by_shard.begin()->first);
    std::vector<std::string> queues =
        by_shard.empty() ? std::vector<std::string>{} : std::move(by_shard.begin()->second);
    co_return co_await LeaseOnShard(shard, std::move(queues), std::move(command.request), wait);
  }
  std::vector<std::pair<Shard*, std::vector<std::string>>> parts;
  for (auto& [index, queues] : by_shard) parts.emplace_back(&shards_.at(index), std::move(queues));
  co_return co_await LeaseAcrossShards(std::move(parts), std::move(command.request), wait);
}

Awaitable<LeaseResult> LocalTaskService::LeaseOnShard(Shard& shard, std::vector<std::string> queues,
                                                      LeaseRequest request, WaitSlot wait) {
  auto waits = std::make_shared<ShardWaits>();
  std::shared_ptr<uint64_t> id = waits->Add(shard);
  if (wait && request.wait_ms > 0) *wait = waits;
  auto command = [queues = std::move(queues), request = std::move(request), id](
                     Shard& s, Completion<LeaseResult> done) mutable {
    s.engine().LeaseAny(queues, std::move(request), std::move(done), id.get());
  };
  co_return co_await CallShard<LeaseResult>(shard, std::move(command));
}

Awaitable<LeaseResult> LocalTaskService::LeaseAcrossShards(
    std::vector<std::pair<Shard*, std::vector<std::string>>> parts, LeaseRequest request,
    WaitSlot wait) {
  using Peek = std::optional<ReadyKey>;
  using PeekFn = std::function<void(Shard&, Completion<Peek>)>;
  // 1. Which shard holds the most urgent ready task among all the queues?
  std::vector<std::pair<Shard*, PeekFn>> peeks;
  for (auto& part : parts) {
    peeks.emplace_back(part.first, [queues = part.second](Shard& s, Completion<Peek> done) {
      done(s.engine().BestReady(queues));
    });
  }
  std::vector<Peek> best = co_await CallShards<Peek>(std::move(peeks));
  size_t pick = parts.size();
  for (size_t i = 0; i < best.size(); ++i) {
    if (best[i] && (pick == parts.size() || *best[i] < *best[pick])) pick = i;
  }
  if (pick != parts.size()) {
    LeaseRequest now = request;
    now.wait_ms = 0;
    LeaseResult got = co_await LeaseOnShard(*parts[pick].first, parts[pick].second, now, nullptr);
    if (!got.tasks.empty() || !got.error.ok() || request.wait_ms <= 0) co_return got;
  } else if (request.wait_ms <= 0) {
    co_return LeaseResult{};
  }
  // 2. Park on every shard; the claim lets exactly one of them grant. The winner cancels
  // the others' waits, which then answer empty.
  auto claim = std::make_shared<LeaseClaim>();
  auto waits = std::make_shared<ShardWaits>();
  for (auto& part : parts) waits->Add(*part.first);
  if (wait) *wait = waits;
  using LeaseFn = std::function<void(Shard&, Completion<LeaseResult>)>;
  std::vector<std::pair<Shard*, LeaseFn>> calls;
  for (size_t i = 0; i < parts.size(); ++i) {
    std::shared_ptr<uint64_t> id = waits->parts()[i].second;
    calls.emplace_back(parts[i].first, [queues = parts[i].second, request, claim, waits, id](
                                           Shard& s, Completion<LeaseResult> done) mutable {
      auto on_answer = [waits, self = &s, done = std::move(done)](LeaseResult r) mutable {
        if (!r.tasks.empty()) {
          for (auto& [shard, other] : waits->parts()) {
            if (shard != self) ShardWaits::CancelOn(*shard, other);
          }
        }
        done(std::move(r));
      };
      s.engine().LeaseAny(queues, std::move(request), std::move(on_answer), id.get(), claim);
    });
  }
  std::vector<LeaseResult> answers = co_await CallShards<LeaseResult>(std::move(calls));
  LeaseResult merged;
  for (LeaseResult& r : answers) {
    if (!r.tasks.empty()) co_return std::move(r);  // at most one shard granted
    if (!r.error.ok() && merged.error.ok()) merged.error = std::move(r.error);
  }
  co_return merged;
}

void LocalTaskService::ReleaseUndelivered(std::vector<LeaseGrant> grants) {
  std::map<size_t, std::vector<LeaseGrant>> by_shard;
  for (auto& g : grants) by_shard[shards_.ForTask(g.id).index()].push_back(std::move(g));
  for (auto& entry : by_shard) {
    Shard& shard = shards_.at(entry.first);
    boost::asio::post(shard.io(), [&shard, part = std::move(entry.second)] {
      shard.engine().ReleaseUndelivered(part);
      shard.AfterCommand();
    });
  }
}

Awaitable<Outcome<IdState>> LocalTaskService::Ack(AckCall call) {
  Shard& shard = shards_.ForTask(call.id);
  auto command = [call = std::move(call)](Shard& s, Completion<Outcome<IdState>> done) mutable {
    Durable(s, s.engine().Ack(call.id, call.token, std::move(call.result)), std::move(done));
  };
  co_return co_await CallShard<Outcome<IdState>>(shard, std::move(command));
}

Awaitable<std::vector<Error>> LocalTaskService::AckMany(std::vector<AckCall> calls) {
  std::map<size_t, std::vector<size_t>> by_shard;
  for (size_t i = 0; i < calls.size(); ++i) {
    by_shard[shards_.ForTask(calls[i].id).index()].push_back(i);
  }
  using Errors = std::vector<Error>;
  using Command = std::function<void(Shard&, Completion<Errors>)>;
  std::vector<std::pair<Shard*, Command>> commands;
  for (auto& [shard_index, positions] : by_shard) {
    std::vector<AckCall> subset;
    for (size_t i : positions) subset.push_back(std::move(calls[i]));
    Command command = [subset = std::move(subset)](Shard& s, Completion<Errors> done) mutable {
      Errors errors;
      for (AckCall& call : subset) {
        errors.push_back(s.engine().Ack(call.id, call.token, std::move(call.result)).error);
      }
      s.journal().WhenDurable(
          [errors = std::move(errors), done = std::move(done)](Error e) mutable {
            if (!e.ok()) {
              for (Error& err : errors) {
                if (err.ok()) err = Error{e.code, e.message};
              }
            }
            done(std::move(errors));
          });
    };
    commands.emplace_back(&shards_.at(shard_index), std::move(command));
  }
  std::vector<Errors> answers = co_await CallShards<Errors>(std::move(commands));
  std::vector<Error> outcomes(calls.size());
  size_t k = 0;
  for (auto& [shard_index, positions] : by_shard) {
    for (size_t j = 0; j < positions.size(); ++j) outcomes[positions[j]] = std::move(answers[k][j]);
    ++k;
  }
  co_return outcomes;
}

Awaitable<Outcome<IdState>> LocalTaskService::Nack(uint64_t id, NackCall call) {
  auto command = [id, call = std::move(call)](Shard& s, Completion<Outcome<IdState>> done) mutable {
    Durable(s,
            s.engine().Nack(id, call.token, call.message, call.retry_in_ms, call.dead,
                            NackHold{call.retry_at, call.pause_key_ms}),
            std::move(done));
  };
  co_return co_await CallShard<Outcome<IdState>>(shards_.ForTask(id), std::move(command));
}

Awaitable<Outcome<int64_t>> LocalTaskService::Extend(uint64_t id, ExtendCall call) {
  // An extend need not wait for fsync (SPEC.md, Durability).
  auto command = [id, call = std::move(call)](Shard& s, Completion<Outcome<int64_t>> done) mutable {
    done(s.engine().Extend(id, call.token, call.lease_ms, std::move(call.progress)));
  };
  co_return co_await CallShard<Outcome<int64_t>>(shards_.ForTask(id), std::move(command));
}

Awaitable<Outcome<IdState>> LocalTaskService::Cancel(uint64_t id) {
  auto command = [id](Shard& s, Completion<Outcome<IdState>> done) {
    Durable(s, s.engine().Cancel(id), std::move(done));
  };
  co_return co_await CallShard<Outcome<IdState>>(shards_.ForTask(id), std::move(command));
}

Awaitable<Outcome<IdState>> LocalTaskService::Retry(uint64_t id) {
  auto command = [id](Shard& s, Completion<Outcome<IdState>> done) {
    Durable(s, s.engine().Retry(id), std::move(done));
  };
  co_return co_await CallShard<Outcome<IdState>>(shards_.ForTask(id), std::move(command));
}

Awaitable<Outcome<IdState>> LocalTaskService::Defer(uint64_t id, std::string token,
                                                    int64_t delay_ms) {
  auto command = [id, token = std::move(token), delay_ms](Shard& s,
                                                          Completion<Outcome<IdState>> done) {
    Durable(s, s.engine().Defer(id, token, delay_ms), std::move(done));
  };
  co_return co_await CallShard<Outcome<IdState>>(shards_.ForTask(id), std::move(command));
}

Awaitable<Outcome<uint32_t>> LocalTaskService::ExpireLeasesOf(std::string queue, std::string worker,
                                                              std::string message) {
  Shard& shard = shards_.ForQueue(queue);
  auto command = [queue = std::move(queue), worker = std::move(worker),
                  message = std::move(message)](Shard& s, Completion<Outcome<uint32_t>> done) {
    Durable(s, s.engine().ExpireLeasesOf(queue, worker, message), std::move(done));
  };
  co_return co_await CallShard<Outcome<uint32_t>>(shard, std::move(command));
}

Awaitable<Outcome<IdState>> LocalTaskService::Release(uint64_t id, std::string token,
                                                      int32_t priority, int64_t delay_ms) {
  auto command = [id, token = std::move(token), priority, delay_ms](
                     Shard& s, Completion<Outcome<IdState>> done) {
    Durable(s, s.engine().Release(id, token, priority, delay_ms), std::move(done));
  };
  co_return co_await CallShard<Outcome<IdState>>(shards_.ForTask(id), std::move(command));
}

Awaitable<Outcome<IdState>> LocalTaskService::Bury(uint64_t id, std::string token,
                                                   int32_t priority) {
  auto command = [id, token = std::move(token), priority](Shard& s,
                                                          Completion<Outcome<IdState>> done) {
    Durable(s, s.engine().Bury(id, token, priority), std::move(done));
  };
  co_return co_await CallShard<Outcome<IdState>>(shards_.ForTask(id), std::move(command));
}

Awaitable<Outcome<uint32_t>> LocalTaskService::Kick(std::string queue, uint32_t bound) {
  Shard& shard = shards_.ForQueue(queue);
  auto command = [queue = std::move(queue), bound](Shard& s, Completion<Outcome<uint32_t>> done) {
    Durable(s, s.engine().Kick(queue, bound), std::move(done));
  };
  co_return co_await CallShard<Outcome<uint32_t>>(shard, std::move(command));
}

Awaitable<Outcome<IdState>> LocalTaskService::KickTask(uint64_t id) {
  auto command = [id](Shard& s, Completion<Outcome<IdState>> done) {
    Durable(s, s.engine().KickTask(id), std::move(done));
  };
  co_return co_await CallShard<Outcome<IdState>>(shards_.ForTask(id), std::move(command));
}

Awaitable<Outcome<TaskView>> LocalTaskService::Peek(std::string queue, TaskState state) {
  Shard& shard = shards_.ForQueue(queue);
  auto command = [queue = std::move(queue), state](Shard& s, Completion<Outcome<TaskView>> done) {
    done(s.engine().Peek(queue, state));
  };
  co_return co_await CallShard<Outcome<TaskView>>(shard, std::move(command));
}

Awaitable<Outcome<IdState>> LocalTaskService::Delete(uint64_t id, std::string token) {
  auto command = [id, token = std::move(token)](Shard& s, Completion<Outcome<IdState>> done) {
    Durable(s, s.engine().Delete(id, token), std::move(done));
  };
  co_return co_await CallShard<Outcome<IdState>>(shards_.ForTask(id), std::move(command));
}

Awaitable<LeaseResult> LocalTaskService::LeaseTask(uint64_t id, LeaseRequest request) {
  // A lease need not wait for fsync (SPEC.md, Durability), but the revival of a dead
  // task it may include must: the answer waits for the journal like a retry's.
  auto command = [id, request = std::move(request)](Shard& s, Completion<LeaseResult> done) {
    Durable(s, s.engine().LeaseTask(id, request), std::move(done));
  };
  co_return co_await CallShard<LeaseResult>(shards_.ForTask(id), std::move(command));
}

Awaitable<Error> LocalTaskService::PauseQueue(std::string queue, int64_t delay_ms, bool create) {
  Shard& shard = shards_.ForQueue(queue);
  auto command = [queue = std::move(queue), delay_ms, create](Shard& s, Completion<Error> done) {
    done(s.engine().PauseQueue(queue, delay_ms, create));
  };
  co_return co_await CallShard<Error>(shard, std::move(command));
}

Awaitable<Outcome<TaskView>> LocalTaskService::Get(uint64_t id, int64_t wait_ms, WaitSlot wait) {
  Shard& shard = shards_.ForTask(id);
  auto waits = std::make_shared<ShardWaits>();
  std::shared_ptr<uint64_t> waiter = waits->Add(shard);
  if (wait && wait_ms > 0) *wait = waits;
  auto command = [id, wait_ms, waiter](Shard& s, Completion<Outcome<TaskView>> done) {
    s.engine().WaitTask(id, wait_ms, std::move(done), waiter.get());
  };
  co_return co_await CallShard<Outcome<TaskView>>(shard, std::move(command));
}

Awaitable<Outcome<TaskPage>> LocalTaskService::List(std::string queue,
                                                    std::optional<TaskState> state, size_t limit,
                                                    uint64_t after) {
  Shard& shard = shards_.ForQueue(queue);
  auto command = [queue = std::move(queue), state, limit, after](
                     Shard& s, Completion<Outcome<TaskPage>> done) {
    done(s.engine().ListTasks(queue, state, limit, after));
  };
  co_return co_await CallShard<Outcome<TaskPage>>(shard, std::move(command));
}

Awaitable<QueueSnapshot> LocalTaskService::QueueStats(std::string queue) {
  Shard& shard = shards_.ForQueue(queue);
  auto command = [queue = std::move(queue)](Shard& s, Completion<QueueSnapshot> done) {
    done(s.engine().QueueStats(queue));
  };
  co_return co_await CallShard<QueueSnapshot>(shard, std::move(command));
}

Awaitable<std::vector<QueueSnapshot>> LocalTaskService::AllQueueStats() {
  using Part = std::vector<QueueSnapshot>;
  using Fn = std::function<void(Shard&, Completion<Part>)>;
  std::vector<std::pair<Shard*, Fn>> calls;
  for (size_t i = 0; i < shards_.size(); ++i) {
    calls.emplace_back(&shards_.at(i), [](Shard& s, Completion<Part> done) {
      s.engine().Tick();
      done(s.engine().Snapshot());
    });
  }
  std::vector<Part> parts = co_await CallShards<Part>(std::move(calls));
  Part all;
  for (auto& part : parts) {
    for (auto& q : part) all.push_back(std::move(q));
  }
  co_return all;
}

Awaitable<Outcome<QueueConfig>> LocalTaskService::Configure(std::string queue,
                                                            QueueConfigPatch patch) {
  Shard& shard = shards_.ForQueue(queue);
  auto command = [queue = std::move(queue), patch](Shard& s,
                                                   Completion<Outcome<QueueConfig>> done) {
    Durable(s, s.engine().ConfigureQueue(queue, patch), std::move(done));
  };
  co_return co_await CallShard<Outcome<QueueConfig>>(shard, std::move(command));
}

namespace {

// A bulk command in slices (each one shard command of at most kMaxBulkPerCall tasks, other
// commands in between) until `limit` tasks are done or none is left. `step(engine, left)`
// runs one slice on the shard's thread.
// (step by reference: the caller's local outlives the await; a by-value argument would
// be a temporary in the co_await expression, which GCC 12 may destroy twice.)
template <typename Step>
Awaitable<Outcome<BulkResult>> RepeatBulk(Shard& shard, uint64_t limit, const Step& step) {
  Outcome<BulkResult> total;
  while (true) {
    const uint64_t left = limit - total.value.done;
    auto command = [step, left](Shard& s, Completion<Outcome<BulkResult>> done) {
      Durable(s, step(s.engine(), left), std::move(done));
    };
    Outcome<BulkResult> part = co_await CallShard<Outcome<BulkResult>>(shard, std::move(command));
    total.value.done += part.value.done;
    total.value.remaining = part.value.remaining;
    if (!part.error.ok()) {
      total.error = std::move(part.error);
      break;
    }
    if (part.value.done == 0 || part.value.remaining == 0 || total.value.done >= limit) break;
  }
  co_return total;
}

}  // namespace

Awaitable<Outcome<BulkResult>> LocalTaskService::RetryDeadTasks(std::string queue, uint64_t limit) {
  Shard& shard = shards_.ForQueue(queue);
  auto step = [queue](Engine& e, uint64_t left) { return e.RetryDeadTasks(queue, left); };
  co_return co_await RepeatBulk(shard, limit, step);
}

Awaitable<Outcome<BulkResult>> LocalTaskService::PurgeTasks(std::string queue, TaskState state,
                                                            uint64_t limit) {
  Shard& shard = shards_.ForQueue(queue);
  auto step = [queue, state](Engine& e, uint64_t left) { return e.PurgeTasks(queue, state, left); };
  co_return co_await RepeatBulk(shard, limit, step);
}

Awaitable<Error> LocalTaskService::DeleteQueue(std::string queue) {
  Shard& shard = shards_.ForQueue(queue);
  auto command = [queue = std::move(queue)](Shard& s, Completion<Error> done) {
    Error e = s.engine().DeleteQueue(queue);
    if (!e.ok()) {
      done(std::move(e));
      return;
    }
    s.journal().WhenDurable(std::move(done));
  };
  co_return co_await CallShard<Error>(shard, std::move(command));
}

Awaitable<bool> LocalTaskService::StorageWritable() {
  using Fn = std::function<void(Shard&, Completion<bool>)>;
  std::vector<std::pair<Shard*, Fn>> calls;
  for (size_t i = 0; i < shards_.size(); ++i) {
    calls.emplace_back(&shards_.at(i),
                       [](Shard& s, Completion<bool> done) { done(s.journal().writable()); });
  }
  std::vector<bool> writable = co_await CallShards<bool>(std::move(calls));
  for (bool w : writable) {
    if (!w) co_return false;
  }
  co_return true;
}

ServiceGauges LocalTaskService::Gauges() const {
  ServerWide& shared = shards_.shared();
  return ServiceGauges{shared.live_tasks.used(), shared.waiters.used(),
                       shared.rss_bytes.load(std::memory_order_relaxed),
                       shared.payload_bytes.load(std::memory_order_relaxed)};
}

}  // namespace conveyor
