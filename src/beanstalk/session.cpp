#include "beanstalk/session.h"

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <optional>

#include "beanstalk/command.h"
#include "common/clock.h"

namespace conveyor::beanstalk {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// Replies are flushed once this much is waiting (and before every wait).
constexpr size_t kFlushBytes = 64 * 1024;
// Pipelined bytes read ahead while a reserve waits; past it the socket is not read.
constexpr size_t kReadAheadBytes = 64 * 1024;
// beanstalkd's DEADLINE_SOON margin.
constexpr int64_t kSafetyMarginMs = 1000;
constexpr std::string_view kDefaultTube = "default";
// A connection watches at most this many tubes (beanstalkd has no bound); one more watch is
// answered OUT_OF_MEMORY, so thousands of connections cannot fill memory with tube names.
constexpr size_t kMaxWatchedTubes = 256;

int64_t NowMs() { return SystemClock::Instance().NowMs(); }

struct Held {
  std::string token;
  int32_t priority = 0;
  int64_t expires_at = 0;  // epoch ms
};

class Session;
// The beanstalkd sessions of this I/O thread, for the counts of stats-tube and the tubes
// of list-tubes; each thread reads only its own.
thread_local std::vector<const Session*> thread_sessions;

// How a tube is used by the sessions of one thread, or of all.
struct TubeUse {
  uint64_t using_it = 0;
  uint64_t watching = 0;
  uint64_t waiting = 0;
};

class Session {
 public:
  Session(tcp::socket socket, SessionContext context)
      : socket_(std::move(socket)), ctx_(context), service_(context.service) {
    watched_.emplace_back(kDefaultTube);
    thread_sessions.push_back(this);
  }
  ~Session() { std::erase(thread_sessions, this); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Shuts down the connections of this thread's sessions (shutdown): each ends after the
  // command it is on, and gives back the jobs it holds.
  static void CloseAllOnThisThread() {
    for (const Session* s : thread_sessions) {
      boost::system::error_code ignored;
      auto& socket = const_cast<tcp::socket&>(s->socket_);
      socket.shutdown(tcp::socket::shutdown_both, ignored);
      socket.cancel(ignored);
    }
  }

  // This thread's use of `tube`, and the tubes this thread's sessions use or watch.
  static TubeUse UseOnThisThread(const std::string& tube);
  static std::vector<std::string> TubesOnThisThread();

  asio::awaitable<void> Run();

 private:
  enum class Read { kLine, kTooLong, kClosed };

  asio::awaitable<Read> ReadLine(std::string& line);
  asio::awaitable<bool> Fill();
  asio::awaitable<bool> ReadExactly(size_t n, std::string* into);
  asio::awaitable<bool> Flush();
  asio::awaitable<bool> Dispatch(const Command& c);  // false: close the connection
  asio::awaitable<bool> Put(const Command& c);
  asio::awaitable<bool> Reserve(int64_t timeout_s);
  asio::awaitable<void> ReserveJob(uint64_t id);
  asio::awaitable<void> PauseTube(const Command& c);
  void MarkWorker() {
    if (worker_) return;
    worker_ = true;
    ctx_.counters.workers.fetch_add(1, std::memory_order_relaxed);
  }
  asio::awaitable<void> Delete(uint64_t id);
  asio::awaitable<void> Release(const Command& c);
  asio::awaitable<void> Bury(const Command& c);
  asio::awaitable<void> Touch(uint64_t id);
  asio::awaitable<void> PeekId(uint64_t id);
  asio::awaitable<void> PeekState(TaskState state);
  asio::awaitable<void> StatsJob(uint64_t id);
  asio::awaitable<void> StatsTube(std::string_view tube);
  asio::awaitable<void> Stats();
  asio::awaitable<void> ListTubes();
  asio::awaitable<void> ReleaseAll();

  void Reply(std::string_view text) {
    out_ += text;
    out_ += "\r\n";
  }
  void ReplyData(std::string_view head, const std::string& data) {
    out_ += head;
    out_ += "\r\n";
    out_ += data;
    out_ += "\r\n";
  }
  void ReplyJob(std::string_view word, const TaskView& task) {
    const std::string body = JobBody(task);
    ReplyData(fmt::format("{} {} {}", word, task.id, body.size()), body);
  }
  void ReplyYaml(const std::string& yaml) { ReplyData(fmt::format("OK {}", yaml.size()), yaml); }
  void Remember(const TaskView& task) {
    held_[task.id] = Held{task.lease_token, task.priority, task.lease_expires_at};
  }
  bool DeadlineSoon() const;
  void ForgetExpired();
  int64_t WaitFor(int64_t until) const;
  struct LeaseTry {
    LeaseResult result;
    bool closed = false;     // the peer went away meanwhile
    bool cut_short = false;  // the wait ended empty long before its time
  };
  // One lease over the watched tubes: at once (wait 0), or parked up to wait_ms while the
  // socket is watched for a close.
  asio::awaitable<LeaseTry> LeaseWatched(int64_t wait_ms);
  // The lease token of a job this connection holds; none if it holds none.
  std::optional<std::string> HeldToken(uint64_t id) const;
  void Settle(uint64_t id, const Error& error, std::string_view ok_reply);
  int64_t SoonestExpiry() const;

  tcp::socket socket_;
  SessionContext ctx_;
  TaskService& service_;
  std::string in_;   // bytes read and not yet parsed
  std::string out_;  // replies not yet written
  std::string used_{kDefaultTube};
  std::vector<std::string> watched_;
  absl::flat_hash_map<uint64_t, Held> held_;  // reserved by this connection
  bool producer_ = false;
  bool worker_ = false;
  bool waiting_ = false;  // parked in a reserve
};

TubeUse Session::UseOnThisThread(const std::string& tube) {
  TubeUse use;
  for (const Session* s : thread_sessions) {
    const bool watches =
        std::find(s->watched_.begin(), s->watched_.end(), tube) != s->watched_.end();
    use.using_it += s->used_ == tube;
    use.watching += watches;
    use.waiting += watches && s->waiting_;
  }
  return use;
}

std::vector<std::string> Session::TubesOnThisThread() {
  std::vector<std::string> tubes;
  for (const Session* s : thread_sessions) {
    tubes.push_back(s->used_);
    tubes.insert(tubes.end(), s->watched_.begin(), s->watched_.end());
  }
  std::sort(tubes.begin(), tubes.end());
  tubes.erase(std::unique(tubes.begin(), tubes.end()), tubes.end());
  return tubes;
}

// Runs fn on every I/O thread (where its sessions live) and gathers the answers. Not a
// coroutine itself; callers pass a named lambda (GCC 12 frees a lambda temporary written
// inside a co_await expression twice).
template <typename Result, typename Fn>
asio::awaitable<std::vector<Result>> OnEveryThread(ShardSet& shards, const Fn& fn) {
  using Call = std::function<void(Shard&, Completion<Result>)>;
  std::vector<std::pair<Shard*, Call>> calls;
  for (size_t i = 0; i < shards.size(); ++i) {
    calls.emplace_back(&shards.at(i), [fn](Shard&, Completion<Result> done) { done(fn()); });
  }
  return CallShards<Result>(std::move(calls));
}

// ---- reading ---------------------------------------------------------------------------

asio::awaitable<bool> Session::Fill() {
  if (!(co_await Flush())) co_return false;
  std::array<char, 4096> chunk;
  auto [ec, n] = co_await socket_.async_read_some(asio::buffer(chunk), kTuple);
  if (ec) co_return false;
  in_.append(chunk.data(), n);
  co_return true;
}

// A line is at most kMaxLineBytes with its CRLF. A longer one is skipped up to its CRLF
// and answered BAD_FORMAT, as beanstalkd does.
asio::awaitable<Session::Read> Session::ReadLine(std::string& line) {
  bool too_long = false;
  for (;;) {
    const size_t end = in_.find("\r\n");
    if (end != std::string::npos) {
      if (too_long || end + 2 > kMaxLineBytes) {
        in_.erase(0, end + 2);
        co_return Read::kTooLong;
      }
      line.assign(in_, 0, end);
      in_.erase(0, end + 2);
      co_return Read::kLine;
    }
    if (in_.size() >= kMaxLineBytes) {
      too_long = true;
      const bool keep_cr = in_.back() == '\r';
      in_.assign(keep_cr ? "\r" : "");
    }
    if (!(co_await Fill())) co_return Read::kClosed;
  }
}

// Takes the next n bytes (from what is buffered, then the socket) into `into`, or drops
// them when it is null (a body too big to keep).
asio::awaitable<bool> Session::ReadExactly(size_t n, std::string* into) {
  const size_t buffered = std::min(n, in_.size());
  if (into != nullptr) into->assign(in_, 0, buffered);
  in_.erase(0, buffered);
  n -= buffered;
  std::array<char, 16384> sink;
  while (n > 0) {
    const size_t want = std::min(n, sink.size());
    auto [ec, got] = co_await asio::async_read(socket_, asio::buffer(sink.data(), want), kTuple);
    if (ec) co_return false;
    if (into != nullptr) into->append(sink.data(), got);
    n -= got;
  }
  co_return true;
}

asio::awaitable<bool> Session::Flush() {
  if (out_.empty()) co_return true;
  auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(out_), kTuple);
  out_.clear();
  co_return !ec;
}

// ---- the loop --------------------------------------------------------------------------

asio::awaitable<void> Session::Run() {
  ctx_.counters.total_connections.fetch_add(1, std::memory_order_relaxed);
  std::string line;
  for (;;) {
    const Read read = co_await ReadLine(line);
    if (read == Read::kClosed) break;
    if (read == Read::kTooLong) {
      Reply("BAD_FORMAT");
      continue;
    }
    const Command command = ParseCommand(line);
    ctx_.counters.commands[static_cast<size_t>(command.kind)].fetch_add(1,
                                                                        std::memory_order_relaxed);
    if (!(co_await Dispatch(command))) break;
    if (out_.size() >= kFlushBytes && !(co_await Flush())) break;
  }
  co_await Flush();
  co_await ReleaseAll();
  if (producer_) ctx_.counters.producers.fetch_sub(1, std::memory_order_relaxed);
  if (worker_) ctx_.counters.workers.fetch_sub(1, std::memory_order_relaxed);
}

asio::awaitable<bool> Session::Dispatch(const Command& c) {
  switch (c.kind) {
    case CommandKind::kUnknown:
      Reply("UNKNOWN_COMMAND");
      break;
    case CommandKind::kBadFormat:
      Reply("BAD_FORMAT");
      break;
    case CommandKind::kQuit:
      co_return false;
    case CommandKind::kPut:
      co_return co_await Put(c);
    case CommandKind::kUse:
      used_ = std::string(c.tube);
      Reply("USING " + used_);
      break;
    case CommandKind::kWatch:
      if (std::find(watched_.begin(), watched_.end(), c.tube) == watched_.end()) {
        if (watched_.size() >= kMaxWatchedTubes) {
          Reply("OUT_OF_MEMORY");
          break;
        }
        watched_.emplace_back(c.tube);
      }
      Reply(fmt::format("WATCHING {}", watched_.size()));
      break;
    case CommandKind::kIgnore: {
      auto it = std::find(watched_.begin(), watched_.end(), c.tube);
      if (it != watched_.end() && watched_.size() == 1) {
        Reply("NOT_IGNORED");
        break;
      }
      if (it != watched_.end()) {
        *it = std::move(watched_.back());  // beanstalkd removes by swapping with the last
        watched_.pop_back();
      }
      Reply(fmt::format("WATCHING {}", watched_.size()));
      break;
    }
    case CommandKind::kListTubeUsed:
      Reply("USING " + used_);
      break;
    case CommandKind::kListTubesWatched:
      ReplyYaml(ListYaml(watched_));
      break;
    case CommandKind::kListTubes:
      co_await ListTubes();
      break;
    case CommandKind::kReserve:
      co_return co_await Reserve(-1);
    case CommandKind::kReserveWithTimeout:
      co_return co_await Reserve(c.timeout);
    case CommandKind::kReserveJob:
      co_await ReserveJob(c.id);
      break;
    case CommandKind::kDelete:
      co_await Delete(c.id);
      break;
    case CommandKind::kRelease:
      co_await Release(c);
      break;
    case CommandKind::kBury:
      co_await Bury(c);
      break;
    case CommandKind::kTouch:
      co_await Touch(c.id);
      break;
    case CommandKind::kPeek:
      co_await PeekId(c.id);
      break;
    case CommandKind::kPeekReady:
      co_await PeekState(TaskState::kReady);
      break;
    case CommandKind::kPeekDelayed:
      co_await PeekState(TaskState::kScheduled);
      break;
    case CommandKind::kPeekBuried:
      co_await PeekState(TaskState::kDead);
      break;
    case CommandKind::kKick: {
      Outcome<uint32_t> kicked = co_await service_.Kick(used_, c.bound);
      if (kicked.error.ok()) {
        Reply(fmt::format("KICKED {}", kicked.value));
      } else {
        Reply("INTERNAL_ERROR");
      }
      break;
    }
    case CommandKind::kKickJob: {
      Outcome<IdState> kicked = co_await service_.KickTask(c.id);
      Reply(kicked.error.ok() ? "KICKED" : "NOT_FOUND");
      break;
    }
    case CommandKind::kStatsJob:
      co_await StatsJob(c.id);
      break;
    case CommandKind::kStatsTube:
      co_await StatsTube(c.tube);
      break;
    case CommandKind::kStats:
      co_await Stats();
      break;
    case CommandKind::kPauseTube:
      co_await PauseTube(c);
      break;
  }
  co_return true;
}

// ---- commands --------------------------------------------------------------------------

bool IsStorageError(const Error& e) {
  return e.code == ErrorCode::kStorageUnavailable || e.code == ErrorCode::kStorageTimeout;
}

const char* ReplyForError(const Error& error) {
  switch (error.code) {
    case ErrorCode::kTooManyRequests:
    case ErrorCode::kOverloaded:
      return "OUT_OF_MEMORY";
    default:
      return "INTERNAL_ERROR";
  }
}

asio::awaitable<bool> Session::Put(const Command& c) {
  if (c.bytes > MaxJobBytes(ctx_.limits)) {
    // beanstalkd reads the body (and its CRLF) before it answers, so the stream stays in
    // step; a huge announced size is streamed through a small buffer.
    if (!(co_await ReadExactly(size_t{c.bytes} + 2, nullptr))) co_return false;
    Reply("JOB_TOO_BIG");
    co_return true;
  }
  if (c.put_trailing) {
    Reply("BAD_FORMAT");  // the body is not read: it is parsed as commands, as in beanstalkd
    co_return true;
  }
  if (!producer_) {
    producer_ = true;
    ctx_.counters.producers.fetch_add(1, std::memory_order_relaxed);
  }
  TaskSpec spec;
  if (!(co_await ReadExactly(size_t{c.bytes} + 2, &spec.payload))) co_return false;
  if (spec.payload.compare(c.bytes, 2, "\r\n") != 0) {
    Reply("EXPECTED_CRLF");
    co_return true;
  }
  spec.payload.resize(c.bytes);
  spec.payload_kind = PayloadKind::kBytes;
  spec.priority = PriorityOf(c.pri);
  if (c.delay > 0) spec.delay_ms = int64_t{c.delay} * 1000;
  // A ttr below 1 s is 1 s (beanstalkd); above the longest lease, the longest lease.
  spec.lease_ms = std::clamp<int64_t>(int64_t{c.ttr} * 1000, 1000, ctx_.limits.max_lease_ms);
  spec.max_attempts = UINT32_MAX;  // a job is never given up on, as in beanstalkd
  std::vector<TaskSpec> specs;
  specs.push_back(std::move(spec));
  EnqueueResult result = co_await service_.Enqueue(used_, std::move(specs));
  if (!result.error.ok()) {
    Reply(ReplyForError(result.error));
    co_return true;
  }
  ctx_.counters.total_jobs.fetch_add(1, std::memory_order_relaxed);
  Reply(fmt::format("INSERTED {}", result.tasks.at(0).id));
  co_return true;
}

void Session::ForgetExpired() {
  const int64_t now = NowMs();
  absl::erase_if(held_, [now, this](const auto& entry) {
    if (entry.second.expires_at > now) return false;
    // Its ttr ran out: the job is no longer this connection's (the engine made it ready).
    ctx_.counters.job_timeouts.fetch_add(1, std::memory_order_relaxed);
    return true;
  });
}

int64_t Session::SoonestExpiry() const {
  int64_t soonest = kNever;
  for (const auto& [id, held] : held_) soonest = std::min(soonest, held.expires_at);
  return soonest;
}

// The last second of the soonest held job's ttr (ForgetExpired has dropped the past ones).
bool Session::DeadlineSoon() const {
  const int64_t soonest = SoonestExpiry();
  const int64_t now = NowMs();
  return soonest != kNever && now >= soonest - kSafetyMarginMs && now < soonest;
}

// Watches the socket for the peer closing while a reserve waits: bytes the client
// pipelines meanwhile are kept in `in` (up to a bound), and a close cancels the wait.
class CloseWatch {
 public:
  CloseWatch(tcp::socket& socket, std::string& in) : socket_(socket), in_(in) {}

