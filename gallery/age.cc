#include "gallery/age.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "base/civil_date.h"

namespace homeward::gallery {
namespace {

bool AgeKnown(const AgeEvidence& e) { return e.age_min >= 0 && e.age_max >= e.age_min; }

// An age typed in whole years ("3") covers the whole year (3.0-3.99); an age computed from
// dates is already exact.
double UpperAge(const AgeEvidence& e) {
  if (e.age_exact) return e.age_max;
  return std::abs(e.age_max - std::round(e.age_max)) < 1e-6 ? e.age_max + 1 : e.age_max;
}

double EstimateTolerance(const AgeEvidence& e) {
  if (!e.age_estimated || !AgeKnown(e)) return 0;
  return std::max(kEstimatedMinYears, kEstimatedFraction * (e.age_min + e.age_max) / 2);
}

}  // namespace

bool DaysOf(std::string_view date, double* days) {
  int64_t n = 0;
  if (!ParseCivilDate(date, &n)) return false;
  *days = static_cast<double>(n);
  return true;
}

BirthWindow BirthWindowOf(const AgeEvidence& e) {
  BirthWindow w;
  double dob = 0, photo = 0, case_day = 0;
  if (DaysOf(e.date_of_birth, &dob)) {
    w.known = true;
    w.earliest = w.latest = dob;
    w.basis = "birth date";
    return w;
  }
  const bool age_known = AgeKnown(e);
  w.tolerance_years = EstimateTolerance(e);
  if (age_known && DaysOf(e.photo_date, &photo)) {
    w.known = true;
    w.earliest = photo - UpperAge(e) * kDaysPerYear;
    w.latest = photo - e.age_min * kDaysPerYear;
    w.basis = "photo date and age";
    return w;
  }
  if (e.birth_year_min > 0 && e.birth_year_max >= e.birth_year_min) {
    w.known = true;
    w.earliest = static_cast<double>(DaysFromCivil(e.birth_year_min, 1, 1));
    w.latest = static_cast<double>(DaysFromCivil(e.birth_year_max, 12, 31));
    w.tolerance_years = 0;
    w.basis = "birth years";
    return w;
  }
  if (age_known && DaysOf(e.case_date, &case_day)) {
    const double back = kUndatedSlackYears + (e.photo_may_predate_case ? kUndatedPhotoYears : 0);
    w.known = true;
    w.earliest = case_day - (back + UpperAge(e)) * kDaysPerYear;
    w.latest = case_day + (kUndatedSlackYears - e.age_min) * kDaysPerYear;
    w.basis = "case date and age";
    return w;
  }
  return w;
}

AgeKey AgeKeyOf(const AgeEvidence& e) {
  AgeKey k;
  k.window = BirthWindowOf(e);
  k.dated = DaysOf(e.photo_date, &k.photo_day);
  k.aged = AgeKnown(e);
  if (k.aged) {
    k.age_min = e.age_min;
    k.age_upper = UpperAge(e);
  }
  return k;
}

AgeCheck CheckAge(const AgeEvidence& query, const AgeEvidence& candidate) {
  return CheckAge(AgeKeyOf(query), AgeKeyOf(candidate));
}

AgeCheck CheckAge(const AgeKey& query, const AgeKey& candidate) {
  AgeCheck out;
  const BirthWindow& wq = query.window;
  const BirthWindow& wc = candidate.window;
  const double qd = query.photo_day;
  if (wc.known && query.dated) {
    out.projected_known = true;
    out.projected_min = std::max(0.0, (qd - wc.latest) / kDaysPerYear);
    out.projected_max = std::max(0.0, (qd - wc.earliest) / kDaysPerYear);
  }
  if (!wq.known || !wc.known) {
    out.verdict = AgeVerdict::kUnknown;
    return out;
  }
  out.tolerance_years = kBaseToleranceYears + wq.tolerance_years + wc.tolerance_years;
  const double tol = out.tolerance_years * kDaysPerYear;
  const bool older = wc.latest < wq.earliest - tol;    // candidate born before any query birth
  const bool younger = wc.earliest > wq.latest + tol;  // ... after
  if (!older && !younger) {
    out.verdict = AgeVerdict::kConsistent;
    return out;
  }
  out.verdict = older ? AgeVerdict::kTooOld : AgeVerdict::kTooYoung;
  // Time order: the photos' own ages already contradict their order (photos of one day are
  // judged by projection alone).
  if (query.aged && candidate.aged && query.dated && candidate.dated) {
    const double cd = candidate.photo_day;
    if (older && cd < qd && candidate.age_min > query.age_upper + out.tolerance_years) {
      out.verdict = AgeVerdict::kTimeOrder;
    }
    if (younger && cd > qd && candidate.age_upper < query.age_min - out.tolerance_years) {
      out.verdict = AgeVerdict::kTimeOrder;
    }
  }
  return out;
}

const char* AgeVerdictCode(AgeVerdict v) {
  switch (v) {
    case AgeVerdict::kConsistent: return "AGE_OK";
    case AgeVerdict::kUnknown: return "AGE_UNKNOWN";
    case AgeVerdict::kTooOld: return "TOO_OLD";
    case AgeVerdict::kTooYoung: return "TOO_YOUNG";
    case AgeVerdict::kTimeOrder: return "TIME_ORDER";
  }
  return "AGE_UNKNOWN";
}

bool DatedGapYears(const AgeEvidence& a, const AgeEvidence& b, double* gap_min, double* gap_max,
                   double* younger) {
  if (!AgeKnown(a) || !AgeKnown(b)) return false;
  double da = 0, db = 0;
  if (DaysOf(a.photo_date, &da) && DaysOf(b.photo_date, &db)) {
    *gap_min = *gap_max = std::abs(da - db) / kDaysPerYear;
    *younger = da <= db ? a.age_min : b.age_min;
    return true;
  }
  *gap_min = std::max(0.0, std::max(a.age_min, b.age_min) - std::min(a.age_max, b.age_max));
  *gap_max = std::max(a.age_max, b.age_max) - std::min(a.age_min, b.age_min);
  *younger = std::min(a.age_min, b.age_min);
  return true;
}

}  // namespace homeward::gallery
