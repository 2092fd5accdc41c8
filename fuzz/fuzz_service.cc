// Fuzz target: the protobuf request handlers of HomewardService (server/service.h), driven
// in-process: the real service over a real Gallery (models, SQLite catalog, Faiss indexes,
// the shipped age calibration) in a temporary data dir, registered on a grpc::Server without
// a port and called through its in-process channel, so every call goes through
// authentication, the worker pool, validation, the role checks, the gallery and the audit.
//
// Input: byte 0 picks the RPC (15 methods, in the order of the proto), byte 1 the caller (no key, a bogus key, a
// malformed header, volunteer, family, investigator, admin); the rest is the serialized
// request message (inputs that do not parse as that message are rejected).
//
// Checked on every reply: the status is never UNKNOWN or INTERNAL (an exception or library
// failure leaking to the edge), and a volunteer or family never sees the display name or
// contact of a case it does not own. At start-up an admin creates a MISSING and a FOUND case
// with a demo photo each (a lead between them) and a volunteer submits a sighting, so the ids
// "1".."3" in the seeds name real cases, photos and faces. State accumulates over a run
// (cases created, deleted); a crash is reproduced by replaying the input after the corpus.
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_util.h"
#include "gallery/gallery.h"
#include "homeward/v1/homeward.grpc.pb.h"
#include "server/auth.h"
#include "server/service.h"

namespace {

namespace pb = ::homeward::v1;
using homeward::fuzz::Fail;
using homeward::server::Role;

enum CallerKind { kNoKey, kBogusKey, kMalformed, kVolunteer, kFamily, kInvestigator, kAdmin,
                  kCallerKinds };

struct Harness {
  std::string dir;
  std::map<CallerKind, std::string> keys;  // bearer tokens
  std::map<CallerKind, std::string> key_ids;
  std::unique_ptr<homeward::server::KeyStore> key_store;
  std::unique_ptr<homeward::gallery::Gallery> gallery;
  std::unique_ptr<homeward::server::HomewardService> service;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<pb::Homeward::Stub> stub;
  std::map<std::string, std::string> case_owner;  // case id -> owner key id (known cases)
};

Harness* h = nullptr;

bool Privileged(CallerKind c) { return c == kInvestigator || c == kAdmin; }

// A demo photo scaled to `width` pixels and re-encoded as JPEG.
std::string DemoJpeg(const char* name, int width) {
  std::string bytes;
  if (!homeward::fuzz::ReadFile(homeward::fuzz::DemoDir() + "/" + name, &bytes)) {
    homeward::fuzz::Skip(absl::StrCat("demo photo ", name, " missing (scripts/setup.sh models)"));
  }
  cv::Mat img = cv::imdecode(cv::Mat(1, static_cast<int>(bytes.size()), CV_8UC1, bytes.data()),
                             cv::IMREAD_COLOR);
  cv::Mat small;
  cv::resize(img, small, cv::Size(width, img.rows * width / img.cols), 0, 0, cv::INTER_AREA);
  std::vector<uchar> out;
  cv::imencode(".jpg", small, out, {cv::IMWRITE_JPEG_QUALITY, 85});
  return std::string(out.begin(), out.end());
}

template <typename Req, typename Resp>
grpc::Status Call(grpc::Status (pb::Homeward::Stub::*method)(grpc::ClientContext*, const Req&,
                                                             Resp*),
                  CallerKind caller, const Req& req, Resp* resp) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  switch (caller) {
    case kNoKey: break;
    case kBogusKey: ctx.AddMetadata("authorization", "Bearer hwk_00"); break;
    case kMalformed: ctx.AddMetadata("authorization", "Basic x"); break;
    default: ctx.AddMetadata("authorization", "Bearer " + h->keys.at(caller)); break;
  }
  return (h->stub.get()->*method)(&ctx, req, resp);
}

void MustOk(const grpc::Status& s, const char* what) {
  if (!s.ok()) Fail(absl::StrCat("set-up call ", what, ": ", s.error_message()));
}

