// SqliteCatalog: expiry of SIGHTING cases, data minimisation (see store/catalog.h). A street
// photo of a child who is not missing is kept only while it may still help: while a lead of it
// is open, confirmed for DNA or waiting for a better photo, and for the retention period after
// its last activity. Expiry is DeleteCase's real deletion (DeleteRows), with the condition
// checked again inside the deleting transaction.
#include <sqlite3.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "store/internal/validate.h"
#include "store/sqlite/rows.h"
#include "store/sqlite/sqlite_catalog.h"

namespace homeward::store::internal {
namespace {

// The start of the retention clock on a case row `c`: its last activity (PostgreSQL's twin
// spells max() greatest()); what protects a sighting is kSightingProtectedSql (validate.h).
constexpr char kClockStart[] =
    "max(c.created_ms, c.updated_ms, coalesce(c.lead_ended_ms, 0), "
    "coalesce((SELECT max(p.created_ms) FROM photos p WHERE p.case_id = c.id), 0), "
    "coalesce((SELECT max(l.updated_ms) FROM leads l WHERE l.case_a = c.id), 0), "
    "coalesce((SELECT max(l.updated_ms) FROM leads l WHERE l.case_b = c.id), 0))";
constexpr int kSighting = static_cast<int>(CaseKind::kSighting);

}  // namespace

absl::StatusOr<std::vector<int64_t>> SqliteCatalog::ListExpiredSightings(int64_t now_ms,
                                                                         int64_t retention_ms,
                                                                         int limit) {
  HW_RETURN_IF_ERROR(CheckRetention(now_ms, retention_ms));
  if (limit < 1 || limit > 10000) {
    return absl::InvalidArgumentError(absl::StrCat("limit must be 1..10000; got ", limit));
  }
  HW_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  HW_ASSIGN_OR_RETURN(
      Statement q,
      r.Cached(absl::StrCat("SELECT c.id FROM cases c WHERE c.kind = ", kSighting, " AND NOT ",
                            kSightingProtectedSql, " AND ", kClockStart, " < ?1 ORDER BY c.id LIMIT ?2")));
  q.Bind(1, now_ms - retention_ms).Bind(2, limit);
  std::vector<int64_t> ids;
  while (true) {
    HW_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    ids.push_back(q.Int(0));
  }
  return ids;
}

absl::StatusOr<std::vector<int64_t>> SqliteCatalog::ExpireSighting(int64_t id, int64_t now_ms,
                                                                   int64_t retention_ms,
                                                                   const AuditEntry* audit) {
  HW_RETURN_IF_ERROR(CheckRetention(now_ms, retention_ms));
  // Runs in the deleting transaction, under the write lock: a lead proposed or reopened
  // between the listing and here keeps the sighting.
  auto still_expired = [&](sqlite3* db) -> absl::Status {
    HW_ASSIGN_OR_RETURN(
        Statement q,
        Statement::Prepare(db, absl::StrCat("SELECT c.kind, ", kSightingProtectedSql, ", ", kClockStart,
                                            " FROM cases c WHERE c.id = ?1")));
    HW_ASSIGN_OR_RETURN(bool row, q.Bind(1, id).Step());
    if (!row) return absl::NotFoundError(absl::StrCat("case ", id, " does not exist"));
    if (q.Int(0) != kSighting) {
      return absl::FailedPreconditionError(
          absl::StrCat("case ", id, " is not a SIGHTING: only sightings expire"));
    }
    if (q.Int(1) != 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "sighting ", id, " has an open, confirmed-for-DNA or needs-better-photo lead"));
    }
    if (q.Int(2) >= now_ms - retention_ms) {
      return absl::FailedPreconditionError(
          absl::StrCat("sighting ", id, " was active within the retention period"));
    }
    return internal::Exec(db,
                          "UPDATE counters SET value = value + 1 WHERE name = 'expired_sightings'");
  };
  std::vector<int64_t> face_ids;
  HW_RETURN_IF_ERROR(
      DeleteRows(id, "p.case_id = ?1", /*delete_case=*/true, audit, still_expired, &face_ids));
  return face_ids;
}

absl::StatusOr<int64_t> SqliteCatalog::ExpiredSightingCount() {
  HW_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  HW_ASSIGN_OR_RETURN(Statement q,
                      r.Cached("SELECT value FROM counters WHERE name = 'expired_sightings'"));
  HW_ASSIGN_OR_RETURN(bool row, q.Step());
  return row ? q.Int(0) : 0;
}

}  // namespace homeward::store::internal
