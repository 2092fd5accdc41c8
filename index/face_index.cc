// FaceIndex over Faiss. Every Faiss index is an IndexIDMap2 around an inner index built by
// faiss::index_factory; the inner index numbers vectors by "slot" (insertion order) and the
// IDMap2 maps slots to face ids. Removal and replacement tombstone slots; searches skip them
// through an IDSelector, which also carries the caller's IdFilter. Searches call the inner
// index directly, because Faiss 1.7.3's IndexIDMap2::search rejects SearchParameters.
//
// Snapshot layout (little-endian), checksum over every byte before it:
//   "HWFIDX01" u32 version u32 dim u64 last_change u32 factory_len factory
//   <faiss::write_index bytes> u64 n_dead i64 dead_slots[n_dead]
//   u64 faiss_len "HWFIEND1" u64 checksum
#include "index/face_index.h"

#include <fcntl.h>
#include <omp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <typeinfo>
#include <unordered_map>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "faiss/IndexFlat.h"
#include "faiss/IndexHNSW.h"
#include "faiss/IndexIDMap.h"
#include "faiss/IndexIVF.h"
#include "faiss/IndexIVFFlat.h"
#include "faiss/IndexScalarQuantizer.h"
#include "faiss/impl/IDSelector.h"
#include "faiss/impl/io.h"
#include "faiss/index_factory.h"
#include "faiss/index_io.h"
#include "faiss/invlists/InvertedLists.h"
#include "faiss/utils/Heap.h"
#include "index/internal/checksum.h"
#include "index/internal/guarded_call.h"
#include "index/internal/l2_scan.h"
#include "index/internal/rw_lock.h"

namespace homeward::index {
namespace {

using idx_t = faiss::Index::idx_t;
using internal::Checksum;
using internal::GuardedCall;

constexpr int kMaxK = 10000;
constexpr int kMaxDim = 4096;
constexpr uint32_t kSnapshotVersion = 1;
constexpr char kMagic[8] = {'H', 'W', 'F', 'I', 'D', 'X', '0', '1'};
constexpr char kTrailerMagic[8] = {'H', 'W', 'F', 'I', 'E', 'N', 'D', '1'};
constexpr size_t kTrailerBytes = 8 + 8 + 8;
constexpr uint32_t kMaxFactoryLen = 1024;
// Filtered approximate search: below this estimated pass fraction, scan exactly.
constexpr double kExactScanFraction = 0.02;
constexpr int kSelectivitySamples = 1024;
constexpr float kNoHitDistance = 1e30f;  // squared; Faiss marks "no result" with FLT_MAX/inf

enum class Kind { kFlat, kHnsw, kIvf };

// Limits OpenMP to `n` threads on the calling thread for the scope (the setting is
// per-thread in libgomp, so concurrent searches do not interfere).
class ScopedOmpThreads {
 public:
  explicit ScopedOmpThreads(int n) : saved_(omp_get_max_threads()) { omp_set_num_threads(n); }
  ~ScopedOmpThreads() { omp_set_num_threads(saved_); }

 private:
  int saved_;
};

// Accepts live slots whose face id passes the caller's filter.
class SlotSelector final : public faiss::IDSelector {
 public:
  SlotSelector(const std::vector<idx_t>& id_map, const std::vector<bool>* dead,
               const IdFilter* filter)
      : id_map_(id_map), dead_(dead), filter_(filter) {}
  bool is_member(idx_t slot) const override {
    if (dead_ != nullptr && (*dead_)[slot]) return false;
    return filter_ == nullptr || (*filter_)(id_map_[slot]);
  }

 private:
  const std::vector<idx_t>& id_map_;
  const std::vector<bool>* dead_;
  const IdFilter* filter_;
};

// The k nearest of the vectors it is shown, by squared L2, through the vectorized kernel
// (internal/l2_scan.h): Faiss 1.7.3's own single-query loops are scalar. `d` and `slots`
// (k entries) hold a max-heap while scanning and the ascending result after Finish(), padded
// with slot -1 like Faiss. The selector is asked only about vectors that would enter the heap.
class TopKScan {
 public:
  TopKScan(idx_t k, float* d, idx_t* slots) : k_(k), d_(d), slots_(slots) {
    faiss::maxheap_heapify(k_, d_, slots_);
  }
  // n vectors of `dim` floats at x, numbered ids[i], or first + i when ids is null.
  void Scan(const float* q, const float* x, size_t n, size_t dim, const idx_t* ids, idx_t first,
            const faiss::IDSelector* sel) {
    for (size_t b = 0; b < n; b += kBlock) {
      const size_t m = std::min(kBlock, n - b);
      internal::L2SqrBatch(q, x + b * dim, m, dim, buf_);
      for (size_t j = 0; j < m; ++j) {
        if (!(buf_[j] < d_[0])) continue;
        const idx_t slot = ids != nullptr ? ids[b + j] : first + static_cast<idx_t>(b + j);
        if (sel != nullptr && !sel->is_member(slot)) continue;
        faiss::maxheap_replace_top(k_, d_, slots_, buf_[j], slot);
      }
    }
  }
  void Finish() { faiss::maxheap_reorder(k_, d_, slots_); }