void Populate() {
  const std::string photo = DemoJpeg("sample2.jpg", 400);
  for (pb::CaseKind kind : {pb::MISSING, pb::FOUND}) {
    pb::CreateCaseRequest create;
    pb::Case* c = create.mutable_case_();
    c->set_kind(kind);
    c->set_display_name(kind == pb::MISSING ? "Secret Name" : "Found Child");
    c->set_sex(pb::FEMALE);
    c->set_birth_date("2012-05-01");
    c->set_event_date("2020-01-02");
    c->set_place("Lyon");
    c->set_reporter_contact("secret contact");
    pb::Case created;
    MustOk(Call(&pb::Homeward::Stub::CreateCase, kAdmin, create, &created), "CreateCase");
    h->case_owner[created.id()] = h->key_ids[kAdmin];
    pb::AddPhotoRequest add;
    add.set_case_id(created.id());
    add.set_image(kind == pb::MISSING ? photo : DemoJpeg("sample2.jpg", 360));
    add.set_taken_on("2019-06-01");
    pb::AddPhotoResponse added;
    MustOk(Call(&pb::Homeward::Stub::AddPhoto, kAdmin, add, &added), "AddPhoto");
  }
  pb::SubmitSightingRequest sighting;
  sighting.set_image(DemoJpeg("sample2.jpg", 380));
  sighting.set_seen_on("2021-03-04");
  sighting.set_place("Lyon");
  pb::SubmitSightingResponse seen;
  MustOk(Call(&pb::Homeward::Stub::SubmitSighting, kVolunteer, sighting, &seen), "SubmitSighting");
  h->case_owner[seen.case_id()] = h->key_ids[kVolunteer];
}

// The privacy rule of AddResults: names only for owners, investigators and admins.
void CheckCandidates(CallerKind caller,
                     const google::protobuf::RepeatedPtrField<pb::QueryResult>& results) {
  if (Privileged(caller)) return;
  for (const pb::QueryResult& r : results) {
    for (const pb::Candidate& c : r.candidates()) {
      auto owner = h->case_owner.find(c.case_().id());
      if (owner == h->case_owner.end() || owner->second == h->key_ids[caller]) continue;
      if (!c.case_().display_name().empty()) {
        Fail(absl::StrCat("caller ", h->key_ids[caller], " saw the name of case ", c.case_().id(),
                          " owned by ", owner->second));
      }
    }
  }
}

void CheckCase(CallerKind caller, const pb::Case& c) {
  if (Privileged(caller) || c.id().empty()) return;
  auto owner = h->case_owner.find(c.id());
  if (owner != h->case_owner.end() && owner->second != h->key_ids[caller]) {
    Fail(absl::StrCat("caller ", h->key_ids[caller], " read case ", c.id(), " owned by ",
                      owner->second));
  }
}

