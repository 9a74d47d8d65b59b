#include "storage/faulty_file_system.h"

#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <string_view>
#include <thread>

namespace conveyor {
namespace {

using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;
using rocksdb::Slice;

// The fault the flag file asks for, if any. `enospc`, `eio` and `slow` hit WAL files only;
// `enospc-all` and `eio-all` hit every file RocksDB writes (tables, MANIFEST, OPTIONS...),
// as a real full or broken disk does.
IOStatus InjectedFault(const std::string& flag, bool wal, bool sync) {
  struct stat st;
  if (::stat(flag.c_str(), &st) != 0) return IOStatus::OK();
  std::ifstream in(flag);
  std::string kind;
  in >> kind;
  constexpr std::string_view kAll = "-all";
  const bool all = kind.size() > kAll.size() && kind.ends_with(kAll);
  if (all) kind.resize(kind.size() - kAll.size());
  if (!wal && !all) return IOStatus::OK();
  if (kind == "eio-sync") {  // writes land in the page cache, syncs fail (batch mode's loss)
    return sync ? IOStatus::IOError("injected: fsync input/output error") : IOStatus::OK();
  }
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

class FaultyWritableFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FaultyWritableFile(std::unique_ptr<rocksdb::FSWritableFile> file, const std::string& flag,
                     bool wal)
      : FSWritableFileOwnerWrapper(std::move(file)), flag_(flag), wal_(wal) {}

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
  IOStatus Injected(bool sync) const { return InjectedFault(flag_, wal_, sync); }

  std::string flag_;
  bool wal_;
};

class FaultyFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  FaultyFileSystem(std::shared_ptr<rocksdb::FileSystem> base, std::string flag)
      : FileSystemWrapper(std::move(base)), flag_(std::move(flag)) {}

  const char* Name() const override { return "ConveyorFaultyFileSystem"; }

  IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                           std::unique_ptr<rocksdb::FSWritableFile>* result,
                           IODebugContext* dbg) override {
    // Only the `-all` kinds refuse to create files (a full disk); the WAL-only kinds fail
    // its writes instead.
    if (auto f = InjectedFault(flag_, /*wal=*/false, /*sync=*/false); !f.ok()) return f;
    IOStatus s = FileSystemWrapper::NewWritableFile(name, options, result, dbg);
    if (s.ok()) result->reset(new FaultyWritableFile(std::move(*result), flag_, IsWal(name)));
    return s;
  }

  IOStatus ReopenWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                              std::unique_ptr<rocksdb::FSWritableFile>* result,
                              IODebugContext* dbg) override {
    IOStatus s = FileSystemWrapper::ReopenWritableFile(name, options, result, dbg);
    if (s.ok()) result->reset(new FaultyWritableFile(std::move(*result), flag_, IsWal(name)));
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
