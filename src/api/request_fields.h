// Request body decoding helpers for the HTTP handlers: strict JSON parsing in one pass
// (JsonDoc: depth limit, duplicate keys refused) and typed field readers whose errors name
// the field, as SPEC.md asks ("400 naming the field"). Used on the connection's thread
// before any engine call, so bad input never reaches a shard; the parsed values live in
// the thread's JsonDoc until the next body is parsed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"
#include "common/json_doc.h"

namespace conveyor {

// Parses `text` as one JSON value into this thread's JsonDoc; an empty body counts as {}.
// Error kInvalidJson if it is not strict RFC 8259 JSON, nests deeper than max_depth, or
// repeats a key in an object. `out` is valid until the thread parses the next body.
Error ParseJsonBody(std::string_view text, size_t max_depth, JsonValue& out);

// Reads typed fields of one JSON object. Raw members (payload, result, progress) keep the
// client's bytes. Messages name the field after its path: `path` "backoff" gives
// "backoff.factor"; with an `index`, "tasks" gives "tasks[3].priority". The path is only
// formatted for a message.
class FieldReader {
 public:
  explicit FieldReader(JsonValue object, std::string_view path = {}, int64_t index = -1)
      : object_(object), path_(path), index_(index) {}

  bool Has(std::string_view field) const;
  // Absent or null leaves `out` empty. Integers only (1.5 and 1e3 are refused).
  Error Int(std::string_view field, int64_t min, int64_t max, std::optional<int64_t>& out) const;
  Error Double(std::string_view field, double min, double max, std::optional<double>& out) const;
  Error Bool(std::string_view field, std::optional<bool>& out) const;
  Error String(std::string_view field, size_t max_bytes, std::optional<std::string>& out) const;
  // The same on a member already found (nothing or null: absent), for decoders that walk
  // the members once.
  Error Int(std::string_view field, JsonValue v, int64_t min, int64_t max,
            std::optional<int64_t>& out) const;
  Error String(std::string_view field, JsonValue v, size_t max_bytes,
               std::optional<std::string>& out) const;
  // The exact JSON text of the member (null included), or empty when absent.
  std::string_view Raw(std::string_view field) const;
  // The member, null included; nothing when absent.
  JsonValue Member(std::string_view field) const { return object_.Find(field); }

  Error Invalid(std::string_view field, std::string_view why) const;
  // "tasks[3]." (or "backoff.", or "" at the top).
  std::string prefix() const;

 private:
  // The member unless it is absent or null.
  JsonValue Find(std::string_view field) const;

  JsonValue object_;
  std::string_view path_;
  int64_t index_;
};

// An unsigned 64-bit id from a URL path segment or JSON; nullopt when not one.
std::optional<uint64_t> ParseId(std::string_view text);

}  // namespace conveyor
