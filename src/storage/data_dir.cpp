#include "storage/data_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace conveyor {
namespace {

namespace fs = std::filesystem;
constexpr const char* kMarker = "CONVEYOR";
constexpr const char* kLock = "conveyor.lock";

bool WriteFileSynced(const std::string& path, const std::string& text, std::string& error) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    error = "cannot create " + path + ": " + std::strerror(errno);
    return false;
  }
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fsync(fd) == 0;
  if (!ok) error = "cannot write " + path + ": " + std::strerror(errno);
  ::close(fd);
  return ok;
}

void SyncDirectory(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

std::unique_ptr<DataDir> DataDir::Open(const std::string& path, std::string& error) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    fs::create_directories(path, ec);
    if (ec) {
      error = "cannot create data dir " + path + ": " + ec.message();
      return nullptr;
    }
  }
  if (!fs::is_directory(path, ec)) {
    error = "data dir " + path + " is not a directory";
    return nullptr;
  }
  const std::string marker = path + "/" + kMarker;
  const bool has_marker = fs::exists(marker, ec);
  if (has_marker) {
    std::ifstream in(marker);
    std::string name;
    int version = -1;
    in >> name >> version;
    if (name != "conveyor-data-format") {
      error = path +
              " has a CONVEYOR file that is not a Conveyor format marker; refusing to "
              "use it";
      return nullptr;
    }
    if (version != kDataFormatVersion) {
      error = path + " holds Conveyor data of format " + std::to_string(version) +
              ", and this conveyor reads format " + std::to_string(kDataFormatVersion) +
              "; nothing was changed";
      return nullptr;
    }
  } else if (!fs::is_empty(path, ec)) {
    error = path +
            " is not empty and is not a Conveyor data dir (no CONVEYOR marker file); "
            "refusing to touch it. Give an empty or new directory with --data-dir";
    return nullptr;
  }

  const std::string lock_path = path + "/" + kLock;
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    error = "cannot open " + lock_path + ": " + std::strerror(errno);
    return nullptr;
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char buf[32] = {};
    ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "unknown";
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    ::close(fd);
    error = "data dir " + path + " is in use by another conveyor (PID " + pid +
            "); two servers must not share one data dir";
    return nullptr;
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    // The PID is only for the message above; the lock itself is what counts.
  }
  if (!has_marker) {
    if (!WriteFileSynced(
            marker, "conveyor-data-format " + std::to_string(kDataFormatVersion) + "\n", error)) {
      ::close(fd);
      return nullptr;
    }
    SyncDirectory(path);
  }
  return std::unique_ptr<DataDir>(new DataDir(path, fd));
}

DataDir::~DataDir() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

}  // namespace conveyor
