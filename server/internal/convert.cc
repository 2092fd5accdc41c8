#include "server/internal/convert.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "base/status_macros.h"

namespace homeward::server::internal {
namespace {

#define HW_SAME_CODE_(a, g) \
  static_assert(static_cast<int>(absl::StatusCode::a) == static_cast<int>(grpc::StatusCode::g))
HW_SAME_CODE_(kOk, OK);
HW_SAME_CODE_(kCancelled, CANCELLED);
HW_SAME_CODE_(kUnknown, UNKNOWN);
HW_SAME_CODE_(kInvalidArgument, INVALID_ARGUMENT);
HW_SAME_CODE_(kDeadlineExceeded, DEADLINE_EXCEEDED);
HW_SAME_CODE_(kNotFound, NOT_FOUND);
HW_SAME_CODE_(kAlreadyExists, ALREADY_EXISTS);
HW_SAME_CODE_(kPermissionDenied, PERMISSION_DENIED);
HW_SAME_CODE_(kResourceExhausted, RESOURCE_EXHAUSTED);
HW_SAME_CODE_(kFailedPrecondition, FAILED_PRECONDITION);
HW_SAME_CODE_(kAborted, ABORTED);
HW_SAME_CODE_(kOutOfRange, OUT_OF_RANGE);
HW_SAME_CODE_(kUnimplemented, UNIMPLEMENTED);
HW_SAME_CODE_(kInternal, INTERNAL);
HW_SAME_CODE_(kUnavailable, UNAVAILABLE);
HW_SAME_CODE_(kDataLoss, DATA_LOSS);
HW_SAME_CODE_(kUnauthenticated, UNAUTHENTICATED);
#undef HW_SAME_CODE_

constexpr size_t kMaxNameChars = 200, kMaxPlaceChars = 500, kMaxNotesChars = 10000,
                 kMaxContactChars = 500;
constexpr double kMaxAgeYears = 120;

absl::Status CheckLength(absl::string_view field, const std::string& s, size_t max) {
  if (s.size() > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is ", s.size(), " bytes: shorten it to at most ", max));
  }
  return absl::OkStatus();
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

absl::StatusOr<int64_t> ParseId(absl::string_view field, absl::string_view text) {
  auto bad = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " must be a positive decimal integer id such as \"42\" (got \"",
                     text.substr(0, 40), text.size() > 40 ? "...\")" : "\")"));
  };
  if (text.empty() || text.size() > 19 || text[0] == '0') return bad();
  int64_t v = 0;
  for (char ch : text) {
    if (ch < '0' || ch > '9') return bad();
    int d = ch - '0';
    if (v > (INT64_MAX - d) / 10) return bad();
    v = v * 10 + d;
  }
  return v;
}

absl::Status CheckDate(absl::string_view field, absl::string_view date) {
  if (date.empty()) return absl::OkStatus();
  auto bad = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " must be a date YYYY-MM-DD such as 2024-05-31, or empty"));
  };
  if (date.size() != 10 || date[4] != '-' || date[7] != '-') return bad();
  for (int i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (date[i] < '0' || date[i] > '9') return bad();
  }
  int y = std::stoi(std::string(date.substr(0, 4)));
  int m = std::stoi(std::string(date.substr(5, 2)));
  int d = std::stoi(std::string(date.substr(8, 2)));
  absl::CivilDay day(y, m, d);
  if (y < 1900 || day.year() != y || day.month() != m || day.day() != d) return bad();
  return absl::OkStatus();
}

absl::StatusOr<int> CheckTopK(absl::string_view field, int top_k) {
  if (top_k == 0) return 10;
  if (top_k < 1 || top_k > 100) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is ", top_k, ": use 1..100 (or 0 for the default 10)"));
  }
  return top_k;
}

absl::Status CheckImage(absl::string_view field, const std::string& bytes, int64_t max_bytes) {
  if (bytes.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is empty: send the photo's bytes (JPEG, PNG, WebP or BMP)"));
  }
  if (static_cast<int64_t>(bytes.size()) > max_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(field, " is ", bytes.size(),
                                                     " bytes: the server accepts at most ",
                                                     max_bytes, "; resize or recompress it"));
  }
  return absl::OkStatus();
}

