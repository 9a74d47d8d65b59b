#include "api/handlers.h"

#include <algorithm>
#include <map>
#include <memory>

#include "api/call_decoders.h"
#include "api/encoders.h"
#include "api/metrics_page.h"
#include "api/queue_config_decoder.h"
#include "api/request_fields.h"
#include "api/responses.h"
#include "api/task_spec_decoder.h"
#include "common/json_writer.h"
#include "engine/queue_name.h"

namespace conveyor {
namespace {

using boost::asio::awaitable;

Error QueueNameError() {
  return Error{ErrorCode::kInvalidQueueName,
               "queue names are 1 to 128 characters of A-Z a-z 0-9 . _ - (not only dots)"};
}

// JSON bodies come as application/json, or as what `curl -d` sends, or with no type.
bool IsJsonContentType(std::string_view type) {
  type = type.substr(0, type.find(';'));
  while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
  auto iequals = [](std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
             return std::tolower(static_cast<unsigned char>(x)) ==
                    std::tolower(static_cast<unsigned char>(y));
           });
  };
  return type.empty() || iequals(type, "application/json") ||
         iequals(type, "application/x-www-form-urlencoded");
}

// Parses an optional integer query parameter within [min, max].
Error QueryInt(std::string_view query, std::string_view name, int64_t min, int64_t max,
               int64_t& out) {
  auto text = QueryParam(query, name);
  if (!text) return {};
  auto value = ParseId(*text);
  if (!value || *value > static_cast<uint64_t>(max) || static_cast<int64_t>(*value) < min) {
    return Error{ErrorCode::kInvalidField, std::string(name) + " must be an integer from " +
                                               std::to_string(min) + " to " + std::to_string(max)};
  }
  out = static_cast<int64_t>(*value);
  return {};
}

// Cancels a parked wait when the client goes away (on the connection's thread).
std::function<void()> CancelOnClose(TaskService::WaitSlot slot) {
  return [slot] {
    if (*slot) (*slot)->Cancel();
  };
}

HttpResponse OutcomeResponse(const Error& error, std::string body, int status = 200) {
  if (!error.ok()) return ErrorResponse(error);
  return JsonResponse(status, std::move(body));
}

}  // namespace

Api::Api(TaskService& service, const Limits& limits, size_t threads)
    : service_(service), limits_(limits), http_metrics_(threads) {}

awaitable<HttpResponse> Api::Handle(HttpRequest& request, Connection& connection) {
  Route route = Route::kOther;
  HttpResponse response;
  if (!request.body.empty() && !IsJsonContentType(request.content_type)) {
    response = ErrorResponse(ErrorCode::kUnsupportedMediaType,
                             "send JSON: Content-Type application/json (or none)");
  } else {
    Target target = SplitTarget(request.target);
    response = co_await Dispatch(request, connection, target, route);
  }
  http_metrics_.Count(CurrentIoThread(), route, response.status);
  co_return response;
}

