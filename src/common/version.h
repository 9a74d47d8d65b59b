// The version of this build of Conveyor: `conveyor --version`, `conveyor version`, the
// dashboard and /metrics later. One place, any thread.
#pragma once

namespace conveyor {

inline constexpr const char* kVersion = "0.1.0";

}  // namespace conveyor
