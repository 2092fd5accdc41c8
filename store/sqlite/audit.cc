// SqliteCatalog: the audit trail and the volunteers' candidate grants (see sqlite_catalog.h).
#include <sqlite3.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "store/internal/validate.h"
#include "store/sqlite/rows.h"
#include "store/sqlite/sqlite_catalog.h"

namespace homeward::store::internal {

absl::StatusOr<int64_t> InsertAuditRow(sqlite3* db, const AuditEntry& e) {
  HW_ASSIGN_OR_RETURN(
      Statement q,
      Statement::Prepare(db,
                         "INSERT INTO audit (time_ms, actor, role, action, target_type, "
                         "target_id, detail) VALUES (?, ?, ?, ?, ?, ?, ?)"));
  HW_RETURN_IF_ERROR(q.Bind(1, NowMs())
                         .BindText(2, e.actor)
                         .BindTextOrNull(3, e.role)
                         .BindText(4, e.action)
                         .BindTextOrNull(5, e.target_type)
                         .Bind(6, e.target_id)
                         .BindTextOrNull(7, e.detail)
                         .Run());
  return static_cast<int64_t>(sqlite3_last_insert_rowid(db));
}

absl::StatusOr<int64_t> SqliteCatalog::AppendAudit(const AuditEntry& e) {
  HW_RETURN_IF_ERROR(ValidateAudit(e));
  absl::MutexLock l(&write_mu_);
  sqlite3* db = writer_;
  // An audit row of its own (a read, or a refused or failed call: no change goes with it) is
  // committed without waiting for fsync (synchronous=NORMAL for this one commit): in WAL
  // mode it survives a crash of the process, and reaches the disk with the next durable
  // commit or checkpoint; an OS crash or power loss may lose the last rows. Waiting for the
  // disk would put an fsync (1-10 ms here) into every search and view. The audit row of a
  // change is written in the change's own (durable) transaction instead (store/catalog.h).
  HW_RETURN_IF_ERROR(internal::Exec(db, "PRAGMA synchronous = NORMAL"));
  const absl::StatusOr<int64_t> row = InsertAuditRow(db, e);
  HW_RETURN_IF_ERROR(internal::Exec(db, "PRAGMA synchronous = FULL"));
  return row;
}

absl::Status SqliteCatalog::SaveGrants(const std::string& key_id,
                                       const std::vector<int64_t>& face_ids, int64_t expires_ms) {
  if (face_ids.empty()) return absl::OkStatus();
  HW_RETURN_IF_ERROR(CheckText("key_id", key_id, kMaxNameBytes));
  absl::MutexLock l(&write_mu_);
  sqlite3* db = writer_;
  // Like an audit row, a grant need not wait for fsync: losing the last ones to a power cut
  // only means the volunteer's client searches again.
  HW_RETURN_IF_ERROR(internal::Exec(db, "PRAGMA synchronous = NORMAL"));
  auto save = [&]() -> absl::Status {
    Transaction txn(db);
    HW_RETURN_IF_ERROR(txn.status());
    HW_ASSIGN_OR_RETURN(Statement q,
                        Statement::Prepare(db,
                                           "INSERT OR REPLACE INTO candidate_grants (key_id, "
                                           "face_id, expires_ms) VALUES (?, ?, ?)"));
    for (int64_t id : face_ids) {
      q.Reset();
      HW_RETURN_IF_ERROR(q.BindText(1, key_id).Bind(2, id).Bind(3, expires_ms).Run());
    }
    return txn.Commit();
  };
  const absl::Status saved = save();
  HW_RETURN_IF_ERROR(internal::Exec(db, "PRAGMA synchronous = FULL"));
  return saved;
}

absl::StatusOr<std::vector<Catalog::Grant>> SqliteCatalog::LoadGrants(int64_t now_ms) {
  {
    absl::MutexLock l(&write_mu_);
    HW_ASSIGN_OR_RETURN(
        Statement del,
        Statement::Prepare(writer_, "DELETE FROM candidate_grants WHERE expires_ms <= ?"));
    HW_RETURN_IF_ERROR(del.Bind(1, now_ms).Run());
  }
  HW_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  HW_ASSIGN_OR_RETURN(Statement q, Statement::Prepare(r.db(),
                                                      "SELECT key_id, face_id, expires_ms FROM "
                                                      "candidate_grants ORDER BY expires_ms"));
  std::vector<Grant> out;
  while (true) {
    HW_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back(Grant{q.Text(0), q.Int(1), q.Int(2)});
  }
  return out;
}

absl::StatusOr<std::vector<AuditEntry>> SqliteCatalog::ListAudit(int64_t after_id, int limit,
                                                                 const std::string& target_type,
                                                                 int64_t target_id) {
  if (limit < 1 || limit > 10000) {
    return absl::InvalidArgumentError(absl::StrCat("limit must be 1..10000; got ", limit));
  }
  std::string sql =
      "SELECT id, time_ms, actor, role, action, target_type, target_id, detail FROM audit "
      "WHERE id > ?1";
  if (!target_type.empty()) absl::StrAppend(&sql, " AND target_type = ?2 AND target_id = ?3");
  absl::StrAppend(&sql, " ORDER BY id LIMIT ?4");
  HW_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  HW_ASSIGN_OR_RETURN(Statement q, Statement::Prepare(r.db(), sql));
  q.Bind(1, after_id).Bind(4, limit);
  if (!target_type.empty()) q.BindText(2, target_type).Bind(3, target_id);
  std::vector<AuditEntry> out;
  while (true) {
    HW_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    AuditEntry e;
    e.id = q.Int(0);
    e.time_ms = q.Int(1);
    e.actor = q.Text(2);
    e.role = q.Text(3);
    e.action = q.Text(4);
    e.target_type = q.Text(5);
    e.target_id = q.Int(6);
    e.detail = q.Text(7);
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace homeward::store::internal
