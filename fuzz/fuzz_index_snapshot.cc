// Fuzz target: the index snapshot loader (index/face_index.h FaceIndex::Load), which reads
// <data_dir>/index/<kind>.snap at every start. A corrupt snapshot must give DATA_LOSS (or
// INVALID_ARGUMENT for a dimension mismatch, RESOURCE_EXHAUSTED for a length Faiss cannot
// allocate), never a crash; a snapshot that loads must be
// usable: search, add, remove, save and load again with the same size.
//
// Each input is tried twice: as is (mostly stopped by the checksum), and with its last eight
// bytes replaced by the checksum of the rest, so that the fuzzer reaches the header, the
// Faiss section (faiss::read_index) and the tombstones behind it. The index dimension is
// taken from the snapshot's header (bytes 12..15) when it is in 1..256, so the seeds can use
// small vectors.
#include <malloc.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_util.h"
#include "index/face_index.h"
#include "index/internal/checksum.h"

namespace {

using homeward::fuzz::Fail;
using homeward::index::FaceIndex;
using homeward::index::IndexOptions;

std::string* dir = nullptr;

void Exercise(FaceIndex& index, const IndexOptions& options) {
  const int64_t size = index.size();
  if (size < 0 || index.tombstones() < 0) Fail("negative size or tombstones");
  std::vector<float> q(options.dim, 0.25f);
  auto hits = index.Search(q.data(), 5);
  if (hits.ok()) {
    if (static_cast<int64_t>(hits->size()) > std::min<int64_t>(size, 5)) {
      Fail(absl::StrCat("Search returned ", hits->size(), " hits from ", size, " vectors"));
    }
    for (const auto& h : *hits) {
      if (h.id < 0) Fail(absl::StrCat("Search returned id ", h.id));
    }
  }
  // A valid snapshot may hold any id, this one too: remove it first (the size drops by one
  // when it was there), then add it, then remove it again. A removed id never comes back.
  const int64_t some_id = int64_t{1} << 40;
  if (!index.Remove({some_id}).ok()) Fail("Remove of an id failed");
  const int64_t without = index.size();
  if (without != size && without != size - 1) {
    Fail(absl::StrCat("Remove of one id: size ", size, " -> ", without));
  }
  auto returns = [&](int64_t id) {
    auto found = index.Search(q.data(), 5);
    if (!found.ok()) return false;
    for (const auto& h : *found) {
      if (h.id == id) return true;
    }
    return false;
  };
  if (returns(some_id)) Fail(absl::StrCat("removed id ", some_id, " still found"));
  const bool added = index.Add({some_id}, q.data()).ok();
  if (added && index.size() != without + 1) {
    Fail(absl::StrCat("Add of an absent id: size ", index.size(), ", expected ", without + 1));
  }
  if (added) {
    if (!index.Remove({some_id}).ok()) Fail("Remove of the id just added failed");
    if (index.size() != without) Fail("Remove did not restore the size");
    if (returns(some_id)) Fail(absl::StrCat("removed id ", some_id, " found after Add+Remove"));
  }
  const std::string again = *dir + "/again.snap";
  auto saved = index.Save(again, 7);
  if (!saved.ok()) Fail("Save of a loaded index failed: " + saved.ToString());
  uint64_t change = 0;
  auto reloaded = FaceIndex::Load(again, options, &change);
  if (!reloaded.ok()) Fail("a snapshot just saved does not load: " + reloaded.status().ToString());
  if (change != 7 || (*reloaded)->size() != index.size()) Fail("Save/Load round trip differs");
}

void TryLoad(const std::string& bytes) {
  const std::string path = *dir + "/in.snap";
  if (!homeward::fuzz::WriteFile(path, bytes)) Fail("cannot write " + path);
  IndexOptions options;
  if (bytes.size() >= 16) {
    uint32_t dim = 0;
    std::memcpy(&dim, bytes.data() + 12, 4);
    if (dim >= 1 && dim <= 256) options.dim = static_cast<int>(dim);
  }
  uint64_t change = 0;
  auto index = FaceIndex::Load(path, options, &change);
  static const bool verbose = std::getenv("HOMEWARD_FUZZ_VERBOSE") != nullptr;
  if (verbose) {
    std::fprintf(stderr, "Load: %s\n",
                 index.ok() ? absl::StrCat("OK, size ", (*index)->size(), " tombstones ",
                                           (*index)->tombstones()).c_str()
                            : index.status().ToString().c_str());
  }
  if (!index.ok()) {
    const auto code = index.status().code();
    // RESOURCE_EXHAUSTED: Faiss's reader met a length it cannot allocate (see operator new).
    if (code != absl::StatusCode::kDataLoss && code != absl::StatusCode::kInvalidArgument &&
        code != absl::StatusCode::kResourceExhausted) {
      Fail("Load returned " + index.status().ToString());
    }
    return;
  }
  Exercise(**index, options);
}

}  // namespace

