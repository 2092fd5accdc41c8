#include "gallery/gallery.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/civil_date.h"
#include "base/status_macros.h"
#include "gallery/calibration.h"
#include "gallery/internal/age_table.h"

namespace homeward::gallery {
namespace {

namespace fs = std::filesystem;
using store::CaseKind;

constexpr int64_t kDayMs = 24LL * 60 * 60 * 1000;
constexpr CaseKind kKinds[] = {CaseKind::kMissing, CaseKind::kFound, CaseKind::kSighting};
constexpr int kMaxTopK = 100;
constexpr int kMaxIndexK = 10000;
// A search with the age rules starts at this many x the cases it wants (see SearchKind):
// 16 measured 1.15x the search without the rules at 1M faces, 4 measured 1.29x.
constexpr int kAgedFirstFactor = 16;
constexpr double kScoreScale = 1.2;  // score = 1 - distance / 1.2: 0.5 at dlib's 0.6

const char* KindName(CaseKind k) {
  switch (k) {
    case CaseKind::kMissing: return "missing";
    case CaseKind::kFound: return "found";
    case CaseKind::kSighting: return "sighting";
  }
  return "unknown";
}

double Score(double distance) { return std::clamp(1.0 - distance / kScoreScale, 0.0, 1.0); }

// Face-level caveats: quality of one face.
void FaceCaveats(const char* which, bool usable, double width_px, double yaw,
                 std::vector<Caveat>* out) {
  if (!usable) {
    out->push_back({"LOW_QUALITY_FACE",
                    absl::StrCat("The ", which,
                                 " face is blurry, small or turned: treat the score with caution "
                                 "and ask for a sharper, frontal photo before acting on it.")});
  }
  if (width_px > 0 && width_px < 80) {
    out->push_back({"SMALL_FACE",
                    absl::StrFormat("The %s face is only %.0f px wide, so detail is lost: ask for a "
                                    "closer photo if this candidate matters.",
                                    which, width_px)});
  }
  if (std::abs(yaw) > 25) {
    out->push_back({"NON_FRONTAL",
                    absl::StrFormat("The %s face is turned about %.0f degrees, which lowers the "
                                    "score of a true match: compare with a frontal photo.",
                                    which, std::abs(yaw))});
  }
}

// Whether a SIGHTING keeps a face: every usable one, and one whose only problem is the turn
// (wide and sharp enough, turned beyond the policy's yaw). A turned face is still evidence a
// reviewer can look at: it is stored, searched and cross-matched, and every result for or
// against it carries LOW_QUALITY_FACE and NON_FRONTAL. Too small or too blurry faces are not.
bool KeptAsEvidence(const embed::FaceQuality& q, const embed::QualityPolicy& policy) {
  return q.usable || (q.non_frontal && q.face_width_px >= policy.min_face_width_px &&
                      q.sharpness >= policy.min_sharpness);
}

// `cal` (may be null) supplies the measured numbers the caveats cite.
void AgeCaveats(const AgeGap& gap, const Calibration* cal, std::vector<Caveat>* out) {
  if (!gap.known) {
    out->push_back({"UNKNOWN_AGE",
                    "The age of one face is unknown, so the age gap and age consistency cannot be "
                    "checked: add the date of birth, or the photo's date and the child's age, to "
                    "the case."});
    return;
  }
  const double young_age = cal ? cal->young_child_age() : 5;
  if (gap.younger_age < young_age) {
    out->push_back(
        {"YOUNG_CHILD",
         cal ? absl::StrFormat("A face is of a child under %.0f: young children look alike to the "
                               "model (%.0f%% of pairs of two different children under %.0f in our "
                               "age test set are closer than %.1f), so scores are unreliable: "
                               "compare distinctive marks and rely on DNA, not the score.",
                               young_age, 100 * cal->child_impostor_rate(), cal->child_impostor_age(),
                               cal->child_impostor_threshold())
             : "A face is of a child under 5: scores between young children are unreliable; "
               "compare distinctive marks and rely on DNA, not the score."});
  }
  const double mid_gap = (gap.min + gap.max) / 2;
  if (cal ? mid_gap >= cal->large_gap_years() : gap.min > 5) {
    out->push_back(
        {"LARGE_AGE_GAP",
         cal ? absl::StrFormat("The photos are %.0f-%.0f years apart: faces change as children grow; "
                               "at a gap of %.0f+ years the true child ranked in the top 10 for only "
                               "%.0f%% of the photos in our age test, so a true match can score and "
                               "rank low: look further down the list, and ask the family for a "
                               "more recent photo of the child.",
                               gap.min, gap.max, cal->large_gap_years(), 100 * cal->large_gap_rank10())
             : absl::StrFormat("The photos are %.0f-%.0f years apart: faces change as children "
                               "grow, so a true match can score low: look further down the list.",
                               gap.min, gap.max)});
  }
  if (gap.from_face) {
    out->push_back({"ESTIMATED_AGE",
                    "At least one age was estimated from the face by the age model (a sighting "
                    "sent without an age; its band held the true age for about 9 in 10 children "
                    "in our test, docs/AGE.md), so the age gap is approximate: ask the volunteer "
                    "or confirm the child's age from documents when following this up."});
  } else if (gap.estimated) {
    out->push_back({"ESTIMATED_AGE",
                    "At least one age is an estimate, so the age gap is approximate: confirm the "
                    "child's age from documents when following this up."});
  }
}

AgeInfo AgeOf(const store::FaceAttributes& a) {
  AgeInfo age;
  age.min = a.age_min;
  age.max = a.age_max;
  age.estimated = a.age_estimated && age.known();
  age.from_face = a.age_from_face && age.estimated;
  return age;
}

// What a stored face's case and photo say about the child's age (gallery/age.h).
AgeEvidence EvidenceOf(const store::FaceAttributes& a) {
  AgeEvidence e;
  e.age_min = a.age_min;
  e.age_max = a.age_max;
  e.age_estimated = a.age_estimated;
  e.age_from_face = a.age_from_face;
  if (a.age_from_face && (!a.date_of_birth.empty() || a.birth_year_min > 0)) {
    // The age model's guess gives way to what an investigator entered on the case.
    e.age_min = e.age_max = -1;
    e.age_estimated = e.age_from_face = false;
  }
  e.age_exact = a.age_from_birth_date;
  e.photo_date = a.date_taken;
  e.date_of_birth = a.date_of_birth;
  e.birth_year_min = a.birth_year_min;
  e.birth_year_max = a.birth_year_max;
  e.case_date = a.case_date;
  e.photo_may_predate_case = a.kind == CaseKind::kMissing;
  return e;
}

// A query photo's evidence from the caller's age and date. An age without a date is taken
// as of `today` and treated as an estimate (the photo may be older), so the tolerance widens.
AgeEvidence EvidenceOf(const AgeInfo& age, const std::string& date, const std::string& today) {
  AgeEvidence e;
  if (!age.known()) return e;
  e.age_min = age.min;
  e.age_max = age.max;
  e.age_estimated = age.estimated;
  e.age_from_face = age.from_face;
  e.photo_date = date;
  double unused = 0;
  if (!DaysOf(date, &unused)) {
    e.photo_date = today;
    e.age_estimated = true;
  }
  return e;
}

// The gap between two photos as the calibration means it: the time between them when both
// are dated, else the difference of their ages.
AgeGap GapOf(const AgeEvidence& a, const AgeEvidence& b) {
  AgeGap g;
  double lo = 0, hi = 0, younger = -1;
  if (!DatedGapYears(a, b, &lo, &hi, &younger)) return g;
  g.known = true;
  g.min = lo;
  g.max = hi;
  g.younger_age = younger;
  g.estimated = a.age_estimated || b.age_estimated;
  g.from_face = a.age_from_face || b.age_from_face;
  return g;
}

// The age model's band for one face, as an estimated age.
AgeInfo FaceAge(const embed::AgeEstimate& e) {
  AgeInfo age;
  if (!e.known) return age;
  age.min = e.min_years;
  age.max = e.max_years;
  age.estimated = age.from_face = true;
  return age;
}

// A street photo's age from its faces' estimates: the one face's band, or the span of all
// their bands when several children are in the photo (the catalog holds one age per photo, and
// later searches by any of its faces use it). Unknown when the pipeline has no age model, or
// when a face the sighting stores has no estimate: a face kept only as evidence (turned beyond
// the policy) is not aged (docs/AGE.md, "Turned faces"), a usable face's estimate may have
// failed, and a span of the other children's bands would be a guess for that face that could
// hide its true match as age-inconsistent.
AgeInfo FaceAgeOf(const embed::PhotoFaces& analysed, const embed::QualityPolicy& policy) {
  AgeInfo age;
  for (const embed::Face& f : analysed.faces) {
    if (!KeptAsEvidence(f.quality, policy)) continue;  // not stored
    if (!f.quality.usable || !f.age.known) return AgeInfo{};
    const AgeInfo one = FaceAge(f.age);
    age.min = age.known() ? std::min(age.min, one.min) : one.min;
    age.max = age.known() ? std::max(age.max, one.max) : one.max;
    age.estimated = age.from_face = true;
  }
  return age;
}

// The age one face of a sighting is searched and cross-matched with: the photo's age when a
// volunteer gave it; else the face's own band when it is usable and was aged; else unknown.
AgeInfo SightingFaceAge(const AgeInfo& photo_age, const embed::Face& face) {
  if (photo_age.known() && !photo_age.from_face) return photo_age;
  if (face.quality.usable && face.age.known) return FaceAge(face.age);
  return AgeInfo{};
}

std::string TodayUtc() { return DateOfDays(static_cast<int64_t>(std::time(nullptr)) / 86400); }

std::string AgeRangeText(double lo, double hi) {
  if (std::abs(hi - lo) < 0.5) return absl::StrFormat("%.0f", lo);
  return absl::StrFormat("%.0f-%.0f", std::floor(lo), std::floor(hi));
}

// One sentence per reason a case was left out, with what the investigator can do.
std::string LeftOutMessage(AgeVerdict v, int n) {
  const bool one = n == 1;
  const std::string what =
      v == AgeVerdict::kTooOld     ? "would be too old at the query photo's date"
      : v == AgeVerdict::kTooYoung ? "would be too young at the query photo's date"
                                   : absl::StrCat(one ? "has a photo" : "have photos",
                                                  " whose age contradicts the dates (an earlier "
                                                  "photo of an older child, or a later one of a "
                                                  "younger child)");
  return absl::StrFormat(
      "%d case%s nearer than the last candidate shown %s, so %s left out; if the query's age or "
      "date may be wrong, search again with the inconsistent candidates included.",
      n, one ? "" : "s", what, one ? "it was" : "they were");
}

}  // namespace

// An exclusive flock on <data_dir>/LOCK, held for the gallery's life when the catalog is not
// the SQLite one in data_dir (which takes that lock itself): the index snapshots under
// data_dir belong to one process.
class DataDirLock {
 public:
  DataDirLock() = default;
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;
  ~DataDirLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  absl::Status Take(const std::string& data_dir) {
    const std::string path = data_dir + "/LOCK";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) return absl::InternalError(absl::StrCat("open ", path, ": ", std::strerror(errno)));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          data_dir, " is in use by another homeward-server (", path, " is locked)"));
    }
    return absl::OkStatus();
  }

 private:
  int fd_ = -1;
};

