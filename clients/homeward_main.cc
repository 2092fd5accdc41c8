// homeward: the Homeward command-line client.
#include <iostream>
#include <map>

#include "clients/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"Homeward: reunite missing children with their families by face similarity"};
  app.require_subcommand(1);
  homeward::cli::GlobalOptions global;
  app.add_flag("--json", global.json, "print JSON (one document, or one object per line)");
  app.add_option("--server", global.server, "Homeward server HOST:PORT");
  app.add_option("--api-key", global.api_key, "API key (or env HOMEWARD_API_KEY)")
      ->envname("HOMEWARD_API_KEY");
  std::map<CLI::App*, homeward::cli::Runner> runners;
  auto add = [&](homeward::cli::Runner r) { runners[app.get_subcommands({}).back()] = std::move(r); };
  add(homeward::cli::RegisterEmbed(app, global));
  CLI11_PARSE(app, argc, argv);
  for (CLI::App* sub : app.get_subcommands()) {
    auto it = runners.find(sub);
    if (it != runners.end()) return it->second();
  }
  std::cerr << app.help();
  return 2;
}
