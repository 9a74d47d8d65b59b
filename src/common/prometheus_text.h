// Reads the samples of a Prometheus text exposition (what GET /metrics answers): one
// `name{label="value",...} number` per line, comments and blank lines skipped. The CLI
// uses it to show the server's traffic counters (`conveyor stats`). Pure functions; any
// thread.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace conveyor {

struct PrometheusSample {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;  // in the order written
  double value = 0;

  // The value of label `key`, or empty.
  std::string_view label(std::string_view key) const;
};

// Every well-formed sample of `text`; a malformed line is skipped, never a failure.
std::vector<PrometheusSample> ParsePrometheusText(std::string_view text);

}  // namespace conveyor
