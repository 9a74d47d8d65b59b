// libFuzzer target for the beanstalkd command line parser (TESTPLAN D.28): any bytes, cut
// into lines at CRLF as the session cuts them, must parse without a crash into a known
// kind, a tube name only when it is one, and the same command every time.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "beanstalk/command.h"

using conveyor::beanstalk::Command;
using conveyor::beanstalk::CommandKind;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  while (!input.empty()) {
    const size_t end = input.find("\r\n");
    std::string_view line = input.substr(0, end);
    if (line.size() + 2 > conveyor::beanstalk::kMaxLineBytes) line = line.substr(0, 222);
    const Command c = conveyor::beanstalk::ParseCommand(line);
    if (c.kind > CommandKind::kBadFormat) std::abort();
    const bool named = c.kind == CommandKind::kUse || c.kind == CommandKind::kWatch ||
                       c.kind == CommandKind::kIgnore || c.kind == CommandKind::kStatsTube ||
                       c.kind == CommandKind::kPauseTube;
    if (named && !conveyor::beanstalk::IsBeanstalkTubeName(c.tube)) std::abort();
    const Command again = conveyor::beanstalk::ParseCommand(line);
    if (again.kind != c.kind || again.id != c.id || again.bytes != c.bytes ||
        again.tube != c.tube || again.timeout != c.timeout) {
      std::abort();
    }
    if (end == std::string_view::npos) break;
    input.remove_prefix(end + 2);
  }
  return 0;
}
