// Task ids and queue placement. An id is (sequence << kSlotBits) | slot: the sequence comes
// from one server-wide atomic counter, so ids are unique and strictly increasing across all
// queues; the slot is a stable hash of the queue name, so any thread can tell from an id
// alone which shard owns the task (shard = slot % shard count), whatever --threads is.
#pragma once

#include <cstdint>
#include <string_view>

namespace conveyor {

inline constexpr int kSlotBits = 6;
inline constexpr uint32_t kSlotCount = 1u << kSlotBits;  // also the most shards we run

// FNV-1a: stable across builds and restarts (std::hash is not promised to be).
inline uint32_t SlotOfQueue(std::string_view queue) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : queue) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return static_cast<uint32_t>(h % kSlotCount);
}

inline uint64_t MakeTaskId(uint64_t sequence, uint32_t slot) {
  return (sequence << kSlotBits) | slot;
}

inline uint32_t SlotOfTask(uint64_t id) { return static_cast<uint32_t>(id % kSlotCount); }

}  // namespace conveyor