class Gallery::Impl {
 public:
  DataDirLock data_dir_lock;  // first member: released last
  GalleryOptions options;
  std::shared_ptr<store::Catalog> catalog;
  std::unique_ptr<embed::FacePipeline> pipeline;
  std::unique_ptr<Calibration> calibration;  // null: rank by distance, confidence = score
  std::map<CaseKind, std::unique_ptr<index::FaceIndex>> indexes;
  internal::AgeTable ages;  // every stored face's age key, so searches check ages in memory
  std::atomic<bool> stop_loading{false};
  std::atomic<bool> ages_loaded{false};
  std::thread age_loader;   // fills `ages` after Open
  // Serializes catalog writes with their index updates, so a snapshot tagged with the
  // catalog's last change includes exactly the changes up to it.
  std::mutex write_mu;
  // Kinds whose index missed committed changes after the given seq (IndexCommitted could not
  // add them): their snapshots are tagged no later than that, so a restart replays them.
  std::map<CaseKind, int64_t> behind_since;  // guarded by write_mu

  // Following a shared catalog (options.follow_ms > 0), all guarded by write_mu:
  // every change up to applied_seq is in the indexes; own_changes are this gallery's own
  // changes after it (already applied when made), which the follower skips once.
  int64_t applied_seq = 0;
  std::multiset<std::pair<store::ChangeOp, int64_t>> own_changes;
  bool following() const { return options.follow_ms > 0; }
  void NoteOwnChanges(store::ChangeOp op, const std::vector<int64_t>& ids) {
    if (!following()) return;
    for (int64_t id : ids) own_changes.insert({op, id});
  }
  // A snapshot may only claim the changes the indexes hold.
  int64_t ClaimableSeq(int64_t seq) const { return following() ? std::min(seq, applied_seq) : seq; }
  // Case edits through other servers (age, status): the newest updated_ms seen, and the cases
  // seen at or after it minus kEditMargin with their updated_ms (reloaded once per edit).
  // Guarded by write_mu.
  static constexpr int64_t kEditMarginMs = 60000;  // writers' clocks may disagree this much
  int64_t edits_seen_ms = 0;
  std::map<int64_t, int64_t> edits_seen;  // case id -> updated_ms
  std::mutex follow_mu;
  std::condition_variable follow_cv;
  bool stop_following = false;  // guarded by follow_mu
  std::thread follower;

  int64_t SnapshotSeq(CaseKind k, int64_t seq) const {
    seq = ClaimableSeq(seq);
    auto it = behind_since.find(k);
    return it == behind_since.end() ? seq : std::min(seq, it->second);
  }
  std::atomic<int64_t> changes_since_snapshot{0};

  std::string Today() const { return options.today.empty() ? TodayUtc() : options.today; }

  std::string SnapshotPath(CaseKind k) const {
    return (fs::path(options.data_dir) / "index" / (std::string(KindName(k)) + ".snap")).string();
  }

  // Real deletion in the index, after the catalog committed it (under write_mu): the faces'
  // descriptors leave the age table and the index (marked dead, then compacted away).
  absl::Status ForgetFaces(CaseKind kind, const std::vector<int64_t>& ids, bool compact) {
    for (int64_t id : ids) ages.Erase(id);
    index::FaceIndex& idx = *indexes[kind];
    if (!ids.empty()) HW_RETURN_IF_ERROR(idx.Remove(ids));
    return compact ? idx.Compact() : absl::OkStatus();
  }
  // Rewrites the kind's snapshot, so deleted descriptors leave the disk too.
  absl::Status SaveSnapshot(CaseKind kind) {
    HW_ASSIGN_OR_RETURN(int64_t seq, catalog->LastChangeSeq());
    return indexes[kind]->Save(SnapshotPath(kind), static_cast<uint64_t>(SnapshotSeq(kind, seq)));
  }

  // Descriptors of the given faces (skipping unknown ones), grouped by photo.
  absl::Status LoadDescriptors(const std::vector<int64_t>& ids, std::vector<int64_t>* out_ids,
                               std::vector<float>* out_vectors) {
    HW_ASSIGN_OR_RETURN(std::vector<store::FaceAttributes> attrs, catalog->GetFaceAttributes(ids));
    std::set<int64_t> wanted(ids.begin(), ids.end());
    std::set<int64_t> photos;
    for (const auto& a : attrs) photos.insert(a.photo_id);
    for (int64_t photo : photos) {
      HW_ASSIGN_OR_RETURN(std::vector<store::Face> faces, catalog->ListFaces(photo));
      for (const auto& f : faces) {
        if (!wanted.count(f.id)) continue;
        out_ids->push_back(f.id);
        out_vectors->insert(out_vectors->end(), f.descriptor.begin(), f.descriptor.end());
      }
    }
    return absl::OkStatus();
  }

  absl::Status IndexAdd(CaseKind kind, const std::vector<int64_t>& ids, const float* vectors) {
    if (options.index_add_fault_for_test && options.index_add_fault_for_test()) {
      return absl::InternalError("injected index insertion failure");
    }
    return indexes[kind]->Add(ids, vectors);
  }

  // Puts faces that the catalog has just committed (after change `seq_before`) into the kind's
  // index, under write_mu. A failed insertion is retried, then the index is caught up from the
  // change log; only when that fails too does the call return an error, which says that the
  // photo is stored and will be searchable after the next start (its snapshot replay).
  absl::Status IndexCommitted(CaseKind kind, const std::vector<int64_t>& ids, const float* vectors,
                              int64_t seq_before) {
    absl::Status s = IndexAdd(kind, ids, vectors);
    if (s.ok()) return s;
    std::fprintf(stderr, "homeward: adding %zu face(s) to the %s index failed (%s); retrying\n",
                 ids.size(), KindName(kind), std::string(s.message()).c_str());
    s = IndexAdd(kind, ids, vectors);
    if (s.ok()) return s;
    std::fprintf(stderr, "homeward: retry failed (%s); catching the %s index up from the change "
                 "log\n", std::string(s.message()).c_str(), KindName(kind));
    s = Replay(kind, seq_before);
    if (s.ok()) return s;
    // The kind's snapshots must not claim these changes: the next start replays from here.
    auto [it, fresh] = behind_since.emplace(kind, seq_before);
    if (!fresh) it->second = std::min(it->second, seq_before);
    return absl::UnavailableError(absl::StrCat(
        "the photo is stored, but the search index could not take its faces (", s.message(),
        "); they become searchable after the server restarts"));
  }

  // Applies catalog changes after `after` to the index of `kind`.
  absl::Status Replay(CaseKind kind, int64_t after) {
    index::FaceIndex& idx = *indexes[kind];
    for (;;) {
      HW_ASSIGN_OR_RETURN(std::vector<store::Change> changes, catalog->ChangesAfter(after, 10000));
      if (changes.empty()) return absl::OkStatus();
      // Runs of adds and removes are applied in sequence order, so an add, remove, add of
      // one id ends with the id present.
      std::vector<int64_t> run;
      store::ChangeOp run_op = store::ChangeOp::kAdd;
      auto flush = [&]() -> absl::Status {
        if (run.empty()) return absl::OkStatus();
        if (run_op == store::ChangeOp::kRemove) {
          HW_RETURN_IF_ERROR(idx.Remove(run));
        } else {
          std::vector<int64_t> ids;
          std::vector<float> vectors;
          HW_RETURN_IF_ERROR(LoadDescriptors(run, &ids, &vectors));
          if (!ids.empty()) HW_RETURN_IF_ERROR(IndexAdd(kind, ids, vectors.data()));
        }
        run.clear();
        return absl::OkStatus();
      };
      for (const auto& c : changes) {
        if (c.kind != kind) continue;
        if (c.op != run_op) {
          HW_RETURN_IF_ERROR(flush());
          run_op = c.op;
        }
        run.push_back(c.face_id);
      }
      HW_RETURN_IF_ERROR(flush());
      after = changes.back().seq;
    }
  }

