// PostgresCatalog: the audit trail and the volunteers' candidate grants (see
// postgres_catalog.h).
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "store/internal/validate.h"
#include "store/postgres/postgres_catalog.h"
#include "store/postgres/rows.h"

namespace homeward::store::internal {

absl::StatusOr<int64_t> InsertAuditRow(pg::Connection& db, const AuditEntry& e) {
  HW_ASSIGN_OR_RETURN(pg::Result r,
                      db.Exec("INSERT INTO audit (time_ms, actor, role, action, target_type, "
                              "target_id, detail) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                              pg::Params()
                                  .Int(NowMs())
                                  .Text(e.actor)
                                  .TextOrNull(e.role)
                                  .Text(e.action)
                                  .TextOrNull(e.target_type)
                                  .Int(e.target_id)
                                  .TextOrNull(e.detail)));
  return r.Int(0, 0);
}

absl::StatusOr<int64_t> PostgresCatalog::AppendAudit(const AuditEntry& e) {
  HW_RETURN_IF_ERROR(ValidateAudit(e));
  int64_t id = 0;
  // An audit row of its own (a read, a refused call) does not wait for the WAL flush, as the
  // SQLite backend's synchronous=NORMAL commit: it survives a crash of PostgreSQL's clients
  // and processes; a crash of the database server's machine may lose the last rows. The
  // audit row of a change is written in the change's own (durable) transaction instead. No
  // write lock: audit ids need no commit order.
  HW_RETURN_IF_ERROR(Transact(
      "BEGIN; SET LOCAL synchronous_commit = off",
      [&](pg::Connection& db) -> absl::Status {
        HW_ASSIGN_OR_RETURN(id, InsertAuditRow(db, e));
        return absl::OkStatus();
      },
      nullptr));
  return id;
}

absl::StatusOr<std::vector<AuditEntry>> PostgresCatalog::ListAudit(int64_t after_id, int limit,
                                                                   const std::string& target_type,
                                                                   int64_t target_id) {
  if (limit < 1 || limit > 10000) {
    return absl::InvalidArgumentError(absl::StrCat("limit must be 1..10000; got ", limit));
  }
  pg::Params p;
  p.Int(after_id).Int(limit);
  std::string sql =
      "SELECT id, time_ms, actor, role, action, target_type, target_id, detail FROM audit "
      "WHERE id > $1";
  if (!target_type.empty()) {
    p.Text(target_type).Int(target_id);
    absl::StrAppend(&sql, " AND target_type = $3 AND target_id = $4");
  }
  absl::StrAppend(&sql, " ORDER BY id LIMIT $2");
  HW_ASSIGN_OR_RETURN(pg::Result r, Query(sql, p));
  std::vector<AuditEntry> out;
  out.reserve(r.rows());
  for (int i = 0; i < r.rows(); ++i) {
    AuditEntry e;
    e.id = r.Int(i, 0);
    e.time_ms = r.Int(i, 1);
    e.actor = r.Text(i, 2);
    e.role = r.Text(i, 3);
    e.action = r.Text(i, 4);
    e.target_type = r.Text(i, 5);
    e.target_id = r.Int(i, 6);
    e.detail = r.Text(i, 7);
    out.push_back(std::move(e));
  }
  return out;
}

absl::Status PostgresCatalog::SaveGrants(const std::string& key_id,
                                         const std::vector<int64_t>& face_ids, int64_t expires_ms) {
  if (face_ids.empty()) return absl::OkStatus();
  HW_RETURN_IF_ERROR(CheckText("key_id", key_id, kMaxNameBytes));
  std::string array = "{";
  for (size_t i = 0; i < face_ids.size(); ++i) absl::StrAppend(&array, i ? "," : "", face_ids[i]);
  array += "}";
  // Like an audit row, a grant need not wait for the WAL flush: losing the last ones only
  // means the volunteer's client searches again. One statement: no write lock needed.
  return Transact(
      "BEGIN; SET LOCAL synchronous_commit = off",
      [&](pg::Connection& db) {
        return db
            .Exec(
                "INSERT INTO candidate_grants (key_id, face_id, expires_ms) "
                "SELECT $1, f, $3 FROM (SELECT DISTINCT unnest($2::bigint[]) AS f) u "
                "ON CONFLICT (key_id, face_id) DO UPDATE SET expires_ms = "
                "EXCLUDED.expires_ms",
                pg::Params().Text(key_id).Text(array).Int(expires_ms))
            .status();
      },
      nullptr);
}

absl::StatusOr<std::vector<Catalog::Grant>> PostgresCatalog::LoadGrants(int64_t now_ms) {
  HW_RETURN_IF_ERROR(
      Query("DELETE FROM candidate_grants WHERE expires_ms <= $1", pg::Params().Int(now_ms))
          .status());
  HW_ASSIGN_OR_RETURN(pg::Result r, Query("SELECT key_id, face_id, expires_ms FROM "
                                          "candidate_grants ORDER BY expires_ms"));
  std::vector<Grant> out;
  out.reserve(r.rows());
  for (int i = 0; i < r.rows(); ++i) out.push_back(Grant{r.Text(i, 0), r.Int(i, 1), r.Int(i, 2)});
  return out;
}

}  // namespace homeward::store::internal
