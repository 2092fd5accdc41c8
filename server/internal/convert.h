// The service edge's conversions: absl::Status -> grpc::Status, request validation, and
// proto <-> gallery/store values. Every validation error is INVALID_ARGUMENT and names the
// field and the accepted range.
#ifndef HOMEWARD_SERVER_INTERNAL_CONVERT_H_
#define HOMEWARD_SERVER_INTERNAL_CONVERT_H_

#include <grpcpp/support/status.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gallery/gallery.h"
#include "homeward/v1/homeward.pb.h"

namespace homeward::server::internal {

namespace pb = ::homeward::v1;

// The one conversion: codes match one to one, the message is kept.
grpc::Status ToGrpcStatus(const absl::Status& status);

// Ids are positive decimal int64 strings ("42"; no sign, spaces or leading zeros).
absl::StatusOr<int64_t> ParseId(absl::string_view field, absl::string_view text);
// "" or a real calendar date YYYY-MM-DD.
absl::Status CheckDate(absl::string_view field, absl::string_view date);
// 0 -> default; otherwise 1..100.
absl::StatusOr<int> CheckTopK(absl::string_view field, int top_k);
absl::Status CheckImage(absl::string_view field, const std::string& bytes, int64_t max_bytes);
absl::StatusOr<gallery::AgeInfo> ToAgeInfo(absl::string_view field, const pb::Age& age);

absl::StatusOr<store::Case> ToStoreCase(const pb::Case& c);  // validates
void ToProtoCase(const store::Case& c, int photo_count, pb::Case* out);
absl::StatusOr<gallery::SearchQuery> ToSearchQuery(const pb::SearchRequest& req);

void ToProtoAge(const gallery::AgeInfo& age, pb::Age* out);
void ToProtoAgeGap(const gallery::AgeGap& gap, pb::AgeGap* out);
void ToProtoCaveat(const gallery::Caveat& caveat, pb::Caveat* out);
void ToProtoBox(const embed::Box& box, pb::Box* out);
void ToProtoDetectedFace(const gallery::PhotoFace& face, pb::DetectedFace* out);
// A candidate in full; the service blanks what a role may not see.
void ToProtoCandidate(const gallery::Candidate& c, pb::Candidate* out);
void ToProtoAgeLeftOut(const gallery::AgeLeftOut& l, pb::AgeLeftOut* out);
void ToProtoQueryResult(const gallery::QueryResult& r, pb::QueryResult* out);

// Leads. ToLeadQuery validates (page_size 0 -> 50); ToLeadDecision accepts the three review
// decisions only.
absl::StatusOr<store::LeadQuery> ToLeadQuery(const pb::ListLeadsRequest& req);
absl::StatusOr<store::LeadStatus> ToLeadDecision(pb::LeadStatus decision);
void ToProtoLead(const gallery::LeadView& lead, pb::Lead* out);

std::string Rfc3339FromMs(int64_t ms);

}  // namespace homeward::server::internal

#endif  // HOMEWARD_SERVER_INTERNAL_CONVERT_H_
