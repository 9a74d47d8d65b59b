#include "drop_unsynced_file_system.h"

#include <filesystem>

namespace conveyor::testing {
namespace {

using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;

class TrackedFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  TrackedFile(std::unique_ptr<rocksdb::FSWritableFile> file, DropUnsyncedFileSystem* fs,
              std::string name)
      : FSWritableFileOwnerWrapper(std::move(file)), fs_(fs), name_(std::move(name)) {}

  IOStatus Append(const rocksdb::Slice& data, const IOOptions& o, IODebugContext* d) override {
    IOStatus s = FSWritableFileOwnerWrapper::Append(data, o, d);
    if (s.ok()) fs_->Appended(name_, data.size());
    return s;
  }
  IOStatus Append(const rocksdb::Slice& data, const IOOptions& o,
                  const rocksdb::DataVerificationInfo& v, IODebugContext* d) override {
    IOStatus s = FSWritableFileOwnerWrapper::Append(data, o, v, d);
    if (s.ok()) fs_->Appended(name_, data.size());
    return s;
  }
  IOStatus Sync(const IOOptions& o, IODebugContext* d) override {
    IOStatus s = FSWritableFileOwnerWrapper::Sync(o, d);
    if (s.ok()) fs_->Synced(name_);
    return s;
  }
  IOStatus Fsync(const IOOptions& o, IODebugContext* d) override {
    IOStatus s = FSWritableFileOwnerWrapper::Fsync(o, d);
    if (s.ok()) fs_->Synced(name_);
    return s;
  }
  IOStatus Close(const IOOptions& o, IODebugContext* d) override {
    return FSWritableFileOwnerWrapper::Close(o, d);
  }

 private:
  DropUnsyncedFileSystem* fs_;
  std::string name_;
};

}  // namespace

rocksdb::IOStatus DropUnsyncedFileSystem::NewWritableFile(
    const std::string& name, const rocksdb::FileOptions& options,
    std::unique_ptr<rocksdb::FSWritableFile>* result, rocksdb::IODebugContext* dbg) {
  IOStatus s = FileSystemWrapper::NewWritableFile(name, options, result, dbg);
  if (s.ok()) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      files_[std::filesystem::path(name).lexically_normal().string()] = FileState{};
    }
    result->reset(new TrackedFile(std::move(*result), this,
                                  std::filesystem::path(name).lexically_normal().string()));
  }
  return s;
}

void DropUnsyncedFileSystem::Appended(const std::string& name, uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  files_[name].written += bytes;
}

void DropUnsyncedFileSystem::Synced(const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  files_[name].synced = files_[name].written;
}

void DropUnsyncedFileSystem::CopySyncedState(const std::string& from, const std::string& to) {
  namespace fs = std::filesystem;
  fs::create_directories(to);
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& entry : fs::directory_iterator(from)) {
    if (!entry.is_regular_file()) continue;
    fs::path target = fs::path(to) / entry.path().filename();
    fs::copy_file(entry.path(), target, fs::copy_options::overwrite_existing);
    auto it = files_.find(entry.path().lexically_normal().string());
    if (it != files_.end()) fs::resize_file(target, it->second.synced);
  }
}

}  // namespace conveyor::testing
