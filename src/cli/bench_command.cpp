// `conveyor bench [WORKLOAD]`: the load generator (src/bench/load_generator.h) and the
// asynchronous model's demonstration (`--model`, src/bench/model_demo.h) against a running
// server. This file only reads the flags.
#include <memory>

#include "bench/load_generator.h"
#include "bench/model_demo.h"
#include "cli/commands.h"

namespace conveyor {

void AddBenchCommand(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<LoadOptions>();
  auto model = std::make_shared<ModelOptions>();
  auto run_model = std::make_shared<bool>(false);
  auto mode = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "Load a running server and measure it (like redis-benchmark), or --model.");
  const auto workloads = CLI::IsMember({"enqueue", "drain", "e2e", "mixed"});
  cmd->add_option("workload", o->workload,
                  "enqueue | drain | e2e (producers and consumers at once) | mixed (e2e with "
                  "reads)")
      ->check(workloads)
      ->capture_default_str();
  cmd->add_option("--workload", o->workload, "The workload, as a flag")->check(workloads);
  cmd->add_option("--mode", *mode, "Older name of the workload; batch = enqueue")
      ->check(CLI::IsMember({"enqueue", "batch", "drain", "e2e", "mixed"}));
  cmd->add_option("--connections,-c", o->connections, "Concurrent keep-alive connections")
      ->check(CLI::Range(size_t{1}, size_t{10000}))
      ->capture_default_str();
  cmd->add_option("--tasks,-n", o->tasks, "Tasks to enqueue (enqueue, e2e, mixed)")
      ->check(CLI::Range(size_t{1}, size_t{1000000000}))
      ->capture_default_str();
  cmd->add_option("--duration", o->duration_s,
                  "Seconds to run instead of --tasks (producers stop then; consumers drain)")
      ->check(CLI::Range(0.0, 86400.0));
  cmd->add_option("--batch,-b", o->batch, "Tasks per enqueue request and per lease")
      ->check(CLI::Range(size_t{1}, size_t{1000}))
      ->capture_default_str();
  cmd->add_option("--payload-bytes,-d", o->payload_bytes, "Approximate payload size")
      ->check(CLI::Range(size_t{1}, size_t{900000}))
      ->capture_default_str();
  cmd->add_option("--queues", o->queues, "Queues the tasks go round robin over (QUEUE-0 ...)")
      ->check(CLI::Range(size_t{1}, size_t{100000}))
      ->capture_default_str();
  cmd->add_option("--keys", o->keys,
                  "Tasks carry keys k0..k(N-1) round robin (flow control); 0: none")
      ->check(CLI::Range(size_t{0}, size_t{10000000}))
      ->capture_default_str();
  cmd->add_option("--queue", o->queue, "Queue name (the prefix with --queues)")
      ->capture_default_str();
  cmd->add_option("--rate", o->rate,
                  "Open loop: tasks per second offered on a fixed schedule, latency counted "
                  "from each request's due time; 0 = closed loop")
      ->check(CLI::Range(0.0, 1e9))
      ->capture_default_str();
  cmd->add_option("--lease-ms", o->lease_ms, "Lease of the consumers")
      ->check(CLI::Range(int64_t{1}, int64_t{86'400'000}))
      ->capture_default_str();
  cmd->add_option("--threads", o->threads, "Client I/O threads")
      ->check(CLI::Range(size_t{1}, size_t{64}))
      ->capture_default_str();
  cmd->add_option("--beanstalkd", o->beanstalkd,
                  "HOST:PORT of a beanstalkd-protocol server to load instead of the HTTP API "
                  "(enqueue, drain, e2e; tubes are the queues)");
  cmd->add_flag("--json", o->json, "Print one JSON line instead of text");
  cmd->add_flag(
      "--no-progress", [o](int64_t) { o->progress = false; },
      "No live line on stderr (there is none unless stderr is a terminal)");
  cmd->add_flag("--model", *run_model,
                "Run the asynchronous model's example (docs/MODEL.md): 10 tasks of 1..10 "
                "units through 1 and through 10 workers, and a Little's-law check");
  cmd->add_option("--unit-ms", model->unit_ms, "--model: one time unit")
      ->check(CLI::Range(int64_t{1}, int64_t{10000}))
      ->capture_default_str();
  AddServerOption(*cmd, o->server);
  cmd->callback([o, model, run_model, mode, &exit_code] {
    if (*run_model) {
      model->server = o->server;
      model->json = o->json;
      exit_code = RunModel(*model);
      return;
    }
    if (!mode->empty()) o->workload = *mode == "batch" ? "enqueue" : *mode;
    exit_code = RunLoad(*o);
  });
}

}  // namespace conveyor
