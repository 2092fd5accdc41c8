// PostgresCatalog: photos, faces, the index scans and the change log (see
// postgres_catalog.h).
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "base/status_macros.h"
#include "store/internal/files.h"
#include "store/internal/validate.h"
#include "store/postgres/postgres_catalog.h"
#include "store/postgres/rows.h"

namespace homeward::store::internal {
namespace {

// The kind of case `case_id` (its stored int); NOT_FOUND if there is no such case.
absl::StatusOr<int> CaseKindOf(pg::Connection& db, int64_t case_id) {
  HW_ASSIGN_OR_RETURN(pg::Result r,
                      db.Exec("SELECT kind FROM cases WHERE id = $1", pg::Params().Int(case_id)));
  if (r.rows() == 0) return absl::NotFoundError(absl::StrCat("case ", case_id, " does not exist"));
  return static_cast<int>(r.Int(0, 0));
}

// If case `case_id` already holds a photo with digest `sha`, fills *result with it and its
// faces (duplicate=true) and returns true.
absl::StatusOr<bool> FindDuplicate(pg::Connection& db, const std::string& sha, int64_t case_id,
                                   AddPhotoResult* result) {
  HW_ASSIGN_OR_RETURN(
      pg::Result r,
      db.Exec("SELECT p.id, f.id FROM photos p LEFT JOIN faces f ON f.photo_id = p.id WHERE "
              "p.id = (SELECT min(id) FROM photos WHERE sha256 = $1 AND case_id = $2) ORDER BY "
              "f.id",
              pg::Params().Text(sha).Int(case_id)));
  if (r.rows() == 0) return false;
  *result = AddPhotoResult();
  result->photo_id = r.Int(0, 0);
  result->duplicate = true;
  for (int i = 0; i < r.rows(); ++i) {
    if (!r.IsNull(i, 1)) result->face_ids.push_back(r.Int(i, 1));
  }
  return true;
}

absl::string_view FloatBytes(const std::vector<float>& v) {
  return absl::string_view(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

// Inserts the photo's bytes (unless stored already), its row, its faces and a kAdd change per
// face inside the caller's transaction. Sets result->photo_id and appends the face ids in
// the order given.
absl::Status InsertPhotoRows(pg::Connection& db, const Photo& meta, const std::string& bytes,
                             const std::string& sha, int kind, const std::vector<Face>& faces,
                             AddPhotoResult* result) {
  HW_RETURN_IF_ERROR(db.Exec("INSERT INTO photo_bytes (sha256, bytes) VALUES ($1, $2) "
                             "ON CONFLICT (sha256) DO NOTHING",
                             pg::Params().Text(sha).Bytes(bytes))
                         .status());
  pg::Params p;
  p.Int(meta.case_id).TextOrNull(meta.date_taken);
  if (meta.age_min < 0) {
    p.Null().Null();
  } else {
    p.Real(meta.age_min).Real(meta.age_max);
  }
  const int64_t now = NowMs();
  p.Bool(meta.age_estimated)
      .TextOrNull(meta.source)
      .Int(meta.width)
      .Int(meta.height)
      .Text(sha)
      .Text(FileNameForHash(sha))
      .Int(now)
      .Bool(meta.age_from_face && meta.age_estimated);
  HW_ASSIGN_OR_RETURN(
      pg::Result photo,
      db.Exec("INSERT INTO photos (case_id, date_taken, age_min, age_max, age_estimated, "
              "source, width, height, sha256, file_name, created_ms, age_from_face) VALUES ($1, $2, "
              "$3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
              p));
  result->photo_id = photo.Int(0, 0);
  for (const Face& face : faces) {
    pg::Params fp;
    fp.Int(result->photo_id)
        .Int(face.box_x)
        .Int(face.box_y)
        .Int(face.box_w)
        .Int(face.box_h)
        .Bytes(FloatBytes(face.landmarks))
        .Real(face.width_px)
        .Real(face.sharpness)
        .Real(face.yaw_deg)
        .Bool(face.usable)
        .Real(face.detector_score)
        .Bytes(FloatBytes(face.descriptor))
        .TextOrNull(face.model_id)
        .Int(kind);
    // The face and its change in one round trip.
    HW_ASSIGN_OR_RETURN(
        pg::Result r,
        db.Exec("WITH f AS (INSERT INTO faces (photo_id, box_x, box_y, box_w, box_h, landmarks, "
                "width_px, sharpness, yaw, usable, detector_score, descriptor, model_id) VALUES "
                "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id) "
                "INSERT INTO changes (op, face_id, kind) SELECT 'add', f.id, $14 FROM f "
                "RETURNING face_id",
                fp));
    result->face_ids.push_back(r.Int(0, 0));
  }
  return db
      .Exec("UPDATE cases SET updated_ms = greatest($1, updated_ms + 1) WHERE id = $2",
            pg::Params().Int(now).Int(meta.case_id))
      .status();
}

}  // namespace

absl::StatusOr<AddPhotoResult> PostgresCatalog::AddPhoto(const Photo& meta,
                                                         const std::string& bytes,
                                                         const std::vector<Face>& faces,
                                                         const AuditEntry* audit) {
  HW_RETURN_IF_ERROR(ValidatePhoto(meta, bytes));
  for (size_t i = 0; i < faces.size(); ++i) HW_RETURN_IF_ERROR(ValidateFace(faces[i], i));
  if (audit != nullptr) HW_RETURN_IF_ERROR(ValidateAudit(*audit));
  const std::string sha = Sha256Hex(bytes);
  AddPhotoResult result;
  HW_RETURN_IF_ERROR(Write([&](pg::Connection& db) -> absl::Status {
    result = AddPhotoResult();
    HW_ASSIGN_OR_RETURN(int kind, CaseKindOf(db, meta.case_id));
    HW_ASSIGN_OR_RETURN(bool dup, FindDuplicate(db, sha, meta.case_id, &result));
    if (!dup) HW_RETURN_IF_ERROR(InsertPhotoRows(db, meta, bytes, sha, kind, faces, &result));
    if (audit != nullptr) {  // the audit entry with the change's facts, in its transaction
      AuditEntry entry = *audit;
      if (entry.target_id == 0) entry.target_id = meta.case_id;
      absl::StrAppend(&entry.detail, entry.detail.empty() ? "" : " ", "photo=", result.photo_id,
                      " faces=", result.face_ids.size(), result.duplicate ? " duplicate" : "");
      HW_RETURN_IF_ERROR(InsertAuditRow(db, entry).status());
    }
    return absl::OkStatus();
  }));
  return result;
}

absl::StatusOr<std::vector<AddPhotoResult>> PostgresCatalog::AddPhotoBatch(
    const std::vector<PhotoToAdd>& photos) {
  std::vector<std::string> shas(photos.size());
  for (size_t i = 0; i < photos.size(); ++i) {
    const PhotoToAdd& p = photos[i];
    absl::Status valid = ValidatePhoto(p.meta, p.bytes);
    for (size_t j = 0; valid.ok() && j < p.faces.size(); ++j) valid = ValidateFace(p.faces[j], j);
    if (!valid.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("photos[", i, "]: ", valid.message()));
    }
    shas[i] = Sha256Hex(p.bytes);
  }
  std::vector<AddPhotoResult> results(photos.size());
  if (photos.empty()) return results;
  HW_RETURN_IF_ERROR(Write([&](pg::Connection& db) -> absl::Status {
    std::map<int64_t, int> kinds;
    for (size_t i = 0; i < photos.size(); ++i) {
      const int64_t case_id = photos[i].meta.case_id;
      if (kinds.count(case_id) == 0) {
        HW_ASSIGN_OR_RETURN(kinds[case_id], CaseKindOf(db, case_id));
      }
    }
    for (size_t i = 0; i < photos.size(); ++i) {
      results[i] = AddPhotoResult();
      // Sees this batch's earlier rows too: repeated bytes in one case are stored once.
      HW_ASSIGN_OR_RETURN(bool dup,
                          FindDuplicate(db, shas[i], photos[i].meta.case_id, &results[i]));
      if (dup) continue;
      HW_RETURN_IF_ERROR(InsertPhotoRows(db, photos[i].meta, photos[i].bytes, shas[i],
                                         kinds[photos[i].meta.case_id], photos[i].faces,
                                         &results[i]));
    }
    return absl::OkStatus();
  }));
  return results;
}

absl::StatusOr<Photo> PostgresCatalog::GetPhotoInfo(int64_t id) {
  HW_ASSIGN_OR_RETURN(pg::Result r,
                      Query(absl::StrCat("SELECT ", kPgPhotoColumns, " FROM photos WHERE id = $1"),
                            pg::Params().Int(id)));
  if (r.rows() == 0) return absl::NotFoundError(absl::StrCat("photo ", id, " does not exist"));
  return PgReadPhoto(r, 0);
}

absl::StatusOr<Catalog::PhotoWithBytes> PostgresCatalog::GetPhoto(int64_t id) {
  HW_ASSIGN_OR_RETURN(
      pg::Result r,
      Query(absl::StrCat("SELECT p.", absl::StrReplaceAll(kPgPhotoColumns, {{", ", ", p."}}),
                         ", b.bytes FROM photos p LEFT JOIN photo_bytes b ON b.sha256 = p.sha256 "
                         "WHERE p.id = $1"),
            pg::Params().Int(id)));
  if (r.rows() == 0) return absl::NotFoundError(absl::StrCat("photo ", id, " does not exist"));
  PhotoWithBytes out;
  out.photo = PgReadPhoto(r, 0);
  constexpr int kBytesColumn = 13;  // after kPgPhotoColumns
  if (r.IsNull(0, kBytesColumn))
    return absl::DataLossError(absl::StrCat("photo ", id, "'s bytes are missing"));
  if (!r.Bytes(0, kBytesColumn, &out.bytes) || Sha256Hex(out.bytes) != out.photo.sha256) {
    return absl::DataLossError(absl::StrCat("photo ", id, "'s bytes do not match its hash"));
  }
  return out;
}

absl::StatusOr<std::vector<Photo>> PostgresCatalog::ListPhotos(int64_t case_id) {
  std::vector<Photo> out;
  HW_RETURN_IF_ERROR(Read([&](pg::Connection& db) -> absl::Status {
    HW_ASSIGN_OR_RETURN(pg::Result c,
                        db.Exec("SELECT 1 FROM cases WHERE id = $1", pg::Params().Int(case_id)));
    if (c.rows() == 0)
      return absl::NotFoundError(absl::StrCat("case ", case_id, " does not exist"));
    HW_ASSIGN_OR_RETURN(pg::Result r, db.Exec(absl::StrCat("SELECT ", kPgPhotoColumns,
                                                           " FROM photos WHERE case_id = $1 "
                                                           "ORDER BY id"),
                                              pg::Params().Int(case_id)));
    for (int i = 0; i < r.rows(); ++i) out.push_back(PgReadPhoto(r, i));
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<Face> PostgresCatalog::GetFace(int64_t face_id) {
  HW_ASSIGN_OR_RETURN(pg::Result r,
                      Query(absl::StrCat("SELECT ", kPgFaceColumns, " FROM faces WHERE id = $1"),
                            pg::Params().Int(face_id)));
  if (r.rows() == 0) return absl::NotFoundError(absl::StrCat("face ", face_id, " does not exist"));
  return PgReadFace(r, 0);
}

absl::StatusOr<std::vector<Face>> PostgresCatalog::ListFaces(int64_t photo_id) {
  std::vector<Face> out;
  HW_RETURN_IF_ERROR(Read([&](pg::Connection& db) -> absl::Status {
    HW_ASSIGN_OR_RETURN(pg::Result c,
                        db.Exec("SELECT 1 FROM photos WHERE id = $1", pg::Params().Int(photo_id)));
    if (c.rows() == 0) {
      return absl::NotFoundError(absl::StrCat("photo ", photo_id, " does not exist"));
    }
    HW_ASSIGN_OR_RETURN(pg::Result r, db.Exec(absl::StrCat("SELECT ", kPgFaceColumns,
                                                           " FROM faces WHERE photo_id = $1 "
                                                           "ORDER BY id"),
                                              pg::Params().Int(photo_id)));
    for (int i = 0; i < r.rows(); ++i) {
      HW_ASSIGN_OR_RETURN(Face f, PgReadFace(r, i));
      out.push_back(std::move(f));
    }
    return absl::OkStatus();
  }));
  return out;
}

// Every face from one REPEATABLE READ snapshot, fetched through a cursor in batches (a
// million faces are never in memory at once), with the change seq that snapshot includes.
absl::StatusOr<int64_t> PostgresCatalog::ScanFaces(
    bool with_descriptor, const std::function<absl::Status(const FaceRecord&)>& fn) {
  int64_t seq = 0;
  HW_RETURN_IF_ERROR(Read([&](pg::Connection& db) -> absl::Status {
    HW_ASSIGN_OR_RETURN(seq, PgLastSeq(db));
    HW_RETURN_IF_ERROR(db.Script(absl::StrCat("DECLARE face_scan NO SCROLL CURSOR FOR ",
                                              PgAttributesSelect(with_descriptor), "ORDER BY f.id")
                                     .c_str()));
    float descriptor[kDescriptorDim];
    std::string bytes;
    while (true) {
      HW_ASSIGN_OR_RETURN(pg::Result r, db.Exec("FETCH 4096 FROM face_scan"));
      if (r.rows() == 0) break;
      for (int i = 0; i < r.rows(); ++i) {
        if (!with_descriptor) {
          HW_RETURN_IF_ERROR(fn(FaceRecord{PgReadAttributes(r, i), nullptr}));
          continue;
        }
        if (!r.Bytes(i, 14, &bytes) || bytes.size() != sizeof(descriptor)) {
          return absl::DataLossError(
              absl::StrCat("face ", r.Int(i, 0), " has a ", bytes.size(), "-byte descriptor"));
        }
        std::memcpy(descriptor, bytes.data(), sizeof(descriptor));
        HW_RETURN_IF_ERROR(fn(FaceRecord{PgReadAttributes(r, i), descriptor}));
      }
    }
    return absl::OkStatus();
  }));
  return seq;
}

absl::StatusOr<int64_t> PostgresCatalog::ForEachFace(
    const std::function<absl::Status(const FaceRecord&)>& fn) {
  return ScanFaces(/*with_descriptor=*/true, fn);
}

absl::StatusOr<int64_t> PostgresCatalog::ForEachFaceAttributes(
    const std::function<absl::Status(const FaceRecord&)>& fn) {
  return ScanFaces(/*with_descriptor=*/false, fn);
}

absl::StatusOr<std::vector<FaceAttributes>> PostgresCatalog::GetFaceAttributes(
    const std::vector<int64_t>& ids) {
  std::vector<FaceAttributes> out;
  if (ids.empty()) return out;
  // One statement for the whole list; the given order is restored below.
  std::string array = "{";
  for (size_t i = 0; i < ids.size(); ++i) absl::StrAppend(&array, i ? "," : "", ids[i]);
  array += "}";
  HW_ASSIGN_OR_RETURN(
      pg::Result r, Query(absl::StrCat(PgAttributesSelect(false), "WHERE f.id = ANY($1::bigint[])"),
                          pg::Params().Text(array)));
  std::map<int64_t, int> row_of;
  for (int i = 0; i < r.rows(); ++i) row_of[r.Int(i, 0)] = i;
  out.reserve(r.rows());
  for (int64_t id : ids) {
    auto it = row_of.find(id);
    if (it != row_of.end()) out.push_back(PgReadAttributes(r, it->second));
  }
  return out;
}

absl::StatusOr<std::vector<Change>> PostgresCatalog::ChangesAfter(int64_t after_seq, int limit) {
  if (limit < 1 || limit > 100000) {
    return absl::InvalidArgumentError(absl::StrCat("limit must be 1..100000; got ", limit));
  }
  HW_ASSIGN_OR_RETURN(pg::Result r, Query("SELECT seq, op, face_id, kind FROM changes WHERE "
                                          "seq > $1 ORDER BY seq LIMIT $2",
                                          pg::Params().Int(after_seq).Int(limit)));
  std::vector<Change> out;
  out.reserve(r.rows());
  for (int i = 0; i < r.rows(); ++i) {
    out.push_back(Change{r.Int(i, 0), r.Text(i, 1) == "add" ? ChangeOp::kAdd : ChangeOp::kRemove,
                         r.Int(i, 2), static_cast<CaseKind>(r.Int(i, 3))});
  }
  return out;
}

absl::StatusOr<int64_t> PostgresCatalog::LastChangeSeq() {
  HW_ASSIGN_OR_RETURN(pg::Result r, Query("SELECT coalesce(max(seq), 0) FROM changes"));
  return r.Int(0, 0);
}

absl::StatusOr<std::vector<std::pair<int64_t, int64_t>>> PostgresCatalog::CasesUpdatedSince(
    int64_t since_ms, int limit) {
  if (limit < 1 || limit > 100000) {
    return absl::InvalidArgumentError(absl::StrCat("limit must be 1..100000; got ", limit));
  }
  HW_ASSIGN_OR_RETURN(pg::Result r,
                      Query("SELECT id, updated_ms FROM cases WHERE updated_ms >= $1 ORDER BY "
                            "updated_ms, id LIMIT $2",
                            pg::Params().Int(since_ms).Int(limit)));
  std::vector<std::pair<int64_t, int64_t>> out;
  for (int i = 0; i < r.rows(); ++i) out.emplace_back(r.Int(i, 0), r.Int(i, 1));
  return out;
}

}  // namespace homeward::store::internal
