#include "api/request_fields.h"

#include <charconv>
#include <cmath>

#include "boost/json/parse.hpp"
#include "common/json_raw.h"

namespace conveyor {

Error ParseJsonBody(std::string_view text, size_t max_depth, boost::json::value& out) {
  if (TrimJson(text).empty()) {
    out = boost::json::object();
    return {};
  }
  boost::json::parse_options options;
  options.max_depth = max_depth;
  boost::system::error_code ec;
  out = boost::json::parse(text, ec, {}, options);
  if (ec) {
    return Error{ErrorCode::kInvalidJson, "the body is not valid JSON: " + ec.message()};
  }
  if (HasDuplicateJsonKeys(text)) {
    return Error{ErrorCode::kInvalidJson, "the body is not valid JSON: an object repeats a key"};
  }
  return {};
}

const boost::json::value* FieldReader::Find(std::string_view field) const {
  auto it = object_.find(field);
  if (it == object_.end() || it->value().is_null()) return nullptr;
  return &it->value();
}

bool FieldReader::Has(std::string_view field) const { return Find(field) != nullptr; }

Error FieldReader::Invalid(std::string_view field, std::string_view why) const {
  return Error{ErrorCode::kInvalidField, prefix_ + std::string(field) + " " + std::string(why)};
}

Error FieldReader::Int(std::string_view field, int64_t min, int64_t max,
                       std::optional<int64_t>& out) const {
  const boost::json::value* v = Find(field);
  if (v == nullptr) return {};
  const std::string range =
      "must be an integer from " + std::to_string(min) + " to " + std::to_string(max);
  if (v->is_int64()) {
    int64_t x = v->get_int64();
    if (x < min || x > max) return Invalid(field, range);
    out = x;
    return {};
  }
  if (v->is_uint64()) return Invalid(field, range);  // above INT64_MAX
  return Invalid(field, range);
}

Error FieldReader::Double(std::string_view field, double min, double max,
                          std::optional<double>& out) const {
  const boost::json::value* v = Find(field);
  if (v == nullptr) return {};
  if (!v->is_number()) return Invalid(field, "must be a number");
  double x = v->to_number<double>();
  if (!std::isfinite(x) || x < min || x > max) {
    return Invalid(field,
                   "must be a number from " + std::to_string(min) + " to " + std::to_string(max));
  }
  out = x;
  return {};
}

Error FieldReader::Bool(std::string_view field, std::optional<bool>& out) const {
  const boost::json::value* v = Find(field);
  if (v == nullptr) return {};
  if (!v->is_bool()) return Invalid(field, "must be true or false");
  out = v->get_bool();
  return {};
}

Error FieldReader::String(std::string_view field, size_t max_bytes,
                          std::optional<std::string>& out) const {
  const boost::json::value* v = Find(field);
  if (v == nullptr) return {};
  if (!v->is_string()) return Invalid(field, "must be a string");
  const auto& s = v->get_string();
  if (s.size() > max_bytes) {
    return Invalid(field, "must be at most " + std::to_string(max_bytes) + " bytes");
  }
  out = std::string(s.data(), s.size());
  return {};
}

std::string_view FieldReader::Raw(std::string_view field) const {
  if (object_.find(field) == object_.end()) return {};
  return FindJsonMember(raw_, field);
}

std::optional<uint64_t> ParseId(std::string_view text) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace conveyor
