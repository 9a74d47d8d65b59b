#include "engine/shard.h"

#include <chrono>

namespace conveyor {

Shard::Shard(size_t index, boost::asio::io_context& io, const Clock& clock, Journal& journal,
             ServerWide& shared, const Limits& limits)
    : index_(index),
      io_(io),
      clock_(clock),
      journal_(journal),
      engine_(clock, journal, shared, limits,
              std::random_device{}() ^ (static_cast<uint64_t>(index) << 32)),
      timer_(io) {}

void Shard::AfterCommand() {
  engine_.AfterCommand();
  const int64_t next = engine_.NextWakeup();
  if (next == armed_for_) return;
  armed_for_ = next;
  if (next == kNever) {
    timer_.cancel();
    return;
  }
  const int64_t delay = std::max<int64_t>(0, next - clock_.MonoMs());
  timer_.expires_after(std::chrono::milliseconds(delay));
  timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) OnTimer();
  });
}

void Shard::OnTimer() {
  armed_for_ = kNever;
  engine_.Tick();
  AfterCommand();
}

}  // namespace conveyor
