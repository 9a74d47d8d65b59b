// JsonDoc: the one JSON pass over a request body. A strict RFC 8259 parser (UTF-8 and
// surrogate pairs checked, nesting bounded, a key repeated in any object refused) that
// keeps a flat node for each value near the top (depth <= kRecordedDepth): its type, its
// exact bytes in the text, its number, its members or elements. Deeper values (a task's
// payload) are checked and stepped over, so they cost no nodes and no copies; a member's
// raw() is the client's own bytes. It replaces a Boost.JSON DOM plus two more walks (the
// duplicate-key scan and the raw-member lookup). Used by the API's body decoders on the
// connection's thread, through ThreadJsonDoc(): one JsonDoc a thread, whose buffers are
// reused, so a request allocates nothing once they have grown. Not shared across threads.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

namespace conveyor {

enum class JsonType : uint8_t { kNull, kBool, kInt, kUint, kDouble, kString, kArray, kObject };

struct JsonNode {
  uint32_t begin = 0, end = 0;          // the value's text
  uint32_t key_begin = 0, key_end = 0;  // a member's key, between its quotes
  uint32_t next = 0;                    // the next sibling's node; 0 for the last
  uint32_t first = 0;                   // a container's first child's node; 0 for none
  uint32_t size = 0;                    // a container's members or elements
  JsonType type = JsonType::kNull;
  bool key_escaped = false;     // the key has escapes (compare it unescaped)
  bool string_escaped = false;  // a string value with escapes
  bool boolean = false;
  union {
    int64_t i;
    uint64_t u;
    double d;
  } number{0};
};

class JsonDoc;

// A value of a parsed JsonDoc, or nothing (a member that is absent). Cheap to copy; valid
// while its JsonDoc is neither parsed again nor destroyed.
class JsonValue {
 public:
  JsonValue() = default;
  JsonValue(const JsonDoc* doc, uint32_t index) : doc_(doc), index_(index) {}

  explicit operator bool() const { return doc_ != nullptr; }
  JsonType type() const { return node().type; }
  bool is_null() const { return type() == JsonType::kNull; }
  bool is_object() const { return type() == JsonType::kObject; }
  bool is_array() const { return type() == JsonType::kArray; }
  bool is_string() const { return type() == JsonType::kString; }
  bool is_bool() const { return type() == JsonType::kBool; }
  bool is_number() const {
    return type() == JsonType::kInt || type() == JsonType::kUint || type() == JsonType::kDouble;
  }

  // The value's exact text.
  std::string_view raw() const;
  int64_t int64() const { return node().number.i; }    // REQUIRES: type kInt
  uint64_t uint64() const { return node().number.u; }  // REQUIRES: type kUint
  bool boolean() const { return node().boolean; }
  double to_double() const;                    // REQUIRES: is_number()
  std::string string() const;                  // unescaped; REQUIRES: kString
  size_t size() const { return node().size; }  // members or elements

  // A member of this object by key (compared as the parser reads keys: unescaped); nothing
  // when absent or when this is not an object.
  JsonValue Find(std::string_view key) const;
  // This member's key, unescaped; and its text between the quotes, as sent.
  std::string key() const;
  std::string_view raw_key() const;
  bool key_escaped() const { return node().key_escaped; }
  // The first child (member or element) and the next sibling; nothing past the end.
  JsonValue first() const;
  JsonValue next() const;

 private:
  const JsonNode& node() const;

  const JsonDoc* doc_ = nullptr;
  uint32_t index_ = 0;
};

class JsonDoc {
 public:
  // Containers deeper than this keep no nodes for their children (they are still checked).
  static constexpr uint32_t kRecordedDepth = 3;

  // Parses `text` (which must outlive the use of the values). False, with error(), when
  // the text is not exactly one strict JSON value, nests deeper than max_depth containers,
  // or repeats a key in an object.
  bool Parse(std::string_view text, size_t max_depth);
  const std::string& error() const { return error_; }
  JsonValue root() const { return JsonValue(this, 0); }
  std::string_view text() const { return text_; }
  const JsonNode& node(uint32_t index) const { return nodes_[index]; }

 private:
  struct Key {
    std::string_view text;  // into the body, or into unescaped_ for a key with escapes
  };

  bool Fail(const char* what);
  void SkipSpace();
  bool Value(uint32_t depth, bool record, uint32_t* index);
  // `record`: keep nodes for the children; `index`: the container's own node, if kept.
  bool Object(uint32_t depth, bool record, uint32_t index);
  bool Array(uint32_t depth, bool record, uint32_t index);
  bool String(bool* escaped);
  bool Number(JsonNode* node, bool convert);
  bool Literal(std::string_view word);
  bool CheckKeys(size_t first_key, size_t count);
  void Link(uint32_t index, uint32_t& last, uint32_t child);
  bool AfterElement(char close, bool* closed);

  std::string_view text_;
  size_t pos_ = 0;
  size_t max_depth_ = 0;
  std::vector<JsonNode> nodes_;
  std::vector<Key> keys_;              // the keys of the objects open now, innermost last
  std::deque<std::string> unescaped_;  // keys with escapes, unescaped
  std::string error_;
};

// This thread's JsonDoc, for decoders that finish with it before they return.
JsonDoc& ThreadJsonDoc();

}  // namespace conveyor