absl::StatusOr<gallery::AgeInfo> ToAgeInfo(absl::string_view field, const pb::Age& age) {
  gallery::AgeInfo out;
  if (!age.known()) return out;
  if (!std::isfinite(age.min_years()) || !std::isfinite(age.max_years()) || age.min_years() < 0 ||
      age.max_years() < age.min_years() || age.max_years() > kMaxAgeYears) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": need 0 <= min_years <= max_years <= ", kMaxAgeYears, " when known is true"));
  }
  out.min = age.min_years();
  out.max = age.max_years();
  out.estimated = age.estimated();
  return out;
}

absl::StatusOr<store::Case> ToStoreCase(const pb::Case& c) {
  store::Case out;
  switch (c.kind()) {
    case pb::MISSING:
      out.kind = store::CaseKind::kMissing;
      break;
    case pb::FOUND:
      out.kind = store::CaseKind::kFound;
      break;
    case pb::SIGHTING:
      out.kind = store::CaseKind::kSighting;
      break;
    default:
      return absl::InvalidArgumentError("case.kind must be MISSING, FOUND or SIGHTING");
  }
  if (c.display_name().empty()) {
    return absl::InvalidArgumentError("case.display_name is required (a name or an alias)");
  }
  HW_RETURN_IF_ERROR(CheckLength("case.display_name", c.display_name(), kMaxNameChars));
  HW_RETURN_IF_ERROR(CheckLength("case.place", c.place(), kMaxPlaceChars));
  HW_RETURN_IF_ERROR(CheckLength("case.notes", c.notes(), kMaxNotesChars));
  HW_RETURN_IF_ERROR(CheckLength("case.reporter_contact", c.reporter_contact(), kMaxContactChars));
  HW_RETURN_IF_ERROR(CheckDate("case.birth_date", c.birth_date()));
  HW_RETURN_IF_ERROR(CheckDate("case.event_date", c.event_date()));
  if (c.sex() < pb::SEX_UNSPECIFIED || c.sex() > pb::MALE) {
    return absl::InvalidArgumentError("case.sex must be SEX_UNSPECIFIED, FEMALE or MALE");
  }
  if (c.status() < pb::CASE_STATUS_UNSPECIFIED || c.status() > pb::WITHDRAWN) {
    return absl::InvalidArgumentError("case.status must be OPEN, REUNITED, CLOSED or WITHDRAWN");
  }
  if (c.birth_year_min() < 0 || c.birth_year_max() < 0 ||
      (c.birth_year_max() != 0 && c.birth_year_min() > c.birth_year_max()) ||
      (c.birth_year_max() != 0 && (c.birth_year_min() < 1900 || c.birth_year_max() > 2200))) {
    return absl::InvalidArgumentError(
        "case.birth_year_min/max: use 0/0 for unknown or a range 1900 <= min <= max");
  }
  out.display_name = c.display_name();
  out.sex = static_cast<store::Sex>(c.sex());
  out.date_of_birth = c.birth_date();
  out.birth_year_min = c.birth_year_min();
  out.birth_year_max = c.birth_year_max();
  out.event_date = c.event_date();
  out.place = c.place();
  out.notes = c.notes();
  out.reporter_contact = c.reporter_contact();
  out.status = c.status() == pb::CASE_STATUS_UNSPECIFIED
                   ? store::CaseStatus::kOpen
                   : static_cast<store::CaseStatus>(c.status());
  return out;
}

std::string Rfc3339FromMs(int64_t ms) {
  if (ms <= 0) return "";
  return absl::FormatTime(absl::RFC3339_sec, absl::FromUnixMillis(ms), absl::UTCTimeZone());
}

void ToProtoCase(const store::Case& c, int photo_count, pb::Case* out) {
  out->set_id(absl::StrCat(c.id));
  out->set_kind(static_cast<pb::CaseKind>(c.kind));
  out->set_display_name(c.display_name);
  out->set_sex(static_cast<pb::Sex>(c.sex));
  out->set_birth_date(c.date_of_birth);
  out->set_birth_year_min(c.birth_year_min);
  out->set_birth_year_max(c.birth_year_max);
  out->set_event_date(c.event_date);
  out->set_place(c.place);
  out->set_notes(c.notes);
  out->set_reporter_contact(c.reporter_contact);
  out->set_status(static_cast<pb::CaseStatus>(c.status));
  out->set_created_at(Rfc3339FromMs(c.created_ms));
  out->set_updated_at(Rfc3339FromMs(c.updated_ms));
  out->set_photo_count(photo_count);
}

