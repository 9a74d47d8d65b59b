#include "push/push_manager.h"

#include <absl/container/flat_hash_map.h>
#include <fmt/format.h>

#include <boost/asio/post.hpp>

#include "common/clock.h"
#include "common/json_writer.h"
#include "common/task_id.h"

namespace conveyor {

namespace asio = boost::asio;

struct PushManager::ShardPush {
  std::shared_ptr<HttpClient> client;
  absl::flat_hash_map<std::string, std::shared_ptr<QueueDispatcher>> dispatchers;
  bool stopping = false;
};

namespace {

HttpClientOptions PushClientOptions(const Limits& limits, const std::string& ca_file) {
  HttpClientOptions o;
  o.ca_file = ca_file;
  o.connect_timeout_ms = 5000;
  o.answer_timeout_ms = limits.max_lease_ms;  // each delivery's own timeout_ms governs
  o.total_timeout_ms = 30000;
  o.max_answer_header_bytes = 16 * 1024;
  o.max_answer_body_bytes = 64 * 1024;  // becomes the task's result when it is JSON
  o.max_in_flight = 100000;
  o.max_idle_per_origin = 10000;
  o.user_agent = "conveyor-push";
  return o;
}

}  // namespace

PushManager::PushManager(ShardSet& shards, TaskService& service, const Limits& limits,
                         const std::string& ca_file)
    : shards_(shards), service_(service), limits_(limits) {
  for (size_t i = 0; i < shards.size(); ++i) {
    auto part = std::make_unique<ShardPush>();
    part->client = std::make_shared<HttpClient>(shards.io(i).get_executor(),
                                                PushClientOptions(limits, ca_file));
    per_shard_.push_back(std::move(part));
  }
}

PushManager::~PushManager() = default;

size_t PushManager::ShardOf(std::string_view queue) const {
  return SlotOfQueue(queue) % shards_.size();
}

void PushManager::Configure(const std::string& queue, const QueueConfig& config,
                            bool after_restart) {
  const size_t shard = ShardOf(queue);
  asio::post(shards_.io(shard), [this, shard, queue, config, after_restart] {
    ConfigureHere(shard, queue, config, after_restart);
  });
}

void PushManager::ConfigureHere(size_t shard, const std::string& queue, const QueueConfig& posted,
                                bool after_restart) {
  ShardPush& part = *per_shard_[shard];
  // The queue's config as it is now, read on its own thread: two changes posted from
  // different threads may arrive in either order, and the last one stored must win.
  (void)posted;
  const QueueConfig config = shards_.at(shard).engine().QueueStats(queue).config;
  auto it = part.dispatchers.find(queue);
  if (!config.push) {
    if (it == part.dispatchers.end()) return;
    it->second->Stop();  // its deliveries in flight finish on their own
    part.dispatchers.erase(it);
    std::lock_guard<std::mutex> lock(mutex_);
    statuses_.erase(queue);
    return;
  }
  if (it != part.dispatchers.end()) {
    it->second->Update(*config.push);
    return;
  }
  if (part.stopping) return;
  auto status = std::make_shared<PushStatus>();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    statuses_[queue] = status;
  }
  QueueDispatcher::Context context{&service_, part.client, &SystemClock::Instance(), &limits_};
  auto dispatcher = std::make_shared<QueueDispatcher>(queue, *config.push, context, status);
  dispatcher->Start(shards_.io(shard).get_executor(), after_restart);
  part.dispatchers.emplace(queue, std::move(dispatcher));
}

asio::awaitable<void> PushManager::StartAll() {
  std::vector<QueueSnapshot> all = co_await service_.AllQueueStats();
  for (const QueueSnapshot& q : all) {
    if (q.config.push) Configure(q.name, q.config, /*after_restart=*/true);
  }
}

void PushManager::StopLeasing() {
  for (size_t i = 0; i < per_shard_.size(); ++i) {
    asio::post(shards_.io(i), [part = per_shard_[i].get()] {
      part->stopping = true;
      for (auto& [name, dispatcher] : part->dispatchers) dispatcher->Stop();
    });
  }
}

size_t PushManager::in_flight() const {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t n = 0;
  for (const auto& [name, status] : statuses_) {
    n += status->in_flight.load(std::memory_order_relaxed) +
         status->settling.load(std::memory_order_relaxed);
  }
  return n;
}

void PushManager::CloseAll() {
  for (size_t i = 0; i < per_shard_.size(); ++i) {
    asio::post(shards_.io(i), [part = per_shard_[i].get()] { part->client->Close(); });
  }
}

void PushManager::Release() {
  for (auto& part : per_shard_) {
    part->dispatchers.clear();  // a coroutine frame still holding one frees it later
    part->client.reset();
  }
}

std::string PushManager::StatusJson(std::string_view queue) const {
  std::shared_ptr<PushStatus> status;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = statuses_.find(queue);
    if (it == statuses_.end()) return {};
    status = it->second;
  }
  auto get = [](const auto& v) { return v.load(std::memory_order_relaxed); };
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  w.Field("breaker", BreakerStateName(static_cast<CircuitBreaker::State>(get(status->breaker))));
  w.Field("consecutive_failures", get(status->consecutive_failures));
  w.Field("breaker_opened", get(status->breaker_opened));
  w.Field("in_flight", get(status->in_flight));
  w.Field("delivered", get(status->delivered));
  w.Field("failed", get(status->failed));
  w.Field("deferred", get(status->deferred));
  const int64_t paused = get(status->paused_until);
  w.Key("paused_until");
  if (paused > SystemClock::Instance().NowMs()) {
    w.Int(paused);
  } else {
    w.Null();
  }
  w.EndObject();
  return out;
}

void PushManager::AppendMetrics(std::string& out) const {
  std::map<std::string, std::shared_ptr<PushStatus>, std::less<>> copy;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    copy = statuses_;
  }
  auto get = [](const auto& v) { return v.load(std::memory_order_relaxed); };
  auto series = [&](const char* name, const char* type, const char* help, auto value) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
    size_t shown = 0;
    for (const auto& [queue, status] : copy) {
      if (++shown > limits_.max_metrics_queues) break;
      out += fmt::format("{}{{queue=\"{}\"}} {}\n", name, queue, value(*status));
    }
  };
  series("conveyor_push_delivered_total", "counter", "Push deliveries answered 2xx.",
         [&](const PushStatus& s) { return get(s.delivered); });
  series("conveyor_push_failed_total", "counter",
         "Push deliveries that failed (nacked: an error answer, a timeout, no connection).",
         [&](const PushStatus& s) { return get(s.failed); });
  series("conveyor_push_deferred_total", "counter",
         "Push deliveries answered 429/503 with Retry-After (not counted as attempts).",
         [&](const PushStatus& s) { return get(s.deferred); });
  series("conveyor_push_in_flight", "gauge", "Push deliveries in flight.",
         [&](const PushStatus& s) { return get(s.in_flight); });
  series("conveyor_push_breaker_open", "gauge",
         "1 while the queue's circuit breaker is open or half-open.", [&](const PushStatus& s) {
           return get(s.breaker) != static_cast<uint8_t>(CircuitBreaker::State::kClosed) ? 1 : 0;
         });
  series("conveyor_push_breaker_opened_total", "counter",
         "Times the queue's circuit breaker opened.",
         [&](const PushStatus& s) { return get(s.breaker_opened); });
}

}  // namespace conveyor
