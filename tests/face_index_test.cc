// Tests for index/face_index.h on seeded synthetic descriptors: face-like clusters (10
// samples per identity, within-identity distances ~0.4, between ~1.0).
#include "index/face_index.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <new>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "index/internal/checksum.h"
#include "index/internal/guarded_call.h"
#include "index/internal/l2_scan.h"

namespace homeward::index {
namespace {

constexpr int kDim = 128;

struct Gallery {
  std::vector<int64_t> ids;
  std::vector<float> vectors;  // ids.size() * kDim
  const float* row(size_t i) const { return &vectors[i * kDim]; }
};

std::vector<float> RandomVector(std::mt19937& rng, float norm) {
  std::normal_distribution<float> g;
  std::vector<float> v(kDim);
  double s = 0;
  for (float& x : v) {
    x = g(rng);
    s += x * x;
  }
  for (float& x : v) x *= norm / std::sqrt(s);
  return v;
}

// `identities` clusters of `per_identity` samples; ids start at `first_id`.
Gallery MakeGallery(int identities, int per_identity, uint32_t seed, int64_t first_id = 0) {
  std::mt19937 rng(seed);
  Gallery g;
  for (int p = 0; p < identities; ++p) {
    const std::vector<float> center = RandomVector(rng, 0.7f);
    for (int s = 0; s < per_identity; ++s) {
      const std::vector<float> noise = RandomVector(rng, 0.28f);
      g.ids.push_back(first_id + static_cast<int64_t>(g.ids.size()));
      for (int j = 0; j < kDim; ++j) g.vectors.push_back(center[j] + noise[j]);
    }
  }
  return g;
}

double Distance(const float* a, const float* b) {
  double s = 0;
  for (int j = 0; j < kDim; ++j) s += (double(a[j]) - b[j]) * (double(a[j]) - b[j]);
  return std::sqrt(s);
}

// Exact top-k over the live gallery entries passing `filter`.
std::vector<Hit> BruteForce(const std::map<int64_t, const float*>& live, const float* q, int k,
                            const IdFilter& filter) {
  std::vector<Hit> all;
  for (const auto& [id, v] : live) {
    if (!filter || filter(id)) all.push_back(Hit{id, static_cast<float>(Distance(q, v))});
  }
  std::sort(all.begin(), all.end(), [](const Hit& a, const Hit& b) {
    return a.distance < b.distance || (a.distance == b.distance && a.id < b.id);
  });
  if (static_cast<int>(all.size()) > k) all.resize(k);
  return all;
}

// Same hits, rank by rank; only those nearer than `radius` when it is given (approximate
// indexes promise the candidates a match could come from, not the order of strangers).
void ExpectSameHits(const std::vector<Hit>& got, const std::vector<Hit>& want,
                    float radius = INFINITY) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size() && want[i].distance < radius; ++i) {
    EXPECT_EQ(got[i].id, want[i].id) << "rank " << i;
    EXPECT_NEAR(got[i].distance, want[i].distance, 1e-4) << "rank " << i;
  }
}

std::unique_ptr<FaceIndex> MustCreate(const std::string& factory, double compact = 0.1) {
  IndexOptions options;
  options.factory = factory;
  options.auto_compact_fraction = compact;
  auto index = FaceIndex::Create(options);
  EXPECT_TRUE(index.ok()) << index.status();
  return std::move(index).value();
}

std::string TempPath(const std::string& name) {
  return ::testing::TempDir() + "face_index_test_" + std::to_string(getpid()) + "_" + name;
}

