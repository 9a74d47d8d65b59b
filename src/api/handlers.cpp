#include "api/handlers.h"

#include <algorithm>
#include <map>
#include <memory>

#include "api/call_decoders.h"
#include "api/metrics_page.h"
#include "api/queue_config_decoder.h"
#include "api/request_fields.h"
#include "api/responses.h"
#include "api/task_spec_decoder.h"
#include "common/json_writer.h"

namespace conveyor {
namespace {

using boost::asio::awaitable;

bool IsValidQueueName(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  bool only_dots = true;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
    only_dots = only_dots && c == '.';
  }
  return !only_dots;
}

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

HttpResponse MethodNotAllowed(std::string allow) {
  HttpResponse r = ErrorResponse(ErrorCode::kMethodNotAllowed,
                                 "this path does not accept that method; allowed: " + allow);
  r.allow = std::move(allow);
  return r;
}

HttpResponse ReplyResponse(const Reply& reply, int status = 200) {
  if (!reply.error.ok()) return ErrorResponse(reply.error);
  return JsonResponse(status, reply.body);
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

// Shared between a long-poll's close watcher and the shard: touched only on the shard.
struct WaiterHandle {
  uint64_t id = 0;
};

std::function<void()> CancelOnClose(Shard& shard, std::shared_ptr<WaiterHandle> handle) {
  return [&shard, handle] {
    boost::asio::post(shard.io(), [&shard, handle] {
      if (handle->id != 0) shard.engine().CancelWaiter(handle->id);
      shard.AfterCommand();
    });
  };
}

}  // namespace

Api::Api(ShardSet& shards, const Limits& limits)
    : shards_(shards), limits_(limits), http_metrics_(shards.size()) {}

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
  const std::string& m = request.method;
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
      route = get ? Route::kGetQueue : Route::kPutQueue;
      if (!get && m != "PUT") co_return MethodNotAllowed("GET, HEAD, PUT");
      if (!IsValidQueueName(queue)) co_return ErrorResponse(QueueNameError());
      if (get) co_return co_await GetQueue(queue);
      co_return co_await PutQueue(queue, request);
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
  constexpr std::string_view kQueue = "default";
  auto command = [specs = std::move(specs), kQueue](Shard& shard,
                                                    Completion<EnqueueResult> done) mutable {
    ReplyWhenDurable(shard, shard.engine().Enqueue(kQueue, std::move(specs)), std::move(done));
  };
  auto result = co_await CallShard<EnqueueResult>(shards_.ForQueue(kQueue), std::move(command));
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
  auto command = [specs = std::move(decoded.specs), queue = std::string(queue)](
                     Shard& shard, Completion<EnqueueResult> done) mutable {
    ReplyWhenDurable(shard, shard.engine().Enqueue(queue, std::move(specs)), std::move(done));
  };
  auto result = co_await CallShard<EnqueueResult>(shards_.ForQueue(queue), std::move(command));
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
  w.EndObject();
  co_return JsonResponse(task.duplicate ? 200 : 201, std::move(body));
}

// ---- lease / ack / nack / extend ---------------------------------------------------------

awaitable<HttpResponse> Api::Lease(std::string_view queue, HttpRequest& request,
                                   Connection& connection) {
  LeaseRequest lease;
  if (auto e = DecodeLeaseBody(request.body, limits_, lease); !e.ok()) co_return ErrorResponse(e);
  Shard& shard = shards_.ForQueue(queue);
  auto handle = std::make_shared<WaiterHandle>();
  if (lease.wait_ms > 0) connection.WatchForClose(CancelOnClose(shard, handle));
  auto command = [lease = std::move(lease), queue = std::string(queue), handle](
                     Shard& s, Completion<LeaseResult> done) mutable {
    s.engine().Lease(queue, std::move(lease), std::move(done), &handle->id);
  };
  auto result = co_await CallShard<LeaseResult>(shard, std::move(command));
  if (!result.error.ok()) co_return ErrorResponse(result.error);
  HttpResponse response = JsonResponse(200, std::move(result.body));
  if (!result.granted.empty()) {
    response.on_undelivered = [&shard, granted = std::move(result.granted)] {
      boost::asio::post(shard.io(), [&shard, granted] {
        shard.engine().ReleaseUndelivered(granted);
        shard.AfterCommand();
      });
    };
  }
  co_return response;
}

