#include "beanstalk/stats.h"

#include <fmt/format.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>

#include "common/json_doc.h"

namespace conveyor::beanstalk {

int32_t PriorityOf(uint32_t pri) {
  return static_cast<int32_t>(int64_t{INT32_MAX} - static_cast<int64_t>(pri));
}

uint32_t PriOf(int32_t priority) {
  return static_cast<uint32_t>(int64_t{INT32_MAX} - static_cast<int64_t>(priority));
}

std::string_view JobState(TaskState state) {
  switch (state) {
    case TaskState::kReady:
      return "ready";
    case TaskState::kScheduled:
      return "delayed";
    case TaskState::kLeased:
      return "reserved";
    case TaskState::kDead:
      return "buried";
    default:
      return "";
  }
}

bool IsJob(TaskState state) { return !JobState(state).empty(); }

std::string JobBody(const TaskView& task) {
  if (task.payload_kind == PayloadKind::kBytes) return task.payload;
  JsonDoc& doc = ThreadJsonDoc();
  if (doc.Parse(task.payload, 128) && doc.root().is_string()) {
    return doc.root().string();
  }
  return task.payload;
}

namespace {

int64_t Seconds(int64_t ms) { return ms > 0 ? ms / 1000 : 0; }

uint64_t TimeoutsOf(const TaskView& task) {
  return static_cast<uint64_t>(
      std::count_if(task.errors.begin(), task.errors.end(),
                    [](const TaskError& e) { return e.message == "lease expired"; }));
}

}  // namespace

std::string StatsJobYaml(const TaskView& task, int64_t now_ms) {
  int64_t time_left = 0;
  if (task.state == TaskState::kLeased) time_left = Seconds(task.lease_expires_at - now_ms);
  if (task.state == TaskState::kScheduled) time_left = Seconds(task.run_at - now_ms);
  return fmt::format(
      "---\nid: {}\ntube: {}\nstate: {}\npri: {}\nage: {}\ndelay: {}\nttr: {}\ntime-left: {}\n"
      "file: 0\nreserves: {}\ntimeouts: {}\nreleases: {}\nburies: {}\nkicks: {}\n",
      task.id, task.queue, JobState(task.state), PriOf(task.priority),
      Seconds(now_ms - task.created_at), Seconds(task.run_at - task.created_at),
      std::max<int64_t>(1, Seconds(task.lease_ms)), time_left, task.attempts, TimeoutsOf(task),
      task.releases, task.buries, task.kicks);
}

std::string StatsTubeYaml(const QueueSnapshot& q, uint64_t using_it, uint64_t watching,
                          uint64_t waiting, int64_t now_mono_ms) {
  auto n = [&q](TaskState s) { return q.counts[static_cast<size_t>(s)]; };
  const bool timed = q.pause_until_mono > now_mono_ms;
  const int64_t pause = timed ? Seconds(q.pause_ms) : 0;
  const int64_t left = timed ? Seconds(q.pause_until_mono - now_mono_ms) : 0;
  return fmt::format(
      "---\nname: {}\ncurrent-jobs-urgent: {}\ncurrent-jobs-ready: {}\ncurrent-jobs-reserved: {}\n"
      "current-jobs-delayed: {}\ncurrent-jobs-buried: {}\ntotal-jobs: {}\ncurrent-using: {}\n"
      "current-watching: {}\ncurrent-waiting: {}\ncmd-delete: {}\ncmd-pause-tube: {}\npause: {}\n"
      "pause-time-left: {}\n",
      q.name, q.urgent, n(TaskState::kReady), n(TaskState::kLeased), n(TaskState::kScheduled),
      n(TaskState::kDead), q.totals.enqueued, using_it, watching, waiting, q.totals.deletes,
      q.totals.pauses, pause, left);
}

std::string StatsYaml(const std::vector<QueueSnapshot>& queues, const ServerCounters& c,
                      size_t open_connections, size_t max_job_bytes, int64_t now_mono_ms) {
  std::array<uint64_t, kTaskStateCount> jobs{};
  uint64_t urgent = 0;
  for (const QueueSnapshot& q : queues) {
    for (size_t i = 0; i < jobs.size(); ++i) jobs[i] += q.counts[i];
    urgent += q.urgent;
  }
  auto n = [&jobs](TaskState s) { return jobs[static_cast<size_t>(s)]; };
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  utsname host{};
  uname(&host);
  std::string out = fmt::format(
      "---\ncurrent-jobs-urgent: {}\ncurrent-jobs-ready: {}\ncurrent-jobs-reserved: {}\n"
      "current-jobs-delayed: {}\ncurrent-jobs-buried: {}\n",
      urgent, n(TaskState::kReady), n(TaskState::kLeased), n(TaskState::kScheduled),
      n(TaskState::kDead));
  static constexpr std::pair<std::string_view, CommandKind> kCounted[] = {
      {"cmd-put", CommandKind::kPut},
      {"cmd-peek", CommandKind::kPeek},
      {"cmd-peek-ready", CommandKind::kPeekReady},
      {"cmd-peek-delayed", CommandKind::kPeekDelayed},
      {"cmd-peek-buried", CommandKind::kPeekBuried},
      {"cmd-reserve", CommandKind::kReserve},
      {"cmd-reserve-with-timeout", CommandKind::kReserveWithTimeout},
      {"cmd-delete", CommandKind::kDelete},
      {"cmd-release", CommandKind::kRelease},
      {"cmd-use", CommandKind::kUse},
      {"cmd-watch", CommandKind::kWatch},
      {"cmd-ignore", CommandKind::kIgnore},
      {"cmd-bury", CommandKind::kBury},
      {"cmd-kick", CommandKind::kKick},
      {"cmd-touch", CommandKind::kTouch},
      {"cmd-stats", CommandKind::kStats},
      {"cmd-stats-job", CommandKind::kStatsJob},
      {"cmd-stats-tube", CommandKind::kStatsTube},
      {"cmd-list-tubes", CommandKind::kListTubes},
      {"cmd-list-tube-used", CommandKind::kListTubeUsed},
      {"cmd-list-tubes-watched", CommandKind::kListTubesWatched},
      {"cmd-pause-tube", CommandKind::kPauseTube},
  };
  for (const auto& [name, kind] : kCounted) out += fmt::format("{}: {}\n", name, c.count(kind));
  auto get = [](const std::atomic<uint64_t>& v) { return v.load(std::memory_order_relaxed); };
  out += fmt::format(
      "job-timeouts: {}\ntotal-jobs: {}\nmax-job-size: {}\ncurrent-tubes: {}\n"
      "current-connections: {}\ncurrent-producers: {}\ncurrent-workers: {}\n"
      "current-waiting: {}\ntotal-connections: {}\npid: {}\nversion: \"1.12\"\n"
      "rusage-utime: {}.{:06}\nrusage-stime: {}.{:06}\nuptime: {}\nbinlog-oldest-index: 0\n"
      "binlog-current-index: 0\nbinlog-records-migrated: 0\nbinlog-records-written: 0\n"
      "binlog-max-size: 10485760\ndraining: false\nid: conveyor\nhostname: {}\nos: {}\n"
      "platform: {}\n",
      get(c.job_timeouts), get(c.total_jobs), max_job_bytes, queues.size(), open_connections,
      get(c.producers), get(c.workers), get(c.waiting), get(c.total_connections), getpid(),
      usage.ru_utime.tv_sec, usage.ru_utime.tv_usec, usage.ru_stime.tv_sec, usage.ru_stime.tv_usec,
      (now_mono_ms - c.started_mono_ms) / 1000, host.nodename, host.version, host.machine);
  return out;
}

std::string ListYaml(const std::vector<std::string>& names) {
  std::string out = "---\n";
  for (const std::string& name : names) out += "- " + name + "\n";
  return out;
}

}  // namespace conveyor::beanstalk
