// The on-disk form of a task's metadata (everything but the payload, which is stored once
// under its own key) and of a queue's config. A version byte leads each record so a later
// format can be told apart. Pure functions; any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "engine/queue_config.h"
#include "engine/task.h"
#include "engine/task_reader.h"

namespace conveyor {

// Version 2 added the payload kind; version 3 moved result and progress to records of
// their own (deltas family); version 4 added the release, bury and kick counts. Older
// versions still load (1 and 2 with result and progress inline; counts 0 before 4).
// Version 5 added the flow-control key, whether the task pauses it (a held nack), and its
// unique key (unique work).
inline constexpr uint8_t kTaskRecordVersion = 5;
// Version 2 added whether the task pauses its key.
inline constexpr uint8_t kStateDeltaVersion = 2;

// Keys of the `deltas` family: the task id (big-endian) and one tag byte, so a task's
// deltas sort together and after its id. A state delta supersedes the state fields of the
// task record; the result and progress records hold those values.
inline constexpr char kStateDeltaTag = 's';
inline constexpr char kResultTag = 'r';
inline constexpr char kProgressTag = 'p';
std::string DeltaKey(uint64_t id, char tag);
bool ParseDeltaKey(std::string_view key, uint64_t& id, char& tag);
// Version 2 added the push config, version 3 flow control; older ones still load.
inline constexpr uint8_t kQueueRecordVersion = 3;

// The task record: everything but the payload, the result and the progress.
void EncodeTaskMeta(const Task& task, std::string& out);
bool DecodeTaskMeta(std::string_view in, StoredTask& out);

// A state delta: what a lease, an extend, an ack, a cancel or a timer changes (state,
// attempts, times, the lease), a few dozen bytes, so those changes never rewrite a task's
// errors, result or payload.
void EncodeStateDelta(const Task& task, std::string& out);
bool ApplyStateDelta(std::string_view in, Task& task);

// A topic's subscriber queues (meta family, key TopicKey(name)).
std::string TopicKey(std::string_view topic);
inline constexpr std::string_view kTopicKeyPrefix = "topic/";
void EncodeTopic(const std::vector<std::string>& queues, std::string& out);
bool DecodeTopic(std::string_view in, std::vector<std::string>& out);

void EncodeQueueConfig(const QueueConfig& config, std::string& out);
bool DecodeQueueConfig(std::string_view in, QueueConfig& out);

// Task ids as big-endian keys, so that RocksDB's order is id order.
std::string TaskKey(uint64_t id);
bool ParseTaskKey(std::string_view key, uint64_t& id);

}  // namespace conveyor
