#include "store/sqlite/rows.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "store/internal/validate.h"

namespace homeward::store::internal {

// ---- Row mapping --------------------------------------------------------------------------

Case ReadCase(const Statement& q) {
  Case c;
  c.id = q.Int(0);
  c.kind = static_cast<CaseKind>(q.Int(1));
  c.display_name = q.Text(2);
  c.sex = static_cast<Sex>(q.Int(3));
  c.date_of_birth = q.Text(4);
  c.birth_year_min = static_cast<int>(q.Int(5));
  c.birth_year_max = static_cast<int>(q.Int(6));
  c.event_date = q.Text(7);
  c.place = q.Text(8);
  c.notes = q.Text(9);
  c.reporter_contact = q.Text(10);
  c.owner_key_id = q.Text(11);
  c.status = static_cast<CaseStatus>(q.Int(12));
  c.created_ms = q.Int(13);
  c.updated_ms = q.Int(14);
  return c;
}

// Binds the caller-set fields of a case at 1..13 (kind and status included).
void BindCase(Statement& q, const Case& c) {
  q.Bind(1, static_cast<int>(c.kind))
      .BindText(2, c.display_name)
      .Bind(3, static_cast<int>(c.sex))
      .BindTextOrNull(4, c.date_of_birth)
      .Bind(5, c.birth_year_min)
      .Bind(6, c.birth_year_max)
      .BindTextOrNull(7, c.event_date)
      .BindTextOrNull(8, c.place)
      .BindTextOrNull(9, c.notes)
      .BindTextOrNull(10, c.reporter_contact)
      .BindTextOrNull(11, c.owner_key_id)
      .Bind(12, static_cast<int>(c.status));
}

Photo ReadPhoto(const Statement& q) {
  Photo p;
  p.id = q.Int(0);
  p.case_id = q.Int(1);
  p.date_taken = q.Text(2);
  p.age_min = q.IsNull(3) ? -1 : q.Real(3);
  p.age_max = q.IsNull(4) ? -1 : q.Real(4);
  p.age_estimated = q.Int(5) != 0;
  p.source = q.Text(6);
  p.width = static_cast<int>(q.Int(7));
  p.height = static_cast<int>(q.Int(8));
  p.sha256 = q.Text(9);
  p.file_name = q.Text(10);
  p.created_ms = q.Int(11);
  p.age_from_face = q.Int(12) != 0;
  return p;
}

std::vector<float> FloatsFromBlob(absl::string_view blob) {
  std::vector<float> v(blob.size() / sizeof(float));
  if (!v.empty()) std::memcpy(v.data(), blob.data(), v.size() * sizeof(float));
  return v;
}

Face ReadFace(const Statement& q) {
  Face f;
  f.id = q.Int(0);
  f.photo_id = q.Int(1);
  f.box_x = static_cast<int>(q.Int(2));
  f.box_y = static_cast<int>(q.Int(3));
  f.box_w = static_cast<int>(q.Int(4));
  f.box_h = static_cast<int>(q.Int(5));
  f.landmarks = FloatsFromBlob(q.Blob(6));
  f.width_px = static_cast<float>(q.Real(7));
  f.sharpness = static_cast<float>(q.Real(8));
  f.yaw_deg = static_cast<float>(q.Real(9));
  f.usable = q.Int(10) != 0;
  f.detector_score = static_cast<float>(q.Real(11));
  f.descriptor = FloatsFromBlob(q.Blob(12));
  f.model_id = q.Text(13);
  return f;
}

// Face attributes joined with their photo and case; column 14 is the descriptor, 15-20 the
// box and quality.
// Lookups by id select NULL instead of the 512-byte descriptor they do not need.
std::string AttributesSelect(bool with_descriptor) {
  return absl::StrCat(
      "SELECT f.id, f.photo_id, p.case_id, c.kind, c.status, c.sex, p.age_min, p.age_max, "
      "p.date_taken, c.place, f.usable, c.date_of_birth, c.birth_year_min, c.birth_year_max, ",
      with_descriptor ? "f.descriptor" : "NULL",
      ", f.box_x, f.box_y, f.box_w, f.box_h, f.width_px, f.yaw, p.age_estimated, c.event_date, "
      "c.created_ms, p.age_from_face FROM faces f JOIN photos p ON p.id = f.photo_id "
      "JOIN cases c ON c.id = p.case_id ");
}

FaceAttributes ReadAttributes(const Statement& q) {
  FaceAttributes a;
  a.face_id = q.Int(0);
  a.photo_id = q.Int(1);
  a.case_id = q.Int(2);
  a.kind = static_cast<CaseKind>(q.Int(3));
  a.status = static_cast<CaseStatus>(q.Int(4));
  a.sex = static_cast<Sex>(q.Int(5));
  a.age_min = q.IsNull(6) ? -1 : q.Real(6);
  a.age_max = q.IsNull(7) ? -1 : q.Real(7);
  a.date_taken = q.Text(8);
  a.place = q.Text(9);
  a.usable = q.Int(10) != 0;
  a.box_x = static_cast<int>(q.Int(15));
  a.box_y = static_cast<int>(q.Int(16));
  a.box_w = static_cast<int>(q.Int(17));
  a.box_h = static_cast<int>(q.Int(18));
  a.width_px = static_cast<float>(q.Real(19));
  a.yaw_deg = static_cast<float>(q.Real(20));
  a.age_estimated = a.age_min >= 0 && q.Int(21) != 0;
  a.age_from_face = a.age_estimated && q.Int(24) != 0;
  a.date_of_birth = q.Text(11);
  a.birth_year_min = static_cast<int>(q.Int(12));
  a.birth_year_max = static_cast<int>(q.Int(13));
  const bool photo_age = a.age_min >= 0;
  DeriveAge(a.date_taken, a.date_of_birth, a.birth_year_min, a.birth_year_max, &a.age_min,
            &a.age_max);
  a.age_from_birth_date = !photo_age && a.age_min >= 0 && !a.date_of_birth.empty();
  a.case_date = q.Text(22);
  if (a.case_date.empty() && q.Int(23) > 0) a.case_date = DateOfMillis(q.Int(23));
  return a;
}

absl::StatusOr<sqlite3*> OpenConnection(const std::string& path, const CatalogOptions& options,
                                        bool reader) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status s = internal::SqliteError(db, rc, absl::StrCat("open ", path));
    sqlite3_close_v2(db);
    return s;
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, options.busy_timeout_ms);
  absl::Status s = internal::Exec(
      db, "PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON; PRAGMA synchronous = FULL;");
  if (s.ok() && reader) s = internal::Exec(db, "PRAGMA query_only = ON");
  if (s.ok() && !reader) {
    // WAL is persistent in the file; set it once, from the writer, and check it took.
    absl::StatusOr<Statement> q = Statement::Prepare(db, "PRAGMA journal_mode = WAL");
    s = q.status();
    if (s.ok()) {
      absl::StatusOr<bool> row = q->Step();
      if (!row.ok()) {
        s = row.status();
      } else if (!*row || q->Text(0) != "wal") {
        s = absl::FailedPreconditionError(
            absl::StrCat("could not enable WAL on ", path, " (is it on a network filesystem?)"));
      }
    }
    if (s.ok()) s = internal::Exec(db, "PRAGMA journal_size_limit = 67108864");
  }
  if (!s.ok()) {
    sqlite3_close_v2(db);
    return s;
  }
  return db;
}

// The last change seq in the open transaction's snapshot (0 when there is none).
absl::StatusOr<int64_t> LastSeqIn(sqlite3* db) {
  HW_ASSIGN_OR_RETURN(Statement q,
                      Statement::Prepare(db, "SELECT coalesce(max(seq), 0) FROM changes"));
  HW_ASSIGN_OR_RETURN(bool row, q.Step());
  return row ? q.Int(0) : 0;
}

}  // namespace homeward::store::internal
