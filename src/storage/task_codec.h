// The on-disk form of a task's metadata (everything but the payload, which is stored once
// under its own key) and of a queue's config. A version byte leads each record so a later
// format can be told apart. Pure functions; any thread.
#pragma once

#include <string>
#include <string_view>

#include "engine/queue_config.h"
#include "engine/task.h"

namespace conveyor {

// Version 2 added the payload kind; version 1 records (all JSON payloads) still load.
inline constexpr uint8_t kTaskRecordVersion = 2;
inline constexpr uint8_t kQueueRecordVersion = 1;

// A task read back from storage: `task.queue` is null; the queue is named.
struct StoredTask {
  Task task;
  std::string queue;
};

void EncodeTaskMeta(const Task& task, std::string& out);
bool DecodeTaskMeta(std::string_view in, StoredTask& out);

void EncodeQueueConfig(const QueueConfig& config, std::string& out);
bool DecodeQueueConfig(std::string_view in, QueueConfig& out);

// Task ids as big-endian keys, so that RocksDB's order is id order.
std::string TaskKey(uint64_t id);
bool ParseTaskKey(std::string_view key, uint64_t& id);

}  // namespace conveyor
