// index_bench: FaceIndex against raw Faiss on face-like descriptors.
//
// Gallery: identities as clusters (1..9 samples each, ~5 on average); queries are new samples
// of gallery identities (a probe photo of a known child). With --seed-file (JSON lines from
// `homeward embed --json`), identity centres are real dlib descriptors plus noise; without it,
// random centres around a shared mean. Prints the measured distance statistics.
//
// Ground truth: exact k=50 neighbours of every query, computed once per size with Faiss's
// BLAS path (all queries in one knn_L2sqr call over the gallery array; no copy).
//
// For each size and factory: build time, RAM per face (RSS growth while building, and while
// loading the snapshot), single-query latency p50/p99 on one thread (k=50), recall against
// the ground truth (in-radius: fraction of exact neighbours nearer than 0.7 that are
// returned; top-50: fraction of the exact top 50), snapshot save/load time. Latency is also
// reported as CPU time of the searching thread (CLOCK_THREAD_CPUTIME_ID): on a shared, loaded
// machine the wall clock mostly measures the wait for a core, while CPU time (memory stalls
// included) is what the search itself costs. Raw Faiss
// (index_factory with the same factory string, no FaceIndex facade) is built from the same
// vectors and searched with the same setting; FaceIndex and raw queries are interleaved
// (alternating which goes first) so that load on the machine hits both alike. The floor is
// the fastest streaming read of the gallery's floats (memory bandwidth; see MeasureFloor),
// measured in the same run (and,
// for exact search, again right after the searches).
//
// Memory: the gallery array, one FaceIndex and one raw index are alive at a time; the
// FaceIndex is saved and dropped before the raw index is built, and the gallery is freed
// after the last factory's builds. Peak RSS (VmHWM) is printed after each factory.
//
// Usage: OMP_WAIT_POLICY=PASSIVE index_bench [--sizes 100000,1000000]
//          [--factories "IDMap2,Flat;HNSW32;IVF1024,Flat"] [--queries 300]
//          [--exact-queries N (default --queries; exact search is slow at 5M)]
//          [--seed-file /tmp/lfw_desc.jsonl] [--train 100000] [--ef 64,128,256]
//          [--nprobe 16,32,64] [--dir /tmp] [--no-raw-approx] [--raw-from-snapshot]
//
// --raw-from-snapshot: for approximate indexes, raw Faiss is the index read back with
// faiss::read_index from the Faiss section of FaceIndex's snapshot (the inner index, without
// the IDMap2), instead of a second build: the same graph or lists, so the search comparison
// is exact, and an HNSW build (the slow part at 1M) happens once. No raw build time then.
// --snapshot PATH: skip the FaceIndex build and search PATH, a snapshot this bench saved for
// the same --sizes, --factories and --seed-file (the data are regenerated from a fixed seed);
// a hard link to the bench's temporary snapshot keeps it. Combine with --raw-from-snapshot.
#include <omp.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "faiss/IndexFlat.h"
#include "faiss/IndexHNSW.h"
#include "faiss/IndexIDMap.h"
#include "faiss/IndexIVF.h"
#include "faiss/index_factory.h"
#include "faiss/index_io.h"
#include "faiss/utils/distances.h"
#include "index/face_index.h"
#include "index/internal/l2_scan.h"
#include "bench/bench_util.h"

namespace {

using homeward::bench::AddNoise;
using homeward::bench::FaceGenerator;
using homeward::bench::FlagValue;
using homeward::bench::kDim;
using homeward::bench::LoadSeeds;
using homeward::bench::Seconds;
using homeward::index::FaceIndex;
using homeward::index::Hit;
using homeward::index::IndexOptions;
using Clock = homeward::bench::Clock;
using idx_t = faiss::Index::idx_t;

constexpr int kK = 50;
constexpr float kRadius = 0.7f;

// CPU time of the calling thread: what a search costs when it is not waiting for a core.
double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec * 1e-9;
}

double RssBytes() {
  long pages = 0, resident = 0;
  std::ifstream("/proc/self/statm") >> pages >> resident;
  return static_cast<double>(resident) * sysconf(_SC_PAGESIZE);
}

