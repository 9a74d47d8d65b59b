#include "beanstalk/command.h"

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <string>

#include "engine/queue_name.h"

namespace conveyor::beanstalk {
namespace {

Command Of(CommandKind kind) {
  Command c;
  c.kind = kind;
  return c;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool IsNameChar(char c) {
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || IsDigit(c)) return true;
  switch (c) {
    case '-':
    case '+':
    case '/':
    case ';':
    case '.':
    case '$':
    case '_':
    case '(':
    case ')':
      return true;
    default:
      return false;
  }
}

// beanstalkd's read_u64/read_u32: spaces, then a digit, then strtoumax; with `last` the
// number must end the line. On success `s` is left after the digits.
bool ReadNumber(std::string_view& s, uint64_t max, bool last, uint64_t& out) {
  size_t i = 0;
  while (i < s.size() && s[i] == ' ') ++i;
  if (i == s.size() || !IsDigit(s[i])) return false;
  uint64_t value = 0;
  for (; i < s.size() && IsDigit(s[i]); ++i) {
    const uint64_t digit = static_cast<uint64_t>(s[i] - '0');
    if (value > (UINT64_MAX - digit) / 10) return false;  // strtoumax: ERANGE
    value = value * 10 + digit;
  }
  if (value > max) return false;
  s.remove_prefix(i);
  if (last && !s.empty()) return false;
  out = value;
  return true;
}

bool ReadU32(std::string_view& s, bool last, uint32_t& out) {
  uint64_t v = 0;
  if (!ReadNumber(s, UINT32_MAX, last, v)) return false;
  out = static_cast<uint32_t>(v);
  return true;
}

Command Bad() { return Of(CommandKind::kBadFormat); }

Command WithId(CommandKind kind, std::string_view args) {
  Command c = Of(kind);
  if (!ReadNumber(args, UINT64_MAX, /*last=*/true, c.id)) return Bad();
  return c;
}

// A tube is a queue: its name must also be a queue name (no + / ; $ ( ), at most 128).
Command WithTube(CommandKind kind, std::string_view name) {
  if (!IsBeanstalkTubeName(name) || !IsValidQueueName(name)) return Bad();
  Command c = Of(kind);
  c.tube = name;
  return c;
}

Command Exact(CommandKind kind, std::string_view line, std::string_view name) {
  return line.size() == name.size() ? Of(kind) : Bad();
}

Command Put(std::string_view args) {
  Command c = Of(CommandKind::kPut);
  if (!ReadU32(args, false, c.pri) || !ReadU32(args, false, c.delay) ||
      !ReadU32(args, false, c.ttr) || !ReadU32(args, false, c.bytes)) {
    return Bad();
  }
  c.put_trailing = !args.empty();
  return c;
}

// 1.12 reads the timeout with strtol and checks only errno: no digits is 0, what follows
// the digits is ignored, and a negative value (after truncation to int) waits forever.
Command ReserveWithTimeout(std::string_view args) {
  const std::string text(args);
  errno = 0;
  const long value = std::strtol(text.c_str(), nullptr, 10);
  if (errno == ERANGE) return Bad();
  Command c = Of(CommandKind::kReserveWithTimeout);
  const int truncated = static_cast<int>(static_cast<unsigned long>(value) & 0xffffffffUL);
  c.timeout = truncated < 0 ? -1 : truncated;
  return c;
}

// kick reads its bound with strtoul: leading white space and a sign are accepted (so -1
// is "all"), at least one digit is needed, and what follows is ignored.
Command Kick(std::string_view args) {
  const std::string text(args);
  const char* start = text.c_str();
  char* end = nullptr;
  errno = 0;
  const unsigned long value = std::strtoul(start, &end, 10);
  if (end == start || errno == ERANGE) return Bad();
  Command c = Of(CommandKind::kKick);
  c.bound = static_cast<uint32_t>(value);
  return c;
}

Command Release(std::string_view args) {
  Command c = Of(CommandKind::kRelease);
  if (!ReadNumber(args, UINT64_MAX, false, c.id) || !ReadU32(args, false, c.pri) ||
      !ReadU32(args, true, c.delay)) {
    return Bad();
  }
  return c;
}

Command Bury(std::string_view args) {
  Command c = Of(CommandKind::kBury);
  if (!ReadNumber(args, UINT64_MAX, false, c.id) || !ReadU32(args, true, c.pri)) return Bad();
  return c;
}

// pause-tube skips spaces, takes the longest run of name characters, then a delay that
// ends the line; the name must then be a valid tube name.
Command PauseTube(std::string_view args) {
  size_t i = 0;
  while (i < args.size() && args[i] == ' ') ++i;
  size_t end = i;
  while (end < args.size() && IsNameChar(args[end])) ++end;
  Command c = Of(CommandKind::kPauseTube);
  c.tube = args.substr(i, end - i);
  std::string_view rest = args.substr(end);
  if (!ReadU32(rest, true, c.delay) || !IsBeanstalkTubeName(c.tube) || !IsValidQueueName(c.tube)) {
    return Bad();
  }
  return c;
}

struct Entry {
  std::string_view prefix;
  CommandKind kind;
};
// beanstalkd's which_cmd order: the first prefix that matches wins.
constexpr Entry kTable[] = {
    {"put ", CommandKind::kPut},
    {"peek ", CommandKind::kPeek},
    {"peek-ready", CommandKind::kPeekReady},
    {"peek-delayed", CommandKind::kPeekDelayed},
    {"peek-buried", CommandKind::kPeekBuried},
    {"reserve-with-timeout ", CommandKind::kReserveWithTimeout},
    {"reserve-job ", CommandKind::kReserveJob},
    {"reserve", CommandKind::kReserve},
    {"delete ", CommandKind::kDelete},
    {"release ", CommandKind::kRelease},
    {"bury ", CommandKind::kBury},
    {"kick ", CommandKind::kKick},
    {"kick-job ", CommandKind::kKickJob},
    {"touch ", CommandKind::kTouch},
    {"stats-job ", CommandKind::kStatsJob},
    {"stats-tube ", CommandKind::kStatsTube},
    {"stats", CommandKind::kStats},
    {"use ", CommandKind::kUse},
    {"watch ", CommandKind::kWatch},
    {"ignore ", CommandKind::kIgnore},
    {"list-tubes-watched", CommandKind::kListTubesWatched},
    {"list-tube-used", CommandKind::kListTubeUsed},
    {"list-tubes", CommandKind::kListTubes},
    {"quit", CommandKind::kQuit},
    {"pause-tube", CommandKind::kPauseTube},
};

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

}  // namespace

std::string_view CommandName(CommandKind kind) {
  if (kind == CommandKind::kUnknown) return "unknown";
  if (kind == CommandKind::kBadFormat) return "bad_format";
  for (const Entry& e : kTable) {
    if (e.kind != kind) continue;
    std::string_view name = e.prefix;
    if (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    return name;
  }
  return "unknown";
}

bool IsBeanstalkTubeName(std::string_view name) {
  if (name.empty() || name.size() > kMaxTubeBytes || name.front() == '-') return false;
  for (char c : name) {
    if (!IsNameChar(c)) return false;
  }
  return true;
}

Command ParseCommand(std::string_view line) {
  if (line.find('\0') != std::string_view::npos) return Bad();
  for (const Entry& e : kTable) {
    if (!StartsWith(line, e.prefix)) continue;
    const std::string_view args = line.substr(e.prefix.size());
    switch (e.kind) {
      case CommandKind::kPut:
        return Put(args);
      case CommandKind::kPeek:
      case CommandKind::kReserveJob:
      case CommandKind::kDelete:
      case CommandKind::kKickJob:
      case CommandKind::kTouch:
      case CommandKind::kStatsJob:
        return WithId(e.kind, args);
      case CommandKind::kReserveWithTimeout:
        return ReserveWithTimeout(args);
      case CommandKind::kRelease:
        return Release(args);
      case CommandKind::kBury:
        return Bury(args);
      case CommandKind::kKick:
        return Kick(args);
      case CommandKind::kStatsTube:
      case CommandKind::kUse:
      case CommandKind::kWatch:
      case CommandKind::kIgnore:
        return WithTube(e.kind, args);
      case CommandKind::kPauseTube:
        return PauseTube(args);
      case CommandKind::kQuit:
        return Of(CommandKind::kQuit);
      default:
        return Exact(e.kind, line, e.prefix);
    }
  }
  return Of(CommandKind::kUnknown);
}

}  // namespace conveyor::beanstalk
