// Rows of the PostgreSQL catalog mapped to records (store/records.h) and back. The column
// lists match store/sqlite/rows.h's, so the two backends read the same fields.
#ifndef HOMEWARD_STORE_POSTGRES_ROWS_H_
#define HOMEWARD_STORE_POSTGRES_ROWS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "store/catalog.h"
#include "store/postgres/pg.h"

namespace homeward::store::internal {

// The advisory lock every write transaction takes first (postgres_catalog.h).
inline constexpr int64_t kWriteLockKey = 0x486f6d65'57726974;  // "HomeWrit"

inline constexpr char kPgCaseColumns[] =
    "id, kind, display_name, sex, date_of_birth, birth_year_min, birth_year_max, event_date, "
    "place, notes, reporter_contact, owner_key_id, status, created_ms, updated_ms";
inline constexpr char kPgPhotoColumns[] =
    "id, case_id, date_taken, age_min, age_max, age_estimated, source, width, height, sha256, "
    "file_name, created_ms, age_from_face";
inline constexpr char kPgFaceColumns[] =
    "id, photo_id, box_x, box_y, box_w, box_h, landmarks, width_px, sharpness, yaw, usable, "
    "detector_score, descriptor, model_id";

Case PgReadCase(const pg::Result& r, int row);
// Appends the caller-set fields of a case as 12 parameters (kind .. status), in
// kPgCaseColumns' order from `kind`.
pg::Params& PgCaseParams(pg::Params& p, const Case& c);
Photo PgReadPhoto(const pg::Result& r, int row);
// DATA_LOSS if a bytea column does not decode.
absl::StatusOr<Face> PgReadFace(const pg::Result& r, int row);
// Face attributes joined with their photo and case; column 14 is the descriptor (NULL
// without), 15-20 the box and quality (as store/sqlite/rows.h's AttributesSelect).
std::string PgAttributesSelect(bool with_descriptor);
FaceAttributes PgReadAttributes(const pg::Result& r, int row);
absl::StatusOr<int64_t> PgLastSeq(pg::Connection& db);

// Inserts an audit row inside the caller's transaction; returns its id (audit.cc).
absl::StatusOr<int64_t> InsertAuditRow(pg::Connection& db, const AuditEntry& e);

}  // namespace homeward::store::internal

#endif  // HOMEWARD_STORE_POSTGRES_ROWS_H_
