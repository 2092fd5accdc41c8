// Real deletion, checked on disk: after DeleteCase, no file under the data dir (catalog.db,
// its -wal and -shm, the index snapshots, the photo store) holds the case's photo bytes, its
// face descriptor's float bytes, its photo hash or its name, notes or contact. The same scan
// run before the deletion finds every one of them, so the scan itself is proven.
// docs/reliability/access.md names the mechanisms (secure_delete, WAL checkpoint TRUNCATE,
// index compaction and snapshot rewrite, photo unlink).
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <thread>
#include <map>
#include <memory>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

#include "homeward/v1/homeward.grpc.pb.h"
#include "tests/embed_test_util.h"
#include "tests/rpc_call.h"
#include "tests/server_process.h"

namespace homeward::server {
namespace {

namespace fs = std::filesystem;
namespace pb = ::homeward::v1;
using ::homeward::testing::CallRpc;
using ::homeward::testing::DecodeBgr;
using ::homeward::testing::DemoDir;
using ::homeward::testing::EncodeJpeg;
using ::homeward::testing::FilesUnder;
using ::homeward::testing::MakeTempDirOrDie;
using ::homeward::testing::ReadFileOrDie;
using ::homeward::testing::ReadWholeFile;
using ::homeward::testing::Rpc;
using ::homeward::testing::ServerOptions;
using ::homeward::testing::ServerProcess;
using Stub = pb::Homeward::Stub;

constexpr char kBinary[] = HOMEWARD_SERVER_BINARY;
constexpr char kName[] = "Tobiah Wrenfield-Deletion";
constexpr char kNotes[] = "birthmark behind the right ear (deletion-notes-5519)";
constexpr char kContact[] = "+44 20 7946 5519 (grandmother)";

struct Needle {
  std::string what, bytes;
};

// "what @ file" for every needle found in a file under `dir`.
std::vector<std::string> Scan(const std::string& dir, const std::vector<Needle>& needles) {
  std::vector<std::string> hits;
  for (const std::string& file : FilesUnder(dir)) {
    const std::string content = ReadWholeFile(file);
    for (const Needle& n : needles) {
      if (content.find(n.bytes) != std::string::npos) {
        hits.push_back(n.what + " @ " + fs::relative(file, dir).string());
      }
    }
  }
  return hits;
}

bool AnyHit(const std::vector<std::string>& hits, const std::string& what_prefix,
            const std::string& file_part) {
  for (const std::string& h : hits) {
    if (h.rfind(what_prefix, 0) == 0 && h.find(file_part) != std::string::npos) return true;
  }
  return false;
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += "\n  " + s;
  return out;
}

class DeletionTraceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!::homeward::testing::ModelsInstalled()) GTEST_SKIP() << "models or demo photos absent";
    dir_ = MakeTempDirOrDie("hw_deltrace_");
    server_ = std::make_unique<ServerProcess>(kBinary, dir_);
    data_dir_ = server_->data_dir();
    for (auto [id, role] : {std::pair{"fam", "family"}, std::pair{"adm", "admin"}}) {
      std::string error;
      keys_[id] = server_->AddKey(id, role, &error);
      ASSERT_FALSE(keys_[id].empty()) << error;
    }
  }

  void TearDown() override {
    stub_.reset();
    server_.reset();
    if (!dir_.empty() && !HasFailure()) fs::remove_all(dir_);
  }

  // The first call starts the server on free ports; later ones restart it on the same data
  // dir and ports.
  void StartServer() {
    stub_.reset();
    std::string error;
    if (server_->address().empty()) {
      ServerOptions options;
      options.flags = {"--workers", "1", "--lead-min-confidence", "0.05"};
      ASSERT_TRUE(server_->Start(options, &error)) << error;
    } else {
      ASSERT_TRUE(server_->Restart(&error)) << error;
    }
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    stub_ = pb::Homeward::NewStub(
        grpc::CreateCustomChannel(server_->address(), grpc::InsecureChannelCredentials(), args));
  }

  void StopServer() {
    stub_.reset();
    ASSERT_EQ(server_->Stop(), 0);
  }

  template <typename Req, typename Resp>
  grpc::Status Call(Rpc<Req, Resp> m, const std::string& who, const Req& req, Resp* resp) {
    return CallRpc(*stub_, m, keys_.at(who), req, resp);
  }

  // A case of `who` with one photo; returns {case id, photo id, face id}.
  std::vector<std::string> CaseWithPhoto(const std::string& who, pb::CaseKind kind,
                                         const std::string& name, const std::string& photo,
                                         const std::string& notes = "",
                                         const std::string& contact = "") {
    pb::CreateCaseRequest create;
    create.mutable_case_()->set_kind(kind);
    create.mutable_case_()->set_display_name(name);
    create.mutable_case_()->set_notes(notes);
    create.mutable_case_()->set_reporter_contact(contact);
    pb::Case created;
    grpc::Status s = Call(&Stub::CreateCase, who, create, &created);
    EXPECT_TRUE(s.ok()) << s.error_message();
    pb::AddPhotoRequest add;
    add.set_case_id(created.id());
    add.set_image(photo);
    add.set_face_index(0);  // the demo group photos show several children
    add.set_has_face_index(true);
    pb::AddPhotoResponse added;
    s = Call(&Stub::AddPhoto, who, add, &added);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_GE(added.faces_size(), 1);
    return {created.id(), added.photo_id(), added.faces_size() ? added.faces(0).face_id() : ""};
  }

  // The candidates' case ids of an admin's search by `image` (MISSING and FOUND).
  std::vector<std::string> SearchImage(const std::string& image) {
    pb::SearchRequest req;
    req.set_image(image);
    req.set_top_k(100);
    pb::SearchResponse resp;
    grpc::Status s = Call(&Stub::Search, "adm", req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    std::vector<std::string> ids;
    for (const auto& r : resp.results())
      for (const auto& c : r.candidates()) ids.push_back(c.case_().id());
    return ids;
  }

  std::string dir_, data_dir_;
  std::map<std::string, std::string> keys_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<Stub> stub_;
};

