// `conveyor bench --model`: the textbook example of the asynchronous model, run for real
// through a Conveyor server (docs/MODEL.md). Ten I/O-bound tasks take 1, 2, ..., 10 time
// units; one worker takes them one after another (T = Σ tᵢ = 55 units), ten concurrent
// workers take about T = max tᵢ = 10 units; throughput Q = n / T. Then a steady load checks
// Little's law, L = λW, with L sampled from the server's /metrics.
#pragma once

#include <cstdint>
#include <string>

namespace conveyor {

struct ModelOptions {
  std::string server = "http://127.0.0.1:8700";
  std::string queue = "model";
  int64_t unit_ms = 100;             // one time unit
  double little_rate = 50;           // λ of the steady load, tasks/s
  double little_seconds = 4;         // how long the steady load is measured
  int64_t little_service_units = 2;  // each task's time in service
  bool json = false;
};

int RunModel(const ModelOptions& options);

}  // namespace conveyor
