#include "cli/config_file.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace conveyor {
namespace {

const std::vector<std::string> kServeKeys = {"listen",
                                             "data-dir",
                                             "durability",
                                             "beanstalk",
                                             "push-ca-file",
                                             "threads",
                                             "max-body-bytes",
                                             "max-header-bytes",
                                             "max-batch",
                                             "max-connections",
                                             "max-waiters",
                                             "max-queues",
                                             "max-commit-backlog-bytes",
                                             "max-tasks",
                                             "max-memory-bytes",
                                             "payload-cache-bytes",
                                             "max-response-bytes",
                                             "max-metrics-queues",
                                             "commit-timeout-ms",
                                             "shutdown-timeout-ms",
                                             "header-timeout-ms",
                                             "idle-timeout-ms",
                                             "write-timeout-ms"};

std::string EnvName(const std::string& key) {
  std::string name = "CONVEYOR_";
  for (char c : key) name.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(c)));
  return name;
}

bool ValueText(const toml::node& node, std::string& out) {
  if (auto s = node.value<std::string>()) {
    out = *s;
  } else if (auto i = node.value<int64_t>()) {
    out = std::to_string(*i);
  } else if (auto b = node.value<bool>()) {
    out = *b ? "true" : "false";
  } else {
    return false;
  }
  return true;
}

}  // namespace

bool ApplyConfigFile(const std::string& path, const std::vector<std::string>& known,
                     std::string& error) {
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    error = "--config " + path + ": " + std::string(e.description());
    return false;
  }
  const toml::table* serve = table["serve"].as_table();
  for (const toml::table* t : {static_cast<const toml::table*>(&table), serve}) {
    if (t == nullptr) continue;
    for (const auto& [raw_key, node] : *t) {
      std::string key(raw_key.str());
      if (t == &table && key == "serve" && node.is_table()) continue;
      std::replace(key.begin(), key.end(), '_', '-');
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        error = "--config " + path + ": unknown setting '" + std::string(raw_key.str()) + "'";
        return false;
      }
      std::string value;
      if (!ValueText(node, value)) {
        error = "--config " + path + ": setting '" + key + "' must be a string, integer or boolean";
        return false;
      }
      setenv(EnvName(key).c_str(), value.c_str(), /*overwrite=*/0);
    }
  }
  return true;
}

bool PreloadServeConfig(int argc, char** argv, std::string& error) {
  if (argc < 2 || std::strcmp(argv[1], "serve") != 0) return true;
  std::string path;
  if (const char* env = std::getenv("CONVEYOR_CONFIG")) path = env;
  for (int i = 2; i < argc; ++i) {
    if (std::strcmp(argv[i], "--config") == 0 && i + 1 < argc) path = argv[i + 1];
    if (std::strncmp(argv[i], "--config=", 9) == 0) path = argv[i] + 9;
  }
  if (path.empty()) return true;
  return ApplyConfigFile(path, kServeKeys, error);
}

}  // namespace conveyor