awaitable<HttpResponse> Api::Ack(uint64_t id, HttpRequest& request) {
  AckCall call;
  if (auto e = DecodeAckBody(request.body, limits_, call); !e.ok()) co_return ErrorResponse(e);
  auto command = [id, call = std::move(call)](Shard& s, Completion<Reply> done) mutable {
    Reply r = s.engine().Ack(id, call.token, std::move(call.result));
    ReplyWhenDurable(s, std::move(r), std::move(done));
  };
  auto reply = co_await CallShard<Reply>(shards_.ForTask(id), std::move(command));
  co_return ReplyResponse(reply);
}

awaitable<HttpResponse> Api::Nack(uint64_t id, HttpRequest& request) {
  NackCall call;
  if (auto e = DecodeNackBody(request.body, limits_, call); !e.ok()) co_return ErrorResponse(e);
  auto command = [id, call = std::move(call)](Shard& s, Completion<Reply> done) mutable {
    Reply r = s.engine().Nack(id, call.token, call.message, call.retry_in_ms, call.dead);
    ReplyWhenDurable(s, std::move(r), std::move(done));
  };
  auto reply = co_await CallShard<Reply>(shards_.ForTask(id), std::move(command));
  co_return ReplyResponse(reply);
}

awaitable<HttpResponse> Api::Extend(uint64_t id, HttpRequest& request) {
  ExtendCall call;
  if (auto e = DecodeExtendBody(request.body, limits_, call); !e.ok()) co_return ErrorResponse(e);
  // An extend need not wait for fsync (SPEC.md, Durability).
  auto command = [id, call = std::move(call)](Shard& s, Completion<Reply> done) mutable {
    done(s.engine().Extend(id, call.token, call.lease_ms, std::move(call.progress)));
  };
  auto reply = co_await CallShard<Reply>(shards_.ForTask(id), std::move(command));
  co_return ReplyResponse(reply);
}

