// Api, schedules: PUT/GET/DELETE /v1/schedules/{name}, GET /v1/schedules and
// POST /v1/schedules/{name}/pause|resume (docs/API.md "Schedules"). Decode, one
// TaskService call, encode.
#include "api/handlers.h"
#include "api/responses.h"
#include "api/schedule_decoder.h"
#include "common/json_writer.h"
#include "engine/queue_name.h"

namespace conveyor {

using boost::asio::awaitable;

namespace {

void AppendScheduleJson(std::string& out, const ScheduleView& s) {
  JsonWriter w(out);
  w.BeginObject();
  w.Field("name", std::string_view(s.name));
  w.Field("queue", std::string_view(s.spec.queue));
  w.Key("cron");
  if (s.spec.cron.empty()) {
    w.Null();
  } else {
    w.String(s.spec.cron);
  }
  w.Key("every_ms");
  if (s.spec.cron.empty()) {
    w.Int(s.spec.every_ms);
  } else {
    w.Null();
  }
  w.Field("timezone", std::string_view(s.spec.cron.empty() ? "UTC" : s.spec.timezone));
  w.Field("catch_up", CatchUpName(s.spec.catch_up));
  w.Field("paused", s.spec.paused);
  const TaskTemplate& t = s.spec.task;
  w.Key("task").BeginObject();
  w.Key("payload").Raw(t.payload);
  w.Field("priority", t.priority);
  w.Key("max_attempts");
  if (t.max_attempts) {
    w.Uint(*t.max_attempts);
  } else {
    w.Null();
  }
  w.Key("lease_ms");
  if (t.lease_ms > 0) {
    w.Int(t.lease_ms);
  } else {
    w.Null();
  }
  w.Key("key");
  if (t.key.empty()) {
    w.Null();
  } else {
    w.String(t.key);
  }
  w.Key("unique");
  if (t.unique_key.empty()) {
    w.Null();
  } else {
    w.BeginObject();
    w.Field("key", std::string_view(t.unique_key));
    w.Key("ttl_ms");
    if (t.unique_ttl_ms > 0) {
      w.Int(t.unique_ttl_ms);
    } else {
      w.Null();
    }
    w.Field("while", std::string_view(t.unique_active ? "active" : "queued"));
    w.EndObject();
  }
  w.EndObject();
  w.Field("created_at", s.created_at);
  w.Key("next_run_at");
  if (s.spec.paused || s.next_at == kNever) {
    w.Null();
  } else {
    w.Int(s.next_at);
  }
  w.Key("last_run_at");
  if (s.last_tick == 0) {
    w.Null();
  } else {
    w.Int(s.last_tick);
  }
  w.Field("runs", s.runs);
  w.Field("skipped", s.skipped);
  w.EndObject();
}

std::string ScheduleJson(const ScheduleView& s) {
  std::string out;
  AppendScheduleJson(out, s);
  return out;
}

Error ScheduleNameError() {
  return Error{ErrorCode::kInvalidField,
               "the schedule name must be 1-128 characters of [A-Za-z0-9._-]"};
}

}  // namespace

awaitable<HttpResponse> Api::Schedules(const Target& target, HttpRequest& request, Route& route) {
  const auto& s = target.segments;
  const std::string_view m = request.method;
  const bool get = m == "GET" || m == "HEAD";
  if (s.size() == 2) {
    route = Route::kListSchedules;
    if (!get) co_return MethodNotAllowed("GET, HEAD");
    std::vector<ScheduleView> all = co_await service_.ListSchedules();
    std::string body = "{\"schedules\":[";
    for (size_t i = 0; i < all.size(); ++i) {
      if (i > 0) body.push_back(',');
      AppendScheduleJson(body, all[i]);
    }
    body += "]}";
    co_return JsonResponse(200, std::move(body));
  }
  if (s.size() > 4 || (s.size() == 4 && s[3] != "pause" && s[3] != "resume")) {
    co_return ErrorResponse(ErrorCode::kNotFound, "no such path");
  }
  const std::string name(s[2]);
  if (s.size() == 4) {
    route = Route::kPauseSchedule;
    if (m != "POST") co_return MethodNotAllowed("POST");
    if (!IsValidQueueName(name)) co_return ErrorResponse(ScheduleNameError());
    auto out = co_await service_.PauseSchedule(name, s[3] == "pause");
    if (!out.error.ok()) co_return ErrorResponse(out.error);
    co_return JsonResponse(200, ScheduleJson(out.value));
  }
  route = get ? Route::kGetSchedule : m == "PUT" ? Route::kPutSchedule : Route::kDeleteSchedule;
  if (!get && m != "PUT" && m != "DELETE") co_return MethodNotAllowed("GET, HEAD, PUT, DELETE");
  if (!IsValidQueueName(name)) co_return ErrorResponse(ScheduleNameError());
  if (get) {
    auto out = co_await service_.GetSchedule(name);
    if (!out.error.ok()) co_return ErrorResponse(out.error);
    co_return JsonResponse(200, ScheduleJson(out.value));
  }
  if (m == "PUT") co_return co_await PutSchedule(name, request);
  Error e = co_await service_.DeleteSchedule(name);
  if (!e.ok()) co_return ErrorResponse(e);
  std::string body;
  JsonWriter(body)
      .BeginObject()
      .Field("name", std::string_view(name))
      .Field("deleted", true)
      .EndObject();
  co_return JsonResponse(200, std::move(body));
}

awaitable<HttpResponse> Api::PutSchedule(std::string_view name, HttpRequest& request) {
  ScheduleSpec spec;
  if (Error e = DecodeScheduleBody(request.body, limits_, spec); !e.ok()) {
    co_return ErrorResponse(e);
  }
  auto out = co_await service_.SetSchedule(std::string(name), std::move(spec));
  if (!out.error.ok()) co_return ErrorResponse(out.error);
  co_return JsonResponse(200, ScheduleJson(out.value));
}

}  // namespace conveyor
