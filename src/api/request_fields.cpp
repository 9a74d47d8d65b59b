#include "api/request_fields.h"

#include <charconv>
#include <cmath>

#include "common/json_raw.h"

namespace conveyor {

Error ParseJsonBody(std::string_view text, size_t max_depth, JsonValue& out) {
  JsonDoc& doc = ThreadJsonDoc();
  if (TrimJson(text).empty()) text = "{}";
  if (!doc.Parse(text, max_depth)) {
    return Error{ErrorCode::kInvalidJson, "the body is not valid JSON: " + doc.error()};
  }
  out = doc.root();
  return {};
}

JsonValue FieldReader::Find(std::string_view field) const {
  JsonValue v = object_.Find(field);
  return v && !v.is_null() ? v : JsonValue();
}

bool FieldReader::Has(std::string_view field) const { return static_cast<bool>(Find(field)); }

std::string FieldReader::prefix() const {
  if (path_.empty()) return {};
  std::string out(path_);
  if (index_ >= 0) {
    out.push_back('[');
    out.append(std::to_string(index_));
    out.push_back(']');
  }
  out.push_back('.');
  return out;
}

Error FieldReader::Invalid(std::string_view field, std::string_view why) const {
  return Error{ErrorCode::kInvalidField, prefix() + std::string(field) + " " + std::string(why)};
}

Error FieldReader::Int(std::string_view field, int64_t min, int64_t max,
                       std::optional<int64_t>& out) const {
  return Int(field, Find(field), min, max, out);
}

Error FieldReader::Int(std::string_view field, JsonValue v, int64_t min, int64_t max,
                       std::optional<int64_t>& out) const {
  if (!v || v.is_null()) return {};
  if (v.type() == JsonType::kInt && v.int64() >= min && v.int64() <= max) {
    out = v.int64();
    return {};
  }
  return Invalid(field,
                 "must be an integer from " + std::to_string(min) + " to " + std::to_string(max));
}

Error FieldReader::Double(std::string_view field, double min, double max,
                          std::optional<double>& out) const {
  JsonValue v = Find(field);
  if (!v) return {};
  if (!v.is_number()) return Invalid(field, "must be a number");
  double x = v.to_double();
  if (!std::isfinite(x) || x < min || x > max) {
    return Invalid(field,
                   "must be a number from " + std::to_string(min) + " to " + std::to_string(max));
  }
  out = x;
  return {};
}

Error FieldReader::Bool(std::string_view field, std::optional<bool>& out) const {
  JsonValue v = Find(field);
  if (!v) return {};
  if (!v.is_bool()) return Invalid(field, "must be true or false");
  out = v.boolean();
  return {};
}

Error FieldReader::String(std::string_view field, size_t max_bytes,
                          std::optional<std::string>& out) const {
  return String(field, Find(field), max_bytes, out);
}

Error FieldReader::String(std::string_view field, JsonValue v, size_t max_bytes,
                          std::optional<std::string>& out) const {
  if (!v || v.is_null()) return {};
  if (!v.is_string()) return Invalid(field, "must be a string");
  std::string s = v.string();
  if (s.size() > max_bytes) {
    return Invalid(field, "must be at most " + std::to_string(max_bytes) + " bytes");
  }
  out = std::move(s);
  return {};
}

std::string_view FieldReader::Raw(std::string_view field) const {
  JsonValue v = object_.Find(field);
  return v ? v.raw() : std::string_view();
}

std::optional<uint64_t> ParseId(std::string_view text) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace conveyor
