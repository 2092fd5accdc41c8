// TLS end to end: a CA and a server certificate generated at test time with the openssl CLI,
// the real homeward-server binary started with --tls-cert/--tls-key, and gRPC clients that
// pin that CA (succeeds), pin another CA (fails) or speak plaintext (fails).
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "homeward/v1/homeward.grpc.pb.h"
#include "server/auth.h"
#include "tests/embed_test_util.h"
#include "tests/server_process.h"

namespace homeward::server {
namespace {

namespace fs = std::filesystem;
namespace pb = ::homeward::v1;
using ::homeward::testing::FilesUnder;
using ::homeward::testing::MakeTempDirOrDie;
using ::homeward::testing::ReadWholeFile;
using ::homeward::testing::RunCommand;
using ::homeward::testing::ServerOptions;
using ::homeward::testing::ServerProcess;

constexpr char kBinary[] = HOMEWARD_SERVER_BINARY;

std::string Openssl() {
  for (const char* p : {"/usr/bin/openssl", "/usr/local/bin/openssl", "/bin/openssl"}) {
    if (fs::exists(p)) return p;
  }
  return "";
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!::homeward::testing::ModelsInstalled()) GTEST_SKIP() << "models or demo photos absent";
    openssl_ = Openssl();
    if (openssl_.empty()) GTEST_SKIP() << "no openssl CLI (apt-get install openssl)";
    dir_ = MakeTempDirOrDie("hw_tls_");
    // Two independent CAs; the server's certificate is signed by the first one and names
    // 127.0.0.1 and localhost.
    for (const std::string ca : {"ca", "other_ca"}) {
      Run({openssl_, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
           "-nodes", "-keyout", dir_ + "/" + ca + ".key", "-out", dir_ + "/" + ca + ".pem",
           "-days", "2", "-subj", "/CN=Homeward test " + ca});
    }
    Run({openssl_, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", dir_ + "/server.key", "-out", dir_ + "/server.csr", "-subj",
         "/CN=localhost"});
    std::ofstream(dir_ + "/ext.cnf") << "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                                        "basicConstraints=CA:FALSE\n"
                                        "keyUsage=digitalSignature,keyEncipherment\n"
                                        "extendedKeyUsage=serverAuth\n";
    Run({openssl_, "x509", "-req", "-in", dir_ + "/server.csr", "-CA", dir_ + "/ca.pem",
         "-CAkey", dir_ + "/ca.key", "-CAcreateserial", "-out", dir_ + "/server.pem", "-days",
         "2", "-extfile", dir_ + "/ext.cnf"});
    auto key = AddKey(dir_ + "/keys.jsonl", "inv", Role::kInvestigator);
    ASSERT_TRUE(key.ok()) << key.status();
    key_ = *key;
  }

  void TearDown() override {
    if (!dir_.empty() && !HasFailure()) fs::remove_all(dir_);
  }

  void Run(const std::vector<std::string>& argv) {
    std::string out, err;
    ASSERT_EQ(RunCommand(argv, &out, &err), 0) << argv[1] << ": " << err;
  }

  // GetStats over `creds` (with the key when with_key), 10 s deadline.
  grpc::Status Stats(const std::string& address,
                     const std::shared_ptr<grpc::ChannelCredentials>& creds, bool with_key) {
    auto stub = pb::Homeward::NewStub(grpc::CreateChannel(address, creds));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (with_key) ctx.AddMetadata("authorization", "Bearer " + key_);
    pb::GetStatsResponse resp;
    return stub->GetStats(&ctx, pb::GetStatsRequest(), &resp);
  }

  static std::shared_ptr<grpc::ChannelCredentials> Pinned(const std::string& ca_pem) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ca_pem;
    return grpc::SslCredentials(ssl);
  }

  std::string openssl_, dir_, key_;
};

TEST_F(TlsTest, ClientPinnedToTheCaConnectsOthersAreRefused) {
  ServerProcess server(kBinary, dir_);  // data in dir_/data, keys in dir_/keys.jsonl
  ServerOptions options;
  options.flags = {"--workers", "1", "--tls-cert", dir_ + "/server.pem", "--tls-key",
                   dir_ + "/server.key"};
  std::string error;
  ASSERT_TRUE(server.Start(options, &error)) << error;
  const std::string port = server.address().substr(server.address().rfind(':') + 1);
  const std::string ca = ReadWholeFile(dir_ + "/ca.pem");
  ASSERT_FALSE(ca.empty());

  // The right CA: the call goes through, and the key is still required.
  for (const std::string host : {"127.0.0.1", "localhost"}) {
    grpc::Status s = Stats(host + ":" + port, Pinned(ca), true);
    EXPECT_TRUE(s.ok()) << host << ": " << s.error_code() << " " << s.error_message();
  }
  EXPECT_EQ(Stats("127.0.0.1:" + port, Pinned(ca), false).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);

  // Another CA: the handshake fails, the call never reaches the service.
  grpc::Status wrong_ca =
      Stats("127.0.0.1:" + port, Pinned(ReadWholeFile(dir_ + "/other_ca.pem")), true);
  EXPECT_EQ(wrong_ca.error_code(), grpc::StatusCode::UNAVAILABLE) << wrong_ca.error_message();

  // Plaintext against the TLS port fails as well.
  grpc::Status plain = Stats("127.0.0.1:" + port, grpc::InsecureChannelCredentials(), true);
  EXPECT_EQ(plain.error_code(), grpc::StatusCode::UNAVAILABLE) << plain.error_message();

  ASSERT_EQ(server.Stop(), 0);
  const std::string log = server.Log();
  EXPECT_NE(log.find("rpc method=GetStats key_id=inv"), std::string::npos) << log;
  EXPECT_EQ(log.find(key_.substr(4)), std::string::npos) << "the key was logged";
  for (const std::string& f : FilesUnder(dir_ + "/data")) {
    EXPECT_EQ(ReadWholeFile(f).find(key_.substr(4)), std::string::npos) << f;
  }
}

TEST_F(TlsTest, AMissingCertificateOrHalfAPairStopsTheStart) {
  std::string out, err;
  // The certificate file does not exist.
  EXPECT_NE(RunCommand({kBinary, "--listen", "127.0.0.1:0", "--data-dir", dir_ + "/data",
                        "--api-keys", dir_ + "/keys.jsonl", "--tls-cert", dir_ + "/absent.pem",
                        "--tls-key", dir_ + "/server.key"},
                       &out, &err),
            0);
  EXPECT_NE(err.find("--tls-cert"), std::string::npos) << err;
  // Half a pair.
  EXPECT_NE(RunCommand({kBinary, "--listen", "127.0.0.1:0", "--data-dir", dir_ + "/data",
                        "--api-keys", dir_ + "/keys.jsonl", "--tls-cert", dir_ + "/server.pem"},
                       &out, &err),
            0);
  EXPECT_NE(err.find("--tls-key"), std::string::npos) << err;
}

}  // namespace
}  // namespace homeward::server
