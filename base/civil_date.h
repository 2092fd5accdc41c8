// Calendar dates as day counts since 1970-01-01 (proleptic Gregorian), after Howard Hinnant's
// "chrono-compatible low-level date algorithms". Shared by store/ (ages from birth dates),
// gallery/ (age consistency) and the benches. Header-only; pure functions.
#ifndef HOMEWARD_BASE_CIVIL_DATE_H_
#define HOMEWARD_BASE_CIVIL_DATE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/strings/str_format.h"

namespace homeward {

// Days since 1970-01-01 of year y, month m (1..12), day d (1..31).
inline int64_t DaysFromCivil(int y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

// The inverse of DaysFromCivil.
inline void CivilFromDays(int64_t z, int* y, int* m, int* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  *d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  *m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  *y = static_cast<int>(yoe + era * 400 + (*m <= 2));
}

// YYYY-MM-DD of a day count.
inline std::string DateOfDays(int64_t days) {
  int y = 0, m = 0, d = 0;
  CivilFromDays(days, &y, &m, &d);
  return absl::StrFormat("%04d-%02d-%02d", y, m, d);
}

// Parses a YYYY-MM-DD date that exists in the calendar (no 2007-02-31); false otherwise.
inline bool ParseCivilDate(std::string_view date, int64_t* days) {
  if (date.size() != 10 || date[4] != '-' || date[7] != '-') return false;
  for (int i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (date[i] < '0' || date[i] > '9') return false;
  }
  const int y = (date[0] - '0') * 1000 + (date[1] - '0') * 100 + (date[2] - '0') * 10 + (date[3] - '0');
  const int m = (date[5] - '0') * 10 + (date[6] - '0');
  const int d = (date[8] - '0') * 10 + (date[9] - '0');
  if (m < 1 || m > 12 || d < 1 || d > 31) return false;
  const int64_t n = DaysFromCivil(y, m, d);
  int yy = 0, mm = 0, dd = 0;
  CivilFromDays(n, &yy, &mm, &dd);
  if (yy != y || mm != m || dd != d) return false;
  *days = n;
  return true;
}

}  // namespace homeward

#endif  // HOMEWARD_BASE_CIVIL_DATE_H_
