// SqliteCatalog: photos, faces, the index scans and the change log (see sqlite_catalog.h).
#include <sqlite3.h>

#include <cstring>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "store/internal/files.h"
#include "store/internal/validate.h"
#include "store/sqlite/rows.h"
#include "store/sqlite/sqlite_catalog.h"

namespace homeward::store::internal {

absl::Status SqliteCatalog::DeletePhoto(int64_t id) {
  return DeleteRows(id, "p.id = ?1", /*delete_case=*/false, nullptr);
}

namespace {

// The kind of case `case_id` (its stored int); NOT_FOUND if there is no such case.
absl::StatusOr<int> CaseKindOf(sqlite3* db, int64_t case_id) {
  HW_ASSIGN_OR_RETURN(Statement q, Statement::Prepare(db, "SELECT kind FROM cases WHERE id = ?"));
  HW_ASSIGN_OR_RETURN(bool row, q.Bind(1, case_id).Step());
  if (!row) return absl::NotFoundError(absl::StrCat("case ", case_id, " does not exist"));
  return static_cast<int>(q.Int(0));
}

// If case `case_id` already holds a photo with digest `sha`, fills *result with it and its
// faces (duplicate=true) and returns true.
absl::StatusOr<bool> FindDuplicate(sqlite3* db, const std::string& sha, int64_t case_id,
                                   AddPhotoResult* result) {
  HW_ASSIGN_OR_RETURN(
      Statement q,
      Statement::Prepare(db, "SELECT id FROM photos WHERE sha256 = ? AND case_id = ? LIMIT 1"));
  HW_ASSIGN_OR_RETURN(bool dup, q.BindText(1, sha).Bind(2, case_id).Step());
  if (!dup) return false;
  result->photo_id = q.Int(0);
  result->duplicate = true;
  HW_ASSIGN_OR_RETURN(
      Statement f, Statement::Prepare(db, "SELECT id FROM faces WHERE photo_id = ? ORDER BY id"));
  f.Bind(1, result->photo_id);
  while (true) {
    HW_ASSIGN_OR_RETURN(bool row, f.Step());
    if (!row) break;
    result->face_ids.push_back(f.Int(0));
  }
  return true;
}

// Removes a photo file written for rows that were not committed, unless another photo row
// shares it (best effort; Open sweeps too).
void UnlinkIfUnreferenced(sqlite3* db, const std::string& photos_dir, const std::string& sha,
                          const std::string& file_name) {
  absl::StatusOr<Statement> ref =
      Statement::Prepare(db, "SELECT 1 FROM photos WHERE sha256 = ? LIMIT 1");
  if (!ref.ok()) return;
  absl::StatusOr<bool> shared = ref->BindText(1, sha).Step();
  if (shared.ok() && !*shared) internal::UnlinkDurably(photos_dir, file_name).IgnoreError();
}

// Inserts photo rows, their faces and a kAdd change per face inside the caller's
// transaction; the statements are prepared once and reused for every photo of a batch.
class PhotoRowWriter {
 public:
  static absl::StatusOr<PhotoRowWriter> Prepare(sqlite3* db) {
    HW_ASSIGN_OR_RETURN(
        Statement p,
        Statement::Prepare(
            db,
            "INSERT INTO photos (case_id, date_taken, age_min, age_max, "
            "age_estimated, source, width, height, sha256, file_name, created_ms, "
            "age_from_face, id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, " HW_NEXT_ID_SQL(
                "photos") ")"));
    HW_ASSIGN_OR_RETURN(
        Statement f,
        Statement::Prepare(
            db,
            "INSERT INTO faces (photo_id, box_x, box_y, box_w, box_h, landmarks, "
            "width_px, sharpness, yaw, usable, detector_score, descriptor, "
            "model_id, id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, " HW_NEXT_ID_SQL(
                "faces") ")"));
    HW_ASSIGN_OR_RETURN(
        Statement c,
        Statement::Prepare(db, "INSERT INTO changes (op, face_id, kind) VALUES ('add', ?, ?)"));
    HW_ASSIGN_OR_RETURN(Statement u,
                        Statement::Prepare(db, "UPDATE cases SET updated_ms = max(?, updated_ms + 1) WHERE id = ?"));
    return PhotoRowWriter(db, std::move(p), std::move(f), std::move(c), std::move(u));
  }

