// service_bench: what the service layers cost on top of the work they wrap, and how the
// catalog and gallery behave at a million faces. Prints tables; never run by ctest.
//
//   sighting  SubmitSighting throughput with N concurrent clients on real photos: through a
//             real HomewardServer (in-process, --insecure-dev, loopback gRPC, one channel per
//             client) next to Gallery::SubmitSighting called by N threads on the same gallery.
//             The gallery first gets --gallery-faces synthetic MISSING/FOUND faces to search.
//   populate  Fills a catalog with N synthetic faces through Catalog::AddPhotoBatch (tiny
//             synthetic photo bytes, --faces-per-photo faces each, mixed kinds, sexes, ages,
//             dates, places, statuses); prints the insert rate (and AddPhoto's, one photo per
//             transaction, on --single photos) and the bytes on disk per face.
//   catalog-open  Catalog::Open time with and without the orphan-file sweep.
//   move-up   store::MoveUp (what homeward-move-up runs before its search check) of --data-dir
//             into the EMPTY PostgreSQL database --catalog: faces, photos, seconds, faces/s and
//             the database size after (the data dir itself is not changed).
//   open      One gallery restart in this process: Gallery::Open time and RSS after minus
//             before (models + catalog + indexes), then single-client search-by-face-id
//             latency p50/p99 for raw Faiss (the gallery's own snapshot read with
//             faiss::read_index), Gallery::SearchFace and gRPC Search{face_id} (a
//             HomewardService over the same gallery on a loopback port), interleaved per query.
//
// Usage (OMP_WAIT_POLICY=PASSIVE):
//   service_bench sighting [--folder DIR]... [--clients 1,2,4,8] [--requests 32] [--reps 2]
//                          [--gallery-faces 10000] [--seed-file F] [--dir /tmp]
//   (populate and open take --catalog postgresql://... to use a PostgreSQL catalog; open's
//   --data-dir then holds only the index snapshots)
//   service_bench populate --data-dir D --faces 1000000 [--faces-per-photo 10]
//                          [--batch 2000] [--single 200] [--seed-file F]
//   service_bench catalog-open --data-dir D
//   service_bench move-up --data-dir D --catalog postgresql://USER@HOST:PORT/EMPTY_DB
//   service_bench open --data-dir D [--factory IVF1024,Flat] [--nprobe 16] [--rebuild]
//                      [--queries 1000] [--no-grpc] [--calibration models/age_calibration_v1.json]
#include <grpcpp/grpcpp.h>
#include <omp.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <faiss/Index.h>
#include <faiss/IVFlib.h>
#include <faiss/IndexIVF.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>
#include <nlohmann/json.hpp>

#include "bench/bench_util.h"
#include "gallery/gallery.h"
#include "homeward/v1/homeward.grpc.pb.h"
#include "server/server.h"
#include "server/service.h"
#include "store/catalog.h"
#include "store/move_up.h"

namespace {

namespace fs = std::filesystem;
namespace pb = homeward::v1;
using Clock = homeward::bench::Clock;
using homeward::bench::FaceGenerator;
using homeward::bench::FlagValue;
using homeward::bench::LoadSeeds;
using homeward::bench::ReadPhotos;
using homeward::bench::Seconds;
using homeward::gallery::Gallery;
using homeward::gallery::GalleryOptions;
using homeward::store::CaseKind;
using homeward::store::Catalog;

constexpr int kTopK = 10;  // the API default
constexpr int kLandmarks = 68;

double RssMiB() {
  long pages = 0, resident = 0;
  std::ifstream("/proc/self/statm") >> pages >> resident;
  return static_cast<double>(resident) * sysconf(_SC_PAGESIZE) / (1 << 20);
}

double PeakRssMiB() {  // VmHWM
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024;
  }
  return 0;
}

int64_t BytesUnder(const fs::path& p) {
  std::error_code ec;
  if (fs::is_regular_file(p, ec)) return static_cast<int64_t>(fs::file_size(p, ec));
  int64_t n = 0;
  for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_regular_file(ec)) n += static_cast<int64_t>(it->file_size(ec));
  }
  return n;
}

int64_t FilesUnder(const fs::path& p) {
  std::error_code ec;
  int64_t n = 0;
  for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    n += it->is_regular_file(ec);
  }
  return n;
}

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