// Faiss sizes a vector from its length field before reading it (up to 2^40 elements), and
// an IVF section may declare many lists. In production an allocation the machine cannot back
// throws std::bad_alloc, which Load returns as RESOURCE_EXHAUSTED; ASan's operator new aborts
// instead. These replacements throw once one input has allocated more than 16 MiB (the seeds
// need well under 1 MiB), so the fuzzer keeps looking for memory errors. The budget also
// bounds what Faiss leaks when read_index throws half-way (its partial objects are not freed).
namespace {
constexpr size_t kInputBudget = size_t{16} << 20;
std::atomic<size_t> live{0};
std::atomic<size_t> live_at_input_start{0};
std::atomic<bool> in_input{false};  // libFuzzer's own allocations are not limited
void* Allocate(size_t n, size_t align = 0) {
  if (in_input.load(std::memory_order_relaxed) &&
      (n > kInputBudget || live.load(std::memory_order_relaxed) + n >
                               live_at_input_start.load(std::memory_order_relaxed) + kInputBudget)) {
    throw std::bad_alloc();
  }
  if (n == 0) n = 1;
  void* p = align == 0 ? std::malloc(n) : std::aligned_alloc(align, (n + align - 1) / align * align);
  if (p == nullptr) throw std::bad_alloc();
  live.fetch_add(malloc_usable_size(p), std::memory_order_relaxed);
  return p;
}
void Free(void* p) noexcept {
  if (p == nullptr) return;
  live.fetch_sub(malloc_usable_size(p), std::memory_order_relaxed);
  std::free(p);
}
void* AllocateOrNull(size_t n, size_t align = 0) noexcept {
  try {
    return Allocate(n, align);
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}
}  // namespace
// Every variant, so that none of ASan's (which pair with its own delete) is linked.
using std::align_val_t;
using std::nothrow_t;
void* operator new(size_t n) { return Allocate(n); }
void* operator new[](size_t n) { return Allocate(n); }
void* operator new(size_t n, const nothrow_t&) noexcept { return AllocateOrNull(n); }
void* operator new[](size_t n, const nothrow_t&) noexcept { return AllocateOrNull(n); }
void* operator new(size_t n, align_val_t a) { return Allocate(n, static_cast<size_t>(a)); }
void* operator new[](size_t n, align_val_t a) { return Allocate(n, static_cast<size_t>(a)); }
void* operator new(size_t n, align_val_t a, const nothrow_t&) noexcept {
  return AllocateOrNull(n, static_cast<size_t>(a));
}
void* operator new[](size_t n, align_val_t a, const nothrow_t&) noexcept {
  return AllocateOrNull(n, static_cast<size_t>(a));
}
void operator delete(void* p) noexcept { Free(p); }
void operator delete[](void* p) noexcept { Free(p); }
void operator delete(void* p, size_t) noexcept { Free(p); }
void operator delete[](void* p, size_t) noexcept { Free(p); }
void operator delete(void* p, const nothrow_t&) noexcept { Free(p); }
void operator delete[](void* p, const nothrow_t&) noexcept { Free(p); }
void operator delete(void* p, align_val_t) noexcept { Free(p); }
void operator delete[](void* p, align_val_t) noexcept { Free(p); }
void operator delete(void* p, size_t, align_val_t) noexcept { Free(p); }
void operator delete[](void* p, size_t, align_val_t) noexcept { Free(p); }
void operator delete(void* p, align_val_t, const nothrow_t&) noexcept { Free(p); }
void operator delete[](void* p, align_val_t, const nothrow_t&) noexcept { Free(p); }

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  dir = new std::string(homeward::fuzz::MakeTempDir("hw_fuzz_snapshot"));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  live_at_input_start.store(live.load());
  in_input.store(true);
  struct Done {
    ~Done() { in_input.store(false); }
  } done;
  std::string bytes(reinterpret_cast<const char*>(data), size);
  TryLoad(bytes);
  if (bytes.size() >= 8) {
    homeward::index::internal::Checksum checksum;
    checksum.Update(bytes.data(), bytes.size() - 8);
    const uint64_t sum = checksum.Finish();
    std::memcpy(bytes.data() + bytes.size() - 8, &sum, 8);
    TryLoad(bytes);
  }
  return 0;
}
