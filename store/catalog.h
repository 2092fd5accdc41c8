// Catalog: Homeward's source of truth. It owns the cases (MISSING, FOUND, SIGHTING), their
// photos, the faces found in them (with their 128-float descriptors), an append-only audit
// trail, a change log from which the face index is rebuilt or caught up, and the leads
// (proposed cross-collection matches, their evidence and reviews) with the sighting clusters.
//
// Storage: one SQLite database (<data_dir>/catalog.db, WAL, synchronous=FULL) and the photo
// files under <data_dir>/photos/, named by the SHA-256 of their bytes; no caller-supplied
// text ever reaches a path. A call that returns OK is durable across kill -9 and power loss.
// One Catalog per data_dir at a time (a lock file, <data_dir>/LOCK, enforces it).
//
// THREAD SAFETY: every method may be called concurrently on one Catalog. Writes are
// serialized by one mutex; reads run in parallel on pooled read connections and each call
// sees one committed state. A ForEachFace callback may call other Catalog methods.
// OWNERSHIP: results are returned by value; Open returns the sole owner of the Catalog.
//
// ERRORS (all methods): INVALID_ARGUMENT for malformed input (the message says what to fix);
// NOT_FOUND for an unknown id; RESOURCE_EXHAUSTED when the disk is full; DATA_LOSS for a
// corrupt database or a missing photo file; UNAVAILABLE when the database stays locked past
// busy_timeout_ms; INTERNAL for other I/O failures. Dates are "YYYY-MM-DD", "" = unknown.
#ifndef HOMEWARD_STORE_CATALOG_H_
#define HOMEWARD_STORE_CATALOG_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace homeward::store {

inline constexpr int kDescriptorDim = 128;

enum class CaseKind { kMissing = 1, kFound = 2, kSighting = 3 };
enum class CaseStatus { kOpen = 1, kReunited = 2, kClosed = 3, kWithdrawn = 4 };
enum class Sex { kUnknown = 0, kFemale = 1, kMale = 2 };

struct Case {
  int64_t id = 0;                      // assigned by AddCase
  CaseKind kind = CaseKind::kMissing;  // fixed at creation
  std::string display_name;            // name or alias; required
  Sex sex = Sex::kUnknown;
  std::string date_of_birth;                   // exact, or "" and a birth-year range below
  int birth_year_min = 0, birth_year_max = 0;  // 0 = unknown
  std::string event_date;                      // date missing / found / seen
  std::string place;                           // where missing / found / seen (free text)
  std::string notes;
  std::string reporter_contact;  // sensitive: never log it
  std::string owner_key_id;      // who may edit the case
  CaseStatus status = CaseStatus::kOpen;
  int64_t created_ms = 0, updated_ms = 0;  // set by the catalog (Unix ms)
};

struct Photo {
  int64_t id = 0, case_id = 0;  // id assigned by AddPhoto
  std::string date_taken;
  double age_min = -1, age_max = -1;  // age at photo in years; -1 = unknown; min == max if exact
  bool age_estimated = false;
  std::string source;         // e.g. "family", "police", "volunteer"
  int width = 0, height = 0;  // pixels, as reported by the caller
  std::string sha256;         // set by the catalog: hex of the file bytes
  std::string file_name;      // set by the catalog: path relative to <data_dir>/photos/
  int64_t created_ms = 0;
};

struct Face {
  int64_t id = 0, photo_id = 0;  // id assigned by AddPhoto
  int box_x = 0, box_y = 0, box_w = 0, box_h = 0;
  std::vector<float> landmarks;  // x,y pairs (even count), may be empty
  float width_px = 0, sharpness = 0, yaw_deg = 0, detector_score = 0;
  bool usable = true;
  std::vector<float> descriptor;  // exactly kDescriptorDim finite floats
  std::string model_id;
};

