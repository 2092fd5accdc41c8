// MoveUp (store/move_up.h): reads the SQLite catalog with a read-only connection of its own
// (one read transaction) and loads PostgreSQL with COPY in one transaction.
#include "store/move_up.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "store/internal/files.h"
#include "store/internal/schema.h"
#include "store/internal/sqlite.h"
#include "store/postgres/postgres_catalog.h"
#include "store/postgres/rows.h"

namespace homeward::store {
namespace {

using internal::Statement;
namespace pg = internal::pg;

// The column lists below are those of SQLite schema 9 and PostgreSQL schema 5. A migration on
// either side must be mirrored here (a source column this code does not know is refused at
// run time, and the round-trip test compares every column).
static_assert(internal::kSchemaVersion == 9, "review store/move_up.cc's tables for the new schema");
static_assert(internal::kPostgresSchemaVersion == 5,
              "review store/move_up.cc's tables for the new schema");

enum class Type { kInt, kReal, kText, kBool, kBytes };

struct Column {
  const char* name;
  Type type;
};

struct TableSpec {
  const char* name;
  const char* order_by;
  std::vector<Column> columns;
  // The identity column whose sequence is set past the largest id ever given ("" = none), and
  // where SQLite remembers ids of deleted rows: "high_water" (id_high_water), "autoincrement"
  // (sqlite_sequence) or "" (the largest id present).
  const char* identity = "";
  const char* high_water = "";
};

// In copy order (referenced tables first).
const std::vector<TableSpec>& Tables() {
  static const auto* tables = new std::vector<TableSpec>{
      {"cases",
       "id",
       {{"id", Type::kInt},
        {"kind", Type::kInt},
        {"display_name", Type::kText},
        {"sex", Type::kInt},
        {"date_of_birth", Type::kText},
        {"birth_year_min", Type::kInt},
        {"birth_year_max", Type::kInt},
        {"event_date", Type::kText},
        {"place", Type::kText},
        {"notes", Type::kText},
        {"reporter_contact", Type::kText},
        {"owner_key_id", Type::kText},
        {"status", Type::kInt},
        {"created_ms", Type::kInt},
        {"updated_ms", Type::kInt},
        {"lead_ended_ms", Type::kInt}},
       "id",
       "high_water"},
      // photo_bytes (from the files) is loaded between cases and photos; see CopyPhotoBytes.
      {"photos",
       "id",
       {{"id", Type::kInt},
        {"case_id", Type::kInt},
        {"date_taken", Type::kText},
        {"age_min", Type::kReal},
        {"age_max", Type::kReal},
        {"age_estimated", Type::kBool},
        {"age_from_face", Type::kBool},
        {"source", Type::kText},
        {"sha256", Type::kText},
        {"file_name", Type::kText},
        {"width", Type::kInt},
        {"height", Type::kInt},
        {"created_ms", Type::kInt}},
       "id",
       "high_water"},
      {"faces",
       "id",
       {{"id", Type::kInt},
        {"photo_id", Type::kInt},
        {"box_x", Type::kInt},
        {"box_y", Type::kInt},
        {"box_w", Type::kInt},
        {"box_h", Type::kInt},
        {"landmarks", Type::kBytes},
        {"width_px", Type::kReal},
        {"sharpness", Type::kReal},
        {"yaw", Type::kReal},
        {"usable", Type::kBool},
        {"detector_score", Type::kReal},
        {"descriptor", Type::kBytes},
        {"model_id", Type::kText}},
       "id",
       "high_water"},
      {"leads",
       "id",
       {{"id", Type::kInt},
        {"case_a", Type::kInt},
        {"case_b", Type::kInt},
        {"face_a", Type::kInt},
        {"face_b", Type::kInt},
        {"distance", Type::kReal},
        {"confidence", Type::kReal},
        {"status", Type::kInt},
        {"created_ms", Type::kInt},
        {"updated_ms", Type::kInt}},
       "id",
       "high_water"},
      {"lead_evidence",
       "id",
       {{"id", Type::kInt},
        {"lead_id", Type::kInt},
        {"face_a", Type::kInt},
        {"face_b", Type::kInt},
        {"key_a", Type::kText},
        {"key_b", Type::kText},
        {"distance", Type::kReal},
        {"confidence", Type::kReal},
        {"time_ms", Type::kInt}},
       "id"},
      {"lead_reviews",
       "id",
       {{"id", Type::kInt},
        {"lead_id", Type::kInt},
        {"decision", Type::kInt},
        {"note", Type::kText},
        {"reviewer", Type::kText},
        {"time_ms", Type::kInt}},
       "id"},
      {"sighting_clusters", "face_id", {{"face_id", Type::kInt}, {"cluster_id", Type::kInt}}},
      {"candidate_grants",
       "key_id, face_id",
       {{"key_id", Type::kText}, {"face_id", Type::kInt}, {"expires_ms", Type::kInt}}},
      {"audit",
       "id",
       {{"id", Type::kInt},
        {"time_ms", Type::kInt},
        {"actor", Type::kText},
        {"role", Type::kText},
        {"action", Type::kText},
        {"target_type", Type::kText},
        {"target_id", Type::kInt},
        {"detail", Type::kText}},
       "id",
       "autoincrement"},
      {"changes",
       "seq",
       {{"seq", Type::kInt}, {"op", Type::kText}, {"face_id", Type::kInt}, {"kind", Type::kInt}},
       "seq",
       "autoincrement"},
  };
  return *tables;
}

// SQLite tables that are not copied as rows, and why: schema_version (the target has its
// own), id_high_water (becomes the sequences), kind_counts (recomputed), counters (merged by
// name), pending_unlink (empty once the catalog was opened), sqlite_sequence (the sequences).
const std::set<std::string>& NotCopiedAsRows() {
  static const auto* names =
      new std::set<std::string>{"schema_version", "id_high_water",  "kind_counts",
                                "counters",       "pending_unlink", "sqlite_sequence"};
  return *names;
}

// Every table of the PostgreSQL catalog (schema 5): what an empty target may hold.
const std::set<std::string>& PostgresTables() {
  static const auto* names =
      new std::set<std::string>{"schema_version",   "cases",        "photo_bytes",
                                "photos",           "faces",        "audit",
                                "changes",          "kind_counts",  "leads",
                                "lead_evidence",    "lead_reviews", "sighting_clusters",
                                "candidate_grants", "counters"};
  return *names;
}

double SecondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

std::string DoubleText(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  return absl::StrFormat("%.17g", v);
}

// Appends column `col` of the current row in COPY's text format for a column of type `type`.
absl::Status AppendValue(const Statement& q, int col, Type type, absl::string_view table,
                         std::string* out) {
  const int stored = q.Type(col);
  if (stored == SQLITE_NULL) {
    out->append("\\N");
    return absl::OkStatus();
  }
  switch (type) {
    case Type::kInt:
      if (stored == SQLITE_INTEGER) {
        absl::StrAppend(out, q.Int(col));
        return absl::OkStatus();
      }
      break;
    case Type::kReal:
      if (stored == SQLITE_INTEGER || stored == SQLITE_FLOAT) {
        out->append(DoubleText(q.Real(col)));
        return absl::OkStatus();
      }
      break;
    case Type::kBool:
      if (stored == SQLITE_INTEGER) {
        out->append(q.Int(col) != 0 ? "t" : "f");
        return absl::OkStatus();
      }
      break;
    case Type::kText:
      if (stored == SQLITE_TEXT) {
        pg::CopyText(q.Text(col), out);
        return absl::OkStatus();
      }
      if (stored == SQLITE_INTEGER) {
        absl::StrAppend(out, q.Int(col));
        return absl::OkStatus();
      }
      break;
    case Type::kBytes:
      if (stored == SQLITE_BLOB) {
        pg::CopyBytea(q.Blob(col), out);
        return absl::OkStatus();
      }
      break;
  }
  static constexpr const char* kStored[] = {"", "integer", "real", "text", "blob", "null"};
  return absl::DataLossError(absl::StrCat("SQLite catalog: table ", table, " holds a ",
                                          kStored[stored], " in a column of another type (row ",
                                          q.Int(0), ")"));
}

// COPY ... FROM STDIN in progress; the destructor aborts it unless End() was called.
class CopyIn {
 public:
  CopyIn(pg::Connection& conn) : conn_(conn) {}
  ~CopyIn() {
    if (active_) conn_.CopyEnd("homeward-move-up aborted").IgnoreError();
  }
  absl::Status Begin(const std::string& sql) {
    HW_RETURN_IF_ERROR(conn_.CopyBegin(sql));
    active_ = true;
    return absl::OkStatus();
  }
  std::string& buffer() { return buffer_; }
  // Sends the buffer when it has grown past `threshold` bytes.
  absl::Status Flush(size_t threshold = 1 << 20) {
    if (buffer_.size() < threshold) return absl::OkStatus();
    HW_RETURN_IF_ERROR(conn_.CopyRows(buffer_));
    buffer_.clear();
    return absl::OkStatus();
  }
  absl::Status End() {
    HW_RETURN_IF_ERROR(Flush(0));
    active_ = false;
    return conn_.CopyEnd();
  }

