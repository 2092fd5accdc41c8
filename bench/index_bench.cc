// index_bench: FaceIndex against raw Faiss on face-like descriptors.
//
// Gallery: identities as clusters (1..9 samples each, ~5 on average); queries are new samples
// of gallery identities (a probe photo of a known child). With --seed-file (JSON lines from
// `homeward embed --json`), identity centres are real dlib descriptors plus noise; without it,
// random centres around a shared mean. Prints the measured distance statistics.
//
// For each size and factory: build time, RAM per face (RSS delta), single-query latency
// p50/p99 on one thread (k=50), recall against exact search (in-radius: fraction of exact
// neighbours nearer than 0.7 that are returned; top-50: fraction of the exact top 50),
// snapshot save/load time, and the same numbers for raw Faiss (index_factory without the
// FaceIndex facade) as a ratio. The floor is one pass summing the gallery's floats.
//
// Usage: OMP_WAIT_POLICY=PASSIVE index_bench [--sizes 100000,1000000]
//          [--factories "IDMap2,Flat;HNSW32;IVF1024,Flat"] [--queries 300]
//          [--seed-file /tmp/lfw_desc.jsonl] [--train 100000] [--ef 64,128,256]
//          [--nprobe 16,32,64] [--dir /tmp] [--no-raw-approx]
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "faiss/IndexHNSW.h"
#include "faiss/IndexIVF.h"
#include "faiss/index_factory.h"
#include "index/face_index.h"
#include "nlohmann/json.hpp"

namespace {

using homeward::index::FaceIndex;
using homeward::index::Hit;
using homeward::index::IndexOptions;
using Clock = std::chrono::steady_clock;
using idx_t = faiss::Index::idx_t;

constexpr int kDim = 128;
constexpr int kK = 50;
constexpr float kRadius = 0.7f;
double g_floor_ms = 0;  // memory-bandwidth floor of the current size

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

double RssBytes() {
  long pages = 0, resident = 0;
  std::ifstream("/proc/self/statm") >> pages >> resident;
  return static_cast<double>(resident) * sysconf(_SC_PAGESIZE);
}

struct Flags {
  std::vector<int64_t> sizes = {100000};
  std::vector<std::string> factories = {"IDMap2,Flat", "HNSW32", "IVF1024,Flat"};
  int queries = 300;
  std::string seed_file;
  int64_t train = 100000;
  std::vector<int64_t> ef = {64, 128, 256};
  std::vector<int64_t> nprobe = {16, 32, 64};
  std::string dir = "/tmp";
  bool raw_approx = true;
};

std::vector<int64_t> ParseInts(const std::string& s) {
  std::vector<int64_t> out;
  for (absl::string_view part : absl::StrSplit(s, ',', absl::SkipEmpty())) {
    int64_t v = 0;
    if (!absl::SimpleAtoi(part, &v)) {
      std::fprintf(stderr, "bad number %s\n", std::string(part).c_str());
      std::exit(2);
    }
    out.push_back(v);
  }
  return out;
}

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--sizes") f.sizes = ParseInts(next());
    else if (a == "--factories") f.factories = absl::StrSplit(next(), ';', absl::SkipEmpty());
    else if (a == "--queries") f.queries = static_cast<int>(ParseInts(next()).at(0));
    else if (a == "--seed-file") f.seed_file = next();
    else if (a == "--train") f.train = ParseInts(next()).at(0);
    else if (a == "--ef") f.ef = ParseInts(next());
    else if (a == "--nprobe") f.nprobe = ParseInts(next());
    else if (a == "--dir") f.dir = next();
    else if (a == "--no-raw-approx") f.raw_approx = false;
    else {
      std::fprintf(stderr, "unknown flag %s (see the comment at the top of index_bench.cc)\n",
                   a.c_str());
      std::exit(2);
    }
  }
  return f;
}

std::vector<std::vector<float>> LoadSeeds(const std::string& path) {
  std::vector<std::vector<float>> seeds;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("descriptor")) continue;
    auto d = j["descriptor"].get<std::vector<float>>();
    if (d.size() == kDim) seeds.push_back(std::move(d));
  }
  return seeds;
}

void AddNoise(std::mt19937_64& rng, float norm, float* v) {
  std::normal_distribution<float> g(0.0f, norm / std::sqrt(static_cast<float>(kDim)));
  for (int j = 0; j < kDim; ++j) v[j] += g(rng);
}

struct Data {
  std::vector<float> gallery;  // n * kDim, id = row
  std::vector<float> queries;
};

