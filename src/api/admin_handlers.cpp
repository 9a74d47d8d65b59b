// Api, operators' commands: DELETE /v1/queues/{q} (only when it has no task),
// POST /v1/queues/{q}/retry-dead (all dead tasks, or up to `limit`) and
// POST /v1/queues/{q}/purge?state=succeeded|dead|canceled (docs/API.md "Operating").
// Decode, one TaskService call, encode.
#include <charconv>
#include <limits>

#include "api/handlers.h"
#include "api/request_fields.h"
#include "api/responses.h"
#include "common/json_writer.h"
#include "http/route.h"

namespace conveyor {

using boost::asio::awaitable;

namespace {

// `limit` (≥ 1) from the query or the JSON body; all when absent.
Error ReadBulkArgs(std::string_view query, std::string_view body, size_t max_depth, bool purge,
                   uint64_t& limit, std::optional<TaskState>& state) {
  limit = std::numeric_limits<uint64_t>::max();
  std::optional<std::string> state_text;
  if (auto q = QueryParam(query, "limit")) {
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(q->data(), q->data() + q->size(), v);
    if (ec != std::errc() || end != q->data() + q->size() || v == 0) {
      return Error{ErrorCode::kInvalidField, "limit must be a whole number ≥ 1"};
    }
    limit = v;
  }
  if (auto q = QueryParam(query, "state")) state_text = std::string(*q);
  if (!body.empty()) {
    JsonValue root;
    if (auto e = ParseJsonBody(body, max_depth, root); !e.ok()) return e;
    if (!root.is_object()) return Error{ErrorCode::kInvalidField, "the body must be a JSON object"};
    FieldReader f(root);
    std::optional<int64_t> n;
    if (auto e = f.Int("limit", 1, std::numeric_limits<int64_t>::max(), n); !e.ok()) return e;
    if (n) limit = static_cast<uint64_t>(*n);
    std::optional<std::string> s;
    if (purge) {
      if (auto e = f.String("state", 16, s); !e.ok()) return e;
      if (s) state_text = s;
    }
    for (JsonValue m = root.first(); m; m = m.next()) {
      const std::string key = m.key();
      if (key != "limit" && !(purge && key == "state")) {
        return f.Invalid(key.substr(0, 64), "is not an argument here");
      }
    }
  }
  if (purge) {
    if (!state_text) {
      return Error{ErrorCode::kInvalidField, "state is required: succeeded, dead or canceled"};
    }
    state = ParseTaskState(*state_text);
    if (!state || !IsFinished(*state)) {
      return Error{ErrorCode::kInvalidField,
                   "state must be succeeded, dead or canceled (only finished tasks are purged)"};
    }
  }
  return {};
}

}  // namespace

awaitable<HttpResponse> Api::DeleteQueue(std::string_view queue) {
  Error e = co_await service_.DeleteQueue(std::string(queue));
  if (!e.ok()) co_return ErrorResponse(e);
  if (on_configured_) on_configured_(std::string(queue), QueueConfig{});  // push stops
  std::string body;
  JsonWriter(body).BeginObject().Field("name", queue).Field("deleted", true).EndObject();
  co_return JsonResponse(200, std::move(body));
}

awaitable<HttpResponse> Api::BulkCommand(std::string_view queue, bool purge, std::string_view query,
                                         HttpRequest& request) {
  uint64_t limit = 0;
  std::optional<TaskState> state;
  if (Error e = ReadBulkArgs(query, request.body, limits_.max_json_depth, purge, limit, state);
      !e.ok()) {
    co_return ErrorResponse(e);
  }
  Outcome<BulkResult> out;
  if (purge) {
    out = co_await service_.PurgeTasks(std::string(queue), *state, limit);
  } else {
    out = co_await service_.RetryDeadTasks(std::string(queue), limit);
  }
  if (!out.error.ok()) co_return ErrorResponse(out.error);
  std::string body;
  JsonWriter(body)
      .BeginObject()
      .Field(purge ? "purged" : "retried", out.value.done)
      .Field("remaining", out.value.remaining)
      .EndObject();
  co_return JsonResponse(200, std::move(body));
}

}  // namespace conveyor
