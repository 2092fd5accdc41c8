// homeward-server: serves the Homeward API. See docs/API.md and `homeward-server --help`.
#include <pthread.h>
#include <signal.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>

#include "server/auth.h"
#include "server/config.h"
#include "server/server.h"

namespace {

int AddKeyMain(const homeward::server::AddKeyCommand& cmd) {
  auto role = homeward::server::ParseRole(cmd.role);
  if (!role.ok()) {
    std::cerr << "--add-key: " << role.status().message() << "\n";
    return 2;
  }
  auto key = homeward::server::AddKey(cmd.api_keys_file, cmd.key_id, *role);
  if (!key.ok()) {
    std::cerr << "--add-key: " << key.status().message() << "\n";
    return 1;
  }
  std::cerr << "Added key \"" << cmd.key_id << "\" (" << cmd.role << ") to " << cmd.api_keys_file
            << ". The key is printed once, below; store it safely: only its hash is kept.\n";
  std::cout << *key << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  homeward::server::CommandLine cl = homeward::server::ParseCommandLine(argc, argv);
  if (cl.exit_code >= 0) return cl.exit_code;
  if (cl.add_key) return AddKeyMain(*cl.add_key);

  spdlog::set_default_logger(spdlog::stderr_logger_mt("homeward"));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");

  // SIGTERM/SIGINT are taken by sigwait below: block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto server = homeward::server::HomewardServer::Start(cl.config);
  if (!server.ok()) {
    spdlog::error("cannot start: {}", server.status().ToString());
    return 1;
  }
  std::string ready = "listening on " + (*server)->address() + "\n";
  std::fputs(ready.c_str(), stderr);
  std::fflush(stderr);
  std::fputs(ready.c_str(), stdout);
  std::fflush(stdout);
  if (std::string http = (*server)->http_address(); !http.empty()) {
    std::string http_ready = "http listening on " + http + "\n";
    std::fputs(http_ready.c_str(), stderr);
    std::fflush(stderr);
    std::fputs(http_ready.c_str(), stdout);
    std::fflush(stdout);
  }

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("received signal {}", sig);
  (*server)->Shutdown();
  return 0;
}
