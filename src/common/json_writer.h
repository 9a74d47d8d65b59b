// JsonWriter: appends JSON text to a caller-owned std::string. Used to build every
// response, so that stored payloads, results and progress (raw client bytes) are spliced
// in as they are, never re-serialized. Not thread-safe; one writer per response.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

namespace conveyor {

class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  JsonWriter& Key(std::string_view key);
  JsonWriter& String(std::string_view value);
  JsonWriter& Int(int64_t value);
  JsonWriter& Uint(uint64_t value);
  JsonWriter& Double(double value);
  JsonWriter& Bool(bool value);
  JsonWriter& Null();
  // Splices already-valid JSON text (or null when empty).
  JsonWriter& Raw(std::string_view json);

  template <typename T>
  JsonWriter& Field(std::string_view key, T value) {
    Key(key);
    if constexpr (std::is_same_v<T, bool>) {
      return Bool(value);
    } else if constexpr (std::is_convertible_v<T, std::string_view>) {
      return String(value);
    } else if constexpr (std::is_unsigned_v<T>) {
      return Uint(value);
    } else {
      return Int(value);
    }
  }

 private:
  void Separate();

  std::string& out_;
  bool need_comma_ = false;
};

// Appends `text` as a JSON string literal (with quotes), escaping as RFC 8259 requires.
// Bytes that are not valid UTF-8 are replaced by U+FFFD, so no output is ever invalid.
void AppendJsonString(std::string& out, std::string_view text);

}  // namespace conveyor