// What search filters need about a face; ages are derived from the case's birth date when
// the photo carries none.
struct FaceAttributes {
  int64_t face_id = 0, photo_id = 0, case_id = 0;
  CaseKind kind = CaseKind::kMissing;
  CaseStatus status = CaseStatus::kOpen;
  Sex sex = Sex::kUnknown;
  double age_min = -1, age_max = -1;  // -1 = unknown
  std::string date_taken, place;
  bool usable = true;
  int box_x = 0, box_y = 0, box_w = 0, box_h = 0;  // the face in its photo
  float width_px = 0, yaw_deg = 0;
  // What the age above rests on (gallery/age.h projects it to another photo's date).
  bool age_estimated = false;    // the photo's age was a guess
  bool age_from_birth_date = false;  // derived from the case's exact date of birth
  std::string date_of_birth;     // the case's, or ""
  int birth_year_min = 0, birth_year_max = 0;
  std::string case_date;         // the case's event date, else its registration date
};

struct FaceRecord {  // one row of ForEachFace
  FaceAttributes attributes;
  const float* descriptor;  // kDescriptorDim floats, valid during the callback only
};

enum class ChangeOp { kAdd = 1, kRemove = 2 };
struct Change {
  int64_t seq = 0;  // strictly increasing, never reused
  ChangeOp op = ChangeOp::kAdd;
  int64_t face_id = 0;
  CaseKind kind = CaseKind::kMissing;
};

struct AuditEntry {
  int64_t id = 0, time_ms = 0;  // set by the catalog
  std::string actor, role, action, target_type, detail;
  int64_t target_id = 0;
};

struct CaseQuery {
  std::optional<CaseKind> kind;
  std::optional<CaseStatus> status;
  std::string place_contains;        // case-insensitive substring (ASCII), "" = any
  std::string event_from, event_to;  // inclusive, "" = open-ended
  std::optional<std::string> owner_key_id;  // only cases of this owner (paging stays inside)
  int page_size = 50;                // 1..1000
  std::string page_token;            // "" for the first page
};
struct CasePage {
  std::vector<Case> cases;      // ascending id
  std::string next_page_token;  // "" when there are no more
};

struct AddPhotoResult {
  int64_t photo_id = 0;
  std::vector<int64_t> face_ids;  // in the order given
  bool duplicate = false;         // the case already had these bytes; nothing was added
};

struct KindCounts {
  int64_t cases = 0, photos = 0, faces = 0;
};

// Leads: a proposed match between two cases of different kinds, found automatically and
// reviewed by an investigator. One lead per case pair (case_a < case_b); every face pair seen
// for it is kept as evidence, the best (highest confidence) one on the lead itself.
enum class LeadStatus { kOpen = 1, kConfirmedForDna = 2, kRejected = 3, kNeedsBetterPhoto = 4 };

struct LeadEvidence {
  int64_t face_a = 0, face_b = 0;  // face of case_a, face of case_b
  double distance = 0, confidence = 0;
  int64_t time_ms = 0;  // set by the catalog
};

struct LeadReview {
  LeadStatus decision = LeadStatus::kRejected;
  std::string note, reviewer;
  int64_t time_ms = 0;  // set by the catalog
};

struct Lead {
  int64_t id = 0;
  int64_t case_a = 0, case_b = 0;  // case_a < case_b
  int64_t face_a = 0, face_b = 0;  // the best face pair
  double distance = 0, confidence = 0;
  LeadStatus status = LeadStatus::kOpen;
  int64_t created_ms = 0, updated_ms = 0;
  std::vector<LeadEvidence> evidence;  // oldest first; GetLead and ReviewLead only
  std::vector<LeadReview> reviews;     // oldest first; GetLead and ReviewLead only
};

struct LeadQuery {
  std::optional<LeadStatus> status;  // unset = any
  double min_confidence = 0;         // 0..1
  std::string place_contains;        // either case's place, case-insensitive (ASCII)
  std::string event_from, event_to;  // either case's event date within, inclusive; "" = open
  int page_size = 50;                // 1..1000
  std::string page_token;            // "" for the first page
};
struct LeadPage {
  std::vector<Lead> leads;  // confidence descending, then id ascending
  std::string next_page_token;
};

enum class LeadUpsert {
  kCreated,        // a new lead
  kEvidenceAdded,  // a new face pair on an existing lead (best pair updated if better)
  kReopened,       // a new face pair on a rejected / needs-better-photo lead: open again
  kUnchanged,      // this face pair was already evidence of the lead
  kSuppressed,     // the same photo content was rejected before: nothing proposed
};
struct LeadUpsertResult {
  int64_t lead_id = 0;  // 0 when suppressed
  LeadUpsert outcome = LeadUpsert::kUnchanged;
};

