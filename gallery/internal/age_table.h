// AgeTable: the age key (gallery/age.h), case id and case status (open or not) of every stored
// face, by face id, in memory, so that a search can leave out an age-inconsistent face without
// reading its row from the catalog.
// 40 bytes a face. The gallery fills it from the catalog in the background after open (a face
// without a row is checked from a catalog read meanwhile) and keeps it on every photo added,
// case updated and case deleted.
//
// THREAD SAFETY: every method may be called concurrently (a reader/writer lock).
#ifndef HOMEWARD_GALLERY_INTERNAL_AGE_TABLE_H_
#define HOMEWARD_GALLERY_INTERNAL_AGE_TABLE_H_

#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "gallery/age.h"

namespace homeward::gallery::internal {

class AgeTable {
 public:
  void Set(int64_t face_id, int64_t case_id, bool open, const AgeKey& key,
           bool only_if_absent = false) {
    if (face_id <= 0) return;
    Row row;
    row.case_id = case_id;
    row.earliest = static_cast<float>(key.window.earliest);
    row.latest = static_cast<float>(key.window.latest);
    row.tolerance = static_cast<float>(key.window.tolerance_years);
    row.photo_day = static_cast<float>(key.photo_day);
    row.age_min = static_cast<float>(key.age_min);
    row.age_upper = static_cast<float>(key.age_upper);
    row.flags = kPresent | (key.window.known ? kWindow : 0) | (key.dated ? kDated : 0) |
                (key.aged ? kAged : 0) | (open ? kOpen : 0);
    absl::WriterMutexLock lock(&mu_);
    if (static_cast<size_t>(face_id) >= rows_.size()) {
      rows_.resize(std::max<size_t>(static_cast<size_t>(face_id) + 1, rows_.size() * 3 / 2));
    }
    if (only_if_absent && (rows_[face_id].flags & (kPresent | kErased))) return;
    rows_[face_id] = row;
  }

  // Set, unless the face already has a row or was erased: for the loader that fills the table
  // in the background from an older snapshot while updates and deletions go on.
  void SetIfAbsent(int64_t face_id, int64_t case_id, bool open, const AgeKey& key) {
    {
      absl::ReaderMutexLock lock(&mu_);
      if (face_id > 0 && static_cast<size_t>(face_id) < rows_.size() &&
          (rows_[face_id].flags & (kPresent | kErased))) {
        return;
      }
    }
    Set(face_id, case_id, open, key, /*only_if_absent=*/true);
  }

  void Erase(int64_t face_id) {
    absl::WriterMutexLock lock(&mu_);
    if (face_id <= 0) return;
    if (static_cast<size_t>(face_id) >= rows_.size()) rows_.resize(face_id + 1);
    rows_[face_id] = Row();
    rows_[face_id].flags = kErased;
  }

  // False when the face is not in the table (then the caller reads the catalog).
  bool Get(int64_t face_id, int64_t* case_id, bool* open, AgeKey* key) const {
    absl::ReaderMutexLock lock(&mu_);
    if (face_id <= 0 || static_cast<size_t>(face_id) >= rows_.size()) return false;
    const Row& row = rows_[face_id];
    if (!(row.flags & kPresent)) return false;
    *case_id = row.case_id;
    *open = row.flags & kOpen;
    key->window.known = row.flags & kWindow;
    key->window.earliest = row.earliest;
    key->window.latest = row.latest;
    key->window.tolerance_years = row.tolerance;
    key->dated = row.flags & kDated;
    key->photo_day = row.photo_day;
    key->aged = row.flags & kAged;
    key->age_min = row.age_min;
    key->age_upper = row.age_upper;
    return true;
  }

 private:
  enum : uint8_t { kPresent = 1, kWindow = 2, kDated = 4, kAged = 8, kOpen = 16, kErased = 32 };
  struct Row {
    int64_t case_id = 0;
    float earliest = 0, latest = 0, tolerance = 0;  // birth window, days since 1970-01-01
    float photo_day = 0, age_min = 0, age_upper = 0;
    uint8_t flags = 0;
  };
  mutable absl::Mutex mu_;
  std::vector<Row> rows_ ABSL_GUARDED_BY(mu_);
};

}  // namespace homeward::gallery::internal

#endif  // HOMEWARD_GALLERY_INTERNAL_AGE_TABLE_H_
