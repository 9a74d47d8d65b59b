#include "cli/commands.h"

namespace conveyor {

void AddServerOption(CLI::App& command, std::string& server) {
  command.add_option("--server", server, "Conveyor server URL")
      ->envname("CONVEYOR_SERVER")
      ->capture_default_str();
}

}  // namespace conveyor
