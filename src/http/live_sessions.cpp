#include "http/live_sessions.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace conveyor {

namespace asio = boost::asio;

// The sessions of one I/O thread and whether its sweep runs.
struct ThreadSessions {
  LiveSession* head = nullptr;
  bool sweeping = false;
};
thread_local ThreadSessions thread_sessions;

class SessionSweep {
 public:
  // Runs on the thread's io_context while the thread has sessions. Its frame may also be
  // destroyed unrun at shutdown (with the io_context): the guard then clears the flag.
  static asio::awaitable<void> Run(std::chrono::milliseconds period) {
    struct Guard {
      ~Guard() { thread_sessions.sweeping = false; }
    } guard;
    asio::steady_timer timer(co_await asio::this_coro::executor);
    while (thread_sessions.head != nullptr) {
      timer.expires_after(period);
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      const LiveSession::Time now = std::chrono::steady_clock::now();
      for (LiveSession* s = thread_sessions.head; s != nullptr; s = s->next_) {
        if (s->deadline_ <= now) {
          s->deadline_ = LiveSession::Time::max();
          s->Close();
        }
      }
    }
  }
};

std::chrono::milliseconds SweepPeriod(const Limits& limits) {
  const int64_t shortest =
      std::min({limits.header_timeout_ms, limits.idle_timeout_ms, limits.write_timeout_ms});
  return std::chrono::milliseconds(std::clamp<int64_t>(shortest / 8, 10, 250));
}

LiveSession::LiveSession(asio::ip::tcp::socket& socket, const Limits& limits) : socket_(socket) {
  ThreadSessions& mine = thread_sessions;
  next_ = mine.head;
  if (next_ != nullptr) next_->prev_ = this;
  mine.head = this;
  if (!mine.sweeping) {
    mine.sweeping = true;
    asio::co_spawn(socket.get_executor(), SessionSweep::Run(SweepPeriod(limits)), asio::detached);
  }
}

LiveSession::~LiveSession() {
  if (prev_ != nullptr) {
    prev_->next_ = next_;
  } else {
    thread_sessions.head = next_;
  }
  if (next_ != nullptr) next_->prev_ = prev_;
}

void LiveSession::ExpiresAfter(int64_t ms) {
  deadline_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
}

void LiveSession::Close() {
  boost::system::error_code ignored;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.cancel(ignored);
}

void LiveSession::CloseAllOnThisThread(bool idle_only) {
  for (LiveSession* s = thread_sessions.head; s != nullptr; s = s->next_) {
    if (idle_only && !s->idle_) continue;
    s->Close();
  }
}

}  // namespace conveyor
