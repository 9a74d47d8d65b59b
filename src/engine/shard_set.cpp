#include "engine/shard_set.h"

#include <malloc.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <chrono>
#include <cstdio>

#include "common/thread_name.h"

namespace conveyor {
namespace {
thread_local size_t current_io_thread = 0;

size_t ResidentBytes() {
  size_t bytes = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    unsigned long size = 0, resident = 0;
    if (std::fscanf(f, "%lu %lu", &size, &resident) == 2) {
      bytes = resident * static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    }
    std::fclose(f);
  }
  return bytes;
}

}  // namespace

size_t CurrentIoThread() { return current_io_thread; }

ShardSet::ShardSet(size_t threads, const Clock& clock, std::vector<Journal*> journals,
                   const Limits& limits)
    : shared_(limits) {
  for (size_t i = 0; i < threads; ++i) {
    ios_.push_back(std::make_unique<boost::asio::io_context>(1));
    shards_.push_back(std::make_unique<Shard>(i, *ios_[i], clock, *journals[i], shared_, limits));
  }
  max_memory_bytes_ = limits.max_memory_bytes;
  if (limits.max_memory_bytes != 0) {
    memory_timer_ = std::make_unique<boost::asio::steady_timer>(*ios_[0]);
    SampleMemory();
  }
}

// Resident set size from /proc/self/statm, every 100 ms, for --max-memory-bytes. Over the
// limit, memory that drained tasks freed is handed back to the kernel first (at most once
// a second): glibc keeps freed pages otherwise, and the server would refuse enqueues long
// after its workers caught up.
void ShardSet::SampleMemory() {
  size_t rss = ResidentBytes();
  const auto now = std::chrono::steady_clock::now();
  if (rss > max_memory_bytes_ && now - last_trim_ > std::chrono::seconds(1)) {
    last_trim_ = now;
    ::malloc_trim(0);
    rss = ResidentBytes();
  }
  shared_.rss_bytes.store(rss, std::memory_order_relaxed);
  memory_timer_->expires_after(std::chrono::milliseconds(100));
  memory_timer_->async_wait([this](boost::system::error_code ec) {
    if (!ec) SampleMemory();
  });
}

ShardSet::~ShardSet() {
  Stop();
  Destroy();
}

void ShardSet::Destroy() {
  memory_timer_.reset();
  shards_.clear();
  ios_.clear();
}

void ShardSet::Run() {
  std::vector<std::thread> threads;
  std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guards;
  for (auto& io : ios_) guards.push_back(boost::asio::make_work_guard(*io));
  for (size_t i = 1; i < ios_.size(); ++i) {
    threads.emplace_back([this, i] {
      current_io_thread = i;
      NameThisThread("io-" + std::to_string(i));
      ios_[i]->run();
    });
  }
  NameThisThread("io-0");
  ios_[0]->run();
  for (auto& t : threads) t.join();
}

void ShardSet::Stop() {
  for (auto& io : ios_) io->stop();
}

}  // namespace conveyor
