// conveyor::sdk::Client over HttpClient (src/client): one keep-alive pool on the client's
// executor; requests encoded and answers decoded with Boost.JSON.
#include <conveyor/client.h>

#include <boost/json.hpp>

#include "client/http_client.h"
#include "common/url.h"

namespace conveyor::sdk {

namespace json = boost::json;

struct Client::Impl {
  Impl(boost::asio::any_io_executor ex, Url u)
      : executor(ex), url(std::move(u)), http(ex, Options()) {}

  static HttpClientOptions Options() {
    HttpClientOptions o;
    o.answer_timeout_ms = 90000;  // long-polls wait up to 60 s
    o.total_timeout_ms = 90000;
    o.max_answer_body_bytes = 64u << 20;
    o.user_agent = "conveyor-sdk-cpp";
    return o;
  }

  // The answer's JSON, or throws Error.
  awaitable<json::value> Call(std::string_view method, std::string target, std::string body) {
    HttpCall call;
    call.method = method;
    call.target = target;
    call.body = body;
    HttpAnswer answer = co_await http.Request(url, call);
    if (!answer.ok()) throw Error(0, {}, answer.error);
    boost::system::error_code ec;
    json::value value = answer.body.empty() ? json::value() : json::parse(answer.body, ec);
    if (answer.status >= 400) {
      std::string code, message = answer.body;
      if (!ec && value.is_object()) {
        if (auto* e = value.as_object().if_contains("error"); e && e->is_object()) {
          if (auto* c = e->as_object().if_contains("code"); c && c->is_string()) {
            code = c->as_string().c_str();
          }
          if (auto* m = e->as_object().if_contains("message"); m && m->is_string()) {
            message = m->as_string().c_str();
          }
        }
      }
      throw Error(answer.status, code,
                  std::string(method) + " " + target + ": " + std::to_string(answer.status) + " " +
                      message);
    }
    if (ec || !value.is_object()) {
      throw Error(answer.status, "invalid_answer", "the server's answer is not a JSON object");
    }
    co_return value;
  }

  boost::asio::any_io_executor executor;
  Url url;
  HttpClient http;
};

namespace {

std::string SpecJson(const std::string& payload, const EnqueueOptions& o) {
  std::string out = "{\"payload\":" + payload;
  if (o.priority != 0) out += ",\"priority\":" + std::to_string(o.priority);
  if (o.delay_ms) out += ",\"delay_ms\":" + std::to_string(*o.delay_ms);
  if (o.deadline) out += ",\"deadline\":" + std::to_string(*o.deadline);
  if (o.max_attempts) out += ",\"max_attempts\":" + std::to_string(*o.max_attempts);
  if (!o.idempotency_key.empty()) {
    out += ",\"idempotency_key\":" + json::serialize(json::string(o.idempotency_key));
  }
  return out + "}";
}

uint64_t U64(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_number()) return 0;
  boost::system::error_code bad;
  const uint64_t n = v->to_number<uint64_t>(bad);
  return bad ? 0 : n;
}

std::string Str(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string().c_str()) : std::string();
}

Task TaskOf(const json::value& v) {
  Task t;
  if (!v.is_object()) return t;
  const json::object& o = v.as_object();
  t.id = U64(o, "id");
  t.queue = Str(o, "queue");
  if (const json::value* p = o.if_contains("payload")) t.payload = json::serialize(*p);
  if (const json::value* p = o.if_contains("priority"); p && p->is_int64()) {
    t.priority = static_cast<int32_t>(p->as_int64());
  }
  t.state = Str(o, "state");
  t.attempts = static_cast<uint32_t>(U64(o, "attempts"));
  t.max_attempts = static_cast<uint32_t>(U64(o, "max_attempts"));
  if (const json::value* r = o.if_contains("result"); r && !r->is_null()) {
    t.result = json::serialize(*r);
  }
  if (const json::value* l = o.if_contains("lease"); l && l->is_object()) {
    t.lease_token = Str(l->as_object(), "token");
    t.lease_expires_at = static_cast<int64_t>(U64(l->as_object(), "expires_at"));
  }
  return t;
}

}  // namespace

Client::Client(boost::asio::any_io_executor executor, const std::string& server) {
  std::string why;
  std::optional<Url> url = ParseUrl(server, why);
  if (!url) throw Error(0, "invalid_url", "the server URL " + server + ": " + why);
  impl_ = std::make_unique<Impl>(executor, std::move(*url));
}

Client::~Client() = default;

boost::asio::any_io_executor Client::executor() const { return impl_->executor; }

awaitable<Enqueued> Client::Enqueue(std::string queue, std::string payload_json) {
  return Enqueue(std::move(queue), std::move(payload_json), EnqueueOptions{});
}

awaitable<std::vector<uint64_t>> Client::EnqueueBatch(std::string queue,
                                                      std::vector<std::string> payloads) {
  return EnqueueBatch(std::move(queue), std::move(payloads), EnqueueOptions{});
}