[[noreturn]] void Die(const std::string& what, const absl::Status& s) {
  std::fprintf(stderr, "service_bench: %s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}

// ---- flags ----------------------------------------------------------------------------------

struct Flags {
  std::string command;
  std::vector<std::string> folders;
  std::vector<int> clients = {1, 2, 4, 8};
  int requests = 32, reps = 2;
  int64_t gallery_faces = 10000;
  std::string seed_file, dir = "/tmp", data_dir;
  std::string catalog;  // populate/open: a postgresql:// catalog instead of data_dir's SQLite
  int64_t faces = 0;
  int faces_per_photo = 10, batch = 2000, single = 200;
  std::string factory = "IVF1024,Flat";
  std::string calibration;  // empty: distance ranking; a file: the server's calibrated ranking
  int nprobe = 16, queries = 1000;
  bool rebuild = false, grpc = true;
};

std::vector<int> ParseInts(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::stoi(item));
  return out;
}

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  if (argc < 2) {
    std::fprintf(stderr, "usage: service_bench sighting|populate|catalog-open|move-up|open [flags]\n");
    std::exit(2);
  }
  f.command = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return FlagValue(argc, argv, &i); };
    if (a == "--folder") f.folders.push_back(next());
    else if (a == "--clients") f.clients = ParseInts(next());
    else if (a == "--requests") f.requests = std::stoi(next());
    else if (a == "--reps") f.reps = std::stoi(next());
    else if (a == "--gallery-faces") f.gallery_faces = std::stoll(next());
    else if (a == "--seed-file") f.seed_file = next();
    else if (a == "--dir") f.dir = next();
    else if (a == "--data-dir") f.data_dir = next();
    else if (a == "--catalog") f.catalog = next();
    else if (a == "--faces") f.faces = std::stoll(next());
    else if (a == "--faces-per-photo") f.faces_per_photo = std::stoi(next());
    else if (a == "--batch") f.batch = std::stoi(next());
    else if (a == "--single") f.single = std::stoi(next());
    else if (a == "--factory") f.factory = next();
    else if (a == "--nprobe") f.nprobe = std::stoi(next());
    else if (a == "--queries") f.queries = std::stoi(next());
    else if (a == "--rebuild") f.rebuild = true;
    else if (a == "--no-grpc") f.grpc = false;
    else if (a == "--calibration") f.calibration = next();
    else {
      std::fprintf(stderr, "unknown flag %s\n", a.c_str());
      std::exit(2);
    }
  }
  if (f.folders.empty()) {
    f.folders = {"/work/shared/data/faces-small",
                 std::string(HOMEWARD_SOURCE_DIR) + "/models/cache/face-api-1.7.15/demo"};
  }
  return f;
}

// ---- synthetic cases and photos (faces: bench/bench_util.h's FaceGenerator) ---------------

std::string Date(std::mt19937_64& rng, int from_year, int years) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02d",
                from_year + static_cast<int>(rng() % years), 1 + static_cast<int>(rng() % 12),
                1 + static_cast<int>(rng() % 28));
  return buf;
}

// Adds `faces` synthetic faces through AddPhotoBatch; returns faces/s. Kinds: 45% MISSING,
// 45% FOUND, 10% SIGHTING; 5% of cases closed; one case per photo.
struct PopulateResult {
  int64_t faces = 0, photos = 0;
  double seconds = 0, gen_seconds = 0, case_seconds = 0;  // seconds includes both others
};

