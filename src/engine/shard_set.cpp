#include "engine/shard_set.h"

#include <boost/asio/executor_work_guard.hpp>

namespace conveyor {
namespace {
thread_local size_t current_io_thread = 0;
}  // namespace

size_t CurrentIoThread() { return current_io_thread; }

ShardSet::ShardSet(size_t threads, const Clock& clock, std::vector<Journal*> journals,
                   const Limits& limits) {
  const size_t max_waiters_per_shard = std::max<size_t>(1, limits.max_waiters / threads);
  for (size_t i = 0; i < threads; ++i) {
    ios_.push_back(std::make_unique<boost::asio::io_context>(1));
    shards_.push_back(std::make_unique<Shard>(i, *ios_[i], clock, *journals[i], next_sequence_,
                                              limits, max_waiters_per_shard));
  }
}

ShardSet::~ShardSet() { Stop(); }

void ShardSet::Run() {
  std::vector<std::thread> threads;
  std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guards;
  for (auto& io : ios_) guards.push_back(boost::asio::make_work_guard(*io));
  for (size_t i = 1; i < ios_.size(); ++i) {
    threads.emplace_back([this, i] {
      current_io_thread = i;
      ios_[i]->run();
    });
  }
  ios_[0]->run();
  for (auto& t : threads) t.join();
}

void ShardSet::Stop() {
  for (auto& io : ios_) io->stop();
}

}  // namespace conveyor