struct CatalogOptions {
  int busy_timeout_ms = 5000;
  int max_read_connections = 4;    // idle read connections kept open
  // Remove files under photos/ that no row references, on a thread started by Open (Open does
  // not wait for it; orphan_sweep_done() tells when it has finished).
  bool sweep_orphan_files = true;
};

class Catalog {
 public:
  // Opens or creates <data_dir>/catalog.db, upgrading an older schema in one transaction,
  // then finishes any interrupted deletion and starts the orphan-file sweep in the background.
  // FAILED_PRECONDITION if another Catalog holds data_dir or the file's schema is newer than
  // this code.
  static absl::StatusOr<std::unique_ptr<Catalog>> Open(const std::string& data_dir,
                                                       const CatalogOptions& options = {});
  // True once the orphan-file sweep started by Open has finished (or was not asked for).
  bool orphan_sweep_done() const;
  ~Catalog();
  Catalog(const Catalog&) = delete;
  Catalog& operator=(const Catalog&) = delete;

  // Cases. AddCase returns the new id. UpdateCase replaces every caller-set field of case
  // c.id (INVALID_ARGUMENT if c.kind differs from the stored kind).
  absl::StatusOr<int64_t> AddCase(const Case& c);
  absl::StatusOr<Case> GetCase(int64_t id);
  absl::Status UpdateCase(const Case& c);
  absl::StatusOr<CasePage> ListCases(const CaseQuery& query);
  absl::StatusOr<std::map<CaseKind, KindCounts>> CountByKind();  // from counters: O(1)
  // The counts of the cases `owner_key_id` owns (a volunteer's or a family's own).
  absl::StatusOr<std::map<CaseKind, KindCounts>> CountByKindForOwner(
      const std::string& owner_key_id);
  // Deletes the case, its photos, faces and their files, logging a kRemove change per face;
  // its leads (with their evidence and reviews) and cluster memberships go too.
  // Rows go in one transaction that also journals the files; the files are unlinked after it
  // commits (a crash in between is finished by the next Open). If an unlink fails, returns
  // that error with the rows already gone; the next deletion or Open retries the unlink.
  absl::Status DeleteCase(int64_t id);

  // Stores `bytes` (any non-empty image bytes; not decoded) and its faces for case
  // `meta.case_id`, logging a kAdd change per face, all in one transaction after the file is
  // durable. If the case already holds identical bytes, returns that photo and its faces with
  // duplicate=true. The same bytes in two cases share one file and get one photo row each.
  absl::StatusOr<AddPhotoResult> AddPhoto(const Photo& meta, const std::string& bytes,
                                          const std::vector<Face>& faces);
  // Bulk AddPhoto (imports, benchmarks): every photo's file is made durable first, then all
  // rows go in ONE transaction, so either every photo is stored or none is. Results are in
  // the given order; a photo whose case already holds its bytes (stored before, or earlier
  // in this batch) gets duplicate=true. INVALID_ARGUMENT names the first malformed entry
  // ("photos[i]: ..."); NOT_FOUND for an unknown case. The write lock is held for the whole
  // batch: keep batches to a few thousand photos.
  struct PhotoToAdd {
    Photo meta;
    std::string bytes;
    std::vector<Face> faces;
  };
  absl::StatusOr<std::vector<AddPhotoResult>> AddPhotoBatch(const std::vector<PhotoToAdd>& photos);
  struct PhotoWithBytes {
    Photo photo;
    std::string bytes;
  };
  absl::StatusOr<PhotoWithBytes> GetPhoto(int64_t id);
  // The photo's row without its bytes (no file is read); NOT_FOUND if unknown.
  absl::StatusOr<Photo> GetPhotoInfo(int64_t id);
  absl::StatusOr<std::vector<Photo>> ListPhotos(int64_t case_id);
  // Like DeleteCase, for one photo: evidence naming its faces goes; a lead keeps its best
  // remaining pair, or goes when none remains.
  absl::Status DeletePhoto(int64_t id);
  absl::StatusOr<std::vector<Face>> ListFaces(int64_t photo_id);
  absl::StatusOr<Face> GetFace(int64_t face_id);  // NOT_FOUND if unknown

