// The rule for queue names (SPEC.md): 1 to 128 characters of A-Z a-z 0-9 . _ -, not only
// dots. Checked by every front end before a name reaches the engine.
#pragma once

#include <string_view>

namespace conveyor {

inline bool IsValidQueueName(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  bool only_dots = true;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
    only_dots = only_dots && c == '.';
  }
  return !only_dots;
}

}  // namespace conveyor
