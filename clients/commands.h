// Subcommands of the `homeward` CLI. Each Register* adds its subcommand to the app and
// returns the function that runs it once parsing succeeded (exit code).
#ifndef HOMEWARD_CLIENTS_COMMANDS_H_
#define HOMEWARD_CLIENTS_COMMANDS_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

namespace homeward::cli {

struct GlobalOptions {
  bool json = false;
  std::string server;
  std::string api_key;
  double timeout_seconds = 0;  // 0: 30 s per call, 120 s for uploads
  bool tls = false;            // TLS with the system roots, or --ca-cert
  std::string ca_cert;
};

using Runner = std::function<int()>;

Runner RegisterEmbed(CLI::App& app, const GlobalOptions& global);
// gRPC subcommands (they need --server): case create|show|list|delete, photo add,
// sighting submit, search, compare, stats, import.
Runner RegisterCase(CLI::App& app, const GlobalOptions& global);
Runner RegisterPhoto(CLI::App& app, const GlobalOptions& global);
Runner RegisterSighting(CLI::App& app, const GlobalOptions& global);
Runner RegisterSearch(CLI::App& app, const GlobalOptions& global);
Runner RegisterCompare(CLI::App& app, const GlobalOptions& global);
Runner RegisterStats(CLI::App& app, const GlobalOptions& global);
Runner RegisterImport(CLI::App& app, const GlobalOptions& global);
// leads list|show|review (investigators and admins).
Runner RegisterLeads(CLI::App& app, const GlobalOptions& global);

// For a command group (`case create`, ...): runs the runner of whichever child was parsed.
Runner DispatchChildren(CLI::App* group, std::vector<std::pair<CLI::App*, Runner>> children);

}  // namespace homeward::cli

#endif  // HOMEWARD_CLIENTS_COMMANDS_H_