TEST_F(DeletionTraceTest, NoTraceOfADeletedCaseRemainsInAnyFile) {
  const std::string photo = ReadFileOrDie(DemoDir() + "/sample2.jpg");
  StartServer();
  // The case to delete, and others that must survive: another MISSING child, a FOUND child,
  // and a sighting of the same child as the victim (a lead between the two).
  auto victim = CaseWithPhoto("fam", pb::MISSING, kName, photo, kNotes, kContact);
  auto other = CaseWithPhoto("fam", pb::MISSING, "Other Child",
                             ReadFileOrDie(DemoDir() + "/sample3.jpg"));
  auto found = CaseWithPhoto("adm", pb::FOUND, "Found Child",
                             ReadFileOrDie(DemoDir() + "/sample4.jpg"));
  ASSERT_FALSE(victim[2].empty());
  {
    cv::Mat img = DecodeBgr(photo);
    int dx = img.cols / 10, dy = img.rows / 10;
    pb::SubmitSightingRequest req;
    req.set_image(EncodeJpeg(img(cv::Rect(dx, dy, img.cols - 2 * dx, img.rows - 2 * dy)), 88));
    pb::SubmitSightingResponse resp;
    ASSERT_TRUE(Call(&Stub::SubmitSighting, "adm", req, &resp).ok());
  }
  auto hits_before_search = SearchImage(photo);
  ASSERT_FALSE(hits_before_search.empty());
  EXPECT_EQ(hits_before_search.front(), victim[0]) << "the index holds the victim's face";

  // The descriptor's bytes and the photo's hash, as stored (read-only, beside the server).
  std::string descriptor, sha256;
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open_v2((data_dir_ + "/catalog.db").c_str(), &db, SQLITE_OPEN_READONLY,
                              nullptr),
              SQLITE_OK);
    sqlite3_stmt* q = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db,
                                 "SELECT f.descriptor, p.sha256 FROM faces f JOIN photos p ON "
                                 "p.id = f.photo_id WHERE f.id = ?",
                                 -1, &q, nullptr),
              SQLITE_OK);
    sqlite3_bind_int64(q, 1, std::stoll(victim[2]));
    ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
    descriptor.assign(static_cast<const char*>(sqlite3_column_blob(q, 0)),
                      sqlite3_column_bytes(q, 0));
    sha256 = reinterpret_cast<const char*>(sqlite3_column_text(q, 1));
    sqlite3_finalize(q);
    sqlite3_close(db);
  }
  ASSERT_EQ(descriptor.size(), 128 * sizeof(float));

  std::vector<Needle> needles = {{"name", kName},
                                 {"notes", kNotes},
                                 {"contact", kContact},
                                 {"photo sha256", sha256},
                                 {"descriptor (512 bytes)", descriptor}};
  for (size_t off : {size_t{0}, size_t{192}, size_t{448}}) {
    needles.push_back({"descriptor window @" + std::to_string(off), descriptor.substr(off, 64)});
  }
  for (size_t off : {photo.size() / 8, photo.size() / 4, photo.size() / 2, photo.size() * 3 / 4,
                     photo.size() - 100}) {
    needles.push_back({"photo window @" + std::to_string(off), photo.substr(off, 64)});
  }

  // A restart writes the index snapshots, so the victim's descriptor is on disk in
  // index/missing.snap as well as in the catalog. The scan finds everything there.
  StopServer();
  std::vector<std::string> before = Scan(data_dir_, needles);
  EXPECT_TRUE(AnyHit(before, "photo window", "photos/")) << Join(before);
  EXPECT_TRUE(AnyHit(before, "descriptor (512", "catalog.db")) << Join(before);
  EXPECT_TRUE(AnyHit(before, "descriptor (512", "index/")) << Join(before);
  EXPECT_TRUE(AnyHit(before, "name", "catalog.db")) << Join(before);
  EXPECT_TRUE(AnyHit(before, "contact", "catalog.db")) << Join(before);
  std::printf("before DeleteCase, %zu traces:%s\n", before.size(), Join(before).c_str());

  StartServer();
  auto hits_after_restart = SearchImage(photo);
  ASSERT_FALSE(hits_after_restart.empty());
  EXPECT_EQ(hits_after_restart.front(), victim[0]);
  pb::DeleteCaseRequest del;
  del.set_id(victim[0]);
  pb::DeleteCaseResponse deleted;
  ASSERT_TRUE(Call(&Stub::DeleteCase, "fam", del, &deleted).ok());
  EXPECT_EQ(deleted.photos_deleted(), 1);
  EXPECT_EQ(deleted.faces_deleted(), 1);

  // While the server runs (DeleteCase checkpointed the WAL) ...
  std::vector<std::string> running = Scan(data_dir_, needles);
  EXPECT_TRUE(running.empty()) << "traces while running:" << Join(running);
  for (const std::string& id : SearchImage(photo)) EXPECT_NE(id, victim[0]);
  // ... and after a clean stop.
  StopServer();
  std::vector<std::string> after = Scan(data_dir_, needles);
  EXPECT_TRUE(after.empty()) << "traces after stop:" << Join(after);
  std::printf("after DeleteCase: %zu traces while running, %zu after stop; files scanned:\n",
              running.size(), after.size());
  for (const std::string& f : FilesUnder(data_dir_)) {
    std::printf("  %s (%ju bytes)\n", fs::relative(f, data_dir_).c_str(),
                static_cast<uintmax_t>(fs::file_size(f)));
  }

  // The other cases are intact, and a restart (snapshots reloaded) still forgets the victim.
  const std::string other_photo = ReadFileOrDie(DemoDir() + "/sample3.jpg");
  EXPECT_FALSE(Scan(data_dir_, {{"other photo", other_photo.substr(other_photo.size() / 2, 64)}})
                   .empty());
  StartServer();
  for (const auto& id : {other[0], found[0]}) {
    pb::GetCaseRequest get;
    get.set_id(id);
    pb::Case c;
    EXPECT_TRUE(Call(&Stub::GetCase, "adm", get, &c).ok()) << id;
  }
  pb::GetCaseRequest get;
  get.set_id(victim[0]);
  pb::Case gone;
  EXPECT_EQ(Call(&Stub::GetCase, "adm", get, &gone).error_code(), grpc::StatusCode::NOT_FOUND);
  for (const std::string& id : SearchImage(photo)) EXPECT_NE(id, victim[0]);
  StopServer();
}