PopulateResult Populate(Catalog& catalog, FaceGenerator& gen, int64_t faces, int per_photo,
                        int batch_photos, bool quiet, bool one_by_one = false) {
  static const char* kPlaces[] = {"Lagos, Oshodi market", "Kano", "Nairobi, Kibera",
                                  "Dhaka, Kamalapur station", "Kolkata, Howrah", "Lima",
                                  "Port-au-Prince", "Kinshasa", "Manila, Tondo", "Karachi"};
  auto& rng = gen.rng();
  PopulateResult r;
  std::vector<Catalog::PhotoToAdd> batch;
  const auto start = Clock::now();
  double gen_s = 0;
  while (r.faces < faces) {
    const auto g0 = Clock::now();
    batch.clear();
    std::vector<homeward::store::Case> cases;
    for (int p = 0; p < batch_photos && r.faces < faces; ++p, ++r.photos) {
      homeward::store::Case c;
      const int roll = static_cast<int>(rng() % 100);
      c.kind = roll < 45 ? CaseKind::kMissing : roll < 90 ? CaseKind::kFound : CaseKind::kSighting;
      c.display_name = "Synthetic " + std::to_string(r.photos);
      c.sex = static_cast<homeward::store::Sex>(rng() % 3);
      if (rng() % 2) c.date_of_birth = Date(rng, 2005, 15);
      c.event_date = Date(rng, 2015, 10);
      c.place = kPlaces[rng() % 10];
      c.owner_key_id = "bench";
      if (rng() % 20 == 0) c.status = homeward::store::CaseStatus::kClosed;
      cases.push_back(c);
      Catalog::PhotoToAdd photo;
      photo.meta.date_taken = Date(rng, 2015, 10);
      if (rng() % 2) {
        photo.meta.age_min = static_cast<double>(rng() % 15);
        photo.meta.age_max = photo.meta.age_min + static_cast<double>(rng() % 3);
        photo.meta.age_estimated = rng() % 2;
      }
      photo.meta.source = c.kind == CaseKind::kSighting ? "volunteer" : "family";
      photo.meta.width = 640;
      photo.meta.height = 480;
      photo.bytes = "synthetic photo " + std::to_string(r.photos) + " " + std::to_string(rng());
      for (int k = 0; k < per_photo && r.faces < faces; ++k, ++r.faces) {
        homeward::store::Face f;
        f.box_x = 100;
        f.box_y = 80;
        f.box_w = f.box_h = 120;
        f.landmarks.resize(2 * kLandmarks);
        for (int j = 0; j < 2 * kLandmarks; ++j) f.landmarks[j] = 100.0f + static_cast<float>(rng() % 120);
        f.width_px = 120;
        f.sharpness = 0.5f;
        f.yaw_deg = static_cast<float>(static_cast<int>(rng() % 60) - 30);
        f.detector_score = 0.9f;
        f.usable = rng() % 10 != 0;
        f.descriptor = gen.Next();
        f.model_id = "faceapi-resnet-1";
        photo.faces.push_back(std::move(f));
      }
      batch.push_back(std::move(photo));
    }
    gen_s += Seconds(g0);
    const auto c0 = Clock::now();
    for (size_t i = 0; i < batch.size(); ++i) {  // one transaction each: timed apart
      absl::StatusOr<int64_t> id = catalog.AddCase(cases[i]);
      if (!id.ok()) Die("AddCase", id.status());
      batch[i].meta.case_id = *id;
    }
    r.case_seconds += Seconds(c0);
    if (one_by_one) {
      for (const auto& p : batch) {
        auto added = catalog.AddPhoto(p.meta, p.bytes, p.faces);
        if (!added.ok()) Die("AddPhoto", added.status());
      }
    } else {
      auto added = catalog.AddPhotoBatch(batch);
      if (!added.ok()) Die("AddPhotoBatch", added.status());
    }
    if (!quiet && (r.photos / batch_photos) % 50 == 0) {
      std::fprintf(stderr, "  %lld faces, %.0f s\n", static_cast<long long>(r.faces),
                   Seconds(start));
    }
  }
  r.seconds = Seconds(start);
  r.gen_seconds = gen_s;
  return r;
}

// ---- sighting -------------------------------------------------------------------------------


