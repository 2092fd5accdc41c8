#include "tests/test_server.h"

#include <grpcpp/grpcpp.h>

#include <filesystem>

#include "tests/server_process.h"

namespace homeward::testing {

absl::StatusOr<std::unique_ptr<TestServer>> TestServer::Create(
    const std::string& prefix, const std::map<std::string, server::Role>& keys) {
  std::unique_ptr<TestServer> t(new TestServer);
  t->dir_ = MakeTempDirOrDie(prefix);
  t->config.listen = "127.0.0.1:0";
  t->config.data_dir = t->dir_ + "/data";
  t->config.api_keys_file = t->dir_ + "/keys.jsonl";
  t->config.workers = 2;
  t->config.shutdown_grace_ms = 2000;
  for (const auto& [id, role] : keys) {
    auto key = server::AddKey(t->config.api_keys_file, id, role);
    if (!key.ok()) return key.status();
    t->keys_[id] = *key;
  }
  return t;
}

TestServer::~TestServer() {
  server_.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

absl::Status TestServer::Start() {
  server_.reset();
  auto server = server::HomewardServer::Start(config);
  if (!server.ok()) return server.status();
  server_ = std::move(*server);
  return absl::OkStatus();
}

void TestServer::Stop() { server_.reset(); }

std::shared_ptr<grpc::Channel> TestServer::NewChannel() const {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  return grpc::CreateCustomChannel(address(), grpc::InsecureChannelCredentials(), args);
}

std::unique_ptr<v1::Homeward::Stub> TestServer::NewStub() const {
  return v1::Homeward::NewStub(NewChannel());
}

}  // namespace homeward::testing
