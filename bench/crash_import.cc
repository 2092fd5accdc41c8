// crash_import: kill -9 the real homeward-server (and sometimes the importing CLI) at random
// points of a `homeward import` of N one-face photos, restart, resume, and check after every
// restart that nothing acknowledged was lost and nothing half-written is visible.
//
// Photos: N distinct JPEGs made deterministically from LFW (center crop around the one face,
// small brightness / flip variation), written to the work directory (never the repository),
// each checked to hold exactly one face with the server's default detector (FaceChips).
//
// Kill modes, chosen at random per kill:
//   power    SIGKILL server and import at the same moment (a machine crash); restart.
//   server   SIGKILL the server only; restart it at once: the import's retries ride through
//            (or give up); once it has acknowledged one more photo it gets SIGINT (Ctrl-C).
//   torn     like power, and a torn half line is appended to the import's state file.
//   After a power/torn restart the new server is sometimes killed again while it starts
//   (model load, snapshot load, replay, snapshot save) and restarted once more.
//
// Checks after every restart, with no import running:
//   every acknowledged photo (the import's state file) is readable with GetPhoto, its bytes
//   are the file's, its case is the acknowledged case; every acknowledged case exists;
//   no case is duplicated and no case without photos exists except the row in progress (its
//   case acknowledged, or its CreateCase sent and the reply lost to the kill); every
//   photo has exactly one face and its file; no photo bytes are stored twice; no stray photo
//   or temp file; PRAGMA integrity_check is ok (read-only connection); GetStats: indexed faces
//   == catalog faces == SQL count per kind; a search by image of sampled acknowledged photos
//   returns their face at distance ~0 and a search by face id of sampled faces succeeds.
// At the end: the import exits 0 and every photo is in exactly once; a clean restart
// (SIGTERM, snapshot load) passes the same checks.
//
// Usage (exit 0 pass, 1 fail, 77 skipped: no models or LFW):
//   OMP_WAIT_POLICY=PASSIVE nice crash_import [--photos 1000] [--kills 20] [--seed 1]
//       [--work DIR] [--keep] [--lfw DIR] [--server BIN] [--cli BIN] [--search-samples 2]
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/sha256.h"
#include "bench/bench_util.h"
#include "embed/face_pipeline.h"
#include "homeward/v1/homeward.grpc.pb.h"
#include "tests/server_process.h"

namespace {

namespace fs = std::filesystem;
namespace v1 = ::homeward::v1;
using Json = nlohmann::json;
using homeward::bench::FlagValue;
using homeward::testing::ChildProcess;
using Clock = std::chrono::steady_clock;

constexpr int kSkip = 77;

struct Options {
  int photos = 1000;
  int kills = 20;
  uint32_t seed = 1;
  std::string work;
  bool keep = false;
  std::string lfw = "/work/shared/data/lfw-view1";
  std::string server_bin = HOMEWARD_SERVER_BIN;
  std::string cli_bin = HOMEWARD_CLI_BIN;
  int search_samples = 2;
  int server_workers = 1;
};

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// ---- Photos ------------------------------------------------------------------------------

struct PhotoFile {
  std::string name;  // file name in the photo folder, e.g. crash-0042.jpg
  std::string sha256;
};

std::vector<fs::path> ListJpegs(const fs::path& root) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_regular_file() && it->path().extension() == ".jpg") out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// One derived photo: a crop around LFW's centred face, scaled, brightness-shifted, maybe
// mirrored, by `variant`. Empty when the source cannot be read.
std::string MakePhoto(const fs::path& source, int variant) {
  cv::Mat img = cv::imread(source.string(), cv::IMREAD_COLOR);
  if (img.empty() || img.cols < 200 || img.rows < 200) return "";
  const int margin = 40 + variant % 11;
  cv::Rect crop(margin, margin - 5, img.cols - 2 * margin, img.rows - 2 * margin + 10);
  crop &= cv::Rect(0, 0, img.cols, img.rows);
  cv::Mat out;
  cv::resize(img(crop), out, cv::Size(), 1.2, 1.2, cv::INTER_AREA);
  out.convertTo(out, -1, 1.0, (variant % 7) * 3 - 9);
  if (variant % 2 == 1) cv::flip(out, out, 1);
  std::vector<uchar> jpeg;
  cv::imencode(".jpg", out, jpeg, {cv::IMWRITE_JPEG_QUALITY, 90});
  return std::string(jpeg.begin(), jpeg.end());
}