  void Start(std::shared_ptr<std::shared_ptr<WaitHandle>> wait) {
    wait_ = std::move(wait);
    Arm();
  }
  bool closed() const { return closed_; }

  asio::awaitable<void> Stop() {
    stopping_ = true;
    if (!reading_) co_return;
    error_code ignored;
    socket_.cancel(ignored);
    asio::steady_timer done(socket_.get_executor(), asio::steady_timer::time_point::max());
    done_ = &done;
    co_await done.async_wait(kTuple);
    done_ = nullptr;
  }

 private:
  void Arm() {
    if (in_.size() >= kReadAheadBytes) return;  // backpressure: the client waits on us
    reading_ = true;
    socket_.async_read_some(asio::buffer(chunk_), [this](error_code ec, size_t n) {
      reading_ = false;
      in_.append(chunk_.data(), n);
      if (ec && ec != asio::error::operation_aborted) {
        closed_ = true;
        if (wait_ && *wait_) (*wait_)->Cancel();
      } else if (!ec && !stopping_) {
        Arm();
        return;
      }
      if (done_ != nullptr) done_->cancel();
    });
  }

  tcp::socket& socket_;
  std::string& in_;
  std::array<char, 4096> chunk_;
  std::shared_ptr<std::shared_ptr<WaitHandle>> wait_;
  bool reading_ = false;
  bool stopping_ = false;
  bool closed_ = false;
  asio::steady_timer* done_ = nullptr;
};

// How long the next parked reserve may wait: to the reserve's own end, at most the
// longest long-poll, and no later than the DEADLINE_SOON margin of a held job.
int64_t Session::WaitFor(int64_t until) const {
  const int64_t now = NowMs();
  int64_t wait_ms =
      std::min<int64_t>(until == kNever ? kNever : until - now, ctx_.limits.max_wait_ms);
  const int64_t soonest = SoonestExpiry();
  if (soonest != kNever) wait_ms = std::min(wait_ms, soonest - kSafetyMarginMs - now);
  return wait_ms;
}

asio::awaitable<Session::LeaseTry> Session::LeaseWatched(int64_t wait_ms) {
  LeaseCommand command;
  command.queues = watched_;
  command.request.max = 1;
  command.request.wait_ms = wait_ms;
  command.request.worker = "beanstalk";
  LeaseTry out;
  if (wait_ms == 0) {
    out.result = co_await service_.Lease(std::move(command), nullptr);
    co_return out;
  }
  if (!(co_await Flush())) {
    out.closed = true;
    co_return out;
  }
  auto slot = std::make_shared<std::shared_ptr<WaitHandle>>();
  CloseWatch watch(socket_, in_);
  watch.Start(slot);
  ctx_.counters.waiting.fetch_add(1, std::memory_order_relaxed);
  waiting_ = true;
  const int64_t asked_at = NowMs();
  out.result = co_await service_.Lease(std::move(command), slot);
  waiting_ = false;
  ctx_.counters.waiting.fetch_sub(1, std::memory_order_relaxed);
  // A wait that ends empty long before its time was cut short (the server drains).
  out.cut_short =
      out.result.tasks.empty() && out.result.error.ok() && NowMs() - asked_at < wait_ms / 2;
  co_await watch.Stop();
  out.closed = watch.closed();
  co_return out;
}

asio::awaitable<bool> Session::Reserve(int64_t timeout_s) {
  MarkWorker();
  ForgetExpired();
  const int64_t until = timeout_s < 0 ? kNever : NowMs() + timeout_s * 1000;
  // A timeout of 0, or a held job about to expire (DEADLINE_SOON unless a job is ready),
  // needs a look without waiting first; otherwise the first lease already waits.
  bool look_first = timeout_s == 0 || DeadlineSoon();
  for (;;) {
    ForgetExpired();
    const int64_t wait_ms = look_first ? 0 : WaitFor(until);
    if (wait_ms < 0 || (!look_first && wait_ms == 0)) {
      Reply(DeadlineSoon() ? "DEADLINE_SOON" : "TIMED_OUT");
      co_return true;
    }
    LeaseTry attempt = co_await LeaseWatched(wait_ms);
    if (attempt.closed) {
      if (!attempt.result.granted.empty()) {
        service_.ReleaseUndelivered(std::move(attempt.result.granted));
      }
      co_return false;
    }
    if (!attempt.result.error.ok()) {
      Reply(ReplyForError(attempt.result.error));
      co_return true;
    }
    if (!attempt.result.tasks.empty()) {
      Remember(attempt.result.tasks[0]);
      ReplyJob("RESERVED", attempt.result.tasks[0]);
      co_return true;
    }
    // A plain reserve never times out (beanstalkd); one with a timeout answers a cut-short
    // wait rather than asking again at once.
    if ((attempt.cut_short && timeout_s >= 0) ||
        (look_first && timeout_s == 0 && !DeadlineSoon())) {
      Reply("TIMED_OUT");
      co_return true;
    }
    if (look_first && DeadlineSoon()) {
      Reply("DEADLINE_SOON");
      co_return true;
    }
    look_first = false;
  }
}

asio::awaitable<void> Session::ReserveJob(uint64_t id) {
  LeaseRequest request;
  request.worker = "beanstalk";
  LeaseResult result = co_await service_.LeaseTask(id, std::move(request));
  if (result.tasks.empty()) {
    Reply(IsStorageError(result.error) ? "INTERNAL_ERROR" : "NOT_FOUND");
    co_return;
  }
  MarkWorker();
  Remember(result.tasks[0]);
  ReplyJob("RESERVED", result.tasks[0]);
}

asio::awaitable<void> Session::PauseTube(const Command& c) {
  // beanstalkd knows the tubes that are used or watched too; so does this connection.
  const bool known = c.tube == kDefaultTube || c.tube == used_ ||
                     std::find(watched_.begin(), watched_.end(), c.tube) != watched_.end();
  Error e = co_await service_.PauseQueue(std::string(c.tube), int64_t{c.delay} * 1000, known);
  if (e.ok()) {
    Reply("PAUSED");
  } else {
    Reply(e.code == ErrorCode::kNotFound ? "NOT_FOUND" : ReplyForError(e));
  }
}

// After a command on a job this connection may hold: done (or refused: the job is not
// this connection's any more) drops it from held_; a storage error keeps it, since the
// engine still has it leased, and answers INTERNAL_ERROR.
void Session::Settle(uint64_t id, const Error& error, std::string_view ok_reply) {
  if (IsStorageError(error)) {
    Reply("INTERNAL_ERROR");
    return;
  }
  held_.erase(id);
  Reply(error.ok() ? ok_reply : "NOT_FOUND");
}

std::optional<std::string> Session::HeldToken(uint64_t id) const {
  auto it = held_.find(id);
  if (it == held_.end()) return std::nullopt;
  return it->second.token;
}

asio::awaitable<void> Session::Delete(uint64_t id) {
  Outcome<IdState> out = co_await service_.Delete(id, HeldToken(id).value_or(""));
  Settle(id, out.error, "DELETED");
}

asio::awaitable<void> Session::Release(const Command& c) {
  std::optional<std::string> token = HeldToken(c.id);
  if (!token) {
    Reply("NOT_FOUND");
    co_return;
  }
  Outcome<IdState> out = co_await service_.Release(c.id, std::move(*token), PriorityOf(c.pri),
                                                   int64_t{c.delay} * 1000);
  Settle(c.id, out.error, "RELEASED");
}

asio::awaitable<void> Session::Bury(const Command& c) {
  std::optional<std::string> token = HeldToken(c.id);
  if (!token) {
    Reply("NOT_FOUND");
    co_return;
  }
  Outcome<IdState> out = co_await service_.Bury(c.id, std::move(*token), PriorityOf(c.pri));
  Settle(c.id, out.error, "BURIED");
}

asio::awaitable<void> Session::Touch(uint64_t id) {
  std::optional<std::string> token = HeldToken(id);
  if (!token) {
    Reply("NOT_FOUND");
    co_return;
  }
  ExtendCall call;
  call.token = std::move(*token);
  Outcome<int64_t> out = co_await service_.Extend(id, std::move(call));
  if (!out.error.ok()) {
    Settle(id, out.error, "");
    co_return;
  }
  if (auto again = held_.find(id); again != held_.end()) again->second.expires_at = out.value;
  Reply("TOUCHED");
}

asio::awaitable<void> Session::PeekId(uint64_t id) {
  Outcome<TaskView> task = co_await service_.Get(id, 0, nullptr);
  if (!task.error.ok() || !IsJob(task.value.state)) {
    Reply("NOT_FOUND");
    co_return;
  }
  ReplyJob("FOUND", task.value);
}

asio::awaitable<void> Session::PeekState(TaskState state) {
  Outcome<TaskView> task = co_await service_.Peek(used_, state);
  if (!task.error.ok()) {
    Reply("NOT_FOUND");
    co_return;
  }
  ReplyJob("FOUND", task.value);
}

asio::awaitable<void> Session::StatsJob(uint64_t id) {
  Outcome<TaskView> task = co_await service_.Get(id, 0, nullptr);
  if (!task.error.ok() || !IsJob(task.value.state)) {
    Reply("NOT_FOUND");
    co_return;
  }
  ReplyYaml(StatsJobYaml(task.value, NowMs()));
}

asio::awaitable<void> Session::StatsTube(std::string_view name) {
  const std::string tube(name);
  auto count = [tube] { return UseOnThisThread(tube); };
  std::vector<TubeUse> parts = co_await OnEveryThread<TubeUse>(ctx_.shards, count);
  TubeUse use;
  for (const TubeUse& p : parts) {
    use.using_it += p.using_it;
    use.watching += p.watching;
    use.waiting += p.waiting;
  }
  QueueSnapshot queue = co_await service_.QueueStats(tube);
  // A tube exists while it has jobs (a queue) or a connection uses or watches it.
  if (!queue.exists && tube != kDefaultTube && use.using_it == 0 && use.watching == 0) {
    Reply("NOT_FOUND");
    co_return;
  }
  ReplyYaml(StatsTubeYaml(queue, use.using_it, use.watching, use.waiting,
                          SystemClock::Instance().MonoMs()));
}

asio::awaitable<void> Session::Stats() {
  std::vector<QueueSnapshot> all = co_await service_.AllQueueStats();
  ReplyYaml(StatsYaml(all, ctx_.counters, ctx_.open_connections.load(std::memory_order_relaxed),
                      MaxJobBytes(ctx_.limits), SystemClock::Instance().MonoMs()));
}

asio::awaitable<void> Session::ListTubes() {
  std::vector<QueueSnapshot> all = co_await service_.AllQueueStats();
  auto collect = [] { return TubesOnThisThread(); };
  std::vector<std::vector<std::string>> used =
      co_await OnEveryThread<std::vector<std::string>>(ctx_.shards, collect);
  // default first, then the queues in their order, then tubes only used or watched.
  std::vector<std::string> names{std::string(kDefaultTube)};
  absl::flat_hash_set<std::string_view> seen{kDefaultTube};
  for (const QueueSnapshot& q : all) {
    if (seen.insert(q.name).second) names.push_back(q.name);
  }
  for (const auto& part : used) {
    for (const std::string& name : part) {
      if (seen.insert(name).second) names.push_back(name);
    }
  }
  ReplyYaml(ListYaml(names));
}

// beanstalkd puts the jobs a connection holds back to ready the moment it closes.
asio::awaitable<void> Session::ReleaseAll() {
  auto held = std::move(held_);
  for (auto& [id, h] : held) co_await service_.Release(id, std::move(h.token), h.priority, 0);
}

}  // namespace

size_t MaxJobBytes(const Limits& limits) { return limits.max_body_bytes; }

void CloseSessionsOnThisThread() { Session::CloseAllOnThisThread(); }

asio::awaitable<void> RunSession(tcp::socket socket, SessionContext context) {
  struct Release {
    std::atomic<size_t>& count;
    ~Release() { count.fetch_sub(1, std::memory_order_relaxed); }
  } release{context.open_connections};
  Session session(std::move(socket), context);
  co_await session.Run();
}

}  // namespace conveyor::beanstalk
