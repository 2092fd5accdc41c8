// homeward: the Homeward command-line client.
#include <iostream>
#include <map>

#include "clients/commands.h"

namespace homeward::cli {

Runner DispatchChildren(CLI::App* group, std::vector<std::pair<CLI::App*, Runner>> children) {
  group->require_subcommand(1);
  return [group, children = std::move(children)] {
    for (const auto& [child, run] : children) {
      if (child->parsed()) return run();
    }
    std::cerr << group->help();
    return 2;
  };
}

}  // namespace homeward::cli

int main(int argc, char** argv) {
  CLI::App app{"Homeward: reunite missing children with their families by face similarity"};
  app.require_subcommand(1);
  app.fallthrough();  // global options may also follow the subcommand
  homeward::cli::GlobalOptions global;
  app.add_flag("--json", global.json, "print JSON (one document, or one object per line)");
  app.add_option("--server", global.server, "Homeward server HOST:PORT")
      ->envname("HOMEWARD_SERVER");
  app.add_option("--api-key", global.api_key,
                 "API key (prefer the env variable: argv is visible to other users)")
      ->envname("HOMEWARD_API_KEY");
  app.add_option("--timeout", global.timeout_seconds,
                 "deadline per call in seconds (default 30, uploads 120)")
      ->check(CLI::PositiveNumber);
  app.add_flag("--tls", global.tls, "connect with TLS (system root certificates)");
  app.add_option("--ca-cert", global.ca_cert, "PEM root certificates for TLS (implies --tls)");
  std::map<CLI::App*, homeward::cli::Runner> runners;
  auto add = [&](homeward::cli::Runner r) {
    runners[app.get_subcommands({}).back()] = std::move(r);
  };
  add(homeward::cli::RegisterEmbed(app, global));
  add(homeward::cli::RegisterCase(app, global));
  add(homeward::cli::RegisterPhoto(app, global));
  add(homeward::cli::RegisterSighting(app, global));
  add(homeward::cli::RegisterSearch(app, global));
  add(homeward::cli::RegisterCompare(app, global));
  add(homeward::cli::RegisterStats(app, global));
  add(homeward::cli::RegisterImport(app, global));
  add(homeward::cli::RegisterLeads(app, global));
  CLI11_PARSE(app, argc, argv);
  for (CLI::App* sub : app.get_subcommands()) {
    auto it = runners.find(sub);
    if (it != runners.end()) return it->second();
  }
  std::cerr << app.help();
  return 2;
}
