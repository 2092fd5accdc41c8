// Gallery: Homeward's domain service. It ties the face pipeline (embed/), the catalog
// (store/) and one face index per collection kind (index/) into the operations users
// call: add a photo to a case, submit a sighting, search, compare, delete a case. No gRPC
// here: server/ maps these calls onto the API.
//
// Consistency: the catalog is the source of truth. A photo's faces are written to the
// catalog in one transaction, then added to the index in one batch (a search never sees a
// half-added photo). Index snapshots (<data_dir>/index/<kind>.snap) record the last catalog
// change they include; Open loads them and replays later changes, or rebuilds from the
// catalog when a snapshot is missing or corrupt (logged, never fatal). An index insertion that
// fails after the catalog commit is retried, then caught up from the change log; if that fails
// too the call returns UNAVAILABLE saying the photo is stored, and the kind's snapshots are
// tagged before the missed change so that the next start replays it: a stored face is never
// silently missing from search.
//
// THREAD SAFETY: every method may be called concurrently. Writes to one index are
// serialized by the index; the pipeline runs on its own worker pool.
// Errors follow store/catalog.h and embed/face_pipeline.h; FAILED_PRECONDITION when a
// MISSING/FOUND photo has several faces and the caller did not say which is the child.
#ifndef HOMEWARD_GALLERY_GALLERY_H_
#define HOMEWARD_GALLERY_GALLERY_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "embed/face_pipeline.h"
#include "gallery/age.h"
#include "index/face_index.h"
#include "store/catalog.h"

