// SqliteCatalog: leads, their evidence and reviews, and sighting clusters (see
// sqlite_catalog.h).
#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "store/internal/validate.h"
#include "store/sqlite/rows.h"
#include "store/sqlite/sqlite_catalog.h"

namespace homeward::store::internal {

// ---- Leads --------------------------------------------------------------------------------

namespace {

constexpr char kLeadColumns[] =
    "l.id, l.case_a, l.case_b, l.face_a, l.face_b, l.distance, l.confidence, l.status, "
    "l.created_ms, l.updated_ms";

Lead ReadLead(const Statement& q) {
  Lead l;
  l.id = q.Int(0);
  l.case_a = q.Int(1);
  l.case_b = q.Int(2);
  l.face_a = q.Int(3);
  l.face_b = q.Int(4);
  l.distance = q.Real(5);
  l.confidence = q.Real(6);
  l.status = static_cast<LeadStatus>(q.Int(7));
  l.created_ms = q.Int(8);
  l.updated_ms = q.Int(9);
  return l;
}

// The lead with its evidence and reviews, read on `db` (one transaction is the caller's).
absl::StatusOr<Lead> LoadLead(sqlite3* db, int64_t id) {
  Lead lead;
  {
    HW_ASSIGN_OR_RETURN(Statement q, Statement::Prepare(db, absl::StrCat("SELECT ", kLeadColumns,
                                                                         " FROM leads l WHERE "
                                                                         "l.id = ?")));
    HW_ASSIGN_OR_RETURN(bool row, q.Bind(1, id).Step());
    if (!row) return absl::NotFoundError(absl::StrCat("lead ", id, " does not exist"));
    lead = ReadLead(q);
  }
  {
    HW_ASSIGN_OR_RETURN(
        Statement q, Statement::Prepare(db,
                                        "SELECT face_a, face_b, distance, confidence, time_ms FROM "
                                        "lead_evidence WHERE lead_id = ? ORDER BY id"));
    q.Bind(1, id);
    while (true) {
      HW_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      lead.evidence.push_back(LeadEvidence{q.Int(0), q.Int(1), q.Real(2), q.Real(3), q.Int(4)});
    }
  }
  HW_ASSIGN_OR_RETURN(Statement q,
                      Statement::Prepare(db,
                                         "SELECT decision, note, reviewer, time_ms FROM "
                                         "lead_reviews WHERE lead_id = ? ORDER BY id"));
  q.Bind(1, id);
  while (true) {
    HW_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    lead.reviews.push_back(
        LeadReview{static_cast<LeadStatus>(q.Int(0)), q.Text(1), q.Text(2), q.Int(3)});
  }
  return lead;
}

}  // namespace

absl::StatusOr<LeadUpsertResult> SqliteCatalog::UpsertLead(int64_t face_x, int64_t face_y,
                                                           double distance, double confidence) {
  HW_RETURN_IF_ERROR(ValidateLeadScore(distance, confidence));
  struct Side {
    int64_t face = 0, case_id = 0;
    std::string key;  // the photo content and the face in it: "sha256/x,y,w,h"
  };
  absl::MutexLock l(&write_mu_);
  sqlite3* db = writer_;
  Transaction txn(db);
  HW_RETURN_IF_ERROR(txn.status());
  HW_ASSIGN_OR_RETURN(
      Statement side_q,
      Statement::Prepare(db,
                         "SELECT p.case_id, p.sha256, f.box_x, f.box_y, f.box_w, f.box_h FROM "
                         "faces f JOIN photos p ON p.id = f.photo_id WHERE f.id = ?"));
  auto side = [&](int64_t face) -> absl::StatusOr<Side> {
    side_q.Reset();
    HW_ASSIGN_OR_RETURN(bool row, side_q.Bind(1, face).Step());
    if (!row) return absl::NotFoundError(absl::StrCat("face ", face, " does not exist"));
    return Side{face, side_q.Int(0),
                absl::StrCat(side_q.Text(1), "/", side_q.Int(2), ",", side_q.Int(3), ",",
                             side_q.Int(4), ",", side_q.Int(5))};
  };
  HW_ASSIGN_OR_RETURN(Side a, side(face_x));
  HW_ASSIGN_OR_RETURN(Side b, side(face_y));
  if (a.case_id == b.case_id) {
    return absl::InvalidArgumentError(
        absl::StrCat("faces ", face_x, " and ", face_y, " belong to one case; a lead joins two"));
  }
  if (a.case_id > b.case_id) std::swap(a, b);

  bool suppressed = false;
  {
    HW_ASSIGN_OR_RETURN(
        Statement q,
        Statement::Prepare(db,
                           "SELECT 1 FROM lead_evidence e JOIN leads l ON l.id = e.lead_id "
                           "WHERE l.status = ?3 AND ((e.key_a = ?1 AND e.key_b = ?2) OR "
                           "(e.key_a = ?2 AND e.key_b = ?1)) LIMIT 1"));
    HW_ASSIGN_OR_RETURN(suppressed, q.BindText(1, a.key)
                                        .BindText(2, b.key)
                                        .Bind(3, static_cast<int>(LeadStatus::kRejected))
                                        .Step());
  }
  const int64_t now = NowMs();
  LeadUpsertResult result;
  {
    HW_ASSIGN_OR_RETURN(
        Statement q,
        Statement::Prepare(
            db, "SELECT id, status, confidence FROM leads WHERE case_a = ? AND case_b = ?"));
    HW_ASSIGN_OR_RETURN(bool exists, q.Bind(1, a.case_id).Bind(2, b.case_id).Step());
    if (!exists) {
      if (suppressed) return LeadUpsertResult{0, LeadUpsert::kSuppressed};
      HW_ASSIGN_OR_RETURN(
          Statement ins,
          Statement::Prepare(db,
                             "INSERT INTO leads (case_a, case_b, face_a, face_b, distance, "
                             "confidence, status, created_ms, updated_ms, id) VALUES "
                             "(?, ?, ?, ?, ?, ?, ?, ?, ?, " HW_NEXT_ID_SQL("leads") ")"));
      HW_RETURN_IF_ERROR(ins.Bind(1, a.case_id)
                             .Bind(2, b.case_id)
                             .Bind(3, a.face)
                             .Bind(4, b.face)
                             .Bind(5, distance)
                             .Bind(6, confidence)
                             .Bind(7, static_cast<int>(LeadStatus::kOpen))
                             .Bind(8, now)
                             .Bind(9, now)
                             .Run());
      result = {static_cast<int64_t>(sqlite3_last_insert_rowid(db)), LeadUpsert::kCreated};
    } else {
      result.lead_id = q.Int(0);
      const auto status = static_cast<LeadStatus>(q.Int(1));
      const double best = q.Real(2);
      HW_ASSIGN_OR_RETURN(
          Statement seen,
          Statement::Prepare(db,
                             "SELECT 1 FROM lead_evidence WHERE lead_id = ? AND face_a = ? AND "
                             "face_b = ?"));
      HW_ASSIGN_OR_RETURN(bool known,
                          seen.Bind(1, result.lead_id).Bind(2, a.face).Bind(3, b.face).Step());
      if (known) return LeadUpsertResult{result.lead_id, LeadUpsert::kUnchanged};
      if (suppressed) return LeadUpsertResult{result.lead_id, LeadUpsert::kSuppressed};
      const bool reopen =
          status == LeadStatus::kRejected || status == LeadStatus::kNeedsBetterPhoto;
      result.outcome = reopen ? LeadUpsert::kReopened : LeadUpsert::kEvidenceAdded;
      HW_ASSIGN_OR_RETURN(
          Statement up,
          Statement::Prepare(
              db, confidence > best
                      ? "UPDATE leads SET status = ?1, updated_ms = ?2, face_a = ?3, face_b = ?4, "
                        "distance = ?5, confidence = ?6 WHERE id = ?7"
                      : "UPDATE leads SET status = ?1, updated_ms = ?2 WHERE id = ?7"));
      up.Bind(1, static_cast<int>(reopen ? LeadStatus::kOpen : status))
          .Bind(2, now)
          .Bind(7, result.lead_id);
      if (confidence > best) {
        up.Bind(3, a.face).Bind(4, b.face).Bind(5, distance).Bind(6, confidence);
      }
      HW_RETURN_IF_ERROR(up.Run());
    }
  }
  HW_ASSIGN_OR_RETURN(
      Statement ev,
      Statement::Prepare(db,
                         "INSERT INTO lead_evidence (lead_id, face_a, face_b, key_a, key_b, "
                         "distance, confidence, time_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"));
  HW_RETURN_IF_ERROR(ev.Bind(1, result.lead_id)
                         .Bind(2, a.face)
                         .Bind(3, b.face)
                         .BindText(4, a.key)
                         .BindText(5, b.key)
                         .Bind(6, distance)
                         .Bind(7, confidence)
                         .Bind(8, now)
                         .Run());
  HW_RETURN_IF_ERROR(txn.Commit());
  return result;
}

absl::StatusOr<LeadPage> SqliteCatalog::ListLeads(const LeadQuery& query) {
  double after_conf = 0;
  int64_t after_id = 0;
  HW_RETURN_IF_ERROR(ValidateLeadQuery(query, &after_conf, &after_id));

  // Fixed fragments only; every value is a bound parameter.
  std::string sql = absl::StrCat("SELECT ", kLeadColumns,
                                 " FROM leads l JOIN cases ca ON ca.id = l.case_a "
                                 "JOIN cases cb ON cb.id = l.case_b WHERE l.confidence >= ?1");
  if (query.status) absl::StrAppend(&sql, " AND l.status = ?2");
  if (!query.place_contains.empty()) {
    absl::StrAppend(&sql,
                    " AND (instr(lower(coalesce(ca.place, '')), lower(?3)) > 0 OR "
                    "instr(lower(coalesce(cb.place, '')), lower(?3)) > 0)");
  }
  if (!query.event_from.empty() || !query.event_to.empty()) {
    auto within = [&](const char* c) {
      std::string w = absl::StrCat("(", c, ".event_date IS NOT NULL");
      if (!query.event_from.empty()) absl::StrAppend(&w, " AND ", c, ".event_date >= ?4");
      if (!query.event_to.empty()) absl::StrAppend(&w, " AND ", c, ".event_date <= ?5");
      return w + ")";
    };
    absl::StrAppend(&sql, " AND (", within("ca"), " OR ", within("cb"), ")");
  }
  if (!query.page_token.empty()) {
    absl::StrAppend(&sql, " AND (l.confidence < ?6 OR (l.confidence = ?6 AND l.id > ?7))");
  }
  absl::StrAppend(&sql, " ORDER BY l.confidence DESC, l.id LIMIT ?8");

  HW_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  HW_ASSIGN_OR_RETURN(Statement q, Statement::Prepare(r.db(), sql));
  q.Bind(1, query.min_confidence);
  if (query.status) q.Bind(2, static_cast<int>(*query.status));
  if (!query.place_contains.empty()) q.BindText(3, query.place_contains);
  if (!query.event_from.empty()) q.BindText(4, query.event_from);
  if (!query.event_to.empty()) q.BindText(5, query.event_to);
  if (!query.page_token.empty()) q.Bind(6, after_conf).Bind(7, after_id);
  q.Bind(8, query.page_size + 1);
  LeadPage page;
  while (true) {
    HW_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    if (static_cast<int>(page.leads.size()) == query.page_size) {
      const Lead& last = page.leads.back();
      page.next_page_token = LeadPageToken(last);
      break;
    }
    page.leads.push_back(ReadLead(q));
  }
  return page;
}

absl::StatusOr<Lead> SqliteCatalog::GetLead(int64_t id) {
  HW_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  HW_RETURN_IF_ERROR(internal::Exec(r.db(), "BEGIN"));
  return LoadLead(r.db(), id);
}

absl::StatusOr<std::vector<Lead>> SqliteCatalog::LeadsOfCase(int64_t case_id) {
  HW_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  HW_RETURN_IF_ERROR(internal::Exec(r.db(), "BEGIN"));  // one snapshot for every lead
  std::vector<int64_t> ids;
  {
    HW_ASSIGN_OR_RETURN(Statement q,
                        Statement::Prepare(r.db(),
                                           "SELECT id FROM leads WHERE case_a = ?1 UNION "
                                           "SELECT id FROM leads WHERE case_b = ?1 ORDER BY 1"));
    q.Bind(1, case_id);
    while (true) {
      HW_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      ids.push_back(q.Int(0));
    }
  }
  std::vector<Lead> out;
  for (int64_t id : ids) {
    HW_ASSIGN_OR_RETURN(Lead lead, LoadLead(r.db(), id));
    out.push_back(std::move(lead));
  }
  return out;
}

absl::StatusOr<std::map<LeadStatus, int64_t>> SqliteCatalog::LeadCounts() {
  HW_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  HW_ASSIGN_OR_RETURN(Statement q,
                      Statement::Prepare(r.db(), "SELECT status, count(*) FROM leads GROUP BY status"));
  std::map<LeadStatus, int64_t> counts;
  for (;;) {
    HW_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    counts[static_cast<LeadStatus>(q.Int(0))] = q.Int(1);
  }
  return counts;
}

absl::StatusOr<Lead> SqliteCatalog::ReviewLead(int64_t id, LeadStatus decision,
                                               const std::string& note, const std::string& reviewer,
                                               const std::string& role) {
  HW_RETURN_IF_ERROR(ValidateReview(decision, note, reviewer, role));
  absl::MutexLock l(&write_mu_);
  sqlite3* db = writer_;
  Transaction txn(db);
  HW_RETURN_IF_ERROR(txn.status());
  const int64_t now = NowMs();
  {
    HW_ASSIGN_OR_RETURN(Statement q, Statement::Prepare(db,
                                                        "UPDATE leads SET status = ?, "
                                                        "updated_ms = ? WHERE id = ?"));
    HW_RETURN_IF_ERROR(q.Bind(1, static_cast<int>(decision)).Bind(2, now).Bind(3, id).Run());
    if (sqlite3_changes(db) == 0) {
      return absl::NotFoundError(absl::StrCat("lead ", id, " does not exist"));
    }
  }
  {
    HW_ASSIGN_OR_RETURN(
        Statement q,
        Statement::Prepare(db,
                           "INSERT INTO lead_reviews (lead_id, decision, note, reviewer, time_ms) "
                           "VALUES (?, ?, ?, ?, ?)"));
    HW_RETURN_IF_ERROR(q.Bind(1, id)
                           .Bind(2, static_cast<int>(decision))
                           .BindTextOrNull(3, note)
                           .BindText(4, reviewer)
                           .Bind(5, now)
                           .Run());
  }
  {
    // The note stays in lead_reviews (deleted with the case); the audit keeps the decision.
    HW_ASSIGN_OR_RETURN(
        Statement q,
        Statement::Prepare(db,
                           "INSERT INTO audit (time_ms, actor, role, action, target_type, "
                           "target_id, detail) VALUES (?, ?, ?, 'ReviewLead', 'lead', ?, ?)"));
    HW_RETURN_IF_ERROR(q.Bind(1, now)
                           .BindText(2, reviewer)
                           .BindTextOrNull(3, role)
                           .Bind(4, id)
                           .BindText(5, absl::StrCat("decision=", DecisionName(decision)))
                           .Run());
  }
  HW_ASSIGN_OR_RETURN(Lead lead, LoadLead(db, id));
  HW_RETURN_IF_ERROR(txn.Commit());
  return lead;
}

absl::StatusOr<int64_t> SqliteCatalog::ClusterSightingFace(
    int64_t face_id, const std::vector<int64_t>& neighbour_face_ids) {
  absl::MutexLock l(&write_mu_);
  sqlite3* db = writer_;
  Transaction txn(db);
  HW_RETURN_IF_ERROR(txn.status());
  HW_ASSIGN_OR_RETURN(Statement exists, Statement::Prepare(db, "SELECT 1 FROM faces WHERE id = ?"));
  HW_ASSIGN_OR_RETURN(
      Statement cluster_of,
      Statement::Prepare(db, "SELECT cluster_id FROM sighting_clusters WHERE face_id = ?"));
  std::vector<int64_t> members = {face_id};
  std::set<int64_t> clusters;
  {
    HW_ASSIGN_OR_RETURN(bool row, exists.Bind(1, face_id).Step());
    if (!row) return absl::NotFoundError(absl::StrCat("face ", face_id, " does not exist"));
  }
  for (int64_t n : neighbour_face_ids) {
    if (n == face_id) continue;
    exists.Reset();
    HW_ASSIGN_OR_RETURN(bool row, exists.Bind(1, n).Step());
    if (row) members.push_back(n);  // deleted meanwhile: skipped
  }
  for (int64_t m : members) {
    cluster_of.Reset();
    HW_ASSIGN_OR_RETURN(bool row, cluster_of.Bind(1, m).Step());
    if (row) clusters.insert(cluster_of.Int(0));
  }
  int64_t target = 0;
  if (!clusters.empty()) {
    target = *clusters.begin();
  } else {
    HW_ASSIGN_OR_RETURN(
        Statement q,
        Statement::Prepare(db, "SELECT coalesce(max(cluster_id), 0) + 1 FROM sighting_clusters"));
    HW_ASSIGN_OR_RETURN(bool row, q.Step());
    target = row ? q.Int(0) : 1;
  }
  HW_ASSIGN_OR_RETURN(
      Statement merge,
      Statement::Prepare(db, "UPDATE sighting_clusters SET cluster_id = ? WHERE cluster_id = ?"));
  for (int64_t c : clusters) {
    if (c == target) continue;
    merge.Reset();
    HW_RETURN_IF_ERROR(merge.Bind(1, target).Bind(2, c).Run());
  }
  HW_ASSIGN_OR_RETURN(
      Statement put,
      Statement::Prepare(db,
                         "INSERT OR REPLACE INTO sighting_clusters (face_id, cluster_id) "
                         "VALUES (?, ?)"));
  for (int64_t m : members) {
    put.Reset();
    HW_RETURN_IF_ERROR(put.Bind(1, m).Bind(2, target).Run());
  }
  HW_RETURN_IF_ERROR(txn.Commit());
  return target;
}

absl::StatusOr<std::vector<int64_t>> SqliteCatalog::SightingClusterCases(int64_t face_id) {
  HW_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  HW_ASSIGN_OR_RETURN(
      Statement q,
      Statement::Prepare(r.db(),
                         "SELECT DISTINCT p.case_id FROM sighting_clusters s JOIN faces f ON "
                         "f.id = s.face_id JOIN photos p ON p.id = f.photo_id WHERE s.cluster_id "
                         "= (SELECT cluster_id FROM sighting_clusters WHERE face_id = ?) "
                         "ORDER BY p.case_id"));
  q.Bind(1, face_id);
  std::vector<int64_t> out;
  while (true) {
    HW_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    out.push_back(q.Int(0));
  }
  return out;
}

}  // namespace homeward::store::internal
