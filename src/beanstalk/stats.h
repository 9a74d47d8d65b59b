// The beanstalkd protocol's view of tasks and queues: how a job's priority maps onto a
// task's, how a task's state and payload read as a job's, the YAML of stats-job,
// stats-tube and stats, and the server-wide counters that `stats` shows (relaxed atomics,
// written by every beanstalkd session, read by `stats`).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "beanstalk/command.h"
#include "engine/queue_stats.h"
#include "engine/task_view.h"

namespace conveyor::beanstalk {

// beanstalkd's pri (0 most urgent, unsigned 32 bits) onto Conveyor's priority (higher
// first, signed 32 bits): 2147483647 - pri, which keeps every value and its order.
int32_t PriorityOf(uint32_t pri);
uint32_t PriOf(int32_t priority);

// The job's state word: ready, delayed (scheduled), reserved (leased), buried (dead).
// Succeeded and canceled tasks are no jobs: nullopt-like empty view.
std::string_view JobState(TaskState state);
bool IsJob(TaskState state);

// A job's body: the bytes of a beanstalkd put as they were; for a task enqueued over HTTP
// the text of a JSON string payload, and the JSON text of any other payload.
std::string JobBody(const TaskView& task);

struct ServerCounters {
  std::array<std::atomic<uint64_t>, static_cast<size_t>(CommandKind::kBadFormat) + 1> commands{};
  std::atomic<uint64_t> total_connections{0};
  std::atomic<uint64_t> producers{0};
  std::atomic<uint64_t> workers{0};
  std::atomic<uint64_t> waiting{0};
  std::atomic<uint64_t> total_jobs{0};
  std::atomic<uint64_t> job_timeouts{0};
  int64_t started_mono_ms = 0;
  uint64_t count(CommandKind k) const {
    return commands[static_cast<size_t>(k)].load(std::memory_order_relaxed);
  }
};

std::string StatsJobYaml(const TaskView& task, int64_t now_ms);
// `using_it`, `watching`, `waiting`: the connections that use, watch and wait on the tube.
std::string StatsTubeYaml(const QueueSnapshot& queue, uint64_t using_it, uint64_t watching,
                          uint64_t waiting, int64_t now_mono_ms);
std::string StatsYaml(const std::vector<QueueSnapshot>& queues, const ServerCounters& counters,
                      size_t open_connections, size_t max_job_bytes, int64_t now_mono_ms);
std::string ListYaml(const std::vector<std::string>& names);

}  // namespace conveyor::beanstalk