// Runs `requests` calls spread over n threads; call(thread, i) -> ok. Returns seconds.
template <typename Call>
double RunConcurrent(int n, int requests, Call call, std::atomic<int>* failures) {
  std::atomic<int> next{0};
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < n; ++t) {
    threads.emplace_back([&, t] {
      for (int i; (i = next++) < requests;) {
        if (!call(t, i)) ++*failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  return Seconds(start);
}

int Sighting(const Flags& f) {
  std::vector<std::string> photos = ReadPhotos(f.folders);
  if (photos.empty()) Die("photos", absl::NotFoundError("no .jpg/.png under --folder"));
  const fs::path data = fs::path(f.dir) / ("service_bench_sighting." + std::to_string(getpid()));
  fs::remove_all(data);
  {
    auto catalog = Catalog::Open(data.string());
    if (!catalog.ok()) Die("Catalog::Open", catalog.status());
    FaceGenerator gen(LoadSeeds(f.seed_file));
    Populate(**catalog, gen, f.gallery_faces, 1, 1000, true);
  }
  homeward::server::ServerConfig config;
  config.listen = "127.0.0.1:0";
  config.data_dir = data.string();
  config.insecure_dev = true;
  config.index_factory = "Flat";
  config.max_queue = 1000;
  config.shutdown_grace_ms = 1000;
  config.calibration = "none";  // models/age_calibration_v1.json is not generated here
  auto server = homeward::server::HomewardServer::Start(config);
  if (!server.ok()) Die("HomewardServer::Start", server.status());
  Gallery* gallery = (*server)->gallery();
  int64_t total_bytes = 0;
  for (const auto& p : photos) total_bytes += static_cast<int64_t>(p.size());
  std::printf("sighting: %zu photos (%.0f KiB average) from", photos.size(),
              total_bytes / 1024.0 / photos.size());
  for (const auto& d : f.folders) std::printf(" %s", d.c_str());
  std::printf("\n  gallery: %lld synthetic MISSING/FOUND/SIGHTING faces, Flat index, %d pipeline "
              "workers, server at %s; %d requests x %d reps per cell, modes interleaved\n",
              static_cast<long long>(f.gallery_faces), gallery->pipeline().workers(),
              (*server)->address().c_str(), f.requests, f.reps);

  std::printf("\n| clients | in-process photos/s | gRPC photos/s | gRPC / in-process | gRPC overhead "
              "| failures |\n|---:|---:|---:|---:|---:|---:|\n");
  for (int n : f.clients) {
    std::vector<std::unique_ptr<pb::Homeward::Stub>> stubs;
    for (int t = 0; t < n; ++t) {
      grpc::ChannelArguments args;
      args.SetInt("homeward.bench.channel", t);  // one connection per client
      args.SetMaxReceiveMessageSize(64 << 20);
      stubs.push_back(pb::Homeward::NewStub(grpc::CreateCustomChannel(
          (*server)->address(), grpc::InsecureChannelCredentials(), args)));
    }
    auto in_process = [&](int, int i) {
      homeward::gallery::SightingInput in;
      in.bytes = photos[i % photos.size()];
      in.seen_on = "2024-05-01";
      in.place = "bench";
      in.reporter_key_id = "dev";
      in.top_k = kTopK;
      return gallery->SubmitSighting(in).ok();
    };
    auto over_grpc = [&](int t, int i) {
      pb::SubmitSightingRequest req;
      req.set_image(photos[i % photos.size()]);
      req.set_seen_on("2024-05-01");
      req.set_place("bench");
      req.set_top_k(kTopK);
      pb::SubmitSightingResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
      grpc::Status s = stubs[t]->SubmitSighting(&ctx, req, &resp);
      if (!s.ok()) std::fprintf(stderr, "grpc: %d %s\n", s.error_code(), s.error_message().c_str());
      return s.ok();
    };
    // Warm up both paths (connections, worker threads).
    std::atomic<int> failures{0};
    RunConcurrent(n, n, over_grpc, &failures);
    RunConcurrent(n, n, in_process, &failures);
    failures = 0;
    double t_in = 0, t_grpc = 0;
    for (int rep = 0; rep < f.reps; ++rep) {
      t_in += RunConcurrent(n, f.requests, in_process, &failures);
      t_grpc += RunConcurrent(n, f.requests, over_grpc, &failures);
    }
    const double in_rate = f.requests * f.reps / t_in, grpc_rate = f.requests * f.reps / t_grpc;
    std::printf("| %d | %.2f | %.2f | %.3f | %+.1f%% | %d |\n", n, in_rate, grpc_rate,
                grpc_rate / in_rate, (in_rate / grpc_rate - 1) * 100, failures.load());
    std::fflush(stdout);
  }
  (*server)->Shutdown();
  server->reset();
  fs::remove_all(data);
  return 0;
}

// ---- populate / catalog-open ---------------------------------------------------------------

int PopulateCommand(const Flags& f) {
  if (f.data_dir.empty() || f.faces <= 0) Die("flags", absl::InvalidArgumentError("--data-dir and --faces"));
  auto seeds = LoadSeeds(f.seed_file);
  FaceGenerator gen(seeds);
  auto catalog = Catalog::Open(f.catalog.empty() ? f.data_dir : f.catalog);
  if (!catalog.ok()) Die("Catalog::Open", catalog.status());
  std::printf("populate: %lld faces, %d per photo, batches of %d photos, descriptors %s, %s\n",
              static_cast<long long>(f.faces), f.faces_per_photo, f.batch,
              seeds.empty() ? "random" : "seeded from real descriptors",
              f.catalog.empty() ? "SQLite catalog" : "PostgreSQL catalog");
  // AddPhoto (one transaction + fsyncs per photo) on a small sample, for the ratio.
  PopulateResult single{};
  if (f.single > 0) {
    single = Populate(**catalog, gen, int64_t{f.single} * f.faces_per_photo, f.faces_per_photo, 1,
                      true, /*one_by_one=*/true);
  }
  PopulateResult bulk = Populate(**catalog, gen, f.faces - single.faces, f.faces_per_photo,
                                 f.batch, false);
  catalog->reset();
  const fs::path dir(f.data_dir);
  const int64_t db = BytesUnder(dir / "catalog.db") + BytesUnder(dir / "catalog.db-wal");
  const int64_t photos = BytesUnder(dir / "photos");
  std::printf("\n| path | photos | faces | seconds | faces/s | photos/s |\n|---|---:|---:|---:|---:|---:|\n");
  auto row = [](const std::string& name, const PopulateResult& r) {
    const double s = r.seconds - r.gen_seconds - r.case_seconds;
    std::printf("| %s | %lld | %lld | %.2f | %.0f | %.1f |\n", name.c_str(),
                static_cast<long long>(r.photos), static_cast<long long>(r.faces), s, r.faces / s,
                r.photos / s);
  };
  if (f.single > 0) row("AddPhoto, 1 photo per transaction", single);
  row("AddPhotoBatch, " + std::to_string(f.batch) + " photos per transaction", bulk);
  if (!f.catalog.empty()) return 0;  // nothing of the catalog is on local disk
  std::printf("(not included: descriptor generation %.1f s; AddCase, one case per photo and one "
              "transaction each, %.1f s = %.1f ms per case)\n",
              single.gen_seconds + bulk.gen_seconds, single.case_seconds + bulk.case_seconds,
              1e3 * (single.case_seconds + bulk.case_seconds) / (single.photos + bulk.photos));
  const int64_t n = single.faces + bulk.faces;
  std::printf("\n| on disk | bytes | per face |\n|---|---:|---:|\n");
  std::printf("| catalog.db (+wal) | %lld | %.0f B |\n", static_cast<long long>(db),
              static_cast<double>(db) / n);
  std::printf("| photos/ (%lld files, tiny synthetic bytes) | %lld | %.0f B |\n",
              static_cast<long long>(FilesUnder(dir / "photos")), static_cast<long long>(photos),
              static_cast<double>(photos) / n);
  return 0;
}

int MoveUpCommand(const Flags& f) {
  if (f.data_dir.empty() || f.catalog.empty()) {
    Die("flags", absl::InvalidArgumentError("--data-dir and --catalog (an empty database)"));
  }
  homeward::store::MoveUpOptions options;
  options.progress = [](absl::string_view line) {
    std::printf("  %.*s\n", static_cast<int>(line.size()), line.data());
    std::fflush(stdout);
  };
  auto report = homeward::store::MoveUp(f.data_dir, f.catalog, options);
  if (!report.ok()) Die("MoveUp", report.status());
  int64_t faces = 0, photos = 0;
  for (const auto& t : report->tables) {
    if (t.name == "faces") faces = t.target_rows;
    if (t.name == "photos") photos = t.target_rows;
  }
  std::printf("\n| faces | photos | photo files (MB) | seconds | faces/s | PostgreSQL database | per face |\n"
              "|---:|---:|---:|---:|---:|---:|---:|\n");
  std::printf("| %lld | %lld | %lld (%.1f) | %.1f | %.0f | %.0f MB | %.0f B |\n",
              static_cast<long long>(faces), static_cast<long long>(photos),
              static_cast<long long>(report->photo_files), report->photo_bytes / 1e6,
              report->copy_seconds, faces / report->copy_seconds, report->database_bytes / 1e6,
              faces > 0 ? static_cast<double>(report->database_bytes) / faces : 0.0);
  return 0;
}

int CatalogOpenCommand(const Flags& f) {
  // Open serves at once; the orphan sweep runs on its own thread (the second column: until it
  // has finished).
  std::printf("\n| Catalog::Open | Open seconds | sweep done after seconds |\n|---|---:|---:|\n");
  for (bool sweep : {true, false, true}) {
    homeward::store::CatalogOptions o;
    o.sweep_orphan_files = sweep;
    const auto start = Clock::now();
    auto c = Catalog::Open(f.data_dir, o);
    if (!c.ok()) Die("Catalog::Open", c.status());
    const double open_s = Seconds(start);
    while (!(*c)->orphan_sweep_done()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::printf("| sweep_orphan_files=%s (%lld files under photos/) | %.2f | %.2f |\n",
                sweep ? "true" : "false",
                static_cast<long long>(FilesUnder(fs::path(f.data_dir) / "photos")), open_s,
                Seconds(start));
  }
  return 0;
}

// ---- open: restart, RSS, search latency ----------------------------------------------------

// The Faiss index inside a FaceIndex snapshot (see index/face_index.cc for the layout).
std::unique_ptr<faiss::Index> ReadSnapshotIndex(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() < 64) return nullptr;
  uint32_t factory_len = 0;
  std::memcpy(&factory_len, bytes.data() + 8 + 4 + 4 + 8, 4);
  const size_t begin = 8 + 4 + 4 + 8 + 4 + factory_len;
  uint64_t faiss_len = 0;
  std::memcpy(&faiss_len, bytes.data() + bytes.size() - 24, 8);
  faiss::VectorIOReader reader;
  reader.data.assign(bytes.begin() + begin, bytes.begin() + begin + faiss_len);
  return std::unique_ptr<faiss::Index>(faiss::read_index(&reader));
}

int OpenCommand(const Flags& f) {
  GalleryOptions go;
  go.data_dir = f.data_dir;
  go.catalog = f.catalog;
  go.pipeline.recognition_model_path =
      std::string(HOMEWARD_SOURCE_DIR) + "/models/faceapi_1.7.15_resnet.dat";
  go.index.factory = f.factory;
  go.index.ivf_nprobe = f.nprobe;
  go.rebuild_indexes = f.rebuild;
  go.calibration_path = f.calibration;
  const fs::path snaps = fs::path(f.data_dir) / "index";
  const bool had_snapshots = fs::exists(snaps / "missing.snap") && !f.rebuild;
  const double rss0 = RssMiB();
  const auto start = Clock::now();
  auto gallery = Gallery::Open(go);
  if (!gallery.ok()) Die("Gallery::Open", gallery.status());
  const double open_s = Seconds(start);
  const double rss1 = RssMiB(), peak = PeakRssMiB();
  auto stats = (*gallery)->Stats();
  if (!stats.ok()) Die("Stats", stats.status());
  {
    // GetStats' totals come from counters the catalog keeps with each change.
    std::vector<double> t;
    for (int i = 0; i < 50; ++i) {
      const auto s0 = Clock::now();
      if (!(*gallery)->Stats().ok()) Die("Stats", absl::InternalError("failed"));
      t.push_back(Seconds(s0) * 1e3);
    }
    std::printf("\nGallery::Stats (GetStats totals) over 50 calls: p50 %.3f ms, max %.3f ms\n",
                Percentile(t, 0.5), *std::max_element(t.begin(), t.end()));
  }
  int64_t faces = 0, searchable = 0;
  for (const auto& s : *stats) {
    faces += s.faces;
    if (s.kind != CaseKind::kSighting) searchable += s.indexed;
  }
  std::printf("\nopen: %s, %lld faces (%lld MISSING+FOUND searched), factory %s nprobe %d, "
              "ranking %s\n",
              f.data_dir.c_str(), static_cast<long long>(faces),
              static_cast<long long>(searchable), f.factory.c_str(), f.nprobe,
              f.calibration.empty() ? "by distance" : f.calibration.c_str());
  std::printf("\n| restart | Gallery::Open s | RSS before MiB | RSS after MiB | delta MiB | delta per "
              "face | peak RSS MiB |\n|---|---:|---:|---:|---:|---:|---:|\n");
  std::printf("| %s | %.2f | %.0f | %.0f | %.0f | %.0f B | %.0f |\n",
              had_snapshots ? "snapshots valid (load)" : "no snapshots (rebuild + train)", open_s,
              rss0, rss1, rss1 - rss0, faces ? (rss1 - rss0) * (1 << 20) / faces : 0.0, peak);
  std::fflush(stdout);
  if (faces == 0 || f.queries <= 0) return 0;

  // Query faces: random stored ids (ids are dense in a fresh catalog).
  std::mt19937_64 rng(7);
  struct Query {
    int64_t id;
    std::vector<float> descriptor;
  };
  std::vector<Query> queries;
  Catalog& catalog = (*gallery)->catalog();
  while (static_cast<int>(queries.size()) < f.queries) {
    const int64_t id = 1 + static_cast<int64_t>(rng() % faces);
    auto attrs = catalog.GetFaceAttributes({id});
    if (!attrs.ok() || attrs->empty()) continue;
    auto list = catalog.ListFaces((*attrs)[0].photo_id);
    if (!list.ok()) continue;
    for (const auto& face : *list) {
      if (face.id == id) queries.push_back({id, face.descriptor});
    }
  }

  // Raw Faiss: the gallery's own snapshots of the two searched collections.
  std::vector<std::unique_ptr<faiss::Index>> raw;
  for (const char* kind : {"missing", "found"}) {
    auto idx = ReadSnapshotIndex((snaps / (std::string(kind) + ".snap")).string());
    if (!idx) Die("snapshot", absl::DataLossError(kind));
    if (auto* ivf = faiss::ivflib::try_extract_index_ivf(idx.get())) ivf->nprobe = f.nprobe;
    raw.push_back(std::move(idx));
  }

  // gRPC: the production service class over this gallery, on a loopback port.
  std::unique_ptr<homeward::server::HomewardService> service;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<pb::Homeward::Stub> stub;
  if (f.grpc) {
    homeward::server::ServiceOptions so;
    so.insecure_dev = true;
    so.threads = 4;
    so.max_queue = 64;
    service = std::make_unique<homeward::server::HomewardService>(gallery->get(), nullptr, so);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service.get());
    server = builder.BuildAndStart();
    stub = pb::Homeward::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                                     grpc::InsecureChannelCredentials()));
  }

  omp_set_num_threads(1);  // searches are single-threaded, as FaceIndex does for its calls
  const int k = kTopK * 4;  // what Gallery asks each collection for when top_k = 10
  std::vector<float> dist(k);
  std::vector<faiss::Index::idx_t> labels(k);
  std::vector<double> t_raw, t_gallery, t_grpc;
  int failures = 0;
  homeward::gallery::SearchQuery q;
  q.top_k = kTopK;
  const int warmup = std::min(20, f.queries / 10);
  // CPU time of this thread: raw Faiss and Gallery::SearchFace run entirely on it (one OpenMP
  // thread), so their CPU times compare the work done whatever the machine's load.
  auto thread_cpu_ms = [] {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
  };
  std::vector<double> c_raw, c_gallery;
  // The age rules (gallery/age.h): a stored face's query carries its own age evidence, so
  // SearchFace leaves out the age-inconsistent candidates and widens its search to fill top_k
  // with consistent cases. `q_all` asks for every candidate (the rules checked but not
  // filtering), which is the search without the rules' extra work: interleaved per query.
  homeward::gallery::SearchQuery q_all = q;
  q_all.include_age_inconsistent = true;
  std::vector<double> t_all, c_all;
  int64_t left_out = 0, with_left_out = 0;
  for (size_t i = 0; i < queries.size(); ++i) {
    double c0 = thread_cpu_ms();
    auto t0 = Clock::now();
    for (auto& idx : raw) idx->search(1, queries[i].descriptor.data(), k, dist.data(), labels.data());
    const double raw_ms = Seconds(t0) * 1e3;
    const double raw_cpu = thread_cpu_ms() - c0;
    // The two gallery searches read the same inverted lists: whichever runs second finds them
    // in the CPU cache, so they take turns going first.
    auto timed = [&](const homeward::gallery::SearchQuery& query, double* ms, double* cpu) {
      const double c = thread_cpu_ms();
      const auto t = Clock::now();
      auto result = (*gallery)->SearchFace(queries[i].id, query);
      *ms = Seconds(t) * 1e3;
      *cpu = thread_cpu_ms() - c;
      if (!result.ok()) ++failures;
      return result;
    };
    double gallery_ms = 0, gallery_cpu = 0, all_ms = 0, all_cpu = 0;
    absl::StatusOr<homeward::gallery::QueryResult> r;
    if (i % 2 == 0) {
      r = timed(q, &gallery_ms, &gallery_cpu);
      (void)timed(q_all, &all_ms, &all_cpu);  // a failure is counted in `failures`
    } else {
      (void)timed(q_all, &all_ms, &all_cpu);
      r = timed(q, &gallery_ms, &gallery_cpu);
    }
    double grpc_ms = 0;
    if (stub) {
      pb::SearchRequest req;
      req.set_face_id(std::to_string(queries[i].id));
      req.set_top_k(kTopK);
      pb::SearchResponse resp;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      t0 = Clock::now();
      grpc::Status s = stub->Search(&ctx, req, &resp);
      grpc_ms = Seconds(t0) * 1e3;
      if (!s.ok()) ++failures;
    }
    if (static_cast<int>(i) < warmup) continue;
    if (r.ok()) {
      int n = 0;
      for (const auto& l : r->age_left_out) n += l.count;
      left_out += n;
      with_left_out += n > 0;
    }
    t_all.push_back(all_ms);
    c_all.push_back(all_cpu);
    t_raw.push_back(raw_ms);
    t_gallery.push_back(gallery_ms);
    c_raw.push_back(raw_cpu);
    c_gallery.push_back(gallery_cpu);
    if (stub) t_grpc.push_back(grpc_ms);
  }
  const double raw50 = Percentile(t_raw, 0.5), raw99 = Percentile(t_raw, 0.99);
  std::printf("\n| search by face id (%zu queries, top_k %d, 1 client) | p50 ms | p99 ms | p50 / raw "
              "| p99 / raw |\n|---|---:|---:|---:|---:|\n",
              t_raw.size(), kTopK);
  auto row = [&](const char* name, const std::vector<double>& t) {
    const double p50 = Percentile(t, 0.5), p99 = Percentile(t, 0.99);
    std::printf("| %s | %.3f | %.3f | %.2f | %.2f |\n", name, p50, p99, p50 / raw50, p99 / raw99);
  };
  row("raw Faiss (same snapshots, MISSING + FOUND, k=40 each)", t_raw);
  row("Gallery::SearchFace", t_gallery);
  if (stub) row("gRPC Search{face_id} (HomewardService, loopback)", t_grpc);
  const double craw50 = Percentile(c_raw, 0.5), cgal50 = Percentile(c_gallery, 0.5);
  std::printf("\n| thread CPU time per query | raw Faiss | Gallery::SearchFace | ratio |\n"
              "|---|---:|---:|---:|\n| p50 ms | %.3f | %.3f | %.2f |\n| p99 ms | %.3f | %.3f | "
              "%.2f |\n",
              craw50, cgal50, cgal50 / craw50, Percentile(c_raw, 0.99),
              Percentile(c_gallery, 0.99),
              Percentile(c_gallery, 0.99) / Percentile(c_raw, 0.99));
  const double call50 = Percentile(c_all, 0.5);
  std::printf("\n| age rules (same queries, interleaved) | wall p50 ms | wall p99 ms | CPU p50 ms | "
              "CPU p99 ms |\n|---|---:|---:|---:|---:|\n");
  std::printf("| all candidates (include_age_inconsistent) | %.3f | %.3f | %.3f | %.3f |\n",
              Percentile(t_all, 0.5), Percentile(t_all, 0.99), call50, Percentile(c_all, 0.99));
  std::printf("| age-consistent only (the default) | %.3f | %.3f | %.3f | %.3f |\n",
              Percentile(t_gallery, 0.5), Percentile(t_gallery, 0.99), cgal50,
              Percentile(c_gallery, 0.99));
  std::printf("| ratio rules on / all | %.2f | %.2f | %.2f | %.2f |\n",
              Percentile(t_gallery, 0.5) / Percentile(t_all, 0.5),
              Percentile(t_gallery, 0.99) / Percentile(t_all, 0.99), cgal50 / call50,
              Percentile(c_gallery, 0.99) / Percentile(c_all, 0.99));
  std::printf("\ncases left out for their age: %.1f per query on average; %lld of %zu queries "
              "left some out\n",
              t_gallery.empty() ? 0.0 : static_cast<double>(left_out) / t_gallery.size(),
              static_cast<long long>(with_left_out), t_gallery.size());
  if (failures) std::printf("failures: %d\n", failures);
  std::fflush(stdout);
  if (server) server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  server.reset();
  service.reset();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f = ParseFlags(argc, argv);
  // The service logs one line per call (part of the measured cost); keep it off stdout.
  spdlog::set_default_logger(spdlog::stderr_logger_mt("bench"));
  if (f.command == "sighting") return Sighting(f);
  if (f.command == "populate") return PopulateCommand(f);
  if (f.command == "catalog-open") return CatalogOpenCommand(f);
  if (f.command == "move-up") return MoveUpCommand(f);
  if (f.command == "open") return OpenCommand(f);
  std::fprintf(stderr, "unknown command %s\n", f.command.c_str());
  return 2;
}
