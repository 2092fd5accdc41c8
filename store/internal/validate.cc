#include "store/internal/validate.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/civil_date.h"
#include "base/status_macros.h"

namespace homeward::store::internal {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {
bool IsLeap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }
}  // namespace

// Parses "YYYY-MM-DD" with a real calendar day.
bool ParseDate(absl::string_view s, int* y, int* m, int* d) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
  for (int i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (s[i] < '0' || s[i] > '9') return false;
  }
  *y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
  *m = (s[5] - '0') * 10 + (s[6] - '0');
  *d = (s[8] - '0') * 10 + (s[9] - '0');
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (*y < 1900 || *m < 1 || *m > 12 || *d < 1) return false;
  return *d <= kDays[*m - 1] + (*m == 2 && IsLeap(*y) ? 1 : 0);
}

absl::Status CheckDate(absl::string_view field, absl::string_view value) {
  int y, m, d;
  if (value.empty() || ParseDate(value, &y, &m, &d)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, " must be a calendar date \"YYYY-MM-DD\" (year >= 1900) or empty; got \"",
                   value.substr(0, 32), "\""));
}

absl::Status CheckText(absl::string_view field, absl::string_view value, size_t max) {
  if (value.size() <= max) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, " is ", value.size(), " bytes; the limit is ", max));
}

bool ValidKind(CaseKind k) {
  return k == CaseKind::kMissing || k == CaseKind::kFound || k == CaseKind::kSighting;
}
bool ValidStatus(CaseStatus s) {
  return s == CaseStatus::kOpen || s == CaseStatus::kReunited || s == CaseStatus::kClosed ||
         s == CaseStatus::kWithdrawn;
}
bool ValidSex(Sex s) { return s == Sex::kUnknown || s == Sex::kFemale || s == Sex::kMale; }

absl::Status ValidateCase(const Case& c) {
  if (!ValidKind(c.kind)) {
    return absl::InvalidArgumentError("kind must be kMissing, kFound or kSighting");
  }
  if (!ValidStatus(c.status)) {
    return absl::InvalidArgumentError("status must be kOpen, kReunited, kClosed or kWithdrawn");
  }
  if (!ValidSex(c.sex)) return absl::InvalidArgumentError("sex must be kUnknown, kFemale or kMale");
  if (c.display_name.find_first_not_of(" \t\r\n") == std::string::npos) {
    return absl::InvalidArgumentError("display_name is required (a name or an alias)");
  }
  HW_RETURN_IF_ERROR(CheckText("display_name", c.display_name, kMaxNameBytes));
  HW_RETURN_IF_ERROR(CheckDate("date_of_birth", c.date_of_birth));
  HW_RETURN_IF_ERROR(CheckDate("event_date", c.event_date));
  if ((c.birth_year_min == 0) != (c.birth_year_max == 0)) {
    return absl::InvalidArgumentError("set both birth_year_min and birth_year_max, or neither");
  }
  if (c.birth_year_min != 0 &&
      (c.birth_year_min < 1900 || c.birth_year_max > 2200 || c.birth_year_min > c.birth_year_max)) {
    return absl::InvalidArgumentError(
        absl::StrCat("birth year range must satisfy 1900 <= min <= max; got ", c.birth_year_min,
                     "..", c.birth_year_max));
  }
  HW_RETURN_IF_ERROR(CheckText("place", c.place, kMaxPlaceBytes));
  HW_RETURN_IF_ERROR(CheckText("notes", c.notes, kMaxTextBytes));
  HW_RETURN_IF_ERROR(CheckText("reporter_contact", c.reporter_contact, kMaxTextBytes));
  return CheckText("owner_key_id", c.owner_key_id, kMaxNameBytes);
}

