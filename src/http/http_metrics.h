// HttpMetrics: requests counted by route and status for /metrics. Each I/O thread writes
// only its own row (indexed by the thread's shard index), so counting on the hot path
// never contends; a scrape sums the rows with relaxed loads.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace conveyor {

enum class Route : uint8_t {
  kAddTask,
  kEnqueue,
  kLease,
  kAck,
  kNack,
  kExtend,
  kBatchAck,
  kGetTask,
  kCancel,
  kRetry,
  kListQueues,
  kGetQueue,
  kPutQueue,
  kListTasks,
  kDeleteQueue,
  kRetryDead,
  kPurge,
  kListTopics,
  kGetTopic,
  kPutTopic,
  kDeleteTopic,
  kPublish,
  kListSchedules,
  kGetSchedule,
  kPutSchedule,
  kDeleteSchedule,
  kPauseSchedule,
  kMetrics,
  kHealthz,
  kOther,
};
inline constexpr size_t kRouteCount = static_cast<size_t>(Route::kOther) + 1;
std::string_view RouteName(Route route);

class HttpMetrics {
 public:
  static constexpr std::array<int, 16> kStatuses = {200, 201, 400, 401, 403, 404, 405, 409,
                                                    413, 415, 429, 431, 500, 503, 0,   0};
  explicit HttpMetrics(size_t threads);

  // REQUIRES: `thread` is the calling I/O thread's index.
  void Count(size_t thread, Route route, int status);
  void AppendPrometheus(std::string& out) const;

 private:
  struct alignas(64) Row {
    std::array<std::array<std::atomic<uint64_t>, kStatuses.size()>, kRouteCount> counts{};
  };
  std::vector<Row> rows_;
};

}  // namespace conveyor