TEST(FaceIndex, AddSearchRemove) {
  auto index = MustCreate("IDMap2,Flat");
  const Gallery g = MakeGallery(20, 5, 1);
  ASSERT_TRUE(index->Add(g.ids, g.vectors.data()).ok());
  EXPECT_EQ(index->size(), 100);

  auto hits = index->Search(g.row(7), 5);
  ASSERT_TRUE(hits.ok()) << hits.status();
  ASSERT_EQ(hits->size(), 5u);
  EXPECT_EQ((*hits)[0].id, 7);
  EXPECT_NEAR((*hits)[0].distance, 0.0f, 1e-3);
  for (size_t i = 1; i < hits->size(); ++i) {
    EXPECT_LE((*hits)[i - 1].distance, (*hits)[i].distance);
  }
  // Same identity (ids 5..9) is nearer than 0.6, the next identity farther.
  for (int i = 1; i < 5; ++i) {
    EXPECT_GE((*hits)[i].id, 5);
    EXPECT_LE((*hits)[i].id, 9);
    EXPECT_LT((*hits)[i].distance, 0.6f);
  }

  ASSERT_TRUE(index->Remove({7, 12345}).ok());  // unknown ids are ignored
  EXPECT_EQ(index->size(), 99);
  hits = index->Search(g.row(7), 100);
  ASSERT_TRUE(hits.ok());
  EXPECT_EQ(hits->size(), 99u);
  for (const Hit& h : *hits) EXPECT_NE(h.id, 7);
}

TEST(FaceIndex, EmptyIndexReturnsNoHits) {
  auto index = MustCreate("IDMap2,Flat");
  std::vector<float> q(kDim, 0.1f);
  auto hits = index->Search(q.data(), 3);
  ASSERT_TRUE(hits.ok());
  EXPECT_TRUE(hits->empty());
}

TEST(FaceIndex, ReAddReplacesVector) {
  for (const char* factory : {"IDMap2,Flat", "HNSW32"}) {
    SCOPED_TRACE(factory);
    auto index = MustCreate(factory, /*compact=*/0);
    const Gallery g = MakeGallery(10, 5, 2);
    ASSERT_TRUE(index->Add(g.ids, g.vectors.data()).ok());
    // Move id 3 onto the vector of id 42, twice in one batch (the last one wins).
    std::vector<float> twice(g.row(0), g.row(0) + kDim);
    twice.insert(twice.end(), g.row(42), g.row(42) + kDim);
    ASSERT_TRUE(index->Add({3, 3}, twice.data()).ok());
    EXPECT_EQ(index->size(), 50);
    EXPECT_EQ(index->tombstones(), 2);
    auto hits = index->Search(g.row(3), 50);
    ASSERT_TRUE(hits.ok());
    EXPECT_EQ(hits->size(), 50u);
    for (const Hit& h : *hits) {
      if (h.id == 3) {
        EXPECT_GT(h.distance, 0.1f);  // the old vector is gone
      }
    }
    hits = index->Search(g.row(42), 2);
    ASSERT_TRUE(hits.ok());
    ASSERT_EQ(hits->size(), 2u);
    EXPECT_NEAR((*hits)[0].distance, 0.0f, 1e-3);
    EXPECT_NEAR((*hits)[1].distance, 0.0f, 1e-3);
    EXPECT_TRUE((*hits)[0].id == 3 || (*hits)[1].id == 3);

    ASSERT_TRUE(index->Compact().ok());
    EXPECT_EQ(index->tombstones(), 0);
    EXPECT_EQ(index->size(), 50);
    hits = index->Search(g.row(42), 2);
    ASSERT_TRUE(hits.ok());
    EXPECT_TRUE((*hits)[0].id == 3 || (*hits)[1].id == 3);
  }
}

TEST(FaceIndex, FlatRemoveCompactsPastThreshold) {
  auto index = MustCreate("IDMap2,Flat", /*compact=*/0.1);
  const Gallery g = MakeGallery(20, 5, 3);
  ASSERT_TRUE(index->Add(g.ids, g.vectors.data()).ok());
  ASSERT_TRUE(index->Remove({1, 2, 3}).ok());
  EXPECT_EQ(index->tombstones(), 3);  // below 10%: batched
  ASSERT_TRUE(index->Remove({4, 5, 6, 7, 8, 9, 10, 11}).ok());
  EXPECT_EQ(index->tombstones(), 0);  // past 10%: compacted
  EXPECT_EQ(index->size(), 89);
  auto hits = index->Search(g.row(50), 1);
  ASSERT_TRUE(hits.ok());
  EXPECT_EQ((*hits)[0].id, 50);
}

