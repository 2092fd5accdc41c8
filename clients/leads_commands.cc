// homeward leads list|show|review: the investigators' review queue of automatic cross-matches,
// over gRPC (investigator and admin keys only).
#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "clients/commands.h"
#include "clients/rpc_client.h"

namespace homeward::cli {
namespace {

struct ListOptions {
  std::string status, place, from, to;
  double min_confidence = 0;
  int page_size = 0;  // 0: the server's default (50)
  std::string page_token;
  bool all = false;
};

struct ReviewOptions {
  std::string id, decision, note;
};

// "open", "confirmed", "rejected", "needs-better-photo" (any case, '_' or '-').
absl::StatusOr<v1::LeadStatus> ParseLeadStatus(std::string text, bool decision_only) {
  text = absl::AsciiStrToLower(text);
  for (char& c : text) c = c == '_' ? '-' : c;
  if (text == "open" && !decision_only) return v1::LEAD_OPEN;
  if (text == "confirmed" || text == "confirm" || text == "confirmed-for-dna") {
    return v1::LEAD_CONFIRMED_FOR_DNA;
  }
  if (text == "rejected" || text == "reject") return v1::LEAD_REJECTED;
  if (text == "needs-better-photo") return v1::LEAD_NEEDS_BETTER_PHOTO;
  return absl::InvalidArgumentError(
      decision_only ? "--decision must be confirm, reject or needs-better-photo"
                    : "--status must be open, confirmed, rejected or needs-better-photo");
}

std::string LeadStatusName(v1::LeadStatus s) {
  switch (s) {
    case v1::LEAD_OPEN:
      return "open";
    case v1::LEAD_CONFIRMED_FOR_DNA:
      return "confirmed";
    case v1::LEAD_REJECTED:
      return "rejected";
    case v1::LEAD_NEEDS_BETTER_PHOTO:
      return "needs-better-photo";
    default:
      return "-";
  }
}

std::string GapText(const v1::AgeGap& gap) {
  if (!gap.known()) return "-";
  std::string s = gap.min_years() == gap.max_years()
                      ? absl::StrFormat("%.0f y", gap.min_years())
                      : absl::StrFormat("%.0f-%.0f y", gap.min_years(), gap.max_years());
  return gap.estimated() ? s + " est." : s;
}

std::string SideText(const v1::LeadFace& f) {
  const v1::CaseSummary& c = f.case_();
  return absl::StrFormat("%s %s", KindName(c.kind()), c.id());
}

void PrintLead(const v1::Lead& l) {
  std::cout << absl::StrFormat("lead %s  %s  confidence %.3f  distance %.3f  age gap %s\n", l.id(),
                               LeadStatusName(l.status()), l.confidence(), l.distance(),
                               GapText(l.age_gap()));
  for (const v1::LeadFace* f : {&l.a(), &l.b()}) {
    const v1::CaseSummary& c = f->case_();
    std::cout << absl::StrFormat(
        "  %-9s case %-6s %-22s face %-6s photo %-6s age %-10s taken %-10s %s\n",
        KindName(c.kind()), c.id(), c.display_name().empty() ? "-" : c.display_name(), f->face_id(),
        f->photo_id(), AgeText(f->age()), f->taken_on().empty() ? "-" : f->taken_on(), c.place());
  }
  if (!l.sighting_cluster_case_ids().empty()) {
    std::cout << "  seen in sighting cases " << absl::StrJoin(l.sighting_cluster_case_ids(), ", ")
              << "\n";
  }
  for (const v1::Caveat& c : l.caveats()) {
    std::cout << "  ! " << c.code() << ": " << c.message() << "\n";
  }
  if (!l.evidence().empty()) std::cout << "  evidence (face pairs, oldest first):\n";
  for (const v1::LeadEvidence& e : l.evidence()) {
    std::cout << absl::StrFormat("    %s  faces %s / %s  confidence %.3f  distance %.3f\n",
                                 e.added_at(), e.face_a_id(), e.face_b_id(), e.confidence(),
                                 e.distance());
  }
  if (!l.reviews().empty()) std::cout << "  reviews:\n";
  for (const v1::LeadReview& r : l.reviews()) {
    std::cout << absl::StrFormat("    %s  %s by %s%s\n", r.reviewed_at(),
                                 LeadStatusName(r.decision()), r.reviewer(),
                                 r.note().empty() ? "" : ": " + r.note());
  }
}

// The page(s) as a table and a count.
void PrintLeadTable(const v1::ListLeadsResponse& all) {
  std::cout << absl::StrFormat("%-6s %-18s %-6s %-6s %-10s %-16s %-16s %s\n", "LEAD", "STATUS",
                               "CONF", "DIST", "AGE GAP", "CASE A", "CASE B", "SIGHTINGS");
  for (const v1::Lead& l : all.leads()) {
    std::cout << absl::StrFormat(
        "%-6s %-18s %-6.3f %-6.3f %-10s %-16s %-16s %s\n", l.id(), LeadStatusName(l.status()),
        l.confidence(), l.distance(), GapText(l.age_gap()), SideText(l.a()), SideText(l.b()),
        l.sighting_cluster_case_ids().empty() ? "-"
                                              : absl::StrJoin(l.sighting_cluster_case_ids(), ","));
  }
  std::cout << all.leads_size() << " lead(s)";
  if (!all.next_page_token().empty()) {
    std::cout << "; more: --page-token " << all.next_page_token() << " (or --all)";
  }
  std::cout << "\n";
}

int RunList(const ListOptions& opt, const GlobalOptions& global) {
  v1::ListLeadsRequest req;
  if (!opt.status.empty()) {
    absl::StatusOr<v1::LeadStatus> status = ParseLeadStatus(opt.status, false);
    if (!status.ok()) return PrintError(status.status().message(), 2);
    req.set_status(*status);
  }
  if (!IsDateOrEmpty(opt.from) || !IsDateOrEmpty(opt.to)) {
    return PrintError("--from/--to: expected YYYY-MM-DD", 2);
  }
  req.set_min_confidence(static_cast<float>(opt.min_confidence));
  req.set_place_contains(opt.place);
  req.set_event_from(opt.from);
  req.set_event_to(opt.to);
  req.set_page_size(opt.page_size);
  req.set_page_token(opt.page_token);

  return CallPagesAndPrint(
      global, &v1::Homeward::Stub::ListLeads, req, opt.all,
      [](const v1::ListLeadsResponse& page, v1::ListLeadsResponse* all) {
        all->mutable_leads()->MergeFrom(page.leads());
      },
      PrintLeadTable);
}

int RunShow(const std::string& id, const GlobalOptions& global) {
  v1::GetLeadRequest req;
  req.set_id(id);
  return CallAndPrint(global, CallKind::kQuick, &v1::Homeward::Stub::GetLead, req, PrintLead);
}

int RunReview(const ReviewOptions& opt, const GlobalOptions& global) {
  absl::StatusOr<v1::LeadStatus> decision = ParseLeadStatus(opt.decision, true);
  if (!decision.ok()) return PrintError(decision.status().message(), 2);
  v1::ReviewLeadRequest req;
  req.set_id(opt.id);
  req.set_decision(*decision);
  req.set_note(opt.note);
  return CallAndPrint(global, CallKind::kQuick, &v1::Homeward::Stub::ReviewLead, req,
                      [](const v1::Lead& reply) {
                        std::cout << "reviewed lead " << reply.id() << ": "
                                  << LeadStatusName(reply.status()) << "\n";
                      });
}

}  // namespace

Runner RegisterLeads(CLI::App& app, const GlobalOptions& global) {
  CLI::App* group =
      app.add_subcommand("leads", "review automatic matches across collections (investigators)");

  auto list = std::make_shared<ListOptions>();
  CLI::App* l = group->add_subcommand("list", "list leads, highest confidence first");
  l->add_option("--status", list->status, "open, confirmed, rejected or needs-better-photo");
  l->add_option("--min-confidence", list->min_confidence, "drop leads below this (0..1)")
      ->check(CLI::Range(0.0, 1.0));
  l->add_option("--place", list->place, "either case's place contains (case-insensitive)");
  l->add_option("--from", list->from, "either case's event date on or after (YYYY-MM-DD)");
  l->add_option("--to", list->to, "either case's event date on or before (YYYY-MM-DD)");
  l->add_option("--page-size", list->page_size, "leads per page, 1..1000 (default 50)")
      ->check(CLI::Range(1, 1000));
  l->add_option("--page-token", list->page_token, "continue from a previous page");
  l->add_flag("--all", list->all, "follow every page");

  auto show_id = std::make_shared<std::string>();
  CLI::App* show = group->add_subcommand("show", "one lead with its evidence and reviews");
  show->add_option("lead_id", *show_id, "lead id")->required();

  auto review = std::make_shared<ReviewOptions>();
  CLI::App* r = group->add_subcommand("review", "record a decision on a lead (audited)");
  r->add_option("lead_id", review->id, "lead id")->required();
  r->add_option("--decision", review->decision, "confirm, reject or needs-better-photo")
      ->required();
  r->add_option("--note", review->note, "why (kept with the review)");

  return DispatchChildren(group, {{l, [list, &global] { return RunList(*list, global); }},
                                  {show, [show_id, &global] { return RunShow(*show_id, global); }},
                                  {r, [review, &global] { return RunReview(*review, global); }}});
}

}  // namespace homeward::cli