namespace homeward::gallery {

struct GalleryOptions {
  std::string data_dir;  // index snapshots; the SQLite catalog and photos unless `catalog`
  // The catalog's location when it is not the SQLite one in data_dir: a postgresql:// URL
  // (store/catalog.h). "" (default): SQLite in data_dir. With a catalog elsewhere, Open takes
  // <data_dir>/LOCK itself (one process per data_dir) and opens the catalog before creating
  // anything.
  std::string catalog;
  // An open catalog to use instead of opening one (tests and tools: several galleries may
  // share one object, as several servers share one catalog database). Wins over `catalog`.
  std::shared_ptr<store::Catalog> shared_catalog;
  // Following: every follow_ms the gallery applies the changes other writers of a shared
  // catalog logged (faces added and removed) to its indexes and age keys. 0: off, for a
  // catalog that only this gallery writes (the embedded default).
  int follow_ms = 0;
  embed::PipelineOptions pipeline;
  index::IndexOptions index;        // one index per kind, all built from this factory
  int64_t snapshot_every = 10000;   // save the snapshots after this many index changes
  double match_threshold = embed::kSamePersonDistance;
  // Ignore the snapshots and rebuild every index from the catalog (e.g. after changing the
  // index factory, or to train an approximate index on the faces gathered since).
  bool rebuild_indexes = false;
  // Age-aware calibration file (gallery/calibration.h), e.g. models/age_calibration_v1.json.
  // "" (default): none, confidence = score and ranking by distance. When set, Open fails if it
  // is missing (NOT_FOUND) or unusable (INVALID_ARGUMENT), and searches rank by confidence.
  std::string calibration_path;
  // Cross-matching: every new face is searched against the two other collections; the
  // candidates (up to lead_top_k per face) whose confidence is >= lead_min_confidence become
  // leads for investigators (store::Catalog::UpsertLead). A new SIGHTING face within
  // match_threshold of earlier SIGHTING faces joins their cluster.
  bool cross_match = true;
  double lead_min_confidence = 0.5;
  int lead_top_k = 10;
  // Tests only: called before each insertion into an index; returning true makes that insertion
  // fail as a full index or a Faiss error would (the catalog already holds the faces).
  std::function<bool()> index_add_fault_for_test;
  // Today's date (YYYY-MM-DD) for queries that carry an age but no date; "" = the system
  // clock's UTC date. Tests set it to make age projection deterministic.
  std::string today;
};

// Age of the child in a photo, in years. Unknown when min < 0.
struct AgeInfo {
  double min = -1, max = -1;
  bool estimated = false;
  // Estimated from the face by the age model (embed/age_estimator.h), not given by a person:
  // only for a sighting submitted without an age; a person's age always replaces it.
  bool from_face = false;
  bool known() const { return min >= 0 && max >= min; }
};

struct AgeGap {
  bool known = false;
  double min = 0, max = 0;   // smallest / largest possible gap in years
  bool estimated = false;    // one of the ages was estimated
  double younger_age = -1;   // the younger face's (lower) age
  bool from_face = false;    // an estimated age came from the face (the age model)
};

struct Caveat {
  std::string code;     // YOUNG_CHILD, LARGE_AGE_GAP, ESTIMATED_AGE, LOW_QUALITY_FACE, ...
  std::string message;  // one plain sentence
};

// A face of an uploaded photo and what became of it.
struct PhotoFace {
  int index = 0;
  embed::Face face;
  int64_t face_id = 0;  // > 0 when stored
  std::string not_stored_reason;
};

struct PhotoInput {
  int64_t case_id = 0;
  std::string bytes;
  std::string taken_on;  // YYYY-MM-DD or ""
  AgeInfo age;           // unknown: derived from the case's birth date by the catalog
  std::optional<int> face_index;      // which face is the child (MISSING/FOUND photos)
  std::optional<embed::Box> face_box; // or a box around it
  std::string source;
  // Appended in the photo's own transaction (store/catalog.h), also for a duplicate; null: none.
  const store::AuditEntry* audit = nullptr;
};

struct AddPhotoOutcome {
  int64_t photo_id = 0;
  bool duplicate = false;
  std::vector<PhotoFace> faces;
  std::string no_face_reason;
};

struct SearchQuery {
  std::vector<store::CaseKind> kinds;  // empty: MISSING and FOUND
  int top_k = 10;                      // 1..100
  double min_score = 0;                // 0..1
  store::Sex sex = store::Sex::kUnknown;  // kUnknown = any
  double age_min = -1, age_max = -1;      // candidate age overlaps [min,max]; -1 = open
  std::string date_from, date_to;         // candidate photo date range, "" = open
  std::string place_contains;
  bool include_closed = false;
  AgeInfo query_age;
  std::string query_date;       // "" = today (when query_age is known)
  int64_t exclude_case_id = 0;  // never return faces of this case (the query's own)
  // Candidates whose age cannot be the query child's at the query date (gallery/age.h) are
  // left out and counted; true returns them too, with an AGE_INCONSISTENT caveat.
  bool include_age_inconsistent = false;
};

struct Candidate {
  store::FaceAttributes face;  // ids, kind, sex, age, date, place
  store::Case case_info;       // the full case; the server decides what a role may see
  embed::Box box;
  double distance = 0;
  double score = 0;       // 1 - distance/1.2, clipped to [0,1]
  double confidence = 0;  // calibrated for the age gap when available (the ranking key), else = score
  AgeInfo candidate_age;
  AgeGap age_gap;
  AgeCheck age_check;          // consistency with the query; projected age at the query date
  int case_faces_matched = 1;  // faces of this case among the nearest; this one is the best
  bool above_lead_threshold = false;  // confidence >= GalleryOptions::lead_min_confidence
  std::vector<Caveat> caveats;
};

// Cases left out of a result because their age could not be the query child's.
struct AgeLeftOut {
  std::string reason;  // TOO_OLD, TOO_YOUNG, TIME_ORDER
  int count = 0;       // cases nearer than the last one shown (all that were seen if none shown)
  std::string message;
};

struct QueryResult {
  PhotoFace query;
  std::vector<Candidate> candidates;  // one per case, nearest age-consistent face first
  bool credible_match = false;        // a candidate reaches the lead threshold
  double lead_threshold = 0;
  std::vector<AgeLeftOut> age_left_out;
  std::string message;  // plain words when there is no credible match
};

struct SearchOutcome {
  std::vector<QueryResult> results;
  std::string no_face_reason;
};

struct SightingInput {
  std::string bytes;
  std::string seen_on;
  std::string place;
  AgeInfo estimated_age;
  std::string notes;
  std::string reporter_key_id;  // the volunteer's key id (owner of the sighting)
  int top_k = 10;
  bool include_age_inconsistent = false;
  // Appended with the sighting's photo, target_id = the new case (store/catalog.h); a photo
  // with no face stores nothing, and writes no entry. Null: none.
  const store::AuditEntry* audit = nullptr;
};

struct SightingOutcome {
  int64_t case_id = 0;
  int64_t photo_id = 0;
  AgeInfo age;  // the age stored with the photo: the volunteer's, else the face's estimate
  std::vector<QueryResult> results;
  std::string no_face_reason;
};

struct CompareOutcome {
  double distance = 0, score = 0, threshold = 0;
  double confidence = 0;  // calibrated for the age gap when a calibration is loaded, else = score
  bool possible_match = false;
  AgeGap age_gap;
  std::vector<Caveat> caveats;
  std::string no_face_reason;  // set (and nothing compared) when an image shows no face
};

// One side of a comparison: a photo (its largest face) or a stored face.
struct FaceRef {
  std::string image;
  int64_t face_id = 0;
  AgeInfo age;
};

struct KindStats {
  store::CaseKind kind;
  int64_t cases = 0, photos = 0, faces = 0, indexed = 0;
};

struct DeleteCounts {
  int photos = 0, faces = 0;
};

// One side of a lead, for review: the case, the face and its photo, the child's age there.
struct LeadSide {
  store::Case case_info;
  store::FaceAttributes face;  // face_id, photo_id, case_id, kind, age, date, place
  embed::Box box;
  AgeInfo age;
};

// A lead with what an investigator needs to review it.
struct LeadView {
  store::Lead lead;  // ids, best pair, status, evidence (score history) and reviews
  LeadSide a, b;     // case_a's and case_b's side of the best face pair
  AgeGap age_gap;
  std::vector<Caveat> caveats;                // of the best pair, DNA reminder last
  std::vector<int64_t> sighting_cluster_case_ids;  // every SIGHTING case seen as this child
};

struct LeadViewPage {
  std::vector<LeadView> leads;  // confidence descending
  std::string next_page_token;
};

// The reminder that goes with every result.
inline constexpr char kDnaReminder[] =
    "A match is a lead for DNA confirmation, not an identification.";

class Gallery {
 public:
  static absl::StatusOr<std::unique_ptr<Gallery>> Open(const GalleryOptions& options);
  ~Gallery();  // saves the index snapshots
  Gallery(const Gallery&) = delete;
  Gallery& operator=(const Gallery&) = delete;

