// The JSON the HTTP API answers with, from the engine's plain results: a task (SPEC.md
// "A task as returned"), queue stats and config, lease answers and task pages. The only
// place a task becomes JSON. Stateless; runs on the connection's thread.
#pragma once

#include <string>

#include "common/base64.h"
#include "engine/engine.h"
#include "engine/queue_stats.h"
#include "engine/task_view.h"

namespace conveyor {

// A JSON payload is spliced as sent. Opaque bytes (a beanstalkd body) become a JSON
// string when they are valid UTF-8, else base64 text with "payload_encoding":"base64".
void AppendTaskJson(std::string& out, const TaskView& task);
void AppendQueueConfigJson(std::string& out, const QueueConfig& config);
// push_status: the JSON object of the queue's push delivery (empty: it has none).
void AppendQueueStatsJson(std::string& out, const QueueSnapshot& snapshot,
                          std::string_view push_status = {});
// {"tasks":[...]} (+ "truncated":true)
std::string LeaseAnswerJson(const LeaseResult& result);
// {"tasks":[...],"next_after":ID|null} (+ "truncated":true)
std::string TaskPageJson(const TaskPage& page);
std::string IdStateJson(const IdState& id_state);

bool IsValidUtf8(std::string_view text);

}  // namespace conveyor
