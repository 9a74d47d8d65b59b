// The `serve --config FILE` TOML file. Its keys are the serve flags' names (`listen`,
// `data-dir` or `data_dir`, `max-body-bytes`, ...), at the top level or under [serve].
// Each value becomes the CONVEYOR_* environment variable of its flag unless that is
// already set, so the order of precedence is: flag, then environment, then file.
// Called by main before the command line is parsed; single-threaded.
#pragma once

#include <string>
#include <vector>

namespace conveyor {

// Finds `serve ... --config FILE` (or CONVEYOR_CONFIG) in argv and applies the file.
// Returns false with `error` set when the file cannot be read or has an unknown key.
bool PreloadServeConfig(int argc, char** argv, std::string& error);

// Applies one file; `known` lists the accepted keys (flag names without dashes prefix).
bool ApplyConfigFile(const std::string& path, const std::vector<std::string>& known,
                     std::string& error);

}  // namespace conveyor
