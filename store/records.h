// The catalog's records: what a case, a photo, a face, a lead, an audit entry and a change
// are, as every catalog backend stores them and every caller reads them (store/catalog.h).
// Plain values, copied freely; no backend type appears here.
#ifndef HOMEWARD_STORE_RECORDS_H_
#define HOMEWARD_STORE_RECORDS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

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
  bool age_from_face = false;  // the estimate came from the face (embed/age_estimator.h)
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
  bool age_estimated = false;        // the photo's age was a guess
  bool age_from_birth_date = false;  // derived from the case's exact date of birth
  bool age_from_face = false;        // the photo's age was estimated from the face
  std::string date_of_birth;         // the case's, or ""
  int birth_year_min = 0, birth_year_max = 0;
  std::string case_date;  // the case's event date, else its registration date
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
  std::string place_contains;               // case-insensitive substring (ASCII), "" = any
  std::string event_from, event_to;         // inclusive, "" = open-ended
  std::optional<std::string> owner_key_id;  // only cases of this owner (paging stays inside)
  int page_size = 50;                       // 1..1000
  std::string page_token;                   // "" for the first page
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

}  // namespace homeward::store

#endif  // HOMEWARD_STORE_RECORDS_H_