// Makes (or reuses, from an earlier run with the same work dir) `n` one-face photos.
std::vector<PhotoFile> PreparePhotos(const Options& opt, const fs::path& dir,
                                     const homeward::embed::FacePipeline& pipeline) {
  const fs::path manifest = dir / "manifest.tsv";
  std::vector<PhotoFile> photos;
  {
    std::ifstream in(manifest);
    std::string name, sha;
    while (in >> name >> sha && static_cast<int>(photos.size()) < opt.photos) {
      if (fs::exists(dir / name)) photos.push_back({name, sha});
    }
  }
  if (static_cast<int>(photos.size()) >= opt.photos) return photos;
  photos.clear();
  std::vector<fs::path> sources = ListJpegs(opt.lfw);
  std::mt19937 rng(opt.seed);
  std::shuffle(sources.begin(), sources.end(), rng);
  std::set<std::string> seen;
  std::mutex mu;
  size_t next = 0;
  int rejected = 0;
  const auto start = Clock::now();
  auto worker = [&] {
    for (;;) {
      size_t i;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (static_cast<int>(photos.size()) >= opt.photos || next >= sources.size()) return;
        i = next++;
      }
      std::string bytes = MakePhoto(sources[i], static_cast<int>(i));
      if (bytes.empty()) continue;
      auto chips = pipeline.FaceChips(bytes);
      std::lock_guard<std::mutex> lock(mu);
      const std::string sha = homeward::base::Sha256Hex(bytes);
      if (!chips.ok() || chips->size() != 1 || !seen.insert(sha).second) {
        ++rejected;
        continue;
      }
      if (static_cast<int>(photos.size()) >= opt.photos) return;
      PhotoFile p{absl::StrFormat("crash-%04d.jpg", static_cast<int>(photos.size())), sha};
      std::ofstream(dir / p.name, std::ios::binary) << bytes;
      photos.push_back(p);
    }
  };
  std::thread a(worker), b(worker);
  a.join();
  b.join();
  std::ofstream out(manifest);
  for (const PhotoFile& p : photos) out << p.name << "\t" << p.sha256 << "\n";
  std::printf("prepared %zu one-face photos from %s in %.0f s (%d candidates rejected)\n",
              photos.size(), opt.lfw.c_str(), Since(start), rejected);
  return photos;
}

// ---- The import's state file -------------------------------------------------------------

struct ImportState {
  std::map<std::string, std::string> case_of;   // row key -> case id
  std::map<std::string, std::string> photo_of;  // row key -> photo id
  std::set<std::string> done;                   // rows finished
  std::set<std::string> creating;               // rows whose CreateCase was sent
  int torn_lines = 0;
};

ImportState ReadState(const fs::path& path) {
  ImportState st;
  std::ifstream in(path);
  std::string line;
  bool first = true;
  while (std::getline(in, line)) {
    Json j = Json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      ++st.torn_lines;
      continue;
    }
    if (first) {
      first = false;
      continue;
    }
    const std::string key = j.value("key", "");
    if (j.contains("caseId")) st.case_of[key] = j.value("caseId", "");
    if (j.contains("photoId")) st.photo_of[key] = j.value("photoId", "");
    if (j.value("done", false)) st.done.insert(key);
    if (j.value("creating", false)) st.creating.insert(key);
  }
  return st;
}

// ---- Checks ------------------------------------------------------------------------------

struct CheckResult {
  int acked_photos = 0, acked_cases = 0, rows_done = 0;
  int cases = 0, photos = 0, faces = 0, indexed = 0;
  int unacked_complete = 0;  // photos stored whose acknowledgement was lost (allowed)
  int checks = 0;            // individual assertions evaluated
  std::vector<std::string> problems;
  bool ok() const { return problems.empty(); }
};

class Checker {
 public:
  Checker(const Options& opt, fs::path data_dir, fs::path photo_dir, fs::path state_path,
          const std::vector<PhotoFile>& photos, std::string address)
      : opt_(opt),
        data_dir_(std::move(data_dir)),
        photo_dir_(std::move(photo_dir)),
        state_path_(std::move(state_path)),
        photos_(photos),
        rng_(opt.seed + 7),
        address_(address) {
    for (const PhotoFile& p : photos_) sha_of_[p.name] = p.sha256;
  }

