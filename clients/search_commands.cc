// homeward search | sighting submit | compare: ranked candidates and pairwise distances,
// over gRPC. Search and sighting print the same per-face candidate tables.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "clients/commands.h"
#include "clients/rpc_client.h"

namespace homeward::cli {
namespace {

struct SearchOptions {
  std::string photo;
  std::string face_id;
  std::vector<std::string> kinds;
  int top = 0;  // 0: the server's default (10)
  std::string age;
  std::string seen_at;
  float min_score = 0;
  bool include_closed = false;
  bool include_age_inconsistent = false;
};

struct SightingOptions {
  std::string photo;
  std::string seen_at;
  std::string place;
  std::string age;
  std::string notes;
  int top = 0;
  bool include_age_inconsistent = false;
};

struct CompareOptions {
  std::vector<std::string> photos;
  std::string face_a, face_b;
};

std::string AgeGapText(const v1::AgeGap& gap) {
  if (!gap.known()) return "-";
  std::string s = gap.min_years() == gap.max_years()
                      ? absl::StrFormat("%.0f y", gap.min_years())
                      : absl::StrFormat("%.0f-%.0f y", gap.min_years(), gap.max_years());
  return gap.estimated() ? s + " est." : s;
}

void PrintCaveats(const google::protobuf::RepeatedPtrField<v1::Caveat>& caveats,
                  const char* indent) {
  for (const v1::Caveat& c : caveats) {
    std::cout << indent << "! " << c.code() << ": " << c.message() << "\n";
  }
}

void PrintResults(const google::protobuf::RepeatedPtrField<v1::QueryResult>& results,
                  const std::string& no_face_reason) {
  if (results.empty()) {
    std::cout << "no face: " << (no_face_reason.empty() ? "none detected" : no_face_reason) << "\n";
  }
  for (const v1::QueryResult& r : results) {
    const v1::DetectedFace& q = r.query_face();
    std::cout << absl::StrFormat("face %d  box %dx%d+%d+%d", q.index(), q.box().width(),
                                 q.box().height(), q.box().x(), q.box().y());
    if (q.stored()) std::cout << "  stored as face " << q.face_id();
    if (!q.quality().usable() && !q.quality().reason().empty()) {
      std::cout << "  (" << q.quality().reason() << ")";
    }
    if (q.quality().non_frontal()) {
      std::cout << (q.stored() ? "  NON_FRONTAL: kept as evidence" : "  NON_FRONTAL");
    }
    std::cout << "\n";
    if (!r.message().empty()) std::cout << "  " << r.message() << "\n";
    for (const v1::AgeLeftOut& l : r.age_left_out()) {
      std::cout << "  left out (" << l.reason() << "): " << l.message() << "\n";
    }
    if (r.candidates().empty()) {
      if (r.message().empty()) std::cout << "  no candidates\n";
      continue;
    }
    std::cout << absl::StrFormat("  lead threshold: confidence %.2f (%s)\n", r.lead_threshold(),
                                 r.credible_match() ? "reached" : "not reached");
    std::cout << absl::StrFormat("  %-4s %-8s %-9s %-22s %-6s %-6s %-6s %-10s %-12s %s\n", "#",
                                 "CASE", "KIND", "NAME", "SCORE", "CONF", "DIST", "AGE", "AGE GAP",
                                 "FACE");
    int rank = 1;
    bool above = true;
    for (const v1::Candidate& c : r.candidates()) {
      if (above && !c.above_lead_threshold() && rank > 1) {
        std::cout << "  ---- below the lead threshold ----\n";
      }
      above = c.above_lead_threshold();
      std::cout << absl::StrFormat(
          "  %-4d %-8s %-9s %-22s %-6.3f %-6.3f %-6.3f %-10s %-12s %s%s\n", rank++, c.case_().id(),
          KindName(c.case_().kind()),
          c.case_().display_name().empty() ? "-" : c.case_().display_name(), c.score(),
          c.confidence(), c.distance(), AgeText(c.candidate_age()), AgeGapText(c.age_gap()),
          c.face_id(), c.age_consistent() ? "" : "  AGE INCONSISTENT");
      if (c.projected_age().known()) {
        std::cout << "       age at the query's date: " << AgeText(c.projected_age()) << "\n";
      }
      if (c.case_faces_matched() > 1) {
        std::cout << "       best of " << c.case_faces_matched() << " faces of this case (photo "
                  << c.photo_id() << ")\n";
      }
      PrintCaveats(c.caveats(), "       ");
    }
  }
}

int RunSearch(const SearchOptions& opt, const GlobalOptions& global) {
  v1::SearchRequest req;
  if (opt.photo.empty() == opt.face_id.empty()) {
    return PrintError("search: give either PHOTO or --face FACE_ID", 2);
  }
  for (const std::string& k : opt.kinds) {
    absl::StatusOr<v1::CaseKind> kind = ParseKind(k);
    if (!kind.ok()) return PrintError(kind.status().message(), 2);
    req.add_kinds(*kind);
  }
  req.set_top_k(opt.top);
  req.set_min_score(opt.min_score);
  req.mutable_filter()->set_include_closed(opt.include_closed);
  if (!opt.age.empty()) {
    absl::StatusOr<v1::Age> age = ParseAge(opt.age, /*always_estimated=*/false);
    if (!age.ok()) return PrintError(age.status().message(), 2);
    *req.mutable_query_age() = *age;
  }
  if (!IsDateOrEmpty(opt.seen_at)) return PrintError("--seen-at: expected YYYY-MM-DD", 2);
  req.set_query_date(opt.seen_at);
  req.set_include_age_inconsistent(opt.include_age_inconsistent);
  CallKind call = CallKind::kQuick;
  if (!opt.photo.empty()) {
    absl::StatusOr<std::string> image = ReadImageFile(opt.photo);
    if (!image.ok()) return PrintError(image.status().message());
    req.set_image(*std::move(image));
    call = CallKind::kUpload;
  } else {
    req.set_face_id(opt.face_id);
  }

  return CallAndPrint(global, call, &v1::Homeward::Stub::Search, req,
                      [](const v1::SearchResponse& reply) {
                        PrintResults(reply.results(), reply.no_face_reason());
                        PrintCaveats(reply.caveats(), "");
                      });
}

int RunSighting(const SightingOptions& opt, const GlobalOptions& global) {
  v1::SubmitSightingRequest req;
  if (!IsDateOrEmpty(opt.seen_at)) return PrintError("--seen-at: expected YYYY-MM-DD", 2);
  req.set_seen_on(opt.seen_at);
  req.set_place(opt.place);
  req.set_notes(opt.notes);
  req.set_top_k(opt.top);
  req.set_include_age_inconsistent(opt.include_age_inconsistent);
  if (!opt.age.empty()) {
    absl::StatusOr<v1::Age> age = ParseAge(opt.age, /*always_estimated=*/true);
    if (!age.ok()) return PrintError(age.status().message(), 2);
    *req.mutable_estimated_age() = *age;
  }
  absl::StatusOr<std::string> image = ReadImageFile(opt.photo);
  if (!image.ok()) return PrintError(image.status().message());
  req.set_image(*std::move(image));

  return CallAndPrint(
      global, CallKind::kUpload, &v1::Homeward::Stub::SubmitSighting, req,
      [](const v1::SubmitSightingResponse& reply) {
        if (reply.case_id().empty()) {
          std::cout << "no face found: nothing was stored\n";
        } else {
          std::cout << "sighting case " << reply.case_id() << ", photo " << reply.photo_id()
                    << "\n";
          if (reply.age().known() && reply.age().from_face()) {
            std::cout << absl::StrFormat(
                "age estimated from the face: %.0f-%.0f years (ESTIMATED_AGE: the face gave it; "
                "a volunteer's or investigator's age replaces it)\n",
                reply.age().min_years(), reply.age().max_years());
          }
        }
        PrintResults(reply.results(), reply.no_face_reason());
        PrintCaveats(reply.caveats(), "");
      });
}

// Fills `ref` from a face id if given, else from the next photo path; false when neither.
absl::Status FillFaceRef(const std::string& face_id, const std::vector<std::string>& photos,
                         size_t* next_photo, v1::FaceRef* ref) {
  if (!face_id.empty()) {
    ref->set_face_id(face_id);
    return absl::OkStatus();
  }
  if (*next_photo >= photos.size()) {
    return absl::InvalidArgumentError(
        "compare: give two faces: PHOTO_A PHOTO_B, or --face-a/--face-b FACE_ID");
  }
  absl::StatusOr<std::string> image = ReadImageFile(photos[(*next_photo)++]);
  if (!image.ok()) return image.status();
  ref->set_image(*std::move(image));
  return absl::OkStatus();
}

int RunCompare(const CompareOptions& opt, const GlobalOptions& global) {
  v1::CompareRequest req;
  size_t next = 0;
  if (absl::Status s = FillFaceRef(opt.face_a, opt.photos, &next, req.mutable_a()); !s.ok()) {
    return PrintError(s.message(), s.code() == absl::StatusCode::kInvalidArgument ? 2 : 1);
  }
  if (absl::Status s = FillFaceRef(opt.face_b, opt.photos, &next, req.mutable_b()); !s.ok()) {
    return PrintError(s.message(), s.code() == absl::StatusCode::kInvalidArgument ? 2 : 1);
  }
  if (next != opt.photos.size()) return PrintError("compare: too many photos", 2);

  return CallAndPrint(
      global, next > 0 ? CallKind::kUpload : CallKind::kQuick, &v1::Homeward::Stub::Compare, req,
      [](const v1::CompareResponse& reply) {
        if (!reply.no_face_reason().empty()) {
          std::cout << "not compared: " << reply.no_face_reason() << "\n";
          return;
        }
        std::cout << absl::StrFormat(
            "distance %.3f  score %.3f  confidence %.3f  threshold %.3f  %s\n", reply.distance(),
            reply.score(), reply.confidence(), reply.threshold(),
            reply.possible_match() ? "POSSIBLE MATCH" : "not a match");
        if (reply.age_gap().known()) std::cout << "age gap " << AgeGapText(reply.age_gap()) << "\n";
        PrintCaveats(reply.caveats(), "");
      });
}

}  // namespace

Runner RegisterSearch(CLI::App& app, const GlobalOptions& global) {
  auto opt = std::make_shared<SearchOptions>();
  CLI::App* sub = app.add_subcommand(
      "search", "ranked candidates for every face of a photo, or for a stored face");
  sub->add_option("photo", opt->photo, "query photo (JPEG, PNG, WebP or BMP; at most 20 MB)");
  sub->add_option("--face", opt->face_id, "a stored face id instead of a photo");
  sub->add_option("--kind", opt->kinds,
                  "collections to search, comma-separated (default: missing,found)")
      ->delimiter(',');
  sub->add_option("--top", opt->top, "candidates per face, 1..100 (default 10)")
      ->check(CLI::Range(1, 100));
  sub->add_option("--age", opt->age, "child's age in the query photo: N or MIN-MAX");
  sub->add_option("--seen-at", opt->seen_at, "date the query photo was taken (YYYY-MM-DD)");
  sub->add_option("--min-score", opt->min_score, "drop candidates below this score (0..1)")
      ->check(CLI::Range(0.0, 1.0));
  sub->add_flag("--include-closed", opt->include_closed,
                "also search reunited, closed and withdrawn cases");
  sub->add_flag("--include-age-inconsistent", opt->include_age_inconsistent,
                "also list candidates whose age cannot fit the query's (marked AGE_INCONSISTENT; "
                "investigators and admins)");
  return [opt, &global] { return RunSearch(*opt, global); };
}

Runner RegisterSighting(CLI::App& app, const GlobalOptions& global) {
  CLI::App* group = app.add_subcommand("sighting", "volunteers' street photos");
  auto opt = std::make_shared<SightingOptions>();
  CLI::App* submit = group->add_subcommand(
      "submit", "create a sighting case from a photo and search its faces at once");
  submit->add_option("photo", opt->photo, "street photo (at most 20 MB)")->required();
  submit->add_option("--seen-at", opt->seen_at, "date of the sighting (YYYY-MM-DD)");
  submit->add_option("--place", opt->place, "where the child was seen");
  submit->add_option("--age", opt->age, "estimated age: N or MIN-MAX (e.g. 8-10)");
  submit->add_option("--notes", opt->notes, "free text");
  submit->add_option("--top", opt->top, "candidates per face, 1..100 (default 10)")
      ->check(CLI::Range(1, 100));
  submit->add_flag("--include-age-inconsistent", opt->include_age_inconsistent,
                   "also list candidates whose age cannot fit (investigators and admins)");
  return DispatchChildren(group, {{submit, [opt, &global] { return RunSighting(*opt, global); }}});
}

Runner RegisterCompare(CLI::App& app, const GlobalOptions& global) {
  auto opt = std::make_shared<CompareOptions>();
  CLI::App* sub = app.add_subcommand(
      "compare", "distance, score and verdict for two faces (photos or stored face ids)");
  sub->add_option("photos", opt->photos, "PHOTO_A PHOTO_B (the largest face of each)")
      ->expected(0, 2);
  sub->add_option("--face-a", opt->face_a, "stored face id instead of PHOTO_A");
  sub->add_option("--face-b", opt->face_b, "stored face id instead of PHOTO_B");
  return [opt, &global] { return RunCompare(*opt, global); };
}

}  // namespace homeward::cli
