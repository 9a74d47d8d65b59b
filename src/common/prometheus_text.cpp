#include "common/prometheus_text.h"

#include <cstdlib>

namespace conveyor {
namespace {

bool IsNameChar(char c, bool first) {
  const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
  return alpha || (!first && c >= '0' && c <= '9');
}

// name{...}: the labels from just past '{'; pos ends past '}'. False when malformed.
bool ParseLabels(std::string_view line, size_t& pos, PrometheusSample& out) {
  while (pos < line.size() && line[pos] != '}') {
    size_t start = pos;
    while (pos < line.size() && IsNameChar(line[pos], pos == start)) ++pos;
    if (pos == start || pos + 1 >= line.size() || line[pos] != '=' || line[pos + 1] != '"') {
      return false;
    }
    std::string key(line.substr(start, pos - start));
    pos += 2;
    std::string value;
    for (;; ++pos) {
      if (pos >= line.size()) return false;
      char c = line[pos];
      if (c == '"') break;
      if (c == '\\') {
        if (++pos >= line.size()) return false;
        c = line[pos] == 'n' ? '\n' : line[pos];
      }
      value.push_back(c);
    }
    ++pos;  // the closing quote
    out.labels.emplace_back(std::move(key), std::move(value));
    if (pos < line.size() && line[pos] == ',') ++pos;
  }
  if (pos >= line.size()) return false;
  ++pos;  // '}'
  return true;
}

bool ParseValue(std::string_view text, double& out) {
  size_t end = text.find_first_of(" \t");
  text = text.substr(0, end);  // a timestamp may follow
  if (text.empty()) return false;
  std::string copy(text);  // strtod wants a terminated string; values are short
  char* stop = nullptr;
  out = std::strtod(copy.c_str(), &stop);
  return stop == copy.c_str() + copy.size();
}

}  // namespace

std::string_view PrometheusSample::label(std::string_view key) const {
  for (const auto& [k, v] : labels) {
    if (k == key) return v;
  }
  return {};
}

std::vector<PrometheusSample> ParsePrometheusText(std::string_view text) {
  std::vector<PrometheusSample> out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (line.empty() || line[0] == '#') continue;
    PrometheusSample sample;
    size_t pos = 0;
    while (pos < line.size() && IsNameChar(line[pos], pos == 0)) ++pos;
    if (pos == 0) continue;
    sample.name = std::string(line.substr(0, pos));
    if (pos < line.size() && line[pos] == '{') {
      ++pos;
      if (!ParseLabels(line, pos, sample)) continue;
    }
    while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t')) ++pos;
    if (!ParseValue(line.substr(pos), sample.value)) continue;
    out.push_back(std::move(sample));
  }
  return out;
}

}  // namespace conveyor