  // Sets result->photo_id and appends the new face ids in the order given.
  absl::Status Insert(const Photo& meta, const std::string& sha, const std::string& file_name,
                      int kind, const std::vector<Face>& faces, AddPhotoResult* result) {
    photo_.Reset();
    photo_.Bind(1, meta.case_id).BindTextOrNull(2, meta.date_taken);
    if (meta.age_min < 0) {
      photo_.BindNull(3).BindNull(4);
    } else {
      photo_.Bind(3, meta.age_min).Bind(4, meta.age_max);
    }
    photo_.Bind(5, meta.age_estimated ? 1 : 0)
        .BindTextOrNull(6, meta.source)
        .Bind(7, meta.width)
        .Bind(8, meta.height)
        .BindText(9, sha)
        .BindText(10, file_name)
        .Bind(11, NowMs())
        .Bind(12, meta.age_from_face && meta.age_estimated ? 1 : 0);
    HW_RETURN_IF_ERROR(photo_.Run());
    result->photo_id = sqlite3_last_insert_rowid(db_);
    for (const Face& face : faces) {
      face_.Reset();
      face_.Bind(1, result->photo_id)
          .Bind(2, face.box_x)
          .Bind(3, face.box_y)
          .Bind(4, face.box_w)
          .Bind(5, face.box_h)
          .BindBlob(6, face.landmarks.data(), face.landmarks.size() * sizeof(float))
          .Bind(7, static_cast<double>(face.width_px))
          .Bind(8, static_cast<double>(face.sharpness))
          .Bind(9, static_cast<double>(face.yaw_deg))
          .Bind(10, face.usable ? 1 : 0)
          .Bind(11, static_cast<double>(face.detector_score))
          .BindBlob(12, face.descriptor.data(), face.descriptor.size() * sizeof(float))
          .BindTextOrNull(13, face.model_id);
      HW_RETURN_IF_ERROR(face_.Run());
      const int64_t face_id = sqlite3_last_insert_rowid(db_);
      result->face_ids.push_back(face_id);
      change_.Reset();
      HW_RETURN_IF_ERROR(change_.Bind(1, face_id).Bind(2, kind).Run());
    }
    touch_case_.Reset();
    return touch_case_.Bind(1, NowMs()).Bind(2, meta.case_id).Run();
  }

