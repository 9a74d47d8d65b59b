// NowJournal: a Journal for engine unit tests that keeps nothing and is durable at once,
// remembering the last schedule record and the last queue removed (for the tests that
// look at what would be stored). Test code only; one thread.
#pragma once

#include <string>
#include <string_view>

#include "engine/journal.h"
#include "engine/schedule.h"

namespace conveyor {

class NowJournal final : public Journal {
 public:
  void TaskChanged(const Task&) override {}
  void TaskRemoved(uint64_t, uint8_t) override {}
  void QueueConfigChanged(std::string_view, const QueueConfig&) override {}
  void QueueRemoved(std::string_view queue) override { removed = std::string(queue); }
  void ScheduleChanged(const ScheduleView& s) override { last = s; }
  void WhenDurable(Callback<void(Error)> done) override { done(Error{}); }

  ScheduleView last;    // the last schedule written
  std::string removed;  // the last queue removed
};

}  // namespace conveyor
