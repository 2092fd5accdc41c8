// PostgresCatalog: opening, the connection pool, transactions and deletion (see
// postgres_catalog.h).
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "store/internal/validate.h"
#include "store/postgres/postgres_catalog.h"
#include "store/postgres/rows.h"

namespace homeward::store::internal {

bool IsPostgresLocation(const std::string& location) {
  return absl::StartsWith(location, "postgresql://") || absl::StartsWith(location, "postgres://");
}

absl::StatusOr<std::unique_ptr<Catalog>> PostgresCatalog::Open(const std::string& conninfo,
                                                               const CatalogOptions& options) {
  if (options.busy_timeout_ms < 0 || options.max_read_connections < 0) {
    return absl::InvalidArgumentError("busy_timeout_ms and max_read_connections must be >= 0");
  }
  auto catalog = std::unique_ptr<PostgresCatalog>(new PostgresCatalog(conninfo, options));
  HW_ASSIGN_OR_RETURN(std::unique_ptr<pg::Connection> conn, catalog->Acquire());
  HW_RETURN_IF_ERROR(MigratePostgres(*conn));
  catalog->Release(std::move(conn));
  return std::unique_ptr<Catalog>(std::move(catalog));
}

absl::StatusOr<std::unique_ptr<pg::Connection>> PostgresCatalog::Acquire() {
  {
    absl::MutexLock l(&pool_mu_);
    while (!idle_.empty()) {
      std::unique_ptr<pg::Connection> conn = std::move(idle_.back());
      idle_.pop_back();
      if (conn->healthy()) return conn;
    }
  }
  HW_ASSIGN_OR_RETURN(std::unique_ptr<pg::Connection> conn, pg::Connection::Open(conninfo_));
  // A statement waiting for a row lock gives up after busy_timeout_ms, as SQLite's does.
  HW_RETURN_IF_ERROR(
      conn->Script(absl::StrCat("SET lock_timeout = ", options_.busy_timeout_ms).c_str()));
  return conn;
}

void PostgresCatalog::DropIdle() {
  std::vector<std::unique_ptr<pg::Connection>> dropped;  // closed after the lock is released
  absl::MutexLock l(&pool_mu_);
  dropped.swap(idle_);
}

void PostgresCatalog::Release(std::unique_ptr<pg::Connection> conn) {
  if (conn == nullptr) return;
  if (!conn->healthy()) {
    DropIdle();
    return;
  }
  if (conn->in_transaction()) {
    if (!conn->Script("ROLLBACK").ok()) return;
  }
  absl::MutexLock l(&pool_mu_);
  if (static_cast<int>(idle_.size()) <= options_.max_read_connections) {
    idle_.push_back(std::move(conn));
  }  // else closed here
}

absl::Status PostgresCatalog::Transact(const char* begin, const Body& body,
                                       const char* before_commit) {
  std::unique_ptr<pg::Connection> conn;
  // A pooled connection may have died while idle (PostgreSQL restarted): that shows at BEGIN,
  // before anything of this call was sent, so one retry on a fresh connection is safe (the
  // other idle ones died with it: dropped, so the retry connects anew).
  for (int attempt = 0;; ++attempt) {
    HW_ASSIGN_OR_RETURN(conn, Acquire());
    const absl::Status s = conn->Script(begin);
    if (s.ok()) break;
    if (!pg::IsConnectionLoss(s) || attempt > 0) return s;
    conn.reset();
    DropIdle();
  }
  absl::Status s = body(*conn);
  if (s.ok() && before_commit != nullptr) s = conn->Script(before_commit);
  if (s.ok()) {
    s = conn->Script("COMMIT");
    if (!s.ok() && pg::IsConnectionLoss(s)) {
      s = absl::UnavailableError(
          absl::StrCat(s.message(), "; the outcome of the last change is unknown"));
    }
  }
  Release(std::move(conn));  // rolls back an open transaction
  return s;
}

absl::Status PostgresCatalog::Write(const Body& body, bool durable) {
  // The write lock first, so writers on every server are serialized (postgres_catalog.h).
  const std::string begin =
      absl::StrCat("BEGIN; ", durable ? "" : "SET LOCAL synchronous_commit = off; ",
                   "SELECT pg_advisory_xact_lock(", kWriteLockKey, ")");
  return Transact(begin.c_str(), body, nullptr);
}

absl::Status PostgresCatalog::Read(const Body& body) {
  return Transact("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", body, nullptr);
}

absl::StatusOr<pg::Result> PostgresCatalog::Query(absl::string_view sql, const pg::Params& params) {
  for (int attempt = 0;; ++attempt) {
    HW_ASSIGN_OR_RETURN(std::unique_ptr<pg::Connection> conn, Acquire());
    absl::StatusOr<pg::Result> r = conn->Exec(sql, params);
    Release(std::move(conn));
    // A read is safe to repeat on a new connection when a pooled one had died.
    if (r.ok() || !pg::IsConnectionLoss(r.status()) || attempt > 0) return r;
    DropIdle();
  }
}

// Deletes the photos of case `id` (delete_case) or photo `id`, their faces, their bytes when
// no other photo row shares them, the leads' evidence naming the faces, and the case itself
// when delete_case: one transaction, with a 'remove' change per face and the audit row.
absl::Status PostgresCatalog::DeleteRows(int64_t id, bool delete_case, const AuditEntry* audit,
                                         const Body& in_txn, std::vector<int64_t>* face_ids) {
  if (audit != nullptr) HW_RETURN_IF_ERROR(ValidateAudit(*audit));
  const char* photo_where = delete_case ? "p.case_id = $1" : "p.id = $1";
  return Write([&](pg::Connection& db) -> absl::Status {
    const pg::Params by_id = pg::Params().Int(id);
    {
      HW_ASSIGN_OR_RETURN(pg::Result r, db.Exec(delete_case ? "SELECT 1 FROM cases WHERE id = $1"
                                                            : "SELECT 1 FROM photos WHERE id = $1",
                                                by_id));
      if (r.rows() == 0) {
        return absl::NotFoundError(
            absl::StrCat(delete_case ? "case " : "photo ", id, " does not exist"));
      }
    }
    if (in_txn) HW_RETURN_IF_ERROR(in_txn(db));
    if (face_ids != nullptr) {
      face_ids->clear();
      HW_ASSIGN_OR_RETURN(
          pg::Result r,
          db.Exec(absl::StrCat("SELECT f.id FROM faces f JOIN photos p ON p.id = f.photo_id WHERE ",
                               photo_where, " ORDER BY f.id"),
                  by_id));
      for (int i = 0; i < r.rows(); ++i) face_ids->push_back(r.Int(i, 0));
    }
    if (audit != nullptr) {  // with what goes: counted inside the deleting transaction
      HW_ASSIGN_OR_RETURN(
          pg::Result r,
          db.Exec(absl::StrCat("SELECT count(DISTINCT p.id), count(f.id) FROM photos p LEFT "
                               "JOIN faces f ON f.photo_id = p.id WHERE ",
                               photo_where),
                  by_id));
      AuditEntry entry = *audit;
      if (entry.target_id == 0) entry.target_id = id;
      absl::StrAppend(&entry.detail, entry.detail.empty() ? "" : " ", "photos=", r.Int(0, 0),
                      " faces=", r.Int(0, 1));
      HW_RETURN_IF_ERROR(InsertAuditRow(db, entry).status());
    }
    const std::string face_ids = absl::StrCat(
        "SELECT f.id FROM faces f JOIN photos p ON p.id = f.photo_id WHERE ", photo_where);
    const std::string photo_ids = absl::StrCat("SELECT p.id FROM photos p WHERE ", photo_where);
    std::vector<std::string> sql = {
        // Leads first (they reference faces and cases): evidence naming a deleted face goes,
        // a lead keeps its best remaining pair or goes with its reviews when none remains.
        absl::StrCat("DELETE FROM sighting_clusters WHERE face_id IN (", face_ids, ")"),
        absl::StrCat("DELETE FROM lead_evidence WHERE face_a IN (", face_ids, ") OR face_b IN (",
                     face_ids, ")"),
        absl::StrCat("UPDATE leads SET (face_a, face_b, distance, confidence) = (SELECT "
                     "e.face_a, e.face_b, e.distance, e.confidence FROM lead_evidence e WHERE "
                     "e.lead_id = leads.id ORDER BY e.confidence DESC, e.id LIMIT 1) WHERE "
                     "(face_a IN (",
                     face_ids, ") OR face_b IN (", face_ids,
                     ")) AND EXISTS (SELECT 1 FROM lead_evidence e WHERE e.lead_id = leads.id)")};
    if (delete_case) {
      sql.push_back(
          "DELETE FROM lead_evidence WHERE lead_id IN (SELECT id FROM leads WHERE case_a = $1 "
          "OR case_b = $1)");
    }
    for (const std::string& q : sql) HW_RETURN_IF_ERROR(db.Exec(q, by_id).status());
    {
      // A sighting whose lead goes away here (with the other case or photo) starts its
      // retention clock again now if that lead still protected it, else from the lead's last
      // change (its rejection): retention.cc.
      constexpr char kGone[] = "NOT EXISTS (SELECT 1 FROM lead_evidence e WHERE e.lead_id = l.id)";
      HW_RETURN_IF_ERROR(
          db.Exec(absl::StrCat("UPDATE cases SET lead_ended_ms = greatest(coalesce(lead_ended_ms, "
                               "0), (SELECT max(CASE WHEN l.status IN (1, 2, 4) THEN $1 ELSE "
                               "l.updated_ms END) FROM leads l WHERE (l.case_a = cases.id OR "
                               "l.case_b = cases.id) AND ",
                               kGone, ")) WHERE kind = 3 AND id IN (SELECT case_a FROM leads l WHERE ",
                               kGone, " UNION SELECT case_b FROM leads l WHERE ", kGone, ")"),
                  pg::Params().Int(NowMs()))
              .status());
    }
    HW_RETURN_IF_ERROR(db.Script(
        "DELETE FROM lead_reviews WHERE lead_id IN (SELECT l.id FROM leads l WHERE NOT EXISTS "
        "(SELECT 1 FROM lead_evidence e WHERE e.lead_id = l.id)); "
        "DELETE FROM leads WHERE NOT EXISTS (SELECT 1 FROM lead_evidence e WHERE "
        "e.lead_id = leads.id)"));
    // The digests this deletion may free, then the rows, then the bytes no row names any more.
    HW_ASSIGN_OR_RETURN(
        pg::Result shas,
        db.Exec(absl::StrCat("SELECT DISTINCT p.sha256 FROM photos p WHERE ", photo_where), by_id));
    for (const std::string& q :
         {absl::StrCat("INSERT INTO changes (op, face_id, kind) SELECT 'remove', f.id, c.kind "
                       "FROM faces f JOIN photos p ON p.id = f.photo_id JOIN cases c ON "
                       "c.id = p.case_id WHERE ",
                       photo_where, " ORDER BY f.id"),
          absl::StrCat("DELETE FROM faces WHERE photo_id IN (", photo_ids, ")"),
          absl::StrCat("DELETE FROM photos WHERE id IN (", photo_ids, ")")}) {
      HW_RETURN_IF_ERROR(db.Exec(q, by_id).status());
    }
    if (delete_case) {
      HW_RETURN_IF_ERROR(db.Exec("DELETE FROM cases WHERE id = $1", by_id).status());
    }
    for (int i = 0; i < shas.rows(); ++i) {
      HW_RETURN_IF_ERROR(db.Exec("DELETE FROM photo_bytes b WHERE sha256 = $1 AND NOT EXISTS "
                                 "(SELECT 1 FROM photos p WHERE p.sha256 = b.sha256)",
                                 pg::Params().Text(shas.Text(i, 0)))
                             .status());
    }
    return absl::OkStatus();
  });
}

absl::Status PostgresCatalog::DeleteCase(int64_t id, const AuditEntry* audit) {
  return DeleteRows(id, /*delete_case=*/true, audit);
}

absl::Status PostgresCatalog::DeletePhoto(int64_t id) {
  return DeleteRows(id, /*delete_case=*/false, nullptr);
}

}  // namespace homeward::store::internal