  // Applies the changes other writers logged after applied_seq, in sequence order, skipping
  // this gallery's own (applied when made). Removals are compacted out of memory and the
  // snapshot on disk at once, as DeleteCase does: a deletion through another server is as
  // real here. Returns how many changes it applied.
  absl::StatusOr<int64_t> FollowOnce() {
    int64_t applied = 0;
    std::set<CaseKind> compact;
    {
      std::lock_guard<std::mutex> lock(write_mu);
      for (;;) {
        HW_ASSIGN_OR_RETURN(std::vector<store::Change> changes,
                            catalog->ChangesAfter(applied_seq, 10000));
        if (changes.empty()) break;
        std::vector<int64_t> run, added;
        CaseKind run_kind = changes.front().kind;
        store::ChangeOp run_op = changes.front().op;
        auto flush = [&]() -> absl::Status {
          if (run.empty()) return absl::OkStatus();
          if (run_op == store::ChangeOp::kRemove) {
            HW_RETURN_IF_ERROR(indexes[run_kind]->Remove(run));
            for (int64_t id : run) ages.Erase(id);
            compact.insert(run_kind);
          } else {
            std::vector<int64_t> ids;
            std::vector<float> vectors;
            HW_RETURN_IF_ERROR(LoadDescriptors(run, &ids, &vectors));  // gone since: skipped
            if (!ids.empty()) HW_RETURN_IF_ERROR(IndexAdd(run_kind, ids, vectors.data()));
            added.insert(added.end(), ids.begin(), ids.end());
          }
          run.clear();
          return absl::OkStatus();
        };
        for (const store::Change& ch : changes) {
          auto own = own_changes.find({ch.op, ch.face_id});
          if (own != own_changes.end()) {
            own_changes.erase(own);
            continue;
          }
          if (ch.kind != run_kind || ch.op != run_op) {
            HW_RETURN_IF_ERROR(flush());
            run_kind = ch.kind;
            run_op = ch.op;
          }
          run.push_back(ch.face_id);
          ++applied;
        }
        HW_RETURN_IF_ERROR(flush());
        applied_seq = changes.back().seq;
        HW_RETURN_IF_ERROR(LoadAges(added));
      }
      for (CaseKind k : compact) {
        HW_RETURN_IF_ERROR(indexes[k]->Compact());
        HW_RETURN_IF_ERROR(
            indexes[k]->Save(SnapshotPath(k), static_cast<uint64_t>(SnapshotSeq(k, applied_seq))));
      }
    }
    if (applied > 0) NoteChanges(applied);
    return applied;
  }

  // Reloads the age keys of the cases that other servers edited (their age or status may have
  // changed; only adds and removals are in the change log). Returns how many cases.
  absl::StatusOr<int64_t> FollowEdits() {
    std::lock_guard<std::mutex> lock(write_mu);
    HW_ASSIGN_OR_RETURN(auto updated,
                        catalog->CasesUpdatedSince(edits_seen_ms - kEditMarginMs, 100000));
    std::vector<int64_t> face_ids;
    int64_t reloaded = 0;
    for (const auto& [case_id, ms] : updated) {
      edits_seen_ms = std::max(edits_seen_ms, ms);
      auto [it, fresh] = edits_seen.emplace(case_id, ms);
      if (!fresh && it->second == ms) continue;
      it->second = ms;
      HW_ASSIGN_OR_RETURN(std::vector<store::Photo> photos, catalog->ListPhotos(case_id));
      for (const auto& p : photos) {
        HW_ASSIGN_OR_RETURN(std::vector<store::Face> faces, catalog->ListFaces(p.id));
        for (const auto& f : faces) face_ids.push_back(f.id);
      }
      ++reloaded;
    }
    for (auto it = edits_seen.begin(); it != edits_seen.end();) {
      it = it->second < edits_seen_ms - kEditMarginMs ? edits_seen.erase(it) : std::next(it);
    }
    HW_RETURN_IF_ERROR(LoadAges(face_ids));
    return reloaded;
  }

  void FollowLoop() {
    std::unique_lock<std::mutex> lock(follow_mu);
    int failures = 0;
    while (!follow_cv.wait_for(lock, std::chrono::milliseconds(options.follow_ms),
                               [this] { return stop_following; })) {
      lock.unlock();
      absl::StatusOr<int64_t> n = FollowOnce();
      if (n.ok()) n = FollowEdits();
      if (!n.ok() && failures++ % 100 == 0) {  // a catalog that is down: say so, not 10x/s
        std::fprintf(stderr, "homeward: following the change log failed (%s); retrying\n",
                     std::string(n.status().message()).c_str());
      }
      if (n.ok() && failures > 0) {  // the operator saw it fail: say that it is over
        std::fprintf(stderr, "homeward: following the change log again (after %d failed tries)\n",
                     failures);
        failures = 0;
      }
      lock.lock();
    }
  }

  // Rebuilds the indexes of `kinds` from the catalog; returns the change seq they include.
  // An index that needs training (IVF) is trained on all of its kind's descriptors; with too
  // few of them it falls back to exact search (logged) until the next rebuild.
  absl::StatusOr<int64_t> Rebuild(const std::set<CaseKind>& kinds) {
    std::map<CaseKind, std::vector<int64_t>> ids;
    std::map<CaseKind, std::vector<float>> vectors;
    HW_ASSIGN_OR_RETURN(int64_t seq, catalog->ForEachFace([&](const store::FaceRecord& r) -> absl::Status {
      CaseKind k = r.attributes.kind;
      if (!kinds.count(k)) return absl::OkStatus();
      ids[k].push_back(r.attributes.face_id);
      vectors[k].insert(vectors[k].end(), r.descriptor, r.descriptor + store::kDescriptorDim);
      return absl::OkStatus();
    }));
    for (CaseKind k : kinds) {
      const int64_t n = static_cast<int64_t>(ids[k].size());
      absl::Status trained = indexes[k]->Train(vectors[k].data(), n);
      if (!trained.ok()) {
        std::fprintf(stderr,
                     "homeward: %s index '%s' cannot be trained on %lld faces (%s); using exact "
                     "search until a rebuild with more faces\n",
                     KindName(k), options.index.factory.c_str(), static_cast<long long>(n),
                     std::string(trained.message()).c_str());
        index::IndexOptions exact = options.index;
        exact.factory = "Flat";
        HW_ASSIGN_OR_RETURN(indexes[k], index::FaceIndex::Create(exact));
      }
      if (n > 0) HW_RETURN_IF_ERROR(indexes[k]->Add(ids[k], vectors[k].data()));
      ids[k] = {};
      vectors[k] = {};
    }
    return seq;
  }

  absl::Status OpenIndexes() {
    std::error_code ec;
    fs::create_directories(fs::path(options.data_dir) / "index", ec);
    // Temp files of a save cut short by a crash (one process per data dir: none is live).
    for (const auto& e : fs::directory_iterator(fs::path(options.data_dir) / "index", ec)) {
      if (e.path().filename().string().find(".snap.tmp.") != std::string::npos) {
        fs::remove(e.path(), ec);
      }
    }
    std::set<CaseKind> rebuild;
    std::map<CaseKind, int64_t> last;
    for (CaseKind k : kKinds) {
      uint64_t change = 0;
      auto loaded = options.rebuild_indexes
                        ? absl::StatusOr<std::unique_ptr<index::FaceIndex>>(
                              absl::NotFoundError("rebuild requested"))
                        : index::FaceIndex::Load(SnapshotPath(k), options.index, &change);
      if (loaded.ok()) {
        indexes[k] = std::move(*loaded);
        last[k] = static_cast<int64_t>(change);
        continue;
      }
      if (loaded.status().code() != absl::StatusCode::kNotFound) {
        std::fprintf(stderr, "homeward: index snapshot %s unusable (%s); rebuilding from the catalog\n",
                     SnapshotPath(k).c_str(), std::string(loaded.status().message()).c_str());
      }
      HW_ASSIGN_OR_RETURN(indexes[k], index::FaceIndex::Create(options.index));
      rebuild.insert(k);
    }
    if (!rebuild.empty()) {
      HW_ASSIGN_OR_RETURN(int64_t seq, Rebuild(rebuild));
      for (CaseKind k : rebuild) last[k] = seq;
    }
    HW_ASSIGN_OR_RETURN(int64_t latest, catalog->LastChangeSeq());
    applied_seq = latest;  // the replays below bring every index up to it (or further)
    edits_seen_ms = absl::ToUnixMillis(absl::Now());  // LoadAllAges reads every case as it is
    bool behind = !rebuild.empty();
    for (CaseKind k : kKinds) {
      if (last[k] < latest) {
        HW_RETURN_IF_ERROR(Replay(k, last[k]));
        behind = true;
      }
    }
    if (behind) {
      // The indexes are complete in memory; a failed save (e.g. a full disk) only means a
      // longer replay at the next start, so it must not keep the server from starting.
      absl::Status saved = SaveSnapshotsLocked(latest);
      if (!saved.ok()) {
        std::fprintf(stderr,
                     "homeward: saving the index snapshots at open failed (%s); serving anyway\n",
                     saved.ToString().c_str());
      }
    }
    return absl::OkStatus();
  }

  // Fills the age table from the whole catalog, on its own thread after Open, so that a
  // restart does not wait for it; rows written meanwhile by adds, updates and deletions win.
  void LoadAllAges() {
    absl::Status s = catalog
                         ->ForEachFaceAttributes([&](const store::FaceRecord& r) {
                           if (stop_loading) return absl::CancelledError("closing");
                           ages.SetIfAbsent(r.attributes.face_id, r.attributes.case_id,
                                            r.attributes.status == store::CaseStatus::kOpen,
                                            AgeKeyOf(EvidenceOf(r.attributes)));
                           return absl::OkStatus();
                         })
                         .status();
    if (s.ok()) ages_loaded = true;
    if (!s.ok() && !absl::IsCancelled(s)) {
      std::fprintf(stderr, "homeward: loading the age keys stopped (%s); searches read ages from "
                   "the catalog\n", std::string(s.message()).c_str());
    }
  }