absl::StatusOr<gallery::SearchQuery> ToSearchQuery(const pb::SearchRequest& req) {
  gallery::SearchQuery q;
  for (int k : req.kinds()) {
    if (k < pb::MISSING || k > pb::SIGHTING) {
      return absl::InvalidArgumentError("kinds: each must be MISSING, FOUND or SIGHTING");
    }
    q.kinds.push_back(static_cast<store::CaseKind>(k));
  }
  HW_ASSIGN_OR_RETURN(q.top_k, CheckTopK("top_k", req.top_k()));
  if (!(req.min_score() >= 0 && req.min_score() <= 1)) {
    return absl::InvalidArgumentError("min_score must be in 0..1");
  }
  q.min_score = req.min_score();
  const pb::SearchFilter& f = req.filter();
  if (f.sex() < pb::SEX_UNSPECIFIED || f.sex() > pb::MALE) {
    return absl::InvalidArgumentError("filter.sex must be SEX_UNSPECIFIED, FEMALE or MALE");
  }
  q.sex = static_cast<store::Sex>(f.sex());
  if (f.age_min_years() != 0 || f.age_max_years() != 0) {
    if (!(f.age_min_years() >= 0 && f.age_max_years() >= f.age_min_years() &&
          f.age_max_years() <= kMaxAgeYears)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "filter.age_min_years/age_max_years: use 0/0 for any age or 0 <= min <= max <= ",
          kMaxAgeYears));
    }
    q.age_min = f.age_min_years();
    q.age_max = f.age_max_years();
  }
  HW_RETURN_IF_ERROR(CheckDate("filter.date_from", f.date_from()));
  HW_RETURN_IF_ERROR(CheckDate("filter.date_to", f.date_to()));
  HW_RETURN_IF_ERROR(CheckLength("filter.place_contains", f.place_contains(), kMaxPlaceChars));
  q.date_from = f.date_from();
  q.date_to = f.date_to();
  q.place_contains = f.place_contains();
  q.include_closed = f.include_closed();
  HW_ASSIGN_OR_RETURN(q.query_age, ToAgeInfo("query_age", req.query_age()));
  HW_RETURN_IF_ERROR(CheckDate("query_date", req.query_date()));
  q.query_date = req.query_date();
  q.include_age_inconsistent = req.include_age_inconsistent();
  return q;
}

void ToProtoAge(const gallery::AgeInfo& age, pb::Age* out) {
  if (!age.known()) return;
  out->set_known(true);
  out->set_min_years(static_cast<float>(age.min));
  out->set_max_years(static_cast<float>(age.max));
  out->set_estimated(age.estimated);
  out->set_from_face(age.from_face && age.estimated);
}

void ToProtoAgeGap(const gallery::AgeGap& gap, pb::AgeGap* out) {
  out->set_known(gap.known);
  if (!gap.known) return;
  out->set_min_years(static_cast<float>(gap.min));
  out->set_max_years(static_cast<float>(gap.max));
  out->set_estimated(gap.estimated);
  out->set_younger_age_years(static_cast<float>(gap.younger_age));
}

void ToProtoCaveat(const gallery::Caveat& caveat, pb::Caveat* out) {
  out->set_code(caveat.code);
  out->set_message(caveat.message);
}

void ToProtoBox(const embed::Box& box, pb::Box* out) {
  out->set_x(box.x);
  out->set_y(box.y);
  out->set_width(box.width);
  out->set_height(box.height);
}

