#include "http/route.h"

namespace conveyor {

Target SplitTarget(std::string_view target) {
  Target out;
  size_t q = target.find('?');
  if (q != std::string_view::npos) {
    out.query = target.substr(q + 1);
    target = target.substr(0, q);
  }
  if (!target.empty() && target.front() == '/') target.remove_prefix(1);
  while (true) {
    size_t slash = target.find('/');
    out.segments.push_back(target.substr(0, slash));
    if (slash == std::string_view::npos) break;
    target.remove_prefix(slash + 1);
  }
  return out;
}

std::optional<std::string_view> QueryParam(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      return eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

}  // namespace conveyor
