// homeward-move-up --data-dir DIR --catalog postgresql://USER@HOST:PORT/DB
//
// Copies an embedded data directory (SQLite catalog + photo files) into an empty PostgreSQL
// database in one transaction (store/move_up.h), then checks that both catalogs answer the
// same searches: a gallery is opened on each (indexes rebuilt into a temp dir) and a sample
// of faces spread over the id range is searched by face id on both, comparing candidate
// cases, faces and distances. Prints what it did; exit 0 when copied and verified, 1 when
// refused or failed (the message says what and whether anything was committed), 2 for usage.
// Stop the server on the data directory first (the directory's lock keeps it out anyway).
#include "store/move_up.h"

#include <stdlib.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gallery/gallery.h"
#include "store/catalog.h"

namespace {

namespace fs = std::filesystem;
using homeward::gallery::Gallery;
using homeward::gallery::GalleryOptions;
using homeward::store::CaseKind;
using homeward::store::Catalog;

struct Flags {
  std::string data_dir, catalog;
  int verify_searches = 100;
  int top_k = 10;
  std::string recognition_model,
      landmark_model = "/usr/share/dlib/shape_predictor_68_face_landmarks.dat";
};

std::string DefaultRecognitionModel() {
  if (const char* env = std::getenv("HOMEWARD_RECOGNITION_MODEL"); env && *env) return env;
  return std::string(HOMEWARD_DEFAULT_MODELS_DIR) + "/faceapi_1.7.15_resnet.dat";
}

double SecondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

struct SearchCheck {
  int searched = 0, same = 0;
  int64_t candidates = 0;
  double max_distance_diff = 0;
  std::vector<std::string> differences;  // the first few, in words
  double seconds = 0;
};

// One search's candidates in words, for a difference report.
std::string Describe(const absl::StatusOr<homeward::gallery::QueryResult>& r) {
  if (!r.ok()) return r.status().ToString();
  std::string s = "[";
  for (const auto& c : r->candidates) {
    absl::StrAppendFormat(&s, "%scase %d face %d d=%.6f", s.size() > 1 ? ", " : "", c.case_info.id,
                          c.face.face_id, c.distance);
  }
  return s + "]";
}

// Searches `sample` faces (spread over the source's face ids) on a gallery over each catalog.
absl::StatusOr<SearchCheck> CompareSearches(const std::shared_ptr<Catalog>& source,
                                            const Flags& f) {
  const auto start = std::chrono::steady_clock::now();
  SearchCheck check;
  std::vector<int64_t> ids;
  absl::StatusOr<int64_t> scanned =
      source->ForEachFaceAttributes([&](const homeward::store::FaceRecord& r) {
        ids.push_back(r.attributes.face_id);
        return absl::OkStatus();
      });
  if (!scanned.ok()) return scanned.status();
  char tmpl[] = "/tmp/homeward-move-up-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return absl::InternalError("cannot create a temp dir in /tmp");
  const std::string tmp = tmpl;
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{tmp};

  GalleryOptions base;
  base.pipeline.recognition_model_path = f.recognition_model;
  base.pipeline.landmark_model_path = f.landmark_model;
  base.pipeline.workers = 1;
  base.cross_match = false;     // reads only
  base.rebuild_indexes = true;  // from each catalog, into the temp dir
  GalleryOptions before = base, after = base;
  before.data_dir = tmp + "/sqlite";
  before.shared_catalog = source;
  after.data_dir = tmp + "/postgresql";
  after.catalog = f.catalog;
  absl::StatusOr<std::unique_ptr<Gallery>> a = Gallery::Open(before);
  if (!a.ok()) return a.status();
  absl::StatusOr<std::unique_ptr<Gallery>> b = Gallery::Open(after);
  if (!b.ok()) return b.status();

  auto stats_a = (*a)->Stats();
  auto stats_b = (*b)->Stats();
  if (!stats_a.ok()) return stats_a.status();
  if (!stats_b.ok()) return stats_b.status();
  for (size_t i = 0; i < stats_a->size() && i < stats_b->size(); ++i) {
    const auto &x = (*stats_a)[i], &y = (*stats_b)[i];
    if (x.cases != y.cases || x.photos != y.photos || x.faces != y.faces ||
        x.indexed != y.indexed) {
      check.differences.push_back(absl::StrFormat(
          "kind %d: %d/%d/%d/%d cases/photos/faces/indexed before, %d/%d/%d/%d after",
          static_cast<int>(x.kind), x.cases, x.photos, x.faces, x.indexed, y.cases, y.photos,
          y.faces, y.indexed));
    }
  }

  homeward::gallery::SearchQuery q;
  q.kinds = {CaseKind::kMissing, CaseKind::kFound, CaseKind::kSighting};
  q.top_k = f.top_k;
  q.include_closed = true;
  q.include_age_inconsistent = true;
  const int n = std::min<int>(f.verify_searches, static_cast<int>(ids.size()));
  for (int i = 0; i < n; ++i) {
    const int64_t face = ids[static_cast<size_t>(i) * ids.size() / n];
    auto ra = (*a)->SearchFace(face, q);
    auto rb = (*b)->SearchFace(face, q);
    ++check.searched;
    bool same = ra.ok() == rb.ok();
    if (same && !ra.ok()) same = ra.status().code() == rb.status().code();
    if (same && ra.ok()) {
      same = ra->candidates.size() == rb->candidates.size();
      for (size_t k = 0; same && k < ra->candidates.size(); ++k) {
        const auto &x = ra->candidates[k], &y = rb->candidates[k];
        const double diff = std::fabs(x.distance - y.distance);
        check.max_distance_diff = std::max(check.max_distance_diff, diff);
        same = x.case_info.id == y.case_info.id && x.face.face_id == y.face.face_id && diff < 1e-6;
      }
      check.candidates += static_cast<int64_t>(ra->candidates.size());
    }
    if (same) {
      ++check.same;
    } else if (check.differences.size() < 5) {
      check.differences.push_back(
          absl::StrCat("face ", face, ": SQLite ", Describe(ra), "; PostgreSQL ", Describe(rb)));
    }
  }
  check.seconds = SecondsSince(start);
  return check;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  f.recognition_model = DefaultRecognitionModel();
  CLI::App app{
      "Copies an embedded Homeward data directory (SQLite catalog + photos) into an EMPTY "
      "PostgreSQL database, in one transaction, and verifies the copy."};
  app.add_option("--data-dir", f.data_dir, "the embedded data directory (stop its server first)")
      ->required();
  app.add_option("--catalog", f.catalog,
                 "the target: postgresql://USER@HOST:PORT/DB (libpq URL; PG* env vars apply); "
                 "the database must be empty")
      ->required();
  app.add_option("--verify-searches", f.verify_searches,
                 "faces searched on both catalogs after the copy (0: skip; needs the models)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000000));
  app.add_option("--top-k", f.top_k, "candidates compared per search")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  app.add_option("--recognition-model", f.recognition_model, "for the search check")
      ->capture_default_str();
  app.add_option("--landmark-model", f.landmark_model, "for the search check")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const auto start = std::chrono::steady_clock::now();
  std::printf("homeward-move-up: %s -> %s\n", f.data_dir.c_str(),
              homeward::store::MaskedLocation(f.catalog).c_str());
  homeward::store::CatalogOptions co;
  co.sweep_orphan_files = false;
  auto opened = Catalog::Open(f.data_dir, co);
  if (!opened.ok()) {
    std::fprintf(stderr, "homeward-move-up: cannot open the data directory %s: %s\n",
                 f.data_dir.c_str(), std::string(opened.status().message()).c_str());
    return 1;
  }
  std::shared_ptr<Catalog> source = std::move(*opened);

  homeward::store::MoveUpOptions options;
  options.source = source;
  options.progress = [](absl::string_view line) {
    std::printf("  %.*s\n", static_cast<int>(line.size()), line.data());
    std::fflush(stdout);
  };
  absl::StatusOr<homeward::store::MoveUpReport> report =
      homeward::store::MoveUp(f.data_dir, f.catalog, options);
  if (!report.ok()) {
    std::fprintf(stderr, "homeward-move-up: FAILED, nothing was committed: %s\n",
                 std::string(report.status().message()).c_str());
    return 1;
  }
  std::printf("\ncopied in one transaction, committed after %.1f s\n\n", report->copy_seconds);
  std::printf("| table | SQLite rows | PostgreSQL rows |\n|---|---:|---:|\n");
  for (const auto& t : report->tables) {
    std::printf("| %s | %lld | %lld |\n", t.name.c_str(), static_cast<long long>(t.source_rows),
                static_cast<long long>(t.target_rows));
  }
  std::printf("\nphoto files: %lld (%.1f MB), each checked against its SHA-256\n",
              static_cast<long long>(report->photo_files), report->photo_bytes / 1e6);
  std::string seqs;
  for (const auto& s : report->sequences) {
    absl::StrAppend(&seqs, seqs.empty() ? "" : ", ", s.table, " ", s.last_id + 1);
  }
  std::printf("next ids: %s\n", seqs.c_str());
  std::printf("change log position: seq %lld on both (index snapshots stay valid)\n",
              static_cast<long long>(report->last_change_seq));
  std::printf("PostgreSQL database size: %.1f MB\n", report->database_bytes / 1e6);

  int exit_code = 0;
  if (f.verify_searches == 0) {
    std::printf("searches: not compared (--verify-searches 0)\n");
  } else {
    absl::StatusOr<SearchCheck> check = CompareSearches(source, f);
    if (!check.ok()) {
      std::fprintf(stderr,
                   "homeward-move-up: the copy is committed, but the search check could not run: "
                   "%s (--verify-searches 0 skips it)\n",
                   std::string(check.status().message()).c_str());
      exit_code = 1;
    } else {
      std::printf(
          "searches: %d of %d sampled faces return the same candidates on both catalogs (%lld "
          "candidates: case ids, face ids, distances; largest distance difference %.1g; %.1f s)\n",
          check->same, check->searched, static_cast<long long>(check->candidates),
          check->max_distance_diff, check->seconds);
      for (const std::string& d : check->differences) std::printf("  DIFFERENT: %s\n", d.c_str());
      if (check->same != check->searched || !check->differences.empty()) {
        std::fprintf(stderr,
                     "homeward-move-up: VERIFICATION FAILED: the PostgreSQL copy is committed but "
                     "answers differently; do not serve from it (drop and recreate the database, "
                     "keep using the data directory)\n");
        exit_code = 1;
      }
    }
  }
  std::printf("total %.1f s\n", SecondsSince(start));
  if (exit_code == 0) {
    std::printf(
        "OK: start the servers with --catalog %s (keep the data directory as it is, as a backup)\n",
        homeward::store::MaskedLocation(f.catalog).c_str());
  }
  return exit_code;
}
