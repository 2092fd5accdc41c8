// homeward photo add CASE_ID PHOTO: upload a photo of a case's child, over gRPC.
#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/str_format.h"
#include "clients/commands.h"
#include "clients/rpc_client.h"

namespace homeward::cli {
namespace {

struct AddOptions {
  std::string case_id;
  std::string photo;
  std::string taken;
  std::string age;
  int face = -1;  // -1: not chosen
  std::string source;
};

void PrintDetectedFaces(const v1::AddPhotoResponse& r) {
  std::cout << absl::StrFormat("photo %s%s: %d face(s)\n", r.photo_id(),
                               r.duplicate() ? " (already uploaded)" : "", r.faces_size());
  for (const v1::DetectedFace& f : r.faces()) {
    const v1::Box& b = f.box();
    std::string state =
        f.stored() ? "stored as face " + f.face_id() : "not stored: " + f.not_stored_reason();
    if (!f.quality().usable() && !f.quality().reason().empty()) {
      state += " (" + f.quality().reason() + ")";
    }
    if (f.quality().non_frontal()) {
      state += f.stored() ? "  NON_FRONTAL: kept as evidence" : "  NON_FRONTAL";
    }
    std::cout << absl::StrFormat("  face %d  box %dx%d+%d+%d  score %.2f  %s\n", f.index(),
                                 b.width(), b.height(), b.x(), b.y(), f.detector_score(), state);
  }
}

int RunAdd(const AddOptions& opt, const GlobalOptions& global) {
  v1::AddPhotoRequest req;
  req.set_case_id(opt.case_id);
  if (!IsDateOrEmpty(opt.taken)) return PrintError("--taken: expected YYYY-MM-DD", 2);
  req.set_taken_on(opt.taken);
  if (!opt.age.empty()) {
    absl::StatusOr<v1::Age> age = ParseAge(opt.age, /*always_estimated=*/false);
    if (!age.ok()) return PrintError(age.status().message(), 2);
    *req.mutable_age() = *age;
  }
  if (opt.face >= 0) {
    req.set_face_index(opt.face);
    req.set_has_face_index(true);
  } else {
    req.set_face_index(-1);
  }
  req.set_source(opt.source);
  absl::StatusOr<std::string> image = ReadImageFile(opt.photo);
  if (!image.ok()) return PrintError(image.status().message());
  req.set_image(*std::move(image));

  return CallAndPrint(global, CallKind::kUpload, &v1::Homeward::Stub::AddPhoto, req,
                      PrintDetectedFaces);
}

}  // namespace

Runner RegisterPhoto(CLI::App& app, const GlobalOptions& global) {
  CLI::App* group = app.add_subcommand("photo", "add photos to a case");
  auto opt = std::make_shared<AddOptions>();
  CLI::App* add = group->add_subcommand(
      "add", "upload a photo of the case's child; its face is stored and indexed");
  add->add_option("case_id", opt->case_id, "case id")->required();
  add->add_option("photo", opt->photo, "JPEG, PNG, WebP or BMP file (at most 20 MB)")->required();
  add->add_option("--taken", opt->taken, "date the photo was taken (YYYY-MM-DD)");
  add->add_option("--age", opt->age,
                  "child's age in the photo: N (exact) or MIN-MAX (estimated); "
                  "default: from the birth date");
  add->add_option("--face", opt->face,
                  "index of the child's face when the photo has several (from a previous reply)")
      ->check(CLI::NonNegativeNumber);
  add->add_option("--source", opt->source, "e.g. family, police");
  return DispatchChildren(group, {{add, [opt, &global] { return RunAdd(*opt, global); }}});
}

}  // namespace homeward::cli