Data MakeData(int64_t n, int queries, const std::vector<std::vector<float>>& seeds) {
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<int> samples(1, 9);
  std::vector<float> mean(kDim, 0.0f);
  AddNoise(rng, 0.75f, mean.data());
  Data d;
  d.gallery.resize(n * kDim);
  std::vector<std::vector<float>> centers;
  for (int64_t row = 0; row < n;) {
    std::vector<float> c(kDim);
    if (!seeds.empty()) {
      c = seeds[rng() % seeds.size()];
      AddNoise(rng, 0.5f, c.data());
    } else {
      c = mean;
      AddNoise(rng, 0.65f, c.data());
    }
    for (int s = samples(rng); s > 0 && row < n; --s, ++row) {
      float* v = &d.gallery[row * kDim];
      std::copy(c.begin(), c.end(), v);
      AddNoise(rng, 0.28f, v);
    }
    centers.push_back(std::move(c));
  }
  for (int q = 0; q < queries; ++q) {
    std::vector<float> v = centers[rng() % centers.size()];
    AddNoise(rng, 0.28f, v.data());
    d.queries.insert(d.queries.end(), v.begin(), v.end());
  }
  // Distance statistics on the first identities (rows are grouped by identity).
  double norm = 0, within = 0, between = 0;
  int nw = 0, nb = 0;
  for (int64_t i = 0; i + 1 < std::min<int64_t>(n, 20000); ++i) {
    const float* a = &d.gallery[i * kDim];
    const float* b = &d.gallery[(i + 1) * kDim];
    double s = 0, na = 0;
    for (int j = 0; j < kDim; ++j) {
      s += (a[j] - b[j]) * (a[j] - b[j]);
      na += a[j] * a[j];
    }
    norm += std::sqrt(na);
    // Neighbouring rows are the same identity when their distance is small; classify by the
    // generator instead: recompute with a far row for the between statistic.
    const float* c = &d.gallery[((i * 7919) % n) * kDim];
    double t = 0;
    for (int j = 0; j < kDim; ++j) t += (a[j] - c[j]) * (a[j] - c[j]);
    if (std::sqrt(s) < 0.65) {
      within += std::sqrt(s);
      ++nw;
    }
    between += std::sqrt(t);
    ++nb;
  }
  std::printf("data: %lld faces, %zu identities, mean norm %.2f, within-identity %.2f, "
              "random pair %.2f (%s)\n",
              static_cast<long long>(n), centers.size(), norm / nb, nw ? within / nw : 0.0,
              between / nb, seeds.empty() ? "random centres" : "seeded from real descriptors");
  return d;
}

struct Stats {
  double p50_ms = 0, p99_ms = 0, recall_radius = 0, recall_top = 0;
};

Stats Summarize(std::vector<double> lat, const std::vector<std::vector<Hit>>& got,
                const std::vector<std::vector<Hit>>& truth) {
  Stats s;
  std::sort(lat.begin(), lat.end());
  s.p50_ms = lat[lat.size() / 2] * 1e3;
  s.p99_ms = lat[std::min(lat.size() - 1, lat.size() * 99 / 100)] * 1e3;
  int64_t in_radius = 0, in_radius_found = 0, top = 0, top_found = 0;
  for (size_t q = 0; q < truth.size(); ++q) {
    std::unordered_set<int64_t> ids;
    for (const Hit& h : got[q]) ids.insert(h.id);
    for (const Hit& h : truth[q]) {
      ++top;
      top_found += ids.count(h.id);
      if (h.distance < kRadius) {
        ++in_radius;
        in_radius_found += ids.count(h.id);
      }
    }
  }
  s.recall_radius = in_radius ? static_cast<double>(in_radius_found) / in_radius : 1.0;
  s.recall_top = top ? static_cast<double>(top_found) / top : 1.0;
  return s;
}

// Raw Faiss, one query at a time on one thread, k=50; labels are gallery rows.
Stats RawSearch(const faiss::Index& index, const faiss::SearchParameters* params,
                const Data& d, int queries, const std::vector<std::vector<Hit>>* truth,
                std::vector<std::vector<Hit>>* out) {
  omp_set_num_threads(1);
  std::vector<double> lat;
  std::vector<std::vector<Hit>> got(queries);
  std::vector<float> dist(kK);
  std::vector<idx_t> labels(kK);
  for (int q = 0; q < queries; ++q) {
    const auto t0 = Clock::now();
    index.search(1, &d.queries[q * kDim], kK, dist.data(), labels.data(), params);
    lat.push_back(Seconds(t0));
    for (int i = 0; i < kK; ++i) {
      if (labels[i] >= 0) got[q].push_back(Hit{labels[i], std::sqrt(std::max(dist[i], 0.0f))});
    }
  }
  omp_set_num_threads(omp_get_num_procs());
  Stats s = Summarize(lat, got, truth ? *truth : got);
  if (out) *out = std::move(got);
  return s;
}