TEST(FaceIndex, HnswRemoveKeepsTombstonesUntilCompact) {
  auto index = MustCreate("HNSW32");
  const Gallery g = MakeGallery(20, 5, 4);
  ASSERT_TRUE(index->Add(g.ids, g.vectors.data()).ok());
  ASSERT_TRUE(index->Remove({10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21}).ok());
  EXPECT_EQ(index->tombstones(), 12);
  EXPECT_EQ(index->size(), 88);
  auto hits = index->Search(g.row(12), 100);
  ASSERT_TRUE(hits.ok());
  EXPECT_EQ(hits->size(), 88u);
  for (const Hit& h : *hits) EXPECT_TRUE(h.id < 10 || h.id > 21) << h.id;
  ASSERT_TRUE(index->Compact().ok());
  EXPECT_EQ(index->tombstones(), 0);
  EXPECT_EQ(index->size(), 88);
  hits = index->Search(g.row(30), 1);
  ASSERT_TRUE(hits.ok());
  EXPECT_EQ((*hits)[0].id, 30);
}

// Filtered (and tombstoned) search equals brute force over the passing subset: entirely for
// the exact index and for selective filters (exact fallback), and within the candidate radius
// 0.7 for HNSW (widened search), whose filtered beam in Faiss 1.7.3 still misses some far
// (~0.95) neighbours at 10% selectivity; IVF widened to all lists is compared entirely.
constexpr float kCandidateRadius = 0.7f;

void CheckFilteredSearchMatchesBruteForce(FaceIndex& index, const Gallery& g, bool exact) {
  std::map<int64_t, const float*> live;
  for (size_t i = 0; i < g.ids.size(); ++i) live[g.ids[i]] = g.row(i);
  std::vector<int64_t> removed;
  for (int64_t id = 0; id < static_cast<int64_t>(g.ids.size()); id += 7) removed.push_back(id);
  ASSERT_TRUE(index.Remove(removed).ok());
  for (int64_t id : removed) live.erase(id);

  const std::vector<std::pair<std::string, IdFilter>> filters = {
      {"none", nullptr},
      {"half", [](int64_t id) { return id % 2 == 0; }},
      {"tenth", [](int64_t id) { return id % 10 == 3; }},
      {"1%", [](int64_t id) { return id % 97 == 5; }},
      {"three ids", [](int64_t id) { return id == 4 || id == 1000 || id == 2001; }},
      {"nothing", [](int64_t) { return false; }},
  };
  std::mt19937 rng(99);
  for (const auto& [name, filter] : filters) {
    SCOPED_TRACE(name);
    for (int q = 0; q < 20; ++q) {
      // A new sample near a random gallery face, like a probe photo.
      const size_t row = rng() % g.ids.size();
      std::vector<float> query(g.row(row), g.row(row) + kDim);
      const std::vector<float> noise = RandomVector(rng, 0.2f);
      for (int j = 0; j < kDim; ++j) query[j] += noise[j];
      for (int k : {1, 10}) {
        auto hits = index.Search(query.data(), k, filter);
        ASSERT_TRUE(hits.ok()) << hits.status();
        const bool selective = name == "1%" || name == "three ids" || name == "nothing";
        ExpectSameHits(*hits, BruteForce(live, query.data(), k, filter),
                       exact || selective ? INFINITY : kCandidateRadius);
      }
    }
  }
}