// VmHWM: the peak resident set of the process so far, in bytes.
double PeakRssBytes() {
  std::ifstream in("/proc/self/status");
  std::string key;
  while (in >> key) {
    if (key == "VmHWM:") {
      double kb = 0;
      in >> kb;
      return kb * 1024;
    }
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

// The three load averages, as /proc/loadavg prints them.
std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

struct Flags {
  std::vector<int64_t> sizes = {100000};
  std::vector<std::string> factories = {"IDMap2,Flat", "HNSW32", "IVF1024,Flat"};
  int queries = 300;
  int exact_queries = -1;  // -1: same as queries
  std::string seed_file;
  int64_t train = 100000;
  std::vector<int64_t> ef = {64, 128, 256};
  std::vector<int64_t> nprobe = {16, 32, 64};
  std::string dir = "/tmp";
  bool raw_approx = true;
  bool raw_from_snapshot = false;
  std::string snapshot;  // --snapshot: search this FaceIndex snapshot instead of building
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
    auto next = [&] { return FlagValue(argc, argv, &i); };
    if (a == "--sizes") f.sizes = ParseInts(next());
    else if (a == "--factories") f.factories = absl::StrSplit(next(), ';', absl::SkipEmpty());
    else if (a == "--queries") f.queries = static_cast<int>(ParseInts(next()).at(0));
    else if (a == "--exact-queries") f.exact_queries = static_cast<int>(ParseInts(next()).at(0));
    else if (a == "--seed-file") f.seed_file = next();
    else if (a == "--train") f.train = ParseInts(next()).at(0);
    else if (a == "--ef") f.ef = ParseInts(next());
    else if (a == "--nprobe") f.nprobe = ParseInts(next());
    else if (a == "--dir") f.dir = next();
    else if (a == "--no-raw-approx") f.raw_approx = false;
    else if (a == "--raw-from-snapshot") f.raw_from_snapshot = true;
    else if (a == "--snapshot") f.snapshot = next();
    else {
      std::fprintf(stderr, "unknown flag %s (see the comment at the top of index_bench.cc)\n",
                   a.c_str());
      std::exit(2);
    }
  }
  if (f.queries < 1) {
    std::fprintf(stderr, "--queries must be >= 1\n");
    std::exit(2);
  }
  if (f.exact_queries < 0 || f.exact_queries > f.queries) f.exact_queries = f.queries;
  if (!f.snapshot.empty() && (f.sizes.size() != 1 || f.factories.size() != 1)) {
    std::fprintf(stderr, "--snapshot needs one size and one factory (those it was built with)\n");
    std::exit(2);
  }
  return f;
}

struct Data {
  std::vector<float> gallery;  // n * kDim, id = row; freed after the last build
  std::vector<float> queries;
};

Data MakeData(int64_t n, int queries, const std::vector<std::vector<float>>& seeds) {
  // The generator keeps the identity centres, one array (n / 5 * 512 B: 0.5 GB at 5M faces,
  // freed on return).
  FaceGenerator gen(seeds, /*keep_centres=*/true);
  Data d;
  d.gallery.resize(n * kDim);
  for (int64_t row = 0; row < n; ++row) {
    const std::vector<float> v = gen.Next();
    std::copy(v.begin(), v.end(), &d.gallery[row * kDim]);
  }
  std::mt19937_64& rng = gen.rng();
  const std::vector<float>& centers = gen.centres();
  const size_t identities = centers.size() / kDim;
  for (int q = 0; q < queries; ++q) {
    const float* c = &centers[(rng() % identities) * kDim];
    std::vector<float> v(c, c + kDim);
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
              static_cast<long long>(n), identities, norm / nb, nw ? within / nw : 0.0,
              between / nb, seeds.empty() ? "random centres" : "seeded from real descriptors");
  return d;
}

// Memory-bandwidth floor, wall and thread CPU time, in ms.
struct Floor {
  double wall_ms = 0, cpu_ms = 0;
};

// The floor is the fastest of three streaming reads of the same bytes, so that it is bound by
// memory and not by the loop: 64-bit integer adds (reassociable, vectorized by the compiler),
// and, on AVX2 machines, four-accumulator 256-bit float adds without and with software
// prefetch. (Until 2026-11-29 the floor was the integer loop alone, which ran at ~1.8x the
// AVX2 read here and made exact search look closer to the floor than it was.)
#if defined(__x86_64__)
__attribute__((target("avx2"))) float SumAvx2(const float* v, size_t n, bool prefetch) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    if (prefetch) _mm_prefetch(reinterpret_cast<const char*>(v + i + 512), _MM_HINT_T0);
    a0 = _mm256_add_ps(a0, _mm256_loadu_ps(v + i));
    a1 = _mm256_add_ps(a1, _mm256_loadu_ps(v + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_loadu_ps(v + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_loadu_ps(v + i + 24));
  }
  float out[8];
  _mm256_storeu_ps(out, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  float s = 0;
  for (float f : out) s += f;
  for (; i < n; ++i) s += v[i];
  return s;
}
#endif

// Best of `reps` (wall and CPU time each) over the read patterns above.
Floor MeasureFloor(const float* v, size_t n, int reps) {
  double floor_s = 1e9, cpu_s = 1e9;
  int patterns = 1;
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx2")) patterns = 3;
#endif
  for (int r = 0; r < reps; ++r) {
    for (int pattern = 0; pattern < patterns; ++pattern) {
      const auto t0 = Clock::now();
      const double c0 = ThreadCpuSeconds();
      double sink = 0;
      if (pattern == 0) {
        const auto* words = reinterpret_cast<const uint64_t*>(v);
        uint64_t acc = 0;
        for (size_t i = 0; i < n / 2; ++i) acc += words[i];
        sink = static_cast<double>(acc & 1);
      }
#if defined(__x86_64__)
      if (pattern > 0) sink = SumAvx2(v, n, pattern == 2);
#endif
      floor_s = std::min(floor_s, Seconds(t0));
      cpu_s = std::min(cpu_s, ThreadCpuSeconds() - c0);
      if (sink == 12345.0) std::printf("!");
    }
  }
  return Floor{floor_s * 1e3, cpu_s * 1e3};
}

// Exact top-k of every query with Faiss's BLAS path (many queries at once, all threads).
std::vector<std::vector<Hit>> ExactTruth(const Data& d, int64_t n, int queries) {
  std::vector<float> dist(static_cast<size_t>(queries) * kK);
  std::vector<int64_t> labels(dist.size());
  faiss::knn_L2sqr(d.queries.data(), d.gallery.data(), kDim, queries, n, kK, dist.data(),
                   labels.data());
  std::vector<std::vector<Hit>> truth(queries);
  for (int q = 0; q < queries; ++q) {
    for (int i = 0; i < kK; ++i) {
      const size_t j = static_cast<size_t>(q) * kK + i;
      if (labels[j] >= 0) truth[q].push_back(Hit{labels[j], std::sqrt(std::max(dist[j], 0.0f))});
    }
  }
  return truth;
}

// Latency percentiles: wall clock, and CPU time of the searching thread (the same search
// without waiting for a core; on a loaded machine the wall clock mostly measures the queue).
struct Stats {
  double p50_ms = 0, p99_ms = 0, cpu_p50_ms = 0, cpu_p99_ms = 0;
  double recall_radius = 0, recall_top = 0;
};

double Percentile(std::vector<double> v, int pct) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, v.size() * pct / 100)] * 1e3;
}