  // Reloads the age keys of the given faces from the catalog.
  absl::Status LoadAges(const std::vector<int64_t>& ids) {
    HW_ASSIGN_OR_RETURN(std::vector<store::FaceAttributes> attrs, catalog->GetFaceAttributes(ids));
    for (const auto& a : attrs) {
      ages.Set(a.face_id, a.case_id, a.status == store::CaseStatus::kOpen, AgeKeyOf(EvidenceOf(a)));
    }
    return absl::OkStatus();
  }

  absl::Status SaveSnapshotsLocked(int64_t seq) {
    for (CaseKind k : kKinds) {
      HW_RETURN_IF_ERROR(
          indexes[k]->Save(SnapshotPath(k), static_cast<uint64_t>(SnapshotSeq(k, seq))));
    }
    changes_since_snapshot = 0;
    return absl::OkStatus();
  }

  absl::Status SaveSnapshots() {
    std::lock_guard<std::mutex> lock(write_mu);
    HW_ASSIGN_OR_RETURN(int64_t seq, catalog->LastChangeSeq());
    return SaveSnapshotsLocked(seq);
  }

  void NoteChanges(int64_t n) {
    if ((changes_since_snapshot += n) >= options.snapshot_every) {
      absl::Status s = SaveSnapshots();
      if (!s.ok()) std::fprintf(stderr, "homeward: snapshot failed: %s\n", std::string(s.message()).c_str());
    }
  }