TEST(FaceIndex, FilteredSearchEqualsBruteForceExact) {
  auto index = MustCreate("IDMap2,Flat", /*compact=*/0);
  const Gallery g = MakeGallery(100, 30, 5);
  ASSERT_TRUE(index->Add(g.ids, g.vectors.data()).ok());
  CheckFilteredSearchMatchesBruteForce(*index, g, /*exact=*/true);
}

TEST(FaceIndex, FilteredSearchEqualsBruteForceHnsw) {
  auto index = MustCreate("HNSW32");
  const Gallery g = MakeGallery(100, 30, 6);
  ASSERT_TRUE(index->Add(g.ids, g.vectors.data()).ok());
  CheckFilteredSearchMatchesBruteForce(*index, g, /*exact=*/false);
}

TEST(FaceIndex, FilteredSearchEqualsBruteForceIvf) {
  IndexOptions options;
  options.factory = "IVF16,Flat";
  options.ivf_nprobe = 4;
  auto index = FaceIndex::Create(options);
  ASSERT_TRUE(index.ok()) << index.status();
  const Gallery g = MakeGallery(100, 30, 7);
  EXPECT_EQ((*index)->Add(g.ids, g.vectors.data()).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*index)->Train(g.vectors.data(), 10).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE((*index)->Train(g.vectors.data(), g.ids.size()).ok());
  ASSERT_TRUE((*index)->Add(g.ids, g.vectors.data()).ok());
  EXPECT_EQ((*index)->Train(g.vectors.data(), g.ids.size()).code(),
            absl::StatusCode::kFailedPrecondition);
  CheckFilteredSearchMatchesBruteForce(**index, g, /*exact=*/true);
  ASSERT_TRUE((*index)->Compact().ok());
  EXPECT_EQ((*index)->tombstones(), 0);
  EXPECT_EQ((*index)->size(), 3000 - 429);
}

TEST(FaceIndex, SnapshotRoundTrip) {
  for (const char* factory : {"IDMap2,Flat", "HNSW32"}) {
    SCOPED_TRACE(factory);
    auto index = MustCreate(factory, /*compact=*/0);
    const Gallery g = MakeGallery(50, 4, 8, /*first_id=*/1000);
    ASSERT_TRUE(index->Add(g.ids, g.vectors.data()).ok());
    ASSERT_TRUE(index->Remove({1000, 1001}).ok());
    const std::string path = TempPath("roundtrip");
    ASSERT_TRUE(index->Save(path, 777).ok());

    uint64_t last_change = 0;
    IndexOptions options;
    auto loaded = FaceIndex::Load(path, options, &last_change);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_EQ(last_change, 777u);
    EXPECT_EQ((*loaded)->options().factory, factory);
    EXPECT_EQ((*loaded)->size(), 198);
    EXPECT_EQ((*loaded)->tombstones(), 2);
    for (size_t row : {0, 5, 117}) {
      auto before = index->Search(g.row(row), 10);
      auto after = (*loaded)->Search(g.row(row), 10);
      ASSERT_TRUE(before.ok() && after.ok());
      ExpectSameHits(*after, *before);
    }
    // The loaded index keeps working: removal of a reloaded id and replacement.
    ASSERT_TRUE((*loaded)->Remove({1005}).ok());
    EXPECT_EQ((*loaded)->size(), 197);
    std::remove(path.c_str());
  }
}