Stats FaceSearch(const FaceIndex& index, const Data& d, int queries,
                 const std::vector<std::vector<Hit>>& truth) {
  std::vector<double> lat;
  std::vector<std::vector<Hit>> got(queries);
  for (int q = 0; q < queries; ++q) {
    const auto t0 = Clock::now();
    auto hits = index.Search(&d.queries[q * kDim], kK);
    lat.push_back(Seconds(t0));
    if (!hits.ok()) {
      std::fprintf(stderr, "search: %s\n", hits.status().ToString().c_str());
      std::exit(1);
    }
    got[q] = std::move(*hits);
  }
  return Summarize(lat, got, truth);
}

void Row(const std::string& name, const std::string& setting, const Stats& s, const Stats& raw,
         bool has_raw) {
  std::printf("  %-14s %-12s p50 %7.3f ms  p99 %7.3f ms  in-radius %.4f  top50 %.4f", name.c_str(),
              setting.c_str(), s.p50_ms, s.p99_ms, s.recall_radius, s.recall_top);
  if (has_raw) {
    std::printf("  | raw p50 %7.3f ms (x%.2f) in-radius %.4f", raw.p50_ms, s.p50_ms / raw.p50_ms,
                raw.recall_radius);
  }
  std::printf("\n");
}

void BenchFactory(const Flags& f, const std::string& factory, const Data& d, int64_t n,
                  const std::vector<std::vector<Hit>>& truth, const Stats& flat_raw) {
  const bool is_ivf = factory.find("IVF") != std::string::npos;
  const bool is_hnsw = !is_ivf && factory.find("HNSW") != std::string::npos;
  const bool is_flat = !is_ivf && !is_hnsw;
  std::vector<int64_t> ids(n);
  for (int64_t i = 0; i < n; ++i) ids[i] = i;
  const int64_t train_n = std::min(n, f.train);

  // FaceIndex build.
  double rss0 = RssBytes();
  auto t0 = Clock::now();
  IndexOptions options;
  options.factory = factory;
  auto index = FaceIndex::Create(options);
  if (!index.ok()) {
    std::printf("  %s: %s\n", factory.c_str(), index.status().ToString().c_str());
    return;
  }
  if (auto s = (*index)->Train(d.gallery.data(), train_n); !s.ok()) {
    std::printf("  %s train: %s\n", factory.c_str(), s.ToString().c_str());
    return;
  }
  if (auto s = (*index)->Add(ids, d.gallery.data()); !s.ok()) {
    std::printf("  %s add: %s\n", factory.c_str(), s.ToString().c_str());
    return;
  }
  const double build_s = Seconds(t0);
  const double bytes_per_face = (RssBytes() - rss0) / n;
  const std::string path = f.dir + "/index_bench_" + std::to_string(getpid()) + ".snap";
  t0 = Clock::now();
  if (auto s = (*index)->Save(path, 1); !s.ok()) {
    std::printf("  save: %s\n", s.ToString().c_str());
    return;
  }
  const double save_s = Seconds(t0);
  index->reset();

  // Raw Faiss build with the same factory (Flat: the truth index is the raw counterpart).
  std::unique_ptr<faiss::Index> raw;
  double raw_build_s = 0;
  if (!is_flat && f.raw_approx) {
    t0 = Clock::now();
    raw = std::unique_ptr<faiss::Index>(faiss::index_factory(kDim, factory.c_str()));
    raw->train(train_n, d.gallery.data());
    raw->add(n, d.gallery.data());
    raw_build_s = Seconds(t0);
  }

  std::printf("  %-14s build %.1f s%s  RAM %.0f B/face  save %.2f s", factory.c_str(), build_s,
              raw ? (" (raw " + std::to_string(raw_build_s).substr(0, 5) + " s)").c_str() : "",
              bytes_per_face, save_s);
  std::vector<int64_t> settings = is_hnsw ? f.ef : is_ivf ? f.nprobe : std::vector<int64_t>{0};
  bool first = true;
  for (int64_t setting : settings) {
    IndexOptions load_options;
    if (is_hnsw) load_options.hnsw_ef_search = static_cast<int>(setting);
    if (is_ivf) load_options.ivf_nprobe = static_cast<int>(setting);
    t0 = Clock::now();
    auto loaded = FaceIndex::Load(path, load_options, nullptr);
    const double load_s = Seconds(t0);
    if (!loaded.ok()) {
      std::printf("\n  load: %s\n", loaded.status().ToString().c_str());
      return;
    }
    if (first) std::printf("  load %.2f s\n", load_s);
    first = false;
    const Stats s = FaceSearch(**loaded, d, f.queries, truth);
    Stats raw_stats = flat_raw;
    std::string name = is_hnsw ? "efSearch=" : is_ivf ? "nprobe=" : "exact";
    if (!is_flat) name += std::to_string(setting);
    if (raw) {
      faiss::SearchParametersHNSW hp;
      faiss::SearchParametersIVF ip;
      hp.efSearch = static_cast<int>(setting);
      // Faiss 1.7.3 ignores SearchParametersHNSW::efSearch: set it on the index.
      if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(raw.get())) {
        hnsw->hnsw.efSearch = static_cast<int>(setting);
      }
      ip.nprobe = static_cast<size_t>(setting);
      raw_stats = RawSearch(*raw, is_hnsw ? static_cast<faiss::SearchParameters*>(&hp) : &ip,
                            d, f.queries, &truth, nullptr);
    }
    Row("", name, s, raw_stats, is_flat || raw != nullptr);
    if (is_flat) std::printf("  %-27s p50 = x%.2f floor\n", "", s.p50_ms / g_floor_ms);
  }
  std::remove(path.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const Flags f = ParseFlags(argc, argv);
  std::vector<std::vector<float>> seeds;
  if (!f.seed_file.empty()) {
    seeds = LoadSeeds(f.seed_file);
    std::printf("seed file %s: %zu descriptors\n", f.seed_file.c_str(), seeds.size());
  }
  std::printf("threads: search 1 (OMP %d for builds), OMP_WAIT_POLICY=%s, k=%d, %d queries\n",
              omp_get_max_threads(), getenv("OMP_WAIT_POLICY") ? getenv("OMP_WAIT_POLICY") : "",
              kK, f.queries);
  for (int64_t n : f.sizes) {
    std::printf("\n== %lld faces ==\n", static_cast<long long>(n));
    const Data d = MakeData(n, f.queries, seeds);

    // Memory-bandwidth floor: one pass summing the gallery, best of 5.
    double floor_s = 1e9;
    for (int r = 0; r < 5; ++r) {
      const auto t0 = Clock::now();
      // Integer adds over the raw bits: reassociable, so the compiler vectorizes and the
      // loop is bound by memory, not by float-add latency.
      const auto* words = reinterpret_cast<const uint64_t*>(d.gallery.data());
      uint64_t acc = 0;
      for (size_t i = 0; i < d.gallery.size() / 2; ++i) acc += words[i];
      floor_s = std::min(floor_s, Seconds(t0));
      if (acc == 12345) std::printf("!");
    }
    g_floor_ms = floor_s * 1e3;
    std::printf("  floor: sum over %.0f MB in %.2f ms (%.1f GB/s)\n",
                d.gallery.size() * 4 / 1e6, floor_s * 1e3, d.gallery.size() * 4 / floor_s / 1e9);

    // Exact truth from raw Faiss Flat (also the raw counterpart of the exact FaceIndex).
    std::vector<std::vector<Hit>> truth;
    std::unique_ptr<faiss::Index> flat(faiss::index_factory(kDim, "Flat"));
    flat->add(n, d.gallery.data());
    const Stats flat_raw = RawSearch(*flat, nullptr, d, f.queries, nullptr, &truth);
    flat.reset();
    double in_radius = 0;
    for (const auto& t : truth) {
      for (const Hit& h : t) in_radius += h.distance < kRadius;
    }
    std::printf("  exact neighbours nearer than %.1f: %.1f per query; raw Flat p50 %.2f ms "
                "(x%.2f floor)\n",
                kRadius, in_radius / truth.size(), flat_raw.p50_ms,
                flat_raw.p50_ms / (floor_s * 1e3));
    for (const std::string& factory : f.factories) {
      BenchFactory(f, factory, d, n, truth, flat_raw);
    }
  }
  return 0;
}