awaitable<void> Client::Ack(const Task& task) { return Ack(task, std::string()); }

awaitable<Enqueued> Client::Enqueue(std::string queue, std::string payload_json,
                                    EnqueueOptions options) {
  std::string target = "/v1/queues/" + queue + "/tasks";
  std::string body = SpecJson(payload_json, options);
  json::value v = co_await impl_->Call("POST", std::move(target), std::move(body));
  Enqueued out;
  const json::object& o = v.as_object();
  out.id = U64(o, "id");
  out.state = Str(o, "state");
  out.duplicate = o.if_contains("duplicate") != nullptr;
  co_return out;
}

awaitable<std::vector<uint64_t>> Client::EnqueueBatch(std::string queue,
                                                      std::vector<std::string> payloads,
                                                      EnqueueOptions options) {
  std::string body = "{\"tasks\":[";
  for (size_t i = 0; i < payloads.size(); ++i) {
    if (i > 0) body.push_back(',');
    body += SpecJson(payloads[i], options);
  }
  body += "]}";
  std::string target = "/v1/queues/" + queue + "/tasks";
  json::value v = co_await impl_->Call("POST", std::move(target), std::move(body));
  std::vector<uint64_t> ids;
  if (const json::value* list = v.as_object().if_contains("ids"); list && list->is_array()) {
    for (const json::value& id : list->as_array()) {
      boost::system::error_code bad;
      ids.push_back(id.to_number<uint64_t>(bad));
      if (bad) throw Error(200, "invalid_answer", "an id in the answer is not a number");
    }
  }
  co_return ids;
}

awaitable<Task> Client::Get(uint64_t id) {
  std::string target = "/v1/tasks/" + std::to_string(id);
  json::value v = co_await impl_->Call("GET", std::move(target), std::string());
  co_return TaskOf(v);
}

awaitable<QueueStats> Client::Stats(std::string queue) {
  std::string target = "/v1/queues/" + queue;
  json::value v = co_await impl_->Call("GET", std::move(target), std::string());
  QueueStats s;
  const json::object& o = v.as_object();
  s.name = Str(o, "name");
  if (const json::value* c = o.if_contains("counts"); c && c->is_object()) {
    const json::object& counts = c->as_object();
    s.scheduled = U64(counts, "scheduled");
    s.ready = U64(counts, "ready");
    s.leased = U64(counts, "leased");
    s.succeeded = U64(counts, "succeeded");
    s.dead = U64(counts, "dead");
    s.canceled = U64(counts, "canceled");
  }
  co_return s;
}

awaitable<std::vector<Task>> Client::Lease(std::string queue, uint32_t max, int64_t wait_ms,
                                           int64_t lease_ms, std::string worker) {
  std::string body = "{\"max\":" + std::to_string(max) + ",\"wait_ms\":" + std::to_string(wait_ms) +
                     ",\"lease_ms\":" + std::to_string(lease_ms) +
                     ",\"worker\":" + json::serialize(json::string(worker)) + "}";
  std::string target = "/v1/queues/" + queue + "/lease";
  json::value v = co_await impl_->Call("POST", std::move(target), std::move(body));
  std::vector<Task> tasks;
  if (const json::value* list = v.as_object().if_contains("tasks"); list && list->is_array()) {
    for (const json::value& t : list->as_array()) tasks.push_back(TaskOf(t));
  }
  co_return tasks;
}

awaitable<void> Client::Ack(const Task& task, std::string result_json) {
  std::string body = "{\"lease\":" + json::serialize(json::string(task.lease_token));
  if (!result_json.empty()) body += ",\"result\":" + result_json;
  body += "}";
  std::string target = "/v1/tasks/" + std::to_string(task.id) + "/ack";
  co_await impl_->Call("POST", std::move(target), std::move(body));
}

awaitable<void> Client::Nack(const Task& task, std::string message,
                             std::optional<int64_t> retry_in_ms, bool dead) {
  std::string body = "{\"lease\":" + json::serialize(json::string(task.lease_token)) +
                     ",\"error\":" + json::serialize(json::string(message));
  if (retry_in_ms) body += ",\"retry_in_ms\":" + std::to_string(*retry_in_ms);
  if (dead) body += ",\"dead\":true";
  body += "}";
  std::string target = "/v1/tasks/" + std::to_string(task.id) + "/nack";
  co_await impl_->Call("POST", std::move(target), std::move(body));
}

awaitable<void> Client::Extend(const Task& task, int64_t lease_ms) {
  std::string body = "{\"lease\":" + json::serialize(json::string(task.lease_token)) +
                     ",\"lease_ms\":" + std::to_string(lease_ms) + "}";
  std::string target = "/v1/tasks/" + std::to_string(task.id) + "/extend";
  co_await impl_->Call("POST", std::move(target), std::move(body));
}

}  // namespace conveyor::sdk
