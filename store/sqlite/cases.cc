// SqliteCatalog: cases and their counters (see sqlite_catalog.h).
#include <sqlite3.h>

#include <map>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "store/internal/validate.h"
#include "store/sqlite/rows.h"
#include "store/sqlite/sqlite_catalog.h"

namespace homeward::store::internal {

absl::StatusOr<int64_t> SqliteCatalog::AddCase(const Case& c, const AuditEntry* audit) {
  HW_RETURN_IF_ERROR(ValidateCase(c));
  if (audit != nullptr) HW_RETURN_IF_ERROR(ValidateAudit(*audit));
  absl::MutexLock l(&write_mu_);
  sqlite3* db = writer_;
  Transaction txn(db);
  HW_RETURN_IF_ERROR(txn.status());
  HW_ASSIGN_OR_RETURN(
      Statement q,
      Statement::Prepare(
          db,
          "INSERT INTO cases (kind, display_name, sex, date_of_birth, "
          "birth_year_min, birth_year_max, event_date, place, notes, "
          "reporter_contact, owner_key_id, status, created_ms, updated_ms, id) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, " HW_NEXT_ID_SQL("cases") ")"));
  BindCase(q, c);
  const int64_t now = NowMs();
  HW_RETURN_IF_ERROR(q.Bind(13, now).Bind(14, now).Run());
  const int64_t id = sqlite3_last_insert_rowid(db);
  if (audit != nullptr) {
    AuditEntry entry = *audit;
    if (entry.target_id == 0) entry.target_id = id;
    HW_RETURN_IF_ERROR(InsertAuditRow(db, entry).status());
  }
  HW_RETURN_IF_ERROR(txn.Commit());
  return id;
}

absl::StatusOr<Case> SqliteCatalog::GetCase(int64_t id) {
  HW_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  HW_ASSIGN_OR_RETURN(Statement q,
                      r.Cached(absl::StrCat("SELECT ", kCaseColumns, " FROM cases WHERE id = ?")));
  HW_ASSIGN_OR_RETURN(bool row, q.Bind(1, id).Step());
  if (!row) return absl::NotFoundError(absl::StrCat("case ", id, " does not exist"));
  return ReadCase(q);
}

absl::StatusOr<std::vector<Case>> SqliteCatalog::GetCases(const std::vector<int64_t>& ids) {
  HW_RETURN_IF_ERROR(CheckIdCount(ids.size()));
  std::vector<Case> out;
  if (ids.empty()) return out;
  HW_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  HW_RETURN_IF_ERROR(internal::Exec(r.db(), "BEGIN"));
  HW_ASSIGN_OR_RETURN(Statement q,
                      r.Cached(absl::StrCat("SELECT ", kCaseColumns, " FROM cases WHERE id = ?")));
  out.reserve(ids.size());
  for (int64_t id : ids) {
    q.Reset();
    HW_ASSIGN_OR_RETURN(bool row, q.Bind(1, id).Step());
    if (row) out.push_back(ReadCase(q));
  }
  return out;  // the Reader's release ends the read transaction
}

absl::Status SqliteCatalog::UpdateCase(const Case& c, const AuditEntry* audit) {
  HW_RETURN_IF_ERROR(ValidateCase(c));
  if (audit != nullptr) HW_RETURN_IF_ERROR(ValidateAudit(*audit));
  absl::MutexLock l(&write_mu_);
  sqlite3* db = writer_;
  Transaction txn(db);
  HW_RETURN_IF_ERROR(txn.status());
  {
    HW_ASSIGN_OR_RETURN(Statement q, Statement::Prepare(db, "SELECT kind FROM cases WHERE id = ?"));
    HW_ASSIGN_OR_RETURN(bool row, q.Bind(1, c.id).Step());
    if (!row) return absl::NotFoundError(absl::StrCat("case ", c.id, " does not exist"));
    if (q.Int(0) != static_cast<int>(c.kind)) {
      return absl::InvalidArgumentError(
          "a case's kind cannot change; create a new case of the other kind instead");
    }
  }
  HW_ASSIGN_OR_RETURN(
      Statement q,
      Statement::Prepare(db,
                         "UPDATE cases SET kind = ?, display_name = ?, sex = ?, date_of_birth = ?, "
                         "birth_year_min = ?, birth_year_max = ?, event_date = ?, place = ?, "
                         "notes = ?, reporter_contact = ?, owner_key_id = ?, status = ?, "
                         "updated_ms = max(?, updated_ms + 1) WHERE id = ?"));
  BindCase(q, c);
  HW_RETURN_IF_ERROR(q.Bind(13, NowMs()).Bind(14, c.id).Run());
  if (audit != nullptr) HW_RETURN_IF_ERROR(InsertAuditRow(db, *audit).status());
  return txn.Commit();
}

absl::StatusOr<CasePage> SqliteCatalog::ListCases(const CaseQuery& query) {
  int64_t after = 0;
  HW_RETURN_IF_ERROR(ValidateCaseQuery(query, &after));

  // Fixed fragments only; every value is a bound parameter.
  std::string sql = absl::StrCat("SELECT ", kCaseColumns, " FROM cases WHERE id > ?1");
  if (query.kind) absl::StrAppend(&sql, " AND kind = ?2");
  if (query.status) absl::StrAppend(&sql, " AND status = ?3");
  if (!query.place_contains.empty()) {
    absl::StrAppend(&sql, " AND instr(lower(coalesce(place, '')), lower(?4)) > 0");
  }
  if (!query.event_from.empty()) absl::StrAppend(&sql, " AND event_date >= ?5");
  if (!query.event_to.empty()) absl::StrAppend(&sql, " AND event_date <= ?6");
  if (query.owner_key_id) absl::StrAppend(&sql, " AND owner_key_id = ?8");
  absl::StrAppend(&sql, " ORDER BY id LIMIT ?7");

  HW_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  HW_ASSIGN_OR_RETURN(Statement q, Statement::Prepare(r.db(), sql));
  q.Bind(1, after);
  if (query.kind) q.Bind(2, static_cast<int>(*query.kind));
  if (query.status) q.Bind(3, static_cast<int>(*query.status));
  if (!query.place_contains.empty()) q.BindText(4, query.place_contains);
  if (!query.event_from.empty()) q.BindText(5, query.event_from);
  if (!query.event_to.empty()) q.BindText(6, query.event_to);
  q.Bind(7, query.page_size + 1);
  if (query.owner_key_id) q.BindText(8, *query.owner_key_id);
  CasePage page;
  while (true) {
    HW_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    if (static_cast<int>(page.cases.size()) == query.page_size) {
      page.next_page_token = absl::StrCat(page.cases.back().id);
      break;
    }
    page.cases.push_back(ReadCase(q));
  }
  return page;
}

namespace {
// Rows of (kind, cases, photos, faces), every kind present (zeros for a kind without rows).
absl::StatusOr<std::map<CaseKind, KindCounts>> ReadKindCounts(Statement& q) {
  std::map<CaseKind, KindCounts> counts = {
      {CaseKind::kMissing, {}}, {CaseKind::kFound, {}}, {CaseKind::kSighting, {}}};
  while (true) {
    HW_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    counts[static_cast<CaseKind>(q.Int(0))] = {q.Int(1), q.Int(2), q.Int(3)};
  }
  return counts;
}
}  // namespace

absl::StatusOr<std::map<CaseKind, KindCounts>> SqliteCatalog::CountByKind() {
  HW_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  HW_ASSIGN_OR_RETURN(Statement q, r.Cached("SELECT kind, cases, photos, faces FROM kind_counts"));
  return ReadKindCounts(q);
}

absl::StatusOr<std::map<CaseKind, KindCounts>> SqliteCatalog::CountByKindForOwner(
    const std::string& owner_key_id) {
  HW_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  HW_RETURN_IF_ERROR(internal::Exec(r.db(), "BEGIN"));
  HW_ASSIGN_OR_RETURN(
      Statement q,
      r.Cached("SELECT c.kind, count(DISTINCT c.id), count(DISTINCT p.id), count(f.id) "
               "FROM cases c LEFT JOIN photos p ON p.case_id = c.id "
               "LEFT JOIN faces f ON f.photo_id = p.id WHERE c.owner_key_id = ? GROUP BY c.kind"));
  q.BindText(1, owner_key_id);
  return ReadKindCounts(q);  // the Reader's release ends the read transaction
}

absl::Status SqliteCatalog::DeleteCase(int64_t id, const AuditEntry* audit) {
  return DeleteRows(id, "p.case_id = ?1", /*delete_case=*/true, audit);
}

}  // namespace homeward::store::internal
