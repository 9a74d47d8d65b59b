#include "api/flow_config_decoder.h"

#include <algorithm>

#include "api/task_spec_decoder.h"

namespace conveyor {
namespace {

Error CheckMembers(const FieldReader& f, JsonValue object, std::string_view name,
                   std::initializer_list<std::string_view> known) {
  for (JsonValue m = object.first(); m; m = m.next()) {
    const std::string key = m.key();
    bool ok = false;
    for (auto k : known) ok = ok || k == key;
    if (!ok) {
      return f.Invalid(name, "has no setting '" + key.substr(0, 64) + "'");
    }
  }
  return {};
}

Error DecodeRateLimit(const FieldReader& f, JsonValue v, QueueConfigPatch& out) {
  if (v.is_null()) {
    out.rate_limit.emplace(std::nullopt);
    return {};
  }
  if (!v.is_object()) return f.Invalid("rate_limit", "must be an object (or null to remove it)");
  if (auto e = CheckMembers(f, v, "rate_limit", {"per_second", "burst", "per_key"}); !e.ok()) {
    return e;
  }
  FieldReader r(v, "rate_limit");
  std::optional<double> per_second;
  std::optional<int64_t> burst;
  std::optional<bool> per_key;
  if (auto e = r.Double("per_second", 0.001, 1'000'000, per_second); !e.ok()) return e;
  if (!per_second) return r.Invalid("per_second", "is required (tasks a second, > 0)");
  if (auto e = r.Int("burst", 1, 1'000'000, burst); !e.ok()) return e;
  if (auto e = r.Bool("per_key", per_key); !e.ok()) return e;
  out.rate_limit.emplace(
      RateLimit{*per_second, static_cast<uint32_t>(burst.value_or(1)), per_key.value_or(false)});
  return {};
}

Error DecodeConcurrency(const FieldReader& f, JsonValue v, QueueConfigPatch& out) {
  if (v.is_null()) {
    out.concurrency.emplace(std::nullopt);
    return {};
  }
  if (!v.is_object()) {
    return f.Invalid("concurrency", "must be an object (or null to remove it)");
  }
  if (auto e = CheckMembers(f, v, "concurrency", {"max", "per_key"}); !e.ok()) return e;
  FieldReader c(v, "concurrency");
  std::optional<int64_t> max;
  std::optional<bool> per_key;
  if (auto e = c.Int("max", 1, 1'000'000, max); !e.ok()) return e;
  if (!max) return c.Invalid("max", "is required (tasks leased at once, ≥ 1)");
  if (auto e = c.Bool("per_key", per_key); !e.ok()) return e;
  out.concurrency.emplace(ConcurrencyLimit{static_cast<uint32_t>(*max), per_key.value_or(false)});
  return {};
}

Error DecodeWeights(const FieldReader& f, JsonValue v, QueueConfigPatch& out) {
  auto& weights = out.key_weights.emplace();
  if (v.is_null()) return {};
  if (!v.is_object()) return f.Invalid("key_weights", "must be an object of key: weight");
  for (JsonValue m = v.first(); m; m = m.next()) {
    if (weights.size() >= kMaxKeyWeights) {
      return f.Invalid("key_weights", "may hold at most 1000 keys");
    }
    std::string key = m.key();
    const std::string shown = "key_weights." + key.substr(0, 64);
    if (key.empty() || key.size() > kMaxFlowKeyBytes) {
      return Error{ErrorCode::kInvalidField, shown + ": a key is 1 to 128 bytes"};
    }
    std::optional<int64_t> weight;
    if (auto e = FieldReader(v, "key_weights").Int(key, m, 1, 1000, weight); !e.ok()) return e;
    if (!weight)
      return Error{ErrorCode::kInvalidField, shown + " must be an integer from 1 to 1000"};
    weights.emplace_back(std::move(key), static_cast<uint32_t>(*weight));
  }
  std::sort(weights.begin(), weights.end());
  for (size_t i = 1; i < weights.size(); ++i) {
    if (weights[i].first == weights[i - 1].first) {
      return f.Invalid("key_weights", "names key '" + weights[i].first.substr(0, 64) + "' twice");
    }
  }
  return {};
}

}  // namespace

Error DecodeFlowConfig(const FieldReader& f, QueueConfigPatch& out) {
  if (JsonValue v = f.Member("rate_limit")) {
    if (auto e = DecodeRateLimit(f, v, out); !e.ok()) return e;
  }
  if (JsonValue v = f.Member("concurrency")) {
    if (auto e = DecodeConcurrency(f, v, out); !e.ok()) return e;
  }
  if (JsonValue v = f.Member("fairness")) {
    if (v.is_null()) {
      out.fair_by_key = false;
    } else if (!v.is_string() || (v.string() != "key" && v.string() != "none")) {
      return f.Invalid("fairness", "must be \"key\" or \"none\"");
    } else {
      out.fair_by_key = v.string() == "key";
    }
  }
  if (JsonValue v = f.Member("key_weights")) {
    if (auto e = DecodeWeights(f, v, out); !e.ok()) return e;
  }
  std::optional<int64_t> aging;
  if (auto e = f.Int("aging_ms", 0, kMaxDelayMs, aging); !e.ok()) return e;
  if (aging) out.aging_ms = *aging;
  return {};
}

}  // namespace conveyor
