#include "server/internal/case_export.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "server/internal/convert.h"
#include "server/internal/tar_writer.h"

namespace homeward::server::internal {
namespace {

using nlohmann::json;

const char* KindText(store::CaseKind k) {
  switch (k) {
    case store::CaseKind::kMissing:
      return "MISSING";
    case store::CaseKind::kFound:
      return "FOUND";
    case store::CaseKind::kSighting:
      return "SIGHTING";
  }
  return "UNKNOWN";
}

const char* StatusText(store::CaseStatus s) {
  switch (s) {
    case store::CaseStatus::kOpen:
      return "OPEN";
    case store::CaseStatus::kReunited:
      return "REUNITED";
    case store::CaseStatus::kClosed:
      return "CLOSED";
    case store::CaseStatus::kWithdrawn:
      return "WITHDRAWN";
  }
  return "UNKNOWN";
}

const char* SexText(store::Sex s) {
  switch (s) {
    case store::Sex::kFemale:
      return "FEMALE";
    case store::Sex::kMale:
      return "MALE";
    case store::Sex::kUnknown:
      break;
  }
  return "UNKNOWN";
}

const char* LeadText(store::LeadStatus s) {
  switch (s) {
    case store::LeadStatus::kOpen:
      return "LEAD_OPEN";
    case store::LeadStatus::kConfirmedForDna:
      return "LEAD_CONFIRMED_FOR_DNA";
    case store::LeadStatus::kRejected:
      return "LEAD_REJECTED";
    case store::LeadStatus::kNeedsBetterPhoto:
      return "LEAD_NEEDS_BETTER_PHOTO";
  }
  return "UNKNOWN";
}

// The file extension of an image by its magic bytes (the export does not decode photos).
const char* Extension(const std::string& b) {
  if (b.rfind("\xFF\xD8\xFF", 0) == 0) return "jpg";
  if (b.rfind("\x89PNG", 0) == 0) return "png";
  if (b.rfind("GIF8", 0) == 0) return "gif";
  if (b.rfind("BM", 0) == 0) return "bmp";
  if (b.size() >= 12 && b.compare(0, 4, "RIFF") == 0 && b.compare(8, 4, "WEBP") == 0) {
    return "webp";
  }
  return "bin";
}

json CaseJson(const store::Case& c) {
  return json{{"id", absl::StrCat(c.id)},
              {"kind", KindText(c.kind)},
              {"display_name", c.display_name},
              {"sex", SexText(c.sex)},
              {"date_of_birth", c.date_of_birth},
              {"birth_year_min", c.birth_year_min},
              {"birth_year_max", c.birth_year_max},
              {"event_date", c.event_date},
              {"place", c.place},
              {"notes", c.notes},
              {"reporter_contact", c.reporter_contact},
              {"owner_key_id", c.owner_key_id},
              {"status", StatusText(c.status)},
              {"created_at", Rfc3339FromMs(c.created_ms)},
              {"updated_at", Rfc3339FromMs(c.updated_ms)}};
}

json FaceJson(const store::Face& f) {
  return json{{"id", absl::StrCat(f.id)},
              {"box", {{"x", f.box_x}, {"y", f.box_y}, {"width", f.box_w}, {"height", f.box_h}}},
              {"landmarks", f.landmarks},
              {"width_px", f.width_px},
              {"sharpness", f.sharpness},
              {"yaw_deg", f.yaw_deg},
              {"detector_score", f.detector_score},
              {"usable", f.usable},
              {"model_id", f.model_id},
              {"descriptor", f.descriptor}};
}

json AuditJson(const store::AuditEntry& e) {
  return json{{"id", absl::StrCat(e.id)},
              {"time", Rfc3339FromMs(e.time_ms)},
              {"actor", e.actor},
              {"role", e.role},
              {"action", e.action},
              {"target_type", e.target_type},
              {"target_id", absl::StrCat(e.target_id)},
              {"detail", e.detail}};
}

}  // namespace

absl::StatusOr<CaseExport> ExportCase(store::Catalog& catalog, int64_t case_id,
                                      const std::string& exported_by, int64_t now_ms,
                                      int64_t max_bytes) {
  HW_ASSIGN_OR_RETURN(store::Case c, catalog.GetCase(case_id));
  HW_ASSIGN_OR_RETURN(std::vector<store::Photo> photos, catalog.ListPhotos(case_id));
  TarWriter tar(now_ms / 1000);
  CaseExport out;
  json doc;
  doc["format"] = "homeward-case-export-1";
  doc["exported_at"] = Rfc3339FromMs(now_ms);
  doc["exported_by"] = exported_by;
  doc["case"] = CaseJson(c);

  std::set<int64_t> own_faces;
  std::vector<std::pair<std::string, int64_t>> targets = {{"case", case_id}};
  json photos_json = json::array();
  int64_t bytes_so_far = 0;
  for (const store::Photo& p : photos) {
    HW_ASSIGN_OR_RETURN(store::Catalog::PhotoWithBytes got, catalog.GetPhoto(p.id));
    bytes_so_far += static_cast<int64_t>(got.bytes.size()) + 1024;
    if (bytes_so_far > max_bytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat("case ", case_id, "'s photos pass the export limit of ", max_bytes,
                       " bytes: fetch them one by one with GetPhoto"));
    }
    const std::string file = absl::StrCat("photos/", p.id, ".", Extension(got.bytes));
    HW_RETURN_IF_ERROR(tar.Add(file, got.bytes));
    ++out.photos;
    HW_ASSIGN_OR_RETURN(std::vector<store::Face> faces, catalog.ListFaces(p.id));
    json faces_json = json::array();
    for (const store::Face& f : faces) {
      own_faces.insert(f.id);
      targets.emplace_back("face", f.id);
      faces_json.push_back(FaceJson(f));
    }
    targets.emplace_back("photo", p.id);
    photos_json.push_back(json{{"id", absl::StrCat(p.id)},
                               {"file", file},
                               {"sha256", p.sha256},
                               {"bytes", got.bytes.size()},
                               {"date_taken", p.date_taken},
                               {"age_min", p.age_min},
                               {"age_max", p.age_max},
                               {"age_estimated", p.age_estimated},
                               {"source", p.source},
                               {"width", p.width},
                               {"height", p.height},
                               {"created_at", Rfc3339FromMs(p.created_ms)},
                               {"faces", std::move(faces_json)}});
  }
  doc["photos"] = std::move(photos_json);

