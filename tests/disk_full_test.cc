// A full disk under the real homeward-server: a small tmpfs (mount(2); skipped when not
// permitted) as --data-dir. Writes must fail with RESOURCE_EXHAUSTED and a clear message,
// the server must keep serving, the catalog must pass PRAGMA integrity_check, every
// acknowledged photo must stay readable, writes must work again once space is freed, and a
// restart on the same data must load. A SIGTERM on a full disk (snapshot save fails) must
// leave the previous index snapshot intact.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/mount.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "homeward/v1/homeward.grpc.pb.h"
#include "tests/rpc_call.h"
#include "tests/server_process.h"

namespace {

namespace fs = std::filesystem;
namespace v1 = ::homeward::v1;
using homeward::testing::CallRpc;
using homeward::testing::ChildProcess;
using homeward::testing::ReadWholeFile;
using homeward::testing::Rpc;
using ::testing::AnyOf;
using ::testing::HasSubstr;

// HOMEWARD_DISKFULL_SERVER=/path/to/homeward-server runs the test against another build.
const char* ServerBin() {
  const char* env = std::getenv("HOMEWARD_DISKFULL_SERVER");
  return env != nullptr && *env != '\0' ? env : HOMEWARD_SERVER_BIN;
}

fs::path LfwDir() { return "/work/shared/data/lfw-view1"; }

// Small one-face photos: the first LFW images (sorted), raw bytes.
std::vector<std::string> FacePhotos(int n) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(LfwDir(), ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->path().extension() == ".jpg") files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  std::vector<std::string> out;
  for (size_t i = 0; i < files.size() && static_cast<int>(out.size()) < n; ++i) {
    out.push_back(ReadWholeFile(files[i]));
  }
  return out;
}

// `jpeg` made ~`extra` bytes larger with JPEG comment segments of random bytes (decoders skip
// them), distinct per `seed`: fills a disk quickly without a bigger image to analyse.
std::string Bloated(const std::string& jpeg, size_t extra, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out = jpeg.substr(0, 2);  // SOI
  while (extra > 0) {
    const size_t n = std::min<size_t>(extra, 65000);
    out += '\xFF';
    out += '\xFE';
    out += static_cast<char>(((n + 2) >> 8) & 0xFF);
    out += static_cast<char>((n + 2) & 0xFF);
    for (size_t i = 0; i < n; ++i) out += static_cast<char>(rng() & 0xFF);
    extra -= n;
  }
  return out + jpeg.substr(2);
}

// "ok", or what PRAGMA integrity_check (read-only connection) reported.
std::string IntegrityCheck(const fs::path& db_path) {
  sqlite3* db = nullptr;
  const std::string uri = "file:" + db_path.string() + "?mode=ro";
  if (sqlite3_open_v2(uri.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr) !=
      SQLITE_OK) {
    std::string e = sqlite3_errmsg(db);
    sqlite3_close(db);
    return "open: " + e;
  }
  sqlite3_busy_timeout(db, 10000);
  std::string result;
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, nullptr) == SQLITE_OK) {
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      result += reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    }
    if (rc != SQLITE_DONE) result += std::string(" step: ") + sqlite3_errmsg(db);
  } else {
    result = std::string("prepare: ") + sqlite3_errmsg(db);
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return result;
}

// Writes until the file system says ENOSPC. Returns the bytes written.
size_t FillDisk(const fs::path& file) {
  std::FILE* f = std::fopen(file.c_str(), "wb");
  if (f == nullptr) return 0;
  std::setvbuf(f, nullptr, _IONBF, 0);
  std::string chunk(4096, 'x');
  size_t total = 0;
  while (std::fwrite(chunk.data(), 1, chunk.size(), f) == chunk.size()) total += chunk.size();
  std::string one(1, 'x');
  while (std::fwrite(one.data(), 1, 1, f) == 1) ++total;
  std::fclose(f);
  return total;
}

std::map<std::string, std::string> SnapshotFiles(const fs::path& data) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(data / "index", ec)) {
    out[e.path().filename().string()] = ReadWholeFile(e.path());
  }
  return out;
}

class DiskFullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(ServerBin())) GTEST_SKIP() << "no " << ServerBin();
    if (!fs::is_directory(LfwDir())) GTEST_SKIP() << "no LFW photos in " << LfwDir();
    if (!fs::exists(fs::path(HOMEWARD_SOURCE_DIR) / "models/faceapi_1.7.15_resnet.dat")) {
      GTEST_SKIP() << "no recognition model";
    }
    char tmpl[] = "/tmp/homeward_diskfull.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    tmp_ = tmpl;
    data_ = tmp_ / "data";
    fs::create_directories(data_);
    if (::mount("tmpfs", data_.c_str(), "tmpfs", 0, "size=8m,mode=0700") != 0) {
      const int err = errno;
      fs::remove_all(tmp_);
      tmp_.clear();
      GTEST_SKIP() << "cannot mount a tmpfs (" << std::strerror(err) << "): needs root";
    }
    mounted_ = true;
    address_ = absl::StrCat("127.0.0.1:", homeward::testing::FreeLoopbackPort());
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    stub_ = v1::Homeward::NewStub(
        grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(), args));
  }

  void TearDown() override {
    server_.reset();  // SIGKILL if still running
    if (mounted_ && ::umount2(data_.c_str(), 0) != 0) ::umount2(data_.c_str(), MNT_DETACH);
    std::error_code ec;
    if (!tmp_.empty()) fs::remove_all(tmp_, ec);
  }

  void StartServer() {
    server_ = std::make_unique<ChildProcess>();
    ASSERT_TRUE(server_->Start({ServerBin(), "--listen", address_, "--data-dir", data_.string(),
                                "--insecure-dev", "--workers", "1"},
                               tmp_ / "server.log"));
    ASSERT_GT(server_->WaitForLog("listening on", 300), 0) << "the server did not start:\n"
                                                           << server_->NewLog();
  }

  // SIGTERM; returns the exit status.
  int StopServer() {
    server_->Signal(SIGTERM);
    const int rc = server_->Wait(120);
    return rc;
  }

  template <typename Req, typename Resp>
  grpc::Status Call(Rpc<Req, Resp> fn, const Req& req, Resp* resp) {
    return CallRpc(*stub_, fn, "", req, resp);
  }

  std::string CreateCase(const std::string& name, grpc::Status* status = nullptr) {
    v1::CreateCaseRequest req;
    req.mutable_case_()->set_kind(v1::MISSING);
    req.mutable_case_()->set_display_name(name);
    v1::Case c;
    grpc::Status s = Call(&v1::Homeward::Stub::CreateCase, req, &c);
    if (status)
      *status = s;
    else
      EXPECT_TRUE(s.ok()) << s.error_message();
    return c.id();
  }

  grpc::Status AddPhoto(const std::string& case_id, const std::string& bytes,
                        v1::AddPhotoResponse* resp) {
    v1::AddPhotoRequest req;
    req.set_case_id(case_id);
    req.set_image(bytes);
    grpc::Status s = Call(&v1::Homeward::Stub::AddPhoto, req, resp);
    if (s.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {  // several faces: take one
      req.set_face_index(0);
      req.set_has_face_index(true);
      s = Call(&v1::Homeward::Stub::AddPhoto, req, resp);
    }
    return s;
  }

  grpc::Status GetPhoto(const std::string& photo_id, std::string* bytes) {
    v1::GetPhotoRequest req;
    req.set_photo_id(photo_id);
    v1::GetPhotoResponse resp;
    grpc::Status s = Call(&v1::Homeward::Stub::GetPhoto, req, &resp);
    *bytes = resp.image();
    return s;
  }

  // MISSING faces in the catalog and in the index.
  std::pair<int64_t, int64_t> MissingFaces() {
    v1::GetStatsResponse stats;
    grpc::Status s = Call(&v1::Homeward::Stub::GetStats, v1::GetStatsRequest(), &stats);
    EXPECT_TRUE(s.ok()) << s.error_message();
    for (const auto& k : stats.kinds()) {
      if (k.kind() == v1::MISSING) return {k.faces(), k.indexed_faces()};
    }
    return {0, 0};
  }

  void ExpectAllReadable(const std::vector<std::pair<std::string, std::string>>& acked) {
    for (const auto& [id, bytes] : acked) {
      std::string got;
      grpc::Status s = GetPhoto(id, &got);
      EXPECT_TRUE(s.ok()) << "photo " << id << ": " << s.error_message();
      EXPECT_TRUE(got == bytes) << "photo " << id << " came back different";
    }
  }

  fs::path tmp_, data_;
  bool mounted_ = false;
  std::string address_;
  std::unique_ptr<v1::Homeward::Stub> stub_;
  std::unique_ptr<ChildProcess> server_;
};