 private:
  PhotoRowWriter(sqlite3* db, Statement p, Statement f, Statement c, Statement u)
      : db_(db),
        photo_(std::move(p)),
        face_(std::move(f)),
        change_(std::move(c)),
        touch_case_(std::move(u)) {}
  sqlite3* db_;
  Statement photo_, face_, change_, touch_case_;
};

}  // namespace

absl::StatusOr<AddPhotoResult> SqliteCatalog::AddPhoto(const Photo& meta, const std::string& bytes,
                                                       const std::vector<Face>& faces,
                                                       const AuditEntry* audit) {
  HW_RETURN_IF_ERROR(ValidatePhoto(meta, bytes));
  for (size_t i = 0; i < faces.size(); ++i) HW_RETURN_IF_ERROR(ValidateFace(faces[i], i));
  if (audit != nullptr) HW_RETURN_IF_ERROR(ValidateAudit(*audit));
  // The audit entry with the change's facts; written in the change's transaction.
  auto audit_row = [&](const AddPhotoResult& r) {
    AuditEntry entry = *audit;
    if (entry.target_id == 0) entry.target_id = meta.case_id;
    absl::StrAppend(&entry.detail, entry.detail.empty() ? "" : " ", "photo=", r.photo_id,
                    " faces=", r.face_ids.size(), r.duplicate ? " duplicate" : "");
    return entry;
  };
  const std::string sha = internal::Sha256Hex(bytes);
  const std::string file_name = internal::FileNameForHash(sha);

  absl::MutexLock l(&write_mu_);
  sqlite3* db = writer_;
  HW_ASSIGN_OR_RETURN(int kind, CaseKindOf(db, meta.case_id));
  AddPhotoResult result;
  HW_ASSIGN_OR_RETURN(bool dup, FindDuplicate(db, sha, meta.case_id, &result));
  if (dup) {
    if (audit != nullptr) HW_RETURN_IF_ERROR(InsertAuditRow(db, audit_row(result)).status());
    return result;
  }

  // The file is durable before any row names it; a crash in between leaves an orphan file
  // that Open sweeps.
  HW_RETURN_IF_ERROR(internal::WriteFileDurably(photos_dir_, file_name, bytes));

  absl::Status s = [&]() -> absl::Status {
    Transaction txn(db);
    HW_RETURN_IF_ERROR(txn.status());
    HW_ASSIGN_OR_RETURN(PhotoRowWriter writer, PhotoRowWriter::Prepare(db));
    HW_RETURN_IF_ERROR(writer.Insert(meta, sha, file_name, kind, faces, &result));
    if (audit != nullptr) HW_RETURN_IF_ERROR(InsertAuditRow(db, audit_row(result)).status());
    return txn.Commit();
  }();
  if (!s.ok()) {
    UnlinkIfUnreferenced(db, photos_dir_, sha, file_name);
    return s;
  }
  return result;
}

absl::StatusOr<std::vector<AddPhotoResult>> SqliteCatalog::AddPhotoBatch(
    const std::vector<PhotoToAdd>& photos) {
  struct Prepared {
    std::string sha, file_name;
    int kind = 0;
  };
  std::vector<Prepared> prepared(photos.size());
  for (size_t i = 0; i < photos.size(); ++i) {
    const PhotoToAdd& p = photos[i];
    absl::Status valid = ValidatePhoto(p.meta, p.bytes);
    for (size_t j = 0; valid.ok() && j < p.faces.size(); ++j) valid = ValidateFace(p.faces[j], j);
    if (!valid.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("photos[", i, "]: ", valid.message()));
    }
    prepared[i].sha = internal::Sha256Hex(p.bytes);
    prepared[i].file_name = internal::FileNameForHash(prepared[i].sha);
  }

  absl::MutexLock l(&write_mu_);
  sqlite3* db = writer_;
  std::map<int64_t, int> kinds;
  for (size_t i = 0; i < photos.size(); ++i) {
    const int64_t case_id = photos[i].meta.case_id;
    auto kind = kinds.find(case_id);
    if (kind == kinds.end()) {
      HW_ASSIGN_OR_RETURN(int k, CaseKindOf(db, case_id));
      kind = kinds.emplace(case_id, k).first;
    }
    prepared[i].kind = kind->second;
  }
  // Every file is durable before the one transaction that names them (as in AddPhoto).
  std::vector<size_t> written;  // entries whose file this call wrote
  std::vector<AddPhotoResult> results(photos.size());
  absl::Status s = [&]() -> absl::Status {
    std::set<std::string> seen;
    for (size_t i = 0; i < photos.size(); ++i) {
      AddPhotoResult unused;
      HW_ASSIGN_OR_RETURN(bool dup,
                          FindDuplicate(db, prepared[i].sha, photos[i].meta.case_id, &unused));
      if (dup || !seen.insert(prepared[i].sha).second) continue;
      written.push_back(i);
      HW_RETURN_IF_ERROR(
          internal::WriteFileDurably(photos_dir_, prepared[i].file_name, photos[i].bytes));
    }
    Transaction txn(db);
    HW_RETURN_IF_ERROR(txn.status());
    HW_ASSIGN_OR_RETURN(PhotoRowWriter writer, PhotoRowWriter::Prepare(db));
    for (size_t i = 0; i < photos.size(); ++i) {
      // Sees this batch's earlier rows too: repeated bytes in one case are stored once.
      HW_ASSIGN_OR_RETURN(bool dup,
                          FindDuplicate(db, prepared[i].sha, photos[i].meta.case_id, &results[i]));
      if (dup) continue;
      HW_RETURN_IF_ERROR(writer.Insert(photos[i].meta, prepared[i].sha, prepared[i].file_name,
                                       prepared[i].kind, photos[i].faces, &results[i]));
    }
    return txn.Commit();
  }();
  if (!s.ok()) {
    for (size_t w : written) {
      UnlinkIfUnreferenced(db, photos_dir_, prepared[w].sha, prepared[w].file_name);
    }
    return s;
  }
  return results;
}