  CheckResult Run(bool expect_complete) {
    // A new channel for every round: one kept across restarts may hold a connection to a
    // server killed during its start-up, and its first call then fails with "Socket closed".
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    args.SetInt("grpc.use_local_subchannel_pool", 1);
    stub_ = v1::Homeward::NewStub(
        grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(), args));
    CheckResult r;
    auto problem = [&](const std::string& what) {
      if (r.problems.size() < 20)
        r.problems.push_back(what);
      else if (r.problems.size() == 20)
        r.problems.push_back("...");
    };
    auto check = [&](bool cond, const std::string& what) {
      ++r.checks;
      if (!cond) problem(what);
    };
    const ImportState st = ReadState(state_path_);
    r.acked_photos = static_cast<int>(st.photo_of.size());
    r.acked_cases = static_cast<int>(st.case_of.size());
    r.rows_done = static_cast<int>(st.done.size());

    // The catalog, read-only (the server keeps running; WAL readers do not block it).
    struct CaseRow {
      std::string name;
      int kind;
    };
    struct PhotoRow {
      int64_t case_id;
      std::string sha, file;
    };
    std::map<int64_t, CaseRow> cases;
    std::map<int64_t, PhotoRow> photo_rows;
    std::map<int64_t, std::vector<int64_t>> faces_of;  // photo -> faces
    std::map<int, int> faces_by_kind;
    sqlite3* db = nullptr;
    const std::string uri = "file:" + (data_dir_ / "catalog.db").string() + "?mode=ro";
    if (sqlite3_open_v2(uri.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr) !=
        SQLITE_OK) {
      problem(absl::StrCat("cannot open the catalog read-only: ", sqlite3_errmsg(db)));
      sqlite3_close(db);
      return r;
    }
    sqlite3_busy_timeout(db, 10000);
    auto query = [&](const char* sql, const std::function<void(sqlite3_stmt*)>& row) {
      sqlite3_stmt* s = nullptr;
      if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) != SQLITE_OK) {
        problem(absl::StrCat("sql ", sql, ": ", sqlite3_errmsg(db)));
        return;
      }
      int rc;
      while ((rc = sqlite3_step(s)) == SQLITE_ROW) row(s);
      if (rc != SQLITE_DONE) problem(absl::StrCat("sql ", sql, ": ", sqlite3_errmsg(db)));
      sqlite3_finalize(s);
    };
    auto text = [](sqlite3_stmt* s, int c) {
      const unsigned char* p = sqlite3_column_text(s, c);
      return p ? std::string(reinterpret_cast<const char*>(p)) : std::string();
    };
    // One read transaction: all queries see one committed state.
    sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
    std::string integrity;
    query("PRAGMA integrity_check", [&](sqlite3_stmt* s) { integrity += text(s, 0); });
    check(integrity == "ok", "integrity_check: " + integrity);
    query("SELECT id, display_name, kind FROM cases", [&](sqlite3_stmt* s) {
      cases[sqlite3_column_int64(s, 0)] = {text(s, 1), sqlite3_column_int(s, 2)};
    });
    query("SELECT id, case_id, sha256, file_name FROM photos", [&](sqlite3_stmt* s) {
      photo_rows[sqlite3_column_int64(s, 0)] = {sqlite3_column_int64(s, 1), text(s, 2), text(s, 3)};
    });
    query(
        "SELECT f.id, f.photo_id, c.kind FROM faces f JOIN photos p ON p.id = f.photo_id "
        "JOIN cases c ON c.id = p.case_id",
        [&](sqlite3_stmt* s) {
          faces_of[sqlite3_column_int64(s, 1)].push_back(sqlite3_column_int64(s, 0));
          ++faces_by_kind[sqlite3_column_int(s, 2)];
        });
    int orphan_faces = -1;
    query("SELECT COUNT(*) FROM faces WHERE photo_id NOT IN (SELECT id FROM photos)",
          [&](sqlite3_stmt* s) { orphan_faces = sqlite3_column_int(s, 0); });
    check(orphan_faces == 0, absl::StrCat(orphan_faces, " faces without their photo"));
    int orphan_photos = -1;
    query("SELECT COUNT(*) FROM photos WHERE case_id NOT IN (SELECT id FROM cases)",
          [&](sqlite3_stmt* s) { orphan_photos = sqlite3_column_int(s, 0); });
    check(orphan_photos == 0, absl::StrCat(orphan_photos, " photos without their case"));
    int pending = -1;
    query("SELECT COUNT(*) FROM pending_unlink",
          [&](sqlite3_stmt* s) { pending = sqlite3_column_int(s, 0); });
    check(pending == 0, absl::StrCat(pending, " files still journaled for unlink after open"));
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
    sqlite3_close(db);
    r.cases = static_cast<int>(cases.size());
    r.photos = static_cast<int>(photo_rows.size());
    for (const auto& [kind, n] : faces_by_kind) r.faces += n;

    // Cases: known names only, each at most once; no case without a photo except the
    // acknowledged case of a row still in progress.
    std::map<std::string, int> by_name;
    std::map<int64_t, int> photos_per_case;
    for (const auto& [id, p] : photo_rows) ++photos_per_case[p.case_id];
    std::set<std::string> acked_case_ids;
    for (const auto& [key, id] : st.case_of) acked_case_ids.insert(id);
    for (const auto& [id, c] : cases) {
      ++by_name[c.name];
      check(sha_of_.count(c.name + ".jpg") > 0,
            absl::StrCat("case ", id, " has an unknown name ", c.name));
      const std::string key = c.name + ".jpg";
      const bool in_progress = acked_case_ids.count(absl::StrCat(id)) && !st.done.count(key);
      // A kill between CreateCase's commit and the import's note of its reply leaves the case
      // without an acknowledgement: the state file says only 'creating' for its row, and the
      // resumed import adopts it (FindLostCase in clients/import_command.cc).
      const bool reply_lost = !acked_case_ids.count(absl::StrCat(id)) && st.creating.count(key) &&
                              !st.case_of.count(key) && !st.done.count(key);
      check(photos_per_case[id] > 0 || ((in_progress || reply_lost) && !expect_complete),
            absl::StrCat("case ", id, " (", c.name, ") has no photo and is not the row in progress",
                         acked_case_ids.count(absl::StrCat(id)) ? "" : " (never acknowledged)"));
    }
    for (const auto& [name, n] : by_name) {
      check(n == 1, absl::StrCat(n, " cases named ", name));
    }
    // Photos: exactly one face each, distinct bytes, the file present with those bytes' name.
    std::map<std::string, int> sha_count;
    std::set<std::string> files;
    for (const auto& [id, p] : photo_rows) {
      ++sha_count[p.sha];
      files.insert(p.file);
      const size_t nf = faces_of.count(id) ? faces_of.at(id).size() : 0;
      check(nf == 1, absl::StrCat("photo ", id, " has ", nf, " faces"));
      check(fs::exists(data_dir_ / "photos" / p.file),
            absl::StrCat("photo ", id, ": file missing"));
    }
    for (const auto& [sha, n] : sha_count)
      check(n == 1, absl::StrCat(n, " photos of bytes ", sha.substr(0, 12)));
    std::error_code ec;
    // The server sweeps orphan files on a background thread after it starts: give it up to
    // 10 s to finish before counting what is left.
    int stray = 0;
    for (int attempt = 0; attempt < 50; ++attempt) {
      stray = 0;
      for (auto it = fs::recursive_directory_iterator(data_dir_ / "photos", ec);
           !ec && it != fs::end(it); it.increment(ec)) {
        if (!it->is_regular_file()) continue;
        const std::string rel = fs::relative(it->path(), data_dir_ / "photos").string();
        if (!files.count(rel)) ++stray;
      }
      if (stray == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    check(stray == 0, absl::StrCat(stray, " stray files under photos/"));
    int index_tmp = 0;
    for (const auto& e : fs::directory_iterator(data_dir_ / "index", ec)) {
      if (e.path().string().find(".tmp") != std::string::npos) ++index_tmp;
    }
    check(index_tmp == 0, absl::StrCat(index_tmp, " temp files left in index/"));

    // Acknowledged photos: readable, right bytes, right case.
    std::set<int64_t> acked_photo_ids;
    for (const auto& [key, case_id] : st.case_of) {
      check(cases.count(std::stoll(case_id)) > 0,
            absl::StrCat("acknowledged case ", case_id, " (", key, ") is missing"));
    }
    for (const auto& [key, photo_id] : st.photo_of) {
      acked_photo_ids.insert(std::stoll(photo_id));
      v1::GetPhotoRequest req;
      req.set_photo_id(photo_id);
      v1::GetPhotoResponse resp;
      grpc::ClientContext ctx;
      ctx.set_wait_for_ready(true);  // the channel may still point at the killed server
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
      grpc::Status s = stub_->GetPhoto(&ctx, req, &resp);
      check(s.ok(), absl::StrCat("GetPhoto ", photo_id, " (", key, "): ", s.error_message()));
      if (!s.ok()) continue;
      check(homeward::base::Sha256Hex(resp.image()) == sha_of_[key],
            absl::StrCat("photo ", photo_id, " (", key, ") has other bytes"));
      auto c = st.case_of.find(key);
      check(c != st.case_of.end() && resp.case_id() == c->second,
            absl::StrCat("photo ", photo_id, " is in case ", resp.case_id(), ", acknowledged in ",
                         c == st.case_of.end() ? "none" : c->second));
    }
    for (const auto& [id, p] : photo_rows) r.unacked_complete += acked_photo_ids.count(id) ? 0 : 1;

    // Index vs catalog.
    v1::GetStatsResponse stats;
    {
      grpc::ClientContext ctx;
      ctx.set_wait_for_ready(true);  // the channel may still point at the killed server
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
      grpc::Status s = stub_->GetStats(&ctx, v1::GetStatsRequest(), &stats);
      check(s.ok(), "GetStats: " + s.error_message());
    }
    for (const v1::KindStats& k : stats.kinds()) {
      r.indexed += static_cast<int>(k.indexed_faces());
      check(k.indexed_faces() == k.faces(),
            absl::StrCat(v1::CaseKind_Name(k.kind()), ": ", k.indexed_faces(), " indexed, ",
                         k.faces(), " faces in the catalog"));
      check(k.faces() == faces_by_kind[k.kind()],
            absl::StrCat(v1::CaseKind_Name(k.kind()), ": GetStats ", k.faces(), " faces, SQL ",
                         faces_by_kind[k.kind()]));
    }
    // Searches for a sample of acknowledged photos.
    std::vector<std::pair<std::string, std::string>> acked(st.photo_of.begin(), st.photo_of.end());
    std::shuffle(acked.begin(), acked.end(), rng_);
    for (int i = 0; i < opt_.search_samples && i < static_cast<int>(acked.size()); ++i) {
      const auto& [key, photo_id] = acked[i];
      const auto faces = faces_of.find(std::stoll(photo_id));
      if (faces == faces_of.end() || faces->second.empty()) continue;  // reported above
      const std::string face_id = absl::StrCat(faces->second.front());
      v1::SearchRequest req;
      req.set_image(homeward::testing::ReadWholeFile(photo_dir_ / key));
      req.add_kinds(v1::MISSING);
      req.set_top_k(10);
      v1::SearchResponse resp;
      grpc::ClientContext ctx;
      ctx.set_wait_for_ready(true);  // the channel may still point at the killed server
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
      grpc::Status s = stub_->Search(&ctx, req, &resp);
      check(s.ok(), absl::StrCat("Search image ", key, ": ", s.error_message()));
      bool found = false;
      for (const auto& qr : resp.results()) {
        for (const auto& c : qr.candidates())
          found |= c.face_id() == face_id && c.distance() < 0.01;
      }
      check(!s.ok() || found,
            absl::StrCat("search by the image of ", key, " misses its face ", face_id));
      v1::SearchRequest by_id;
      by_id.set_face_id(face_id);
      by_id.add_kinds(v1::MISSING);
      v1::SearchResponse id_resp;
      grpc::ClientContext ctx2;
      ctx2.set_wait_for_ready(true);  // the channel may still point at the killed server
      ctx2.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
      s = stub_->Search(&ctx2, by_id, &id_resp);
      check(s.ok(), absl::StrCat("Search face_id ", face_id, ": ", s.error_message()));
    }
    if (expect_complete) {
      const int n = static_cast<int>(photos_.size());
      check(r.rows_done == n, absl::StrCat(r.rows_done, " rows done of ", n));
      check(r.cases == n && r.photos == n && r.faces == n,
            absl::StrCat("expected ", n, " cases/photos/faces, have ", r.cases, "/", r.photos, "/",
                         r.faces));
      check(r.acked_photos == n, absl::StrCat(r.acked_photos, " photos acknowledged of ", n));
    }
    return r;
  }

 private:
  const Options& opt_;
  fs::path data_dir_, photo_dir_, state_path_;
  const std::vector<PhotoFile>& photos_;
  std::map<std::string, std::string> sha_of_;
  std::unique_ptr<v1::Homeward::Stub> stub_;
  std::mt19937 rng_;
  const std::string address_;
};

