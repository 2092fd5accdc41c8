#include "server/service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "base/status_macros.h"
#include "server/internal/case_export.h"
#include "server/internal/convert.h"
#include "server/internal/worker_pool.h"

namespace homeward::server {
namespace {

namespace pb = ::homeward::v1;
using internal::CheckDate;
using internal::CheckImage;
using internal::CheckTopK;
using internal::ParseId;
using internal::ToAgeInfo;

constexpr int kDefaultCropSize = 150;
constexpr int kMinCropSize = 32, kMaxCropSize = 512;
constexpr int kDefaultPageSize = 50, kMaxPageSize = 1000;
constexpr size_t kMaxTextChars = 10000;

absl::Status Denied(absl::string_view what) { return absl::PermissionDeniedError(what); }


absl::Status CheckText(absl::string_view field, const std::string& s, size_t max = kMaxTextChars) {
  if (s.size() > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is ", s.size(), " bytes: shorten it to at most ", max));
  }
  return absl::OkStatus();
}

std::string ContentType(const std::string& bytes) {
  auto info = embed::ProbeImage(bytes, embed::DecodeLimits{INT64_MAX, INT64_MAX});
  if (!info.ok()) return "application/octet-stream";
  return "image/" + info->format;
}

void AddDnaCaveat(google::protobuf::RepeatedPtrField<pb::Caveat>* caveats) {
  pb::Caveat* c = caveats->Add();
  c->set_code("DNA_CONFIRMATION");
  c->set_message(gallery::kDnaReminder);
}

absl::StatusOr<gallery::FaceRef> ToFaceRef(absl::string_view field, const pb::FaceRef& ref,
                                           int64_t max_bytes) {
  gallery::FaceRef out;
  switch (ref.ref_case()) {
    case pb::FaceRef::kImage:
      HW_RETURN_IF_ERROR(CheckImage(absl::StrCat(field, ".image"), ref.image(), max_bytes));
      out.image = ref.image();
      break;
    case pb::FaceRef::kFaceId: {
      HW_ASSIGN_OR_RETURN(out.face_id, ParseId(absl::StrCat(field, ".face_id"), ref.face_id()));
      break;
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat(field, ": set image or face_id"));
  }
  HW_ASSIGN_OR_RETURN(out.age, ToAgeInfo(absl::StrCat(field, ".age"), ref.age()));
  return out;
}

}  // namespace

HomewardService::HomewardService(gallery::Gallery* gallery, const KeyStore* keys,
                                 const ServiceOptions& options)
    : gallery_(gallery),
      keys_(keys),
      options_(options),
      pool_(std::make_unique<internal::WorkerPool>(options.threads, options.max_queue,
                                                   4 * options.max_queue,
                                                   gallery->pipeline().workers())) {
  // A volunteer's thumbnail grants outlive a restart: they are kept in the catalog with their
  // expiry, and the unexpired ones come back here.
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  auto saved = gallery_->catalog().LoadGrants(now_ms);
  if (!saved.ok()) {
    spdlog::warn("loading the volunteers' candidate grants failed: {}",
                 std::string(saved.status().message()));
    return;
  }
  const auto steady_now = internal::CandidateGrants::Clock::now();
  for (const store::Catalog::Grant& g : *saved) {
    grants_.Grant(g.key_id, {g.face_id},
                  steady_now + std::chrono::milliseconds(g.expires_ms - now_ms) - grants_.ttl());
  }
}

HomewardService::~HomewardService() = default;  // the pool runs what it accepted, then joins

absl::StatusOr<Caller> HomewardService::Authenticate(grpc::CallbackServerContext* ctx) const {
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) return AuthenticateHeader(std::nullopt);
  return AuthenticateHeader(absl::string_view(it->second.data(), it->second.size()));
}

absl::StatusOr<Caller> HomewardService::AuthenticateHeader(
    std::optional<absl::string_view> authorization) const {
  if (options_.insecure_dev) return Caller{"dev", Role::kAdmin};
  if (!authorization.has_value()) {
    return absl::UnauthenticatedError(
        "missing API key: send the metadata `authorization: Bearer <key>`");
  }
  const absl::string_view value = *authorization;
  constexpr absl::string_view kBearer("bearer ");
  if (value.size() <= kBearer.size() ||
      !absl::EqualsIgnoreCase(value.substr(0, kBearer.size()), kBearer)) {
    return absl::UnauthenticatedError("the authorization metadata must read `Bearer <key>`");
  }
  return keys_->Authenticate(absl::StripAsciiWhitespace(value.substr(kBearer.size())));
}

