// PostgresCatalog: cases and their counters (see postgres_catalog.h).
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "store/internal/validate.h"
#include "store/postgres/postgres_catalog.h"
#include "store/postgres/rows.h"

namespace homeward::store::internal {

absl::StatusOr<int64_t> PostgresCatalog::AddCase(const Case& c, const AuditEntry* audit) {
  HW_RETURN_IF_ERROR(ValidateCase(c));
  if (audit != nullptr) HW_RETURN_IF_ERROR(ValidateAudit(*audit));
  int64_t id = 0;
  HW_RETURN_IF_ERROR(Write([&](pg::Connection& db) -> absl::Status {
    const int64_t now = NowMs();
    pg::Params p;
    PgCaseParams(p, c).Int(now).Int(now);
    HW_ASSIGN_OR_RETURN(
        pg::Result r,
        db.Exec("INSERT INTO cases (kind, display_name, sex, date_of_birth, birth_year_min, "
                "birth_year_max, event_date, place, notes, reporter_contact, owner_key_id, status, "
                "created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, "
                "$12, $13, $14) RETURNING id",
                p));
    id = r.Int(0, 0);
    if (audit != nullptr) {
      AuditEntry entry = *audit;
      if (entry.target_id == 0) entry.target_id = id;
      HW_RETURN_IF_ERROR(InsertAuditRow(db, entry).status());
    }
    return absl::OkStatus();
  }));
  return id;
}

absl::StatusOr<Case> PostgresCatalog::GetCase(int64_t id) {
  HW_ASSIGN_OR_RETURN(pg::Result r,
                      Query(absl::StrCat("SELECT ", kPgCaseColumns, " FROM cases WHERE id = $1"),
                            pg::Params().Int(id)));
  if (r.rows() == 0) return absl::NotFoundError(absl::StrCat("case ", id, " does not exist"));
  return PgReadCase(r, 0);
}

absl::StatusOr<std::vector<Case>> PostgresCatalog::GetCases(const std::vector<int64_t>& ids) {
  HW_RETURN_IF_ERROR(CheckIdCount(ids.size()));
  std::vector<Case> out;
  if (ids.empty()) return out;
  std::string array = "{";
  for (size_t i = 0; i < ids.size(); ++i) absl::StrAppend(&array, i ? "," : "", ids[i]);
  array += "}";
  HW_ASSIGN_OR_RETURN(pg::Result r, Query(absl::StrCat("SELECT ", kPgCaseColumns,
                                                       " FROM cases WHERE id = ANY($1::bigint[])"),
                                          pg::Params().Text(array)));
  std::map<int64_t, int> row_of;
  for (int i = 0; i < r.rows(); ++i) row_of[r.Int(i, 0)] = i;
  out.reserve(row_of.size());
  for (int64_t id : ids) {
    auto it = row_of.find(id);
    if (it != row_of.end()) out.push_back(PgReadCase(r, it->second));
  }
  return out;
}

absl::Status PostgresCatalog::UpdateCase(const Case& c, const AuditEntry* audit) {
  HW_RETURN_IF_ERROR(ValidateCase(c));
  if (audit != nullptr) HW_RETURN_IF_ERROR(ValidateAudit(*audit));
  return Write([&](pg::Connection& db) -> absl::Status {
    {
      HW_ASSIGN_OR_RETURN(pg::Result r, db.Exec("SELECT kind FROM cases WHERE id = $1 FOR UPDATE",
                                                pg::Params().Int(c.id)));
      if (r.rows() == 0) return absl::NotFoundError(absl::StrCat("case ", c.id, " does not exist"));
      if (r.Int(0, 0) != static_cast<int>(c.kind)) {
        return absl::InvalidArgumentError(
            "a case's kind cannot change; create a new case of the other kind instead");
      }
    }
    pg::Params p;
    PgCaseParams(p, c).Int(NowMs()).Int(c.id);
    HW_RETURN_IF_ERROR(
        db.Exec("UPDATE cases SET kind = $1, display_name = $2, sex = $3, date_of_birth = $4, "
                "birth_year_min = $5, birth_year_max = $6, event_date = $7, place = $8, "
                "notes = $9, reporter_contact = $10, owner_key_id = $11, status = $12, "
                "updated_ms = greatest($13, updated_ms + 1) WHERE id = $14",
                p)
            .status());
    if (audit != nullptr) HW_RETURN_IF_ERROR(InsertAuditRow(db, *audit).status());
    return absl::OkStatus();
  });
}

absl::StatusOr<CasePage> PostgresCatalog::ListCases(const CaseQuery& query) {
  int64_t after = 0;
  HW_RETURN_IF_ERROR(ValidateCaseQuery(query, &after));
  // Fixed fragments only; every value is a bound parameter, numbered as it is appended.
  pg::Params p;
  p.Int(after);
  std::string sql = absl::StrCat("SELECT ", kPgCaseColumns, " FROM cases WHERE id > $1");
  auto param = [&]() { return absl::StrCat("$", p.size()); };
  if (query.kind) {
    p.Int(static_cast<int>(*query.kind));
    absl::StrAppend(&sql, " AND kind = ", param());
  }
  if (query.status) {
    p.Int(static_cast<int>(*query.status));
    absl::StrAppend(&sql, " AND status = ", param());
  }
  if (!query.place_contains.empty()) {
    // strpos, not LIKE: % and _ in the query are text. lower() of ASCII, as SQLite's.
    p.Text(query.place_contains);
    absl::StrAppend(&sql, " AND strpos(lower(coalesce(place, '')), lower(", param(), ")) > 0");
  }
  if (!query.event_from.empty()) {
    p.Text(query.event_from);
    absl::StrAppend(&sql, " AND event_date >= ", param());
  }
  if (!query.event_to.empty()) {
    p.Text(query.event_to);
    absl::StrAppend(&sql, " AND event_date <= ", param());
  }
  if (query.owner_key_id) {
    p.Text(*query.owner_key_id);
    absl::StrAppend(&sql, " AND owner_key_id = ", param());
  }
  p.Int(query.page_size + 1);
  absl::StrAppend(&sql, " ORDER BY id LIMIT ", param());
  HW_ASSIGN_OR_RETURN(pg::Result r, Query(sql, p));
  CasePage page;
  for (int i = 0; i < r.rows(); ++i) {
    if (static_cast<int>(page.cases.size()) == query.page_size) {
      page.next_page_token = absl::StrCat(page.cases.back().id);
      break;
    }
    page.cases.push_back(PgReadCase(r, i));
  }
  return page;
}

namespace {
// Rows of (kind, cases, photos, faces), every kind present (zeros for a kind without rows).
std::map<CaseKind, KindCounts> KindCountsOf(const pg::Result& r) {
  std::map<CaseKind, KindCounts> counts = {
      {CaseKind::kMissing, {}}, {CaseKind::kFound, {}}, {CaseKind::kSighting, {}}};
  for (int i = 0; i < r.rows(); ++i) {
    counts[static_cast<CaseKind>(r.Int(i, 0))] = {r.Int(i, 1), r.Int(i, 2), r.Int(i, 3)};
  }
  return counts;
}
}  // namespace

absl::StatusOr<std::map<CaseKind, KindCounts>> PostgresCatalog::CountByKind() {
  HW_ASSIGN_OR_RETURN(pg::Result r, Query("SELECT kind, cases, photos, faces FROM kind_counts"));
  return KindCountsOf(r);
}

absl::StatusOr<std::map<CaseKind, KindCounts>> PostgresCatalog::CountByKindForOwner(
    const std::string& owner_key_id) {
  HW_ASSIGN_OR_RETURN(
      pg::Result r,
      Query("SELECT c.kind, count(DISTINCT c.id), count(DISTINCT p.id), count(f.id) "
            "FROM cases c LEFT JOIN photos p ON p.case_id = c.id "
            "LEFT JOIN faces f ON f.photo_id = p.id WHERE c.owner_key_id = $1 GROUP BY c.kind",
            pg::Params().Text(owner_key_id)));
  return KindCountsOf(r);
}

}  // namespace homeward::store::internal
