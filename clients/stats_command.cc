// homeward stats: collection sizes and the index/model in use, over gRPC.
#include <iostream>

#include "absl/strings/str_format.h"
#include "clients/commands.h"
#include "clients/rpc_client.h"

namespace homeward::cli {
namespace {

void PrintStats(const v1::GetStatsResponse& reply) {
  std::cout << absl::StrFormat("%-9s %8s %8s %8s %8s\n", "KIND", "CASES", "PHOTOS", "FACES",
                               "INDEXED");
  for (const v1::KindStats& k : reply.kinds()) {
    std::cout << absl::StrFormat("%-9s %8d %8d %8d %8d\n", KindName(k.kind()), k.cases(),
                                 k.photos(), k.faces(), k.indexed_faces());
  }
  std::cout << absl::StrFormat("index %s, %d vectors; model %s\n", reply.index_type(),
                               reply.index_size(), reply.model_id());
  if (reply.sighting_retention_days() > 0) {
    std::cout << absl::StrFormat(
        "sightings without an open lead are kept %d days; %d expired so far\n",
        reply.sighting_retention_days(), reply.expired_sightings());
  } else {
    std::cout << "sightings are kept without limit (--sighting-retention-days 0)\n";
  }
}

int RunStats(const GlobalOptions& global) {
  return CallAndPrint(global, CallKind::kQuick, &v1::Homeward::Stub::GetStats,
                      v1::GetStatsRequest(), PrintStats);
}

}  // namespace

Runner RegisterStats(CLI::App& app, const GlobalOptions& global) {
  app.add_subcommand("stats", "cases, photos and faces per collection");
  return [&global] { return RunStats(global); };
}

}  // namespace homeward::cli