absl::Status ValidatePhoto(const Photo& p, const std::string& bytes) {
  if (bytes.empty()) return absl::InvalidArgumentError("photo bytes are empty");
  if (bytes.size() > kMaxPhotoBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("photo is ", bytes.size(), " bytes; the limit is ", kMaxPhotoBytes));
  }
  HW_RETURN_IF_ERROR(CheckDate("date_taken", p.date_taken));
  const bool min_unknown = p.age_min < 0, max_unknown = p.age_max < 0;
  if (min_unknown != max_unknown || !std::isfinite(p.age_min) || !std::isfinite(p.age_max)) {
    return absl::InvalidArgumentError("set both age_min and age_max (years), or both to -1");
  }
  if (!min_unknown && (p.age_min > p.age_max || p.age_max > 120)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "age range must satisfy 0 <= age_min <= age_max <= 120; got ", p.age_min, "..", p.age_max));
  }
  if (p.width < 0 || p.height < 0) {
    return absl::InvalidArgumentError("width and height must be >= 0 (0 = unknown)");
  }
  return CheckText("source", p.source, kMaxNameBytes);
}

absl::Status ValidateFace(const Face& f, size_t i) {
  if (f.descriptor.size() != static_cast<size_t>(kDescriptorDim)) {
    return absl::InvalidArgumentError(absl::StrCat("faces[", i, "].descriptor has ",
                                                   f.descriptor.size(), " floats; it needs ",
                                                   kDescriptorDim));
  }
  for (float v : f.descriptor) {
    if (!std::isfinite(v)) {
      return absl::InvalidArgumentError(
          absl::StrCat("faces[", i, "].descriptor contains a NaN or infinity"));
    }
  }
  if (f.landmarks.size() % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("faces[", i, "].landmarks must hold x,y pairs (an even count)"));
  }
  if (f.box_w < 0 || f.box_h < 0) {
    return absl::InvalidArgumentError(absl::StrCat("faces[", i, "].box_w/box_h must be >= 0"));
  }
  return CheckText("model_id", f.model_id, kMaxNameBytes);
}

// Age at photo: the photo's own, else derived from the case's birth date or birth years.
void DeriveAge(const std::string& date_taken, const std::string& dob, int by_min, int by_max,
               double* age_min, double* age_max) {
  if (*age_min >= 0) return;
  int ty, tm, td;
  if (!ParseDate(date_taken, &ty, &tm, &td)) return;
  int by, bm, bd;
  if (ParseDate(dob, &by, &bm, &bd)) {
    const double years = (DaysFromCivil(ty, tm, td) - DaysFromCivil(by, bm, bd)) / 365.2425;
    if (years >= 0) *age_min = *age_max = years;
  } else if (by_min > 0 && by_max >= by_min && ty >= by_min) {
    *age_min = std::max(0, ty - by_max - 1);
    *age_max = ty - by_min;
  }
}

// YYYY-MM-DD (UTC) of a Unix time in milliseconds.
std::string DateOfMillis(int64_t ms) {
  return DateOfDays((ms >= 0 ? ms : ms - 86399999) / 86400000);
}

absl::Status ValidateAudit(const AuditEntry& e) {
  if (e.actor.empty() || e.action.empty()) {
    return absl::InvalidArgumentError("an audit entry needs an actor and an action");
  }
  HW_RETURN_IF_ERROR(CheckText("actor", e.actor, kMaxNameBytes));
  HW_RETURN_IF_ERROR(CheckText("role", e.role, kMaxNameBytes));
  HW_RETURN_IF_ERROR(CheckText("action", e.action, kMaxNameBytes));
  HW_RETURN_IF_ERROR(CheckText("target_type", e.target_type, kMaxNameBytes));
  return CheckText("detail", e.detail, kMaxTextBytes);
}


absl::Status ValidateCaseQuery(const CaseQuery& query, int64_t* after_id) {
  if (query.page_size < 1 || query.page_size > kMaxPageSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size must be 1..", kMaxPageSize, "; got ", query.page_size));
  }
  *after_id = 0;
  if (!query.page_token.empty() &&
      (!absl::SimpleAtoi(query.page_token, after_id) || *after_id < 0)) {
    return absl::InvalidArgumentError("page_token is not one this catalog returned");
  }
  if (query.kind && !ValidKind(*query.kind)) {
    return absl::InvalidArgumentError("kind must be kMissing, kFound or kSighting");
  }
  if (query.status && !ValidStatus(*query.status)) {
    return absl::InvalidArgumentError("status must be kOpen, kReunited, kClosed or kWithdrawn");
  }
  HW_RETURN_IF_ERROR(CheckDate("event_from", query.event_from));
  HW_RETURN_IF_ERROR(CheckDate("event_to", query.event_to));
  return CheckText("place_contains", query.place_contains, kMaxPlaceBytes);
}

