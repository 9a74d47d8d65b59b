// `conveyor serve`: parses flags (each also a CONVEYOR_* variable; the flag wins), builds
// the shards and the HTTP server, and runs until SIGINT/SIGTERM.
#include <sys/resource.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "api/handlers.h"
#include "beanstalk/server.h"
#include "cli/commands.h"
#include "common/clock.h"
#include "engine/local_task_service.h"
#include "engine/shard_set.h"
#include "http/server.h"
#include "push/push_manager.h"
#include "schedule/scheduler.h"
#include "storage/data_dir.h"
#include "storage/recovery.h"
#include "storage/rocks_store.h"
#include "storage/storage_journal.h"

namespace conveyor {
namespace {

struct ServeOptions {
  std::string listen = "127.0.0.1:8700";
  std::string data_dir = "./conveyor-data";
  std::string durability = "sync";
  std::string beanstalk;
  std::string push_ca_file;
  std::string config_file;
  size_t threads = std::max(1u, std::thread::hardware_concurrency());
  Limits limits;
};

// Descriptors the process needs besides connections and storage: listeners, epoll,
// eventfds and timers of each thread, the data dir lock, stdio.
constexpr size_t kBaseDescriptors = 64;

// Lets the server hold as many connections as the hard limit allows, and keeps
// --max-connections below what is left once storage has its reserve: connections are
// refused (503) before storage could fail to open a WAL.
void FitConnectionsToFileLimit(Limits& limits, bool durable) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    getrlimit(RLIMIT_NOFILE, &limit);
  }
  if (limit.rlim_cur == RLIM_INFINITY) return;
  const size_t reserve = kBaseDescriptors + (durable ? RocksStore::kStorageDescriptors : 0);
  const size_t nofile = static_cast<size_t>(limit.rlim_cur);
  const size_t room = nofile > reserve + 16 ? nofile - reserve : 16;
  if (limits.max_connections > room) {
    std::cerr << "conveyor: --max-connections lowered from " << limits.max_connections << " to "
              << room << ": RLIMIT_NOFILE is " << nofile << " and " << reserve
              << " descriptors are kept for storage and the server itself" << std::endl;
    limits.max_connections = room;
  }
}

bool SplitHostPort(const std::string& text, std::string& host, uint16_t& port) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  const std::string digits = text.substr(colon + 1);
  if (digits.empty() || digits.size() > 5 ||
      digits.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  unsigned long value = std::stoul(digits);
  if (value > 65535) return false;
  port = static_cast<uint16_t>(value);
  return true;
}

int Fail(const std::string& message) {
  std::cerr << "conveyor serve: " << message << "\n";
  return 2;
}

// Stops the server's parts in an order no posted work, timer or coroutine frame can
// outlive: io_contexts stopped, commit threads ended and their timers freed, a last WAL
// sync, then the shards and io_contexts (with any frame still queued) destroyed while the
// API and the HTTP server those frames point to still exist. Idempotent.
struct StopInOrder {
  ShardSet& shards;
  std::vector<std::unique_ptr<StorageJournal>>& journals;
  std::unique_ptr<BatchSyncer>& batch_syncer;
  ~StopInOrder() {
    shards.Stop();
    for (auto& journal : journals) journal->Stop();
    batch_syncer.reset();
    shards.Destroy();
  }
};

