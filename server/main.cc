// homeward-server: serves the Homeward API. See docs/API.md and `homeward-server --help`.
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <thread>

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

int RevokeKeyMain(const homeward::server::RevokeKeyCommand& cmd) {
  auto revoked = homeward::server::RevokeKey(cmd.api_keys_file, cmd.key_id);
  if (!revoked.ok()) {
    std::cerr << "--revoke-key: " << revoked.status().message() << "\n";
    return 1;
  }
  std::cerr << (*revoked ? "Revoked key \"" : "Key \"") << cmd.key_id
            << (*revoked ? "\" in " : "\" was already revoked in ") << cmd.api_keys_file
            << ". A running server refuses it from its next call on.\n";
  return 0;
}

// Hands freed heap pages back to the kernel every `interval` (glibc's malloc_trim(0) also
// releases free pages in the middle of an arena, which free() never does). Without it the
// RSS of a server under a steady mix of photo and search calls kept drifting up by a few
// percent over 5 minutes while the live heap stayed flat (docs/reliability/load.md).
class MallocTrimmer {
 public:
  explicit MallocTrimmer(std::chrono::milliseconds interval) {
    if (interval.count() <= 0) return;
    thread_ = std::thread([this, interval] {
      std::unique_lock<std::mutex> lock(mu_);
      while (!cv_.wait_for(lock, interval, [this] { return stop_; })) malloc_trim(0);
    });
  }
  ~MallocTrimmer() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// HOMEWARD_MALLOC_TRIM_MS (default 10000; 0 disables the trimmer).
std::chrono::milliseconds TrimInterval() {
  const char* env = std::getenv("HOMEWARD_MALLOC_TRIM_MS");
  if (env == nullptr || *env == '\0') return std::chrono::milliseconds(10000);
  char* end = nullptr;
  const long ms = std::strtol(env, &end, 10);
  if (*end != '\0' || ms < 0) {
    spdlog::warn("HOMEWARD_MALLOC_TRIM_MS={} is not a count of milliseconds; using 10000", env);
    return std::chrono::milliseconds(10000);
  }
  return std::chrono::milliseconds(ms);
}

}  // namespace

int main(int argc, char** argv) {
  homeward::server::CommandLine cl = homeward::server::ParseCommandLine(argc, argv);
  if (cl.exit_code >= 0) return cl.exit_code;
  if (cl.add_key) return AddKeyMain(*cl.add_key);
  if (cl.revoke_key) return RevokeKeyMain(*cl.revoke_key);

  // glibc's defaults (an arena per core x 8, a self-raising mmap threshold) keep freed request
  // buffers (photos, 100 MB refused bodies) out of reach of the next allocation: RSS grew 6-16%
  // over a 5-minute load test whose live heap was flat, and 2.7% with these two settings
  // (docs/reliability/load.md). Set before any thread starts; MALLOC_ARENA_MAX and
  // MALLOC_MMAP_THRESHOLD_ in the environment still win.
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) mallopt(M_ARENA_MAX, 2);
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") == nullptr) mallopt(M_MMAP_THRESHOLD, 128 * 1024);

  spdlog::set_default_logger(spdlog::stderr_logger_mt("homeward"));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");

  // SIGTERM/SIGINT (stop) and SIGHUP (re-read the API key file) are taken by sigwait below:
  // block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
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

  MallocTrimmer trimmer(TrimInterval());

  int sig = 0;
  while (sigwait(&signals, &sig) == 0 && sig == SIGHUP) {
    spdlog::info("SIGHUP: the API key file is re-read at the next call");
    homeward::server::KeyStore::RequestReloadAll();
  }
  spdlog::info("received signal {}", sig);
  (*server)->Shutdown();
  return 0;
}