awaitable<HttpResponse> Api::Dispatch(HttpRequest& request, Connection& connection,
                                      const Target& target, Route& route) {
  const auto& s = target.segments;
  const std::string_view m = request.method;
  const bool get = m == "GET", post = m == "POST";

  if (s.size() == 1 && s[0] == "add_task") {
    route = Route::kAddTask;
    if (!post) co_return MethodNotAllowed("POST");
    co_return co_await AddTask(request);
  }
  if (s.size() == 1 && (s[0] == "healthz" || s[0] == "metrics")) {
    route = s[0] == "healthz" ? Route::kHealthz : Route::kMetrics;
    if (!get) co_return MethodNotAllowed("GET, HEAD");
    if (route == Route::kHealthz) co_return co_await Healthz();
    co_return co_await Metrics();
  }
  if (s.size() < 2 || s[0] != "v1") {
    co_return ErrorResponse(ErrorCode::kNotFound, "no such path");
  }

  if (s[1] == "ack" && s.size() == 2) {
    route = Route::kBatchAck;
    if (!post) co_return MethodNotAllowed("POST");
    co_return co_await BatchAck(request);
  }

  if (s[1] == "queues") {
    if (s.size() == 2) {
      route = Route::kListQueues;
      if (!get) co_return MethodNotAllowed("GET, HEAD");
      co_return co_await ListQueues();
    }
    if (s.size() > 4) co_return ErrorResponse(ErrorCode::kNotFound, "no such path");
    std::string_view queue = s[2];
    if (s.size() == 3) {
      route = get ? Route::kGetQueue : m == "DELETE" ? Route::kDeleteQueue : Route::kPutQueue;
      if (!get && m != "PUT" && m != "DELETE") {
        co_return MethodNotAllowed("GET, HEAD, PUT, DELETE");
      }
      if (!IsValidQueueName(queue)) co_return ErrorResponse(QueueNameError());
      if (get) co_return co_await GetQueue(queue);
      if (m == "DELETE") co_return co_await DeleteQueue(queue);
      co_return co_await PutQueue(queue, request);
    }
    if (s[3] == "retry-dead" || s[3] == "purge") {
      route = s[3] == "purge" ? Route::kPurge : Route::kRetryDead;
      if (!post) co_return MethodNotAllowed("POST");
      if (!IsValidQueueName(queue)) co_return ErrorResponse(QueueNameError());
      co_return co_await BulkCommand(queue, s[3] == "purge", target.query, request);
    }
    if (s[3] == "tasks") {
      route = post ? Route::kEnqueue : Route::kListTasks;
      if (!get && !post) co_return MethodNotAllowed("GET, HEAD, POST");
      if (!IsValidQueueName(queue)) co_return ErrorResponse(QueueNameError());
      if (post) co_return co_await Enqueue(queue, request);
      co_return co_await ListTasks(queue, target.query);
    }
    if (s[3] == "lease") {
      route = Route::kLease;
      if (!post) co_return MethodNotAllowed("POST");
      if (!IsValidQueueName(queue)) co_return ErrorResponse(QueueNameError());
      co_return co_await Lease(queue, request, connection);
    }
    co_return ErrorResponse(ErrorCode::kNotFound, "no such path");
  }

  if (s[1] == "topics") co_return co_await Topics(target, request, route);
  if (s[1] == "schedules") co_return co_await Schedules(target, request, route);

  if (s[1] == "tasks" && (s.size() == 3 || s.size() == 4)) {
    std::string_view action = s.size() == 4 ? s[3] : std::string_view();
    static constexpr std::string_view kActions[] = {"ack", "nack", "extend", "retry"};
    if (s.size() == 4 &&
        std::find(std::begin(kActions), std::end(kActions), action) == std::end(kActions)) {
      co_return ErrorResponse(ErrorCode::kNotFound, "no such path");
    }
    if (s.size() == 3) {
      route = m == "DELETE" ? Route::kCancel : Route::kGetTask;
      if (!get && m != "DELETE") co_return MethodNotAllowed("GET, HEAD, DELETE");
    } else {
      route = action == "ack"      ? Route::kAck
              : action == "nack"   ? Route::kNack
              : action == "extend" ? Route::kExtend
                                   : Route::kRetry;
      if (!post) co_return MethodNotAllowed("POST");
    }
    auto id = ParseId(s[2]);
    if (!id) {
      co_return ErrorResponse(ErrorCode::kInvalidField,
                              "the task id in the path must be an unsigned 64-bit integer");
    }
    switch (route) {
      case Route::kGetTask:
        co_return co_await GetTask(*id, target.query, connection);
      case Route::kCancel:
        co_return co_await Cancel(*id);
      case Route::kAck:
        co_return co_await Ack(*id, request);
      case Route::kNack:
        co_return co_await Nack(*id, request);
      case Route::kExtend:
        co_return co_await Extend(*id, request);
      default:
        co_return co_await Retry(*id);
    }
  }
  co_return ErrorResponse(ErrorCode::kNotFound, "no such path");
}

// ---- enqueue ---------------------------------------------------------------------------

awaitable<HttpResponse> Api::AddTask(HttpRequest& request) {
  std::vector<TaskSpec> specs(1);
  if (auto e = DecodeAddTaskBody(request.body, limits_, specs[0]); !e.ok()) {
    co_return ErrorResponse(e);
  }
  auto result = co_await service_.Enqueue("default", std::move(specs));
  if (!result.error.ok()) co_return ErrorResponse(result.error);
  std::string body;
  JsonWriter(body)
      .BeginObject()
      .Field("message", "task added to queue")
      .Field("id", result.tasks[0].id)
      .EndObject();
  co_return JsonResponse(200, std::move(body));
}