 private:
  static constexpr size_t kBlock = 256;
  const idx_t k_;
  float* const d_;
  idx_t* const slots_;
  float buf_[kBlock];
};

// The IVF indexes whose lists hold raw floats, which TopKScan can read in place.
const faiss::IndexIVF* PlainIvfFlat(const faiss::Index* inner, int dim) {
  const auto* ivf = dynamic_cast<const faiss::IndexIVFFlat*>(inner);
  if (ivf == nullptr || typeid(*ivf) != typeid(faiss::IndexIVFFlat) ||
      ivf->code_size != dim * sizeof(float) || ivf->invlists == nullptr) {
    return nullptr;
  }
  return ivf;
}

// "IDMap2," + the factory without any IDMap prefix of its own.
std::string WrappedFactory(const std::string& factory) {
  for (const char* prefix : {"IDMap2,", "IDMap,"}) {
    if (factory.rfind(prefix, 0) == 0) return absl::StrCat("IDMap2,", factory.substr(strlen(prefix)));
  }
  return absl::StrCat("IDMap2,", factory);
}

absl::StatusOr<Kind> KindOf(const faiss::Index* inner) {
  if (dynamic_cast<const faiss::IndexFlat*>(inner) != nullptr) return Kind::kFlat;
  if (const auto* hnsw = dynamic_cast<const faiss::IndexHNSW*>(inner)) {
    if (dynamic_cast<const faiss::IndexFlat*>(hnsw->storage) != nullptr) return Kind::kHnsw;
  }
  if (dynamic_cast<const faiss::IndexIVF*>(inner) != nullptr) return Kind::kIvf;
  return absl::InvalidArgumentError(
      "unsupported index type: use Flat, HNSW<M>[,Flat] or IVF<n>[_HNSW<M>],<codes>");
}

absl::Status CheckFinite(const float* v, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(v[i])) return absl::InvalidArgumentError("vector has a NaN or Inf");
  }
  return absl::OkStatus();
}

absl::Status ErrnoStatus(const std::string& what) {
  return absl::ErrnoToStatus(errno, what);
}

// Buffered, checksummed writer over a file descriptor; also the faiss::IOWriter sink.
class SnapshotWriter final : public faiss::IOWriter {
 public:
  explicit SnapshotWriter(int fd) : fd_(fd) { buf_.reserve(kBufBytes); }
  size_t operator()(const void* ptr, size_t size, size_t nitems) override {
    Write(ptr, size * nitems);
    return ok_ ? nitems : 0;
  }
  void Write(const void* data, size_t n) {
    checksum_.Update(data, n);
    written_ += n;
    const auto* p = static_cast<const char*>(data);
    while (n > 0 && ok_) {
      const size_t take = std::min(n, kBufBytes - buf_.size());
      buf_.insert(buf_.end(), p, p + take);
      p += take;
      n -= take;
      if (buf_.size() == kBufBytes) Flush();
    }
  }
  template <typename T>
  void Put(const T& value) {
    Write(&value, sizeof(T));
  }
  void Flush() {
    size_t off = 0;
    while (ok_ && off < buf_.size()) {
      const ssize_t w = ::write(fd_, buf_.data() + off, buf_.size() - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        ok_ = false;
        errno_ = errno;
      } else {
        off += static_cast<size_t>(w);
      }
    }
    buf_.clear();
  }
  bool ok() const { return ok_; }
  int error() const { return errno_; }
  uint64_t written() const { return written_; }
  uint64_t checksum() const { return checksum_.Finish(); }

 private:
  static constexpr size_t kBufBytes = 1 << 20;
  int fd_;
  std::vector<char> buf_;
  Checksum checksum_;
  uint64_t written_ = 0;
  bool ok_ = true;
  int errno_ = 0;
};

// Reads at most `limit` bytes from a file descriptor; also the faiss::IOReader source, so a
// truncated Faiss section surfaces as a short read (which Faiss turns into an exception).
class BoundedReader final : public faiss::IOReader {
 public:
  BoundedReader(int fd, uint64_t limit) : fd_(fd), left_(limit) {}
  size_t operator()(void* ptr, size_t size, size_t nitems) override {
    if (size == 0) return nitems;
    const uint64_t want = std::min<uint64_t>(nitems, left_ / size);
    return Read(ptr, want * size) / size;
  }
  // Returns the bytes read (fewer than n at the limit or end of file).
  size_t Read(void* ptr, size_t n) {
    n = std::min<uint64_t>(n, left_);
    size_t got = 0;
    while (got < n) {
      const ssize_t r = ::read(fd_, static_cast<char*>(ptr) + got, n - got);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      got += static_cast<size_t>(r);
    }
    left_ -= got;
    return got;
  }
  template <typename T>
  bool Get(T* value) {
    return Read(value, sizeof(T)) == sizeof(T);
  }
  uint64_t left() const { return left_; }

 private:
  int fd_;
  uint64_t left_;
};

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int Release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

class FaissFaceIndex final : public FaceIndex {
 public:
  FaissFaceIndex(const IndexOptions& options, std::unique_ptr<faiss::IndexIDMap2> index,
                 Kind kind, std::vector<bool> dead, int64_t dead_count)
      : options_(options),
        kind_(kind),
        index_(std::move(index)),
        dead_(std::move(dead)),
        dead_count_(dead_count) {
    // Set once, before any search: the beam of unwidened HNSW searches.
    if (kind_ == Kind::kHnsw) {
      static_cast<faiss::IndexHNSW*>(index_->index)->hnsw.efSearch = options_.hnsw_ef_search;
    }
  }

  absl::Status Train(const float* vectors, int64_t n) override;
  absl::Status Add(const std::vector<int64_t>& ids, const float* vectors) override;
  absl::Status Remove(const std::vector<int64_t>& ids) override;
  absl::StatusOr<std::vector<Hit>> Search(const float* query, int k,
                                          const IdFilter& filter) const override;
  absl::Status Compact() override;
  absl::Status Save(const std::string& path, uint64_t last_change) const override;

  int64_t size() const override {
    internal::ReaderLock lock(&mu_);
    return index_->ntotal - dead_count_;
  }
  int64_t tombstones() const override {
    internal::ReaderLock lock(&mu_);
    return dead_count_;
  }
  const IndexOptions& options() const override { return options_; }