 private:
  pg::Connection& conn_;
  bool active_ = false;
  std::string buffer_;
};

absl::StatusOr<int64_t> SqliteInt(sqlite3* db, const std::string& sql) {
  HW_ASSIGN_OR_RETURN(Statement q, Statement::Prepare(db, sql));
  HW_ASSIGN_OR_RETURN(bool row, q.Step());
  return row ? q.Int(0) : 0;
}

absl::StatusOr<int64_t> PgInt(pg::Connection& conn, const std::string& sql) {
  HW_ASSIGN_OR_RETURN(pg::Result r, conn.Exec(sql));
  return r.rows() > 0 ? r.Int(0, 0) : 0;
}

// FAILED_PRECONDITION naming the first thing that makes the target not empty.
absl::Status CheckTargetEmpty(pg::Connection& conn, const std::string& url) {
  HW_ASSIGN_OR_RETURN(pg::Result tables,
                      conn.Exec("SELECT table_name::text FROM information_schema.tables WHERE "
                                "table_schema = current_schema() ORDER BY 1"));
  const std::string where = absl::StrCat("the PostgreSQL database ", pg::Redact(url));
  const char* const advice =
      "; homeward-move-up copies only into an empty database (create a new one with createdb)";
  for (int i = 0; i < tables.rows(); ++i) {
    const std::string name = tables.Text(i, 0);
    if (PostgresTables().count(name) == 0) {
      return absl::FailedPreconditionError(absl::StrCat(where, " is not empty: it holds table \"",
                                                        name, "\", which is not one of Homeward's",
                                                        advice));
    }
    std::string sql;
    if (name == "schema_version") continue;
    if (name == "kind_counts") {
      sql = "SELECT count(*) FROM kind_counts WHERE cases <> 0 OR photos <> 0 OR faces <> 0";
    } else if (name == "counters") {
      sql = "SELECT count(*) FROM counters WHERE value <> 0";
    } else {
      sql = absl::StrCat("SELECT count(*) FROM (SELECT 1 FROM ", name, " LIMIT 1) t");
    }
    HW_ASSIGN_OR_RETURN(const int64_t n, PgInt(conn, sql));
    if (n > 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          where, " is not empty: its Homeward table \"", name, "\" holds data", advice));
    }
  }
  return absl::OkStatus();
}