awaitable<HttpResponse> Api::Enqueue(std::string_view queue, HttpRequest& request) {
  EnqueueBody decoded;
  if (auto e = DecodeEnqueueBody(request.body, limits_, decoded); !e.ok()) {
    co_return ErrorResponse(e);
  }
  auto result = co_await service_.Enqueue(std::string(queue), std::move(decoded.specs));
  if (!result.error.ok()) co_return ErrorResponse(result.error);
  std::string body;
  JsonWriter w(body);
  w.BeginObject();
  if (decoded.is_batch) {
    w.Key("ids").BeginArray();
    for (const auto& t : result.tasks) w.Uint(t.id);
    w.EndArray();
    w.EndObject();
    co_return JsonResponse(201, std::move(body));
  }
  const EnqueuedTask& task = result.tasks[0];
  w.Field("id", task.id).Field("state", TaskStateName(task.state));
  if (task.duplicate) w.Field("duplicate", true);
  if (task.replaced) w.Field("replaced", true);
  w.EndObject();
  co_return JsonResponse(task.duplicate ? 200 : 201, std::move(body));
}

// ---- lease / ack / nack / extend ---------------------------------------------------------

awaitable<HttpResponse> Api::Lease(std::string_view queue, HttpRequest& request,
                                   Connection& connection) {
  LeaseCommand command;
  if (auto e = DecodeLeaseBody(request.body, limits_, command.request); !e.ok()) {
    co_return ErrorResponse(e);
  }
  command.queues.emplace_back(queue);
  auto slot = std::make_shared<std::shared_ptr<WaitHandle>>();
  if (command.request.wait_ms > 0) connection.WatchForClose(CancelOnClose(slot));
  LeaseResult result = co_await service_.Lease(std::move(command), slot);
  if (!result.error.ok()) co_return ErrorResponse(result.error);
  HttpResponse response = JsonResponse(200, LeaseAnswerJson(result));
  if (!result.granted.empty()) {
    response.on_undelivered = [this, granted = std::move(result.granted)]() mutable {
      service_.ReleaseUndelivered(std::move(granted));
    };
  }
  co_return response;
}

awaitable<HttpResponse> Api::Ack(uint64_t id, HttpRequest& request) {
  AckCall call;
  if (auto e = DecodeAckBody(request.body, limits_, call); !e.ok()) co_return ErrorResponse(e);
  call.id = id;
  auto out = co_await service_.Ack(std::move(call));
  co_return OutcomeResponse(out.error, out.error.ok() ? IdStateJson(out.value) : "");
}

awaitable<HttpResponse> Api::Nack(uint64_t id, HttpRequest& request) {
  NackCall call;
  if (auto e = DecodeNackBody(request.body, limits_, call); !e.ok()) co_return ErrorResponse(e);
  auto out = co_await service_.Nack(id, std::move(call));
  co_return OutcomeResponse(out.error, out.error.ok() ? IdStateJson(out.value) : "");
}

awaitable<HttpResponse> Api::Extend(uint64_t id, HttpRequest& request) {
  ExtendCall call;
  if (auto e = DecodeExtendBody(request.body, limits_, call); !e.ok()) co_return ErrorResponse(e);
  auto out = co_await service_.Extend(id, std::move(call));
  std::string body;
  if (out.error.ok()) JsonWriter(body).BeginObject().Field("expires_at", out.value).EndObject();
  co_return OutcomeResponse(out.error, std::move(body));
}

awaitable<HttpResponse> Api::BatchAck(HttpRequest& request) {
  std::vector<AckCall> calls;
  if (auto e = DecodeBatchAckBody(request.body, limits_, calls); !e.ok()) {
    co_return ErrorResponse(e);
  }
  std::vector<uint64_t> ids;
  ids.reserve(calls.size());
  for (const AckCall& c : calls) ids.push_back(c.id);
  std::vector<Error> outcomes = co_await service_.AckMany(std::move(calls));
  std::string body;
  JsonWriter w(body);
  w.BeginObject().Key("results").BeginArray();
  for (size_t i = 0; i < ids.size(); ++i) {
    w.BeginObject().Field("id", ids[i]);
    if (outcomes[i].ok()) {
      w.Field("ok", true);
    } else {
      w.Key("error").BeginObject();
      w.Field("code", ErrorCodeName(outcomes[i].code));
      w.Field("message", std::string_view(outcomes[i].message));
      w.EndObject();
    }
    w.EndObject();
  }
  w.EndArray().EndObject();
  co_return JsonResponse(200, std::move(body));
}

// ---- task reads and admin --------------------------------------------------------------