awaitable<HttpResponse> Api::BatchAck(HttpRequest& request) {
  std::vector<AckCall> calls;
  if (auto e = DecodeBatchAckBody(request.body, limits_, calls); !e.ok()) {
    co_return ErrorResponse(e);
  }
  // One command per owning shard, all sent at once and awaited once; the answers are put
  // back in request order.
  std::map<size_t, std::vector<size_t>> by_shard;
  for (size_t i = 0; i < calls.size(); ++i) {
    by_shard[shards_.ForTask(calls[i].id).index()].push_back(i);
  }
  using Errors = std::vector<Error>;
  using Command = std::function<void(Shard&, Completion<Errors>)>;
  std::vector<std::pair<Shard*, Command>> commands;
  for (auto& [shard_index, positions] : by_shard) {
    std::vector<AckCall> subset;
    for (size_t i : positions) subset.push_back(std::move(calls[i]));
    Command command = [subset = std::move(subset)](Shard& s, Completion<Errors> done) mutable {
      Errors errors;
      for (AckCall& call : subset) {
        errors.push_back(s.engine().Ack(call.id, call.token, std::move(call.result)).error);
      }
      s.journal().WhenDurable([errors = std::move(errors), done](Error e) mutable {
        if (!e.ok()) {
          for (Error& err : errors) {
            if (err.ok()) err = Error{e.code, e.message};
          }
        }
        done(std::move(errors));
      });
    };
    commands.emplace_back(&shards_.at(shard_index), std::move(command));
  }
  std::vector<Errors> answers = co_await CallShards<Errors>(std::move(commands));
  std::vector<Error> outcomes(calls.size());
  size_t k = 0;
  for (auto& [shard_index, positions] : by_shard) {
    for (size_t j = 0; j < positions.size(); ++j) outcomes[positions[j]] = std::move(answers[k][j]);
    ++k;
  }
  std::string body;
  JsonWriter w(body);
  w.BeginObject().Key("results").BeginArray();
  for (size_t i = 0; i < calls.size(); ++i) {
    w.BeginObject().Field("id", calls[i].id);
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
  Shard& shard = shards_.ForTask(id);
  auto handle = std::make_shared<WaiterHandle>();
  if (wait_ms > 0) connection.WatchForClose(CancelOnClose(shard, handle));
  auto command = [id, wait_ms, handle](Shard& s, Completion<Reply> done) {
    s.engine().WaitTask(id, wait_ms, std::move(done), &handle->id);
  };
  auto reply = co_await CallShard<Reply>(shard, std::move(command));
  co_return ReplyResponse(reply);
}

awaitable<HttpResponse> Api::Cancel(uint64_t id) {
  auto command = [id](Shard& s, Completion<Reply> done) {
    Reply r = s.engine().Cancel(id);
    ReplyWhenDurable(s, std::move(r), std::move(done));
  };
  auto reply = co_await CallShard<Reply>(shards_.ForTask(id), std::move(command));
  co_return ReplyResponse(reply);
}

awaitable<HttpResponse> Api::Retry(uint64_t id) {
  auto command = [id](Shard& s, Completion<Reply> done) {
    Reply r = s.engine().Retry(id);
    ReplyWhenDurable(s, std::move(r), std::move(done));
  };
  auto reply = co_await CallShard<Reply>(shards_.ForTask(id), std::move(command));
  co_return ReplyResponse(reply);
}

awaitable<std::vector<QueueSnapshot>> Api::GatherSnapshots() {
  std::vector<QueueSnapshot> all;
  for (size_t i = 0; i < shards_.size(); ++i) {
    auto command = [](Shard& s, Completion<std::vector<QueueSnapshot>> done) {
      s.engine().Tick();
      done(s.engine().Snapshot());
    };
    auto part = co_await CallShard<std::vector<QueueSnapshot>>(shards_.at(i), std::move(command));
    for (auto& q : part) all.push_back(std::move(q));
  }
  co_return all;
}

// 200 while serving (SPEC.md); "degraded" while storage refuses changes.
awaitable<HttpResponse> Api::Healthz() {
  bool writable = true;
  for (size_t i = 0; i < shards_.size(); ++i) {
    auto command = [](Shard& s, Completion<bool> done) { done(s.journal().writable()); };
    writable = co_await CallShard<bool>(shards_.at(i), std::move(command)) && writable;
  }
  co_return JsonResponse(
      200, writable ? R"({"status":"ok"})" : R"({"status":"degraded","storage":"failing"})");
}

awaitable<HttpResponse> Api::ListQueues() {
  std::vector<QueueSnapshot> all = co_await GatherSnapshots();
  std::sort(all.begin(), all.end(),
            [](const QueueSnapshot& a, const QueueSnapshot& b) { return a.name < b.name; });
  std::string body = "{\"queues\":[";
  for (size_t i = 0; i < all.size(); ++i) {
    if (i > 0) body.push_back(',');
    AppendQueueStatsJson(body, all[i]);
  }
  body += "]}";
  co_return JsonResponse(200, std::move(body));
}

awaitable<HttpResponse> Api::GetQueue(std::string_view queue) {
  auto command = [queue = std::string(queue)](Shard& s, Completion<Reply> done) {
    done(s.engine().QueueStatsJson(queue));
  };
  auto reply = co_await CallShard<Reply>(shards_.ForQueue(queue), std::move(command));
  co_return ReplyResponse(reply);
}

awaitable<HttpResponse> Api::PutQueue(std::string_view queue, HttpRequest& request) {
  QueueConfigPatch patch;
  if (auto e = DecodeQueueConfigPatch(request.body, limits_, patch); !e.ok()) {
    co_return ErrorResponse(e);
  }
  auto command = [queue = std::string(queue), patch](Shard& s, Completion<Reply> done) {
    ReplyWhenDurable(s, s.engine().ConfigureQueue(queue, patch), std::move(done));
  };
  auto reply = co_await CallShard<Reply>(shards_.ForQueue(queue), std::move(command));
  co_return ReplyResponse(reply);
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
  auto command = [queue = std::string(queue), state, limit, after](Shard& s,
                                                                   Completion<Reply> done) {
    done(s.engine().ListTasks(queue, state, static_cast<size_t>(limit),
                              static_cast<uint64_t>(after)));
  };
  auto reply = co_await CallShard<Reply>(shards_.ForQueue(queue), std::move(command));
  co_return ReplyResponse(reply);
}

awaitable<HttpResponse> Api::Metrics() {
  std::vector<QueueSnapshot> all = co_await GatherSnapshots();
  ServerWide& shared = shards_.shared();
  ServerGauges gauges{shared.live_tasks.used(), shared.waiters.used(),
                      shared.rss_bytes.load(std::memory_order_relaxed)};
  HttpResponse response = JsonResponse(
      200, RenderMetricsPage(std::move(all), limits_.max_metrics_queues, gauges, http_metrics_));
  response.content_type = "text/plain; version=0.0.4; charset=utf-8";
  co_return response;
}

}  // namespace conveyor