  // Stores an analysed photo for `c`, choosing faces by the case kind's rules.
  absl::StatusOr<AddPhotoOutcome> Store(const store::Case& c, const PhotoInput& input,
                                        const embed::PhotoFaces& analysed) {
    AddPhotoOutcome out;
    out.no_face_reason = analysed.no_face_reason;
    std::vector<int> keep;
    const int n = static_cast<int>(analysed.faces.size());
    if (c.kind == CaseKind::kSighting) {
      for (int i = 0; i < n; ++i)
        if (KeptAsEvidence(analysed.faces[i].quality, pipeline->options().quality)) keep.push_back(i);
    } else if (input.face_box.has_value()) {
      keep.push_back(0);  // analysed with the box: exactly one face
    } else if (input.face_index.has_value()) {
      if (*input.face_index < 0 || *input.face_index >= n) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "face_index %d is out of range: the photo has %d face(s)", *input.face_index, n));
      }
      keep.push_back(*input.face_index);
    } else if (n == 1) {
      keep.push_back(0);
    } else if (n > 1) {
      std::vector<std::string> boxes;
      for (int i = 0; i < n; ++i) {
        const auto& b = analysed.faces[i].box;
        boxes.push_back(absl::StrFormat("%d: %dx%d at (%d,%d)", i, b.width, b.height, b.x, b.y));
      }
      return absl::FailedPreconditionError(absl::StrCat(
          "the photo shows ", n, " faces; say which one is the child with face_index or face_box (",
          absl::StrJoin(boxes, "; "), ")"));
    }
    store::Photo meta;
    meta.case_id = c.id;
    meta.date_taken = input.taken_on;
    if (input.age.known()) {
      meta.age_min = input.age.min;
      meta.age_max = input.age.max;
      meta.age_estimated = input.age.estimated;
      meta.age_from_face = input.age.from_face && input.age.estimated;
    }
    meta.source = input.source;
    meta.width = analysed.width;
    meta.height = analysed.height;
    std::vector<store::Face> faces;
    std::vector<float> vectors;
    for (int i : keep) {
      const embed::Face& f = analysed.faces[i];
      store::Face sf;
      sf.box_x = f.box.x;
      sf.box_y = f.box.y;
      sf.box_w = f.box.width;
      sf.box_h = f.box.height;
      for (const auto& p : f.landmarks) sf.landmarks.push_back(p.x), sf.landmarks.push_back(p.y);
      sf.width_px = static_cast<float>(f.quality.face_width_px);
      sf.sharpness = static_cast<float>(f.quality.sharpness);
      sf.yaw_deg = static_cast<float>(f.quality.yaw_degrees);
      sf.detector_score = static_cast<float>(f.detector_score);
      sf.usable = f.quality.usable;
      sf.descriptor.assign(f.descriptor.begin(), f.descriptor.end());
      sf.model_id = pipeline->model_id();
      faces.push_back(std::move(sf));
      vectors.insert(vectors.end(), f.descriptor.begin(), f.descriptor.end());
    }
    store::AddPhotoResult added;
    {
      std::lock_guard<std::mutex> lock(write_mu);
      HW_ASSIGN_OR_RETURN(const int64_t seq_before, catalog->LastChangeSeq());
      HW_ASSIGN_OR_RETURN(added, catalog->AddPhoto(meta, input.bytes, faces, input.audit));
      if (!added.duplicate && !added.face_ids.empty()) {
        NoteOwnChanges(store::ChangeOp::kAdd, added.face_ids);
        HW_RETURN_IF_ERROR(IndexCommitted(c.kind, added.face_ids, vectors.data(), seq_before));
      }
    }
    if (!added.duplicate) {
      // Without its age key a face is still searched correctly, from a catalog read.
      absl::Status aged = LoadAges(added.face_ids);
      if (!aged.ok()) {
        std::fprintf(stderr, "homeward: age keys of photo %lld not loaded: %s\n",
                     static_cast<long long>(added.photo_id), std::string(aged.message()).c_str());
      }
      NoteChanges(static_cast<int64_t>(added.face_ids.size()));
    }
    out.photo_id = added.photo_id;
    out.duplicate = added.duplicate;
    for (int i = 0; i < n; ++i) {
      PhotoFace pf;
      pf.index = i;
      pf.face = analysed.faces[i];
      auto it = std::find(keep.begin(), keep.end(), i);
      if (it != keep.end() && static_cast<size_t>(it - keep.begin()) < added.face_ids.size()) {
        pf.face_id = added.face_ids[it - keep.begin()];
      } else if (c.kind == CaseKind::kSighting) {
        pf.not_stored_reason = analysed.faces[i].quality.reason;
      } else {
        pf.not_stored_reason = "not the chosen face";
      }
      out.faces.push_back(std::move(pf));
    }
    return out;
  }

  absl::Status CheckQuery(const SearchQuery& q) {
    if (q.top_k < 1 || q.top_k > kMaxTopK) {
      return absl::InvalidArgumentError(absl::StrCat("top_k ", q.top_k, " must be in 1..", kMaxTopK));
    }
    if (!(q.min_score >= 0 && q.min_score <= 1)) {
      return absl::InvalidArgumentError("min_score must be in 0..1");
    }
    if (q.age_min >= 0 && q.age_max >= 0 && q.age_min > q.age_max) {
      return absl::InvalidArgumentError("age filter: min is greater than max");
    }
    return absl::OkStatus();
  }

  bool Passes(const store::FaceAttributes& a, const SearchQuery& q) {
    if (q.exclude_case_id != 0 && a.case_id == q.exclude_case_id) return false;
    if (!q.include_closed && a.status != store::CaseStatus::kOpen) return false;
    if (q.sex != store::Sex::kUnknown && a.sex != store::Sex::kUnknown && a.sex != q.sex) return false;
    if (q.age_min >= 0 || q.age_max >= 0) {
      if (a.age_min < 0) return false;  // unknown age cannot satisfy an age filter
      if (q.age_max >= 0 && a.age_min > q.age_max) return false;
      if (q.age_min >= 0 && a.age_max < q.age_min) return false;
    }
    if (!q.date_from.empty() && (a.date_taken.empty() || a.date_taken < q.date_from)) return false;
    if (!q.date_to.empty() && (a.date_taken.empty() || a.date_taken > q.date_to)) return false;
    if (!q.place_contains.empty()) {
      auto lower = [](std::string s) {
        for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        return s;
      };
      if (lower(a.place).find(lower(q.place_contains)) == std::string::npos) return false;
    }
    return true;
  }

  // A face found by a search, with its attributes and its age consistency with the query.
  struct Found {
    index::Hit hit;
    store::FaceAttributes attrs;
    AgeCheck age;
  };

  // The nearest faces of one kind's index that pass the query's filters, until they cover
  // `want` cases (default top_k) or the whole index was seen: the search widens, so a selective
  // filter loses nothing. With `qe` (a query of known age) each face is checked against it;
  // the inconsistent ones go to `left_out` unless the query includes them.
  absl::Status SearchKind(CaseKind kind, const float* q, const SearchQuery& query,
                          const AgeEvidence* qe, std::vector<Found>* out,
                          std::vector<Found>* left_out = nullptr, int want = 0) {
    if (want <= 0) want = query.top_k;
    // The in-memory age check (with the case's status and id) stands in for the catalog read
    // when no other filter could have dropped the face first, so the counts of cases left out
    // for their age stay exact.
    const bool only_age = query.sex == store::Sex::kUnknown && query.age_min < 0 &&
                          query.age_max < 0 && query.date_from.empty() && query.date_to.empty() &&
                          query.place_contains.empty();
    const AgeKey qe_value = qe != nullptr ? AgeKeyOf(*qe) : AgeKey();
    const AgeKey* qe_key = qe != nullptr && only_age ? &qe_value : nullptr;
    index::FaceIndex& idx = *indexes[kind];
    const int64_t size = idx.size();
    if (size == 0) return absl::OkStatus();
    // With the age rules most of the nearest faces may be left out: start wider, since a
    // search for 16 x want costs about what one for 4 x want does and a second search is saved.
    const int64_t first = int64_t{want} * (qe != nullptr ? kAgedFirstFactor : 4);
    int k = static_cast<int>(std::min<int64_t>({size, kMaxIndexK, first}));
    for (;;) {
      HW_ASSIGN_OR_RETURN(std::vector<index::Hit> hits, idx.Search(q, k));
      // Attributes are read from the catalog only for the nearest hits still needed, a chunk
      // at a time: an unfiltered query reads about `want` rows, not k.
      std::vector<Found> passing, dropped;
      std::set<int64_t> cases;
      size_t next = 0;
      while (next < hits.size() && static_cast<int>(cases.size()) < want) {
        // Read about as many as the share of faces kept so far says are needed.
        const size_t need = static_cast<size_t>(want) - cases.size();
        const size_t kept = passing.size() + 1, seen = passing.size() + dropped.size() + 1;
        const size_t guess = std::min<size_t>(need * seen / kept, 4 * need + 64);
        const size_t end = std::min(hits.size(), next + guess + guess / 8 + 2);
        std::vector<int64_t> ids;
        for (size_t i = next; i < end; ++i) {
          // The age check from memory first: a face whose age cannot fit is left out without a
          // catalog read (only when no other filter could have excluded it first).
          if (qe_key != nullptr && !query.include_age_inconsistent) {
            Found f{hits[i], {}, AgeCheck{}};
            AgeKey key;
            bool open = false;
            if (ages.Get(hits[i].id, &f.attrs.case_id, &open, &key)) {
              f.age = CheckAge(*qe_key, key);
              if (!f.age.consistent()) {
                if (f.attrs.case_id != query.exclude_case_id && (open || query.include_closed)) {
                  f.attrs.face_id = hits[i].id;
                  dropped.push_back(std::move(f));
                }
                continue;
              }
            }
          }
          ids.push_back(hits[i].id);
        }
        HW_ASSIGN_OR_RETURN(std::vector<store::FaceAttributes> attrs,
                            catalog->GetFaceAttributes(ids));
        std::unordered_map<int64_t, store::FaceAttributes*> by_id;
        for (auto& a : attrs) by_id[a.face_id] = &a;
        for (size_t i = next; i < end && static_cast<int>(cases.size()) < want; ++i) {
          auto it = by_id.find(hits[i].id);
          if (it == by_id.end() || !Passes(*it->second, query)) continue;
          Found f{hits[i], std::move(*it->second), AgeCheck{}};
          if (qe != nullptr) f.age = CheckAge(qe_value, AgeKeyOf(EvidenceOf(f.attrs)));
          if (!f.age.consistent() && !query.include_age_inconsistent) {
            dropped.push_back(std::move(f));
            continue;
          }
          cases.insert(f.attrs.case_id);
          passing.push_back(std::move(f));
        }
        next = end;
      }
      const bool exhausted = static_cast<int>(hits.size()) < k || k >= size || k >= kMaxIndexK;
      if (static_cast<int>(cases.size()) >= want || exhausted) {
        for (auto& f : passing) out->push_back(std::move(f));
        if (left_out != nullptr) {
          for (auto& f : dropped) left_out->push_back(std::move(f));
        }
        return absl::OkStatus();
      }
      k = static_cast<int>(std::min<int64_t>({size, kMaxIndexK, int64_t{k} * 4}));
    }
  }

  // The candidates for a query: the nearest faces of `query.kinds` that pass its filters and,
  // when the query's age is known, whose age is consistent with it (gallery/age.h), one per
  // case (its nearest such face), nearest first. Ranking by distance among the age-consistent
  // faces measured best on fgnet-dev (docs/AGE.md); the calibrated confidence, computed with
  // the time between the photos, is the number people read.
  absl::StatusOr<QueryResult> SearchDescriptor(const embed::Descriptor& d, const SearchQuery& query,
                                               const AgeEvidence& qe,
                                               const embed::Face* query_face) {
    HW_RETURN_IF_ERROR(CheckQuery(query));
    std::vector<CaseKind> kinds = query.kinds;
    if (kinds.empty()) kinds = {CaseKind::kMissing, CaseKind::kFound};
    const bool check_age = BirthWindowOf(qe).known;
    std::vector<Found> hits, left_out;
    for (CaseKind k : std::set<CaseKind>(kinds.begin(), kinds.end())) {
      HW_RETURN_IF_ERROR(SearchKind(k, d.data(), query, check_age ? &qe : nullptr, &hits, &left_out));
    }
    std::stable_sort(hits.begin(), hits.end(),
                     [](const Found& a, const Found& b) { return a.hit.distance < b.hit.distance; });
    QueryResult r;
    r.lead_threshold = options.lead_min_confidence;
    std::map<int64_t, size_t> shown;  // case id -> index in r.candidates
    // The cases the loop below will show (each case's nearest face at or above min_score, up
    // to top_k cases), read in one call: one round trip on PostgreSQL, not one per candidate.
    // A case missing from it (deleted meanwhile) is looked up again below and skipped.
    std::map<int64_t, store::Case> cases;
    {
      std::vector<int64_t> wanted;
      std::set<int64_t> seen_cases;
      for (const Found& f : hits) {
        if (static_cast<int>(wanted.size()) == query.top_k) break;
        if (!seen_cases.insert(f.attrs.case_id).second) continue;
        if (Score(f.hit.distance) >= query.min_score) wanted.push_back(f.attrs.case_id);
      }
      HW_ASSIGN_OR_RETURN(std::vector<store::Case> got, catalog->GetCases(wanted));
      for (store::Case& c : got) cases.emplace(c.id, std::move(c));
    }
    for (const Found& f : hits) {
      const store::FaceAttributes& attrs = f.attrs;
      auto seen = shown.find(attrs.case_id);
      if (seen != shown.end()) {  // the case's nearer face is already its candidate
        ++r.candidates[seen->second].case_faces_matched;
        continue;
      }
      if (static_cast<int>(r.candidates.size()) == query.top_k) continue;
      Candidate c;
      c.face = attrs;
      c.distance = f.hit.distance;
      c.score = Score(f.hit.distance);
      if (c.score < query.min_score) continue;
      c.candidate_age = AgeOf(attrs);
      const AgeEvidence ce = EvidenceOf(attrs);
      c.age_check = check_age ? f.age : CheckAge(qe, ce);
      c.age_gap = GapOf(qe, ce);
      c.confidence = calibration ? calibration->Confidence(f.hit.distance, c.age_gap) : c.score;
      c.above_lead_threshold = c.confidence >= options.lead_min_confidence;
      auto it = cases.find(attrs.case_id);
      if (it == cases.end()) {
        auto got = catalog->GetCase(attrs.case_id);
        if (!got.ok()) continue;  // deleted meanwhile
        it = cases.emplace(attrs.case_id, *got).first;
      }
      c.case_info = it->second;
      c.box = {attrs.box_x, attrs.box_y, attrs.box_w, attrs.box_h};
      if (query_face != nullptr) {
        FaceCaveats("query", query_face->quality.usable, query_face->quality.face_width_px,
                    query_face->quality.yaw_degrees, &c.caveats);
      }
      FaceCaveats("candidate", attrs.usable, attrs.width_px, attrs.yaw_deg, &c.caveats);
      if (!c.age_check.consistent()) {
        c.caveats.push_back(
            {"AGE_INCONSISTENT",
             absl::StrCat(
                 "By the recorded dates and ages this child would be about ",
                 c.age_check.projected_known
                     ? AgeRangeText(c.age_check.projected_min, c.age_check.projected_max)
                     : std::string("another age"),
                 " years old at the query photo's date, which does not fit the query's age (",
                 AgeRangeText(qe.age_min, qe.age_max), "): check both records' dates and ages "
                 "before treating it as a lead.")});
      }
      AgeCaveats(c.age_gap, calibration.get(), &c.caveats);
      c.caveats.push_back({"DNA_CONFIRMATION_REQUIRED", kDnaReminder});
      shown.emplace(attrs.case_id, r.candidates.size());
      r.candidates.push_back(std::move(c));
    }
    for (const Candidate& c : r.candidates) r.credible_match |= c.above_lead_threshold;
    // Cases left out that would have been shown: nearer than the last candidate (all of them
    // when nothing is shown), counted once per case and never when the case is shown anyway.
    const bool full = static_cast<int>(r.candidates.size()) == query.top_k;
    const double horizon = full ? r.candidates.back().distance : 1e30;
    std::map<AgeVerdict, std::set<int64_t>> out_cases;
    for (const Found& f : left_out) {
      if (f.hit.distance > horizon || shown.count(f.attrs.case_id)) continue;
      out_cases[f.age.verdict].insert(f.attrs.case_id);
    }
    for (const auto& [verdict, ids] : out_cases) {
      const int n = static_cast<int>(ids.size());
      r.age_left_out.push_back({AgeVerdictCode(verdict), n, LeftOutMessage(verdict, n)});
    }
    if (!r.credible_match) {
      r.message = r.candidates.empty()
                      ? "No likely match yet: no case fits this child. An investigator will review "
                        "the photo, and new cases are compared with it as they arrive."
                      : absl::StrFormat(
                            "No likely match yet: no candidate reaches the lead threshold "
                            "(confidence %.2f). The list shows the nearest faces, not likely "
                            "matches; an investigator will review the photo.",
                            options.lead_min_confidence);
    }
    return r;
  }

  // Descriptor, age and face of a stored face.
  struct StoredFace {
    embed::Descriptor descriptor;
    store::FaceAttributes attrs;
    embed::Face face;
  };
  absl::StatusOr<StoredFace> LoadFace(int64_t face_id) {
    HW_ASSIGN_OR_RETURN(std::vector<store::FaceAttributes> attrs, catalog->GetFaceAttributes({face_id}));
    if (attrs.empty()) return absl::NotFoundError(absl::StrCat("face ", face_id, " not found"));
    HW_ASSIGN_OR_RETURN(store::Face f, catalog->GetFace(face_id));
    if (f.descriptor.size() != embed::kDescriptorDim) {
      return absl::DataLossError(absl::StrCat("face ", face_id, " has a malformed descriptor"));
    }
    StoredFace s;
    s.attrs = attrs[0];
    std::copy(f.descriptor.begin(), f.descriptor.end(), s.descriptor.begin());
    s.face.box = {f.box_x, f.box_y, f.box_w, f.box_h};
    s.face.detector_score = f.detector_score;
    s.face.quality.face_width_px = static_cast<int>(f.width_px);
    s.face.quality.sharpness = f.sharpness;
    s.face.quality.yaw_degrees = f.yaw_deg;
    s.face.quality.usable = f.usable;
    s.face.quality.non_frontal =
        std::abs(f.yaw_deg) > pipeline->options().quality.max_abs_yaw_degrees;
    s.face.descriptor = s.descriptor;
    return s;
  }

  // Cross-matching, after a photo's faces are stored and outside write_mu: each stored face is
  // searched against the two other collections and the candidates at or above
  // lead_min_confidence become leads; a SIGHTING face also joins the cluster of the earlier
  // sightings it matches. Failures are logged, never returned: the upload itself succeeded.
  // `ages[i]`: the age faces[i] is matched with when its stored record has none (its photo's),
  // or its own band when the photo's stored age is the span of a street photo's faces' bands.
  void CrossMatch(const store::Case& c, const std::vector<AgeInfo>& ages,
                  const std::vector<PhotoFace>& faces) {
    if (!options.cross_match) return;
    for (size_t i = 0; i < faces.size(); ++i) {
      const PhotoFace& f = faces[i];
      if (f.face_id <= 0) continue;
      absl::Status s = CrossMatchFace(c, ages[i], f);
      if (!s.ok()) {
        std::fprintf(stderr, "homeward: cross-matching face %lld failed: %s\n",
                     static_cast<long long>(f.face_id), std::string(s.message()).c_str());
      }
    }
  }

  absl::Status CrossMatchFace(const store::Case& c, const AgeInfo& age, const PhotoFace& f) {
    SearchQuery q;
    for (CaseKind k : kKinds) {
      if (k != c.kind) q.kinds.push_back(k);
    }
    q.top_k = std::clamp(options.lead_top_k, 1, kMaxTopK);
    q.exclude_case_id = c.id;
    // The stored face's own evidence (its photo's age and date, its case's birth date): leads
    // are made from age-consistent candidates only.
    HW_ASSIGN_OR_RETURN(std::vector<store::FaceAttributes> attrs,
                        catalog->GetFaceAttributes({f.face_id}));
    if (attrs.empty()) return absl::OkStatus();  // deleted meanwhile
    AgeEvidence qe = EvidenceOf(attrs[0]);
    if (age.known() && age.from_face && qe.age_from_face) {
      // The photo stores the span of its children's bands; each face is matched with its own.
      qe.age_min = age.min;
      qe.age_max = age.max;
    } else if (!BirthWindowOf(qe).known && age.known()) {
      qe = EvidenceOf(age, attrs[0].date_taken, Today());
    }
    HW_ASSIGN_OR_RETURN(QueryResult found, SearchDescriptor(f.face.descriptor, q, qe, &f.face));
    for (const Candidate& cand : found.candidates) {
      if (!cand.above_lead_threshold || !cand.age_check.consistent()) continue;
      HW_RETURN_IF_ERROR(
          catalog->UpsertLead(f.face_id, cand.face.face_id, cand.distance, cand.confidence)
              .status());
    }
    if (c.kind != CaseKind::kSighting) return absl::OkStatus();
    SearchQuery sq;
    sq.kinds = {CaseKind::kSighting};
    sq.top_k = kMaxTopK;
    sq.exclude_case_id = c.id;  // two children in one photo are two children
    sq.include_closed = true;
    std::vector<Found> hits;
    HW_RETURN_IF_ERROR(SearchKind(CaseKind::kSighting, f.face.descriptor.data(), sq, nullptr, &hits));
    std::vector<int64_t> near;
    for (const Found& h : hits) {
      if (h.hit.distance < options.match_threshold) near.push_back(h.hit.id);
    }
    return catalog->ClusterSightingFace(f.face_id, near).status();
  }

  // A lead with both sides, the best pair's age gap and caveats, and the sighting cluster.
  absl::StatusOr<LeadView> ViewOf(store::Lead lead) {
    LeadView v;
    v.lead = std::move(lead);
    struct Quality {
      bool usable = true;
      double width = 0, yaw = 0;
    };
    auto side = [&](int64_t case_id, int64_t face_id, LeadSide* out, Quality* q,
                    AgeEvidence* evidence) -> absl::Status {
      HW_ASSIGN_OR_RETURN(out->case_info, catalog->GetCase(case_id));
      HW_ASSIGN_OR_RETURN(std::vector<store::FaceAttributes> attrs,
                          catalog->GetFaceAttributes({face_id}));
      if (attrs.empty()) return absl::NotFoundError(absl::StrCat("face ", face_id, " not found"));
      out->face = attrs[0];
      out->age = AgeOf(attrs[0]);
      *evidence = EvidenceOf(attrs[0]);
      const store::FaceAttributes& a = attrs[0];
      out->box = {a.box_x, a.box_y, a.box_w, a.box_h};
      *q = {a.usable, a.width_px, a.yaw_deg};
      HW_ASSIGN_OR_RETURN(std::vector<store::Photo> photos, catalog->ListPhotos(case_id));
      for (const auto& p : photos) {
        if (p.id == attrs[0].photo_id) out->age.estimated = p.age_estimated && out->age.known();
      }
      return absl::OkStatus();
    };
    Quality qa, qb;
    AgeEvidence evidence_a, evidence_b;
    HW_RETURN_IF_ERROR(side(v.lead.case_a, v.lead.face_a, &v.a, &qa, &evidence_a));
    HW_RETURN_IF_ERROR(side(v.lead.case_b, v.lead.face_b, &v.b, &qb, &evidence_b));
    v.age_gap = GapOf(evidence_a, evidence_b);
    FaceCaveats(KindName(v.a.face.kind), qa.usable, qa.width, qa.yaw, &v.caveats);
    FaceCaveats(KindName(v.b.face.kind), qb.usable, qb.width, qb.yaw, &v.caveats);
    AgeCaveats(v.age_gap, calibration.get(), &v.caveats);
    v.caveats.push_back({"DNA_CONFIRMATION_REQUIRED", kDnaReminder});
    for (const LeadSide* s : {&v.a, &v.b}) {
      if (s->face.kind != CaseKind::kSighting) continue;
      HW_ASSIGN_OR_RETURN(std::vector<int64_t> cases,
                          catalog->SightingClusterCases(s->face.face_id));
      if (cases.empty()) cases.push_back(s->face.case_id);
      v.sighting_cluster_case_ids.insert(v.sighting_cluster_case_ids.end(), cases.begin(),
                                         cases.end());
    }
    return v;
  }
};

