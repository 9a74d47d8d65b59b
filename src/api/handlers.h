// Api: the HTTP API of SPEC.md. Each handler decodes the request (on the connection's
// thread), runs one TaskService command, and encodes the answer as JSON; no business logic
// lives here. Domain errors become HTTP status through the one table in common/error.h.
// Shared by all I/O threads; holds no mutable state of its own besides the per-thread
// HTTP counters.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <string>
#include <vector>

#include "common/limits.h"
#include "engine/shard_set.h"  // CurrentIoThread
#include "engine/task_service.h"
#include "http/http_metrics.h"
#include "http/message.h"
#include "http/route.h"

namespace conveyor {

class Api {
 public:
  Api(TaskService& service, const Limits& limits, size_t threads);

  boost::asio::awaitable<HttpResponse> Handle(HttpRequest& request, Connection& connection);
  HttpMetrics& http_metrics() { return http_metrics_; }
  // More series for /metrics from other front ends (the beanstalkd listener's commands,
  // push delivery): called on an I/O thread to append Prometheus text. Set before serving.
  void AddMetrics(std::function<void(std::string&)> append) {
    more_metrics_.push_back(std::move(append));
  }
  // Told of every queue config a PUT stored (push delivery starts, updates, stops), on
  // the connection's thread. Set before serving.
  void OnQueueConfigured(std::function<void(const std::string&, const QueueConfig&)> fn) {
    on_configured_ = std::move(fn);
  }
  // A queue's push status as a JSON object (empty: none), shown as "push" in its stats.
  void SetPushStatus(std::function<std::string(std::string_view)> fn) {
    push_status_ = std::move(fn);
  }

 private:
  using Awaitable = boost::asio::awaitable<HttpResponse>;

  Awaitable Dispatch(HttpRequest& request, Connection& connection, const Target& target,
                     Route& route);
  Awaitable AddTask(HttpRequest& request);
  Awaitable Enqueue(std::string_view queue, HttpRequest& request);
  Awaitable Lease(std::string_view queue, HttpRequest& request, Connection& connection);
  Awaitable Ack(uint64_t id, HttpRequest& request);
  Awaitable Nack(uint64_t id, HttpRequest& request);
  Awaitable Extend(uint64_t id, HttpRequest& request);
  Awaitable BatchAck(HttpRequest& request);
  Awaitable GetTask(uint64_t id, std::string_view query, Connection& connection);
  Awaitable Cancel(uint64_t id);
  Awaitable Retry(uint64_t id);
  Awaitable ListQueues();
  Awaitable GetQueue(std::string_view queue);
  Awaitable PutQueue(std::string_view queue, HttpRequest& request);
  Awaitable ListTasks(std::string_view queue, std::string_view query);
  Awaitable Topics(const Target& target, HttpRequest& request, Route& route);
  // admin_handlers.cpp
  Awaitable DeleteQueue(std::string_view queue);
  Awaitable BulkCommand(std::string_view queue, bool purge, std::string_view query,
                        HttpRequest& request);
  // schedule_handlers.cpp
  Awaitable Schedules(const Target& target, HttpRequest& request, Route& route);
  Awaitable PutSchedule(std::string_view name, HttpRequest& request);
  Awaitable ListTopics();
  Awaitable GetTopic(std::string_view topic);
  Awaitable PutTopic(std::string_view topic, HttpRequest& request);
  Awaitable DeleteTopic(std::string_view topic);
  Awaitable PublishEvent(std::string_view topic, HttpRequest& request);
  Awaitable Metrics();
  Awaitable Healthz();

  TaskService& service_;
  const Limits& limits_;
  HttpMetrics http_metrics_;
  std::vector<std::function<void(std::string&)>> more_metrics_;
  std::function<void(const std::string&, const QueueConfig&)> on_configured_;
  std::function<std::string(std::string_view)> push_status_;
};

}  // namespace conveyor
