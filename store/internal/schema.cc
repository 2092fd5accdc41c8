#include "store/internal/schema.h"

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "store/internal/sqlite.h"

namespace homeward::store::internal {
namespace {

// Each entry upgrades version i to i + 1. Never edit a shipped entry; append a new one.
constexpr const char* kMigrations[] = {
    // 0 -> 1
    R"sql(
CREATE TABLE cases (
  id INTEGER PRIMARY KEY,
  kind INTEGER NOT NULL CHECK (kind IN (1, 2, 3)),
  display_name TEXT NOT NULL,
  sex INTEGER NOT NULL DEFAULT 0,
  date_of_birth TEXT,
  birth_year_min INTEGER,
  birth_year_max INTEGER,
  event_date TEXT,
  place TEXT,
  notes TEXT,
  reporter_contact TEXT,
  status INTEGER NOT NULL DEFAULT 1,
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL);
CREATE TABLE photos (
  id INTEGER PRIMARY KEY,
  case_id INTEGER NOT NULL REFERENCES cases(id),
  date_taken TEXT,
  age_min REAL,
  age_max REAL,
  age_estimated INTEGER NOT NULL DEFAULT 0,
  source TEXT,
  sha256 TEXT NOT NULL,
  file_name TEXT NOT NULL,
  width INTEGER,
  height INTEGER,
  created_ms INTEGER NOT NULL);
CREATE TABLE faces (
  id INTEGER PRIMARY KEY,
  photo_id INTEGER NOT NULL REFERENCES photos(id),
  box_x INTEGER, box_y INTEGER, box_w INTEGER, box_h INTEGER,
  landmarks BLOB,
  width_px REAL, sharpness REAL, yaw REAL,
  usable INTEGER NOT NULL DEFAULT 1,
  detector_score REAL,
  descriptor BLOB NOT NULL,
  model_id TEXT);
)sql",
    // 1 -> 2
    R"sql(
ALTER TABLE cases ADD COLUMN owner_key_id TEXT;
CREATE TABLE audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  time_ms INTEGER NOT NULL,
  actor TEXT NOT NULL,
  role TEXT,
  action TEXT NOT NULL,
  target_type TEXT,
  target_id INTEGER,
  detail TEXT);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
  BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
  BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE INDEX audit_by_target ON audit(target_type, target_id);
CREATE TABLE changes (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  op TEXT NOT NULL CHECK (op IN ('add', 'remove')),
  face_id INTEGER NOT NULL,
  kind INTEGER NOT NULL);
INSERT INTO changes (op, face_id, kind)
  SELECT 'add', f.id, c.kind FROM faces f JOIN photos p ON p.id = f.photo_id
  JOIN cases c ON c.id = p.case_id ORDER BY f.id;
CREATE TABLE pending_unlink (file_name TEXT PRIMARY KEY);
CREATE INDEX photos_by_case ON photos(case_id);
CREATE INDEX photos_by_hash ON photos(sha256, case_id);
CREATE INDEX faces_by_photo ON faces(photo_id);
CREATE INDEX cases_by_kind ON cases(kind, status);
)sql",
    // 2 -> 3
    R"sql(
CREATE TABLE leads (
  id INTEGER PRIMARY KEY,
  case_a INTEGER NOT NULL REFERENCES cases(id),
  case_b INTEGER NOT NULL REFERENCES cases(id),
  face_a INTEGER NOT NULL REFERENCES faces(id),
  face_b INTEGER NOT NULL REFERENCES faces(id),
  distance REAL NOT NULL,
  confidence REAL NOT NULL,
  status INTEGER NOT NULL DEFAULT 1 CHECK (status IN (1, 2, 3, 4)),
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  CHECK (case_a < case_b),
  UNIQUE (case_a, case_b));