Gallery::Gallery(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Gallery::~Gallery() {
  {
    std::lock_guard<std::mutex> lock(impl_->follow_mu);
    impl_->stop_following = true;
  }
  impl_->follow_cv.notify_all();
  if (impl_->follower.joinable()) impl_->follower.join();
  impl_->stop_loading = true;
  if (impl_->age_loader.joinable()) impl_->age_loader.join();
  absl::Status s = impl_->SaveSnapshots();
  if (!s.ok()) std::fprintf(stderr, "homeward: final snapshot failed: %s\n", std::string(s.message()).c_str());
}

absl::StatusOr<std::unique_ptr<Gallery>> Gallery::Open(const GalleryOptions& options) {
  if (options.data_dir.empty()) return absl::InvalidArgumentError("data_dir is required");
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  // A catalog elsewhere (PostgreSQL) is opened first: a bad or unreachable one creates nothing.
  if (!options.catalog.empty() && options.shared_catalog == nullptr) {
    HW_ASSIGN_OR_RETURN(impl->catalog, store::Catalog::Open(options.catalog));
  }
  std::error_code ec;
  fs::create_directories(options.data_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create data directory '", options.data_dir, "': ", ec.message()));
  }
  if (options.follow_ms < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("follow_ms must be >= 0 (0 = off); got ", options.follow_ms));
  }
  if (options.shared_catalog != nullptr) {
    impl->catalog = options.shared_catalog;
    HW_RETURN_IF_ERROR(impl->data_dir_lock.Take(options.data_dir));
  } else if (options.catalog.empty()) {
    HW_ASSIGN_OR_RETURN(impl->catalog, store::Catalog::Open(options.data_dir));
  } else {
    HW_RETURN_IF_ERROR(impl->data_dir_lock.Take(options.data_dir));
  }
  HW_ASSIGN_OR_RETURN(impl->pipeline, embed::FacePipeline::Create(options.pipeline));
  if (!options.calibration_path.empty()) {
    HW_ASSIGN_OR_RETURN(impl->calibration, Calibration::Load(options.calibration_path));
  }
  HW_RETURN_IF_ERROR(impl->OpenIndexes());
  Impl* raw = impl.get();
  impl->age_loader = std::thread([raw] { raw->LoadAllAges(); });
  if (impl->following()) impl->follower = std::thread([raw] { raw->FollowLoop(); });
  return std::unique_ptr<Gallery>(new Gallery(std::move(impl)));
}