 private:
  faiss::Index* inner() const ABSL_SHARED_LOCKS_REQUIRED(mu_) { return index_->index; }
  void MarkDead(idx_t slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!dead_[slot]) {
      dead_[slot] = true;
      ++dead_count_;
    }
  }
  absl::Status CompactLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Exact k-NN among slots accepted by `sel` (`sel` may be null).
  absl::Status ExactSearch(const float* query, idx_t k, faiss::IDSelector* sel, float* d,
                           idx_t* slots) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Adds IVF-Flat list `list` to `top`.
  void ScanList(const faiss::IndexIVF* ivf, size_t list, const float* query,
                const faiss::IDSelector* sel, TopKScan* top) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Approximate k-NN with search breadth scaled up by `widen` (>= 1).
  // Faiss 1.7.3 ignores SearchParametersHNSW::efSearch (the beam is max(hnsw.efSearch, k)),
  // so HNSW widens by asking for more results; `d` and `slots` are resized to that count.
  absl::Status ApproximateSearch(const float* query, idx_t k, faiss::IDSelector* sel,
                                 double widen, std::vector<float>* d,
                                 std::vector<idx_t>* slots) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const IndexOptions options_;
  const Kind kind_;
  mutable internal::RwLock mu_;
  std::unique_ptr<faiss::IndexIDMap2> index_ ABSL_GUARDED_BY(mu_);
  std::vector<bool> dead_ ABSL_GUARDED_BY(mu_);  // per slot
  int64_t dead_count_ ABSL_GUARDED_BY(mu_) = 0;
};

absl::Status FaissFaceIndex::Train(const float* vectors, int64_t n) {
  if (kind_ != Kind::kIvf) return absl::OkStatus();  // nothing to train (kind_ is const)
  if (vectors == nullptr || n <= 0) return absl::InvalidArgumentError("Train needs vectors");
  HW_RETURN_IF_ERROR(CheckFinite(vectors, static_cast<size_t>(n) * options_.dim));
  internal::WriterLock lock(&mu_);
  const auto* ivf = static_cast<const faiss::IndexIVF*>(inner());
  if (index_->is_trained && index_->ntotal > 0) {
    return absl::FailedPreconditionError("index is trained and not empty");
  }
  if (n < static_cast<int64_t>(ivf->nlist)) {
    return absl::InvalidArgumentError(
        absl::StrCat("Train needs at least nlist=", ivf->nlist, " vectors, got ", n));
  }
  return GuardedCall("faiss train", [&] {
    index_->train(n, vectors);
    return absl::OkStatus();
  });
}

absl::Status FaissFaceIndex::Add(const std::vector<int64_t>& ids, const float* vectors) {
  if (ids.empty()) return absl::OkStatus();
  if (vectors == nullptr) return absl::InvalidArgumentError("Add needs vectors");
  for (int64_t id : ids) {
    if (id < 0) return absl::InvalidArgumentError(absl::StrCat("negative face id ", id));
  }
  const auto n = static_cast<idx_t>(ids.size());
  HW_RETURN_IF_ERROR(CheckFinite(vectors, static_cast<size_t>(n) * options_.dim));
  // Within a batch the last occurrence of an id wins.
  std::unordered_map<int64_t, idx_t> last;
  last.reserve(ids.size());
  for (idx_t i = 0; i < n; ++i) last[ids[i]] = i;

  internal::WriterLock lock(&mu_);
  if (!index_->is_trained) return absl::FailedPreconditionError("index must be trained first");
  if (kind_ == Kind::kHnsw && index_->ntotal + n > INT32_MAX) {
    return absl::ResourceExhaustedError("HNSW holds at most 2^31 vectors");
  }
  std::vector<idx_t> replaced;
  for (const auto& [id, i] : last) {
    auto it = index_->rev_map.find(id);
    if (it != index_->rev_map.end()) replaced.push_back(it->second);
  }
  const idx_t first_slot = index_->ntotal;
  HW_RETURN_IF_ERROR(GuardedCall("faiss add", [&] {
    index_->add_with_ids(n, vectors, ids.data());
    return absl::OkStatus();
  }));
  dead_.resize(index_->ntotal, false);
  for (idx_t slot : replaced) MarkDead(slot);
  if (last.size() != ids.size()) {
    for (idx_t i = 0; i < n; ++i) {
      if (last[ids[i]] != i) MarkDead(first_slot + i);
    }
  }
  return absl::OkStatus();
}

absl::Status FaissFaceIndex::Remove(const std::vector<int64_t>& ids) {
  for (int64_t id : ids) {
    if (id < 0) return absl::InvalidArgumentError(absl::StrCat("negative face id ", id));
  }
  internal::WriterLock lock(&mu_);
  for (int64_t id : ids) {
    auto it = index_->rev_map.find(id);
    if (it == index_->rev_map.end()) continue;
    MarkDead(it->second);
    index_->rev_map.erase(it);
  }
  if (kind_ == Kind::kFlat && options_.auto_compact_fraction > 0 &&
      dead_count_ > options_.auto_compact_fraction * index_->ntotal) {
    return CompactLocked();
  }
  return absl::OkStatus();
}

absl::Status FaissFaceIndex::Compact() {
  internal::WriterLock lock(&mu_);
  return CompactLocked();
}

