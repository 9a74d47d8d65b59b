#include "common/json_raw.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

namespace conveyor {
namespace {

bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

size_t SkipSpace(std::string_view text, size_t pos) {
  while (pos < text.size() && IsJsonSpace(text[pos])) ++pos;
  return pos;
}

// pos is at the opening quote; returns the index past the closing quote.
size_t SkipString(std::string_view text, size_t pos) {
  ++pos;
  while (pos < text.size()) {
    char c = text[pos];
    if (c == '\\') {
      pos += 2;
    } else if (c == '"') {
      return pos + 1;
    } else {
      ++pos;
    }
  }
  return text.size();
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return 0;
}

uint32_t Hex4(std::string_view s, size_t pos) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4 && pos + i < s.size(); ++i) v = v * 16 + HexValue(s[pos + i]);
  return v;
}

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool SameKey(std::string_view raw, std::string_view key) {
  if (raw.find('\\') == std::string_view::npos) return raw == key;
  return UnescapeJsonString(raw) == key;
}

}  // namespace

std::string UnescapeJsonString(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c != '\\' || i + 1 >= raw.size()) {
      out.push_back(c);
      continue;
    }
    char e = raw[++i];
    switch (e) {
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'u': {
        uint32_t cp = Hex4(raw, i + 1);
        i += 4;
        if (cp >= 0xD800 && cp < 0xDC00 && i + 6 < raw.size() && raw[i + 1] == '\\' &&
            raw[i + 2] == 'u') {
          uint32_t low = Hex4(raw, i + 3);
          if (low >= 0xDC00 && low < 0xE000) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            i += 6;
          }
        }
        AppendUtf8(out, cp);
        break;
      }
      default:
        out.push_back(e);
        break;  // \" \\ \/
    }
  }
  return out;
}

std::string_view TrimJson(std::string_view text) {
  size_t begin = SkipSpace(text, 0);
  size_t end = text.size();
  while (end > begin && IsJsonSpace(text[end - 1])) --end;
  return text.substr(begin, end - begin);
}

size_t SkipJsonValue(std::string_view text, size_t pos) {
  pos = SkipSpace(text, pos);
  if (pos >= text.size()) return pos;
  char c = text[pos];
  if (c == '"') return SkipString(text, pos);
  if (c == '{' || c == '[') {
    // Iterative so that depth never costs stack.
    size_t depth = 0;
    while (pos < text.size()) {
      char d = text[pos];
      if (d == '"') {
        pos = SkipString(text, pos);
        continue;
      }
      if (d == '{' || d == '[') ++depth;
      if (d == '}' || d == ']') {
        if (--depth == 0) return pos + 1;
      }
      ++pos;
    }
    return pos;
  }
  // number, true, false, null
  while (pos < text.size()) {
    char d = text[pos];
    if (d == ',' || d == '}' || d == ']' || IsJsonSpace(d)) break;
    ++pos;
  }
  return pos;
}

void ForEachJsonMember(std::string_view object,
                       const std::function<bool(std::string_view, std::string_view)>& visit) {
  size_t pos = SkipSpace(object, 0);
  if (pos >= object.size() || object[pos] != '{') return;
  ++pos;
  while (true) {
    pos = SkipSpace(object, pos);
    if (pos >= object.size() || object[pos] == '}') return;
    if (object[pos] == ',') {
      ++pos;
      continue;
    }
    size_t key_end = SkipString(object, pos);
    std::string_view key = object.substr(pos + 1, key_end - pos - 2);
    pos = SkipSpace(object, key_end);
    ++pos;  // ':'
    size_t value_begin = SkipSpace(object, pos);
    size_t value_end = SkipJsonValue(object, value_begin);
    if (!visit(key, object.substr(value_begin, value_end - value_begin))) return;
    pos = value_end;
  }
}

void ForEachJsonElement(std::string_view array,
                        const std::function<bool(std::string_view)>& visit) {
  size_t pos = SkipSpace(array, 0);
  if (pos >= array.size() || array[pos] != '[') return;
  ++pos;
  while (true) {
    pos = SkipSpace(array, pos);
    if (pos >= array.size() || array[pos] == ']') return;
    if (array[pos] == ',') {
      ++pos;
      continue;
    }
    size_t end = SkipJsonValue(array, pos);
    if (!visit(array.substr(pos, end - pos))) return;
    pos = end;
  }
}

std::string_view FindJsonMember(std::string_view object, std::string_view key) {
  std::string_view found;
  ForEachJsonMember(object, [&](std::string_view k, std::string_view v) {
    if (SameKey(k, key)) {
      found = v;
      return false;
    }
    return true;
  });
  return found;
}

bool HasDuplicateJsonKeys(std::string_view text) {
  // Collects (object number, key) for every key, then sorts: O(n log n) even for an
  // object with 100k keys, and no recursion for deep nesting.
  std::vector<std::pair<size_t, std::string_view>> keys;
  std::vector<std::unique_ptr<std::string>> unescaped;  // owns keys that had escapes
  std::vector<size_t> open_objects;  // object numbers; kArray marks an open array
  constexpr size_t kArray = static_cast<size_t>(-1);
  size_t next_object = 0;
  bool expect_key = false;
  for (size_t pos = 0; pos < text.size();) {
    char c = text[pos];
    if (c == '"') {
      size_t end = SkipString(text, pos);
      if (expect_key) {
        std::string_view key = text.substr(pos + 1, end - pos - 2);
        if (key.find('\\') != std::string_view::npos) {
          unescaped.push_back(std::make_unique<std::string>(UnescapeJsonString(key)));
          key = *unescaped.back();
        }
        keys.emplace_back(open_objects.back(), key);
        expect_key = false;
      }
      pos = end;
      continue;
    }
    if (c == '{') {
      open_objects.push_back(next_object++);
      expect_key = true;
    } else if (c == '[') {
      open_objects.push_back(kArray);
      expect_key = false;
    } else if (c == '}' || c == ']') {
      if (!open_objects.empty()) open_objects.pop_back();
      expect_key = false;
    } else if (c == ',') {
      expect_key = !open_objects.empty() && open_objects.back() != kArray;
    }
    ++pos;
  }
  std::sort(keys.begin(), keys.end());
  return std::adjacent_find(keys.begin(), keys.end()) != keys.end();
}

}  // namespace conveyor
