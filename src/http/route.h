// Request-target helpers: split the path into segments and read query parameters. No
// percent-decoding: a queue name may only hold [A-Za-z0-9._-], so an encoded byte is
// refused as an invalid name rather than decoded into something else. Stateless.
#pragma once

#include <absl/container/inlined_vector.h>

#include <optional>
#include <string_view>

namespace conveyor {

struct Target {
  absl::InlinedVector<std::string_view, 8> segments;  // "/v1/tasks/7" -> {"v1","tasks","7"}
  std::string_view query;                             // after '?', without it
};

// Empty segments are kept ("//v1" -> {"", "v1"}), so odd paths never match a route.
Target SplitTarget(std::string_view target);
std::optional<std::string_view> QueryParam(std::string_view query, std::string_view name);

}  // namespace conveyor