void ToProtoDetectedFace(const gallery::PhotoFace& face, pb::DetectedFace* out) {
  out->set_index(face.index);
  ToProtoBox(face.face.box, out->mutable_box());
  out->set_detector_score(static_cast<float>(face.face.detector_score));
  pb::FaceQuality* q = out->mutable_quality();
  q->set_face_width_px(face.face.quality.face_width_px);
  q->set_sharpness(static_cast<float>(face.face.quality.sharpness));
  q->set_yaw_degrees(static_cast<float>(face.face.quality.yaw_degrees));
  q->set_usable(face.face.quality.usable);
  q->set_reason(face.face.quality.reason);
  q->set_non_frontal(face.face.quality.non_frontal);
  if (face.face_id > 0) {
    out->set_face_id(absl::StrCat(face.face_id));
    out->set_stored(true);
  }
  out->set_not_stored_reason(face.not_stored_reason);
}

void ToProtoCandidate(const gallery::Candidate& c, pb::Candidate* out) {
  pb::CaseSummary* s = out->mutable_case_();
  s->set_id(absl::StrCat(c.face.case_id));
  s->set_kind(static_cast<pb::CaseKind>(c.face.kind));
  s->set_display_name(c.case_info.display_name);
  s->set_sex(static_cast<pb::Sex>(c.case_info.sex));
  s->set_event_date(c.case_info.event_date);
  s->set_place(c.case_info.place);
  s->set_status(static_cast<pb::CaseStatus>(c.case_info.status));
  out->set_photo_id(absl::StrCat(c.face.photo_id));
  out->set_face_id(absl::StrCat(c.face.face_id));
  ToProtoBox(c.box, out->mutable_box());
  out->set_distance(static_cast<float>(c.distance));
  out->set_score(static_cast<float>(c.score));
  out->set_confidence(static_cast<float>(c.confidence));
  ToProtoAge(c.candidate_age, out->mutable_candidate_age());
  ToProtoAgeGap(c.age_gap, out->mutable_age_gap());
  for (const auto& caveat : c.caveats) ToProtoCaveat(caveat, out->add_caveats());
  out->set_taken_on(c.face.date_taken);
  out->set_age_consistent(c.age_check.consistent());
  if (c.age_check.projected_known) {
    pb::Age* p = out->mutable_projected_age();
    p->set_known(true);
    p->set_min_years(static_cast<float>(c.age_check.projected_min));
    p->set_max_years(static_cast<float>(c.age_check.projected_max));
    p->set_estimated(c.candidate_age.estimated);
  }
  out->set_case_faces_matched(c.case_faces_matched);
  out->set_above_lead_threshold(c.above_lead_threshold);
}

void ToProtoAgeLeftOut(const gallery::AgeLeftOut& l, pb::AgeLeftOut* out) {
  out->set_reason(l.reason);
  out->set_count(l.count);
  out->set_message(l.message);
}

void ToProtoQueryResult(const gallery::QueryResult& r, pb::QueryResult* out) {
  ToProtoDetectedFace(r.query, out->mutable_query_face());
  for (const auto& c : r.candidates) ToProtoCandidate(c, out->add_candidates());
  out->set_credible_match(r.credible_match);
  out->set_lead_threshold(static_cast<float>(r.lead_threshold));
  for (const auto& l : r.age_left_out) ToProtoAgeLeftOut(l, out->add_age_left_out());
  out->set_message(r.message);
}

absl::StatusOr<store::LeadQuery> ToLeadQuery(const pb::ListLeadsRequest& req) {
  store::LeadQuery q;
  if (req.status() < pb::LEAD_STATUS_UNSPECIFIED || req.status() > pb::LEAD_NEEDS_BETTER_PHOTO) {
    return absl::InvalidArgumentError(
        "status must be unset, LEAD_OPEN, LEAD_CONFIRMED_FOR_DNA, LEAD_REJECTED or "
        "LEAD_NEEDS_BETTER_PHOTO");
  }
  if (req.status() != pb::LEAD_STATUS_UNSPECIFIED) {
    q.status = static_cast<store::LeadStatus>(req.status());
  }
  if (!(req.min_confidence() >= 0 && req.min_confidence() <= 1)) {
    return absl::InvalidArgumentError("min_confidence must be in 0..1");
  }
  q.min_confidence = req.min_confidence();
  HW_RETURN_IF_ERROR(CheckLength("place_contains", req.place_contains(), kMaxPlaceChars));
  HW_RETURN_IF_ERROR(CheckDate("event_from", req.event_from()));
  HW_RETURN_IF_ERROR(CheckDate("event_to", req.event_to()));
  q.place_contains = req.place_contains();
  q.event_from = req.event_from();
  q.event_to = req.event_to();
  if (req.page_size() < 0 || req.page_size() > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size is ", req.page_size(), ": use 1..1000 (or 0 for 50)"));
  }
  q.page_size = req.page_size() == 0 ? 50 : req.page_size();
  HW_RETURN_IF_ERROR(CheckLength("page_token", req.page_token(), 100));
  q.page_token = req.page_token();
  return q;
}

