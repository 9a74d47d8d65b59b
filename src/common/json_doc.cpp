#include "common/json_doc.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdlib>
#include <cstring>

#include "common/json_raw.h"

namespace conveyor {
namespace {

// Past this many keys an object's keys are checked for repeats by sorting them at its
// end instead of comparing each new key with those before it (which is quadratic).
constexpr size_t kLinearKeyCheck = 16;
// Buffers grown past these by one big body are given back after it.
constexpr size_t kKeptNodes = 1 << 16;
constexpr size_t kKeptKeys = 1 << 12;
// Exponents beyond this are refused (Boost.JSON refuses those past 2^31 as "exponent
// overflow"; no double needs more than 3 digits).
constexpr uint64_t kMaxExponent = 999'999'999;
// The container's node when it is not recorded.
constexpr uint32_t kNoNode = UINT32_MAX;

// Bytes a string may hold as they are: printable ASCII but the quote and the backslash.
constexpr auto kPlainStringByte = [] {
  std::array<bool, 256> plain{};
  for (int c = 0x20; c < 0x80; ++c) plain[c] = c != '"' && c != '\\';
  return plain;
}();

// True when a byte of the 8 in `w` is a control character, a quote, a backslash or not
// ASCII (false positives after a true one are harmless: the caller then goes byte by byte).
bool WordNeedsLook(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL, kHigh = 0x8080808080808080ULL;
  const uint64_t quote = w ^ (kOnes * '"'), backslash = w ^ (kOnes * '\\');
  const uint64_t below_space = (w - kOnes * 0x20) & ~w;
  const uint64_t is_quote = (quote - kOnes) & ~quote;
  const uint64_t is_backslash = (backslash - kOnes) & ~backslash;
  return ((below_space | is_quote | is_backslash | w) & kHigh) != 0;
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Length of the UTF-8 sequence at s[0] (RFC 3629: no overlongs, no surrogates, at most
// U+10FFFF), or 0 when it is not one. REQUIRES: s[0] >= 0x80.
size_t Utf8Length(const unsigned char* s, size_t left) {
  auto cont = [&](size_t i, unsigned char lo = 0x80, unsigned char hi = 0xBF) {
    return i < left && s[i] >= lo && s[i] <= hi;
  };
  const unsigned char c = s[0];
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    const unsigned char lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    const unsigned char lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

}  // namespace

// ---- JsonValue ---------------------------------------------------------------------------

const JsonNode& JsonValue::node() const { return doc_->node(index_); }

std::string_view JsonValue::raw() const {
  const JsonNode& n = node();
  return doc_->text().substr(n.begin, n.end - n.begin);
}

double JsonValue::to_double() const {
  const JsonNode& n = node();
  if (n.type == JsonType::kInt) return static_cast<double>(n.number.i);
  if (n.type == JsonType::kUint) return static_cast<double>(n.number.u);
  return n.number.d;
}

std::string JsonValue::string() const {
  std::string_view r = raw().substr(1, raw().size() - 2);
  return node().string_escaped ? UnescapeJsonString(r) : std::string(r);
}

std::string_view JsonValue::raw_key() const {
  const JsonNode& n = node();
  return doc_->text().substr(n.key_begin, n.key_end - n.key_begin);
}

std::string JsonValue::key() const {
  const JsonNode& n = node();
  std::string_view k = doc_->text().substr(n.key_begin, n.key_end - n.key_begin);
  return n.key_escaped ? UnescapeJsonString(k) : std::string(k);
}

JsonValue JsonValue::Find(std::string_view key) const {
  if (!doc_ || !is_object()) return {};
  for (JsonValue m = first(); m; m = m.next()) {
    const JsonNode& n = m.node();
    std::string_view k = doc_->text().substr(n.key_begin, n.key_end - n.key_begin);
    if (n.key_escaped ? UnescapeJsonString(k) == key : k == key) return m;
  }
  return {};
}

JsonValue JsonValue::first() const {
  const uint32_t i = node().first;
  return i == 0 ? JsonValue() : JsonValue(doc_, i);
}

JsonValue JsonValue::next() const {
  const uint32_t i = node().next;
  return i == 0 ? JsonValue() : JsonValue(doc_, i);
}

// ---- JsonDoc -----------------------------------------------------------------------------

bool JsonDoc::Parse(std::string_view text, size_t max_depth) {
  if (nodes_.capacity() > kKeptNodes) std::vector<JsonNode>().swap(nodes_);
  if (keys_.capacity() > kKeptKeys) std::vector<Key>().swap(keys_);
  nodes_.clear();
  keys_.clear();
  unescaped_.clear();
  error_.clear();
  text_ = text;
  pos_ = 0;
  max_depth_ = max_depth;
  if (text.size() > UINT32_MAX) return Fail("the text is too large");
  uint32_t root = 0;
  SkipSpace();
  if (!Value(0, true, &root)) return false;
  SkipSpace();
  if (pos_ != text_.size()) return Fail("extra data after the value");
  return true;
}

bool JsonDoc::Fail(const char* what) {
  if (error_.empty()) {
    error_ = what;
    error_ += " at byte " + std::to_string(pos_);
  }
  return false;
}

void JsonDoc::SkipSpace() {
  while (pos_ < text_.size() && IsSpace(text_[pos_])) ++pos_;
}

bool JsonDoc::Value(uint32_t depth, bool record, uint32_t* index) {
  if (pos_ >= text_.size()) return Fail("incomplete JSON");
  JsonNode local;
  JsonNode* node = &local;
  if (record) {
    *index = static_cast<uint32_t>(nodes_.size());
    nodes_.emplace_back();
    node = &nodes_.back();
  }
  node->begin = static_cast<uint32_t>(pos_);
  const char c = text_[pos_];
  bool ok;
  if (c == '{' || c == '[') {
    if (depth + 1 > max_depth_) return Fail("nested too deep");
    node->type = c == '{' ? JsonType::kObject : JsonType::kArray;
    const bool children = record && depth < kRecordedDepth;
    const uint32_t at = record ? *index : kNoNode;
    ok = c == '{' ? Object(depth + 1, children, at) : Array(depth + 1, children, at);
    if (record) node = &nodes_[*index];  // children may have moved the nodes
  } else if (c == '"') {
    node->type = JsonType::kString;
    bool escaped;
    ok = String(&escaped);
    node->string_escaped = escaped;
  } else if (c == 't' || c == 'f') {
    node->type = JsonType::kBool;
    node->boolean = c == 't';
    ok = Literal(c == 't' ? "true" : "false");
  } else if (c == 'n') {
    node->type = JsonType::kNull;
    ok = Literal("null");
  } else if (c == '-' || IsDigit(c)) {
    ok = Number(node, record);
  } else {
    return Fail("syntax error");
  }
  if (!ok) return false;
  node->end = static_cast<uint32_t>(pos_);
  return true;
}

bool JsonDoc::Object(uint32_t depth, bool record, uint32_t index) {
  ++pos_;  // '{'
  const size_t first_key = keys_.size();
  uint32_t count = 0, last = 0;
  SkipSpace();
  if (pos_ < text_.size() && text_[pos_] == '}') {
    ++pos_;
    return true;
  }
  for (;;) {
    if (pos_ >= text_.size()) return Fail("incomplete JSON");
    if (text_[pos_] != '"') return Fail("syntax error: expected a key");
    const size_t key_begin = pos_ + 1;
    bool escaped;
    if (!String(&escaped)) return false;
    const size_t key_end = pos_ - 1;
    std::string_view key = text_.substr(key_begin, key_end - key_begin);
    if (escaped) key = unescaped_.emplace_back(UnescapeJsonString(key));
    if (count < kLinearKeyCheck) {
      for (size_t i = first_key; i < keys_.size(); ++i) {
        if (keys_[i].text == key) return Fail("an object repeats a key");
      }
    }
    keys_.push_back(Key{key});
    SkipSpace();
    if (pos_ >= text_.size()) return Fail("incomplete JSON");
    if (text_[pos_] != ':') return Fail("syntax error: expected ':'");
    ++pos_;
    SkipSpace();
    uint32_t child = 0;
    if (!Value(depth, record, &child)) return false;
    ++count;
    if (record) {
      JsonNode& n = nodes_[child];
      n.key_begin = static_cast<uint32_t>(key_begin);
      n.key_end = static_cast<uint32_t>(key_end);
      n.key_escaped = escaped;
      Link(index, last, child);
    }
    bool closed = false;
    if (!AfterElement('}', &closed)) return false;
    if (closed) break;
  }
  if (!CheckKeys(first_key, count)) return false;
  keys_.resize(first_key);
  if (index != kNoNode) nodes_[index].size = count;
  return true;
}

// Appends node `child` to the children of container `index`, whose last child is `last`.
void JsonDoc::Link(uint32_t index, uint32_t& last, uint32_t child) {
  if (last == 0) {
    nodes_[index].first = child;
  } else {
    nodes_[last].next = child;
  }
  last = child;
}

// After a member or element: a ',' (another follows) or the container's `close`.
bool JsonDoc::AfterElement(char close, bool* closed) {
  SkipSpace();
  if (pos_ >= text_.size()) return Fail("incomplete JSON");
  if (text_[pos_] == ',') {
    ++pos_;
    SkipSpace();
    return true;
  }
  if (text_[pos_] != close) {
    return Fail(close == '}' ? "syntax error: expected ',' or '}'"
                             : "syntax error: expected ',' or ']'");
  }
  ++pos_;
  *closed = true;
  return true;
}

bool JsonDoc::CheckKeys(size_t first_key, size_t count) {
  if (count <= kLinearKeyCheck) return true;  // each was compared as it came
  auto begin = keys_.begin() + static_cast<std::ptrdiff_t>(first_key);
  std::sort(begin, keys_.end(), [](const Key& a, const Key& b) { return a.text < b.text; });
  auto repeat = std::adjacent_find(begin, keys_.end(),
                                   [](const Key& a, const Key& b) { return a.text == b.text; });
  return repeat == keys_.end() || Fail("an object repeats a key");
}

bool JsonDoc::Array(uint32_t depth, bool record, uint32_t index) {
  ++pos_;  // '['
  uint32_t count = 0, last = 0;
  SkipSpace();
  if (pos_ < text_.size() && text_[pos_] == ']') {
    ++pos_;
    return true;
  }
  for (;;) {
    uint32_t child = 0;
    if (!Value(depth, record, &child)) return false;
    ++count;
    if (record) Link(index, last, child);
    bool closed = false;
    if (!AfterElement(']', &closed)) return false;
    if (closed) break;
  }
  if (index != kNoNode) nodes_[index].size = count;
  return true;
}

bool JsonDoc::String(bool* escaped) {
  ++pos_;  // '"'
  *escaped = false;
  const auto* s = reinterpret_cast<const unsigned char*>(text_.data());
  const size_t n = text_.size();
  while (pos_ < n) {
    for (uint64_t w; pos_ + 8 <= n; pos_ += 8) {
      std::memcpy(&w, s + pos_, 8);
      if (WordNeedsLook(w)) break;
    }
    while (pos_ < n && kPlainStringByte[s[pos_]]) ++pos_;
    if (pos_ >= n) break;
    const unsigned char c = s[pos_];
    if (c == '"') {
      ++pos_;
      return true;
    }
    if (c < 0x20) return Fail("a control character in a string");
    if (c >= 0x80) {
      const size_t len = Utf8Length(s + pos_, n - pos_);
      if (len == 0) return Fail("invalid UTF-8 in a string");
      pos_ += len;
      continue;
    }
    *escaped = true;  // a backslash
    if (++pos_ >= n) return Fail("incomplete JSON");
    const char e = text_[pos_];
    if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' ||
        e == 't') {
      ++pos_;
      continue;
    }
    if (e != 'u') return Fail("an invalid escape in a string");
    auto hex4 = [&](size_t at, unsigned* out) {
      if (at + 4 > n) return false;
      unsigned v = 0;
      for (size_t i = 0; i < 4; ++i) {
        const int h = HexValue(text_[at + i]);
        if (h < 0) return false;
        v = v * 16 + static_cast<unsigned>(h);
      }
      *out = v;
      return true;
    };
    unsigned unit;
    if (!hex4(pos_ + 1, &unit)) return Fail("an invalid \\u escape in a string");
    pos_ += 5;
    if (unit >= 0xDC00 && unit <= 0xDFFF) return Fail("a lone trailing surrogate in a string");
    if (unit >= 0xD800 && unit <= 0xDBFF) {
      unsigned low;
      if (pos_ + 1 >= n || text_[pos_] != '\\' || text_[pos_ + 1] != 'u' || !hex4(pos_ + 2, &low) ||
          low < 0xDC00 || low > 0xDFFF) {
        return Fail("a leading surrogate without its trailing one in a string");
      }
      pos_ += 6;
    }
  }
  return Fail("incomplete JSON");
}

bool JsonDoc::Number(JsonNode* node, bool convert) {
  const size_t start = pos_;
  const size_t n = text_.size();
  const bool negative = text_[pos_] == '-';
  if (negative) ++pos_;
  if (pos_ >= n) return Fail("incomplete JSON");
  if (text_[pos_] == '0') {
    ++pos_;
  } else if (IsDigit(text_[pos_])) {
    while (pos_ < n && IsDigit(text_[pos_])) ++pos_;
  } else {
    return Fail("syntax error in a number");
  }
  bool integer = true;
  if (pos_ < n && text_[pos_] == '.') {
    integer = false;
    ++pos_;
    if (pos_ >= n || !IsDigit(text_[pos_])) return Fail("syntax error in a number");
    while (pos_ < n && IsDigit(text_[pos_])) ++pos_;
  }
  if (pos_ < n && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
    integer = false;
    ++pos_;
    if (pos_ < n && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
    if (pos_ >= n || !IsDigit(text_[pos_])) return Fail("syntax error in a number");
    uint64_t exponent = 0;
    for (; pos_ < n && IsDigit(text_[pos_]); ++pos_) {
      exponent = std::min<uint64_t>(exponent * 10 + static_cast<uint64_t>(text_[pos_] - '0'),
                                    kMaxExponent + 1);
    }
    if (exponent > kMaxExponent) return Fail("a number's exponent is out of range");
  }
  if (!convert) {
    node->type = integer ? JsonType::kInt : JsonType::kDouble;
    return true;
  }
  const char* b = text_.data() + start;
  const char* e = text_.data() + pos_;
  if (integer) {
    if (auto r = std::from_chars(b, e, node->number.i); r.ec == std::errc() && r.ptr == e) {
      node->type = JsonType::kInt;
      return true;
    }
    if (!negative) {
      if (auto r = std::from_chars(b, e, node->number.u); r.ec == std::errc() && r.ptr == e) {
        node->type = JsonType::kUint;
        return true;
      }
    }
  }
  node->type = JsonType::kDouble;
  if (auto r = std::from_chars(b, e, node->number.d); r.ec == std::errc() && r.ptr == e) {
    return true;
  }
  // Past the range: strtod gives ±HUGE_VAL or 0, as JSON parsers read 1e400 (infinity).
  node->number.d = std::strtod(std::string(b, e).c_str(), nullptr);
  return true;
}

bool JsonDoc::Literal(std::string_view word) {
  if (text_.substr(pos_, word.size()) != word) {
    return Fail(pos_ + word.size() > text_.size() ? "incomplete JSON" : "syntax error");
  }
  pos_ += word.size();
  return true;
}

JsonDoc& ThreadJsonDoc() {
  thread_local JsonDoc doc;
  return doc;
}

}  // namespace conveyor