// The SQLite side: schema version, columns this build knows, nothing left to unlink.
absl::Status CheckSource(sqlite3* db) {
  HW_ASSIGN_OR_RETURN(const int64_t version,
                      SqliteInt(db, "SELECT max(version) FROM schema_version"));
  if (version != internal::kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat("the SQLite catalog is at schema version ",
                                                      version, ", this build copies ",
                                                      internal::kSchemaVersion));
  }
  std::map<std::string, std::set<std::string>> known;
  for (const TableSpec& t : Tables()) {
    for (const Column& c : t.columns) known[t.name].insert(c.name);
  }
  HW_ASSIGN_OR_RETURN(
      Statement tables,
      Statement::Prepare(db, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"));
  while (true) {
    HW_ASSIGN_OR_RETURN(bool row, tables.Step());
    if (!row) break;
    const std::string name = tables.Text(0);
    if (NotCopiedAsRows().count(name) > 0) continue;
    auto it = known.find(name);
    if (it == known.end()) {
      return absl::FailedPreconditionError(
          absl::StrCat("the SQLite catalog has a table \"", name, "\" this build does not copy"));
    }
    HW_ASSIGN_OR_RETURN(Statement cols,
                        Statement::Prepare(db, absl::StrCat("PRAGMA table_info(", name, ")")));
    while (true) {
      HW_ASSIGN_OR_RETURN(bool col, cols.Step());
      if (!col) break;
      if (it->second.count(cols.Text(1)) == 0) {
        return absl::FailedPreconditionError(absl::StrCat("the SQLite catalog's table ", name,
                                                          " has a column \"", cols.Text(1),
                                                          "\" this build does not copy"));
      }
    }
  }
  HW_ASSIGN_OR_RETURN(const int64_t pending, SqliteInt(db, "SELECT count(*) FROM pending_unlink"));
  if (pending > 0) {
    return absl::FailedPreconditionError(
        "the SQLite catalog has an unfinished deletion; open it once with homeward-server");
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> CopyTable(sqlite3* src, pg::Connection& dst, const TableSpec& t) {
  std::vector<std::string> names;
  for (const Column& c : t.columns) names.push_back(c.name);
  const std::string cols = absl::StrJoin(names, ", ");
  HW_ASSIGN_OR_RETURN(Statement q,
                      Statement::Prepare(src, absl::StrCat("SELECT ", cols, " FROM ", t.name,
                                                           " ORDER BY ", t.order_by)));
  CopyIn copy(dst);
  // COPY writes the given values into GENERATED ALWAYS identity columns too (audit,
  // lead_evidence, lead_reviews, changes), as INSERT ... OVERRIDING SYSTEM VALUE would.
  HW_RETURN_IF_ERROR(copy.Begin(absl::StrCat("COPY ", t.name, " (", cols, ") FROM STDIN")));
  int64_t rows = 0;
  std::string& out = copy.buffer();
  while (true) {
    HW_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    for (size_t i = 0; i < t.columns.size(); ++i) {
      if (i > 0) out.push_back('\t');
      HW_RETURN_IF_ERROR(AppendValue(q, static_cast<int>(i), t.columns[i].type, t.name, &out));
    }
    out.push_back('\n');
    ++rows;
    HW_RETURN_IF_ERROR(copy.Flush());
  }
  HW_RETURN_IF_ERROR(copy.End());
  return rows;
}

// One photo_bytes row per distinct SHA-256, read from its file and checked against the hash.
absl::StatusOr<int64_t> CopyPhotoBytes(sqlite3* src, pg::Connection& dst,
                                       const std::string& photos_dir, int64_t* total_bytes) {
  HW_ASSIGN_OR_RETURN(Statement q, Statement::Prepare(src,
                                                      "SELECT sha256, min(file_name) FROM photos "
                                                      "GROUP BY sha256 ORDER BY sha256"));
  CopyIn copy(dst);
  HW_RETURN_IF_ERROR(copy.Begin("COPY photo_bytes (sha256, bytes) FROM STDIN"));
  int64_t rows = 0;
  while (true) {
    HW_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    const std::string sha = q.Text(0), file_name = q.Text(1);
    if (!internal::IsSha256Hex(sha) || internal::FileNameForHash(sha) != file_name) {
      return absl::DataLossError(absl::StrCat("SQLite catalog: a photo row names file \"",
                                              file_name, "\" for SHA-256 \"", sha, "\""));
    }
    absl::StatusOr<std::string> bytes =
        internal::ReadWholeFile(absl::StrCat(photos_dir, "/", file_name));
    if (!bytes.ok()) {
      return absl::DataLossError(absl::StrCat("photo file photos/", file_name,
                                              " cannot be read: ", bytes.status().message()));
    }
    if (internal::Sha256Hex(*bytes) != sha) {
      return absl::DataLossError(
          absl::StrCat("photo file photos/", file_name, " does not match its SHA-256"));
    }
    std::string& out = copy.buffer();
    out.append(sha);
    out.push_back('\t');
    pg::CopyBytea(*bytes, &out);
    out.push_back('\n');
    *total_bytes += static_cast<int64_t>(bytes->size());
    ++rows;
    HW_RETURN_IF_ERROR(copy.Flush());
  }
  HW_RETURN_IF_ERROR(copy.End());
  return rows;
}

// The per-kind count triggers would update one kind_counts row per inserted row; in one
// transaction that row's versions pile up and every update walks them. They are off during
// the load (table owner only; ALTER TABLE is transactional) and the counts are computed once.
constexpr const char* kCountTriggers[][2] = {
    {"cases", "cases_count"}, {"photos", "photos_count"}, {"faces", "faces_count"}};

class Mover {
 public:
  Mover(std::string data_dir, std::string url, const MoveUpOptions& options)
      : data_dir_(std::move(data_dir)), url_(std::move(url)), options_(options) {}

  absl::StatusOr<MoveUpReport> Run();

 private:
  void Progress(const std::string& line) {
    if (options_.progress) options_.progress(line);
  }
  absl::Status Load(sqlite3* src, pg::Connection& dst);
  absl::Status AfterTable(absl::string_view table) {
    return options_.after_table_for_test ? options_.after_table_for_test(table) : absl::OkStatus();
  }

  const std::string data_dir_, url_;
  const MoveUpOptions& options_;
  MoveUpReport report_;
};

absl::Status Mover::Load(sqlite3* src, pg::Connection& dst) {
  HW_RETURN_IF_ERROR(
      dst.Exec("SELECT pg_advisory_xact_lock($1)", pg::Params().Int(internal::kWriteLockKey))
          .status());
  // Again inside the transaction: nothing was written since the first check.
  HW_RETURN_IF_ERROR(CheckTargetEmpty(dst, url_));
  for (const auto& [table, trigger] : kCountTriggers) {
    HW_RETURN_IF_ERROR(
        dst.Script(absl::StrCat("ALTER TABLE ", table, " DISABLE TRIGGER ", trigger).c_str()));
  }
  std::map<std::string, int64_t> copied;
  for (const TableSpec& t : Tables()) {
    if (std::string(t.name) == "photos") {
      const auto start = std::chrono::steady_clock::now();
      HW_ASSIGN_OR_RETURN(report_.photo_files,
                          CopyPhotoBytes(src, dst, data_dir_ + "/photos", &report_.photo_bytes));
      copied["photo_bytes"] = report_.photo_files;
      Progress(absl::StrFormat("photo_bytes: %d rows, %.1f MB read from photos/ (%.1f s)",
                               report_.photo_files, report_.photo_bytes / 1e6,
                               SecondsSince(start)));
      HW_RETURN_IF_ERROR(AfterTable("photo_bytes"));
    }
    const auto start = std::chrono::steady_clock::now();
    HW_ASSIGN_OR_RETURN(copied[t.name], CopyTable(src, dst, t));
    Progress(absl::StrFormat("%s: %d rows (%.1f s)", t.name, copied[t.name], SecondsSince(start)));
    HW_RETURN_IF_ERROR(AfterTable(t.name));
  }

  // Counters, merged by name (the new schema starts expired_sightings at 0).
  {
    HW_ASSIGN_OR_RETURN(Statement q,
                        Statement::Prepare(src, "SELECT name, value FROM counters ORDER BY name"));
    int64_t n = 0;
    while (true) {
      HW_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      HW_RETURN_IF_ERROR(dst.Exec("INSERT INTO counters (name, value) VALUES ($1, $2) ON "
                                  "CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                                  pg::Params().Text(q.Text(0)).Int(q.Int(1)))
                             .status());
      ++n;
    }
    copied["counters"] = n;
    HW_RETURN_IF_ERROR(AfterTable("counters"));
  }

  // Per-kind counts from the rows, then the triggers back on.
  HW_RETURN_IF_ERROR(dst.Script(R"sql(
UPDATE kind_counts k SET
  cases = (SELECT count(*) FROM cases c WHERE c.kind = k.kind),
  photos = (SELECT count(*) FROM photos p JOIN cases c ON c.id = p.case_id WHERE c.kind = k.kind),
  faces = (SELECT count(*) FROM faces f JOIN photos p ON p.id = f.photo_id
             JOIN cases c ON c.id = p.case_id WHERE c.kind = k.kind))sql"));
  for (const auto& [table, trigger] : kCountTriggers) {
    HW_RETURN_IF_ERROR(
        dst.Script(absl::StrCat("ALTER TABLE ", table, " ENABLE TRIGGER ", trigger).c_str()));
  }
  {
    HW_ASSIGN_OR_RETURN(
        Statement q, Statement::Prepare(src, "SELECT kind, cases, photos, faces FROM kind_counts"));
    while (true) {
      HW_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      HW_ASSIGN_OR_RETURN(pg::Result r,
                          dst.Exec("SELECT cases, photos, faces FROM kind_counts WHERE kind = $1",
                                   pg::Params().Int(q.Int(0))));
      if (r.rows() == 1 &&
          (r.Int(0, 0) != q.Int(1) || r.Int(0, 1) != q.Int(2) || r.Int(0, 2) != q.Int(3))) {
        Progress(absl::StrFormat(
            "note: the SQLite catalog counted %d/%d/%d cases/photos/faces of kind %d, its rows "
            "hold %d/%d/%d; PostgreSQL keeps the counts of the rows",
            q.Int(1), q.Int(2), q.Int(3), q.Int(0), r.Int(0, 0), r.Int(0, 1), r.Int(0, 2)));
      }
    }
  }

  // Sequences past the largest id the source ever gave.
  for (const TableSpec& t : Tables()) {
    if (*t.identity == '\0') continue;
    HW_ASSIGN_OR_RETURN(
        int64_t last,
        SqliteInt(src, absl::StrCat("SELECT coalesce(max(", t.identity, "), 0) FROM ", t.name)));
    const std::string hw = t.high_water;
    int64_t remembered = 0;
    if (hw == "high_water") {
      HW_ASSIGN_OR_RETURN(remembered,
                          SqliteInt(src, absl::StrCat("SELECT max_id FROM id_high_water WHERE "
                                                      "name = '",
                                                      t.name, "'")));
    } else if (hw == "autoincrement") {
      HW_ASSIGN_OR_RETURN(remembered,
                          SqliteInt(src, absl::StrCat("SELECT seq FROM sqlite_sequence WHERE "
                                                      "name = '",
                                                      t.name, "'")));
    }
    last = std::max(last, remembered);
    if (last > 0) {
      HW_RETURN_IF_ERROR(dst.Exec("SELECT setval(pg_get_serial_sequence($1, $2), $3)",
                                  pg::Params().Text(t.name).Text(t.identity).Int(last))
                             .status());
    }
    report_.sequences.push_back({t.name, last});
  }

  // Verification before committing: rows per table, photo bytes, the change log position.
  std::vector<std::string> order = {"cases", "photo_bytes"};
  for (const TableSpec& t : Tables()) {
    if (std::string(t.name) != "cases") order.push_back(t.name);
  }
  order.push_back("counters");
  std::vector<std::string> mismatches;
  for (const std::string& name : order) {
    MoveUpReport::Table row{name, copied[name], 0};
    if (name != "photo_bytes") {  // what the SQLite file holds, not only what was streamed
      HW_ASSIGN_OR_RETURN(row.source_rows,
                          SqliteInt(src, absl::StrCat("SELECT count(*) FROM ", name)));
    }
    HW_ASSIGN_OR_RETURN(row.target_rows, PgInt(dst, absl::StrCat("SELECT count(*) FROM ", name)));
    if (row.source_rows != row.target_rows || row.source_rows != copied[name]) {
      mismatches.push_back(absl::StrCat(name, " ", row.source_rows, " in SQLite, ", row.target_rows,
                                        " in PostgreSQL"));
    }
    report_.tables.push_back(row);
  }
  HW_ASSIGN_OR_RETURN(const int64_t target_bytes,
                      PgInt(dst, "SELECT coalesce(sum(length(bytes)), 0) FROM photo_bytes"));
  if (target_bytes != report_.photo_bytes) {
    mismatches.push_back(absl::StrCat("photo bytes ", report_.photo_bytes, " read, ", target_bytes,
                                      " in PostgreSQL"));
  }
  HW_ASSIGN_OR_RETURN(report_.last_change_seq,
                      SqliteInt(src, "SELECT coalesce(max(seq), 0) FROM changes"));
  HW_ASSIGN_OR_RETURN(const int64_t target_seq,
                      PgInt(dst, "SELECT coalesce(max(seq), 0) FROM changes"));
  if (target_seq != report_.last_change_seq) {
    mismatches.push_back(absl::StrCat("last change seq ", report_.last_change_seq, " in SQLite, ",
                                      target_seq, " in PostgreSQL"));
  }
  if (!mismatches.empty()) {
    return absl::InternalError(absl::StrCat("the copy does not match the source (",
                                            absl::StrJoin(mismatches, "; "),
                                            "); nothing was committed"));
  }
  return absl::OkStatus();
}

absl::StatusOr<MoveUpReport> Mover::Run() {
  const auto start = std::chrono::steady_clock::now();
  if (!internal::IsPostgresLocation(url_)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the target must be a postgresql:// or postgres:// URL, not '", pg::Redact(url_), "'"));
  }
  // The source: opened as the server would (upgrade, unfinished deletion, the LOCK).
  std::shared_ptr<Catalog> source = options_.source;
  if (source == nullptr) {
    CatalogOptions o;
    o.sweep_orphan_files = false;
    HW_ASSIGN_OR_RETURN(source, Catalog::Open(data_dir_, o));
  }
  sqlite3* raw = nullptr;
  const std::string db_path = data_dir_ + "/catalog.db";
  const int rc = sqlite3_open_v2(db_path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr);
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> src(raw, &sqlite3_close_v2);
  if (rc != SQLITE_OK) return internal::SqliteError(raw, rc, absl::StrCat("open ", db_path));
  sqlite3_busy_timeout(src.get(), 5000);
  HW_RETURN_IF_ERROR(internal::Exec(src.get(), "BEGIN"));  // one snapshot for every read
  HW_RETURN_IF_ERROR(CheckSource(src.get()));

  HW_ASSIGN_OR_RETURN(std::unique_ptr<pg::Connection> dst, pg::Connection::Open(url_));
  // Checked before the schema is created or upgraded: a refused target is left untouched.
  HW_RETURN_IF_ERROR(CheckTargetEmpty(*dst, url_));
  HW_RETURN_IF_ERROR(internal::MigratePostgres(*dst));
  Progress(absl::StrCat("target ", pg::Redact(url_), ": empty, schema version ",
                        internal::kPostgresSchemaVersion));

  HW_RETURN_IF_ERROR(dst->Script("BEGIN"));
  absl::Status s = Load(src.get(), *dst);
  if (s.ok()) s = dst->Script("COMMIT");
  if (!s.ok()) {
    if (dst->healthy() && dst->in_transaction()) dst->Script("ROLLBACK").IgnoreError();
    return s;
  }
  // Fresh statistics for the planner (a bulk load leaves none until autovacuum comes).
  dst->Script("ANALYZE").IgnoreError();
  HW_ASSIGN_OR_RETURN(report_.database_bytes,
                      PgInt(*dst, "SELECT pg_database_size(current_database())"));
  report_.copy_seconds = SecondsSince(start);
  return std::move(report_);
}

}  // namespace

absl::StatusOr<MoveUpReport> MoveUp(const std::string& data_dir, const std::string& url,
                                    const MoveUpOptions& options) {
  Mover mover(data_dir, url, options);
  return mover.Run();
}

std::string MaskedLocation(const std::string& url) { return pg::Redact(url); }

}  // namespace homeward::store
