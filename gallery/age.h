// Age consistency: could two photos show one child, given what is known of the child's age
// and the dates? Everything is reduced to one question: could the two children have been
// born on the same day? Each photo yields a birth window (the earliest and latest birth
// date its evidence allows); two photos are age-consistent when their windows overlap,
// widened by a tolerance that grows with how uncertain each age is. This one rule covers
// direction and time order: a MISSING photo of a 12-year-old taken in 2010 cannot be the
// 10-12-year-old of a 2018 sighting, because the first child was born by 1998 and the second
// after 2005, while an adult photographed at 35 is never the child of a later sighting.
//
// The evidence for a birth window, best first:
//   1. the case's exact date of birth;
//   2. the photo's date and the age at photo (typed in whole years: "3" covers 3.0-3.99);
//   3. the case's birth-year range;
//   4. the age at photo with no photo date: the photo is placed at the case's date (missing
//      since / found / seen, else the registration date), up to kUndatedPhotoYears earlier
//      for MISSING (family photos predate the disappearance);
//   else the window is unknown and nothing is ruled out.
//
// Pure functions of their arguments: no I/O, no clock (callers pass "today").
// THREAD SAFETY: stateless.
#ifndef HOMEWARD_GALLERY_AGE_H_
#define HOMEWARD_GALLERY_AGE_H_

#include <string>
#include <string_view>

namespace homeward::gallery {

// What is known about a child's age in one photo.
struct AgeEvidence {
  double age_min = -1, age_max = -1;  // years at photo; -1 = unknown
  bool age_estimated = false;         // someone guessed it (a volunteer, an age model)
  bool age_from_face = false;         // the age model guessed it (implies age_estimated)
  bool age_exact = false;             // computed from an exact birth date (no whole-year slack)
  std::string photo_date;             // YYYY-MM-DD or ""
  std::string date_of_birth;          // the case's, YYYY-MM-DD or ""
  int birth_year_min = 0, birth_year_max = 0;  // 0 = unknown
  std::string case_date;              // the case's event (or registration) date, or ""
  bool photo_may_predate_case = false;  // MISSING: the photo may be years older than case_date
};

// The earliest and latest birth dates the evidence allows, in days since 1970-01-01, and
// the tolerance (years) this side adds when it is compared.
struct BirthWindow {
  bool known = false;
  double earliest = 0, latest = 0;
  double tolerance_years = 0;
  const char* basis = "";  // "birth date", "photo date and age", "birth years", "case date and age"
};

// Tolerances (years). Exact evidence still gets kBaseToleranceYears for typing errors at the
// day/month level; an estimated age adds max(kEstimatedMinYears, kEstimatedFraction x age),
// since guesses of a child's age err more for older children (docs/AGE.md).
inline constexpr double kBaseToleranceYears = 0.5;
inline constexpr double kEstimatedMinYears = 1.0;
inline constexpr double kEstimatedFraction = 0.15;
// A MISSING photo without a date may be this many years older than the case's date.
inline constexpr double kUndatedPhotoYears = 3.0;
// A photo without a date, placed at its case's date, may also be this much later or earlier.
inline constexpr double kUndatedSlackYears = 1.0;
inline constexpr double kDaysPerYear = 365.2425;

// Days since 1970-01-01 of a YYYY-MM-DD date; false when malformed.
bool DaysOf(std::string_view date, double* days);

BirthWindow BirthWindowOf(const AgeEvidence& e);

enum class AgeVerdict {
  kConsistent = 0,
  kUnknown = 1,    // one side has no usable age: nothing can be ruled out
  kTooOld = 2,     // the candidate would be older than the query's age at the query's date
  kTooYoung = 3,   // ... younger
  kTimeOrder = 4,  // an earlier photo already shows an older child (or a later one a younger)
};

struct AgeCheck {
  AgeVerdict verdict = AgeVerdict::kUnknown;
  // The candidate's age projected to the query photo's date (years; valid when known).
  bool projected_known = false;
  double projected_min = 0, projected_max = 0;
  double tolerance_years = 0;  // both sides' tolerances added
  bool consistent() const { return verdict == AgeVerdict::kConsistent || verdict == AgeVerdict::kUnknown; }
};

// A photo's evidence reduced to what CheckAge compares, so that a search can keep it in
// memory for every face (gallery/gallery.cc) instead of reading the catalog to check an age.
struct AgeKey {
  BirthWindow window;
  bool dated = false;  // photo_day is the photo's date
  double photo_day = 0;
  bool aged = false;   // the age at photo is known: [age_min, age_upper)
  double age_min = 0, age_upper = 0;
};
AgeKey AgeKeyOf(const AgeEvidence& e);

// Compares a candidate photo with the query photo. The query's evidence should carry its
// photo date (the caller substitutes today when the query has none, and then marks the age
// estimated so that the tolerance widens). When either side's window is unknown, the verdict
// is kUnknown.
AgeCheck CheckAge(const AgeEvidence& query, const AgeEvidence& candidate);
// The same, from keys (CheckAge(q, c) == CheckAge(AgeKeyOf(q), AgeKeyOf(c))).
AgeCheck CheckAge(const AgeKey& query, const AgeKey& candidate);

// Short machine code for a verdict (AGE_OK, AGE_UNKNOWN, TOO_OLD, TOO_YOUNG, TIME_ORDER).
const char* AgeVerdictCode(AgeVerdict v);

// The gap between the two photos in years, as the age-drift calibration means it: the time
// between the photos when both are dated (the gap the child would have grown through if the
// two are the same child), else the difference of the ages at photo. `younger` is the age at
// the earlier photo. Returns false when neither can be computed.
bool DatedGapYears(const AgeEvidence& a, const AgeEvidence& b, double* gap_min, double* gap_max,
                   double* younger);

}  // namespace homeward::gallery

#endif  // HOMEWARD_GALLERY_AGE_H_
