// homeward case create|show|list|delete|export: the case records, over gRPC.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "clients/commands.h"
#include "clients/rpc_client.h"

namespace homeward::cli {
namespace {

struct CreateOptions {
  std::string kind, name, birth_date, sex, place, event_date, notes, contact;
};

struct ListOptions {
  std::string kind, status, place;
  int page_size = 0;  // 0: the server's default (50)
  std::string page_token;
  bool all = false;
};

void PrintCase(const v1::Case& c) {
  auto row = [](const char* key, const std::string& value) {
    if (!value.empty()) std::cout << absl::StrFormat("%-12s %s\n", key, value);
  };
  row("id", c.id());
  row("kind", KindName(c.kind()));
  row("name", c.display_name());
  row("sex", SexName(c.sex()));
  row("birth date", c.birth_date());
  if (c.birth_date().empty() && c.birth_year_min() > 0) {
    row("born", absl::StrFormat("%d-%d", c.birth_year_min(), c.birth_year_max()));
  }
  row("event date", c.event_date());
  row("place", c.place());
  row("notes", c.notes());
  row("contact", c.reporter_contact());
  row("status", StatusName(c.status()));
  row("photos", std::to_string(c.photo_count()));
  row("created", c.created_at());
  row("updated", c.updated_at());
}

int RunCreate(const CreateOptions& opt, const GlobalOptions& global) {
  v1::CreateCaseRequest req;
  v1::Case& c = *req.mutable_case_();
  absl::StatusOr<v1::CaseKind> kind = ParseKind(opt.kind);
  if (!kind.ok()) return PrintError(kind.status().message(), 2);
  absl::StatusOr<v1::Sex> sex = ParseSex(opt.sex);
  if (!sex.ok()) return PrintError(sex.status().message(), 2);
  if (!IsDateOrEmpty(opt.birth_date)) return PrintError("--birth-date: expected YYYY-MM-DD", 2);
  if (!IsDateOrEmpty(opt.event_date)) return PrintError("--event-date: expected YYYY-MM-DD", 2);
  c.set_kind(*kind);
  c.set_display_name(opt.name);
  c.set_sex(*sex);
  c.set_birth_date(opt.birth_date);
  c.set_place(opt.place);
  c.set_event_date(opt.event_date);
  c.set_notes(opt.notes);
  c.set_reporter_contact(opt.contact);

  return CallAndPrint(global, CallKind::kQuick, &v1::Homeward::Stub::CreateCase, req,
                      [](const v1::Case& reply) {
                        std::cout << "created case " << reply.id() << "\n";
                        PrintCase(reply);
                      });
}

int RunShow(const std::string& id, const GlobalOptions& global) {
  v1::GetCaseRequest req;
  req.set_id(id);
  return CallAndPrint(global, CallKind::kQuick, &v1::Homeward::Stub::GetCase, req, PrintCase);
}

// The page(s) as a table and a count.
void PrintCaseTable(const v1::ListCasesResponse& all) {
  std::cout << absl::StrFormat("%-8s %-9s %-9s %-24s %-3s %-10s %-20s %s\n", "ID", "KIND", "STATUS",
                               "NAME", "SEX", "EVENT", "PLACE", "PHOTOS");
  for (const v1::Case& c : all.cases()) {
    std::cout << absl::StrFormat("%-8s %-9s %-9s %-24s %-3s %-10s %-20s %d\n", c.id(),
                                 KindName(c.kind()), StatusName(c.status()),
                                 c.display_name().empty() ? "-" : c.display_name(),
                                 SexName(c.sex()), c.event_date().empty() ? "-" : c.event_date(),
                                 c.place().empty() ? "-" : c.place(), c.photo_count());
  }
  std::cout << all.cases_size() << " case(s)";
  if (!all.next_page_token().empty()) {
    std::cout << "; more: --page-token " << all.next_page_token() << " (or --all)";
  }
  std::cout << "\n";
}

int RunList(const ListOptions& opt, const GlobalOptions& global) {
  v1::ListCasesRequest req;
  if (!opt.kind.empty()) {
    absl::StatusOr<v1::CaseKind> kind = ParseKind(opt.kind);
    if (!kind.ok()) return PrintError(kind.status().message(), 2);
    req.set_kind(*kind);
  }
  if (!opt.status.empty()) {
    absl::StatusOr<v1::CaseStatus> status = ParseStatus(opt.status);
    if (!status.ok()) return PrintError(status.status().message(), 2);
    req.set_status(*status);
  }
  req.set_place_contains(opt.place);
  req.set_page_size(opt.page_size);
  req.set_page_token(opt.page_token);

  return CallPagesAndPrint(
      global, &v1::Homeward::Stub::ListCases, req, opt.all,
      [](const v1::ListCasesResponse& page, v1::ListCasesResponse* all) {
        all->mutable_cases()->MergeFrom(page.cases());
      },
      PrintCaseTable);
}

int RunDelete(const std::string& id, const GlobalOptions& global) {
  v1::DeleteCaseRequest req;
  req.set_id(id);
  return CallAndPrint(global, CallKind::kQuick, &v1::Homeward::Stub::DeleteCase, req,
                      [&id](const v1::DeleteCaseResponse& reply) {
                        std::cout << absl::StrFormat("deleted case %s: %d photo(s), %d face(s)\n",
                                                     id, reply.photos_deleted(),
                                                     reply.faces_deleted());
                      });
}

// Writes the case's archive to `out` (via a temporary file renamed into place, so a failed
// call never leaves half an archive under that name).
int RunExport(const std::string& id, const std::string& out, const GlobalOptions& global) {
  auto client = RpcClient::Connect(global);
  if (!client.ok()) return PrintError(client.status().message(), 2);
  v1::ExportCaseRequest req;
  req.set_id(id);
  v1::ExportCaseResponse reply;
  grpc::Status s =
      (*client)->stub().ExportCase((*client)->NewContext(CallKind::kUpload).get(), req, &reply);
  if (!s.ok()) return PrintRpcError(s);
  const std::string tmp = out + ".part";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(reply.archive().data(), static_cast<std::streamsize>(reply.archive().size()));
    f.close();
    if (!f) {
      std::remove(tmp.c_str());
      return PrintError(absl::StrCat(out, ": cannot write the archive"));
    }
  }
  if (std::rename(tmp.c_str(), out.c_str()) != 0) {
    std::remove(tmp.c_str());
    return PrintError(absl::StrCat(out, ": cannot write the archive"));
  }
  if (global.json) {
    std::cout << absl::StrFormat(
        "{\"caseId\": \"%s\", \"file\": \"%s\", \"photos\": %d, "
        "\"bytes\": %d}\n",
        id, out, reply.photos(), reply.archive().size());
  } else {
    std::cout << absl::StrFormat(
        "exported case %s to %s: %d photo(s), %d bytes (tar: case.json and photos/)\n", id, out,
        reply.photos(), reply.archive().size());
  }
  return 0;
}

}  // namespace