grpc::ServerUnaryReactor* HomewardService::Run(grpc::CallbackServerContext* ctx, const char* method,
                                               Cost cost, Handler handler) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  const absl::Time start = absl::Now();
  auto finish = [this, reactor, method, start](const Caller* caller, const absl::Status& status) {
    metrics_.RecordCall(method, status.code(), absl::ToDoubleSeconds(absl::Now() - start));
    spdlog::info("rpc method={} key_id={} role={} code={} latency_ms={:.1f}", method,
                 caller ? caller->key_id : "-", caller ? std::string(RoleName(caller->role)) : "-",
                 absl::StatusCodeToString(status.code()),
                 absl::ToDoubleMilliseconds(absl::Now() - start));
    reactor->Finish(internal::ToGrpcStatus(status));
  };
  if (shutting_down_) {
    finish(nullptr, absl::UnavailableError("the server is shutting down: retry shortly"));
    return reactor;
  }
  absl::StatusOr<Caller> caller = Authenticate(ctx);
  if (!caller.ok()) {
    finish(nullptr, caller.status());
    return reactor;
  }
  auto work = [this, ctx, finish, caller = *caller, handler = std::move(handler)] {
    absl::Status status;
    Audit audit;
    if (ctx->IsCancelled()) {
      status = absl::CancelledError("the call was cancelled before it started");
    } else if (ctx->deadline() <= std::chrono::system_clock::now()) {
      status = absl::DeadlineExceededError(
          "the deadline passed while the call waited for a worker: allow more time");
    } else {
      try {
        status = handler(caller, audit);
      } catch (const std::exception& e) {
        spdlog::error("unexpected exception in a handler: {}", e.what());
        status = absl::InternalError("internal error; the server logged it");
      } catch (...) {
        spdlog::error("unexpected non-standard exception in a handler");
        status = absl::InternalError("internal error; the server logged it");
      }
    }
    // A change's entry went with it (Audit::recorded); a refused or failed call, or a read,
    // gets its own entry here, with its outcome.
    if (!audit.action.empty() && !(audit.recorded && status.ok())) {
      store::AuditEntry entry;
      entry.actor = caller.key_id;
      entry.role = std::string(RoleName(caller.role));
      entry.action = audit.action;
      entry.target_type = audit.target_type;
      entry.target_id = audit.target_id;
      entry.detail = absl::StrCat("code=", absl::StatusCodeToString(status.code()),
                                  audit.detail.empty() ? "" : " ", audit.detail);
      auto appended = gallery_->catalog().AppendAudit(entry);
      if (!appended.ok()) {
        spdlog::error("audit append failed: {}", appended.status().ToString());
        // Nothing leaves the server unaudited.
        if (status.ok()) {
          status = absl::UnavailableError(absl::StrCat(
              "the audit trail could not be written (", appended.status().message(),
              "): retry later"));
        }
      }
    }
    finish(&caller, status);
  };
  if (!pool_->TrySubmit(cost != Cost::kLight, std::move(work), cost == Cost::kPipeline)) {
    finish(&*caller, absl::UnavailableError(
                         "the server is busy (too many calls in flight): retry with back-off"));
  }
  return reactor;
}

store::AuditEntry HomewardService::ChangeAudit(const Caller& caller, const Audit& audit) {
  store::AuditEntry entry;
  entry.actor = caller.key_id;
  entry.role = std::string(RoleName(caller.role));
  entry.action = audit.action;
  entry.target_type = audit.target_type;
  entry.target_id = audit.target_id;
  entry.detail = "code=OK";  // written only if the change commits
  return entry;
}

absl::StatusOr<store::Case> HomewardService::OwnedCase(const Caller& caller, int64_t case_id,
                                                       const char* what) {
  HW_ASSIGN_OR_RETURN(store::Case c, gallery_->catalog().GetCase(case_id));
  if (!caller.privileged() && c.owner_key_id != caller.key_id) {
    return Denied(absl::StrCat("a ", RoleName(caller.role), " may only ", what,
                               " its own cases, and case ", case_id,
                               " is not yours: ask an investigator"));
  }
  return c;
}

absl::StatusOr<store::FaceAttributes> HomewardService::FaceOf(int64_t face_id) {
  HW_ASSIGN_OR_RETURN(auto attrs, gallery_->catalog().GetFaceAttributes({face_id}));
  if (attrs.empty()) {
    return absl::NotFoundError(
        absl::StrCat("face ", face_id, " does not exist (deleted, or a wrong id)"));
  }
  return attrs.front();
}

void HomewardService::AddResults(const Caller& caller,
                                 const std::vector<gallery::QueryResult>& results,
                                 google::protobuf::RepeatedPtrField<pb::QueryResult>* out) {
  std::vector<int64_t> shown;
  const bool volunteer = caller.role == Role::kVolunteer;
  for (const gallery::QueryResult& r : results) {
    pb::QueryResult* qr = out->Add();
    internal::ToProtoDetectedFace(r.query, qr->mutable_query_face());
    qr->set_credible_match(r.credible_match);
    qr->set_lead_threshold(static_cast<float>(r.lead_threshold));
    if (volunteer) {
      // A volunteer sees likely matches only, never a row of strangers: below the lead
      // threshold the answer is a plain sentence, and an investigator reviews the sighting.
      if (!r.credible_match) {
        qr->set_message(
            "No likely match yet: an investigator will review your sighting, and new cases are "
            "compared with it as they arrive. Thank you.");
      }
    } else {
      qr->set_message(r.message);
      for (const gallery::AgeLeftOut& l : r.age_left_out) {
        internal::ToProtoAgeLeftOut(l, qr->add_age_left_out());
      }
    }
    for (const gallery::Candidate& c : r.candidates) {
      if (volunteer && !c.above_lead_threshold) continue;
      pb::Candidate* pc = qr->add_candidates();
      internal::ToProtoCandidate(c, pc);
      if (caller.privileged() || c.case_info.owner_key_id == caller.key_id) continue;
      pb::CaseSummary* s = pc->mutable_case_();
      s->clear_display_name();  // names only for the owner, investigators and admins
      if (caller.role == Role::kVolunteer) {
        // Volunteers see face crops and case ids only.
        shown.push_back(c.face.face_id);
        s->clear_sex();
        s->clear_event_date();
        s->clear_place();
        pc->clear_photo_id();
        pc->clear_taken_on();
      }
    }
  }
  if (caller.role == Role::kVolunteer && !shown.empty()) {
    grants_.Grant(caller.key_id, shown);
    const int64_t expires_ms =
        absl::ToUnixMillis(absl::Now()) +
        std::chrono::duration_cast<std::chrono::milliseconds>(grants_.ttl()).count();
    absl::Status saved = gallery_->catalog().SaveGrants(caller.key_id, shown, expires_ms);
    if (!saved.ok()) {  // the grant holds until a restart; the reply is not failed for it
      spdlog::warn("saving candidate grants failed: {}", std::string(saved.message()));
    }
  }
}

