// The sub-commands of the `conveyor` binary. main.cpp builds the CLI11 app and calls
// Add*Command for each; every command owns its options struct and returns an exit code.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace conveyor {

// Each returns a function to run after parsing when that sub-command was chosen.
void AddServeCommand(CLI::App& app, int& exit_code);
void AddEnqueueCommand(CLI::App& app, int& exit_code);
void AddStatsCommand(CLI::App& app, int& exit_code);
void AddScheduleCommand(CLI::App& app, int& exit_code);
// tasks, show, retry, cancel, pause, resume, purge, config (admin_commands.cpp).
void AddAdminCommands(CLI::App& app, int& exit_code);
void AddBenchCommand(CLI::App& app, int& exit_code);
// `work` also receives the words after `--`, which CLI11 does not see.
void AddWorkCommand(CLI::App& app, int& exit_code, const std::vector<std::string>& command);

// --server URL, default http://127.0.0.1:8700 (env CONVEYOR_SERVER).
void AddServerOption(CLI::App& command, std::string& server);

}  // namespace conveyor