store::Catalog& Gallery::catalog() { return *impl_->catalog; }
bool Gallery::age_keys_loaded() const { return impl_->ages_loaded; }
const embed::FacePipeline& Gallery::pipeline() const { return *impl_->pipeline; }
const GalleryOptions& Gallery::options() const { return impl_->options; }

absl::StatusOr<AddPhotoOutcome> Gallery::AddPhoto(const PhotoInput& input) {
  HW_ASSIGN_OR_RETURN(store::Case c, impl_->catalog->GetCase(input.case_id));
  // The faces' own age estimates are used only for a sighting sent without an age.
  embed::ProcessRequest request;
  request.estimate_age = false;
  absl::StatusOr<embed::PhotoFaces> analysed =
      input.face_box.has_value() && c.kind != CaseKind::kSighting
          ? impl_->pipeline->ProcessBox(input.bytes, *input.face_box, request)
          : impl_->pipeline->Process(input.bytes, request);
  if (!analysed.ok()) return analysed.status();
  HW_ASSIGN_OR_RETURN(AddPhotoOutcome out, impl_->Store(c, input, *analysed));
  if (!out.duplicate) {
    impl_->CrossMatch(c, std::vector<AgeInfo>(out.faces.size(), input.age), out.faces);
  }
  return out;
}

absl::StatusOr<SightingOutcome> Gallery::SubmitSighting(const SightingInput& input) {
  SearchQuery query;
  query.top_k = input.top_k;
  query.query_age = input.estimated_age;
  query.query_date = input.seen_on;
  query.include_age_inconsistent = input.include_age_inconsistent;
  HW_RETURN_IF_ERROR(impl_->CheckQuery(query));
  embed::ProcessRequest request;
  request.estimate_age = !input.estimated_age.known();  // the volunteer's range wins
  HW_ASSIGN_OR_RETURN(embed::PhotoFaces analysed, impl_->pipeline->Process(input.bytes, request));
  SightingOutcome out;
  out.no_face_reason = analysed.no_face_reason;
  if (analysed.faces.empty()) return out;  // nothing stored: retake the photo
  store::Case c;
  c.kind = CaseKind::kSighting;
  c.display_name = absl::StrCat("Sighting", input.seen_on.empty() ? "" : " " + input.seen_on,
                                input.place.empty() ? "" : " at " + input.place);
  // The generated name keeps to the API's 200-byte name limit, cut on a UTF-8 boundary: a long
  // place must not fail the upload with an error about a name the caller never sent.
  if (c.display_name.size() > 200) {
    size_t cut = 200;
    while (cut > 0 && (static_cast<unsigned char>(c.display_name[cut]) & 0xC0) == 0x80) --cut;
    c.display_name.resize(cut);
  }
  c.event_date = input.seen_on;
  c.place = input.place;
  c.notes = input.notes;
  c.owner_key_id = input.reporter_key_id;
  HW_ASSIGN_OR_RETURN(c.id, impl_->catalog->AddCase(c));
  PhotoInput photo;
  photo.case_id = c.id;
  photo.bytes = input.bytes;
  photo.taken_on = input.seen_on;
  photo.age = input.estimated_age;
  photo.age.estimated = input.estimated_age.known();
  photo.age.from_face = false;
  if (!photo.age.known()) photo.age = FaceAgeOf(analysed, impl_->pipeline->options().quality);
  photo.source = "volunteer";
  store::AuditEntry audit;
  if (input.audit != nullptr) {
    audit = *input.audit;
    audit.target_id = c.id;
    photo.audit = &audit;
  }
  absl::StatusOr<AddPhotoOutcome> stored_or = impl_->Store(c, photo, analysed);
  if (!stored_or.ok()) {
    // No empty SIGHTING case is left behind by a failed upload (e.g. a full disk).
    absl::Status undone = DeleteCase(c.id).status();
    if (!undone.ok()) {
      std::fprintf(stderr, "homeward: removing sighting case %lld after a failed upload: %s\n",
                   static_cast<long long>(c.id), std::string(undone.message()).c_str());
    }
    return stored_or.status();
  }
  AddPhotoOutcome& stored = *stored_or;
  std::vector<AgeInfo> face_ages;
  for (const PhotoFace& f : stored.faces) face_ages.push_back(SightingFaceAge(photo.age, f.face));
  if (!stored.duplicate) impl_->CrossMatch(c, face_ages, stored.faces);
  out.case_id = c.id;
  out.photo_id = stored.photo_id;
  out.age = photo.age;
  for (size_t i = 0; i < stored.faces.size(); ++i) {
    PhotoFace& f = stored.faces[i];
    QueryResult r;
    if (f.face_id > 0) {
      // The volunteer's age, else the face's own estimate (several children in one street
      // photo each get their own; a turned face gets none).
      query.query_age = face_ages[i];
      const AgeEvidence qe = EvidenceOf(query.query_age, input.seen_on, impl_->Today());
      HW_ASSIGN_OR_RETURN(r, impl_->SearchDescriptor(f.face.descriptor, query, qe, &f.face));
    }
    r.query = std::move(f);
    out.results.push_back(std::move(r));
  }
  return out;
}

absl::StatusOr<SearchOutcome> Gallery::SearchImage(std::string_view image, const SearchQuery& query) {
  HW_RETURN_IF_ERROR(impl_->CheckQuery(query));
  embed::ProcessRequest request;
  request.estimate_age = false;  // a search takes the caller's query_age
  HW_ASSIGN_OR_RETURN(embed::PhotoFaces analysed, impl_->pipeline->Process(image, request));
  SearchOutcome out;
  out.no_face_reason = analysed.no_face_reason;
  const AgeEvidence qe = EvidenceOf(query.query_age, query.query_date, impl_->Today());
  for (size_t i = 0; i < analysed.faces.size(); ++i) {
    HW_ASSIGN_OR_RETURN(QueryResult r, impl_->SearchDescriptor(analysed.faces[i].descriptor, query,
                                                               qe, &analysed.faces[i]));
    r.query.index = static_cast<int>(i);
    r.query.face = analysed.faces[i];
    r.query.not_stored_reason = "search only";
    out.results.push_back(std::move(r));
  }
  return out;
}

absl::StatusOr<QueryResult> Gallery::SearchFace(int64_t face_id, const SearchQuery& query) {
  HW_ASSIGN_OR_RETURN(Impl::StoredFace stored, impl_->LoadFace(face_id));
  SearchQuery q = query;
  // The stored face's own evidence (birth date, photo date and age) unless the caller gives an
  // age for the query.
  AgeEvidence qe = EvidenceOf(stored.attrs);
  if (q.query_age.known()) {
    qe = EvidenceOf(q.query_age, q.query_date.empty() ? stored.attrs.date_taken : q.query_date,
                    impl_->Today());
  }
  if (q.exclude_case_id == 0) q.exclude_case_id = stored.attrs.case_id;
  HW_ASSIGN_OR_RETURN(QueryResult r, impl_->SearchDescriptor(stored.descriptor, q, qe, &stored.face));
  r.query.face = stored.face;
  r.query.face_id = face_id;
  return r;
}

absl::StatusOr<CompareOutcome> Gallery::Compare(const FaceRef& a, const FaceRef& b) {
  // A photo without a face is an answer, not an error: `no_face` receives the reason.
  std::string no_face;
  // A given age is the photo's age at an unknown date; a stored face brings its own evidence.
  auto given = [](const AgeInfo& age) {
    AgeEvidence e;
    e.age_min = age.known() ? age.min : -1;
    e.age_max = age.known() ? age.max : -1;
    e.age_estimated = age.estimated;
    return e;
  };
  auto resolve = [&](const FaceRef& ref, const char* which) -> absl::StatusOr<std::pair<embed::Face, AgeEvidence>> {
    if (ref.face_id > 0) {
      HW_ASSIGN_OR_RETURN(Impl::StoredFace s, impl_->LoadFace(ref.face_id));
      return std::make_pair(s.face, ref.age.known() ? given(ref.age) : EvidenceOf(s.attrs));
    }
    if (ref.image.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("face ", which, ": give an image or a face id"));
    }
    embed::ProcessRequest request;
    request.estimate_age = false;  // a given image's age is the caller's
    HW_ASSIGN_OR_RETURN(embed::PhotoFaces p, impl_->pipeline->Process(ref.image, request));
    if (p.faces.empty()) {
      if (no_face.empty()) no_face = absl::StrCat("image ", which, ": ", p.no_face_reason);
      return std::make_pair(embed::Face{}, given(ref.age));
    }
    auto largest = std::max_element(p.faces.begin(), p.faces.end(), [](const auto& x, const auto& y) {
      return x.box.width < y.box.width;
    });
    return std::make_pair(*largest, given(ref.age));
  };
  HW_ASSIGN_OR_RETURN(auto fa, resolve(a, "a"));
  HW_ASSIGN_OR_RETURN(auto fb, resolve(b, "b"));
  CompareOutcome out;
  out.threshold = impl_->options.match_threshold;
  if (!no_face.empty()) {
    out.no_face_reason = no_face;
    out.caveats.push_back({"NO_FACE", absl::StrCat("Nothing was compared: ", no_face, ".")});
    out.caveats.push_back({"DNA_CONFIRMATION_REQUIRED", kDnaReminder});
    return out;
  }
  out.distance = embed::DescriptorDistance(fa.first.descriptor, fb.first.descriptor);
  out.score = Score(out.distance);
  out.possible_match = out.distance < out.threshold;
  out.age_gap = GapOf(fa.second, fb.second);
  out.confidence = impl_->calibration ? impl_->calibration->Confidence(out.distance, out.age_gap)
                                      : out.score;
  FaceCaveats("first", fa.first.quality.usable, fa.first.quality.face_width_px,
              fa.first.quality.yaw_degrees, &out.caveats);
  FaceCaveats("second", fb.first.quality.usable, fb.first.quality.face_width_px,
              fb.first.quality.yaw_degrees, &out.caveats);
  AgeCaveats(out.age_gap, impl_->calibration.get(), &out.caveats);
  out.caveats.push_back({"DNA_CONFIRMATION_REQUIRED", kDnaReminder});
  return out;
}