absl::Status FaissFaceIndex::CompactLocked() {
  if (dead_count_ == 0) return absl::OkStatus();
  const idx_t ntotal = index_->ntotal;
  std::vector<idx_t>& id_map = index_->id_map;
  if (kind_ == Kind::kFlat) {
    // IndexFlat::remove_ids keeps the order of the remaining slots: compact id_map alike.
    std::vector<idx_t> dead_slots;
    dead_slots.reserve(dead_count_);
    for (idx_t s = 0; s < ntotal; ++s) {
      if (dead_[s]) dead_slots.push_back(s);
    }
    faiss::IDSelectorBatch sel(dead_slots.size(), dead_slots.data());
    HW_RETURN_IF_ERROR(GuardedCall("faiss remove_ids", [&] {
      inner()->remove_ids(sel);
      return absl::OkStatus();
    }));
    idx_t j = 0;
    for (idx_t s = 0; s < ntotal; ++s) {
      if (!dead_[s]) id_map[j++] = id_map[s];
    }
    id_map.resize(j);
    index_->ntotal = j;
  } else {
    // HNSW cannot remove and IVF renumbering breaks IDMap: copy the live vectors out,
    // reset (IVF keeps its trained quantizer) and add them back.
    const int dim = options_.dim;
    std::vector<idx_t> pos(ntotal, -1);
    std::vector<int64_t> live_ids;
    live_ids.reserve(ntotal - dead_count_);
    for (idx_t s = 0; s < ntotal; ++s) {
      if (dead_[s]) continue;
      pos[s] = static_cast<idx_t>(live_ids.size());
      live_ids.push_back(id_map[s]);
    }
    std::vector<float> live(live_ids.size() * dim);
    HW_RETURN_IF_ERROR(GuardedCall("faiss rebuild", [&] {
      if (kind_ == Kind::kHnsw) {
        const auto* storage =
            static_cast<const faiss::IndexFlat*>(static_cast<faiss::IndexHNSW*>(inner())->storage);
        for (idx_t s = 0; s < ntotal; ++s) {
          if (pos[s] >= 0) std::memcpy(&live[pos[s] * dim], storage->get_xb() + s * dim, dim * 4);
        }
      } else {
        const auto* ivf = static_cast<const faiss::IndexIVF*>(inner());
        for (size_t list = 0; list < ivf->nlist; ++list) {
          faiss::InvertedLists::ScopedIds slots(ivf->invlists, list);
          const size_t n = ivf->invlists->list_size(list);
          for (size_t off = 0; off < n; ++off) {
            const idx_t s = slots[off];
            if (s >= 0 && s < ntotal && pos[s] >= 0) {
              ivf->reconstruct_from_offset(list, off, &live[pos[s] * dim]);
            }
          }
        }
      }
      index_->reset();
      index_->rev_map.clear();
      index_->add_with_ids(static_cast<idx_t>(live_ids.size()), live.data(), live_ids.data());
      return absl::OkStatus();
    }));
  }
  index_->construct_rev_map();
  dead_.assign(index_->ntotal, false);
  dead_count_ = 0;
  return absl::OkStatus();
}

absl::Status FaissFaceIndex::ExactSearch(const float* query, idx_t k, faiss::IDSelector* sel,
                                         float* d, idx_t* slots) const {
  return GuardedCall("faiss search", [&] {
    const int dim = options_.dim;
    if (kind_ == Kind::kIvf) {
      const auto* ivf = static_cast<const faiss::IndexIVF*>(inner());
      if (PlainIvfFlat(ivf, dim) == nullptr) {
        faiss::SearchParametersIVF params;
        params.sel = sel;
        params.nprobe = ivf->nlist;
        inner()->search(1, query, k, d, slots, &params);
        return absl::OkStatus();
      }
      TopKScan top(k, d, slots);
      for (size_t list = 0; list < ivf->nlist; ++list) ScanList(ivf, list, query, sel, &top);
      top.Finish();
      return absl::OkStatus();
    }
    const auto* flat = static_cast<const faiss::IndexFlat*>(
        kind_ == Kind::kHnsw ? static_cast<const faiss::IndexHNSW*>(inner())->storage : inner());
    TopKScan top(k, d, slots);
    top.Scan(query, flat->get_xb(), static_cast<size_t>(flat->ntotal), dim, nullptr, 0, sel);
    top.Finish();
    return absl::OkStatus();
  });
}

void FaissFaceIndex::ScanList(const faiss::IndexIVF* ivf, size_t list, const float* query,
                              const faiss::IDSelector* sel, TopKScan* top) const {
  const size_t n = ivf->invlists->list_size(list);
  if (n == 0) return;
  faiss::InvertedLists::ScopedCodes codes(ivf->invlists, list);
  faiss::InvertedLists::ScopedIds ids(ivf->invlists, list);
  top->Scan(query, reinterpret_cast<const float*>(codes.get()), n, options_.dim, ids.get(), 0,
            sel);
}

