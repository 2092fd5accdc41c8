// FaceIndex: nearest-neighbour search over 128-d face descriptors, a thin facade over Faiss.
//
// Owns one Faiss index built from a factory string ("IDMap2,Flat" for exact search, an
// approximate one such as "IDMap2,HNSW32" or "IVF4096,Flat" for large galleries). No Faiss
// type appears here. Ids are the catalog's face ids (int64, >= 0).
//
// THREAD SAFETY: Search, size and Save may run concurrently with each other; Add and Remove
// take an exclusive lock, so a search never sees a half-added batch.
//
// Errors: INVALID_ARGUMENT for bad dimensions, k, or ids; NOT_FOUND for a missing snapshot;
// DATA_LOSS for a corrupt snapshot; FAILED_PRECONDITION when an approximate index must be
// trained first; INTERNAL for any other Faiss failure (Faiss exceptions never escape).
//
// Searches run single-threaded inside Faiss (OpenMP is limited to 1 thread on the calling
// thread for the duration of the call); Add, Train and Compact may use all OpenMP threads.
// Run with OMP_WAIT_POLICY=PASSIVE on small machines.
#ifndef HOMEWARD_INDEX_FACE_INDEX_H_
#define HOMEWARD_INDEX_FACE_INDEX_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace homeward::index {

struct IndexOptions {
  std::string factory = "IDMap2,Flat";  // any Faiss index_factory string, L2 metric
  int dim = 128;
  int hnsw_ef_search = 128;  // HNSW search breadth (ignored by other indexes)
  int ivf_nprobe = 64;       // IVF lists probed (ignored by other indexes)
  // Exact (Flat) indexes compact their storage inside Remove once tombstones exceed this
  // fraction of stored vectors; 0 disables. Approximate indexes only compact on Compact().
  double auto_compact_fraction = 0.1;
};

struct Hit {
  int64_t id = -1;
  float distance = 0;  // Euclidean (not squared) distance
};

// Keeps the ids for which it returns true. Called from the searching thread.
using IdFilter = std::function<bool(int64_t id)>;

class FaceIndex {
 public:
  // INVALID_ARGUMENT when the factory string is not understood by Faiss.
  static absl::StatusOr<std::unique_ptr<FaceIndex>> Create(const IndexOptions& options);
  // Loads a snapshot written by Save. NOT_FOUND / DATA_LOSS as above; `*last_change` receives
  // the catalog change sequence number the snapshot includes.
  static absl::StatusOr<std::unique_ptr<FaceIndex>> Load(const std::string& path,
                                                         const IndexOptions& options,
                                                         uint64_t* last_change);
  virtual ~FaceIndex() = default;

  // Trains an approximate index (IVF) on n sample vectors; a no-op OK for indexes that need
  // no training. FAILED_PRECONDITION if the index is already trained and not empty.
  virtual absl::Status Train(const float* vectors, int64_t n) = 0;
  // Adds n vectors (n * dim floats). Re-adding an existing id replaces it (last one wins
  // within a batch). FAILED_PRECONDITION if the index needs Train first.
  virtual absl::Status Add(const std::vector<int64_t>& ids, const float* vectors) = 0;
  // Removes ids (unknown ids are ignored). Indexes that cannot remove (HNSW) keep a tombstone
  // set that searches skip; Rebuild-worthy garbage is reported by tombstones().
  virtual absl::Status Remove(const std::vector<int64_t>& ids) = 0;
  // The k nearest live vectors to `query` (dim floats), nearest first, optionally filtered.
  // A selective filter widens the search so that the k best passing ids are returned.
  virtual absl::StatusOr<std::vector<Hit>> Search(const float* query, int k,
                                                  const IdFilter& filter = nullptr) const = 0;
  // Drops tombstoned vectors from storage (a full rebuild for HNSW: minutes at 1M faces;
  // searches wait). Afterwards tombstones() == 0.
  virtual absl::Status Compact() = 0;
  // Writes a snapshot atomically (temp file + rename) tagged with `last_change`.
  virtual absl::Status Save(const std::string& path, uint64_t last_change) const = 0;
  virtual int64_t size() const = 0;        // live vectors
  virtual int64_t tombstones() const = 0;  // removed but still stored
  virtual const IndexOptions& options() const = 0;
};

}  // namespace homeward::index

#endif  // HOMEWARD_INDEX_FACE_INDEX_H_