  HW_ASSIGN_OR_RETURN(std::vector<store::Lead> leads, catalog.LeadsOfCase(case_id));
  json leads_json = json::array();
  for (const store::Lead& l : leads) {
    const bool side_a = l.case_a == case_id;
    json evidence = json::array();
    for (const store::LeadEvidence& e : l.evidence) {
      evidence.push_back(json{{"face_id", absl::StrCat(side_a ? e.face_a : e.face_b)},
                              {"distance", e.distance},
                              {"confidence", e.confidence},
                              {"added_at", Rfc3339FromMs(e.time_ms)}});
    }
    json reviews = json::array();
    for (const store::LeadReview& r : l.reviews) {
      reviews.push_back(json{{"decision", LeadText(r.decision)},
                             {"note", r.note},
                             {"reviewer", r.reviewer},
                             {"reviewed_at", Rfc3339FromMs(r.time_ms)}});
    }
    leads_json.push_back(json{{"id", absl::StrCat(l.id)},
                              {"status", LeadText(l.status)},
                              {"face_id", absl::StrCat(side_a ? l.face_a : l.face_b)},
                              {"other_side", "another case (withheld: not this case's data)"},
                              {"distance", l.distance},
                              {"confidence", l.confidence},
                              {"created_at", Rfc3339FromMs(l.created_ms)},
                              {"updated_at", Rfc3339FromMs(l.updated_ms)},
                              {"evidence", std::move(evidence)},
                              {"reviews", std::move(reviews)}});
    targets.emplace_back("lead", l.id);
  }
  doc["leads"] = std::move(leads_json);

  // The audit rows naming the case, its photos, faces and leads, in the order written.
  std::vector<store::AuditEntry> rows;
  for (const auto& [type, id] : targets) {
    int64_t after = 0;
    while (true) {
      HW_ASSIGN_OR_RETURN(std::vector<store::AuditEntry> page,
                          catalog.ListAudit(after, 10000, type, id));
      if (page.empty()) break;
      after = page.back().id;
      rows.insert(rows.end(), page.begin(), page.end());
    }
  }
  std::sort(rows.begin(), rows.end(),
            [](const store::AuditEntry& a, const store::AuditEntry& b) { return a.id < b.id; });
  json audit_json = json::array();
  for (const store::AuditEntry& e : rows) audit_json.push_back(AuditJson(e));
  out.audit_rows = static_cast<int>(rows.size());
  doc["audit"] = std::move(audit_json);

  // Invalid UTF-8 cannot reach the catalog (the API refuses it); replace rather than throw.
  HW_RETURN_IF_ERROR(tar.Add("case.json", doc.dump(2, ' ', false, json::error_handler_t::replace)));
  out.archive = std::move(tar).Finish();
  return out;
}

}  // namespace homeward::server::internal
