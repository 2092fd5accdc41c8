// Rows of the SQLite catalog mapped to records (store/records.h) and back, and opening a
// connection with the catalog's pragmas.
#ifndef HOMEWARD_STORE_SQLITE_ROWS_H_
#define HOMEWARD_STORE_SQLITE_ROWS_H_

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "store/catalog.h"
#include "store/internal/sqlite.h"

// The id of a new row: never one a deleted row had (schema version 4's id_high_water).
#define HW_NEXT_ID_SQL(table) "(SELECT max_id + 1 FROM id_high_water WHERE name = '" table "')"

namespace homeward::store::internal {

inline constexpr char kCaseColumns[] =
    "id, kind, display_name, sex, date_of_birth, birth_year_min, birth_year_max, event_date, "
    "place, notes, reporter_contact, owner_key_id, status, created_ms, updated_ms";

inline constexpr char kPhotoColumns[] =
    "id, case_id, date_taken, age_min, age_max, age_estimated, source, width, height, sha256, "
    "file_name, created_ms, age_from_face";

inline constexpr char kFaceColumns[] =
    "id, photo_id, box_x, box_y, box_w, box_h, landmarks, width_px, sharpness, yaw, usable, "
    "detector_score, descriptor, model_id";

Case ReadCase(const Statement& q);
// Binds the caller-set fields of a case at 1..13 (kind and status included).
void BindCase(Statement& q, const Case& c);
Photo ReadPhoto(const Statement& q);
std::vector<float> FloatsFromBlob(absl::string_view blob);
Face ReadFace(const Statement& q);
// Face attributes joined with their photo and case; column 14 is the descriptor, 15-20 the
// box and quality.
// Lookups by id select NULL instead of the 512-byte descriptor they do not need.
std::string AttributesSelect(bool with_descriptor);
FaceAttributes ReadAttributes(const Statement& q);
absl::StatusOr<sqlite3*> OpenConnection(const std::string& path, const CatalogOptions& options,
                                        bool reader);
// The last change seq in the open transaction's snapshot (0 when there is none).
absl::StatusOr<int64_t> LastSeqIn(sqlite3* db);

// Inserts an audit row inside the caller's transaction; returns its id (audit.cc).
absl::StatusOr<int64_t> InsertAuditRow(sqlite3* db, const AuditEntry& e);

}  // namespace homeward::store::internal

#endif  // HOMEWARD_STORE_SQLITE_ROWS_H_