  store::Catalog& catalog();
  // True once every stored face's age key is in memory (loaded on a thread after Open; until
  // then searches read the ages they need from the catalog, with the same results).
  bool age_keys_loaded() const;
  const embed::FacePipeline& pipeline() const;
  const GalleryOptions& options() const;

  // Detects faces and stores the photo. MISSING/FOUND: exactly one face is stored (the only
  // one, or the one chosen by face_index/face_box; FAILED_PRECONDITION when several were
  // found and none chosen; a photo with no face is stored with zero faces). SIGHTING: every
  // usable face is stored, and every face whose only problem is the turn (non_frontal, wide and
  // sharp enough) as evidence; too small or too blurry faces are not (not_stored_reason).
  absl::StatusOr<AddPhotoOutcome> AddPhoto(const PhotoInput& input);

  // Creates a SIGHTING case, stores the photo and searches each stored face against
  // MISSING and FOUND.
  absl::StatusOr<SightingOutcome> SubmitSighting(const SightingInput& input);

  absl::StatusOr<SearchOutcome> SearchImage(std::string_view image, const SearchQuery& query);
  absl::StatusOr<QueryResult> SearchFace(int64_t face_id, const SearchQuery& query);

  absl::StatusOr<CompareOutcome> Compare(const FaceRef& a, const FaceRef& b);

  // Updates a case as store::Catalog::UpdateCase does (same errors), and the in-memory age keys
  // of its faces: call this, not the catalog's, so that searches see a new birth date at once.
  // `audit` (may be null) is appended in the change's transaction.
  absl::Status UpdateCase(const store::Case& c, const store::AuditEntry* audit = nullptr);

  // Real deletion of the case: files, rows, index entries. `audit` (may be null) is appended in
  // the deleting transaction, with the counts.
  absl::StatusOr<DeleteCounts> DeleteCase(int64_t case_id,
                                          const store::AuditEntry* audit = nullptr);

  // Data minimisation: deletes every SIGHTING case whose retention has run out at now_ms
  // (store::Catalog::ListExpiredSightings: no open, confirmed-for-DNA or needs-better-photo
  // lead, and no activity for retention_ms), each with DeleteCase's real deletion (files,
  // rows, index entries, cluster memberships) and an audit row holding only the case id and
  // the reason (actor "retention", action "expire"). A sighting that gained a lead since the
  // listing is kept. Returns how many were deleted; 0 when retention_ms <= 0 (keep forever).
  // An error of one deletion is returned after the others were tried.
  // `on_expired` (may be empty) is called with each deleted case id.
  absl::StatusOr<int> ExpireSightings(int64_t now_ms, int64_t retention_ms,
                                      const std::function<void(int64_t)>& on_expired = nullptr);

  // The aligned face as a PNG of size x size pixels (32..512).
  absl::StatusOr<std::string> FaceCropPng(int64_t face_id, int size);

  // Leads found by cross-matching (see GalleryOptions::cross_match), enriched for review.
  // Errors as store::Catalog::ListLeads / GetLead / ReviewLead.
  absl::StatusOr<LeadViewPage> ListLeads(const store::LeadQuery& query);
  absl::StatusOr<LeadView> GetLead(int64_t lead_id);
  absl::StatusOr<LeadView> ReviewLead(int64_t lead_id, store::LeadStatus decision,
                                      const std::string& note, const std::string& reviewer,
                                      const std::string& role);

  // Totals per collection, from counters kept with the data (no scan).
  absl::StatusOr<std::vector<KindStats>> Stats();
  // The counts of the cases one key owns; `indexed` is left 0 (a total of everyone's faces).
  absl::StatusOr<std::vector<KindStats>> StatsForOwner(const std::string& owner_key_id);
  absl::Status SaveSnapshots();

  // Where the indexes stand against the catalog's change log: its last change, and per
  // collection the changes its index has not applied (0 unless an insertion failed and could
  // not be caught up; the next start replays them).
  struct ChangeLogPosition {
    int64_t last_seq = 0;
    int64_t applied_seq = 0;  // following: the last change applied; else last_seq
    std::map<store::CaseKind, int64_t> behind;
  };
  absl::StatusOr<ChangeLogPosition> ChangeLog();

  // Applies the changes of the catalog's log that other writers made since the last call
  // (what the follow_ms thread does); returns how many it applied. Not needed without
  // other writers: this gallery's own changes reach its indexes as they are made.
  absl::StatusOr<int64_t> FollowChanges();

 private:
  class Impl;
  explicit Gallery(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace homeward::gallery

#endif  // HOMEWARD_GALLERY_GALLERY_H_
