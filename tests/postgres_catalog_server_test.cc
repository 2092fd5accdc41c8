// homeward-server on a PostgreSQL catalog (--catalog postgresql://...), end to end: the real
// binary, a real PostgreSQL 15 started by the test (tests/postgres_server.h), real photos.
// A full flow (case, photo, search, restart, delete) works with every row and photo byte in
// the database and only the index snapshots in --data-dir; a bad --catalog fails at start-up
// with one line and creates nothing.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "homeward/v1/homeward.grpc.pb.h"
#include "tests/embed_test_util.h"
#include "tests/postgres_server.h"
#include "tests/rpc_call.h"
#include "tests/server_process.h"

namespace homeward::server {
namespace {

namespace fs = std::filesystem;
namespace pb = ::homeward::v1;
using ::homeward::testing::CallRpc;
using ::homeward::testing::DemoDir;
using ::homeward::testing::FilesUnder;
using ::homeward::testing::MakeTempDirOrDie;
using ::homeward::testing::OneFaceSample2;
using ::homeward::testing::PostgresServer;
using ::homeward::testing::ReadFileOrDie;
using ::homeward::testing::Rpc;
using ::homeward::testing::RunCommand;
using ::homeward::testing::ServerOptions;
using ::homeward::testing::ServerProcess;
using Stub = pb::Homeward::Stub;

constexpr char kBinary[] = HOMEWARD_SERVER_BINARY;

// The first column of the first row of `sql` on `url`, as text ("<error: ...>" on failure).
std::string PgValue(const std::string& url, const std::string& sql) {
  PGconn* conn = PQconnectdb(url.c_str());
  PGresult* r = PQexec(conn, sql.c_str());
  std::string v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0
                      ? PQgetvalue(r, 0, 0)
                      : absl::StrCat("<error: ", PQerrorMessage(conn), ">");
  PQclear(r);
  PQfinish(conn);
  return v;
}

class PostgresCatalogServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = PostgresServer::NotInstalledReason(); !why.empty()) GTEST_SKIP() << why;
    if (!::homeward::testing::ModelsInstalled()) GTEST_SKIP() << "models or demo photos absent";
    auto server = PostgresServer::Shared();
    ASSERT_TRUE(server.ok()) << server.status();
    pg_ = *server;
    auto db = pg_->CreateDatabase();
    ASSERT_TRUE(db.ok()) << db.status();
    database_ = *db;
    url_ = pg_->Url(database_);
    dir_ = MakeTempDirOrDie("hw_pgserver_");
    data_dir_ = dir_ + "/data";
  }
  void TearDown() override {
    stub_.reset();
    server_.reset();
    if (pg_ != nullptr) pg_->DropDatabase(database_).IgnoreError();
    if (!dir_.empty() && !HasFailure()) fs::remove_all(dir_);
  }

  void StartServer() {
    stub_.reset();
    server_ = std::make_unique<ServerProcess>(kBinary, dir_);
    std::string error;
    ServerOptions options;
    options.flags = {"--catalog", url_, "--workers", "1"};
    options.insecure_dev = true;
    options.data_dir = data_dir_;
    ASSERT_TRUE(server_->Start(options, &error)) << error;
    stub_ = pb::Homeward::NewStub(
        grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials()));
  }

  template <typename Req, typename Resp>
  grpc::Status Call(Rpc<Req, Resp> m, const Req& req, Resp* resp) {
    return CallRpc(*stub_, m, "", req, resp);
  }

  // A case with one photo (its first face); returns {case id, photo id}.
  std::pair<std::string, std::string> CaseWithPhoto(pb::CaseKind kind, const std::string& name,
                                                    const std::string& photo) {
    pb::CreateCaseRequest create;
    create.mutable_case_()->set_kind(kind);
    create.mutable_case_()->set_display_name(name);
    pb::Case created;
    grpc::Status s = Call(&Stub::CreateCase, create, &created);
    EXPECT_TRUE(s.ok()) << s.error_message();
    pb::AddPhotoRequest add;
    add.set_case_id(created.id());
    add.set_image(photo);
    add.set_face_index(0);  // the demo group photos show several children
    add.set_has_face_index(true);
    pb::AddPhotoResponse added;
    s = Call(&Stub::AddPhoto, add, &added);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_GE(added.faces_size(), 1);
    return {created.id(), added.photo_id()};
  }

  // The candidates' case ids of a search by `image` (MISSING and FOUND), best first.
  std::vector<std::string> SearchImage(const std::string& image) {
    pb::SearchRequest req;
    req.set_image(image);
    req.set_top_k(100);
    pb::SearchResponse resp;
    grpc::Status s = Call(&Stub::Search, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    std::vector<std::string> ids;
    for (const auto& r : resp.results())
      for (const auto& c : r.candidates()) ids.push_back(c.case_().id());
    return ids;
  }

  PostgresServer* pg_ = nullptr;
  std::string database_, url_, dir_, data_dir_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<Stub> stub_;
};