// Recall over the queries in `got` (a prefix of `truth`).
Stats Summarize(const std::vector<double>& lat, const std::vector<double>& cpu,
                const std::vector<std::vector<Hit>>& got,
                const std::vector<std::vector<Hit>>& truth) {
  Stats s;
  s.p50_ms = Percentile(lat, 50);
  s.p99_ms = Percentile(lat, 99);
  s.cpu_p50_ms = Percentile(cpu, 50);
  s.cpu_p99_ms = Percentile(cpu, 99);
  int64_t in_radius = 0, in_radius_found = 0, top = 0, top_found = 0;
  for (size_t q = 0; q < got.size(); ++q) {
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

// One query's k=50 hits.
using SearchFn = std::function<std::vector<Hit>(const float* query)>;

// Times `face` and `raw` on the first `queries` queries, one thread, interleaved: even
// queries run raw first, odd ones FaceIndex first.
std::pair<Stats, Stats> Compare(const SearchFn& face, const SearchFn& raw, const Data& d,
                                int queries, const std::vector<std::vector<Hit>>& truth) {
  const int saved_threads = omp_get_max_threads();
  omp_set_num_threads(1);
  std::vector<double> lat[2], cpu[2];
  std::vector<std::vector<Hit>> got[2];
  for (int side = 0; side < 2; ++side) got[side].resize(queries);
  for (int q = 0; q < queries; ++q) {
    for (int turn = 0; turn < 2; ++turn) {
      const int side = (q + turn) % 2;  // 0 = FaceIndex, 1 = raw
      const SearchFn& search = side == 0 ? face : raw;
      if (!search) continue;
      const auto t0 = Clock::now();
      const double c0 = ThreadCpuSeconds();
      got[side][q] = search(&d.queries[static_cast<size_t>(q) * kDim]);
      cpu[side].push_back(ThreadCpuSeconds() - c0);
      lat[side].push_back(Seconds(t0));
    }
  }
  omp_set_num_threads(saved_threads);
  return {Summarize(lat[0], cpu[0], got[0], truth),
          raw ? Summarize(lat[1], cpu[1], got[1], truth) : Stats{}};
}

SearchFn FaceSearchFn(const FaceIndex& index) {
  return [&index](const float* query) {
    auto hits = index.Search(query, kK);
    if (!hits.ok()) {
      std::fprintf(stderr, "search: %s\n", hits.status().ToString().c_str());
      std::exit(1);
    }
    return std::move(*hits);
  };
}

// Raw Faiss search; labels are gallery rows.
SearchFn RawSearchFn(const faiss::Index& index, const faiss::SearchParameters* params) {
  return [&index, params](const float* query) {
    float dist[kK];
    idx_t labels[kK];
    index.search(1, query, kK, dist, labels, params);
    std::vector<Hit> hits;
    for (int i = 0; i < kK; ++i) {
      if (labels[i] >= 0) hits.push_back(Hit{labels[i], std::sqrt(std::max(dist[i], 0.0f))});
    }
    return hits;
  };
}

// Two lines per setting: wall clock, then thread CPU time, each next to raw Faiss and, for
// exact search, next to the floor of the same kind.
void Row(const std::string& setting, const Stats& s, const Stats& raw, bool has_raw,
         const Floor& floor, bool exact) {
  std::printf("  %-12s wall p50 %8.3f ms  p99 %8.3f ms  in-radius %.4f  top50 %.4f",
              setting.c_str(), s.p50_ms, s.p99_ms, s.recall_radius, s.recall_top);
  if (has_raw) {
    std::printf("  | raw p50 %8.3f ms  p99 %8.3f ms  in-radius %.4f  top50 %.4f | p50 x%.2f raw",
                raw.p50_ms, raw.p99_ms, raw.recall_radius, raw.recall_top,
                s.p50_ms / raw.p50_ms);
  }
  if (exact) {
    std::printf(" | p50 x%.2f floor (raw x%.2f)", s.p50_ms / floor.wall_ms,
                has_raw ? raw.p50_ms / floor.wall_ms : 0.0);
  }
  std::printf("  [load %s]\n", LoadAverage().c_str());
  std::printf("  %-12s cpu  p50 %8.3f ms  p99 %8.3f ms", "", s.cpu_p50_ms, s.cpu_p99_ms);
  if (has_raw) {
    std::printf("  | raw cpu p50 %8.3f ms  p99 %8.3f ms | cpu p50 x%.2f raw", raw.cpu_p50_ms,
                raw.cpu_p99_ms, s.cpu_p50_ms / raw.cpu_p50_ms);
  }
  if (exact) {
    std::printf(" | cpu p50 x%.2f cpu floor (raw x%.2f)", s.cpu_p50_ms / floor.cpu_ms,
                has_raw ? raw.cpu_p50_ms / floor.cpu_ms : 0.0);
  }
  std::printf("\n");
}

// The inner Faiss index of a FaceIndex snapshot (layout in index/face_index.cc: "HWFIDX01",
// u32 version, u32 dim, u64 last_change, u32 factory_len, factory, then faiss::write_index
// of the IDMap2). Its labels are slots, which are gallery rows here. Exits on failure.
std::unique_ptr<faiss::Index> ReadSnapshotInner(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  char header[8 + 4 + 4 + 8 + 4];
  uint32_t factory_len = 0;
  if (!file || std::fread(header, sizeof(header), 1, file.get()) != 1) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    std::exit(1);
  }
  std::memcpy(&factory_len, header + 8 + 4 + 4 + 8, 4);
  std::fseek(file.get(), factory_len, SEEK_CUR);
  std::unique_ptr<faiss::Index> index(faiss::read_index(file.get()));
  auto* id_map = dynamic_cast<faiss::IndexIDMap2*>(index.get());
  if (id_map == nullptr) {
    std::fprintf(stderr, "%s: not an IDMap2 snapshot\n", path.c_str());
    std::exit(1);
  }
  id_map->own_fields = false;
  return std::unique_ptr<faiss::Index>(id_map->index);
}

// Builds one factory as a FaceIndex and as raw Faiss, then searches both at every setting.
// Frees d->gallery when `last` (no further factory needs it).
void BenchFactory(const Flags& f, const std::string& factory, Data* d, int64_t n,
                  const std::vector<std::vector<Hit>>& truth, const Floor& floor, bool last) {
  const bool is_ivf = factory.find("IVF") != std::string::npos;
  const bool is_hnsw = !is_ivf && factory.find("HNSW") != std::string::npos;
  const bool is_flat = !is_ivf && !is_hnsw;
  const int64_t train_n = std::min(n, f.train);
  std::printf("  %s  [load %s]\n", factory.c_str(), LoadAverage().c_str());

  // FaceIndex build, snapshot, drop.
  const std::string path = !f.snapshot.empty()
                               ? f.snapshot
                               : f.dir + "/index_bench_" + std::to_string(getpid()) + ".snap";
  if (!f.snapshot.empty()) {
    std::printf("    FaceIndex from %s (not built here)\n", path.c_str());
  } else {
    std::vector<int64_t> ids(n);
    for (int64_t i = 0; i < n; ++i) ids[i] = i;
    const double rss0 = RssBytes();
    auto t0 = Clock::now();
    IndexOptions options;
    options.factory = factory;
    auto index = FaceIndex::Create(options);
    if (!index.ok()) {
      std::printf("  %s: %s\n", factory.c_str(), index.status().ToString().c_str());
      return;
    }
    if (auto s = (*index)->Train(d->gallery.data(), train_n); !s.ok()) {
      std::printf("  %s train: %s\n", factory.c_str(), s.ToString().c_str());
      return;
    }
    if (auto s = (*index)->Add(ids, d->gallery.data()); !s.ok()) {
      std::printf("  %s add: %s\n", factory.c_str(), s.ToString().c_str());
      return;
    }
    const double build_s = Seconds(t0);
    const double bytes_per_face = (RssBytes() - rss0) / n;
    t0 = Clock::now();
    if (auto s = (*index)->Save(path, 1); !s.ok()) {
      std::printf("  save: %s\n", s.ToString().c_str());
      return;
    }
    const double save_s = Seconds(t0);
    std::printf("    FaceIndex build %.1f s  RAM %.0f B/face (growth while building)  save %.2f s"
                "  [load %s]\n",
                build_s, bytes_per_face, save_s, LoadAverage().c_str());
  }

  // Raw Faiss, same factory string, same vectors (labels = rows).
  std::unique_ptr<faiss::Index> raw;
  if (!is_flat && f.raw_approx && f.raw_from_snapshot) {
    const double rss0 = RssBytes();
    const auto t0 = Clock::now();
    raw = ReadSnapshotInner(path);
    std::printf("    raw Faiss read from the snapshot's Faiss section in %.1f s (no raw build)"
                "  RAM %.0f B/face\n",
                Seconds(t0), (RssBytes() - rss0) / n);
  } else if (is_flat || f.raw_approx) {
    const double rss0 = RssBytes();
    const auto t0 = Clock::now();
    raw = std::unique_ptr<faiss::Index>(
        faiss::index_factory(kDim, is_flat ? "Flat" : factory.c_str()));
    raw->train(train_n, d->gallery.data());
    raw->add(n, d->gallery.data());
    std::printf("    raw Faiss build %.1f s  RAM %.0f B/face  [load %s]\n", Seconds(t0),
                (RssBytes() - rss0) / n, LoadAverage().c_str());
  }
  if (last) {
    d->gallery.clear();
    d->gallery.shrink_to_fit();
  }

  const std::vector<int64_t> settings =
      is_hnsw ? f.ef : is_ivf ? f.nprobe : std::vector<int64_t>{0};
  const int queries = is_flat ? f.exact_queries : f.queries;
  bool first = true;
  for (int64_t setting : settings) {
    IndexOptions load_options;
    if (is_hnsw) load_options.hnsw_ef_search = static_cast<int>(setting);
    if (is_ivf) load_options.ivf_nprobe = static_cast<int>(setting);
    const double rss0 = RssBytes();
    const auto t0 = Clock::now();
    auto loaded = FaceIndex::Load(path, load_options, nullptr);
    const double load_s = Seconds(t0);
    if (!loaded.ok()) {
      std::printf("  load: %s\n", loaded.status().ToString().c_str());
      break;
    }
    if (first) {
      std::printf("    FaceIndex load %.2f s  RAM %.0f B/face (growth while loading)\n", load_s,
                  (RssBytes() - rss0) / n);
    }
    first = false;

    faiss::SearchParametersHNSW hnsw_params;
    faiss::SearchParametersIVF ivf_params;
    const faiss::SearchParameters* params = nullptr;
    if (raw && is_hnsw) {
      // Faiss 1.7.3 ignores SearchParametersHNSW::efSearch (the beam is the index's
      // hnsw.efSearch): set it on the index, as FaceIndex does, and in the parameters.
      static_cast<faiss::IndexHNSW*>(raw.get())->hnsw.efSearch = static_cast<int>(setting);
      hnsw_params.efSearch = static_cast<int>(setting);
      params = &hnsw_params;
    } else if (raw && is_ivf) {
      ivf_params.nprobe = static_cast<size_t>(setting);
      params = &ivf_params;
    }
    const auto [face_stats, raw_stats] =
        Compare(FaceSearchFn(**loaded), raw ? RawSearchFn(*raw, params) : SearchFn(), *d,
                queries, truth);
    const std::string name = is_hnsw ? "efSearch=" + std::to_string(setting)
                             : is_ivf ? "nprobe=" + std::to_string(setting)
                                      : "exact(" + std::to_string(queries) + "q)";
    // The floor again, over the raw index's vectors (same bytes): load on the machine drifts.
    Floor lower = floor;
    if (is_flat && raw) {
      const Floor now = MeasureFloor(static_cast<faiss::IndexFlat*>(raw.get())->get_xb(),
                                     static_cast<size_t>(n) * kDim, 3);
      std::printf("    floor after the searches: wall %.2f ms, cpu %.2f ms (before: %.2f, %.2f);"
                  " ratios use the lower\n",
                  now.wall_ms, now.cpu_ms, floor.wall_ms, floor.cpu_ms);
      lower = Floor{std::min(floor.wall_ms, now.wall_ms), std::min(floor.cpu_ms, now.cpu_ms)};
    }
    Row(name, face_stats, raw_stats, raw != nullptr, lower, is_flat);
  }
  if (f.snapshot.empty()) std::remove(path.c_str());
  raw.reset();
  std::printf("    peak RSS so far %.2f GB\n", PeakRssBytes() / 1e9);
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
  std::printf("threads: search 1 (OMP %d for builds and ground truth), OMP_WAIT_POLICY=%s, "
              "k=%d, %d queries (%d for exact search), load %s\n",
              omp_get_max_threads(), getenv("OMP_WAIT_POLICY") ? getenv("OMP_WAIT_POLICY") : "",
              kK, f.queries, f.exact_queries, LoadAverage().c_str());
  std::printf("FaceIndex distance kernel: %s (raw Faiss: its own scalar loops)\n",
              homeward::index::internal::L2KernelName());
  for (int64_t n : f.sizes) {
    std::printf("\n== %lld faces ==\n", static_cast<long long>(n));
    auto t0 = Clock::now();
    Data d = MakeData(n, f.queries, seeds);
    std::printf("  generated in %.1f s\n", Seconds(t0));

    const Floor floor = MeasureFloor(d.gallery.data(), d.gallery.size(), 5);
    std::printf("  floor: fastest read of %.0f MB in %.2f ms wall (%.1f GB/s), %.2f ms cpu (%.1f GB/s)"
                "  [load %s]\n",
                d.gallery.size() * 4 / 1e6, floor.wall_ms,
                d.gallery.size() * 4 / floor.wall_ms / 1e6, floor.cpu_ms,
                d.gallery.size() * 4 / floor.cpu_ms / 1e6, LoadAverage().c_str());

    t0 = Clock::now();
    const std::vector<std::vector<Hit>> truth = ExactTruth(d, n, f.queries);
    double in_radius = 0;
    for (const auto& t : truth) {
      for (const Hit& h : t) in_radius += h.distance < kRadius;
    }
    std::printf("  ground truth (BLAS, %d queries at once) in %.1f s; exact neighbours nearer "
                "than %.1f: %.1f per query\n",
                f.queries, Seconds(t0), kRadius, in_radius / truth.size());
    for (size_t i = 0; i < f.factories.size(); ++i) {
      BenchFactory(f, f.factories[i], &d, n, truth, floor, i + 1 == f.factories.size());
    }
  }
  std::printf("\npeak RSS %.2f GB  [load %s]\n", PeakRssBytes() / 1e9, LoadAverage().c_str());
  return 0;
}