absl::StatusOr<store::LeadStatus> ToLeadDecision(pb::LeadStatus decision) {
  switch (decision) {
    case pb::LEAD_CONFIRMED_FOR_DNA:
      return store::LeadStatus::kConfirmedForDna;
    case pb::LEAD_REJECTED:
      return store::LeadStatus::kRejected;
    case pb::LEAD_NEEDS_BETTER_PHOTO:
      return store::LeadStatus::kNeedsBetterPhoto;
    default:
      return absl::InvalidArgumentError(
          "decision must be LEAD_CONFIRMED_FOR_DNA, LEAD_REJECTED or LEAD_NEEDS_BETTER_PHOTO");
  }
}

namespace {

void ToProtoLeadFace(const gallery::LeadSide& side, pb::LeadFace* out) {
  pb::CaseSummary* s = out->mutable_case_();
  s->set_id(absl::StrCat(side.case_info.id));
  s->set_kind(static_cast<pb::CaseKind>(side.case_info.kind));
  s->set_display_name(side.case_info.display_name);
  s->set_sex(static_cast<pb::Sex>(side.case_info.sex));
  s->set_event_date(side.case_info.event_date);
  s->set_place(side.case_info.place);
  s->set_status(static_cast<pb::CaseStatus>(side.case_info.status));
  out->set_face_id(absl::StrCat(side.face.face_id));
  out->set_photo_id(absl::StrCat(side.face.photo_id));
  ToProtoBox(side.box, out->mutable_box());
  ToProtoAge(side.age, out->mutable_age());
  out->set_taken_on(side.face.date_taken);
}

}  // namespace

void ToProtoLead(const gallery::LeadView& v, pb::Lead* out) {
  const store::Lead& l = v.lead;
  out->set_id(absl::StrCat(l.id));
  out->set_case_a_id(absl::StrCat(l.case_a));
  out->set_case_b_id(absl::StrCat(l.case_b));
  ToProtoLeadFace(v.a, out->mutable_a());
  ToProtoLeadFace(v.b, out->mutable_b());
  out->set_distance(static_cast<float>(l.distance));
  out->set_confidence(static_cast<float>(l.confidence));
  ToProtoAgeGap(v.age_gap, out->mutable_age_gap());
  for (const auto& c : v.caveats) ToProtoCaveat(c, out->add_caveats());
  out->set_status(static_cast<pb::LeadStatus>(l.status));
  for (const store::LeadEvidence& e : l.evidence) {
    pb::LeadEvidence* pe = out->add_evidence();
    pe->set_face_a_id(absl::StrCat(e.face_a));
    pe->set_face_b_id(absl::StrCat(e.face_b));
    pe->set_distance(static_cast<float>(e.distance));
    pe->set_confidence(static_cast<float>(e.confidence));
    pe->set_added_at(Rfc3339FromMs(e.time_ms));
  }
  for (const store::LeadReview& r : l.reviews) {
    pb::LeadReview* pr = out->add_reviews();
    pr->set_decision(static_cast<pb::LeadStatus>(r.decision));
    pr->set_note(r.note);
    pr->set_reviewer(r.reviewer);
    pr->set_reviewed_at(Rfc3339FromMs(r.time_ms));
  }
  for (int64_t id : v.sighting_cluster_case_ids) {
    out->add_sighting_cluster_case_ids(absl::StrCat(id));
  }
  out->set_created_at(Rfc3339FromMs(l.created_ms));
  out->set_updated_at(Rfc3339FromMs(l.updated_ms));
}

}  // namespace homeward::server::internal