Runner RegisterCase(CLI::App& app, const GlobalOptions& global) {
  CLI::App* group = app.add_subcommand("case", "create, show, list, delete and export cases");

  auto create = std::make_shared<CreateOptions>();
  CLI::App* c = group->add_subcommand("create", "register a missing, found or sighting case");
  c->add_option("--kind", create->kind, "missing, found or sighting")->required();
  c->add_option("--name", create->name, "name or alias")->required();
  c->add_option("--birth-date", create->birth_date, "YYYY-MM-DD");
  c->add_option("--sex", create->sex, "f or m");
  c->add_option("--place", create->place, "where missing, found or seen");
  c->add_option("--event-date", create->event_date, "date missing, found or seen (YYYY-MM-DD)");
  c->add_option("--notes", create->notes, "free text");
  c->add_option("--contact", create->contact, "family or police contact");

  auto show_id = std::make_shared<std::string>();
  CLI::App* show = group->add_subcommand("show", "print one case");
  show->add_option("case_id", *show_id, "case id")->required();

  auto list = std::make_shared<ListOptions>();
  CLI::App* l = group->add_subcommand("list", "list cases, oldest first");
  l->add_option("--kind", list->kind, "missing, found or sighting (default: all)");
  l->add_option("--status", list->status, "open, reunited, closed or withdrawn (default: all)");
  l->add_option("--place", list->place, "place contains (case-insensitive)");
  l->add_option("--page-size", list->page_size, "cases per page, 1..1000 (default 50)")
      ->check(CLI::Range(1, 1000));
  l->add_option("--page-token", list->page_token, "continue from a previous page");
  l->add_flag("--all", list->all, "follow every page");

  auto delete_id = std::make_shared<std::string>();
  CLI::App* del =
      group->add_subcommand("delete", "delete a case with its photos and faces (cannot be undone)");
  del->add_option("case_id", *delete_id, "case id")->required();

  auto export_args = std::make_shared<std::pair<std::string, std::string>>();
  CLI::App* exp = group->add_subcommand(
      "export", "write everything held about a case (case.json and its photos) to a tar file");
  exp->add_option("case_id", export_args->first, "case id")->required();
  exp->add_option("out", export_args->second, "the archive to write, e.g. case-12.tar")->required();

  return DispatchChildren(group,
                          {{c, [create, &global] { return RunCreate(*create, global); }},
                           {show, [show_id, &global] { return RunShow(*show_id, global); }},
                           {l, [list, &global] { return RunList(*list, global); }},
                           {del, [delete_id, &global] { return RunDelete(*delete_id, global); }},
                           {exp, [export_args, &global] {
                              return RunExport(export_args->first, export_args->second, global);
                            }}});
}

}  // namespace homeward::cli
