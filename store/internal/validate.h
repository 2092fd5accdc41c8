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
// The checks AppendAudit makes of an entry: an actor and an action, every field within limits.
absl::Status ValidateAudit(const AuditEntry& e);
// Lookups by a list of ids take at most kMaxIdsPerLookup; INVALID_ARGUMENT beyond.
inline constexpr size_t kMaxIdsPerLookup = 10000;
absl::Status CheckIdCount(size_t n);
// ListCases' checks; *after_id is the id the page token resumes after (0 for the first page).
absl::Status ValidateCaseQuery(const CaseQuery& query, int64_t* after_id);
// ListLeads' checks; the page token "<confidence>:<id>" of the last lead returned is parsed
// into *after_confidence and *after_id (0 and 0 for the first page).
absl::Status ValidateLeadQuery(const LeadQuery& query, double* after_confidence, int64_t* after_id);
// The page token after `last` (ListLeads' keyset order: confidence descending, id ascending).
std::string LeadPageToken(const Lead& last);
// UpsertLead's and ReviewLead's checks.
absl::Status ValidateLeadScore(double distance, double confidence);
bool ValidDecision(LeadStatus s);  // a review's decision: not kOpen
const char* DecisionName(LeadStatus s);  // "confirmed_for_dna", ... (the audit detail)
absl::Status ValidateReview(LeadStatus decision, const std::string& note,
                            const std::string& reviewer, const std::string& role);
// Age at photo: the photo's own, else derived from the case's birth date or birth years.
void DeriveAge(const std::string& date_taken, const std::string& dob, int by_min, int by_max,
               double* age_min, double* age_max);
// YYYY-MM-DD (UTC) of a Unix time in milliseconds.
std::string DateOfMillis(int64_t ms);

// Retention of SIGHTING cases (store/catalog.h), the same in every backend: the arguments'
// check, and the SQL condition, on a case row `c`, that a lead of it still protects it (open,
// confirmed for DNA or needing a better photo). Leads are probed by case_a and by case_b
// separately, so each probe uses an index.
absl::Status CheckRetention(int64_t now_ms, int64_t retention_ms);
inline constexpr char kSightingProtectedSql[] =
    "(EXISTS (SELECT 1 FROM leads l WHERE l.case_a = c.id AND l.status IN (1, 2, 4)) OR "
    "EXISTS (SELECT 1 FROM leads l WHERE l.case_b = c.id AND l.status IN (1, 2, 4)))";

}  // namespace homeward::store::internal

#endif  // HOMEWARD_STORE_INTERNAL_VALIDATE_H_