// The orderly stop: no new connections, long-polls answered, connections closed after
// their current answer (idle ones at once), at most shutdown_timeout_ms for in-flight
// requests, then everything journaled made durable, then the I/O threads end.
boost::asio::awaitable<void> Shutdown(ShardSet& shards, HttpServer& server,
                                      beanstalk::BeanstalkServer& beanstalk, PushManager& push,
                                      Scheduler& scheduler, const Limits& limits) {
  namespace asio = boost::asio;
  server.StopAccepting();
  beanstalk.StopAccepting();
  scheduler.Stop();  // no tick after this; a tick being committed finishes
  // Push takes no new task; what it is delivering may finish until the deadline below.
  push.StopLeasing();
  server.BeginDrain();
  // beanstalkd connections have no "last answer": they end now, their jobs ready again.
  beanstalk.CloseAll();
  for (size_t i = 0; i < shards.size(); ++i) {
    co_await CallShard<bool>(shards.at(i), [](Shard& s, Completion<bool> done) {
      s.engine().Drain();
      done(true);
    });
  }
  asio::steady_timer pause(co_await asio::this_coro::executor);
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(limits.shutdown_timeout_ms);
  while (
      (server.open_connections() > 0 || beanstalk.open_connections() > 0 || push.in_flight() > 0) &&
      std::chrono::steady_clock::now() < deadline) {
    pause.expires_after(std::chrono::milliseconds(10));
    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  if (size_t left = server.open_connections(); left > 0) {
    std::cerr << "conveyor: closing " << left << " connections still busy after "
              << limits.shutdown_timeout_ms << " ms" << std::endl;
    server.CloseAll();
    pause.expires_after(std::chrono::milliseconds(100));
    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  if (size_t left = push.in_flight(); left > 0) {
    std::cerr << "conveyor: ending " << left << " push deliveries still in flight after "
              << limits.shutdown_timeout_ms << " ms (their tasks are ready again)" << std::endl;
    push.CloseAll();
    for (int i = 0; i < 50 && push.in_flight() > 0; ++i) {
      pause.expires_after(std::chrono::milliseconds(10));
      co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }
  for (size_t i = 0; i < shards.size(); ++i) {
    Error e = co_await CallShard<Error>(shards.at(i), [](Shard& s, Completion<Error> done) {
      s.journal().WhenDurable(std::move(done));
    });
    if (!e.ok()) std::cerr << "conveyor: final flush of shard " << i << ": " << e.message << "\n";
  }
  shards.Stop();
}

int RunServe(ServeOptions& options) {
  // Schedule ticks due before this moment were missed while the server was down.
  const int64_t started_at = SystemClock::Instance().NowMs();
  std::string host;
  uint16_t port = 0;
  if (!SplitHostPort(options.listen, host, port)) {
    return Fail("--listen must be HOST:PORT (e.g. 127.0.0.1:8700), got '" + options.listen + "'");
  }
  std::string beanstalk_host;
  uint16_t beanstalk_port = 0;
  if (!options.beanstalk.empty() &&
      !SplitHostPort(options.beanstalk, beanstalk_host, beanstalk_port)) {
    return Fail("--beanstalk must be HOST:PORT (e.g. 127.0.0.1:11300), got '" + options.beanstalk +
                "'");
  }

  const bool durable = options.durability != "none";
  FitConnectionsToFileLimit(options.limits, durable);
  std::unique_ptr<DataDir> data_dir;
  std::unique_ptr<RocksStore> store;
  std::vector<std::unique_ptr<StorageJournal>> storage_journals;
  NullJournal null_journal;
  std::vector<Journal*> journals;
  if (durable) {
    std::string error;
    data_dir = DataDir::Open(options.data_dir, error);
    if (!data_dir) return Fail(error);
    StoreOptions store_options;
    store_options.path = data_dir->db_path();
    if (const char* fault = std::getenv("CONVEYOR_FAULT_FILE")) store_options.fault_file = fault;
    store = RocksStore::Open(store_options, error);
    if (!store) return Fail(error);
    for (size_t i = 0; i < options.threads; ++i) {
      storage_journals.push_back(std::make_unique<StorageJournal>(
          *store, options.durability == "sync", i, options.limits.max_commit_backlog_bytes,
          options.limits.commit_timeout_ms));
      journals.push_back(storage_journals.back().get());
    }
  } else {
    journals.assign(options.threads, &null_journal);
  }
  ShardSet shards(options.threads, SystemClock::Instance(), journals, options.limits);
  std::unique_ptr<BatchSyncer> batch_syncer;
  StopInOrder stop_early{shards, storage_journals, batch_syncer};  // exits before the server
  if (durable) {
    for (size_t i = 0; i < options.threads; ++i) {
      storage_journals[i]->Bind(
          shards.io(i),
          [&store, &shards, i] {
            Error error = RecoverShard(*store, shards, i);
            if (!error.ok()) std::cerr << "conveyor: reload failed: " << error.message << std::endl;
            return error;
          },
          [&shards, i] { shards.at(i).AfterCommand(); });
    }
    // Finished tasks leave memory once durable and are read back from the store.
    for (size_t i = 0; i < shards.size(); ++i) shards.at(i).engine().SetReader(store.get());
    RecoveryStats stats;
    Error error = RecoverAll(*store, shards, stats);
    if (!error.ok()) return Fail("cannot recover from " + options.data_dir + ": " + error.message);
    for (size_t i = 0; i < shards.size(); ++i) shards.at(i).AfterCommand();
    std::printf("conveyor: recovered %zu tasks in %zu queues from %s in %.3f s\n", stats.tasks,
                stats.queues, options.data_dir.c_str(), stats.seconds);
    if (options.durability == "batch") {
      batch_syncer = std::make_unique<BatchSyncer>(
          *store, std::chrono::milliseconds(100), [&storage_journals, &shards](Error error) {
            for (size_t i = 0; i < storage_journals.size(); ++i) {
              StorageJournal* journal = storage_journals[i].get();
              boost::asio::post(shards.io(i), [journal, error] { journal->Fail(error); });
            }
          });
    }
  }
  LocalTaskService service(shards);
  Api api(service, options.limits, shards.size());
  HttpServer server(shards, options.limits, [&api](HttpRequest& request, Connection& connection) {
    return api.Handle(request, connection);
  });
  beanstalk::BeanstalkServer beanstalk_server(shards, service, options.limits);
  if (!options.beanstalk.empty()) {
    api.AddMetrics([&beanstalk_server](std::string& out) { beanstalk_server.AppendMetrics(out); });
  }
  PushManager push(shards, service, options.limits, options.push_ca_file);
  Scheduler scheduler(shards, service);
  api.OnQueueConfigured([&push](const std::string& queue, const QueueConfig& config) {
    push.Configure(queue, config);
  });
  api.SetPushStatus([&push](std::string_view queue) { return push.StatusJson(queue); });
  api.AddMetrics([&push](std::string& out) { push.AppendMetrics(out); });
  StopInOrder stop_in_order{shards, storage_journals, batch_syncer};  // runs before ~server
  if (std::string error = server.Listen(host, port); !error.empty()) return Fail(error);
  if (!options.beanstalk.empty()) {
    if (std::string error = beanstalk_server.Listen(beanstalk_host, beanstalk_port);
        !error.empty()) {
      return Fail(error);
    }
  }

  boost::asio::signal_set signals(shards.io(0), SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int) {
    if (ec) return;
    std::cerr << "conveyor: shutting down: answering long-polls, finishing requests" << std::endl;
    boost::asio::co_spawn(
        shards.io(0), Shutdown(shards, server, beanstalk_server, push, scheduler, options.limits),
        boost::asio::detached);
  });
  std::cout << "conveyor: listening on http://" << options.listen << " (durability "
            << options.durability << ", data "
            << (durable ? options.data_dir : std::string("in memory only")) << ", "
            << options.threads << " threads)" << std::endl;
  if (!options.beanstalk.empty()) {
    std::cout << "conveyor: beanstalkd protocol on " << options.beanstalk << std::endl;
  }
  boost::asio::co_spawn(shards.io(0), push.StartAll(), boost::asio::detached);
  scheduler.Start(started_at);
  shards.Run();
  push.Release();
  // stop_in_order (below) ends the commit threads, then frees the shards and io_contexts.
  std::cerr << "conveyor: stopped" << std::endl;
  return 0;
}

}  // namespace

void AddServeCommand(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<ServeOptions>();
  CLI::App* cmd = app.add_subcommand("serve", "Run the Conveyor server.");
  Limits& l = options->limits;
  cmd->add_option("--listen", options->listen, "HTTP address HOST:PORT")
      ->envname("CONVEYOR_LISTEN")
      ->capture_default_str();
  cmd->add_option("--data-dir", options->data_dir, "Where tasks are stored")
      ->envname("CONVEYOR_DATA_DIR")
      ->capture_default_str();
  cmd->add_option("--durability", options->durability, "sync | batch | none")
      ->envname("CONVEYOR_DURABILITY")
      ->check(CLI::IsMember({"sync", "batch", "none"}))
      ->capture_default_str();
  cmd->add_option("--beanstalk", options->beanstalk, "beanstalkd protocol address HOST:PORT")
      ->envname("CONVEYOR_BEANSTALK");
  cmd->add_option("--push-ca-file", options->push_ca_file,
                  "CA certificates (PEM) that push trusts for https endpoints, instead of the "
                  "system's")
      ->envname("CONVEYOR_PUSH_CA_FILE")
      ->check(CLI::ExistingFile);
  cmd->add_option("--threads", options->threads, "I/O threads = shards (default: cores)")
      ->envname("CONVEYOR_THREADS")
      ->check(CLI::Range(1u, 64u))
      ->capture_default_str();
  // Read before parsing by PreloadServeConfig (cli/config_file.h); registered here so that
  // --help lists it and the parser accepts it.
  cmd->add_option("--config", options->config_file,
                  "TOML file of these settings by name (flag > environment > file)")
      ->envname("CONVEYOR_CONFIG");
  cmd->add_option("--max-body-bytes", l.max_body_bytes, "Largest request body (413 above)")
      ->envname("CONVEYOR_MAX_BODY_BYTES")
      ->check(CLI::Range(size_t{1024}, size_t{1} << 30))
      ->capture_default_str();
  cmd->add_option("--max-header-bytes", l.max_header_bytes, "Largest header block (431 above)")
      ->envname("CONVEYOR_MAX_HEADER_BYTES")
      ->check(CLI::Range(size_t{1024}, size_t{1} << 20))
      ->capture_default_str();
  cmd->add_option("--max-batch", l.max_batch, "Most tasks or acks in one request")
      ->envname("CONVEYOR_MAX_BATCH")
      ->check(CLI::Range(size_t{1}, size_t{100000}))
      ->capture_default_str();
  cmd->add_option("--max-connections", l.max_connections, "Open connections (503 above)")
      ->envname("CONVEYOR_MAX_CONNECTIONS")
      ->check(CLI::Range(size_t{1}, size_t{1000000}))
      ->capture_default_str();
  cmd->add_option("--max-waiters", l.max_waiters,
                  "Long-polling requests at once in the server (429 above)")
      ->envname("CONVEYOR_MAX_WAITERS")
      ->check(CLI::Range(size_t{1}, size_t{1000000}))
      ->capture_default_str();
  cmd->add_option("--max-queues", l.max_queues, "Queues per shard (429 for new ones above)")
      ->envname("CONVEYOR_MAX_QUEUES")
      ->check(CLI::Range(size_t{1}, size_t{10000000}))
      ->capture_default_str();
  cmd->add_option("--max-commit-backlog-bytes", l.max_commit_backlog_bytes,
                  "Changes waiting on a stalled fsync per shard (503 above)")
      ->envname("CONVEYOR_MAX_COMMIT_BACKLOG_BYTES")
      ->check(CLI::Range(size_t{4096}, size_t{1} << 34))
      ->capture_default_str();
  cmd->add_option("--max-tasks", l.max_tasks,
                  "Unfinished tasks in the server, 0 = no count limit (503 above)")
      ->envname("CONVEYOR_MAX_TASKS")
      ->check(CLI::Range(size_t{0}, size_t{1} << 40))
      ->capture_default_str();
  cmd->add_option("--max-memory-bytes", l.max_memory_bytes,
                  "Resident memory above which enqueues get 503, 0 = no limit")
      ->envname("CONVEYOR_MAX_MEMORY_BYTES")
      ->check(CLI::Range(size_t{0}, size_t{1} << 50))
      ->capture_default_str();
  cmd->add_option("--payload-cache-bytes", l.payload_cache_bytes,
                  "Payload bytes of queued tasks kept in memory; beyond, read from storage "
                  "when leased (not with --durability none)")
      ->envname("CONVEYOR_PAYLOAD_CACHE_BYTES")
      ->check(CLI::Range(size_t{0}, size_t{1} << 50))
      ->capture_default_str();
  cmd->add_option("--max-response-bytes", l.max_response_bytes,
                  "Largest lease answer or task page (always at least one task)")
      ->envname("CONVEYOR_MAX_RESPONSE_BYTES")
      ->check(CLI::Range(size_t{1024}, size_t{1} << 32))
      ->capture_default_str();
  cmd->add_option("--max-metrics-queues", l.max_metrics_queues,
                  "Queues with their own series in /metrics")
      ->envname("CONVEYOR_MAX_METRICS_QUEUES")
      ->check(CLI::Range(size_t{0}, size_t{10000000}))
      ->capture_default_str();
  cmd->add_option("--commit-timeout-ms", l.commit_timeout_ms,
                  "Longest wait for durability before 503 storage_timeout")
      ->envname("CONVEYOR_COMMIT_TIMEOUT_MS")
      ->check(CLI::Range(int64_t{10}, int64_t{3600000}))
      ->capture_default_str();
  cmd->add_option("--shutdown-timeout-ms", l.shutdown_timeout_ms,
                  "On SIGTERM, time for in-flight requests before connections are closed")
      ->envname("CONVEYOR_SHUTDOWN_TIMEOUT_MS")
      ->check(CLI::Range(int64_t{0}, int64_t{3600000}))
      ->capture_default_str();
  cmd->add_option("--header-timeout-ms", l.header_timeout_ms, "Time to send a whole request")
      ->envname("CONVEYOR_HEADER_TIMEOUT_MS")
      ->check(CLI::Range(int64_t{100}, int64_t{3600000}))
      ->capture_default_str();
  cmd->add_option("--idle-timeout-ms", l.idle_timeout_ms, "Idle keep-alive connections close")
      ->envname("CONVEYOR_IDLE_TIMEOUT_MS")
      ->check(CLI::Range(int64_t{100}, int64_t{3600000}))
      ->capture_default_str();
  cmd->add_option("--write-timeout-ms", l.write_timeout_ms, "Time to write a response")
      ->envname("CONVEYOR_WRITE_TIMEOUT_MS")
      ->check(CLI::Range(int64_t{100}, int64_t{3600000}))
      ->capture_default_str();
  cmd->callback([options, &exit_code] { exit_code = RunServe(*options); });
}

}  // namespace conveyor
