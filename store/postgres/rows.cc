#include "store/postgres/rows.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "store/internal/validate.h"

namespace homeward::store::internal {
namespace {

std::vector<float> Floats(const std::string& bytes) {
  std::vector<float> v(bytes.size() / sizeof(float));
  if (!v.empty()) std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

}  // namespace

Case PgReadCase(const pg::Result& r, int row) {
  Case c;
  c.id = r.Int(row, 0);
  c.kind = static_cast<CaseKind>(r.Int(row, 1));
  c.display_name = r.Text(row, 2);
  c.sex = static_cast<Sex>(r.Int(row, 3));
  c.date_of_birth = r.Text(row, 4);
  c.birth_year_min = static_cast<int>(r.Int(row, 5));
  c.birth_year_max = static_cast<int>(r.Int(row, 6));
  c.event_date = r.Text(row, 7);
  c.place = r.Text(row, 8);
  c.notes = r.Text(row, 9);
  c.reporter_contact = r.Text(row, 10);
  c.owner_key_id = r.Text(row, 11);
  c.status = static_cast<CaseStatus>(r.Int(row, 12));
  c.created_ms = r.Int(row, 13);
  c.updated_ms = r.Int(row, 14);
  return c;
}

pg::Params& PgCaseParams(pg::Params& p, const Case& c) {
  return p.Int(static_cast<int>(c.kind))
      .Text(c.display_name)
      .Int(static_cast<int>(c.sex))
      .TextOrNull(c.date_of_birth)
      .Int(c.birth_year_min)
      .Int(c.birth_year_max)
      .TextOrNull(c.event_date)
      .TextOrNull(c.place)
      .TextOrNull(c.notes)
      .TextOrNull(c.reporter_contact)
      .TextOrNull(c.owner_key_id)
      .Int(static_cast<int>(c.status));
}

Photo PgReadPhoto(const pg::Result& r, int row) {
  Photo p;
  p.id = r.Int(row, 0);
  p.case_id = r.Int(row, 1);
  p.date_taken = r.Text(row, 2);
  p.age_min = r.IsNull(row, 3) ? -1 : r.Real(row, 3);
  p.age_max = r.IsNull(row, 4) ? -1 : r.Real(row, 4);
  p.age_estimated = r.Bool(row, 5);
  p.source = r.Text(row, 6);
  p.width = static_cast<int>(r.Int(row, 7));
  p.height = static_cast<int>(r.Int(row, 8));
  p.sha256 = r.Text(row, 9);
  p.file_name = r.Text(row, 10);
  p.created_ms = r.Int(row, 11);
  p.age_from_face = r.Bool(row, 12);
  return p;
}

absl::StatusOr<Face> PgReadFace(const pg::Result& r, int row) {
  Face f;
  f.id = r.Int(row, 0);
  f.photo_id = r.Int(row, 1);
  f.box_x = static_cast<int>(r.Int(row, 2));
  f.box_y = static_cast<int>(r.Int(row, 3));
  f.box_w = static_cast<int>(r.Int(row, 4));
  f.box_h = static_cast<int>(r.Int(row, 5));
  std::string bytes;
  if (!r.Bytes(row, 6, &bytes)) {
    return absl::DataLossError(absl::StrCat("face ", f.id, "'s landmarks do not decode"));
  }
  f.landmarks = Floats(bytes);
  f.width_px = static_cast<float>(r.Real(row, 7));
  f.sharpness = static_cast<float>(r.Real(row, 8));
  f.yaw_deg = static_cast<float>(r.Real(row, 9));
  f.usable = r.Bool(row, 10);
  f.detector_score = static_cast<float>(r.Real(row, 11));
  if (!r.Bytes(row, 12, &bytes)) {
    return absl::DataLossError(absl::StrCat("face ", f.id, "'s descriptor does not decode"));
  }
  f.descriptor = Floats(bytes);
  f.model_id = r.Text(row, 13);
  return f;
}

std::string PgAttributesSelect(bool with_descriptor) {
  return absl::StrCat(
      "SELECT f.id, f.photo_id, p.case_id, c.kind, c.status, c.sex, p.age_min, p.age_max, "
      "p.date_taken, c.place, f.usable, c.date_of_birth, c.birth_year_min, c.birth_year_max, ",
      with_descriptor ? "f.descriptor" : "NULL",
      ", f.box_x, f.box_y, f.box_w, f.box_h, f.width_px, f.yaw, p.age_estimated, c.event_date, "
      "c.created_ms, p.age_from_face FROM faces f JOIN photos p ON p.id = f.photo_id "
      "JOIN cases c ON c.id = p.case_id ");
}

FaceAttributes PgReadAttributes(const pg::Result& r, int row) {
  FaceAttributes a;
  a.face_id = r.Int(row, 0);
  a.photo_id = r.Int(row, 1);
  a.case_id = r.Int(row, 2);
  a.kind = static_cast<CaseKind>(r.Int(row, 3));
  a.status = static_cast<CaseStatus>(r.Int(row, 4));
  a.sex = static_cast<Sex>(r.Int(row, 5));
  a.age_min = r.IsNull(row, 6) ? -1 : r.Real(row, 6);
  a.age_max = r.IsNull(row, 7) ? -1 : r.Real(row, 7);
  a.date_taken = r.Text(row, 8);
  a.place = r.Text(row, 9);
  a.usable = r.Bool(row, 10);
  a.box_x = static_cast<int>(r.Int(row, 15));
  a.box_y = static_cast<int>(r.Int(row, 16));
  a.box_w = static_cast<int>(r.Int(row, 17));
  a.box_h = static_cast<int>(r.Int(row, 18));
  a.width_px = static_cast<float>(r.Real(row, 19));
  a.yaw_deg = static_cast<float>(r.Real(row, 20));
  a.age_estimated = a.age_min >= 0 && r.Bool(row, 21);
  a.age_from_face = a.age_estimated && r.Bool(row, 24);
  a.date_of_birth = r.Text(row, 11);
  a.birth_year_min = static_cast<int>(r.Int(row, 12));
  a.birth_year_max = static_cast<int>(r.Int(row, 13));
  const bool photo_age = a.age_min >= 0;
  DeriveAge(a.date_taken, a.date_of_birth, a.birth_year_min, a.birth_year_max, &a.age_min,
            &a.age_max);
  a.age_from_birth_date = !photo_age && a.age_min >= 0 && !a.date_of_birth.empty();
  a.case_date = r.Text(row, 22);
  if (a.case_date.empty() && r.Int(row, 23) > 0) a.case_date = DateOfMillis(r.Int(row, 23));
  return a;
}

absl::StatusOr<int64_t> PgLastSeq(pg::Connection& db) {
  HW_ASSIGN_OR_RETURN(pg::Result r, db.Exec("SELECT coalesce(max(seq), 0) FROM changes"));
  return r.Int(0, 0);
}

}  // namespace homeward::store::internal
