// Little helpers for the storage record format: varints, zigzag, length-prefixed strings,
// with a reader that never reads past its input (a corrupt record fails to decode rather
// than crash). Used by task_codec.cpp only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace conveyor {

class BinaryWriter {
 public:
  explicit BinaryWriter(std::string& out) : out_(out) {}
  void Byte(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7F) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  void Signed(int64_t v) {
    Varint((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
  }
  void Bytes(std::string_view s) {
    Varint(s.size());
    out_.append(s);
  }

 private:
  std::string& out_;
};

class BinaryReader {
 public:
  explicit BinaryReader(std::string_view in) : in_(in) {}
  bool Byte(uint8_t& v) {
    if (pos_ >= in_.size()) return false;
    v = static_cast<uint8_t>(in_[pos_++]);
    return true;
  }
  bool Varint(uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b;
      if (!Byte(b)) return false;
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }
  bool Signed(int64_t& v) {
    uint64_t u;
    if (!Varint(u)) return false;
    v = static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1));
    return true;
  }
  bool Bytes(std::string& s) {
    uint64_t n;
    if (!Varint(n) || n > in_.size() - pos_) return false;
    s.assign(in_.substr(pos_, n));
    pos_ += n;
    return true;
  }
  bool done() const { return pos_ == in_.size(); }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

}  // namespace conveyor