absl::Status Gallery::UpdateCase(const store::Case& c, const store::AuditEntry* audit) {
  HW_RETURN_IF_ERROR(impl_->catalog->UpdateCase(c, audit));
  HW_ASSIGN_OR_RETURN(std::vector<store::Photo> photos, impl_->catalog->ListPhotos(c.id));
  std::vector<int64_t> face_ids;
  for (const auto& p : photos) {
    HW_ASSIGN_OR_RETURN(std::vector<store::Face> faces, impl_->catalog->ListFaces(p.id));
    for (const auto& f : faces) face_ids.push_back(f.id);
  }
  return impl_->LoadAges(face_ids);
}

absl::StatusOr<DeleteCounts> Gallery::DeleteCase(int64_t case_id,
                                                 const store::AuditEntry* audit) {
  std::lock_guard<std::mutex> lock(impl_->write_mu);
  HW_ASSIGN_OR_RETURN(store::Case c, impl_->catalog->GetCase(case_id));
  HW_ASSIGN_OR_RETURN(std::vector<store::Photo> photos, impl_->catalog->ListPhotos(case_id));
  std::vector<int64_t> face_ids;
  for (const auto& p : photos) {
    HW_ASSIGN_OR_RETURN(std::vector<store::Face> faces, impl_->catalog->ListFaces(p.id));
    for (const auto& f : faces) face_ids.push_back(f.id);
  }
  HW_RETURN_IF_ERROR(impl_->catalog->DeleteCase(case_id, audit));
  impl_->NoteOwnChanges(store::ChangeOp::kRemove, face_ids);
  if (!face_ids.empty()) {
    // Real deletion: the descriptors leave the index's memory (compaction drops the dead
    // slots) and its snapshot on disk, not only the catalog.
    HW_RETURN_IF_ERROR(impl_->ForgetFaces(c.kind, face_ids, /*compact=*/true));
    HW_RETURN_IF_ERROR(impl_->SaveSnapshot(c.kind));
  }
  DeleteCounts counts;
  counts.photos = static_cast<int>(photos.size());
  counts.faces = static_cast<int>(face_ids.size());
  return counts;
}

absl::StatusOr<int> Gallery::ExpireSightings(int64_t now_ms, int64_t retention_ms,
                                             const std::function<void(int64_t)>& on_expired) {
  if (retention_ms <= 0) return 0;  // keep forever
  constexpr int kBatch = 500;
  int expired = 0;
  std::vector<int64_t> all_faces;
  absl::Status first_error;
  while (true) {
    HW_ASSIGN_OR_RETURN(std::vector<int64_t> ids,
                        impl_->catalog->ListExpiredSightings(now_ms, retention_ms, kBatch));
    int progressed = 0;
    for (int64_t id : ids) {
      store::AuditEntry audit;
      audit.actor = "retention";
      audit.role = "system";
      audit.action = "expire";
      audit.target_type = "case";
      audit.target_id = id;
      audit.detail = absl::StrCat(
          "sighting retention ", retention_ms / kDayMs, " days",
          retention_ms % kDayMs ? absl::StrCat(" (", retention_ms, " ms)") : std::string(),
          ", no open lead");
      std::lock_guard<std::mutex> lock(impl_->write_mu);
      absl::StatusOr<std::vector<int64_t>> faces =
          impl_->catalog->ExpireSighting(id, now_ms, retention_ms, &audit);
      if (!faces.ok()) {
        // Protected since the listing, or deleted by someone else: nothing to do. Another error
        // is reported once the rest of the batch has been tried.
        const absl::StatusCode code = faces.status().code();
        if (code != absl::StatusCode::kFailedPrecondition && code != absl::StatusCode::kNotFound &&
            first_error.ok()) {
          first_error = faces.status();
        }
        continue;
      }
      ++expired;
      ++progressed;
      impl_->NoteOwnChanges(store::ChangeOp::kRemove, *faces);
      // Dead in the index at once (no search returns them); compacted once at the end.
      HW_RETURN_IF_ERROR(impl_->ForgetFaces(CaseKind::kSighting, *faces, /*compact=*/false));
      all_faces.insert(all_faces.end(), faces->begin(), faces->end());
      if (on_expired) on_expired(id);
    }
    if (static_cast<int>(ids.size()) < kBatch || progressed == 0) break;
  }
  if (!all_faces.empty()) {
    std::lock_guard<std::mutex> lock(impl_->write_mu);
    HW_RETURN_IF_ERROR(impl_->ForgetFaces(CaseKind::kSighting, {}, /*compact=*/true));
    HW_RETURN_IF_ERROR(impl_->SaveSnapshot(CaseKind::kSighting));
  }
  if (!first_error.ok()) return first_error;
  return expired;
}

absl::StatusOr<std::string> Gallery::FaceCropPng(int64_t face_id, int size) {
  HW_ASSIGN_OR_RETURN(Impl::StoredFace s, impl_->LoadFace(face_id));
  HW_ASSIGN_OR_RETURN(store::Catalog::PhotoWithBytes photo, impl_->catalog->GetPhoto(s.attrs.photo_id));
  // The detector may return a box reaching past the photo's edge: crop what lies inside.
  embed::Box box = s.face.box;
  const int right = std::min(box.x + box.width, photo.photo.width > 0 ? photo.photo.width : box.x + box.width);
  const int bottom = std::min(box.y + box.height, photo.photo.height > 0 ? photo.photo.height : box.y + box.height);
  box.x = std::max(0, box.x);
  box.y = std::max(0, box.y);
  box.width = right - box.x;
  box.height = bottom - box.y;
  return impl_->pipeline->FaceCropPng(photo.bytes, box, size);
}

absl::StatusOr<std::vector<KindStats>> Gallery::StatsForOwner(const std::string& owner_key_id) {
  HW_ASSIGN_OR_RETURN(auto counts, impl_->catalog->CountByKindForOwner(owner_key_id));
  std::vector<KindStats> out;
  for (CaseKind k : kKinds) {
    KindStats s;
    s.kind = k;
    s.cases = counts[k].cases;
    s.photos = counts[k].photos;
    s.faces = counts[k].faces;
    out.push_back(s);
  }
  return out;
}

absl::StatusOr<int64_t> Gallery::FollowChanges() {
  HW_ASSIGN_OR_RETURN(const int64_t applied, impl_->FollowOnce());
  HW_RETURN_IF_ERROR(impl_->FollowEdits().status());
  return applied;
}

absl::StatusOr<Gallery::ChangeLogPosition> Gallery::ChangeLog() {
  std::lock_guard<std::mutex> lock(impl_->write_mu);
  ChangeLogPosition pos;
  HW_ASSIGN_OR_RETURN(pos.last_seq, impl_->catalog->LastChangeSeq());
  pos.applied_seq = impl_->following() ? impl_->applied_seq : pos.last_seq;
  for (CaseKind k : kKinds) {
    auto it = impl_->behind_since.find(k);
    pos.behind[k] = it == impl_->behind_since.end() ? 0 : pos.last_seq - it->second;
  }
  return pos;
}

absl::StatusOr<std::vector<KindStats>> Gallery::Stats() {
  HW_ASSIGN_OR_RETURN(auto counts, impl_->catalog->CountByKind());
  std::vector<KindStats> out;
  for (CaseKind k : kKinds) {
    KindStats s;
    s.kind = k;
    auto it = counts.find(k);
    if (it != counts.end()) {
      s.cases = it->second.cases;
      s.photos = it->second.photos;
      s.faces = it->second.faces;
    }
    s.indexed = impl_->indexes[k]->size();
    out.push_back(s);
  }
  return out;
}

absl::StatusOr<LeadViewPage> Gallery::ListLeads(const store::LeadQuery& query) {
  HW_ASSIGN_OR_RETURN(store::LeadPage page, impl_->catalog->ListLeads(query));
  LeadViewPage out;
  out.next_page_token = page.next_page_token;
  for (store::Lead& lead : page.leads) {
    absl::StatusOr<LeadView> v = impl_->ViewOf(std::move(lead));
    if (absl::IsNotFound(v.status())) continue;  // a case deleted meanwhile
    HW_RETURN_IF_ERROR(v.status());
    out.leads.push_back(*std::move(v));
  }
  return out;
}

absl::StatusOr<LeadView> Gallery::GetLead(int64_t lead_id) {
  HW_ASSIGN_OR_RETURN(store::Lead lead, impl_->catalog->GetLead(lead_id));
  return impl_->ViewOf(std::move(lead));
}

absl::StatusOr<LeadView> Gallery::ReviewLead(int64_t lead_id, store::LeadStatus decision,
                                             const std::string& note, const std::string& reviewer,
                                             const std::string& role) {
  HW_ASSIGN_OR_RETURN(store::Lead lead,
                      impl_->catalog->ReviewLead(lead_id, decision, note, reviewer, role));
  return impl_->ViewOf(std::move(lead));
}

absl::Status Gallery::SaveSnapshots() { return impl_->SaveSnapshots(); }

}  // namespace homeward::gallery
