// Api, topics (fan-out): PUT/GET/DELETE /v1/topics/{t}, GET /v1/topics and
// POST /v1/topics/{t}/events (docs/API.md "Topics"). Decode, one TaskService call, encode.
#include "api/call_decoders.h"
#include "api/handlers.h"
#include "api/request_fields.h"
#include "api/responses.h"
#include "api/task_spec_decoder.h"
#include "common/json_writer.h"
#include "engine/queue_name.h"

namespace conveyor {

using boost::asio::awaitable;

namespace {

std::string TopicJson(std::string_view name, const std::vector<std::string>& queues) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  w.Field("name", name);
  w.Key("queues").BeginArray();
  for (const std::string& q : queues) w.String(q);
  w.EndArray();
  w.EndObject();
  return out;
}

Error TopicNameError() {
  return Error{ErrorCode::kInvalidField,
               "the topic name must be 1-128 characters of [A-Za-z0-9._-]"};
}

}  // namespace

awaitable<HttpResponse> Api::Topics(const Target& target, HttpRequest& request, Route& route) {
  const auto& s = target.segments;
  const std::string_view m = request.method;
  const bool get = m == "GET" || m == "HEAD";
  if (s.size() == 2) {
    route = Route::kListTopics;
    if (!get) co_return MethodNotAllowed("GET, HEAD");
    co_return co_await ListTopics();
  }
  if (s.size() > 4 || (s.size() == 4 && s[3] != "events")) {
    co_return ErrorResponse(ErrorCode::kNotFound, "no such path");
  }
  const std::string_view topic = s[2];
  if (s.size() == 4) {
    route = Route::kPublish;
    if (m != "POST") co_return MethodNotAllowed("POST");
    if (!IsValidQueueName(topic)) co_return ErrorResponse(TopicNameError());
    co_return co_await PublishEvent(topic, request);
  }
  route = get ? Route::kGetTopic : m == "PUT" ? Route::kPutTopic : Route::kDeleteTopic;
  if (!get && m != "PUT" && m != "DELETE") co_return MethodNotAllowed("GET, HEAD, PUT, DELETE");
  if (!IsValidQueueName(topic)) co_return ErrorResponse(TopicNameError());
  if (get) co_return co_await GetTopic(topic);
  if (m == "PUT") co_return co_await PutTopic(topic, request);
  co_return co_await DeleteTopic(topic);
}

awaitable<HttpResponse> Api::ListTopics() {
  std::vector<TopicView> all = co_await service_.ListTopics();
  std::string body = "{\"topics\":[";
  for (size_t i = 0; i < all.size(); ++i) {
    if (i > 0) body.push_back(',');
    body += TopicJson(all[i].name, all[i].queues);
  }
  body += "]}";
  co_return JsonResponse(200, std::move(body));
}

awaitable<HttpResponse> Api::GetTopic(std::string_view topic) {
  auto out = co_await service_.GetTopic(std::string(topic));
  if (!out.error.ok()) co_return ErrorResponse(out.error);
  co_return JsonResponse(200, TopicJson(topic, out.value));
}

awaitable<HttpResponse> Api::PutTopic(std::string_view topic, HttpRequest& request) {
  JsonValue root;
  if (auto e = ParseJsonBody(request.body, limits_.max_json_depth, root); !e.ok()) {
    co_return ErrorResponse(e);
  }
  if (!root.is_object()) {
    co_return ErrorResponse(ErrorCode::kInvalidField, "the body must be a JSON object");
  }
  std::vector<std::string> queues;
  for (JsonValue member = root.first(); member; member = member.next()) {
    if (member.key() != "queues") {
      co_return ErrorResponse(ErrorCode::kInvalidField,
                              member.key().substr(0, 64) + " is not a topic setting");
    }
    if (!member.is_array()) {
      co_return ErrorResponse(ErrorCode::kInvalidField, "queues must be an array of names");
    }
    for (JsonValue q = member.first(); q; q = q.next()) {
      if (!q.is_string()) {
        co_return ErrorResponse(ErrorCode::kInvalidField, "queues must be an array of names");
      }
      queues.push_back(q.string());
      if (queues.size() > 100) {
        co_return ErrorResponse(ErrorCode::kInvalidField, "queues must name 1 to 100 queues");
      }
    }
  }
  auto out = co_await service_.SetTopic(std::string(topic), std::move(queues));
  if (!out.error.ok()) co_return ErrorResponse(out.error);
  co_return JsonResponse(200, TopicJson(topic, out.value));
}

awaitable<HttpResponse> Api::DeleteTopic(std::string_view topic) {
  Error e = co_await service_.DeleteTopic(std::string(topic));
  if (!e.ok()) co_return ErrorResponse(e);
  std::string body;
  JsonWriter(body).BeginObject().Field("name", topic).Field("deleted", true).EndObject();
  co_return JsonResponse(200, std::move(body));
}

awaitable<HttpResponse> Api::PublishEvent(std::string_view topic, HttpRequest& request) {
  EnqueueBody decoded;
  if (auto e = DecodeEnqueueBody(request.body, limits_, decoded); !e.ok()) {
    co_return ErrorResponse(e);
  }
  PublishResult result = co_await service_.Publish(std::string(topic), std::move(decoded.specs));
  if (!result.error.ok()) co_return ErrorResponse(result.error);
  const size_t events = result.tasks.empty() ? 0 : result.tasks[0].size();
  bool all_duplicates = true;
  auto event_ids = [&result, &all_duplicates](JsonWriter& w, size_t event) {
    w.BeginObject();
    for (size_t q = 0; q < result.queues.size(); ++q) {
      const EnqueuedTask& t = result.tasks[q][event];
      all_duplicates = all_duplicates && t.duplicate;
      w.Field(result.queues[q], t.id);
    }
    w.EndObject();
  };
  std::string body;
  JsonWriter w(body);
  w.BeginObject();
  w.Key("ids");
  if (decoded.is_batch) {
    w.BeginArray();
    for (size_t e = 0; e < events; ++e) event_ids(w, e);
    w.EndArray();
    w.EndObject();
    co_return JsonResponse(201, std::move(body));
  }
  event_ids(w, 0);
  if (all_duplicates) w.Field("duplicate", true);
  w.EndObject();
  co_return JsonResponse(all_duplicates ? 200 : 201, std::move(body));
}

}  // namespace conveyor