absl::StatusOr<Photo> SqliteCatalog::GetPhotoInfo(int64_t id) {
  HW_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  HW_ASSIGN_OR_RETURN(Statement q,
                      Statement::Prepare(r.db(), absl::StrCat("SELECT ", kPhotoColumns,
                                                              " FROM photos WHERE id = ?")));
  HW_ASSIGN_OR_RETURN(bool row, q.Bind(1, id).Step());
  if (!row) return absl::NotFoundError(absl::StrCat("photo ", id, " does not exist"));
  return ReadPhoto(q);
}

absl::StatusOr<Catalog::PhotoWithBytes> SqliteCatalog::GetPhoto(int64_t id) {
  PhotoWithBytes out;
  HW_ASSIGN_OR_RETURN(out.photo, GetPhotoInfo(id));
  if (!internal::IsSha256Hex(out.photo.sha256) ||
      internal::FileNameForHash(out.photo.sha256) != out.photo.file_name) {
    return absl::DataLossError(absl::StrCat("photo ", id, " has a malformed file name"));
  }
  absl::StatusOr<std::string> bytes =
      internal::ReadWholeFile(absl::StrCat(photos_dir_, "/", out.photo.file_name));
  if (absl::IsNotFound(bytes.status())) {
    // Deleted since the row was read, or lost.
    HW_ASSIGN_OR_RETURN(Reader r, AcquireReader());
    HW_ASSIGN_OR_RETURN(Statement q,
                        Statement::Prepare(r.db(), "SELECT 1 FROM photos WHERE id = ?"));
    HW_ASSIGN_OR_RETURN(bool row, q.Bind(1, id).Step());
    if (!row) return absl::NotFoundError(absl::StrCat("photo ", id, " does not exist"));
    return absl::DataLossError(absl::StrCat("photo ", id, "'s file is missing"));
  }
  HW_RETURN_IF_ERROR(bytes.status());
  if (internal::Sha256Hex(*bytes) != out.photo.sha256) {
    return absl::DataLossError(absl::StrCat("photo ", id, "'s file does not match its hash"));
  }
  out.bytes = *std::move(bytes);
  return out;
}

absl::StatusOr<std::vector<Photo>> SqliteCatalog::ListPhotos(int64_t case_id) {
  HW_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  HW_RETURN_IF_ERROR(internal::Exec(r.db(), "BEGIN"));
  {
    HW_ASSIGN_OR_RETURN(Statement q,
                        Statement::Prepare(r.db(), "SELECT 1 FROM cases WHERE id = ?"));
    HW_ASSIGN_OR_RETURN(bool row, q.Bind(1, case_id).Step());
    if (!row) return absl::NotFoundError(absl::StrCat("case ", case_id, " does not exist"));
  }
  HW_ASSIGN_OR_RETURN(
      Statement q,
      Statement::Prepare(r.db(), absl::StrCat("SELECT ", kPhotoColumns,
                                              " FROM photos WHERE case_id = ? ORDER BY id")));
  q.Bind(1, case_id);
  std::vector<Photo> out;
  while (true) {
    HW_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back(ReadPhoto(q));
  }
  return out;
}

absl::StatusOr<Face> SqliteCatalog::GetFace(int64_t face_id) {
  HW_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  HW_ASSIGN_OR_RETURN(Statement q,
                      r.Cached(absl::StrCat("SELECT ", kFaceColumns, " FROM faces WHERE id = ?")));
  HW_ASSIGN_OR_RETURN(bool row, q.Bind(1, face_id).Step());
  if (!row) return absl::NotFoundError(absl::StrCat("face ", face_id, " does not exist"));
  return ReadFace(q);
}

