// ChildProcess: runs one command for `conveyor work` with the payload on its stdin,
// collecting stdout (capped) and the tail of stderr, and calling a heartbeat while it
// runs so the worker can extend its lease. The child gets its own process group so a
// Ctrl-C aimed at the worker does not kill the running command. Blocking; one per thread.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace conveyor {

struct ChildResult {
  int exit_code = -1;  // -1 when it could not start or was killed by a signal
  std::string out;     // stdout, at most max_stdout bytes
  bool out_truncated = false;
  std::string err_tail;  // the last bytes of stderr
  std::string failure;   // why it could not start, or the signal that killed it
};

struct ChildOptions {
  std::vector<std::string> argv;
  std::vector<std::string> extra_env;  // "NAME=value"
  std::string input;
  size_t max_stdout = 512 * 1024;
  size_t stderr_tail = 4096;
  std::chrono::milliseconds heartbeat_every{10000};
  std::function<void()> heartbeat;
};

ChildResult RunChild(const ChildOptions& options);

}  // namespace conveyor
