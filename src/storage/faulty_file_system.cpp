#include "storage/faulty_file_system.h"

#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <thread>

namespace conveyor {
namespace {

using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;
using rocksdb::Slice;

class FaultyWritableFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FaultyWritableFile(std::unique_ptr<rocksdb::FSWritableFile> file, const std::string& flag)
      : FSWritableFileOwnerWrapper(std::move(file)), flag_(flag) {}

  IOStatus Append(const Slice& data, const IOOptions& o, IODebugContext* d) override {
    if (auto s = Injected(/*sync=*/false); !s.ok()) return s;
    return FSWritableFileOwnerWrapper::Append(data, o, d);
  }
  IOStatus Append(const Slice& data, const IOOptions& o, const rocksdb::DataVerificationInfo& v,
                  IODebugContext* d) override {
    if (auto s = Injected(/*sync=*/false); !s.ok()) return s;
    return FSWritableFileOwnerWrapper::Append(data, o, v, d);
  }
  IOStatus Flush(const IOOptions& o, IODebugContext* d) override {
    if (auto s = Injected(/*sync=*/false); !s.ok()) return s;
    return FSWritableFileOwnerWrapper::Flush(o, d);
  }
  IOStatus Sync(const IOOptions& o, IODebugContext* d) override {
    if (auto s = Injected(/*sync=*/true); !s.ok()) return s;
    return FSWritableFileOwnerWrapper::Sync(o, d);
  }
  IOStatus Fsync(const IOOptions& o, IODebugContext* d) override {
    if (auto s = Injected(/*sync=*/true); !s.ok()) return s;
    return FSWritableFileOwnerWrapper::Fsync(o, d);
  }

 private:
  IOStatus Injected(bool sync) const {
    struct stat st;
    if (::stat(flag_.c_str(), &st) != 0) return IOStatus::OK();
    std::ifstream in(flag_);
    std::string kind;
    in >> kind;
    if (kind == "slow") {  // a stalled disk: syncs take 2 s, and then succeed
      if (sync) std::this_thread::sleep_for(std::chrono::seconds(2));
      return IOStatus::OK();
    }
    // As RocksDB's POSIX file system does: a full disk is retryable, an I/O error is not.
    if (kind == "enospc") {
      IOStatus s = IOStatus::NoSpace("injected: no space left on device");
      s.SetRetryable(true);
      return s;
    }
    return IOStatus::IOError("injected: input/output error");
  }

  std::string flag_;
};

class FaultyFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  FaultyFileSystem(std::shared_ptr<rocksdb::FileSystem> base, std::string flag)
      : FileSystemWrapper(std::move(base)), flag_(std::move(flag)) {}

  const char* Name() const override { return "ConveyorFaultyFileSystem"; }

  IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                           std::unique_ptr<rocksdb::FSWritableFile>* result,
                           IODebugContext* dbg) override {
    IOStatus s = FileSystemWrapper::NewWritableFile(name, options, result, dbg);
    if (s.ok() && IsWal(name)) result->reset(new FaultyWritableFile(std::move(*result), flag_));
    return s;
  }

  IOStatus ReopenWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                              std::unique_ptr<rocksdb::FSWritableFile>* result,
                              IODebugContext* dbg) override {
    IOStatus s = FileSystemWrapper::ReopenWritableFile(name, options, result, dbg);
    if (s.ok() && IsWal(name)) result->reset(new FaultyWritableFile(std::move(*result), flag_));
    return s;
  }

 private:
  static bool IsWal(const std::string& name) {
    return name.size() > 4 && name.compare(name.size() - 4, 4, ".log") == 0;
  }
  std::string flag_;
};

}  // namespace

std::shared_ptr<rocksdb::FileSystem> NewFaultyFileSystem(std::shared_ptr<rocksdb::FileSystem> base,
                                                         std::string flag_path) {
  return std::make_shared<FaultyFileSystem>(std::move(base), std::move(flag_path));
}

}  // namespace conveyor
