// Shard: one I/O thread's share of the engine — an Engine, the io_context it runs on, and
// the timer that fires the Engine's next due event. Every queue belongs to exactly one
// shard (by SlotOfQueue) and its tasks are touched only on that shard's thread; other
// threads reach it by posting work to io() (see CallShard in shard_set.h).
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>

#include "common/clock.h"
#include "common/limits.h"
#include "engine/engine.h"
#include "engine/journal.h"
#include "engine/server_wide.h"

namespace conveyor {

class Shard {
 public:
  Shard(size_t index, boost::asio::io_context& io, const Clock& clock, Journal& journal,
        ServerWide& shared, const Limits& limits);

  size_t index() const { return index_; }
  boost::asio::io_context& io() { return io_; }
  // REQUIRES: on this shard's thread (all of the below too).
  Engine& engine() { return engine_; }
  Journal& journal() { return journal_; }
  // Re-arms the timer for the Engine's next due event; called after every command.
  void AfterCommand();

 private:
  void OnTimer();

  size_t index_;
  boost::asio::io_context& io_;
  const Clock& clock_;
  Journal& journal_;
  Engine engine_;
  boost::asio::steady_timer timer_;
  int64_t armed_for_ = kNever;
};

}  // namespace conveyor
