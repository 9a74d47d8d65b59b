// The beanstalkd protocol's command line (beanstalkd 1.12, doc/protocol.txt): which
// command a line is and its arguments, parsed as beanstalkd's prot.c parses them, so that
// malformed lines get the same BAD_FORMAT or UNKNOWN_COMMAND. Commands are recognised by
// prefix in beanstalkd's order; numbers must start with a digit and fit their type; the
// last argument must end the line. Pure functions, used by the beanstalkd session on its
// I/O thread (and by the fuzz target).
#pragma once

#include <cstdint>
#include <string_view>

namespace conveyor::beanstalk {

enum class CommandKind {
  kPut,
  kPeek,
  kPeekReady,
  kPeekDelayed,
  kPeekBuried,
  kReserveWithTimeout,
  kReserveJob,
  kReserve,
  kDelete,
  kRelease,
  kBury,
  kKick,
  kKickJob,
  kTouch,
  kStatsJob,
  kStatsTube,
  kStats,
  kUse,
  kWatch,
  kIgnore,
  kListTubesWatched,
  kListTubeUsed,
  kListTubes,
  kQuit,
  kPauseTube,
  kUnknown,    // UNKNOWN_COMMAND
  kBadFormat,  // BAD_FORMAT
};

// The longest command line beanstalkd reads, its CRLF included.
inline constexpr size_t kMaxLineBytes = 224;
// The longest tube name.
inline constexpr size_t kMaxTubeBytes = 200;

struct Command {
  CommandKind kind = CommandKind::kUnknown;
  uint64_t id = 0;
  uint32_t pri = 0;
  uint32_t delay = 0;  // seconds (put, release; pause-tube's delay)
  uint32_t ttr = 0;    // seconds
  uint32_t bytes = 0;  // put's body size
  // put: bytes past <bytes> on the line. beanstalkd checks the size against the limit
  // first (JOB_TOO_BIG, the body read and dropped), and only then answers BAD_FORMAT.
  bool put_trailing = false;
  uint32_t bound = 0;   // kick
  int64_t timeout = 0;  // reserve-with-timeout, seconds; -1: no timeout (a negative value)
  std::string_view tube;
};

// The command's name as beanstalkd spells it ("put", "peek-ready", ...); "unknown" and
// "bad_format" for lines that are no command.
std::string_view CommandName(CommandKind kind);

// `line` is one command line without its CRLF.
Command ParseCommand(std::string_view line);

// A tube name beanstalkd accepts (1..200 of A-Za-z0-9-+/;.$_(), not starting with '-').
bool IsBeanstalkTubeName(std::string_view name);

}  // namespace conveyor::beanstalk