TEST_F(PostgresCatalogServerTest, FullFlowWithEveryRowAndPhotoInPostgres) {
  const std::string photo = OneFaceSample2();
  StartServer();
  auto child = CaseWithPhoto(pb::MISSING, "Amara on PostgreSQL", photo);
  auto other = CaseWithPhoto(pb::FOUND, "Other child", ReadFileOrDie(DemoDir() + "/sample4.jpg"));
  ASSERT_FALSE(child.second.empty());

  std::vector<std::string> hits = SearchImage(photo);
  ASSERT_FALSE(hits.empty());
  EXPECT_EQ(hits.front(), child.first);
  pb::GetPhotoRequest get;
  get.set_photo_id(child.second);
  pb::GetPhotoResponse got;
  ASSERT_TRUE(Call(&Stub::GetPhoto, get, &got).ok());
  EXPECT_EQ(got.image(), photo);

  // Everything is in the database; the data dir holds no catalog and no photo file.
  EXPECT_EQ(PgValue(url_, absl::StrCat("SELECT count(*) FROM cases")), "2");
  EXPECT_EQ(PgValue(url_, absl::StrCat("SELECT count(*) FROM photo_bytes")), "2");
  EXPECT_EQ(PgValue(url_,
                    "SELECT length(bytes) FROM photo_bytes b JOIN photos p ON p.sha256 = "
                    "b.sha256 WHERE p.id = " +
                        child.second),
            std::to_string(photo.size()));
  for (const std::string& f : FilesUnder(data_dir_)) {
    const std::string rel = fs::relative(f, data_dir_).string();
    EXPECT_TRUE(rel.rfind("index/", 0) == 0 || rel == "LOCK") << rel;
  }

  // A restart loads the snapshots and catches up from the change log in the database.
  ASSERT_EQ(server_->Stop(), 0);
  StartServer();
  hits = SearchImage(photo);
  ASSERT_FALSE(hits.empty());
  EXPECT_EQ(hits.front(), child.first);

  pb::DeleteCaseRequest del;
  del.set_id(child.first);
  pb::DeleteCaseResponse deleted;
  ASSERT_TRUE(Call(&Stub::DeleteCase, del, &deleted).ok());
  EXPECT_EQ(deleted.photos_deleted(), 1);
  EXPECT_EQ(deleted.faces_deleted(), 1);
  for (const std::string& id : SearchImage(photo)) EXPECT_NE(id, child.first);
  EXPECT_EQ(Call(&Stub::GetPhoto, get, &got).error_code(), grpc::StatusCode::NOT_FOUND);
  // The rows and the photo's bytes are gone from the database; the audit row stayed.
  EXPECT_EQ(PgValue(url_, "SELECT count(*) FROM cases WHERE id = " + child.first), "0");
  EXPECT_EQ(PgValue(url_, "SELECT count(*) FROM photo_bytes"), "1");
  EXPECT_EQ(PgValue(url_, "SELECT count(*) FROM changes WHERE op = 'remove'"), "1");
  EXPECT_EQ(PgValue(url_,
                    "SELECT count(*) FROM audit WHERE action = 'DeleteCase' AND "
                    "target_id = " +
                        child.first),
            "1");
  EXPECT_EQ(server_->Stop(), 0);
}

// A bad or unreachable --catalog: one line naming the problem, a non-zero exit, and no data
// dir created.
TEST_F(PostgresCatalogServerTest, BadCatalogUrlFailsAtStartWithOneLineAndCreatesNothing) {
  struct Case {
    std::string catalog, says;
  };
  const std::vector<Case> cases = {
      {"postgresql://postgres@127.0.0.1:1/nowhere", "cannot connect to PostgreSQL"},
      {absl::StrCat("postgresql://postgres@127.0.0.1:", pg_->port(), "/no_such_db"), "no_such_db"},
      {"mysql://root@127.0.0.1/x", "--catalog must be a postgresql://"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.catalog);
    const std::string data_dir = dir_ + "/never";
    std::string out, err;
    const int rc = RunCommand({kBinary, "--listen", "127.0.0.1:0", "--data-dir", data_dir,
                               "--catalog", c.catalog, "--insecure-dev"},
                              &out, &err);
    EXPECT_NE(rc, 0);
    EXPECT_NE(err.find(c.says), std::string::npos) << err;
    // One line: the error (warnings about --insecure-dev may come before it).
    const size_t at = err.find(c.says);
    EXPECT_EQ(err.find('\n', at), err.size() - 1) << err;
    EXPECT_FALSE(fs::exists(data_dir));
  }
}

// The `catalog` key of a --config file does what --catalog does.
TEST_F(PostgresCatalogServerTest, ConfigFileCatalogKeyOpensPostgres) {
  const std::string config = dir_ + "/homeward.json";
  {
    std::ofstream f(config);
    f << "{\"catalog\": \"" << url_ << "\", \"data-dir\": \"" << data_dir_
      << "\", \"insecure-dev\": true}\n";
  }
  server_ = std::make_unique<ServerProcess>(kBinary, dir_);
  std::string error;
  ServerOptions options;  // --listen, --data-dir (the same dir) and --insecure-dev as above
  options.flags = {"--config", config, "--workers", "1"};
  options.insecure_dev = true;
  options.data_dir = data_dir_;
  ASSERT_TRUE(server_->Start(options, &error)) << error;
  stub_ = pb::Homeward::NewStub(
      grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials()));
  pb::CreateCaseRequest create;
  create.mutable_case_()->set_kind(pb::FOUND);
  create.mutable_case_()->set_display_name("found at the market");
  pb::Case created;
  const grpc::Status s = Call(&Stub::CreateCase, create, &created);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(PgValue(url_, "SELECT display_name FROM cases WHERE id = " + created.id()),
            "found at the market");
  EXPECT_FALSE(fs::exists(data_dir_ + "/catalog.db"));
  EXPECT_EQ(server_->Stop(), 0);
}

}  // namespace
}  // namespace homeward::server
