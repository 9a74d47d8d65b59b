// DropUnsyncedFileSystem: a RocksDB FileSystem wrapper for crash tests (TESTPLAN A.4, the
// leveldb fault_injection_test pattern). It remembers, for every file written through it,
// how many bytes were covered by a completed Sync/Fsync. CopySyncedState() copies a
// directory as a power loss would leave it: each tracked file cut to its synced length.
#pragma once

#include <rocksdb/file_system.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace conveyor::testing {

class DropUnsyncedFileSystem : public rocksdb::FileSystemWrapper {
 public:
  DropUnsyncedFileSystem() : FileSystemWrapper(rocksdb::FileSystem::Default()) {}
  const char* Name() const override { return "DropUnsyncedFileSystem"; }

  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override;

  // Copies every regular file of `from` into `to` (created), truncating the files written
  // through this file system to the bytes they had synced.
  void CopySyncedState(const std::string& from, const std::string& to);

  void Appended(const std::string& name, uint64_t bytes);
  void Synced(const std::string& name);

 private:
  struct FileState {
    uint64_t written = 0;
    uint64_t synced = 0;
  };
  std::mutex mutex_;
  std::map<std::string, FileState> files_;
};

}  // namespace conveyor::testing