CREATE INDEX leads_by_confidence ON leads(confidence DESC, id);
CREATE INDEX leads_by_case_b ON leads(case_b);
CREATE TABLE lead_evidence (
  id INTEGER PRIMARY KEY,
  lead_id INTEGER NOT NULL REFERENCES leads(id),
  face_a INTEGER NOT NULL REFERENCES faces(id),
  face_b INTEGER NOT NULL REFERENCES faces(id),
  key_a TEXT NOT NULL,
  key_b TEXT NOT NULL,
  distance REAL NOT NULL,
  confidence REAL NOT NULL,
  time_ms INTEGER NOT NULL,
  UNIQUE (lead_id, face_a, face_b));
CREATE INDEX lead_evidence_by_keys ON lead_evidence(key_a, key_b);
CREATE INDEX lead_evidence_by_face_a ON lead_evidence(face_a);
CREATE INDEX lead_evidence_by_face_b ON lead_evidence(face_b);
CREATE TABLE lead_reviews (
  id INTEGER PRIMARY KEY,
  lead_id INTEGER NOT NULL REFERENCES leads(id),
  decision INTEGER NOT NULL CHECK (decision IN (2, 3, 4)),
  note TEXT,
  reviewer TEXT NOT NULL,
  time_ms INTEGER NOT NULL);
CREATE INDEX lead_reviews_by_lead ON lead_reviews(lead_id);
CREATE TABLE sighting_clusters (
  face_id INTEGER PRIMARY KEY REFERENCES faces(id),
  cluster_id INTEGER NOT NULL);
CREATE INDEX sighting_clusters_by_cluster ON sighting_clusters(cluster_id);
)sql",
    // 3 -> 4
    R"sql(
CREATE TABLE id_high_water (name TEXT PRIMARY KEY, max_id INTEGER NOT NULL);
INSERT INTO id_high_water SELECT 'cases', coalesce(max(id), 0) FROM cases;
INSERT INTO id_high_water SELECT 'photos', coalesce(max(id), 0) FROM photos;
INSERT INTO id_high_water SELECT 'faces', coalesce(max(id), 0) FROM faces;
INSERT INTO id_high_water SELECT 'leads', coalesce(max(id), 0) FROM leads;
CREATE TRIGGER cases_high_water AFTER INSERT ON cases BEGIN
  UPDATE id_high_water SET max_id = NEW.id WHERE name = 'cases' AND max_id < NEW.id; END;
CREATE TRIGGER photos_high_water AFTER INSERT ON photos BEGIN
  UPDATE id_high_water SET max_id = NEW.id WHERE name = 'photos' AND max_id < NEW.id; END;
CREATE TRIGGER faces_high_water AFTER INSERT ON faces BEGIN
  UPDATE id_high_water SET max_id = NEW.id WHERE name = 'faces' AND max_id < NEW.id; END;
CREATE TRIGGER leads_high_water AFTER INSERT ON leads BEGIN
  UPDATE id_high_water SET max_id = NEW.id WHERE name = 'leads' AND max_id < NEW.id; END;
)sql",
    // 4 -> 5: counts per collection kept with the data (GetStats reads 3 rows, not every face),
    // and cases by owner (a volunteer's or family's own counts). A case's kind never changes;
    // faces go before their photo and photos before their case, so the lookups below find it.
    R"sql(
CREATE TABLE kind_counts (
  kind INTEGER PRIMARY KEY,
  cases INTEGER NOT NULL,
  photos INTEGER NOT NULL,
  faces INTEGER NOT NULL);
INSERT INTO kind_counts (kind, cases, photos, faces)
  SELECT k.kind,
         (SELECT count(*) FROM cases c WHERE c.kind = k.kind),
         (SELECT count(*) FROM photos p JOIN cases c ON c.id = p.case_id WHERE c.kind = k.kind),
         (SELECT count(*) FROM faces f JOIN photos p ON p.id = f.photo_id
            JOIN cases c ON c.id = p.case_id WHERE c.kind = k.kind)
  FROM (SELECT 1 AS kind UNION ALL SELECT 2 UNION ALL SELECT 3) k;
CREATE TRIGGER cases_count_insert AFTER INSERT ON cases BEGIN
  UPDATE kind_counts SET cases = cases + 1 WHERE kind = NEW.kind; END;
CREATE TRIGGER cases_count_delete AFTER DELETE ON cases BEGIN
  UPDATE kind_counts SET cases = cases - 1 WHERE kind = OLD.kind; END;
