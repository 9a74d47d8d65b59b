// LiveSession: one HTTP session as its I/O thread knows it, for shutdown and timeouts. A
// session registers itself for its lifetime; the sessions of a thread form an intrusive
// list (thread_local: each thread touches only its own). A read or write in progress has
// a deadline, and one sweep per thread (a timer every few tens of milliseconds, running
// only while the thread has sessions) shuts down the sessions whose deadline has passed.
// This replaces Beast's tcp_stream, which armed and cancelled a timer around every read
// and write: two timerfd_settime calls and two handler runs a request. Used by RunSession
// and HttpServer's drain; owned by the I/O thread of the session.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>

#include "common/limits.h"

namespace conveyor {

class LiveSession {
 public:
  using Time = std::chrono::steady_clock::time_point;

  // Registers the session on the calling I/O thread (and starts the thread's sweep if it
  // is not running). The socket must outlive the LiveSession.
  LiveSession(boost::asio::ip::tcp::socket& socket, const Limits& limits);
  ~LiveSession();
  LiveSession(const LiveSession&) = delete;
  LiveSession& operator=(const LiveSession&) = delete;

  // The operation started next must end within ms, else the session is shut down (its
  // pending operations fail, and so does every later one).
  void ExpiresAfter(int64_t ms);
  void ExpiresNever() { deadline_ = Time::max(); }
  void set_idle(bool idle) { idle_ = idle; }

  // Shuts the session's socket down in both directions and cancels what is pending.
  void Close();

  // Closes the sessions of the calling I/O thread: only those waiting idle for a next
  // request, or all of them.
  static void CloseAllOnThisThread(bool idle_only);

 private:
  friend class SessionSweep;

  boost::asio::ip::tcp::socket& socket_;
  Time deadline_ = Time::max();
  bool idle_ = false;
  LiveSession* prev_ = nullptr;
  LiveSession* next_ = nullptr;
};

// How often a thread's sweep looks at deadlines: an eighth of the shortest timeout, at
// least 10 ms and at most 250 ms (a timeout fires that much late at most).
std::chrono::milliseconds SweepPeriod(const Limits& limits);

}  // namespace conveyor