// ---- The run -----------------------------------------------------------------------------

int CountInLog(const std::string& log, const std::string& a, const std::string& b) {
  int n = 0;
  std::istringstream in(log);
  std::string line;
  while (std::getline(in, line))
    n += line.find(a) != std::string::npos && line.find(b) != std::string::npos;
  return n;
}

int Main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return FlagValue(argc, argv, &i); };
    if (a == "--photos")
      opt.photos = std::stoi(next());
    else if (a == "--kills")
      opt.kills = std::stoi(next());
    else if (a == "--seed")
      opt.seed = static_cast<uint32_t>(std::stoul(next()));
    else if (a == "--work")
      opt.work = next();
    else if (a == "--keep")
      opt.keep = true;
    else if (a == "--lfw")
      opt.lfw = next();
    else if (a == "--server")
      opt.server_bin = next();
    else if (a == "--cli")
      opt.cli_bin = next();
    else if (a == "--search-samples")
      opt.search_samples = std::stoi(next());
    else if (a == "--server-workers")
      opt.server_workers = std::stoi(next());
    else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  const std::string model = std::string(HOMEWARD_SOURCE_DIR) + "/models/faceapi_1.7.15_resnet.dat";
  homeward::embed::PipelineOptions po;
  po.recognition_model_path = model;
  po.workers = 2;
  // The server's detector (its default: the CNN when its model is installed, else HOG), so a
  // photo checked to hold one face holds one face for the server too.
  const std::string face_detector =
      std::string(HOMEWARD_SOURCE_DIR) + "/models/faceboxes_3.0.4.onnx";
  if (fs::exists(face_detector)) {
    po.detector = homeward::embed::DetectorKind::kCnn;
    po.face_detector_model_path = face_detector;
  }
  if (!fs::exists(model) || !fs::exists(po.landmark_model_path) || !fs::is_directory(opt.lfw)) {
    std::printf("SKIPPED: needs %s, %s and %s\n", model.c_str(), po.landmark_model_path.c_str(),
                opt.lfw.c_str());
    return kSkip;
  }
  fs::path work;
  if (opt.work.empty()) {
    char tmpl[] = "/tmp/homeward_crash.XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return 1;
    work = tmpl;
  } else {
    work = opt.work;
    fs::create_directories(work);
  }
  const fs::path photo_dir = work / "photos";
  const fs::path data_dir = work / "data";
  const fs::path state_path = work / "import-state.jsonl";
  const fs::path server_log = work / "server.log";
  const fs::path import_log = work / "import.log";
  fs::create_directories(photo_dir);
  fs::remove_all(data_dir);
  fs::remove(state_path);
  fs::remove(server_log);
  fs::remove(import_log);

  std::vector<PhotoFile> photos;
  {
    auto pipeline = homeward::embed::FacePipeline::Create(po);
    if (!pipeline.ok()) {
      std::printf("SKIPPED: face pipeline: %s\n", std::string(pipeline.status().message()).c_str());
      return kSkip;
    }
    photos = PreparePhotos(opt, photo_dir, **pipeline);
  }
  if (static_cast<int>(photos.size()) < opt.photos) {
    std::printf("FAILED: only %zu one-face photos could be made\n", photos.size());
    return 1;
  }

  const std::string address = absl::StrCat("127.0.0.1:", homeward::testing::FreeLoopbackPort());
  const std::vector<std::string> server_args = {
      opt.server_bin,    "--listen",       address,     "--data-dir",
      data_dir.string(), "--insecure-dev", "--workers", absl::StrCat(opt.server_workers)};
  const std::vector<std::string> import_args = {
      opt.cli_bin,    "--server", address,    "import",  photo_dir.string(),
      "--kind",       "missing",  "--resume", "--state", state_path.string(),
      "--no-progress"};
  std::mt19937 rng(opt.seed);
  auto uniform = [&](double a, double b) {
    return std::uniform_real_distribution<double>(a, b)(rng);
  };

  ChildProcess server;
  std::vector<double> restart_seconds;
  auto start_server = [&]() -> bool {
    server.Start(server_args, server_log);
    const double t = server.WaitForLog("listening on", 600);
    if (t < 0) {
      std::printf("FAILED: the server did not start:\n%s\n", server.NewLog().c_str());
      return false;
    }
    restart_seconds.push_back(t);
    return true;
  };
  const auto run_start = Clock::now();
  if (!start_server()) return 1;
  Checker checker(opt, data_dir, photo_dir, state_path, photos, address);

  std::printf("\nwork dir %s, %d photos, %d kills planned, server %s\n", work.c_str(), opt.photos,
              opt.kills, address.c_str());
  {
    // A CreateCase the server committed whose reply never reached the state file (as when the
    // server dies between its commit and its reply): the import must adopt that case.
    const std::string name = fs::path(photos[0].name).stem().string();
    v1::CreateCaseRequest req;
    req.mutable_case_()->set_kind(v1::MISSING);
    req.mutable_case_()->set_display_name(name);
    v1::Case c;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    grpc::Status s =
        v1::Homeward::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()))
            ->CreateCase(&ctx, req, &c);
    if (!s.ok()) {
      std::printf("FAILED: CreateCase: %s\n", s.error_message().c_str());
      return 1;
    }
    std::ofstream(state_path)
        << Json{{"homewardImport", 1}, {"kind", "MISSING"}, {"input", photo_dir.string()}}.dump()
        << "\n"
        << Json{{"key", photos[0].name}, {"name", name}, {"creating", true}}.dump() << "\n";
    std::printf(
        "injected a lost CreateCase reply: case %s (%s) exists, the state file only says "
        "'creating'\n\n",
        c.id().c_str(), name.c_str());
  }
  std::printf("%4s %-7s %8s %7s %7s %6s %6s %7s %6s %6s %8s %7s  %s\n", "kill", "mode", "t_s",
              "delay_s", "acked", "done", "cases", "photos", "faces", "index", "unacked", "checks",
              "result");
  int kills = 0, startup_kills = 0, failures = 0, total_checks = 0, import_runs = 0;
  int torn_appended = 0, unacked_seen = 0;
  double import_seconds = 0;
  int last_done = 0;
  bool finished = false;
  int final_exit = -1;
  ChildProcess import;
  while (!finished) {
    import.Start(import_args, import_log);
    ++import_runs;
    const auto import_start = Clock::now();
    if (kills >= opt.kills) {
      final_exit = import.Wait(24 * 3600);
      import_seconds += Since(import_start);
      finished = true;
      break;
    }
    // Spread the remaining kills over the remaining rows at the rate seen so far.
    const ImportState before = ReadState(state_path);
    const double rate =
        import_seconds > 5 ? std::max(0.05, before.done.size() / import_seconds) : 1.0;
    const double left_s = (opt.photos - static_cast<double>(before.done.size())) / rate;
    const double mean = left_s / (opt.kills - kills + 1);
    const double delay = std::clamp(mean * uniform(0.3, 1.7), 1.0, 300.0);
    while (Since(import_start) < delay && import.Running()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!import.Running()) {  // finished before the kill
      import_seconds += Since(import_start);
      final_exit = import.exit_status();
      finished = true;
      break;
    }
    const double roll = uniform(0, 1);
    const std::string mode = roll < 0.5 ? "power" : roll < 0.8 ? "server" : "torn";
    const double t_kill = Since(run_start);
    std::string note;
    if (mode == "server") {
      server.Signal(SIGKILL);
      server.Wait(60);
      const int acked = static_cast<int>(ReadState(state_path).photo_of.size());
      if (!start_server()) return 1;
      // Let the import's retries ride through the restart, then stop it with Ctrl-C.
      const auto wait_start = Clock::now();
      while (import.Running() && Since(wait_start) < 300 &&
             static_cast<int>(ReadState(state_path).photo_of.size()) <= acked) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      note = import.Running() ? "import rode through" : "import gave up";
      import.Signal(SIGINT);
      if (import.Wait(300) < 0) {
        import.Signal(SIGKILL);
        import.Wait(60);
      }
      import_seconds += Since(import_start);
    } else {
      server.Signal(SIGKILL);
      import.Signal(SIGKILL);
      server.Wait(60);
      import.Wait(60);
      import_seconds += Since(import_start);
      if (mode == "torn") {  // the next event's write was cut short
        std::ofstream(state_path, std::ios::app) << R"({"key":"crash-)";
        ++torn_appended;
      }
      if (uniform(0, 1) < 0.25) {  // crash again while starting up (load, replay, save)
        const double at = uniform(0.05, std::max(0.1, restart_seconds.back() * 1.2));
        server.Start(server_args, server_log);
        std::this_thread::sleep_for(std::chrono::duration<double>(at));
        server.Signal(SIGKILL);
        server.Wait(60);
        ++startup_kills;
        note = absl::StrFormat("+startup kill at %.2fs", at);
      }
      if (!start_server()) return 1;
    }
    ++kills;
    CheckResult r = checker.Run(/*expect_complete=*/false);
    total_checks += r.checks;
    unacked_seen += r.unacked_complete;
    failures += r.ok() ? 0 : 1;
    std::printf("%4d %-7s %8.1f %7.1f %7d %6d %6d %7d %6d %6d %8d %7d  %s %s\n", kills,
                mode.c_str(), t_kill, delay, r.acked_photos, r.rows_done, r.cases, r.photos,
                r.faces, r.indexed, r.unacked_complete, r.checks, r.ok() ? "ok" : "FAIL",
                note.c_str());
    for (const std::string& p : r.problems) std::printf("       problem: %s\n", p.c_str());
    std::fflush(stdout);
    last_done = r.rows_done;
  }
  (void)last_done;
  const std::string import_tail = import.NewLog();
  std::printf(
      "\nimport runs %d, last exit %d; last run's summary:\n%s\n", import_runs, final_exit,
      import_tail.substr(import_tail.size() > 2000 ? import_tail.size() - 2000 : 0).c_str());
  bool ok = failures == 0 && final_exit == 0;
  CheckResult end = checker.Run(/*expect_complete=*/true);
  total_checks += end.checks;
  std::printf("final (server as left by the last run): %d checks, %s\n", end.checks,
              end.ok() ? "ok" : "FAIL");
  for (const std::string& p : end.problems) std::printf("       problem: %s\n", p.c_str());
  ok &= end.ok();
  // Clean shutdown (snapshots saved) and restart from the snapshots.
  server.Signal(SIGTERM);
  const int term_exit = server.Wait(120);
  std::printf("SIGTERM: exit %d\n", term_exit);
  ok &= term_exit == 0;
  if (!start_server()) return 1;
  const bool replayed = server.NewLog().find("rebuilding") != std::string::npos;
  CheckResult again = checker.Run(/*expect_complete=*/true);
  total_checks += again.checks;
  std::printf("after a clean restart: %d checks, %s%s\n", again.checks, again.ok() ? "ok" : "FAIL",
              replayed ? " (a snapshot was unusable!)" : "");
  for (const std::string& p : again.problems) std::printf("       problem: %s\n", p.c_str());
  ok &= again.ok() && !replayed;
  server.Signal(SIGTERM);
  server.Wait(120);

  const std::string slog = homeward::testing::ReadWholeFile(server_log);
  std::vector<double> sorted = restart_seconds;
  std::sort(sorted.begin(), sorted.end());
  std::printf(
      "\nsummary: photos %d, kills %d (+%d during start-up), torn state lines %d, import runs %d,\n"
      "  checks %d, failed check rounds %d, total %.0f s (import %.0f s),\n"
      "  server starts %zu: median %.1f s, max %.1f s to 'listening on';\n"
      "  photos stored whose reply was lost (seen at a check, acknowledged after resume) %d,\n"
      "  cases adopted after a lost CreateCase reply %d, torn state lines skipped %d,\n"
      "  server log: CreateCase OK %d, AddPhoto OK %d (calls cut by a kill are not logged),\n"
      "  snapshots unusable at start %d\n",
      opt.photos, kills, startup_kills, torn_appended, import_runs, total_checks, failures,
      Since(run_start), import_seconds, sorted.size(),
      sorted.empty() ? 0 : sorted[sorted.size() / 2], sorted.empty() ? 0 : sorted.back(),
      unacked_seen,
      CountInLog(homeward::testing::ReadWholeFile(state_path), "\"adopted\"", "caseId"),
      ReadState(state_path).torn_lines, CountInLog(slog, "method=CreateCase", "code=OK"),
      CountInLog(slog, "method=AddPhoto", "code=OK"), CountInLog(slog, "snapshot", "unusable"));
  std::printf("%s\n", ok ? "PASSED" : "FAILED");
  if (!opt.keep && ok && opt.work.empty())
    fs::remove_all(work);
  else
    std::printf("kept %s\n", work.c_str());
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) { return Main(argc, argv); }
