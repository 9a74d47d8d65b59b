// An example of the C++ SDK (conveyor::client): enqueue COUNT tasks, then work the queue
// with a coroutine handler until they are all done; with COUNT 0, work it until SIGINT or
// SIGTERM. Either signal is a graceful stop: running handlers finish and ack first.
//
//   build/examples/sdk_worker http://127.0.0.1:8700 emails 20
//   build/examples/sdk_worker http://127.0.0.1:8700 emails 0     # a long-running worker
#include <conveyor/client.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

namespace asio = boost::asio;
using conveyor::sdk::Outcome;
using conveyor::sdk::Task;

// The work: wait a little (a real handler would call an API), then return a result.
asio::awaitable<Outcome> SendEmail(Task task) {
  asio::steady_timer pause(co_await asio::this_coro::executor, std::chrono::milliseconds(20));
  co_await pause.async_wait(asio::use_awaitable);
  if (task.payload.find("\"fail\"") != std::string::npos) {
    co_return Outcome::Dead("this address bounces");
  }
  co_return Outcome::Ack("{\"sent\":true,\"task\":" + std::to_string(task.id) + "}");
}

// Stops the worker once every task is done; ends early when *cancelled (the worker was
// stopped by a signal), and says so in *finished so that Main waits for it.
asio::awaitable<void> StopWhenDone(conveyor::sdk::Client* client, conveyor::sdk::Worker* worker,
                                   std::string queue, int count, std::shared_ptr<bool> cancelled,
                                   std::shared_ptr<bool> finished) {
  asio::steady_timer tick(co_await asio::this_coro::executor);
  while (!*cancelled) {
    conveyor::sdk::QueueStats s = co_await client->Stats(queue);
    if (s.succeeded + s.dead >= static_cast<uint64_t>(count)) break;
    tick.expires_after(std::chrono::milliseconds(50));
    co_await tick.async_wait(asio::use_awaitable);
  }
  worker->Stop();
  *finished = true;
}

asio::awaitable<void> Main(std::string server, std::string queue, int count, int& status) {
  conveyor::sdk::Client client(co_await asio::this_coro::executor, server);
  std::vector<uint64_t> ids;
  if (count > 0) {
    std::vector<std::string> payloads;
    for (int i = 0; i < count; ++i)
      payloads.push_back("{\"to\":\"user" + std::to_string(i) + "\"}");
    ids = co_await client.EnqueueBatch(queue, payloads);
    std::printf("enqueued %zu tasks\n", ids.size());
  }

  conveyor::sdk::WorkerOptions options;
  options.concurrency = 8;
  options.lease_ms = 5000;
  options.wait_ms = 200;
  conveyor::sdk::Worker worker(client, queue, SendEmail, options);
  asio::signal_set signals(co_await asio::this_coro::executor, SIGINT, SIGTERM);
  signals.async_wait([&worker](boost::system::error_code ec, int) {
    if (!ec) worker.Stop();
  });
  auto cancelled = std::make_shared<bool>(false);
  auto finished = std::make_shared<bool>(count == 0);
  if (count > 0) {  // stop once every task is done; a long-running worker just runs
    asio::co_spawn(co_await asio::this_coro::executor,
                   StopWhenDone(&client, &worker, queue, count, cancelled, finished),
                   asio::detached);
  }
  co_await worker.Run();
  signals.cancel();
  *cancelled = true;
  asio::steady_timer wait(co_await asio::this_coro::executor);
  while (!*finished) {  // it uses the client: let it end before the client goes
    wait.expires_after(std::chrono::milliseconds(10));
    co_await wait.async_wait(asio::use_awaitable);
  }
  std::printf("handled %llu tasks\n", static_cast<unsigned long long>(worker.handled()));
  if (!ids.empty()) {
    conveyor::sdk::Task first = co_await client.Get(ids.front());
    std::printf("task %llu is %s with result %s\n", static_cast<unsigned long long>(first.id),
                first.state.c_str(), first.result.c_str());
  }
  status = 0;
}

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s SERVER_URL QUEUE COUNT\n", argv[0]);
    return 2;
  }
  asio::io_context io;
  int status = 1;
  asio::co_spawn(io, Main(argv[1], argv[2], std::stoi(argv[3]), status), [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      std::fprintf(stderr, "sdk_worker: %s\n", ex.what());
    }
  });
  io.run();
  return status;
}