grpc::ServerUnaryReactor* HomewardService::CreateCase(grpc::CallbackServerContext* ctx,
                                                      const pb::CreateCaseRequest* req,
                                                      pb::Case* resp) {
  return Run(ctx, "CreateCase", false, [this, req, resp](const Caller& caller, Audit& audit) {
    audit = {"CreateCase", "case", ""};
    if (caller.role == Role::kVolunteer) {
      return Denied("volunteers cannot create cases: send a street photo with SubmitSighting");
    }
    HW_ASSIGN_OR_RETURN(store::Case c, internal::ToStoreCase(req->case_()));
    if (c.kind == store::CaseKind::kSighting) {
      return absl::InvalidArgumentError(
          "SIGHTING cases are created by SubmitSighting: use kind MISSING or FOUND");
    }
    if (caller.role == Role::kFamily && c.kind != store::CaseKind::kMissing) {
      return Denied("families register MISSING cases only; FOUND cases come from investigators");
    }
    c.owner_key_id = caller.key_id;
    const store::AuditEntry entry = ChangeAudit(caller, audit);
    HW_ASSIGN_OR_RETURN(int64_t id, gallery_->catalog().AddCase(c, &entry));
    audit.target_id = id;
    audit.recorded = true;
    HW_ASSIGN_OR_RETURN(store::Case stored, gallery_->catalog().GetCase(id));
    internal::ToProtoCase(stored, 0, resp);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* HomewardService::GetCase(grpc::CallbackServerContext* ctx,
                                                   const pb::GetCaseRequest* req, pb::Case* resp) {
  return Run(ctx, "GetCase", false, [this, req, resp](const Caller& caller, Audit& audit) {
    audit = {"GetCase", "case", ""};
    HW_ASSIGN_OR_RETURN(int64_t id, ParseId("id", req->id()));
    audit.target_id = id;
    HW_ASSIGN_OR_RETURN(store::Case c, OwnedCase(caller, id, "read"));
    HW_ASSIGN_OR_RETURN(auto photos, gallery_->catalog().ListPhotos(id));
    internal::ToProtoCase(c, static_cast<int>(photos.size()), resp);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* HomewardService::UpdateCase(grpc::CallbackServerContext* ctx,
                                                      const pb::UpdateCaseRequest* req,
                                                      pb::Case* resp) {
  return Run(ctx, "UpdateCase", false, [this, req, resp](const Caller& caller, Audit& audit) {
    audit = {"UpdateCase", "case", ""};
    HW_ASSIGN_OR_RETURN(int64_t id, ParseId("case.id", req->case_().id()));
    audit.target_id = id;
    HW_ASSIGN_OR_RETURN(store::Case existing, OwnedCase(caller, id, "update"));
    pb::Case wanted = req->case_();
    if (wanted.kind() == pb::CASE_KIND_UNSPECIFIED) {
      wanted.set_kind(static_cast<pb::CaseKind>(existing.kind));
    }
    if (wanted.kind() != static_cast<pb::CaseKind>(existing.kind)) {
      return absl::InvalidArgumentError("case.kind cannot change: leave it unset or unchanged");
    }
    if (wanted.status() == pb::CASE_STATUS_UNSPECIFIED) {
      wanted.set_status(static_cast<pb::CaseStatus>(existing.status));
    }
    HW_ASSIGN_OR_RETURN(store::Case c, internal::ToStoreCase(wanted));
    c.id = id;
    c.owner_key_id = existing.owner_key_id;
    const store::AuditEntry entry = ChangeAudit(caller, audit);
    HW_RETURN_IF_ERROR(gallery_->UpdateCase(c, &entry));  // keeps the in-memory age keys current
    audit.recorded = true;
    HW_ASSIGN_OR_RETURN(store::Case stored, gallery_->catalog().GetCase(id));
    HW_ASSIGN_OR_RETURN(auto photos, gallery_->catalog().ListPhotos(id));
    internal::ToProtoCase(stored, static_cast<int>(photos.size()), resp);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* HomewardService::ListCases(grpc::CallbackServerContext* ctx,
                                                     const pb::ListCasesRequest* req,
                                                     pb::ListCasesResponse* resp) {
  return Run(ctx, "ListCases", false, [this, req, resp](const Caller& caller, Audit& audit) {
    audit = {"ListCases", "case", ""};
    store::CaseQuery q;
    if (req->kind() < pb::CASE_KIND_UNSPECIFIED || req->kind() > pb::SIGHTING) {
      return absl::InvalidArgumentError("kind must be unset, MISSING, FOUND or SIGHTING");
    }
    if (req->status() < pb::CASE_STATUS_UNSPECIFIED || req->status() > pb::WITHDRAWN) {
      return absl::InvalidArgumentError(
          "status must be unset, OPEN, REUNITED, CLOSED or WITHDRAWN");
    }
    if (req->page_size() < 0 || req->page_size() > kMaxPageSize) {
      return absl::InvalidArgumentError(absl::StrCat("page_size is ", req->page_size(), ": use 1..",
                                                     kMaxPageSize, " (or 0 for ", kDefaultPageSize,
                                                     ")"));
    }
    HW_RETURN_IF_ERROR(CheckDate("event_from", req->event_from()));
    HW_RETURN_IF_ERROR(CheckDate("event_to", req->event_to()));
    HW_RETURN_IF_ERROR(CheckText("place_contains", req->place_contains(), 500));
    if (req->kind() != pb::CASE_KIND_UNSPECIFIED) {
      q.kind = static_cast<store::CaseKind>(req->kind());
    }
    if (req->status() != pb::CASE_STATUS_UNSPECIFIED) {
      q.status = static_cast<store::CaseStatus>(req->status());
    }
    q.place_contains = req->place_contains();
    q.event_from = req->event_from();
    q.event_to = req->event_to();
    q.page_size = req->page_size() == 0 ? kDefaultPageSize : req->page_size();
    q.page_token = req->page_token();
    // Volunteers and families list their own cases only: the owner filter is part of the
    // query, so filters and page tokens never reveal other owners' cases.
    if (!caller.privileged()) q.owner_key_id = caller.key_id;
    HW_ASSIGN_OR_RETURN(store::CasePage page, gallery_->catalog().ListCases(q));
    for (const store::Case& c : page.cases) {
      HW_ASSIGN_OR_RETURN(auto photos, gallery_->catalog().ListPhotos(c.id));
      internal::ToProtoCase(c, static_cast<int>(photos.size()), resp->add_cases());
    }
    resp->set_next_page_token(page.next_page_token);
    audit.detail = absl::StrCat("cases=", page.cases.size());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* HomewardService::DeleteCase(grpc::CallbackServerContext* ctx,
                                                      const pb::DeleteCaseRequest* req,
                                                      pb::DeleteCaseResponse* resp) {
  return Run(ctx, "DeleteCase", false, [this, req, resp](const Caller& caller, Audit& audit) {
    audit = {"DeleteCase", "case", ""};
    HW_ASSIGN_OR_RETURN(int64_t id, ParseId("id", req->id()));
    audit.target_id = id;
    if (caller.role == Role::kVolunteer || caller.role == Role::kInvestigator) {
      return Denied("only an admin, or the family that registered the case, may delete it");
    }
    HW_RETURN_IF_ERROR(OwnedCase(caller, id, "delete").status());
    const store::AuditEntry entry = ChangeAudit(caller, audit);
    HW_ASSIGN_OR_RETURN(gallery::DeleteCounts counts, gallery_->DeleteCase(id, &entry));
    audit.recorded = true;
    resp->set_photos_deleted(counts.photos);
    resp->set_faces_deleted(counts.faces);
    audit.detail = absl::StrCat("photos=", counts.photos, " faces=", counts.faces);
    return absl::OkStatus();
  });
}

// A data subject's access request, or a case handed to another agency: everything held about
// the case in one archive. Investigators and admins only (it holds the reporter's contact and
// every photo); the export is audited like any read.
grpc::ServerUnaryReactor* HomewardService::ExportCase(grpc::CallbackServerContext* ctx,
                                                      const pb::ExportCaseRequest* req,
                                                      pb::ExportCaseResponse* resp) {
  return Run(ctx, "ExportCase", true, [this, req, resp](const Caller& caller, Audit& audit) {
    audit = {"ExportCase", "case", ""};
    HW_ASSIGN_OR_RETURN(int64_t id, ParseId("id", req->id()));
    audit.target_id = id;
    if (!caller.privileged()) {
      return Denied(
          "only investigators and admins may export a case: ask one to export it for you");
    }
    HW_ASSIGN_OR_RETURN(internal::CaseExport exported,
                        internal::ExportCase(gallery_->catalog(), id, caller.key_id,
                                             absl::ToUnixMillis(absl::Now()), kMaxExportBytes));
    resp->set_archive(std::move(exported.archive));
    resp->set_file_name(absl::StrCat("case-", id, ".tar"));
    resp->set_photos(exported.photos);
    audit.detail = absl::StrCat("photos=", exported.photos, " audit_rows=", exported.audit_rows,
                                " bytes=", resp->archive().size());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* HomewardService::AddPhoto(grpc::CallbackServerContext* ctx,
                                                    const pb::AddPhotoRequest* req,
                                                    pb::AddPhotoResponse* resp) {
  const Cost cost = Cost::kPipeline;  // detects faces on a face-pipeline worker
  return Run(ctx, "AddPhoto", cost, [this, req, resp](const Caller& caller, Audit& audit) {
    audit = {"AddPhoto", "case", ""};
    HW_ASSIGN_OR_RETURN(int64_t case_id, ParseId("case_id", req->case_id()));
    audit.target_id = case_id;
    if (caller.role == Role::kVolunteer) {
      return Denied("volunteers add photos with SubmitSighting, not AddPhoto");
    }
    HW_RETURN_IF_ERROR(CheckImage("image", req->image(), options_.max_request_bytes));
    HW_RETURN_IF_ERROR(CheckDate("taken_on", req->taken_on()));
    HW_RETURN_IF_ERROR(CheckText("source", req->source(), 100));
    gallery::PhotoInput in;
    in.case_id = case_id;
    HW_ASSIGN_OR_RETURN(in.age, ToAgeInfo("age", req->age()));
    if (req->has_face_index()) {
      if (req->face_index() < 0 || req->face_index() > 1000) {
        return absl::InvalidArgumentError(
            "face_index must be the index of a detected face (0..), from a previous reply");
      }
      in.face_index = req->face_index();
    }
    if (req->face_box().width() != 0) {
      const pb::Box& b = req->face_box();
      if (b.x() < 0 || b.y() < 0 || b.width() <= 0 || b.height() <= 0) {
        return absl::InvalidArgumentError(
            "face_box needs x, y >= 0 and width, height > 0 (width 0 = no box)");
      }
      in.face_box = embed::Box{b.x(), b.y(), b.width(), b.height()};
    }
    HW_RETURN_IF_ERROR(OwnedCase(caller, case_id, "add photos to").status());
    in.bytes = req->image();
    in.taken_on = req->taken_on();
    in.source = req->source();
    const store::AuditEntry entry = ChangeAudit(caller, audit);
    in.audit = &entry;
    HW_ASSIGN_OR_RETURN(gallery::AddPhotoOutcome out, gallery_->AddPhoto(in));
    audit.recorded = out.photo_id > 0;
    if (out.photo_id > 0 && !out.duplicate) {
      metrics_.AddPhotosIngested(1);
      metrics_.AddFacesIngested(std::count_if(out.faces.begin(), out.faces.end(),
                                              [](const auto& f) { return f.face_id > 0; }));
    }
    resp->set_photo_id(absl::StrCat(out.photo_id));
    resp->set_duplicate(out.duplicate);
    for (const auto& f : out.faces) internal::ToProtoDetectedFace(f, resp->add_faces());
    resp->set_no_face_reason(out.no_face_reason);
    audit.detail = absl::StrCat("photo=", out.photo_id, " faces=", out.faces.size());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* HomewardService::GetPhoto(grpc::CallbackServerContext* ctx,
                                                    const pb::GetPhotoRequest* req,
                                                    pb::GetPhotoResponse* resp) {
  return Run(ctx, "GetPhoto", false, [this, req, resp](const Caller& caller, Audit& audit) {
    audit = {"GetPhoto", "photo", ""};
    HW_ASSIGN_OR_RETURN(int64_t id, ParseId("photo_id", req->photo_id()));
    audit.target_id = id;
    // The caller's right first, from the photo's row: a refused caller never causes the
    // photo's bytes to be read (nor learns whether its file is intact).
    HW_ASSIGN_OR_RETURN(store::Photo info, gallery_->catalog().GetPhotoInfo(id));
    HW_RETURN_IF_ERROR(OwnedCase(caller, info.case_id, "see the photos of").status());
    HW_ASSIGN_OR_RETURN(store::Catalog::PhotoWithBytes p, gallery_->catalog().GetPhoto(id));
    resp->set_content_type(ContentType(p.bytes));
    resp->set_image(std::move(p.bytes));
    resp->set_case_id(absl::StrCat(p.photo.case_id));
    resp->set_taken_on(p.photo.date_taken);
    internal::ToProtoAge(gallery::AgeInfo{p.photo.age_min, p.photo.age_max, p.photo.age_estimated},
                         resp->mutable_age());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* HomewardService::GetFaceCrop(grpc::CallbackServerContext* ctx,
                                                       const pb::GetFaceCropRequest* req,
                                                       pb::GetFaceCropResponse* resp) {
  return Run(ctx, "GetFaceCrop", true, [this, req, resp](const Caller& caller, Audit& audit) {
    audit = {"GetFaceCrop", "face", ""};
    HW_ASSIGN_OR_RETURN(int64_t id, ParseId("face_id", req->face_id()));
    audit.target_id = id;
    int size = req->size() == 0 ? kDefaultCropSize : req->size();
    if (size < kMinCropSize || size > kMaxCropSize) {
      return absl::InvalidArgumentError(absl::StrCat("size is ", req->size(), ": use ",
                                                     kMinCropSize, "..", kMaxCropSize,
                                                     " (or 0 for ", kDefaultCropSize, ")"));
    }
    // The crops of MISSING and FOUND faces are how candidates are reviewed: families,
    // investigators and admins see them; a volunteer sees only those its own Search or
    // SubmitSighting returned as candidates (grants_), so that a volunteer key cannot page
    // through the children's faces by id. A SIGHTING face's crop is for privileged callers and
    // the sighting's owner, so one volunteer cannot page through another's street photos.
    HW_ASSIGN_OR_RETURN(store::FaceAttributes face, FaceOf(id));
    if (face.kind == store::CaseKind::kSighting) {
      HW_RETURN_IF_ERROR(OwnedCase(caller, face.case_id, "see the face crops of").status());
    } else if (caller.role == Role::kVolunteer && !grants_.Granted(caller.key_id, id)) {
      return Denied(absl::StrCat(
          "a volunteer sees the face crops of the candidates its own Search or SubmitSighting "
          "returned (for 24 hours); face ",
          id, " was not among them"));
    }
    HW_ASSIGN_OR_RETURN(std::string png, gallery_->FaceCropPng(id, size));
    resp->set_png(std::move(png));
    resp->set_face_id(absl::StrCat(id));
    resp->set_case_id(absl::StrCat(face.case_id));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* HomewardService::SubmitSighting(grpc::CallbackServerContext* ctx,
                                                          const pb::SubmitSightingRequest* req,
                                                          pb::SubmitSightingResponse* resp) {
  const Cost cost = Cost::kPipeline;  // detects faces on a face-pipeline worker
  return Run(ctx, "SubmitSighting", cost, [this, req, resp](const Caller& caller, Audit& audit) {
    audit = {"SubmitSighting", "case", ""};
    HW_RETURN_IF_ERROR(CheckImage("image", req->image(), options_.max_request_bytes));
    HW_RETURN_IF_ERROR(CheckDate("seen_on", req->seen_on()));
    HW_RETURN_IF_ERROR(CheckText("place", req->place(), 500));
    HW_RETURN_IF_ERROR(CheckText("notes", req->notes()));
    gallery::SightingInput in;
    HW_ASSIGN_OR_RETURN(in.estimated_age, ToAgeInfo("estimated_age", req->estimated_age()));
    HW_ASSIGN_OR_RETURN(in.top_k, CheckTopK("top_k", req->top_k()));
    in.bytes = req->image();
    in.seen_on = req->seen_on();
    in.place = req->place();
    in.notes = req->notes();
    in.reporter_key_id = caller.key_id;
    if (req->include_age_inconsistent()) {
      if (!caller.privileged()) {
        return Denied("only investigators and admins may ask for age-inconsistent candidates");
      }
      in.include_age_inconsistent = true;
    }
    const store::AuditEntry entry = ChangeAudit(caller, audit);
    in.audit = &entry;
    HW_ASSIGN_OR_RETURN(gallery::SightingOutcome out, gallery_->SubmitSighting(in));
    audit.target_id = out.case_id;
    audit.recorded = out.photo_id > 0;  // no face: nothing stored, the entry is Run's
    if (out.photo_id > 0) {
      metrics_.AddPhotosIngested(1);
      metrics_.AddFacesIngested(static_cast<int64_t>(out.results.size()));
    }
    audit.detail = absl::StrCat("photo=", out.photo_id, " faces=", out.results.size());
    // No face: nothing was stored, and "0" is not an id.
    if (out.case_id > 0) resp->set_case_id(absl::StrCat(out.case_id));
    if (out.photo_id > 0) resp->set_photo_id(absl::StrCat(out.photo_id));
    AddResults(caller, out.results, resp->mutable_results());
    resp->set_no_face_reason(out.no_face_reason);
    internal::ToProtoAge(out.age, resp->mutable_age());
    AddDnaCaveat(resp->mutable_caveats());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* HomewardService::Search(grpc::CallbackServerContext* ctx,
                                                  const pb::SearchRequest* req,
                                                  pb::SearchResponse* resp) {
  const Cost cost = req->has_image() ? Cost::kPipeline : Cost::kHeavy;
  return Run(ctx, "Search", cost, [this, req, resp](const Caller& caller, Audit& audit) {
    audit = {"Search", "", ""};
    HW_ASSIGN_OR_RETURN(gallery::SearchQuery q, internal::ToSearchQuery(*req));
    if (q.include_age_inconsistent && !caller.privileged()) {
      return Denied("only investigators and admins may ask for age-inconsistent candidates");
    }
    if (caller.role == Role::kVolunteer) {
      for (store::CaseKind k : q.kinds) {
        if (k == store::CaseKind::kSighting) {
          return Denied("volunteers search the MISSING and FOUND collections only");
        }
      }
    }
    std::vector<gallery::QueryResult> results;
    switch (req->query_case()) {
      case pb::SearchRequest::kImage: {
        audit.target_type = "image";
        if (!caller.privileged()) {
          return Denied(absl::StrCat(
              "a ", RoleName(caller.role),
              " searches with the faces of its own cases (face_id), not with a new image: ",
              caller.role == Role::kVolunteer ? "use SubmitSighting"
                                              : "add the photo to your case first"));
        }
        HW_RETURN_IF_ERROR(CheckImage("image", req->image(), options_.max_request_bytes));
        HW_ASSIGN_OR_RETURN(gallery::SearchOutcome out, gallery_->SearchImage(req->image(), q));
        results = std::move(out.results);
        resp->set_no_face_reason(out.no_face_reason);
        break;
      }
      case pb::SearchRequest::kFaceId: {
        audit.target_type = "face";
        HW_ASSIGN_OR_RETURN(int64_t face_id, ParseId("face_id", req->face_id()));
        audit.target_id = face_id;
        HW_ASSIGN_OR_RETURN(store::FaceAttributes face, FaceOf(face_id));
        HW_RETURN_IF_ERROR(OwnedCase(caller, face.case_id, "search with the faces of").status());
        q.exclude_case_id = face.case_id;
        HW_ASSIGN_OR_RETURN(gallery::QueryResult r, gallery_->SearchFace(face_id, q));
        results.push_back(std::move(r));
        break;
      }
      default:
        return absl::InvalidArgumentError("set the query: image (photo bytes) or face_id");
    }
    AddResults(caller, results, resp->mutable_results());
    AddDnaCaveat(resp->mutable_caveats());
    audit.detail = absl::StrCat("query_faces=", results.size());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* HomewardService::Compare(grpc::CallbackServerContext* ctx,
                                                   const pb::CompareRequest* req,
                                                   pb::CompareResponse* resp) {
  const Cost cost =
      req->a().has_image() || req->b().has_image() ? Cost::kPipeline : Cost::kHeavy;
  return Run(ctx, "Compare", cost, [this, req, resp](const Caller& caller, Audit& audit) {
    audit = {"Compare", "", ""};
    if (!caller.privileged()) return Denied("only investigators and admins may call Compare");
    HW_ASSIGN_OR_RETURN(gallery::FaceRef a, ToFaceRef("a", req->a(), options_.max_request_bytes));
    HW_ASSIGN_OR_RETURN(gallery::FaceRef b, ToFaceRef("b", req->b(), options_.max_request_bytes));
    if (a.face_id > 0) HW_RETURN_IF_ERROR(FaceOf(a.face_id).status());
    if (b.face_id > 0) HW_RETURN_IF_ERROR(FaceOf(b.face_id).status());
    HW_ASSIGN_OR_RETURN(gallery::CompareOutcome out, gallery_->Compare(a, b));
    resp->set_distance(static_cast<float>(out.distance));
    resp->set_score(static_cast<float>(out.score));
    resp->set_threshold(static_cast<float>(out.threshold));
    resp->set_possible_match(out.possible_match);
    resp->set_confidence(static_cast<float>(out.confidence));
    resp->set_no_face_reason(out.no_face_reason);
    internal::ToProtoAgeGap(out.age_gap, resp->mutable_age_gap());
    for (const auto& c : out.caveats) internal::ToProtoCaveat(c, resp->add_caveats());
    AddDnaCaveat(resp->mutable_caveats());
    audit.detail = absl::StrCat("a=", a.face_id, " b=", b.face_id);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* HomewardService::GetStats(grpc::CallbackServerContext* ctx,
                                                    const pb::GetStatsRequest*,
                                                    pb::GetStatsResponse* resp) {
  return Run(ctx, "GetStats", false, [this, resp](const Caller& caller, Audit&) {
    // Totals describe everyone's cases: investigators and admins see them; a volunteer or a
    // family sees the counts of its own cases only, and no index sizes.
    const bool totals = caller.privileged();
    HW_ASSIGN_OR_RETURN(std::vector<gallery::KindStats> stats,
                        totals ? gallery_->Stats() : gallery_->StatsForOwner(caller.key_id));
    int64_t indexed = 0;
    for (const gallery::KindStats& s : stats) {
      pb::KindStats* k = resp->add_kinds();
      k->set_kind(static_cast<pb::CaseKind>(s.kind));
      k->set_cases(s.cases);
      k->set_photos(s.photos);
      k->set_faces(s.faces);
      k->set_indexed_faces(s.indexed);
      indexed += s.indexed;
    }
    resp->set_index_type(gallery_->options().index.factory);
    resp->set_model_id(gallery_->pipeline().model_id());
    resp->set_index_size(indexed);
    resp->set_sighting_retention_days(options_.sighting_retention_days);
    if (totals) {
      HW_ASSIGN_OR_RETURN(int64_t expired, gallery_->catalog().ExpiredSightingCount());
      resp->set_expired_sightings(expired);
    }
    return absl::OkStatus();
  });
}

// Leads name children and link cases across families: investigators and admins only.
grpc::ServerUnaryReactor* HomewardService::ListLeads(grpc::CallbackServerContext* ctx,
                                                     const pb::ListLeadsRequest* req,
                                                     pb::ListLeadsResponse* resp) {
  return Run(ctx, "ListLeads", false, [this, req, resp](const Caller& caller, Audit& audit) {
    audit = {"ListLeads", "lead", ""};
    if (!caller.privileged()) return Denied("only investigators and admins may see leads");
    HW_ASSIGN_OR_RETURN(store::LeadQuery q, internal::ToLeadQuery(*req));
    HW_ASSIGN_OR_RETURN(gallery::LeadViewPage page, gallery_->ListLeads(q));
    for (const gallery::LeadView& v : page.leads) internal::ToProtoLead(v, resp->add_leads());
    resp->set_next_page_token(page.next_page_token);
    audit.detail = absl::StrCat("leads=", page.leads.size());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* HomewardService::GetLead(grpc::CallbackServerContext* ctx,
                                                   const pb::GetLeadRequest* req, pb::Lead* resp) {
  return Run(ctx, "GetLead", false, [this, req, resp](const Caller& caller, Audit& audit) {
    audit = {"GetLead", "lead", ""};
    HW_ASSIGN_OR_RETURN(int64_t id, ParseId("id", req->id()));
    audit.target_id = id;
    if (!caller.privileged()) return Denied("only investigators and admins may see leads");
    HW_ASSIGN_OR_RETURN(gallery::LeadView v, gallery_->GetLead(id));
    internal::ToProtoLead(v, resp);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* HomewardService::ReviewLead(grpc::CallbackServerContext* ctx,
                                                      const pb::ReviewLeadRequest* req,
                                                      pb::Lead* resp) {
  return Run(ctx, "ReviewLead", false, [this, req, resp](const Caller& caller, Audit& audit) {
    audit = {"ReviewLeadCall", "lead", ""};
    HW_ASSIGN_OR_RETURN(int64_t id, ParseId("id", req->id()));
    audit.target_id = id;
    if (!caller.privileged()) return Denied("only investigators and admins may review leads");
    HW_ASSIGN_OR_RETURN(store::LeadStatus decision, internal::ToLeadDecision(req->decision()));
    HW_RETURN_IF_ERROR(CheckText("note", req->note()));
    // The catalog appends the "ReviewLead" audit entry (reviewer, decision) in the same
    // transaction as the review; this call's own entry records the attempt and its outcome.
    HW_ASSIGN_OR_RETURN(gallery::LeadView v,
                        gallery_->ReviewLead(id, decision, req->note(), caller.key_id,
                                             std::string(RoleName(caller.role))));
    internal::ToProtoLead(v, resp);
    audit.detail = absl::StrCat("decision=", pb::LeadStatus_Name(req->decision()));
    return absl::OkStatus();
  });
}

absl::StatusOr<std::string> HomewardService::MetricsPage(
    std::optional<absl::string_view> authorization) {
  HW_ASSIGN_OR_RETURN(const Caller caller, AuthenticateHeader(authorization));
  if (!caller.privileged()) {
    return absl::PermissionDeniedError(
        "the metrics hold totals of everyone's cases: investigators and admins only");
  }
  auto collection = [](store::CaseKind k) -> std::string {
    switch (k) {
      case store::CaseKind::kMissing: return "missing";
      case store::CaseKind::kFound: return "found";
      case store::CaseKind::kSighting: return "sighting";
    }
    return "unknown";
  };
  std::vector<GaugeFamily> gauges;
  HW_ASSIGN_OR_RETURN(const std::vector<gallery::KindStats> stats, gallery_->Stats());
  GaugeFamily cases{"homeward_cases", "Cases in the catalog, by collection.", {}};
  GaugeFamily photos{"homeward_photos", "Photos in the catalog, by collection.", {}};
  GaugeFamily faces{"homeward_faces", "Faces in the catalog, by collection.", {}};
  GaugeFamily indexed{"homeward_index_faces", "Faces in this server's search index, by collection.",
                      {}};
  for (const gallery::KindStats& k : stats) {
    const std::vector<std::pair<std::string, std::string>> label = {{"collection", collection(k.kind)}};
    cases.samples.push_back({label, static_cast<double>(k.cases)});
    photos.samples.push_back({label, static_cast<double>(k.photos)});
    faces.samples.push_back({label, static_cast<double>(k.faces)});
    indexed.samples.push_back({label, static_cast<double>(k.indexed)});
  }
  gauges.push_back(std::move(cases));
  gauges.push_back(std::move(photos));
  gauges.push_back(std::move(faces));
  gauges.push_back(std::move(indexed));

  HW_ASSIGN_OR_RETURN(const auto lead_counts, gallery_->catalog().LeadCounts());
  GaugeFamily leads{"homeward_leads", "Leads by review status.", {}};
  for (const auto& [status, name] :
       std::vector<std::pair<store::LeadStatus, const char*>>{
           {store::LeadStatus::kOpen, "open"},
           {store::LeadStatus::kNeedsBetterPhoto, "needs_better_photo"},
           {store::LeadStatus::kConfirmedForDna, "confirmed_for_dna"},
           {store::LeadStatus::kRejected, "rejected"}}) {
    auto it = lead_counts.find(status);
    leads.samples.push_back(
        {{{"status", name}}, it == lead_counts.end() ? 0.0 : static_cast<double>(it->second)});
  }
  gauges.push_back(std::move(leads));

  // Data minimisation (docs/PRIVACY.md): the retention period and what it has deleted.
  HW_ASSIGN_OR_RETURN(const int64_t expired, gallery_->catalog().ExpiredSightingCount());
  gauges.push_back({"homeward_sightings_expired",
                    "SIGHTING cases deleted by the retention sweep since the catalog was created.",
                    {{{}, static_cast<double>(expired)}}});
  gauges.push_back({"homeward_sighting_retention_seconds",
                    "How long a sighting without an open lead is kept (0: without limit).",
                    {{{}, options_.sighting_retention_days * 86400.0}}});

  const internal::WorkerPool::Load load = pool_->load();
  gauges.push_back({"homeward_pipeline_queue_depth",
                    "Calls accepted and waiting for a worker thread (face pipeline included).",
                    {{{}, static_cast<double>(load.queued)}}});
  gauges.push_back({"homeward_calls_in_flight", "Calls accepted and not yet answered, by class.",
                    {{{{"class", "heavy"}}, static_cast<double>(load.heavy_in_flight)},
                     {{{"class", "light"}}, static_cast<double>(load.light_in_flight)}}});
  gauges.push_back({"homeward_pipeline_running", "Face-pipeline calls running now.",
                    {{{}, static_cast<double>(load.pipeline_running)}}});

  HW_ASSIGN_OR_RETURN(const gallery::Gallery::ChangeLogPosition log, gallery_->ChangeLog());
  gauges.push_back({"homeward_change_log_last_seq", "The catalog's last change-log sequence number.",
                    {{{}, static_cast<double>(log.last_seq)}}});
  gauges.push_back({"homeward_change_log_follow_lag",
                    "Changes of the shared catalog's log (other servers' writes) not yet applied "
                    "by this server (0 when it is the only writer).",
                    {{{}, static_cast<double>(log.last_seq - log.applied_seq)}}});
  GaugeFamily lag{"homeward_change_log_lag",
                  "Changes of the catalog's log that this server's index has not applied yet, by "
                  "collection.",
                  {}};
  for (const auto& [kind, behind] : log.behind) {
    lag.samples.push_back({{{"collection", collection(kind)}}, static_cast<double>(behind)});
  }
  gauges.push_back(std::move(lag));
  return metrics_.Render(gauges);
}

}  // namespace homeward::server
