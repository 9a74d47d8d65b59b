// conveyor: one binary, sub-commands serve, enqueue, stats, work, the operators' commands
// and more (see --help).
#include <cstring>
#include <iostream>
#include <string>

#include "cli/commands.h"
#include "cli/config_file.h"
#include "common/version.h"

int main(int argc, char** argv) {
  // Words after the first `--` are the command that `conveyor work` runs.
  std::vector<std::string> command;
  int cli_argc = argc;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--") == 0) {
      for (int k = i + 1; k < argc; ++k) command.emplace_back(argv[k]);
      cli_argc = i;
      break;
    }
  }

  std::string config_error;
  if (!conveyor::PreloadServeConfig(cli_argc, argv, config_error)) {
    std::cerr << "conveyor serve: " << config_error << "\n";
    return 2;
  }

  CLI::App app{"Conveyor: a durable, high-throughput task server.", "conveyor"};
  app.require_subcommand(1);
  const std::string version = std::string("conveyor ") + conveyor::kVersion;
  app.set_version_flag("--version", version);
  int exit_code = 0;
  app.add_subcommand("version", "Print the version")->callback([&version] {
    std::cout << version << "\n";
  });
  conveyor::AddServeCommand(app, exit_code);
  conveyor::AddEnqueueCommand(app, exit_code);
  conveyor::AddStatsCommand(app, exit_code);
  conveyor::AddScheduleCommand(app, exit_code);
  conveyor::AddAdminCommands(app, exit_code);
  conveyor::AddBenchCommand(app, exit_code);
  conveyor::AddWorkCommand(app, exit_code, command);
  // A first word that is no sub-command is named, not reported as a missing one.
  if (cli_argc > 1 && argv[1][0] != '-') {
    bool known = false;
    for (const CLI::App* sub : app.get_subcommands({})) known = known || sub->check_name(argv[1]);
    if (!known) {
      std::cerr << "conveyor: unknown command '" << argv[1] << "'; see conveyor --help\n";
      return 2;
    }
  }
  try {
    app.parse(cli_argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}
