// WalCheck: reads RocksDB's write-ahead log files before the database is opened, to tell
// a torn final record (the last write before a crash: dropped, with a log line) from
// corruption in the middle of a file (refused: starting would silently lose every
// record after it, which RocksDB's tail-tolerant recovery cannot tell apart). Used once
// by RocksStore::Open. Format: RocksDB's log_format.h (32 KiB blocks, 7-byte headers of
// masked CRC32C, length and type; 11 bytes for recyclable types).
#pragma once

#include <string>
#include <vector>

namespace conveyor {

struct WalFileCheck {
  std::string path;
  enum class Verdict { kClean, kTornTail, kCorrupt } verdict = Verdict::kClean;
  size_t offset = 0;   // where the first bad record starts
  size_t dropped = 0;  // bytes from there to the end of the file
};

// Checks every *.log file directly in `db_dir`.
std::vector<WalFileCheck> CheckWalFiles(const std::string& db_dir);

// Exposed for tests: the check of one file's bytes.
WalFileCheck CheckWalBytes(const std::string& bytes);

}  // namespace conveyor