absl::Status FaissFaceIndex::ApproximateSearch(const float* query, idx_t k,
                                               faiss::IDSelector* sel, double widen,
                                               std::vector<float>* d,
                                               std::vector<idx_t>* slots) const {
  return GuardedCall("faiss search", [&] {
    if (kind_ == Kind::kHnsw) {
      faiss::SearchParametersHNSW params;
      params.sel = sel;
      params.efSearch = options_.hnsw_ef_search;
      const idx_t beam =
          widen > 1 ? static_cast<idx_t>(std::max<double>(options_.hnsw_ef_search, k) * widen)
                    : k;
      const idx_t n = std::max(k, std::min<idx_t>(beam, index_->ntotal));
      d->resize(n);
      slots->resize(n);
      inner()->search(1, query, n, d->data(), slots->data(), &params);
    } else {
      const auto* ivf = static_cast<const faiss::IndexIVF*>(inner());
      const size_t nprobe = std::max<size_t>(1, static_cast<size_t>(std::min<double>(
          static_cast<double>(options_.ivf_nprobe) * widen, ivf->nlist)));
      const auto* coarse = dynamic_cast<const faiss::IndexFlat*>(ivf->quantizer);
      if (PlainIvfFlat(ivf, options_.dim) != nullptr && coarse != nullptr &&
          coarse->ntotal == static_cast<idx_t>(ivf->nlist)) {
        // The nprobe nearest centroids, then those lists, both with the vectorized scan.
        std::vector<float> list_d(nprobe);
        std::vector<idx_t> lists(nprobe);
        TopKScan nearest_lists(static_cast<idx_t>(nprobe), list_d.data(), lists.data());
        nearest_lists.Scan(query, coarse->get_xb(), ivf->nlist, options_.dim, nullptr, 0,
                           nullptr);
        nearest_lists.Finish();
        d->resize(k);
        slots->resize(k);
        TopKScan top(k, d->data(), slots->data());
        for (idx_t list : lists) {
          if (list >= 0) ScanList(ivf, static_cast<size_t>(list), query, sel, &top);
        }
        top.Finish();
        return absl::OkStatus();
      }
      faiss::SearchParametersIVF params;
      params.sel = sel;
      params.nprobe = nprobe;
      faiss::SearchParametersHNSW quantizer_params;
      if (dynamic_cast<const faiss::IndexHNSW*>(ivf->quantizer) != nullptr) {
        quantizer_params.efSearch = static_cast<int>(std::max<size_t>(2 * params.nprobe, 64));
        params.quantizer_params = &quantizer_params;
      }
      d->resize(k);
      slots->resize(k);
      inner()->search(1, query, k, d->data(), slots->data(), &params);
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<Hit>> FaissFaceIndex::Search(const float* query, int k,
                                                        const IdFilter& filter) const {
  if (query == nullptr) return absl::InvalidArgumentError("Search needs a query vector");
  if (k < 1 || k > kMaxK) {
    return absl::InvalidArgumentError(absl::StrCat("k must be in 1..", kMaxK, ", got ", k));
  }
  HW_RETURN_IF_ERROR(CheckFinite(query, options_.dim));
  ScopedOmpThreads one_thread(1);
  internal::ReaderLock lock(&mu_);
  const idx_t ntotal = index_->ntotal;
  std::vector<Hit> hits;
  if (ntotal - dead_count_ == 0) return hits;
  const idx_t kk = std::min<idx_t>(k, ntotal);
  std::vector<float> d(kk);
  std::vector<idx_t> slots(kk);
  const bool restricted = filter != nullptr || dead_count_ > 0;
  SlotSelector selector(index_->id_map, dead_count_ > 0 ? &dead_ : nullptr,
                        filter != nullptr ? &filter : nullptr);
  faiss::IDSelector* sel = restricted ? &selector : nullptr;

  if (kind_ == Kind::kFlat) {
    HW_RETURN_IF_ERROR(ExactSearch(query, kk, sel, d.data(), slots.data()));
  } else if (!restricted) {
    HW_RETURN_IF_ERROR(ApproximateSearch(query, kk, nullptr, 1.0, &d, &slots));
  } else {
    // Estimate the passing fraction on evenly spaced slots; scan exactly when few pass or
    // when the widened approximate search comes back short.
    const idx_t samples = std::min<idx_t>(kSelectivitySamples, ntotal);
    int passed = 0;
    for (idx_t i = 0; i < samples; ++i) passed += selector.is_member(i * ntotal / samples);
    const double fraction = static_cast<double>(passed) / samples;
    bool exact = fraction < kExactScanFraction;
    if (!exact) {
      HW_RETURN_IF_ERROR(ApproximateSearch(query, kk, sel, 1.0 / fraction, &d, &slots));
      idx_t found = 0;
      for (size_t i = 0; i < slots.size() && found < kk; ++i) {
        found += slots[i] >= 0 && slots[i] < ntotal && d[i] < kNoHitDistance &&
                 selector.is_member(slots[i]);
      }
      exact = found < kk;
    }
    if (exact) {
      d.resize(kk);
      slots.resize(kk);
      HW_RETURN_IF_ERROR(ExactSearch(query, kk, sel, d.data(), slots.data()));
    }
  }
  hits.reserve(kk);
  for (size_t i = 0; i < slots.size() && static_cast<idx_t>(hits.size()) < kk; ++i) {
    // Faiss 1.7.3 pads with -1, except k=1 with a selector rejecting everything, which
    // returns slot 0 at +inf: drop both, and anything the selector would reject.
    if (slots[i] < 0 || slots[i] >= ntotal || !(d[i] < kNoHitDistance)) break;
    if (sel != nullptr && !selector.is_member(slots[i])) continue;
    hits.push_back(Hit{index_->id_map[slots[i]], std::sqrt(std::max(d[i], 0.0f))});
  }
  return hits;
}

absl::Status FaissFaceIndex::Save(const std::string& path, uint64_t last_change) const {
  static std::atomic<uint64_t> counter{0};
  const std::string tmp = absl::StrCat(path, ".tmp.", getpid(), ".", counter++);
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) return ErrnoStatus(absl::StrCat("open ", tmp));
  SnapshotWriter out(fd.get());
  absl::Status status;
  {
    internal::ReaderLock lock(&mu_);
    out.Write(kMagic, sizeof(kMagic));
    out.Put<uint32_t>(kSnapshotVersion);
    out.Put<uint32_t>(options_.dim);
    out.Put<uint64_t>(last_change);
    out.Put<uint32_t>(options_.factory.size());
    out.Write(options_.factory.data(), options_.factory.size());
    const uint64_t faiss_begin = out.written();
    status = GuardedCall("faiss write_index", [&] {
      faiss::write_index(index_.get(), &out);
      return absl::OkStatus();
    });
    const uint64_t faiss_len = out.written() - faiss_begin;
    out.Put<uint64_t>(dead_count_);
    for (idx_t s = 0; s < index_->ntotal; ++s) {
      if (dead_[s]) out.Put<int64_t>(s);
    }
    out.Put<uint64_t>(faiss_len);
    out.Write(kTrailerMagic, sizeof(kTrailerMagic));
  }
  const uint64_t checksum = out.checksum();
  out.Put<uint64_t>(checksum);
  out.Flush();
  // A failed write (ENOSPC: RESOURCE_EXHAUSTED) also makes write_index throw: report the cause.
  if (!out.ok()) status = absl::ErrnoToStatus(out.error(), "write " + tmp);
  if (status.ok() && ::fsync(fd.get()) != 0) status = ErrnoStatus("fsync " + tmp);
  if (status.ok() && ::close(fd.Release()) != 0) status = ErrnoStatus("close " + tmp);
  if (status.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    status = ErrnoStatus("rename to " + path);
  }
  if (!status.ok()) {
    ::unlink(tmp.c_str());
    return status;
  }
  // Make the rename itself durable.
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  Fd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() >= 0) ::fsync(dir_fd.get());
  return absl::OkStatus();
}

// Reads the Faiss section with its outer "IxM2" (IndexIDMap2) read as "IxMp" (IndexIDMap):
// faiss::read_index builds an IDMap2's reverse map from id_map[0..ntotal) without checking
// id_map's length (a heap overflow on a crafted section), so Load checks the lengths first.
class IdMapAsPlainReader final : public faiss::IOReader {
 public:
  IdMapAsPlainReader(faiss::IOReader* in, bool* swapped) : in_(in), swapped_(swapped) {}
  size_t operator()(void* ptr, size_t size, size_t nitems) override {
    const size_t got = (*in_)(ptr, size, nitems);
    // Fourccs are read one 4-byte item at a time; nested IDMap2s are swapped too (and refused).
    if (size * nitems == 4 && got == nitems && std::memcmp(ptr, "IxM2", 4) == 0) {
      std::memcpy(ptr, "IxMp", 4);
      if (first_) *swapped_ = true;
    }
    first_ = false;
    return got;
  }

 private:
  faiss::IOReader* in_;
  bool* swapped_;
  bool first_ = true;
};

// What a search relies on in a loaded inner index and Faiss's reader does not check: every
// slot an IVF list or an HNSW link names is in [0, ntotal), the lists add up to ntotal, an
// HNSW node's links fit its level. Returns "" when consistent, else what is wrong.
// The metric, read as an int: Faiss reads any 4 bytes into the enum.
bool IsL2(const faiss::Index* index) {
  int metric = 0;
  static_assert(sizeof(metric) == sizeof(index->metric_type));
  std::memcpy(&metric, &index->metric_type, sizeof(metric));
  return metric == faiss::METRIC_L2;
}

// is_trained, read as a byte: Faiss reads any byte into the bool; only 0 and 1 are valid.
bool ValidFlags(const faiss::Index* index) {
  unsigned char trained = 0;
  static_assert(sizeof(trained) == sizeof(index->is_trained));
  std::memcpy(&trained, &index->is_trained, 1);
  return trained <= 1;
}

std::string InnerIndexProblem(const faiss::Index* inner, idx_t ntotal, int dim) {
  if (inner->d != dim || inner->ntotal != ntotal) return "inner index size or dimension";
  if (!ValidFlags(inner)) return "inner index flags";
  if (!IsL2(inner)) return "inner index metric is not L2";
  if (const auto* ivf = dynamic_cast<const faiss::IndexIVF*>(inner)) {
    const faiss::InvertedLists* lists = ivf->invlists;
    if (lists == nullptr || ivf->quantizer == nullptr || lists->nlist != ivf->nlist ||
        lists->code_size != ivf->code_size || ivf->quantizer->d != dim || !IsL2(ivf->quantizer) ||
        ivf->quantizer->ntotal > static_cast<idx_t>(ivf->nlist)) {
      return "inconsistent IVF lists";
    }
    size_t total = 0;
    for (size_t l = 0; l < lists->nlist; ++l) {
      const size_t n = lists->list_size(l);
      total += n;
      faiss::InvertedLists::ScopedIds ids(lists, l);
      for (size_t j = 0; j < n; ++j) {
        if (ids[j] < 0 || ids[j] >= ntotal) return "an IVF list names a slot out of range";
      }
    }
    if (total != static_cast<size_t>(ntotal)) return "IVF lists do not add up to the index size";
    if (const auto* ivfsq = dynamic_cast<const faiss::IndexIVFScalarQuantizer*>(ivf)) {
      // A scalar quantizer whose type, code size or trained ranges do not match its
      // dimension makes the search scanner throw inside an OpenMP region (std::terminate).
      using SQ = faiss::ScalarQuantizer;
      const SQ& sq = ivfsq->sq;
      const size_t d = static_cast<size_t>(dim);
      size_t code = 0, trained = 0;
      int qtype = 0;  // read as int: Faiss read any 4 bytes into the enum
      static_assert(sizeof(qtype) == sizeof(sq.qtype));
      std::memcpy(&qtype, &sq.qtype, sizeof(qtype));
      switch (qtype) {
        case SQ::QT_8bit: code = d, trained = 2 * d; break;
        case SQ::QT_4bit: code = (d + 1) / 2, trained = 2 * d; break;
        case SQ::QT_6bit: code = (d * 6 + 7) / 8, trained = 2 * d; break;
        case SQ::QT_8bit_uniform: code = d, trained = 2; break;
        case SQ::QT_4bit_uniform: code = (d + 1) / 2, trained = 2; break;
        case SQ::QT_fp16: code = 2 * d; break;
        case SQ::QT_8bit_direct: code = d; break;
        default: return "unknown scalar quantizer type";
      }
      if (sq.d != d || sq.code_size != code || ivf->code_size != code ||
          (ivf->is_trained && sq.trained.size() != trained)) {
        return "inconsistent scalar quantizer";
      }
    }
  }
  if (const auto* index = dynamic_cast<const faiss::IndexHNSW*>(inner)) {
    const faiss::HNSW& g = index->hnsw;
    const auto& cum = g.cum_nneighbor_per_level;
    if (index->storage == nullptr || index->storage->ntotal != ntotal ||
        index->storage->d != dim || !IsL2(index->storage) ||
        static_cast<idx_t>(g.levels.size()) != ntotal ||
        g.offsets.size() != static_cast<size_t>(ntotal) + 1 || g.offsets[0] != 0 ||
        g.offsets.back() != g.neighbors.size() || cum.empty() || cum[0] != 0) {
      return "inconsistent HNSW graph";
    }
    for (size_t l = 1; l < cum.size(); ++l) {
      if (cum[l] < cum[l - 1]) return "inconsistent HNSW levels";
    }
    for (idx_t i = 0; i < ntotal; ++i) {
      const int levels = g.levels[i];
      if (levels < 1 || static_cast<size_t>(levels) >= cum.size() ||
          g.offsets[i + 1] < g.offsets[i] ||
          g.offsets[i + 1] - g.offsets[i] != static_cast<size_t>(cum[levels])) {
        return "an HNSW node's links do not fit its level";
      }
      for (int level = 0; level < levels; ++level) {
        for (int k = cum[level]; k < cum[level + 1]; ++k) {
          const int n = g.neighbors[g.offsets[i] + k];
          if (n < -1 || n >= ntotal || (n >= 0 && g.levels[n] <= level)) {
            return "an HNSW link names a slot out of range";
          }
        }
      }
    }
    if (ntotal > 0 ? (g.entry_point < 0 || g.entry_point >= ntotal ||
                      g.max_level != g.levels[g.entry_point] - 1)
                   : g.entry_point != -1) {
      return "bad HNSW entry point";
    }
    // The search and insertion parameters the snapshot carries. Faiss sizes its beam
    // buffers from them without checks: upper_beam 0 made the first search write through a
    // null pointer, and a new node's level is drawn from assign_probas, so it must name a
    // level the graph has links for. This project never changes Faiss's defaults
    // (upper_beam 1, efConstruction 40).
    if (g.upper_beam != 1 || g.efConstruction < 1 || g.efConstruction > (1 << 16)) {
      return "bad HNSW search parameters";
    }
    if (g.assign_probas.empty() || g.assign_probas.size() >= cum.size()) {
      return "bad HNSW level probabilities";
    }
    for (double p : g.assign_probas) {
      if (!(p >= 0 && p <= 1)) return "bad HNSW level probabilities";
    }
  }
  return "";
}

absl::Status DataLoss(const std::string& path, const std::string& what) {
  return absl::DataLossError(absl::StrCat("snapshot ", path, ": ", what));
}

absl::Status ValidateOptions(const IndexOptions& options) {
  if (options.dim < 1 || options.dim > kMaxDim) {
    return absl::InvalidArgumentError(absl::StrCat("dim must be in 1..", kMaxDim));
  }
  if (options.hnsw_ef_search < 1 || options.ivf_nprobe < 1 ||
      !(options.auto_compact_fraction >= 0)) {
    return absl::InvalidArgumentError(
        "hnsw_ef_search and ivf_nprobe must be >= 1, auto_compact_fraction >= 0");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<FaceIndex>> FaceIndex::Create(const IndexOptions& options) {
  HW_RETURN_IF_ERROR(ValidateOptions(options));
  std::unique_ptr<faiss::Index> index;
  HW_RETURN_IF_ERROR(GuardedCall(
      "faiss index_factory",
      [&] {
        index = std::unique_ptr<faiss::Index>(faiss::index_factory(
            options.dim, WrappedFactory(options.factory).c_str(), faiss::METRIC_L2));
        return absl::OkStatus();
      },
      absl::StatusCode::kInvalidArgument));
  std::unique_ptr<faiss::IndexIDMap2> id_map(dynamic_cast<faiss::IndexIDMap2*>(index.get()));
  if (id_map == nullptr) return absl::InvalidArgumentError("factory did not give an IDMap2");
  index.release();
  HW_ASSIGN_OR_RETURN(const Kind kind, KindOf(id_map->index));
  return std::make_unique<FaissFaceIndex>(options, std::move(id_map), kind, std::vector<bool>(),
                                          0);
}

absl::StatusOr<std::unique_ptr<FaceIndex>> FaceIndex::Load(const std::string& path,
                                                           const IndexOptions& options,
                                                           uint64_t* last_change) {
  HW_RETURN_IF_ERROR(ValidateOptions(options));
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return ErrnoStatus(absl::StrCat("open ", path));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus(absl::StrCat("stat ", path));
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  const uint64_t min_size = sizeof(kMagic) + 4 + 4 + 8 + 4 + 8 + kTrailerBytes;
  if (file_size < min_size) return DataLoss(path, "truncated");

  // Pass 1: the checksum over everything but its own 8 bytes, and the trailer.
  uint64_t faiss_len = 0;
  {
    BoundedReader in(fd.get(), file_size);
    Checksum checksum;
    std::vector<char> buf(1 << 20);
    uint64_t left = file_size - 8;
    char tail[kTrailerBytes];
    while (left > 0) {
      const size_t want = std::min<uint64_t>(left, buf.size());
      if (in.Read(buf.data(), want) != want) return DataLoss(path, "short read");
      checksum.Update(buf.data(), want);
      left -= want;
    }
    uint64_t stored = 0;
    if (!in.Get(&stored)) return DataLoss(path, "short read");
    if (stored != checksum.Finish()) return DataLoss(path, "checksum mismatch");
    if (::pread(fd.get(), tail, kTrailerBytes, file_size - kTrailerBytes) !=
        static_cast<ssize_t>(kTrailerBytes)) {
      return DataLoss(path, "short read");
    }
    if (std::memcmp(tail + 8, kTrailerMagic, sizeof(kTrailerMagic)) != 0) {
      return DataLoss(path, "bad trailer");
    }
    std::memcpy(&faiss_len, tail, 8);
  }

  // Pass 2: header, Faiss index, tombstones.
  if (::lseek(fd.get(), 0, SEEK_SET) != 0) return ErrnoStatus(absl::StrCat("seek ", path));
  BoundedReader in(fd.get(), file_size - kTrailerBytes);
  char magic[sizeof(kMagic)];
  uint32_t version = 0, dim = 0, factory_len = 0;
  uint64_t change = 0;
  if (in.Read(magic, sizeof(magic)) != sizeof(magic) ||
      std::memcmp(magic, kMagic, sizeof(kMagic)) != 0) {
    return DataLoss(path, "not a Homeward index snapshot");
  }
  if (!in.Get(&version) || version != kSnapshotVersion) {
    return DataLoss(path, "unsupported snapshot version");
  }
  if (!in.Get(&dim) || !in.Get(&change) || !in.Get(&factory_len) ||
      factory_len > kMaxFactoryLen) {
    return DataLoss(path, "bad header");
  }
  std::string factory(factory_len, '\0');
  if (in.Read(factory.data(), factory_len) != factory_len) return DataLoss(path, "bad header");
  if (static_cast<int>(dim) != options.dim) {
    return absl::InvalidArgumentError(
        absl::StrCat("snapshot ", path, " has dim ", dim, ", options say ", options.dim));
  }
  if (faiss_len + 8 > in.left()) return DataLoss(path, "bad section sizes");
  const uint64_t after_faiss = in.left() - faiss_len;

  std::unique_ptr<faiss::Index> index;
  bool was_idmap2 = false;
  {
    BoundedReader faiss_in(fd.get(), faiss_len);
    IdMapAsPlainReader plain_in(&faiss_in, &was_idmap2);
    HW_RETURN_IF_ERROR(GuardedCall(
        "faiss read_index",
        [&] {
          index = std::unique_ptr<faiss::Index>(faiss::read_index(&plain_in));
          return absl::OkStatus();
        },
        absl::StatusCode::kDataLoss));
    if (faiss_in.left() != 0) return DataLoss(path, "Faiss section has trailing bytes");
  }
  BoundedReader rest(fd.get(), after_faiss);
  auto* plain = dynamic_cast<faiss::IndexIDMap*>(index.get());
  if (plain == nullptr || !was_idmap2) {
    return DataLoss(path, "Faiss section is not an IDMap2 index");
  }
  if (plain->d != options.dim || !IsL2(plain) || !ValidFlags(plain) ||
      plain->index == nullptr || plain->index->ntotal != plain->ntotal ||
      static_cast<idx_t>(plain->id_map.size()) != plain->ntotal) {
    return DataLoss(path, "inconsistent Faiss index");
  }
  for (idx_t id : plain->id_map) {
    if (id < 0) return DataLoss(path, "negative face id");
  }
  // Now that the lengths agree, the IDMap2 the snapshot holds: same fields, plus the reverse map.
  auto id_map = std::make_unique<faiss::IndexIDMap2>();
  id_map->d = plain->d;
  id_map->ntotal = plain->ntotal;
  id_map->is_trained = plain->is_trained;
  id_map->metric_type = plain->metric_type;
  id_map->metric_arg = plain->metric_arg;
  id_map->id_map = std::move(plain->id_map);
  id_map->index = plain->index;
  id_map->own_fields = plain->own_fields;
  plain->own_fields = false;
  index.reset();
  absl::StatusOr<Kind> kind = KindOf(id_map->index);
  if (!kind.ok()) return DataLoss(path, std::string(kind.status().message()));
  if (std::string problem = InnerIndexProblem(id_map->index, id_map->ntotal, options.dim);
      !problem.empty()) {
    return DataLoss(path, problem);
  }

  const idx_t ntotal = id_map->ntotal;
  uint64_t n_dead = 0;
  if (!rest.Get(&n_dead) || n_dead != rest.left() / 8 || rest.left() % 8 != 0) {
    return DataLoss(path, "bad tombstone section");
  }
  std::vector<bool> dead(ntotal, false);
  int64_t dead_count = 0;
  for (uint64_t i = 0; i < n_dead; ++i) {
    int64_t slot = -1;
    if (!rest.Get(&slot) || slot < 0 || slot >= ntotal || dead[slot]) {
      return DataLoss(path, "bad tombstone");
    }
    dead[slot] = true;
    ++dead_count;
  }
  // The reverse map holds the live slots only, one per face id, as Add and Remove keep it.
  // A face id in two live slots would outlive its removal (Remove tombstones one slot), so
  // such a snapshot is refused rather than loaded.
  HW_RETURN_IF_ERROR(GuardedCall("reverse map", [&] {
    for (idx_t slot = 0; slot < ntotal; ++slot) {
      if (dead[slot]) continue;
      const idx_t id = id_map->id_map[slot];
      if (!id_map->rev_map.emplace(id, slot).second) {
        return DataLoss(path, absl::StrCat("face id ", id, " in two live slots"));
      }
    }
    return absl::OkStatus();
  }));
  if (last_change != nullptr) *last_change = change;
  IndexOptions loaded = options;
  loaded.factory = factory;
  return std::make_unique<FaissFaceIndex>(loaded, std::move(id_map), *kind, std::move(dead),
                                          dead_count);
}

}  // namespace homeward::index