absl::StatusOr<std::vector<Face>> SqliteCatalog::ListFaces(int64_t photo_id) {
  HW_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  HW_RETURN_IF_ERROR(internal::Exec(r.db(), "BEGIN"));
  {
    HW_ASSIGN_OR_RETURN(Statement q,
                        Statement::Prepare(r.db(), "SELECT 1 FROM photos WHERE id = ?"));
    HW_ASSIGN_OR_RETURN(bool row, q.Bind(1, photo_id).Step());
    if (!row) return absl::NotFoundError(absl::StrCat("photo ", photo_id, " does not exist"));
  }
  HW_ASSIGN_OR_RETURN(
      Statement q,
      Statement::Prepare(r.db(), absl::StrCat("SELECT ", kFaceColumns,
                                              " FROM faces WHERE photo_id = ? ORDER BY id")));
  q.Bind(1, photo_id);
  std::vector<Face> out;
  while (true) {
    HW_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back(ReadFace(q));
  }
  return out;
}

absl::StatusOr<int64_t> SqliteCatalog::ForEachFaceAttributes(
    const std::function<absl::Status(const FaceRecord&)>& fn) {
  return ScanFaces(/*with_descriptor=*/false, fn);
}

absl::StatusOr<int64_t> SqliteCatalog::ForEachFace(
    const std::function<absl::Status(const FaceRecord&)>& fn) {
  return ScanFaces(/*with_descriptor=*/true, fn);
}

absl::StatusOr<std::vector<FaceAttributes>> SqliteCatalog::GetFaceAttributes(
    const std::vector<int64_t>& ids) {
  HW_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  HW_RETURN_IF_ERROR(internal::Exec(r.db(), "BEGIN"));
  HW_ASSIGN_OR_RETURN(Statement q,
                      r.Cached(absl::StrCat(AttributesSelect(false), "WHERE f.id = ?")));
  std::vector<FaceAttributes> out;
  out.reserve(ids.size());
  for (int64_t id : ids) {
    q.Reset();
    HW_ASSIGN_OR_RETURN(bool row, q.Bind(1, id).Step());
    if (row) out.push_back(ReadAttributes(q));
  }
  return out;
}

absl::StatusOr<std::vector<Change>> SqliteCatalog::ChangesAfter(int64_t after_seq, int limit) {
  if (limit < 1 || limit > 100000) {
    return absl::InvalidArgumentError(absl::StrCat("limit must be 1..100000; got ", limit));
  }
  HW_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  HW_ASSIGN_OR_RETURN(Statement q,
                      Statement::Prepare(r.db(),
                                         "SELECT seq, op, face_id, kind FROM changes WHERE seq > ? "
                                         "ORDER BY seq LIMIT ?"));
  q.Bind(1, after_seq).Bind(2, limit);
  std::vector<Change> out;
  while (true) {
    HW_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back(Change{q.Int(0), q.Text(1) == "add" ? ChangeOp::kAdd : ChangeOp::kRemove,
                         q.Int(2), static_cast<CaseKind>(q.Int(3))});
  }
  return out;
}

absl::StatusOr<int64_t> SqliteCatalog::LastChangeSeq() {
  HW_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  HW_ASSIGN_OR_RETURN(Statement q,
                      Statement::Prepare(r.db(), "SELECT coalesce(max(seq), 0) FROM changes"));
  HW_ASSIGN_OR_RETURN(bool row, q.Step());
  return row ? q.Int(0) : 0;
}

absl::StatusOr<std::vector<std::pair<int64_t, int64_t>>> SqliteCatalog::CasesUpdatedSince(
    int64_t since_ms, int limit) {
  if (limit < 1 || limit > 100000) {
    return absl::InvalidArgumentError(absl::StrCat("limit must be 1..100000; got ", limit));
  }
  HW_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  HW_ASSIGN_OR_RETURN(Statement q, r.Cached("SELECT id, updated_ms FROM cases WHERE updated_ms "
                                            ">= ?1 ORDER BY updated_ms, id LIMIT ?2"));
  q.Bind(1, since_ms).Bind(2, limit);
  std::vector<std::pair<int64_t, int64_t>> out;
  while (true) {
    HW_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.emplace_back(q.Int(0), q.Int(1));
  }
  return out;
}

}  // namespace homeward::store::internal
