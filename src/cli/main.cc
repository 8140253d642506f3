// teiten: the one binary. Its subcommands are registered by groups in src/cli/cmd_*.cc:
// store and sensor network (cmd_store), period queries (cmd_query), row analyses (cmd_rows),
// reports (cmd_report), the web face (cmd_serve); `simulate` parses its own flags.
#include <CLI/CLI.hpp>
#include <iostream>
#include <string>
#include <string_view>

#include "cli/cli_common.h"
#include "simulate/simulate_command.h"

int main(int argc, char** argv) {
  using namespace teiten;
  // `teiten simulate` parses its own flags (src/simulate/simulate_command.h).
  if (argc > 1 && std::string_view(argv[1]) == "simulate") {
    return simulate::RunSimulateCommand(argc - 1, argv + 1);
  }
  CLI::App app{"teiten — Internet fixed-point observation (darknet sensor network)"};
  app.require_subcommand(1);
  Common c;
  Commands cmds(app, c);
  AddIngestCommand(cmds);
  AddQueryCommands(cmds);
  AddRowCommands(cmds);
  AddReportCommands(cmds);
  AddStoreCommands(cmds);
  AddServeCommands(cmds);
  AddFeedCommands(cmds);
  AddNotifyCommands(cmds);
  AddMustanCommands(cmds);
  // Listed for --help only: `simulate` was handed to its own parser above.
  app.add_subcommand("simulate",
                     "simulate a scenario's darknet traces and ground truth (see simulate --help)")
      ->allow_extras();

  // An unknown command is named (CLI11 alone says only that a subcommand is required).
  if (argc > 1 && argv[1][0] != '-') {
    bool known = false;
    std::string names;
    for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
      known = known || sub->get_name() == argv[1];
      names += (names.empty() ? "" : ", ") + sub->get_name();
    }
    if (!known) {
      std::cerr << "teiten: '" << argv[1] << "' is not a teiten command; the commands are " << names
                << " (teiten COMMAND --help says more)\n";
      return 2;
    }
  }
  CLI11_PARSE(app, argc, argv);
  return cmds.RunParsed().value_or(0);
}
