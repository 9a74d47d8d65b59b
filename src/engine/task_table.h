// TaskTable: every task an Engine holds in memory, by id. A hash set of the task
// pointers themselves (8 bytes a slot, looked up by id), and the keeper of the payload
// cache's count: the bytes of payloads held in memory, given back to the server-wide
// count (--payload-cache-bytes) when a task leaves. Owned by one Engine; its thread only.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "engine/task.h"

namespace conveyor {

class TaskTable {
 public:
  explicit TaskTable(std::atomic<size_t>& payload_bytes) : payload_bytes_(payload_bytes) {}
  TaskTable(const TaskTable&) = delete;
  TaskTable& operator=(const TaskTable&) = delete;
  ~TaskTable() { Clear(); }

  // Any task in memory, published or not.
  Task* Find(uint64_t id) const {
    auto it = tasks_.find(id);
    return it == tasks_.end() ? nullptr : it->get();
  }
  bool Contains(uint64_t id) const { return tasks_.contains(id); }
  Task& Insert(TaskPtr task) {
    Task* raw = task.get();
    tasks_.insert(std::move(task));
    return *raw;
  }
  void Erase(uint64_t id) {
    auto it = tasks_.find(id);
    if (it == tasks_.end()) return;
    GiveBack(**it);
    tasks_.erase(it);
  }
  void Clear() {
    for (const TaskPtr& task : tasks_) GiveBack(*task);
    tasks_.clear();
  }
  size_t size() const { return tasks_.size(); }

 private:
  struct ById {
    using is_transparent = void;
    size_t operator()(uint64_t id) const { return absl::Hash<uint64_t>{}(id); }
    size_t operator()(const TaskPtr& t) const { return (*this)(t->id); }
  };
  struct SameId {
    using is_transparent = void;
    static uint64_t Id(uint64_t id) { return id; }
    static uint64_t Id(const TaskPtr& t) { return t->id; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return Id(a) == Id(b);
    }
  };
  void GiveBack(const Task& task) {
    if (task.payload_inline) payload_bytes_.fetch_sub(task.payload_size, std::memory_order_relaxed);
  }

  std::atomic<size_t>& payload_bytes_;
  absl::flat_hash_set<TaskPtr, ById, SameId> tasks_;
};

}  // namespace conveyor
