#include "storage/wal_check.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace conveyor {
namespace {

constexpr size_t kBlockSize = 32768;
constexpr size_t kHeaderSize = 7;
constexpr size_t kRecyclableHeaderSize = 11;
constexpr uint8_t kMaxRecordType = 10;

const std::array<uint32_t, 256>& Crc32cTable() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  return table;
}

uint32_t Crc32c(const unsigned char* data, size_t n) {
  const auto& table = Crc32cTable();
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

uint32_t Unmask(uint32_t masked) {
  uint32_t rot = masked - 0xa282ead8u;
  return (rot >> 17) | (rot << 15);
}

uint32_t Fixed32(const unsigned char* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

// Length of the valid record starting at pos, or 0 if there is none.
size_t ValidRecordAt(const std::string& bytes, size_t pos) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data()) + pos;
  const size_t block_left = kBlockSize - pos % kBlockSize;
  const size_t file_left = bytes.size() - pos;
  if (block_left < kHeaderSize || file_left < kHeaderSize) return 0;
  const uint8_t type = p[6];
  if (type == 0 || type > kMaxRecordType) return 0;
  const size_t header = (type >= 5 && type <= 8) ? kRecyclableHeaderSize : kHeaderSize;
  const size_t length = size_t(p[4]) | size_t(p[5]) << 8;
  if (header + length > block_left || header + length > file_left) return 0;
  // The checksum covers the type byte, the log number of recyclable records, and the data.
  const uint32_t crc = Crc32c(p + 6, header - 6 + length);
  return Unmask(Fixed32(p)) == crc ? header + length : 0;
}

bool AllZero(const std::string& bytes, size_t from) {
  return std::all_of(bytes.begin() + static_cast<long>(from), bytes.end(),
                     [](char c) { return c == 0; });
}

}  // namespace

WalFileCheck CheckWalBytes(const std::string& bytes) {
  WalFileCheck check;
  size_t pos = 0;
  while (pos < bytes.size()) {
    const size_t block_left = kBlockSize - pos % kBlockSize;
    if (block_left < kHeaderSize) {
      pos += block_left;  // the block's zero trailer
      continue;
    }
    const size_t n = ValidRecordAt(bytes, pos);
    if (n == 0) break;
    pos += n;
  }
  if (pos >= bytes.size() || AllZero(bytes, pos)) return check;  // clean (or preallocated)
  check.offset = pos;
  check.dropped = bytes.size() - pos;
  // A torn tail is the end of the file; a valid record further on means the bad record is
  // in the middle. Search the rest of this block byte by byte, then every later block
  // start, where a record (or fragment) always begins.
  const size_t block_end = std::min(bytes.size(), (pos / kBlockSize + 1) * kBlockSize);
  for (size_t q = pos + 1; q < block_end; ++q) {
    if (ValidRecordAt(bytes, q) != 0) {
      check.verdict = WalFileCheck::Verdict::kCorrupt;
      return check;
    }
  }
  for (size_t q = block_end; q < bytes.size(); q += kBlockSize) {
    if (ValidRecordAt(bytes, q) != 0) {
      check.verdict = WalFileCheck::Verdict::kCorrupt;
      return check;
    }
  }
  check.verdict = WalFileCheck::Verdict::kTornTail;
  return check;
}

std::vector<WalFileCheck> CheckWalFiles(const std::string& db_dir) {
  namespace fs = std::filesystem;
  std::vector<WalFileCheck> checks;
  std::error_code ec;
  if (!fs::is_directory(db_dir, ec)) return checks;
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(db_dir, ec)) {
    if (entry.is_regular_file() && entry.path().extension() == ".log")
      files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream content;
    content << in.rdbuf();
    WalFileCheck check = CheckWalBytes(content.str());
    check.path = file.string();
    checks.push_back(std::move(check));
  }
  return checks;
}

}  // namespace conveyor