TEST(FaceIndex, MissingSnapshotIsNotFound) {
  EXPECT_EQ(FaceIndex::Load(TempPath("missing"), IndexOptions(), nullptr).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(FaceIndex, CorruptSnapshotIsDataLoss) {
  auto index = MustCreate("HNSW32", /*compact=*/0);
  const Gallery g = MakeGallery(10, 4, 9);
  ASSERT_TRUE(index->Add(g.ids, g.vectors.data()).ok());
  ASSERT_TRUE(index->Remove({3}).ok());
  const std::string good_path = TempPath("good");
  ASSERT_TRUE(index->Save(good_path, 5).ok());
  std::ifstream in(good_path, std::ios::binary);
  const std::string good((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(good.size(), 1000u);

  const std::string path = TempPath("bad");
  auto load_bytes = [&](const std::string& bytes) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
    return FaceIndex::Load(path, IndexOptions(), nullptr).status().code();
  };
  EXPECT_EQ(load_bytes(good), absl::StatusCode::kOk);
  EXPECT_EQ(load_bytes(""), absl::StatusCode::kDataLoss);
  std::mt19937 rng(10);
  std::string garbage(good.size(), '\0');
  for (char& c : garbage) c = static_cast<char>(rng());
  EXPECT_EQ(load_bytes(garbage), absl::StatusCode::kDataLoss);
  for (size_t len = 0; len < good.size(); len += 1 + len / 3) {
    EXPECT_EQ(load_bytes(good.substr(0, len)), absl::StatusCode::kDataLoss) << "len " << len;
  }
  EXPECT_EQ(load_bytes(good.substr(0, good.size() - 1)), absl::StatusCode::kDataLoss);
  for (size_t pos = 0; pos < good.size(); pos += 1 + pos / 5) {
    std::string bad = good;
    bad[pos] ^= 0x40;
    EXPECT_EQ(load_bytes(bad), absl::StatusCode::kDataLoss) << "byte " << pos;
  }
  EXPECT_EQ(load_bytes(good + "x"), absl::StatusCode::kDataLoss);
  std::remove(path.c_str());
  std::remove(good_path.c_str());
}

// A snapshot whose checksum matches but whose id map names one face id in two slots (only a
// crafted or buggy file can: Save never writes one). Two live slots are DATA_LOSS: removing
// the id would leave the other slot behind. A tombstoned slot may share its id with a live
// one (a replaced vector), and the id stays removable: it once was not, because the reverse
// map pointed at the tombstoned slot (found by fuzz_index_snapshot).
TEST(FaceIndex, SnapshotWithAFaceIdInTwoSlots) {
  constexpr int64_t kA = 0x5151515151, kB = 0x6262626262, kC = 0x7373737373;
  std::vector<float> v(3 * kDim);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % kDim == i / kDim);
  // Rewrites every id `from` in the saved bytes to `to`, and the checksum to match.
  auto saved_with = [&](FaceIndex& index, int64_t from, int64_t to) {
    const std::string path = TempPath("two_slots");
    EXPECT_TRUE(index.Save(path, 3).ok());
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string f(reinterpret_cast<const char*>(&from), 8);
    const std::string t(reinterpret_cast<const char*>(&to), 8);
    int replaced = 0;
    for (size_t pos = bytes.find(f); pos != std::string::npos; pos = bytes.find(f, pos + 8)) {
      bytes.replace(pos, 8, t);
      ++replaced;
    }
    EXPECT_EQ(replaced, 1);
    internal::Checksum checksum;
    checksum.Update(bytes.data(), bytes.size() - 8);
    const uint64_t sum = checksum.Finish();
    std::memcpy(bytes.data() + bytes.size() - 8, &sum, 8);
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
    return path;
  };
  for (const char* factory : {"IDMap2,Flat", "HNSW32"}) {
    SCOPED_TRACE(factory);
    {
      auto index = MustCreate(factory, /*compact=*/0);
      ASSERT_TRUE(index->Add({kA, kB, kC}, v.data()).ok());
      const std::string path = saved_with(*index, kC, kA);
      auto loaded = FaceIndex::Load(path, IndexOptions(), nullptr);
      EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss) << loaded.status();
      EXPECT_NE(loaded.status().message().find("in two live slots"), std::string_view::npos);
      std::remove(path.c_str());
    }
    {
      auto index = MustCreate(factory, /*compact=*/0);
      ASSERT_TRUE(index->Add({kA, kB, kC}, v.data()).ok());
      ASSERT_TRUE(index->Remove({kC}).ok());  // slot 2 tombstoned, then named kA
      const std::string path = saved_with(*index, kC, kA);
      auto loaded = FaceIndex::Load(path, IndexOptions(), nullptr);
      ASSERT_TRUE(loaded.ok()) << loaded.status();
      EXPECT_EQ((*loaded)->size(), 2);
      ASSERT_TRUE((*loaded)->Remove({kA}).ok());
      EXPECT_EQ((*loaded)->size(), 1);
      auto hits = (*loaded)->Search(v.data(), 3);  // kA's own vector
      ASSERT_TRUE(hits.ok());
      ASSERT_EQ(hits->size(), 1u);
      EXPECT_EQ((*hits)[0].id, kB);
      std::remove(path.c_str());
    }
  }
}

TEST(FaceIndex, SnapshotOfAnotherDimIsInvalidArgument) {
  IndexOptions options;
  options.dim = 4;
  auto index = FaceIndex::Create(options);
  ASSERT_TRUE(index.ok());
  const std::string path = TempPath("dim4");
  ASSERT_TRUE((*index)->Save(path, 1).ok());
  EXPECT_EQ(FaceIndex::Load(path, IndexOptions(), nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::remove(path.c_str());
}

TEST(FaceIndex, BadArgumentsAreInvalidArgument) {
  IndexOptions options;
  options.dim = 0;
  EXPECT_EQ(FaceIndex::Create(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.dim = 128;
  options.factory = "NoSuchIndex42";
  EXPECT_EQ(FaceIndex::Create(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.factory = "PQ16";  // understood by Faiss, not supported here
  EXPECT_EQ(FaceIndex::Create(options).status().code(), absl::StatusCode::kInvalidArgument);

  auto index = MustCreate("IDMap2,Flat");
  const Gallery g = MakeGallery(2, 2, 11);
  ASSERT_TRUE(index->Add(g.ids, g.vectors.data()).ok());
  EXPECT_EQ(index->Search(g.row(0), 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(index->Search(g.row(0), 10001).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(index->Search(g.row(0), 10000).ok());
  EXPECT_EQ(index->Search(nullptr, 1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(index->Add({-1}, g.row(0)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(index->Add({1}, nullptr).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(index->Remove({-5}).code(), absl::StatusCode::kInvalidArgument);
  std::vector<float> nan(kDim, 0.0f);
  nan[7] = std::nanf("");
  EXPECT_EQ(index->Add({9}, nan.data()).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(index->Search(nan.data(), 1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(index->size(), 4);
}

// The module's one catch helper, with test doubles standing in for Faiss failures.
// Both distance kernels against a double-precision reference, on every tail shape: vector
// counts with and without an odd one out, dimensions with and without 16/8-float blocks.
TEST(L2Scan, KernelsMatchDoublePrecision) {
  std::mt19937 rng(3);
  std::normal_distribution<float> g;
  for (size_t d : {1, 5, 8, 13, 16, 24, 128, 131}) {
    for (size_t n : {0, 1, 2, 3, 257}) {
      SCOPED_TRACE(::testing::Message() << "d=" << d << " n=" << n);
      std::vector<float> q(d), x(n * d);
      for (float& v : q) v = g(rng);
      for (float& v : x) v = g(rng);
      std::vector<float> scalar(n + 1, -1.0f), avx2(n + 1, -1.0f), chosen(n + 1, -1.0f);
      internal::L2SqrBatchScalar(q.data(), x.data(), n, d, scalar.data());
      internal::L2SqrBatch(q.data(), x.data(), n, d, chosen.data());
      if (internal::HaveAvx2Kernel()) {
        internal::L2SqrBatchAvx2(q.data(), x.data(), n, d, avx2.data());
      }
      for (size_t i = 0; i < n; ++i) {
        double want = 0;
        for (size_t j = 0; j < d; ++j) {
          const double t = double(q[j]) - x[i * d + j];
          want += t * t;
        }
        const double tol = 1e-5 * want + 1e-6;
        EXPECT_NEAR(scalar[i], want, tol) << i;
        EXPECT_NEAR(chosen[i], want, tol) << i;
        if (internal::HaveAvx2Kernel()) {
          EXPECT_NEAR(avx2[i], want, tol) << i;
        }
      }
      // Nothing is written past n.
      EXPECT_EQ(scalar[n], -1.0f);
      EXPECT_EQ(chosen[n], -1.0f);
      if (internal::HaveAvx2Kernel()) {
        EXPECT_EQ(avx2[n], -1.0f);
      }
    }
  }
  std::printf("L2 kernel in use: %s\n", internal::L2KernelName());
}

TEST(GuardedCall, ConvertsExceptionsToStatus) {
  using internal::GuardedCall;
  EXPECT_EQ(GuardedCall("ok", [] { return absl::OkStatus(); }).code(), absl::StatusCode::kOk);
  const absl::Status thrown = GuardedCall("faiss search", []() -> absl::Status {
    throw std::runtime_error("Error in faiss::Index::search: boom");
  });
  EXPECT_EQ(thrown.code(), absl::StatusCode::kInternal);
  EXPECT_NE(thrown.message().find("boom"), std::string::npos);
  EXPECT_EQ(GuardedCall("read", []() -> absl::Status { throw std::bad_alloc(); }).code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(GuardedCall("read", []() -> absl::Status { throw 42; },
                        absl::StatusCode::kDataLoss)
                .code(),
            absl::StatusCode::kDataLoss);
}

// Writers add and remove whole batches of 100 faces that sit on one spot; readers searching
// that spot must always see whole batches, nearest first.
TEST(FaceIndex, ConcurrentSearchesSeeWholeBatches) {
  auto index = MustCreate("IDMap2,Flat");
  const Gallery background = MakeGallery(50, 10, 12, /*first_id=*/1000000);
  ASSERT_TRUE(index->Add(background.ids, background.vectors.data()).ok());
  std::mt19937 rng(13);
  const std::vector<float> spot = RandomVector(rng, 1.0f);
  constexpr int kBatch = 100;
  constexpr int kBatches = 20;

  std::atomic<bool> done{false};
  std::atomic<int> searches{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      while (!done.load()) {
        auto hits = index->Search(spot.data(), 3 * kBatch);
        ASSERT_TRUE(hits.ok()) << hits.status();
        int near = 0;
        for (size_t i = 0; i < hits->size(); ++i) {
          if (i > 0) {
            ASSERT_LE((*hits)[i - 1].distance, (*hits)[i].distance);
          }
          if ((*hits)[i].distance < 0.05f) ++near;
        }
        ASSERT_EQ(near % kBatch, 0) << "saw a partial batch: " << near;
        searches.fetch_add(1);
      }
    });
  }
  std::thread writer([&] {
    std::mt19937 wrng(14);
    for (int b = 0; b < kBatches; ++b) {
      std::vector<int64_t> ids;
      std::vector<float> vectors;
      for (int i = 0; i < kBatch; ++i) {
        ids.push_back(b * kBatch + i);
        const std::vector<float> noise = RandomVector(wrng, 0.01f);
        for (int j = 0; j < kDim; ++j) vectors.push_back(spot[j] + noise[j]);
      }
      ASSERT_TRUE(index->Add(ids, vectors.data()).ok());
      if (b >= 2) {  // keep at most two batches on the spot
        std::vector<int64_t> old;
        for (int i = 0; i < kBatch; ++i) old.push_back((b - 2) * kBatch + i);
        ASSERT_TRUE(index->Remove(old).ok());
      }
    }
  });
  writer.join();
  for (int i = 0; i < 1000 && searches.load() < 20; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  done = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(index->size(), 500 + 2 * kBatch);
}

}  // namespace
}  // namespace homeward::index
