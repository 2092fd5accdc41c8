// An in-process HomewardServer for the service tests (server_test, http_gateway_test,
// leads_server_test): a fresh temp dir, one API key per requested id in <dir>/keys.jsonl, the
// server on a free loopback port (127.0.0.1:0), stopped and started again on the same data
// dir. tests/server_process.h runs the real binary as a child process instead.
//
// THREAD SAFETY: Start/Stop from one thread; the running server is thread-safe. OWNERSHIP: the
// destructor stops the server and removes the dir.
#ifndef HOMEWARD_TESTS_TEST_SERVER_H_
#define HOMEWARD_TESTS_TEST_SERVER_H_

#include <grpcpp/channel.h>

#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "homeward/v1/homeward.grpc.pb.h"
#include "server/auth.h"
#include "server/config.h"
#include "server/server.h"

namespace homeward::testing {

class TestServer {
 public:
  // Creates <temp>/<prefix>XXXXXX and a key for each {id, role}; the error of the first key
  // that cannot be added. Nothing runs until Start.
  static absl::StatusOr<std::unique_ptr<TestServer>> Create(
      const std::string& prefix, const std::map<std::string, server::Role>& keys);
  ~TestServer();
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  // HomewardServer::Start(config); the caller may change `config` before. Its defaults:
  // listen 127.0.0.1:0, data_dir <dir>/data, api_keys_file <dir>/keys.jsonl, 2 workers,
  // shutdown_grace_ms 2000; the rest as ServerConfig's.
  absl::Status Start();
  // Shuts the server down (its snapshots saved); Start serves the same data dir again.
  void Stop();

  server::ServerConfig config;
  server::HomewardServer* server() const { return server_.get(); }
  const std::string& address() const { return server_->address(); }
  const std::string& dir() const { return dir_; }
  // The raw key of `id` (throws std::out_of_range for an id not created).
  const std::string& key(const std::string& id) const { return keys_.at(id); }
  // A new insecure channel to the running server, messages up to 64 MB each way. Call it
  // after Start.
  std::shared_ptr<grpc::Channel> NewChannel() const;
  // A stub on NewChannel(); the stub keeps its channel alive.
  std::unique_ptr<v1::Homeward::Stub> NewStub() const;

 private:
  TestServer() = default;

  std::string dir_;
  std::map<std::string, std::string> keys_;  // key id -> raw key
  std::unique_ptr<server::HomewardServer> server_;
};

}  // namespace homeward::testing

#endif  // HOMEWARD_TESTS_TEST_SERVER_H_
