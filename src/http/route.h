// Request-target helpers: split the path into segments and read query parameters. No
// percent-decoding: a queue name may only hold [A-Za-z0-9._-], so an encoded byte is
// refused as an invalid name rather than decoded into something else. Stateless.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

namespace conveyor {

struct Target {
  std::vector<std::string_view> segments;  // "/v1/tasks/7" -> {"v1","tasks","7"}
  std::string_view query;                  // after '?', without it
};

// Empty segments are kept ("//v1" -> {"", "v1"}), so odd paths never match a route.
Target SplitTarget(std::string_view target);
std::optional<std::string_view> QueryParam(std::string_view query, std::string_view name);

}  // namespace conveyor
