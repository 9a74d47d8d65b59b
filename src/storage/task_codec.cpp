#include "storage/task_codec.h"

#include <bit>
#include <cstring>

#include "engine/queue.h"
#include "engine/ready_index.h"
#include "storage/binary_codec.h"

namespace conveyor {

void EncodeTaskMeta(const Task& t, std::string& out) {
  BinaryWriter w(out);
  w.Byte(kTaskRecordVersion);
  w.Varint(t.id);
  w.Bytes(t.queue->name());
  w.Signed(t.priority);
  w.Byte(static_cast<uint8_t>(t.state));
  w.Byte(static_cast<uint8_t>(t.dead_reason));
  w.Varint(t.attempts);
  w.Varint(t.max_attempts);
  w.Signed(t.created_at);
  w.Signed(t.run_at);
  w.Signed(t.ready_at);
  w.Signed(t.deadline());
  w.Signed(t.lease_ms());
  w.Signed(t.finished_at());
  w.Varint(t.errors().size());
  for (const TaskError& e : t.errors()) {
    w.Signed(e.at);
    w.Varint(e.attempt);
    w.Bytes(e.message);
  }
  w.Bytes(t.idempotency_key());
  w.Bytes(t.lease_token());
  w.Bytes(t.lease_worker());
  w.Signed(t.lease_expires_at());
  w.Byte(static_cast<uint8_t>(t.payload_kind));
  w.Varint(t.releases());
  w.Varint(t.buries());
  w.Varint(t.kicks());
  w.Bytes(t.key != nullptr ? std::string_view(t.key->name) : std::string_view());
  w.Byte(t.pauses_key ? 1 : 0);
  w.Bytes(t.unique_key());
  w.Signed(t.unique_until());
  w.Byte(t.unique_active() ? 1 : 0);
}

bool DecodeTaskMeta(std::string_view in, StoredTask& out) {
  BinaryReader r(in);
  Task& t = out.task;
  uint8_t version, state, reason;
  uint64_t attempts, max_attempts, error_count;
  int64_t priority, lease_ms, deadline, finished_at;
  if (!r.Byte(version) || version < 1 || version > kTaskRecordVersion) return false;
  if (!r.Varint(t.id) || !r.Bytes(out.queue) || !r.Signed(priority) || !r.Byte(state) ||
      !r.Byte(reason) || !r.Varint(attempts) || !r.Varint(max_attempts) ||
      !r.Signed(t.created_at) || !r.Signed(t.run_at) || !r.Signed(t.ready_at) ||
      !r.Signed(deadline) || !r.Signed(lease_ms) || !r.Signed(finished_at) || lease_ms < 0 ||
      lease_ms > INT32_MAX) {
    return false;
  }
  t.set_deadline(deadline);
  t.set_finished_at(finished_at);
  t.set_lease_ms(static_cast<int32_t>(lease_ms));
  if (version < 3) {
    std::string result, progress;
    if (!r.Bytes(result) || !r.Bytes(progress)) return false;
    if (!result.empty()) t.cold().result = std::move(result);
    if (!progress.empty()) t.cold().progress = std::move(progress);
  }
  if (!r.Varint(error_count)) return false;
  if (state >= kTaskStateCount || reason > static_cast<uint8_t>(DeadReason::kBuried) ||
      error_count > 1'000'000 || priority < INT32_MIN || priority > INT32_MAX) {
    return false;
  }
  t.priority = static_cast<int32_t>(priority);
  t.state = static_cast<TaskState>(state);
  t.dead_reason = static_cast<DeadReason>(reason);
  t.attempts = static_cast<uint32_t>(attempts);
  t.max_attempts = static_cast<uint32_t>(max_attempts);
  if (error_count > 0) {
    auto& errors = t.cold().errors;
    errors.resize(error_count);
    for (TaskError& e : errors) {
      uint64_t attempt;
      if (!r.Signed(e.at) || !r.Varint(attempt) || !r.Bytes(e.message)) return false;
      e.attempt = static_cast<uint32_t>(attempt);
    }
  }
  std::string key, token, worker;
  int64_t expires_at;
  if (!r.Bytes(key) || !r.Bytes(token) || !r.Bytes(worker) || !r.Signed(expires_at)) {
    return false;
  }
  if (!token.empty()) t.cold().lease_token = std::move(token);
  t.set_lease_expires_at(expires_at);
  if (!key.empty()) t.cold().idempotency_key = std::move(key);
  if (!worker.empty()) t.cold().lease_worker = std::move(worker);
  t.payload_kind = PayloadKind::kJson;
  if (version >= 2) {
    uint8_t kind;
    if (!r.Byte(kind) || kind > static_cast<uint8_t>(PayloadKind::kBytes)) return false;
    t.payload_kind = static_cast<PayloadKind>(kind);
  }
  if (version >= 4) {
    uint64_t releases, buries, kicks;
    if (!r.Varint(releases) || !r.Varint(buries) || !r.Varint(kicks) || releases > UINT32_MAX ||
        buries > UINT32_MAX || kicks > UINT32_MAX) {
      return false;
    }
    if (releases + buries + kicks > 0) {
      t.cold().releases = static_cast<uint32_t>(releases);
      t.cold().buries = static_cast<uint32_t>(buries);
      t.cold().kicks = static_cast<uint32_t>(kicks);
    }
  }
  if (version >= 5) {
    uint8_t pauses, active;
    std::string unique;
    int64_t until;
    if (!r.Bytes(out.key) || !r.Byte(pauses) || !r.Bytes(unique) || !r.Signed(until) ||
        !r.Byte(active)) {
      return false;
    }
    t.pauses_key = pauses != 0;
    if (!unique.empty()) {
      t.cold().unique_key = std::move(unique);
      t.cold().unique_until = until;
      t.cold().unique_active = active != 0;
    }
  }
  return r.done();
}

void EncodeStateDelta(const Task& t, std::string& out) {
  BinaryWriter w(out);
  w.Byte(kStateDeltaVersion);
  w.Byte(static_cast<uint8_t>(t.state));
  w.Byte(static_cast<uint8_t>(t.dead_reason));
  w.Varint(t.attempts);
  w.Signed(t.run_at);
  w.Signed(t.ready_at);
  w.Signed(t.finished_at());
  w.Bytes(t.lease_token());
  w.Bytes(t.lease_worker());
  w.Signed(t.lease_expires_at());
  w.Byte(t.pauses_key ? 1 : 0);
}

bool ApplyStateDelta(std::string_view in, Task& t) {
  BinaryReader r(in);
  uint8_t version, state, reason;
  uint64_t attempts;
  int64_t run_at, ready_at, finished_at, expires_at;
  std::string token, worker;
  uint8_t pauses = 0;
  if (!r.Byte(version) || version < 1 || version > kStateDeltaVersion || !r.Byte(state) ||
      !r.Byte(reason) || !r.Varint(attempts) || !r.Signed(run_at) || !r.Signed(ready_at) ||
      !r.Signed(finished_at) || !r.Bytes(token) || !r.Bytes(worker) || !r.Signed(expires_at) ||
      (version >= 2 && !r.Byte(pauses)) || !r.done()) {
    return false;
  }
  t.pauses_key = pauses != 0;
  if (state >= kTaskStateCount || reason > static_cast<uint8_t>(DeadReason::kBuried)) return false;
  t.state = static_cast<TaskState>(state);
  t.dead_reason = static_cast<DeadReason>(reason);
  t.attempts = static_cast<uint32_t>(attempts);
  t.run_at = run_at;
  t.ready_at = ready_at;
  t.set_finished_at(finished_at);
  if (!token.empty() || !t.lease_token().empty()) t.cold().lease_token = std::move(token);
  if (!worker.empty() || !t.lease_worker().empty()) t.cold().lease_worker = std::move(worker);
  t.set_lease_expires_at(expires_at);
  return true;
}

std::string DeltaKey(uint64_t id, char tag) {
  std::string key = TaskKey(id);
  key.push_back(tag);
  return key;
}

bool ParseDeltaKey(std::string_view key, uint64_t& id, char& tag) {
  if (key.size() != 9 || !ParseTaskKey(key.substr(0, 8), id)) return false;
  tag = key[8];
  return true;
}

std::string TopicKey(std::string_view topic) {
  std::string key(kTopicKeyPrefix);
  key.append(topic);
  return key;
}

void EncodeTopic(const std::vector<std::string>& queues, std::string& out) {
  BinaryWriter w(out);
  w.Byte(1);  // version
  w.Varint(queues.size());
  for (const std::string& q : queues) w.Bytes(q);
}

bool DecodeTopic(std::string_view in, std::vector<std::string>& out) {
  BinaryReader r(in);
  uint8_t version;
  uint64_t n;
  if (!r.Byte(version) || version != 1 || !r.Varint(n) || n > 10000) return false;
  out.resize(n);
  for (std::string& q : out) {
    if (!r.Bytes(q)) return false;
  }
  return r.done();
}

void EncodeQueueConfig(const QueueConfig& c, std::string& out) {
  BinaryWriter w(out);
  w.Byte(kQueueRecordVersion);
  w.Varint(c.max_attempts);
  w.Signed(c.lease_ms);
  w.Signed(c.backoff.base_ms);
  w.Varint(std::bit_cast<uint64_t>(c.backoff.factor));
  w.Signed(c.backoff.max_ms);
  w.Byte(c.backoff.jitter ? 1 : 0);
  w.Signed(c.retention_ms);
  w.Byte(c.paused ? 1 : 0);
  w.Byte(c.push ? 1 : 0);
  if (c.push) {
    const PushConfig& p = *c.push;
    w.Bytes(p.url);
    w.Varint(p.concurrency);
    w.Signed(p.timeout_ms);
    w.Varint(p.headers.size());
    for (const auto& [name, value] : p.headers) {
      w.Bytes(name);
      w.Bytes(value);
    }
    w.Bytes(p.secret);
    w.Byte(p.dead_on_4xx ? 1 : 0);
    w.Varint(p.breaker_failures);
    w.Signed(p.breaker_cooldown_ms);
  }
  // Version 3: flow control.
  w.Byte(c.rate_limit ? 1 : 0);
  if (c.rate_limit) {
    w.Varint(std::bit_cast<uint64_t>(c.rate_limit->per_second));
    w.Varint(c.rate_limit->burst);
    w.Byte(c.rate_limit->per_key ? 1 : 0);
  }
  w.Byte(c.concurrency ? 1 : 0);
  if (c.concurrency) {
    w.Varint(c.concurrency->max);
    w.Byte(c.concurrency->per_key ? 1 : 0);
  }
  w.Byte(c.fair_by_key ? 1 : 0);
  w.Varint(c.key_weights.size());
  for (const auto& [key, weight] : c.key_weights) {
    w.Bytes(key);
    w.Varint(weight);
  }
  w.Signed(c.aging_ms);
}

namespace {

bool DecodePushConfig(BinaryReader& r, PushConfig& p) {
  uint64_t concurrency, header_count, failures;
  uint8_t dead;
  if (!r.Bytes(p.url) || !r.Varint(concurrency) || !r.Signed(p.timeout_ms) ||
      !r.Varint(header_count) || concurrency > UINT32_MAX || header_count > 1000) {
    return false;
  }
  p.concurrency = static_cast<uint32_t>(concurrency);
  p.headers.resize(header_count);
  for (auto& [name, value] : p.headers) {
    if (!r.Bytes(name) || !r.Bytes(value)) return false;
  }
  if (!r.Bytes(p.secret) || !r.Byte(dead) || !r.Varint(failures) ||
      !r.Signed(p.breaker_cooldown_ms) || failures > UINT32_MAX) {
    return false;
  }
  p.dead_on_4xx = dead != 0;
  p.breaker_failures = static_cast<uint32_t>(failures);
  return true;
}

bool DecodeFlowConfig(BinaryReader& r, QueueConfig& c) {
  uint8_t has_rate, has_concurrency, fair;
  if (!r.Byte(has_rate)) return false;
  if (has_rate != 0) {
    uint64_t rate_bits, burst;
    uint8_t per_key;
    if (!r.Varint(rate_bits) || !r.Varint(burst) || !r.Byte(per_key) || burst > UINT32_MAX) {
      return false;
    }
    c.rate_limit =
        RateLimit{std::bit_cast<double>(rate_bits), static_cast<uint32_t>(burst), per_key != 0};
    if (!(c.rate_limit->per_second > 0)) return false;
  }
  if (!r.Byte(has_concurrency)) return false;
  if (has_concurrency != 0) {
    uint64_t max;
    uint8_t per_key;
    if (!r.Varint(max) || !r.Byte(per_key) || max == 0 || max > UINT32_MAX) return false;
    c.concurrency = ConcurrencyLimit{static_cast<uint32_t>(max), per_key != 0};
  }
  uint64_t weights;
  if (!r.Byte(fair) || !r.Varint(weights) || weights > 100000) return false;
  c.fair_by_key = fair != 0;
  c.key_weights.resize(weights);
  for (auto& [key, weight] : c.key_weights) {
    uint64_t w;
    if (!r.Bytes(key) || !r.Varint(w) || w > UINT32_MAX) return false;
    weight = static_cast<uint32_t>(w);
  }
  return r.Signed(c.aging_ms);
}

}  // namespace

bool DecodeQueueConfig(std::string_view in, QueueConfig& c) {
  BinaryReader r(in);
  uint8_t version, jitter, paused;
  uint64_t max_attempts, factor_bits;
  if (!r.Byte(version) || version < 1 || version > kQueueRecordVersion || !r.Varint(max_attempts) ||
      !r.Signed(c.lease_ms) || !r.Signed(c.backoff.base_ms) || !r.Varint(factor_bits) ||
      !r.Signed(c.backoff.max_ms) || !r.Byte(jitter) || !r.Signed(c.retention_ms) ||
      !r.Byte(paused)) {
    return false;
  }
  c.push.reset();
  if (version >= 2) {
    uint8_t has_push;
    if (!r.Byte(has_push)) return false;
    if (has_push != 0 && !DecodePushConfig(r, c.push.emplace())) return false;
  }
  c.rate_limit.reset();
  c.concurrency.reset();
  c.fair_by_key = false;
  c.key_weights.clear();
  c.aging_ms = 0;
  if (version >= 3 && !DecodeFlowConfig(r, c)) return false;
  if (!r.done()) return false;
  c.max_attempts = static_cast<uint32_t>(max_attempts);
  c.backoff.factor = std::bit_cast<double>(factor_bits);
  c.backoff.jitter = jitter != 0;
  c.paused = paused != 0;
  return true;
}

std::string TaskKey(uint64_t id) {
  std::string key(8, '\0');
  for (int i = 7; i >= 0; --i) {
    key[i] = static_cast<char>(id & 0xFF);
    id >>= 8;
  }
  return key;
}

bool ParseTaskKey(std::string_view key, uint64_t& id) {
  if (key.size() != 8) return false;
  id = 0;
  for (char c : key) id = (id << 8) | static_cast<unsigned char>(c);
  return true;
}

}  // namespace conveyor
