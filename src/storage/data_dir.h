// DataDir: the directory `serve` keeps its data in. Opening it checks that it is a Conveyor
// data dir of a format this build reads (a `CONVEYOR` marker file) before anything in it is
// touched, and takes an exclusive lock (flock on `conveyor.lock`, holding the owner's PID)
// so two servers never write one dir. Owned by the serve command for the process lifetime.
#pragma once

#include <memory>
#include <string>

namespace conveyor {

inline constexpr int kDataFormatVersion = 1;

class DataDir {
 public:
  // On failure returns null and sets `error` to a sentence naming the problem.
  static std::unique_ptr<DataDir> Open(const std::string& path, std::string& error);
  ~DataDir();
  DataDir(const DataDir&) = delete;
  DataDir& operator=(const DataDir&) = delete;

  const std::string& path() const { return path_; }
  std::string db_path() const { return path_ + "/db"; }

 private:
  DataDir(std::string path, int lock_fd) : path_(std::move(path)), lock_fd_(lock_fd) {}

  std::string path_;
  int lock_fd_;
};

}  // namespace conveyor
