// PostgresCatalog: expiry of SIGHTING cases, data minimisation (store/catalog.h), the same
// rules and SQL shape as store/sqlite/retention.cc: expiry is DeleteCase's real deletion
// (DeleteRows), with the condition checked again inside the deleting transaction, which holds
// the write lock every server takes (a lead proposed through another server meanwhile keeps
// the sighting).
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "store/internal/validate.h"
#include "store/postgres/postgres_catalog.h"
#include "store/postgres/rows.h"

namespace homeward::store::internal {
namespace {

// As store/sqlite/retention.cc's, with greatest() for SQLite's scalar max().
constexpr char kClockStart[] =
    "greatest(c.created_ms, c.updated_ms, coalesce(c.lead_ended_ms, 0), "
    "coalesce((SELECT max(p.created_ms) FROM photos p WHERE p.case_id = c.id), 0), "
    "coalesce((SELECT max(l.updated_ms) FROM leads l WHERE l.case_a = c.id), 0), "
    "coalesce((SELECT max(l.updated_ms) FROM leads l WHERE l.case_b = c.id), 0))";
constexpr int kSighting = static_cast<int>(CaseKind::kSighting);

}  // namespace

absl::StatusOr<std::vector<int64_t>> PostgresCatalog::ListExpiredSightings(int64_t now_ms,
                                                                           int64_t retention_ms,
                                                                           int limit) {
  HW_RETURN_IF_ERROR(CheckRetention(now_ms, retention_ms));
  if (limit < 1 || limit > 10000) {
    return absl::InvalidArgumentError(absl::StrCat("limit must be 1..10000; got ", limit));
  }
  HW_ASSIGN_OR_RETURN(
      pg::Result r,
      Query(absl::StrCat("SELECT c.id FROM cases c WHERE c.kind = ", kSighting, " AND NOT ",
                         kSightingProtectedSql, " AND ", kClockStart, " < $1 ORDER BY c.id LIMIT $2"),
            pg::Params().Int(now_ms - retention_ms).Int(limit)));
  std::vector<int64_t> ids;
  for (int i = 0; i < r.rows(); ++i) ids.push_back(r.Int(i, 0));
  return ids;
}

absl::StatusOr<std::vector<int64_t>> PostgresCatalog::ExpireSighting(int64_t id, int64_t now_ms,
                                                                     int64_t retention_ms,
                                                                     const AuditEntry* audit) {
  HW_RETURN_IF_ERROR(CheckRetention(now_ms, retention_ms));
  auto still_expired = [&](pg::Connection& db) -> absl::Status {
    HW_ASSIGN_OR_RETURN(pg::Result r,
                        db.Exec(absl::StrCat("SELECT c.kind, ", kSightingProtectedSql, "::int, ", kClockStart,
                                             " FROM cases c WHERE c.id = $1"),
                                pg::Params().Int(id)));
    if (r.rows() == 0) return absl::NotFoundError(absl::StrCat("case ", id, " does not exist"));
    if (r.Int(0, 0) != kSighting) {
      return absl::FailedPreconditionError(
          absl::StrCat("case ", id, " is not a SIGHTING: only sightings expire"));
    }
    if (r.Int(0, 1) != 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "sighting ", id, " has an open, confirmed-for-DNA or needs-better-photo lead"));
    }
    if (r.Int(0, 2) >= now_ms - retention_ms) {
      return absl::FailedPreconditionError(
          absl::StrCat("sighting ", id, " was active within the retention period"));
    }
    return db.Exec("UPDATE counters SET value = value + 1 WHERE name = 'expired_sightings'")
        .status();
  };
  std::vector<int64_t> face_ids;
  HW_RETURN_IF_ERROR(DeleteRows(id, /*delete_case=*/true, audit, still_expired, &face_ids));
  return face_ids;
}

absl::StatusOr<int64_t> PostgresCatalog::ExpiredSightingCount() {
  HW_ASSIGN_OR_RETURN(pg::Result r,
                      Query("SELECT value FROM counters WHERE name = 'expired_sightings'"));
  return r.rows() > 0 ? r.Int(0, 0) : 0;
}

}  // namespace homeward::store::internal
