// Subcommands of the `homeward` CLI. Each Register* adds its subcommand to the app and
// returns the function that runs it once parsing succeeded (exit code).
#ifndef HOMEWARD_CLIENTS_COMMANDS_H_
#define HOMEWARD_CLIENTS_COMMANDS_H_

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

namespace homeward::cli {

struct GlobalOptions {
  bool json = false;
  std::string server;
  std::string api_key;
};

using Runner = std::function<int()>;

Runner RegisterEmbed(CLI::App& app, const GlobalOptions& global);

}  // namespace homeward::cli

#endif  // HOMEWARD_CLIENTS_COMMANDS_H_