bool ValidDecision(LeadStatus s) {
  return s == LeadStatus::kConfirmedForDna || s == LeadStatus::kRejected ||
         s == LeadStatus::kNeedsBetterPhoto;
}

const char* DecisionName(LeadStatus s) {
  switch (s) {
    case LeadStatus::kOpen:
      return "open";
    case LeadStatus::kConfirmedForDna:
      return "confirmed_for_dna";
    case LeadStatus::kRejected:
      return "rejected";
    case LeadStatus::kNeedsBetterPhoto:
      return "needs_better_photo";
  }
  return "unknown";
}

absl::Status ValidateLeadQuery(const LeadQuery& query, double* after_confidence,
                               int64_t* after_id) {
  if (query.page_size < 1 || query.page_size > kMaxPageSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size must be 1..", kMaxPageSize, "; got ", query.page_size));
  }
  if (!(query.min_confidence >= 0 && query.min_confidence <= 1)) {
    return absl::InvalidArgumentError("min_confidence must be in 0..1");
  }
  if (query.status && !ValidDecision(*query.status) && *query.status != LeadStatus::kOpen) {
    return absl::InvalidArgumentError(
        "status must be kOpen, kConfirmedForDna, kRejected or kNeedsBetterPhoto");
  }
  *after_confidence = 0;
  *after_id = 0;
  if (!query.page_token.empty()) {
    const size_t colon = query.page_token.find(':');
    if (colon == std::string::npos ||
        !absl::SimpleAtod(query.page_token.substr(0, colon), after_confidence) ||
        !absl::SimpleAtoi(query.page_token.substr(colon + 1), after_id) || *after_id < 0) {
      return absl::InvalidArgumentError("page_token is not one this catalog returned");
    }
  }
  HW_RETURN_IF_ERROR(CheckDate("event_from", query.event_from));
  HW_RETURN_IF_ERROR(CheckDate("event_to", query.event_to));
  return CheckText("place_contains", query.place_contains, kMaxPlaceBytes);
}

std::string LeadPageToken(const Lead& last) {
  return absl::StrCat(absl::StrFormat("%.17g", last.confidence), ":", last.id);
}

absl::Status ValidateLeadScore(double distance, double confidence) {
  if (!std::isfinite(distance) || distance < 0 || !(confidence >= 0 && confidence <= 1)) {
    return absl::InvalidArgumentError(
        "a lead needs a finite distance >= 0 and a confidence in 0..1");
  }
  return absl::OkStatus();
}

absl::Status ValidateReview(LeadStatus decision, const std::string& note,
                            const std::string& reviewer, const std::string& role) {
  if (!ValidDecision(decision)) {
    return absl::InvalidArgumentError(
        "a review's decision must be kConfirmedForDna, kRejected or kNeedsBetterPhoto");
  }
  if (reviewer.empty()) return absl::InvalidArgumentError("a review needs a reviewer");
  HW_RETURN_IF_ERROR(CheckText("reviewer", reviewer, kMaxNameBytes));
  HW_RETURN_IF_ERROR(CheckText("role", role, kMaxNameBytes));
  return CheckText("note", note, kMaxTextBytes);
}

absl::Status CheckIdCount(size_t n) {
  if (n <= kMaxIdsPerLookup) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(n, " ids in one lookup; the limit is ", kMaxIdsPerLookup));
}

absl::Status CheckRetention(int64_t now_ms, int64_t retention_ms) {
  if (retention_ms <= 0 || now_ms < 0) {
    return absl::InvalidArgumentError(absl::StrCat("retention_ms must be > 0 and now_ms >= 0; got ",
                                                   retention_ms, " and ", now_ms));
  }
  return absl::OkStatus();
}

}  // namespace homeward::store::internal
