// PostgresCatalog: leads, their evidence and reviews, and sighting clusters (see
// postgres_catalog.h).
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "store/internal/validate.h"
#include "store/postgres/postgres_catalog.h"
#include "store/postgres/rows.h"

namespace homeward::store::internal {
namespace {

constexpr char kLeadColumns[] =
    "l.id, l.case_a, l.case_b, l.face_a, l.face_b, l.distance, l.confidence, l.status, "
    "l.created_ms, l.updated_ms";

Lead ReadLead(const pg::Result& r, int row) {
  Lead l;
  l.id = r.Int(row, 0);
  l.case_a = r.Int(row, 1);
  l.case_b = r.Int(row, 2);
  l.face_a = r.Int(row, 3);
  l.face_b = r.Int(row, 4);
  l.distance = r.Real(row, 5);
  l.confidence = r.Real(row, 6);
  l.status = static_cast<LeadStatus>(r.Int(row, 7));
  l.created_ms = r.Int(row, 8);
  l.updated_ms = r.Int(row, 9);
  return l;
}

// The lead with its evidence and reviews, read inside the caller's transaction.
absl::StatusOr<Lead> LoadLead(pg::Connection& db, int64_t id) {
  const pg::Params by_id = pg::Params().Int(id);
  HW_ASSIGN_OR_RETURN(
      pg::Result l,
      db.Exec(absl::StrCat("SELECT ", kLeadColumns, " FROM leads l WHERE l.id = $1"), by_id));
  if (l.rows() == 0) return absl::NotFoundError(absl::StrCat("lead ", id, " does not exist"));
  Lead lead = ReadLead(l, 0);
  HW_ASSIGN_OR_RETURN(pg::Result e, db.Exec("SELECT face_a, face_b, distance, confidence, time_ms "
                                            "FROM lead_evidence WHERE lead_id = $1 ORDER BY id",
                                            by_id));
  for (int i = 0; i < e.rows(); ++i) {
    lead.evidence.push_back(
        LeadEvidence{e.Int(i, 0), e.Int(i, 1), e.Real(i, 2), e.Real(i, 3), e.Int(i, 4)});
  }
  HW_ASSIGN_OR_RETURN(pg::Result v, db.Exec("SELECT decision, note, reviewer, time_ms FROM "
                                            "lead_reviews WHERE lead_id = $1 ORDER BY id",
                                            by_id));
  for (int i = 0; i < v.rows(); ++i) {
    lead.reviews.push_back(
        LeadReview{static_cast<LeadStatus>(v.Int(i, 0)), v.Text(i, 1), v.Text(i, 2), v.Int(i, 3)});
  }
  return lead;
}

}  // namespace

absl::StatusOr<LeadUpsertResult> PostgresCatalog::UpsertLead(int64_t face_x, int64_t face_y,
                                                             double distance, double confidence) {
  HW_RETURN_IF_ERROR(ValidateLeadScore(distance, confidence));
  struct Side {
    int64_t face = 0, case_id = 0;
    std::string key;  // the photo content and the face in it: "sha256/x,y,w,h"
  };
  LeadUpsertResult result;
  // Under the write lock: however many servers see the same face pair, one lead is created
  // and the pair is recorded once.
  HW_RETURN_IF_ERROR(Write([&](pg::Connection& db) -> absl::Status {
    auto side = [&](int64_t face) -> absl::StatusOr<Side> {
      HW_ASSIGN_OR_RETURN(
          pg::Result r,
          db.Exec("SELECT p.case_id, p.sha256, f.box_x, f.box_y, f.box_w, f.box_h FROM faces f "
                  "JOIN photos p ON p.id = f.photo_id WHERE f.id = $1",
                  pg::Params().Int(face)));
      if (r.rows() == 0) return absl::NotFoundError(absl::StrCat("face ", face, " does not exist"));
      return Side{face, r.Int(0, 0),
                  absl::StrCat(r.Text(0, 1), "/", r.Int(0, 2), ",", r.Int(0, 3), ",", r.Int(0, 4),
                               ",", r.Int(0, 5))};
    };
    HW_ASSIGN_OR_RETURN(Side a, side(face_x));
    HW_ASSIGN_OR_RETURN(Side b, side(face_y));
    if (a.case_id == b.case_id) {
      return absl::InvalidArgumentError(
          absl::StrCat("faces ", face_x, " and ", face_y, " belong to one case; a lead joins two"));
    }
    if (a.case_id > b.case_id) std::swap(a, b);
    HW_ASSIGN_OR_RETURN(
        pg::Result sup,
        db.Exec("SELECT 1 FROM lead_evidence e JOIN leads l ON l.id = e.lead_id WHERE l.status = "
                "$3 AND ((e.key_a = $1 AND e.key_b = $2) OR (e.key_a = $2 AND e.key_b = $1)) "
                "LIMIT 1",
                pg::Params().Text(a.key).Text(b.key).Int(static_cast<int>(LeadStatus::kRejected))));
    const bool suppressed = sup.rows() > 0;
    const int64_t now = NowMs();
    HW_ASSIGN_OR_RETURN(pg::Result existing,
                        db.Exec("SELECT id, status, confidence FROM leads WHERE case_a = $1 AND "
                                "case_b = $2",
                                pg::Params().Int(a.case_id).Int(b.case_id)));
    if (existing.rows() == 0) {
      if (suppressed) {
        result = {0, LeadUpsert::kSuppressed};
        return absl::OkStatus();
      }
      HW_ASSIGN_OR_RETURN(
          pg::Result ins,
          db.Exec("INSERT INTO leads (case_a, case_b, face_a, face_b, distance, confidence, "
                  "status, created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) "
                  "RETURNING id",
                  pg::Params()
                      .Int(a.case_id)
                      .Int(b.case_id)
                      .Int(a.face)
                      .Int(b.face)
                      .Real(distance)
                      .Real(confidence)
                      .Int(static_cast<int>(LeadStatus::kOpen))
                      .Int(now)));
      result = {ins.Int(0, 0), LeadUpsert::kCreated};
    } else {
      result.lead_id = existing.Int(0, 0);
      const auto status = static_cast<LeadStatus>(existing.Int(0, 1));
      const double best = existing.Real(0, 2);
      HW_ASSIGN_OR_RETURN(pg::Result seen,
                          db.Exec("SELECT 1 FROM lead_evidence WHERE lead_id = $1 AND face_a = $2 "
                                  "AND face_b = $3",
                                  pg::Params().Int(result.lead_id).Int(a.face).Int(b.face)));
      if (seen.rows() > 0) {
        result.outcome = LeadUpsert::kUnchanged;
        return absl::OkStatus();
      }
      if (suppressed) {
        result.outcome = LeadUpsert::kSuppressed;
        return absl::OkStatus();
      }
      const bool reopen =
          status == LeadStatus::kRejected || status == LeadStatus::kNeedsBetterPhoto;
      result.outcome = reopen ? LeadUpsert::kReopened : LeadUpsert::kEvidenceAdded;
      pg::Params up;
      up.Int(static_cast<int>(reopen ? LeadStatus::kOpen : status)).Int(now).Int(result.lead_id);
      if (confidence > best) {
        up.Int(a.face).Int(b.face).Real(distance).Real(confidence);
        HW_RETURN_IF_ERROR(db.Exec("UPDATE leads SET status = $1, updated_ms = $2, face_a = $4, "
                                   "face_b = $5, distance = $6, confidence = $7 WHERE id = $3",
                                   up)
                               .status());
      } else {
        HW_RETURN_IF_ERROR(
            db.Exec("UPDATE leads SET status = $1, updated_ms = $2 WHERE id = $3", up).status());
      }
    }
    return db
        .Exec(
            "INSERT INTO lead_evidence (lead_id, face_a, face_b, key_a, key_b, distance, "
            "confidence, time_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            pg::Params()
                .Int(result.lead_id)
                .Int(a.face)
                .Int(b.face)
                .Text(a.key)
                .Text(b.key)
                .Real(distance)
                .Real(confidence)
                .Int(now))
        .status();
  }));
  return result;
}

absl::StatusOr<LeadPage> PostgresCatalog::ListLeads(const LeadQuery& query) {
  double after_conf = 0;
  int64_t after_id = 0;
  HW_RETURN_IF_ERROR(ValidateLeadQuery(query, &after_conf, &after_id));
  // Fixed fragments only; every value is a bound parameter, numbered as it is appended.
  pg::Params p;
  p.Real(query.min_confidence);
  std::string sql = absl::StrCat("SELECT ", kLeadColumns,
                                 " FROM leads l JOIN cases ca ON ca.id = l.case_a "
                                 "JOIN cases cb ON cb.id = l.case_b WHERE l.confidence >= $1");
  auto param = [&]() { return absl::StrCat("$", p.size()); };
  if (query.status) {
    p.Int(static_cast<int>(*query.status));
    absl::StrAppend(&sql, " AND l.status = ", param());
  }
  if (!query.place_contains.empty()) {
    p.Text(query.place_contains);
    const std::string n = param();
    absl::StrAppend(&sql, " AND (strpos(lower(coalesce(ca.place, '')), lower(", n,
                    ")) > 0 OR strpos(lower(coalesce(cb.place, '')), lower(", n, ")) > 0)");
  }
  if (!query.event_from.empty() || !query.event_to.empty()) {
    std::string from, to;
    if (!query.event_from.empty()) {
      p.Text(query.event_from);
      from = param();
    }
    if (!query.event_to.empty()) {
      p.Text(query.event_to);
      to = param();
    }
    auto within = [&](const char* c) {
      std::string w = absl::StrCat("(", c, ".event_date IS NOT NULL");
      if (!from.empty()) absl::StrAppend(&w, " AND ", c, ".event_date >= ", from);
      if (!to.empty()) absl::StrAppend(&w, " AND ", c, ".event_date <= ", to);
      return w + ")";
    };
    absl::StrAppend(&sql, " AND (", within("ca"), " OR ", within("cb"), ")");
  }
  if (!query.page_token.empty()) {
    p.Real(after_conf);
    const std::string c = param();
    p.Int(after_id);
    absl::StrAppend(&sql, " AND (l.confidence < ", c, " OR (l.confidence = ", c, " AND l.id > ",
                    param(), "))");
  }
  p.Int(query.page_size + 1);
  absl::StrAppend(&sql, " ORDER BY l.confidence DESC, l.id LIMIT ", param());
  HW_ASSIGN_OR_RETURN(pg::Result r, Query(sql, p));
  LeadPage page;
  for (int i = 0; i < r.rows(); ++i) {
    if (static_cast<int>(page.leads.size()) == query.page_size) {
      page.next_page_token = LeadPageToken(page.leads.back());
      break;
    }
    page.leads.push_back(ReadLead(r, i));
  }
  return page;
}

absl::StatusOr<Lead> PostgresCatalog::GetLead(int64_t id) {
  Lead lead;
  HW_RETURN_IF_ERROR(Read([&](pg::Connection& db) -> absl::Status {
    HW_ASSIGN_OR_RETURN(lead, LoadLead(db, id));
    return absl::OkStatus();
  }));
  return lead;
}

absl::StatusOr<std::vector<Lead>> PostgresCatalog::LeadsOfCase(int64_t case_id) {
  std::vector<Lead> out;
  HW_RETURN_IF_ERROR(Read([&](pg::Connection& db) -> absl::Status {
    out.clear();
    HW_ASSIGN_OR_RETURN(pg::Result r,
                        db.Exec("SELECT id FROM leads WHERE case_a = $1 UNION SELECT id FROM "
                                "leads WHERE case_b = $1 ORDER BY 1",
                                pg::Params().Int(case_id)));
    for (int i = 0; i < r.rows(); ++i) {
      HW_ASSIGN_OR_RETURN(Lead lead, LoadLead(db, r.Int(i, 0)));
      out.push_back(std::move(lead));
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::map<LeadStatus, int64_t>> PostgresCatalog::LeadCounts() {
  HW_ASSIGN_OR_RETURN(pg::Result r, Query("SELECT status, count(*) FROM leads GROUP BY status"));
  std::map<LeadStatus, int64_t> counts;
  for (int i = 0; i < r.rows(); ++i) counts[static_cast<LeadStatus>(r.Int(i, 0))] = r.Int(i, 1);
  return counts;
}

absl::StatusOr<Lead> PostgresCatalog::ReviewLead(int64_t id, LeadStatus decision,
                                                 const std::string& note,
                                                 const std::string& reviewer,
                                                 const std::string& role) {
  HW_RETURN_IF_ERROR(ValidateReview(decision, note, reviewer, role));
  Lead lead;
  HW_RETURN_IF_ERROR(Write([&](pg::Connection& db) -> absl::Status {
    const int64_t now = NowMs();
    HW_ASSIGN_OR_RETURN(pg::Result up,
                        db.Exec("UPDATE leads SET status = $1, updated_ms = $2 WHERE id = $3",
                                pg::Params().Int(static_cast<int>(decision)).Int(now).Int(id)));
    if (up.affected() == 0)
      return absl::NotFoundError(absl::StrCat("lead ", id, " does not exist"));
    HW_RETURN_IF_ERROR(db.Exec("INSERT INTO lead_reviews (lead_id, decision, note, reviewer, "
                               "time_ms) VALUES ($1, $2, $3, $4, $5)",
                               pg::Params()
                                   .Int(id)
                                   .Int(static_cast<int>(decision))
                                   .TextOrNull(note)
                                   .Text(reviewer)
                                   .Int(now))
                           .status());
    // The note stays in lead_reviews (deleted with the case); the audit keeps the decision.
    AuditEntry entry;
    entry.actor = reviewer;
    entry.role = role;
    entry.action = "ReviewLead";
    entry.target_type = "lead";
    entry.target_id = id;
    entry.detail = absl::StrCat("decision=", DecisionName(decision));
    HW_RETURN_IF_ERROR(InsertAuditRow(db, entry).status());
    HW_ASSIGN_OR_RETURN(lead, LoadLead(db, id));
    return absl::OkStatus();
  }));
  return lead;
}

absl::StatusOr<int64_t> PostgresCatalog::ClusterSightingFace(
    int64_t face_id, const std::vector<int64_t>& neighbour_face_ids) {
  int64_t target = 0;
  HW_RETURN_IF_ERROR(Write([&](pg::Connection& db) -> absl::Status {
    std::vector<int64_t> members = {face_id};
    {
      HW_ASSIGN_OR_RETURN(pg::Result r,
                          db.Exec("SELECT 1 FROM faces WHERE id = $1", pg::Params().Int(face_id)));
      if (r.rows() == 0)
        return absl::NotFoundError(absl::StrCat("face ", face_id, " does not exist"));
    }
    for (int64_t n : neighbour_face_ids) {
      if (n == face_id) continue;
      HW_ASSIGN_OR_RETURN(pg::Result r,
                          db.Exec("SELECT 1 FROM faces WHERE id = $1", pg::Params().Int(n)));
      if (r.rows() > 0) members.push_back(n);  // deleted meanwhile: skipped
    }
    std::set<int64_t> clusters;
    for (int64_t m : members) {
      HW_ASSIGN_OR_RETURN(pg::Result r, db.Exec("SELECT cluster_id FROM sighting_clusters WHERE "
                                                "face_id = $1",
                                                pg::Params().Int(m)));
      if (r.rows() > 0) clusters.insert(r.Int(0, 0));
    }
    if (!clusters.empty()) {
      target = *clusters.begin();
    } else {
      HW_ASSIGN_OR_RETURN(
          pg::Result r, db.Exec("SELECT coalesce(max(cluster_id), 0) + 1 FROM sighting_clusters"));
      target = r.Int(0, 0);
    }
    for (int64_t c : clusters) {
      if (c == target) continue;
      HW_RETURN_IF_ERROR(db.Exec("UPDATE sighting_clusters SET cluster_id = $1 WHERE "
                                 "cluster_id = $2",
                                 pg::Params().Int(target).Int(c))
                             .status());
    }
    for (int64_t m : members) {
      HW_RETURN_IF_ERROR(db.Exec("INSERT INTO sighting_clusters (face_id, cluster_id) VALUES "
                                 "($1, $2) ON CONFLICT (face_id) DO UPDATE SET cluster_id = "
                                 "EXCLUDED.cluster_id",
                                 pg::Params().Int(m).Int(target))
                             .status());
    }
    return absl::OkStatus();
  }));
  return target;
}

absl::StatusOr<std::vector<int64_t>> PostgresCatalog::SightingClusterCases(int64_t face_id) {
  HW_ASSIGN_OR_RETURN(
      pg::Result r,
      Query("SELECT DISTINCT p.case_id FROM sighting_clusters s JOIN faces f ON f.id = s.face_id "
            "JOIN photos p ON p.id = f.photo_id WHERE s.cluster_id = (SELECT cluster_id FROM "
            "sighting_clusters WHERE face_id = $1) ORDER BY p.case_id",
            pg::Params().Int(face_id)));
  std::vector<int64_t> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(r.Int(i, 0));
  return out;
}

}  // namespace homeward::store::internal