TEST_F(DiskFullTest, FullDiskIsResourceExhaustedAndRecovers) {
  const std::vector<std::string> faces = FacePhotos(40);
  ASSERT_GE(faces.size(), 40u);
  StartServer();
  const std::string keep = CreateCase("keep");
  const std::string doomed = CreateCase("to-delete");
  std::vector<std::pair<std::string, std::string>> acked;  // photo id, bytes
  for (int i = 0; i < 2; ++i) {
    v1::AddPhotoResponse resp;
    const std::string bytes = Bloated(faces[30 + i], 700 << 10, 1000 + i);
    ASSERT_TRUE(AddPhoto(doomed, bytes, &resp).ok());
  }
  // ~600 KB photos into 8 MB: the disk fills within a few dozen uploads.
  grpc::Status last;
  int i = 0;
  for (; i < 30; ++i) {
    v1::AddPhotoResponse resp;
    const std::string bytes = Bloated(faces[i], 600 << 10, i);
    last = AddPhoto(keep, bytes, &resp);
    if (!last.ok()) break;
    acked.emplace_back(resp.photo_id(), bytes);
  }
  ASSERT_FALSE(last.ok()) << "30 photos of 600 KB fitted into 8 MB?";
  std::cout << "disk full after " << acked.size() << " photos: " << last.error_code() << " "
            << last.error_message() << "\n";
  EXPECT_EQ(last.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << last.error_message();
  EXPECT_THAT(last.error_message(), AnyOf(HasSubstr("No space left"), HasSubstr("full")));
  EXPECT_GE(acked.size(), 3u);
  // Still serving, consistent, nothing acknowledged lost.
  ASSERT_TRUE(server_->Running()) << server_->NewLog();
  auto [faces_n, indexed] = MissingFaces();
  EXPECT_EQ(faces_n, indexed);
  ExpectAllReadable(acked);
  EXPECT_EQ(IntegrityCheck(data_ / "catalog.db"), "ok");
  // The same photo again: still RESOURCE_EXHAUSTED, never a crash or INTERNAL.
  {
    v1::AddPhotoResponse resp;
    grpc::Status again = AddPhoto(keep, Bloated(faces[i], 600 << 10, i), &resp);
    EXPECT_EQ(again.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << again.error_message();
  }
  // A volunteer's sighting on the full disk fails the same way and leaves no empty SIGHTING
  // case behind (the case row fits in the catalog; the photo file does not).
  {
    v1::SubmitSightingRequest req;
    req.set_image(Bloated(faces[i], 600 << 10, i));
    req.set_place("full disk street");
    v1::SubmitSightingResponse resp;
    grpc::Status s = Call(&v1::Homeward::Stub::SubmitSighting, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
    v1::ListCasesRequest list;
    list.set_kind(v1::SIGHTING);
    v1::ListCasesResponse cases;
    grpc::Status listed = Call(&v1::Homeward::Stub::ListCases, list, &cases);
    ASSERT_TRUE(listed.ok()) << listed.error_message();
    EXPECT_EQ(cases.cases_size(), 0) << cases.DebugString();
  }

  // Free space by deleting a case: writes work again.
  {
    v1::DeleteCaseRequest req;
    req.set_id(doomed);
    v1::DeleteCaseResponse resp;
    grpc::Status s = Call(&v1::Homeward::Stub::DeleteCase, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(resp.photos_deleted(), 2);
    v1::AddPhotoResponse add;
    const std::string bytes = Bloated(faces[i], 600 << 10, i);
    s = AddPhoto(keep, bytes, &add);
    ASSERT_TRUE(s.ok()) << s.error_message();
    acked.emplace_back(add.photo_id(), bytes);
  }
  // Or by growing the file system.
  ASSERT_EQ(::mount("tmpfs", data_.c_str(), "tmpfs", MS_REMOUNT, "size=16m,mode=0700"), 0)
      << std::strerror(errno);
  for (int j = i + 1; j < i + 4; ++j) {
    v1::AddPhotoResponse add;
    const std::string bytes = Bloated(faces[j], 600 << 10, j);
    grpc::Status s = AddPhoto(keep, bytes, &add);
    ASSERT_TRUE(s.ok()) << s.error_message();
    acked.emplace_back(add.photo_id(), bytes);
  }
  std::tie(faces_n, indexed) = MissingFaces();
  EXPECT_EQ(faces_n, indexed);

  // A restart on the same data loads, and everything acknowledged is there.
  EXPECT_EQ(StopServer(), 0);
  StartServer();
  EXPECT_THAT(server_->NewLog(), ::testing::Not(HasSubstr("unusable")));
  std::tie(faces_n, indexed) = MissingFaces();
  EXPECT_EQ(faces_n, indexed);
  ExpectAllReadable(acked);
  EXPECT_EQ(IntegrityCheck(data_ / "catalog.db"), "ok");
  EXPECT_EQ(StopServer(), 0);
}

TEST_F(DiskFullTest, SnapshotSaveOnFullDiskKeepsThePreviousSnapshot) {
  const std::vector<std::string> faces = FacePhotos(5);
  ASSERT_EQ(faces.size(), 5u);
  StartServer();
  const std::string case_id = CreateCase("snap");
  std::vector<std::pair<std::string, std::string>> acked;
  for (int i = 0; i < 3; ++i) {
    v1::AddPhotoResponse resp;
    ASSERT_TRUE(AddPhoto(case_id, faces[i], &resp).ok());
    acked.emplace_back(resp.photo_id(), faces[i]);
  }
  ASSERT_EQ(StopServer(), 0);  // snapshots of the 3 faces
  const auto snapshots = SnapshotFiles(data_);
  ASSERT_EQ(snapshots.size(), 3u);  // MISSING, FOUND, SIGHTING

  StartServer();
  for (int i = 3; i < 5; ++i) {  // changes the snapshots do not hold yet
    v1::AddPhotoResponse resp;
    ASSERT_TRUE(AddPhoto(case_id, faces[i], &resp).ok());
    acked.emplace_back(resp.photo_id(), faces[i]);
  }
  const int64_t faces_before = MissingFaces().first;
  ASSERT_GT(FillDisk(data_ / "filler"), 0u);
  {
    v1::AddPhotoResponse resp;
    grpc::Status s = AddPhoto(case_id, Bloated(faces[0], 100 << 10, 77), &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
    std::cout << "AddPhoto on a 100% full disk: " << s.error_code() << " " << s.error_message()
              << "\n";
    grpc::Status created;
    CreateCase("on a full disk", &created);
    std::cout << "CreateCase on a 100% full disk: " << created.error_code() << " "
              << created.error_message() << "\n";
    std::string bytes;
    grpc::Status read = GetPhoto(acked.front().first, &bytes);
    std::cout << "GetPhoto on a 100% full disk: " << read.error_code() << " "
              << read.error_message() << "\n";
    EXPECT_THAT(read.error_code(), AnyOf(grpc::StatusCode::OK, grpc::StatusCode::UNAVAILABLE));
    EXPECT_THAT(created.error_code(),
                AnyOf(grpc::StatusCode::OK, grpc::StatusCode::RESOURCE_EXHAUSTED))
        << created.error_message();
  }
  EXPECT_EQ(IntegrityCheck(data_ / "catalog.db"), "ok");

  // SIGTERM: the snapshot save fails for want of space; the old snapshots must survive.
  const int rc = StopServer();
  EXPECT_EQ(rc, 0) << server_->NewLog();
  EXPECT_THAT(server_->NewLog(), HasSubstr("RESOURCE_EXHAUSTED"));
  {
    const std::string log = server_->NewLog();
    const size_t at = log.find("snapshots failed");
    std::cout << "SIGTERM on a full disk: exit " << rc << ", log: "
              << (at == std::string::npos ? "(no snapshot failure logged)"
                                          : log.substr(at, log.find('\n', at) - at))
              << "\n";
  }
  EXPECT_EQ(SnapshotFiles(data_), snapshots) << "a snapshot changed or a temp file was left";

  // A restart on the still-full disk loads the old snapshots and replays the rest.
  StartServer();
  EXPECT_THAT(server_->NewLog(), ::testing::Not(HasSubstr("unusable")));
  auto [faces_n, indexed] = MissingFaces();
  EXPECT_EQ(faces_n, faces_before);
  EXPECT_EQ(indexed, faces_before);
  EXPECT_EQ(IntegrityCheck(data_ / "catalog.db"), "ok");
  {
    v1::AddPhotoResponse resp;
    grpc::Status s = AddPhoto(case_id, Bloated(faces[1], 100 << 10, 78), &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  }

  // Space back: writes work, every acknowledged photo reads back, restarts are clean.
  fs::remove(data_ / "filler");
  {
    v1::AddPhotoResponse resp;
    const std::string bytes = Bloated(faces[2], 100 << 10, 79);
    grpc::Status s = AddPhoto(case_id, bytes, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    acked.emplace_back(resp.photo_id(), bytes);
  }
  ExpectAllReadable(acked);
  EXPECT_EQ(StopServer(), 0);
  StartServer();
  EXPECT_THAT(server_->NewLog(), ::testing::Not(HasSubstr("unusable")));
  std::tie(faces_n, indexed) = MissingFaces();
  EXPECT_EQ(faces_n, indexed);
  ExpectAllReadable(acked);
  EXPECT_EQ(StopServer(), 0);
}

}  // namespace