// A deleted case's ids are never given again (SQLite would reuse the largest rowid): the
// audit rows naming them, leads and ids a client still holds keep meaning one thing.
TEST_F(DeletionTraceTest, IdsOfADeletedCaseAreNeverReused) {
  const std::string photo = ReadFileOrDie(DemoDir() + "/sample2.jpg");
  StartServer();
  auto first = CaseWithPhoto("fam", pb::MISSING, "First", photo);
  pb::DeleteCaseRequest del;
  del.set_id(first[0]);
  pb::DeleteCaseResponse deleted;
  ASSERT_TRUE(Call(&Stub::DeleteCase, "fam", del, &deleted).ok());
  StopServer();  // and across a restart
  StartServer();
  auto second = CaseWithPhoto("fam", pb::MISSING, "Second", photo);
  for (int i = 0; i < 3; ++i) {
    EXPECT_GT(std::stoll(second[i]), std::stoll(first[i])) << "id " << i << " was reused";
  }
  pb::GetCaseRequest get;
  get.set_id(first[0]);
  pb::Case c;
  EXPECT_EQ(Call(&Stub::GetCase, "adm", get, &c).error_code(), grpc::StatusCode::NOT_FOUND);
  StopServer();
}

// A search in flight during DeleteCase holds an older snapshot of the catalog: the deletion's
// WAL checkpoint must wait for it (bounded by the busy timeout), or the deleted rows stay in
// catalog.db and its -wal until some later checkpoint. Here a reader in this process holds a
// read transaction for 1.5 s while the case is deleted.
TEST_F(DeletionTraceTest, ACheckpointWaitsForAReaderOnAnOlderSnapshot) {
  const std::string photo = ReadFileOrDie(DemoDir() + "/sample2.jpg");
  StartServer();
  auto victim = CaseWithPhoto("fam", pb::MISSING, kName, photo, kNotes, kContact);
  CaseWithPhoto("fam", pb::MISSING, "Other Child", ReadFileOrDie(DemoDir() + "/sample3.jpg"));
  ASSERT_FALSE(victim[2].empty());

  sqlite3* reader = nullptr;
  ASSERT_EQ(sqlite3_open_v2((data_dir_ + "/catalog.db").c_str(), &reader, SQLITE_OPEN_READONLY,
                            nullptr),
            SQLITE_OK);
  std::string descriptor;
  {
    ASSERT_EQ(sqlite3_exec(reader, "BEGIN", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_stmt* q = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(reader, "SELECT descriptor FROM faces WHERE id = ?", -1, &q,
                                 nullptr),
              SQLITE_OK);
    sqlite3_bind_int64(q, 1, std::stoll(victim[2]));
    ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);  // the read transaction now holds its snapshot
    descriptor.assign(static_cast<const char*>(sqlite3_column_blob(q, 0)),
                      sqlite3_column_bytes(q, 0));
    sqlite3_finalize(q);
  }
  auto release = std::async(std::launch::async, [reader] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    sqlite3_exec(reader, "COMMIT", nullptr, nullptr, nullptr);
    sqlite3_close(reader);
  });
  pb::DeleteCaseRequest del;
  del.set_id(victim[0]);
  pb::DeleteCaseResponse deleted;
  ASSERT_TRUE(Call(&Stub::DeleteCase, "fam", del, &deleted).ok());
  release.wait();

  std::vector<Needle> needles = {{"name", kName},
                                 {"contact", kContact},
                                 {"descriptor window @0", descriptor.substr(0, 64)},
                                 {"descriptor window @256", descriptor.substr(256, 64)}};
  std::vector<std::string> running = Scan(data_dir_, needles);
  EXPECT_TRUE(running.empty()) << "traces while running:" << Join(running);
  StopServer();
  std::vector<std::string> after = Scan(data_dir_, needles);
  EXPECT_TRUE(after.empty()) << "traces after stop:" << Join(after);
}

}  // namespace
}  // namespace homeward::server