  // Index support. ForEachFace visits every face (ascending id) from one consistent snapshot
  // and returns the change seq that snapshot includes: replay ChangesAfter(seq) to catch up.
  // A non-OK status from `fn` stops the scan and is returned.
  absl::StatusOr<int64_t> ForEachFace(const std::function<absl::Status(const FaceRecord&)>& fn);
  // The same scan without the descriptors (FaceRecord::descriptor is null).
  absl::StatusOr<int64_t> ForEachFaceAttributes(
      const std::function<absl::Status(const FaceRecord&)>& fn);
  // Attributes of the given faces, in the given order; unknown (e.g. deleted) ids are skipped.
  absl::StatusOr<std::vector<FaceAttributes>> GetFaceAttributes(const std::vector<int64_t>& ids);
  // Up to `limit` (1..100000) changes with seq > after_seq, ascending.
  absl::StatusOr<std::vector<Change>> ChangesAfter(int64_t after_seq, int limit);
  absl::StatusOr<int64_t> LastChangeSeq();  // 0 when there has been no change

  // Leads. UpsertLead records that faces x and y (of two different cases) match at
  // `distance`/`confidence` (finite, confidence in 0..1), keyed by their case pair. A face
  // pair whose photo content (photo SHA-256 and face box, both sides) is evidence of a
  // rejected lead is suppressed, so re-uploading a rejected photo proposes nothing; any other
  // new pair reopens a rejected or needs-better-photo lead. NOT_FOUND for an unknown face,
  // INVALID_ARGUMENT when both faces belong to one case.
  absl::StatusOr<LeadUpsertResult> UpsertLead(int64_t face_x, int64_t face_y, double distance,
                                              double confidence);
  absl::StatusOr<LeadPage> ListLeads(const LeadQuery& query);
  absl::StatusOr<Lead> GetLead(int64_t id);  // with evidence and reviews
  // Sets the lead's status to `decision` (not kOpen: INVALID_ARGUMENT) and appends the review
  // and an audit entry (actor = reviewer, action "ReviewLead") in one transaction. Returns
  // the updated lead. INVALID_ARGUMENT if reviewer is empty.
  absl::StatusOr<Lead> ReviewLead(int64_t id, LeadStatus decision, const std::string& note,
                                  const std::string& reviewer, const std::string& role = "");

  // Sighting clusters: a SIGHTING face joins the cluster of its near neighbours (merging
  // their clusters; unclustered neighbours join too), or starts its own. Returns the cluster
  // id. NOT_FOUND if face_id is unknown.
  absl::StatusOr<int64_t> ClusterSightingFace(int64_t face_id,
                                              const std::vector<int64_t>& neighbour_face_ids);
  // The case ids of the faces in face_id's cluster, ascending; {} when it has none.
  absl::StatusOr<std::vector<int64_t>> SightingClusterCases(int64_t face_id);

  // Candidate grants (the volunteers' thumbnail policy, server/internal/candidate_grants.h):
  // SaveGrants records that `key_id` was shown `face_ids` until `expires_ms` (Unix ms; a later
  // grant of the same face replaces the expiry); LoadGrants deletes the grants expired at
  // `now_ms` and returns the others.
  struct Grant {
    std::string key_id;
    int64_t face_id = 0, expires_ms = 0;
  };
  absl::Status SaveGrants(const std::string& key_id, const std::vector<int64_t>& face_ids,
                          int64_t expires_ms);
  absl::StatusOr<std::vector<Grant>> LoadGrants(int64_t now_ms);

  // Audit trail: append-only; no method (and no SQL: triggers refuse) updates or deletes it.
  // INVALID_ARGUMENT if actor or action is empty.
  absl::StatusOr<int64_t> AppendAudit(const AuditEntry& entry);
  // Up to `limit` (1..10000) entries with id > after_id, ascending; target_type "" = all.
  absl::StatusOr<std::vector<AuditEntry>> ListAudit(int64_t after_id, int limit,
                                                    const std::string& target_type = "",
                                                    int64_t target_id = 0);

 private:
  class Impl;
  explicit Catalog(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace homeward::store

#endif  // HOMEWARD_STORE_CATALOG_H_
