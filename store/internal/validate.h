// Checks of what callers give the catalog, and the fields every catalog backend derives the
// same way (a face's age from its case's birth date). Backend-neutral: no SQL here.
#ifndef HOMEWARD_STORE_INTERNAL_VALIDATE_H_
#define HOMEWARD_STORE_INTERNAL_VALIDATE_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "store/records.h"

namespace homeward::store::internal {

inline constexpr size_t kMaxPhotoBytes = 64 << 20;
inline constexpr size_t kMaxNameBytes = 256;
inline constexpr size_t kMaxPlaceBytes = 500;  // the API's documented place limit (docs/API.md)
inline constexpr size_t kMaxTextBytes = 64 << 10;
inline constexpr int kMaxPageSize = 1000;

// Now, in Unix milliseconds (the catalog's created_ms / updated_ms / time_ms).
int64_t NowMs();

// Parses "YYYY-MM-DD" with a real calendar day.
bool ParseDate(absl::string_view s, int* y, int* m, int* d);
absl::Status CheckDate(absl::string_view field, absl::string_view value);
absl::Status CheckText(absl::string_view field, absl::string_view value, size_t max);
bool ValidKind(CaseKind k);
bool ValidStatus(CaseStatus s);
bool ValidSex(Sex s);

absl::Status ValidateCase(const Case& c);
absl::Status ValidatePhoto(const Photo& p, const std::string& bytes);
absl::Status ValidateFace(const Face& f, size_t i);
// Age at photo: the photo's own, else derived from the case's birth date or birth years.
void DeriveAge(const std::string& date_taken, const std::string& dob, int by_min, int by_max,
               double* age_min, double* age_max);
// YYYY-MM-DD (UTC) of a Unix time in milliseconds.
std::string DateOfMillis(int64_t ms);

}  // namespace homeward::store::internal

#endif  // HOMEWARD_STORE_INTERNAL_VALIDATE_H_