CREATE TRIGGER photos_count_insert AFTER INSERT ON photos BEGIN
  UPDATE kind_counts SET photos = photos + 1
    WHERE kind = (SELECT kind FROM cases WHERE id = NEW.case_id); END;
CREATE TRIGGER photos_count_delete AFTER DELETE ON photos BEGIN
  UPDATE kind_counts SET photos = photos - 1
    WHERE kind = (SELECT kind FROM cases WHERE id = OLD.case_id); END;
CREATE TRIGGER faces_count_insert AFTER INSERT ON faces BEGIN
  UPDATE kind_counts SET faces = faces + 1 WHERE kind = (SELECT c.kind FROM photos p
    JOIN cases c ON c.id = p.case_id WHERE p.id = NEW.photo_id); END;
CREATE TRIGGER faces_count_delete AFTER DELETE ON faces BEGIN
  UPDATE kind_counts SET faces = faces - 1 WHERE kind = (SELECT c.kind FROM photos p
    JOIN cases c ON c.id = p.case_id WHERE p.id = OLD.photo_id); END;
CREATE INDEX cases_by_owner ON cases(owner_key_id, kind);
)sql",
    // 5 -> 6: the MISSING/FOUND faces each volunteer key was shown as candidates, with their
    // expiry, so that its thumbnails keep working across a restart.
    R"sql(
CREATE TABLE candidate_grants (
  key_id TEXT NOT NULL,
  face_id INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL,
  PRIMARY KEY (key_id, face_id)) WITHOUT ROWID;
CREATE INDEX candidate_grants_by_expiry ON candidate_grants(expires_ms);
)sql",
    // 6 -> 7: data minimisation (store/sqlite/retention.cc). cases.lead_ended_ms: when a lead
    // of this case last went away with the other case or photo (a sighting's retention clock
    // restarts then); counters: totals kept with the data, starting with the sightings expired.
    R"sql(
ALTER TABLE cases ADD COLUMN lead_ended_ms INTEGER;
CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO counters (name, value) VALUES ('expired_sightings', 0);
)sql",
    // 7 -> 8: cases by their last change, for servers following a shared catalog
    // (CasesUpdatedSince).
    R"sql(
CREATE INDEX cases_by_updated ON cases(updated_ms);
)sql",
    // 8 -> 9: photos.age_from_face, the photo's age was estimated from the face by the age
    // model (a sighting submitted without an age; docs/AGE.md).
    R"sql(
ALTER TABLE photos ADD COLUMN age_from_face INTEGER NOT NULL DEFAULT 0;
)sql",
};
static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == kSchemaVersion);

}  // namespace

absl::Status Migrate(sqlite3* db) {
  Transaction txn(db);
  HW_RETURN_IF_ERROR(txn.status());
  HW_RETURN_IF_ERROR(
      Exec(db, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"));
  int version = 0;
  {
    HW_ASSIGN_OR_RETURN(Statement q,
                        Statement::Prepare(db, "SELECT max(version) FROM schema_version"));
    HW_ASSIGN_OR_RETURN(bool row, q.Step());
    if (row && !q.IsNull(0)) version = static_cast<int>(q.Int(0));
  }
  if (version > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat("catalog schema version ", version,
                                                      " is newer than this build (", kSchemaVersion,
                                                      "); upgrade Homeward"));
  }
  if (version == kSchemaVersion) return absl::OkStatus();  // rollback of a no-op
  for (int v = version; v < kSchemaVersion; ++v) {
    HW_RETURN_IF_ERROR(Exec(db, kMigrations[v]));
  }
  HW_RETURN_IF_ERROR(Exec(db, "DELETE FROM schema_version"));
  HW_ASSIGN_OR_RETURN(Statement ins,
                      Statement::Prepare(db, "INSERT INTO schema_version (version) VALUES (?)"));
  HW_RETURN_IF_ERROR(ins.Bind(1, kSchemaVersion).Run());
  return txn.Commit();
}

}  // namespace homeward::store::internal
