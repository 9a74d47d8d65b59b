// AbslView: a std::string_view as Abseil's own string_view. Debian's Abseil is built
// without std::string_view aliasing, and its hash maps of std::string look keys up by
// absl::string_view. Any thread.
#pragma once

#include <string_view>

#include "absl/strings/string_view.h"

namespace conveyor {

inline absl::string_view AbslView(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

}  // namespace conveyor