template <typename Req, typename Resp>
int Drive(grpc::Status (pb::Homeward::Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
          CallerKind caller, const uint8_t* data, size_t size,
          void (*check)(CallerKind, const Req&, const Resp&) = nullptr) {
  Req req;
  if (!req.ParseFromArray(data, static_cast<int>(size))) return -1;
  Resp resp;
  const grpc::Status s = Call(method, caller, req, &resp);
  static const bool verbose = std::getenv("HOMEWARD_FUZZ_VERBOSE") != nullptr;
  if (verbose) {
    std::fprintf(stderr, "%s caller=%d -> %d %s\n", Req::descriptor()->name().c_str(), caller,
                 s.error_code(), s.error_message().c_str());
  }
  if (s.error_code() == grpc::StatusCode::UNKNOWN ||
      s.error_code() == grpc::StatusCode::INTERNAL) {
    Fail(absl::StrCat(Req::descriptor()->name(), " as caller ", caller, " gave code ",
                      s.error_code(), ": ", s.error_message()));
  }
  if (s.ok() && check != nullptr) check(caller, req, resp);
  return 0;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (!homeward::fuzz::ModelsPresent()) {
    homeward::fuzz::Skip("models absent (scripts/setup.sh models)");
  }
  spdlog::set_level(spdlog::level::warn);
  google::protobuf::SetLogHandler(nullptr);  // fuzzed strings are often not UTF-8
  gpr_set_log_verbosity(GPR_LOG_SEVERITY_ERROR);
  h = new Harness();
  h->dir = homeward::fuzz::MakeTempDir("hw_fuzz_service");
  const std::string keys_file = h->dir + "/keys.jsonl";
  const std::map<CallerKind, std::pair<const char*, Role>> roles = {
      {kVolunteer, {"vol", Role::kVolunteer}},
      {kFamily, {"fam", Role::kFamily}},
      {kInvestigator, {"inv", Role::kInvestigator}},
      {kAdmin, {"adm", Role::kAdmin}}};
  for (const auto& [kind, id_role] : roles) {
    auto key = homeward::server::AddKey(keys_file, id_role.first, id_role.second);
    if (!key.ok()) Fail("AddKey: " + key.status().ToString());
    h->keys[kind] = *key;
    h->key_ids[kind] = id_role.first;
  }
  auto store = homeward::server::KeyStore::Load(keys_file);
  if (!store.ok()) Fail("KeyStore::Load: " + store.status().ToString());
  h->key_store = std::make_unique<homeward::server::KeyStore>(std::move(*store));

  homeward::gallery::GalleryOptions g;
  g.data_dir = h->dir + "/data";
  g.pipeline.recognition_model_path = homeward::fuzz::RecognitionModelPath();
  g.pipeline.landmark_model_path = homeward::fuzz::LandmarkModelPath();
  g.pipeline.workers = 1;
  g.pipeline.limits.max_bytes = 1 << 20;
  g.pipeline.limits.max_pixels = 640 * 480;  // bounds the cost of one fuzzed photo
  g.pipeline.detect_pixel_budget = 640 * 480;
  g.calibration_path = homeward::fuzz::SourceDir() + "/models/age_calibration_v1.json";
  auto gallery = homeward::gallery::Gallery::Open(g);
  if (!gallery.ok()) Fail("Gallery::Open: " + gallery.status().ToString());
  h->gallery = std::move(*gallery);

  homeward::server::ServiceOptions so;
  so.max_request_bytes = 1 << 20;
  so.threads = 1;
  so.max_queue = 4;
  h->service = std::make_unique<homeward::server::HomewardService>(h->gallery.get(),
                                                                   h->key_store.get(), so);
  grpc::ServerBuilder builder;
  builder.RegisterService(h->service.get());
  h->server = builder.BuildAndStart();
  if (h->server == nullptr) Fail("grpc::ServerBuilder::BuildAndStart failed");
  h->stub = pb::Homeward::NewStub(h->server->InProcessChannel(grpc::ChannelArguments()));
  Populate();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return -1;
  const uint8_t method = data[0] % 15;
  const auto caller = static_cast<CallerKind>(data[1] % kCallerKinds);
  data += 2;
  size -= 2;
  using S = pb::Homeward::Stub;
  switch (method) {
    case 0:
      return Drive(&S::CreateCase, caller, data, size,
                   +[](CallerKind c, const pb::CreateCaseRequest&, const pb::Case& resp) {
                     h->case_owner[resp.id()] = h->key_ids[c];
                   });
    case 1:
      return Drive(&S::GetCase, caller, data, size,
                   +[](CallerKind c, const pb::GetCaseRequest&, const pb::Case& resp) {
                     CheckCase(c, resp);
                   });
    case 2:
      return Drive(&S::UpdateCase, caller, data, size,
                   +[](CallerKind c, const pb::UpdateCaseRequest&, const pb::Case& resp) {
                     CheckCase(c, resp);
                   });
    case 3:
      return Drive(&S::ListCases, caller, data, size,
                   +[](CallerKind c, const pb::ListCasesRequest&,
                       const pb::ListCasesResponse& resp) {
                     for (const pb::Case& k : resp.cases()) CheckCase(c, k);
                   });
    case 4:
      return Drive(&S::DeleteCase, caller, data, size,
                   +[](CallerKind, const pb::DeleteCaseRequest& req,
                       const pb::DeleteCaseResponse&) { h->case_owner.erase(req.id()); });
    case 5: return Drive(&S::AddPhoto, caller, data, size);
    case 6: return Drive(&S::GetPhoto, caller, data, size);
    case 7: return Drive(&S::GetFaceCrop, caller, data, size);
    case 8:
      return Drive(&S::SubmitSighting, caller, data, size,
                   +[](CallerKind c, const pb::SubmitSightingRequest&,
                       const pb::SubmitSightingResponse& resp) {
                     h->case_owner[resp.case_id()] = h->key_ids[c];
                     CheckCandidates(c, resp.results());
                   });
    case 9:
      return Drive(&S::Search, caller, data, size,
                   +[](CallerKind c, const pb::SearchRequest&, const pb::SearchResponse& resp) {
                     CheckCandidates(c, resp.results());
                   });
    case 10: return Drive(&S::Compare, caller, data, size);
    case 11: return Drive(&S::GetStats, caller, data, size);
    case 12: return Drive(&S::ListLeads, caller, data, size);
    case 13: return Drive(&S::GetLead, caller, data, size);
    default: return Drive(&S::ReviewLead, caller, data, size);
  }
}