awaitable<HttpResponse> Api::GetTask(uint64_t id, std::string_view query, Connection& connection) {
  int64_t wait_ms = 0;
  if (auto e = QueryInt(query, "wait_ms", 0, limits_.max_wait_ms, wait_ms); !e.ok()) {
    co_return ErrorResponse(e);
  }
  auto slot = std::make_shared<std::shared_ptr<WaitHandle>>();
  if (wait_ms > 0) connection.WatchForClose(CancelOnClose(slot));
  auto out = co_await service_.Get(id, wait_ms, slot);
  std::string body;
  if (out.error.ok()) AppendTaskJson(body, out.value);
  co_return OutcomeResponse(out.error, std::move(body));
}

awaitable<HttpResponse> Api::Cancel(uint64_t id) {
  auto out = co_await service_.Cancel(id);
  co_return OutcomeResponse(out.error, out.error.ok() ? IdStateJson(out.value) : "");
}

awaitable<HttpResponse> Api::Retry(uint64_t id) {
  auto out = co_await service_.Retry(id);
  co_return OutcomeResponse(out.error, out.error.ok() ? IdStateJson(out.value) : "");
}

// 200 while serving (SPEC.md); "degraded" while storage refuses changes.
awaitable<HttpResponse> Api::Healthz() {
  const bool writable = co_await service_.StorageWritable();
  co_return JsonResponse(
      200, writable ? R"({"status":"ok"})" : R"({"status":"degraded","storage":"failing"})");
}

awaitable<HttpResponse> Api::ListQueues() {
  std::vector<QueueSnapshot> all = co_await service_.AllQueueStats();
  std::sort(all.begin(), all.end(),
            [](const QueueSnapshot& a, const QueueSnapshot& b) { return a.name < b.name; });
  std::string body = "{\"queues\":[";
  for (size_t i = 0; i < all.size(); ++i) {
    if (i > 0) body.push_back(',');
    AppendQueueStatsJson(body, all[i], push_status_ ? push_status_(all[i].name) : "");
  }
  body += "]}";
  co_return JsonResponse(200, std::move(body));
}

awaitable<HttpResponse> Api::GetQueue(std::string_view queue) {
  QueueSnapshot stats = co_await service_.QueueStats(std::string(queue));
  std::string body;
  AppendQueueStatsJson(body, stats, push_status_ ? push_status_(queue) : "");
  co_return JsonResponse(200, std::move(body));
}

awaitable<HttpResponse> Api::PutQueue(std::string_view queue, HttpRequest& request) {
  QueueConfigPatch patch;
  if (auto e = DecodeQueueConfigPatch(request.body, limits_, patch); !e.ok()) {
    co_return ErrorResponse(e);
  }
  auto out = co_await service_.Configure(std::string(queue), patch);
  std::string body;
  if (out.error.ok()) AppendQueueConfigJson(body, out.value);
  if (out.error.ok() && on_configured_) on_configured_(std::string(queue), out.value);
  co_return OutcomeResponse(out.error, std::move(body));
}

awaitable<HttpResponse> Api::ListTasks(std::string_view queue, std::string_view query) {
  std::optional<TaskState> state;
  if (auto text = QueryParam(query, "state"); text && !text->empty()) {
    state = ParseTaskState(*text);
    if (!state) {
      co_return ErrorResponse(ErrorCode::kInvalidField,
                              "state must be one of scheduled, ready, leased, succeeded, dead, "
                              "canceled");
    }
  }
  int64_t limit = 100;
  int64_t after = 0;
  if (auto e = QueryInt(query, "limit", 1, 1000, limit); !e.ok()) co_return ErrorResponse(e);
  if (auto e = QueryInt(query, "after", 0, INT64_MAX, after); !e.ok()) co_return ErrorResponse(e);
  auto out = co_await service_.List(std::string(queue), state, static_cast<size_t>(limit),
                                    static_cast<uint64_t>(after));
  co_return OutcomeResponse(out.error, out.error.ok() ? TaskPageJson(out.value) : "");
}

awaitable<HttpResponse> Api::Metrics() {
  std::vector<QueueSnapshot> all = co_await service_.AllQueueStats();
  ServiceGauges g = service_.Gauges();
  HttpResponse response = JsonResponse(
      200,
      RenderMetricsPage(std::move(all), limits_.max_metrics_queues,
                        ServerGauges{g.live_tasks, g.waiters, g.rss_bytes, g.payload_cache_bytes},
                        http_metrics_));
  std::vector<ScheduleView> schedules = co_await service_.ListSchedules();
  AppendScheduleMetrics(response.body, schedules, limits_.max_metrics_queues);
  for (const auto& append : more_metrics_) append(response.body);
  response.content_type = "text/plain; version=0.0.4; charset=utf-8";
  co_return response;
}

}  // namespace conveyor
