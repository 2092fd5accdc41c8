// HomewardService: the homeward.v1.Homeward gRPC service over a gallery::Gallery.
//
// Each RPC authenticates the caller on the gRPC thread (API key -> role), then runs on a
// bounded worker pool: it checks the deadline/cancellation, validates the request, enforces
// the role's rights per RPC and per field, calls the gallery and appends the audit entry.
// When the pool is full the call gets UNAVAILABLE at once. Every call logs one line
// (method, key id, role, status code, latency) and never a key, a descriptor or photo bytes.
//
// THREAD SAFETY: all methods may run concurrently. OWNERSHIP: the gallery and key store
// must outlive the service; BeginShutdown() before the grpc::Server shuts down, and destroy
// the service (which drains the pool) after grpc::Server::Shutdown returned.
#ifndef HOMEWARD_SERVER_SERVICE_H_
#define HOMEWARD_SERVER_SERVICE_H_

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "gallery/gallery.h"
#include "homeward/v1/homeward.grpc.pb.h"
#include "server/auth.h"
#include "server/metrics.h"
#include "server/internal/candidate_grants.h"

namespace homeward::server {

namespace internal {
class WorkerPool;
}

// The largest ExportCase archive (photo bytes plus headers); a larger case's photos are
// fetched one by one with GetPhoto. Clients raise their receive limit to this for ExportCase.
inline constexpr int64_t kMaxExportBytes = int64_t{256} << 20;

struct ServiceOptions {
  bool insecure_dev = false;  // every caller is admin "dev"
  int64_t max_request_bytes = 20 << 20;
  int threads = 4;     // worker pool threads
  int max_queue = 32;  // heavy calls in flight
  int sighting_retention_days = 0;  // reported by GetStats (the sweep is HomewardServer's)
};

class HomewardService final : public homeward::v1::Homeward::CallbackService {
 public:
  // `keys` may be null only in insecure_dev mode.
  HomewardService(gallery::Gallery* gallery, const KeyStore* keys, const ServiceOptions& options);
  ~HomewardService() override;

  // New calls get UNAVAILABLE from now on.
  void BeginShutdown() { shutting_down_ = true; }

  // The Prometheus page (server/metrics.h) for a caller presenting `authorization` (the
  // HTTP header's value, `Bearer KEY`; nullopt when absent): investigators and admins only,
  // since it holds totals of everyone's cases. UNAUTHENTICATED / PERMISSION_DENIED otherwise.
  // Not audited: a scraper reads it every few seconds and it names no case.
  absl::StatusOr<std::string> MetricsPage(std::optional<absl::string_view> authorization);

  grpc::ServerUnaryReactor* CreateCase(grpc::CallbackServerContext* ctx,
                                       const v1::CreateCaseRequest* req, v1::Case* resp) override;
  grpc::ServerUnaryReactor* GetCase(grpc::CallbackServerContext* ctx, const v1::GetCaseRequest* req,
                                    v1::Case* resp) override;
  grpc::ServerUnaryReactor* UpdateCase(grpc::CallbackServerContext* ctx,
                                       const v1::UpdateCaseRequest* req, v1::Case* resp) override;
  grpc::ServerUnaryReactor* ListCases(grpc::CallbackServerContext* ctx,
                                      const v1::ListCasesRequest* req,
                                      v1::ListCasesResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteCase(grpc::CallbackServerContext* ctx,
                                       const v1::DeleteCaseRequest* req,
                                       v1::DeleteCaseResponse* resp) override;
  grpc::ServerUnaryReactor* ExportCase(grpc::CallbackServerContext* ctx,
                                       const v1::ExportCaseRequest* req,
                                       v1::ExportCaseResponse* resp) override;
  grpc::ServerUnaryReactor* AddPhoto(grpc::CallbackServerContext* ctx,
                                     const v1::AddPhotoRequest* req,
                                     v1::AddPhotoResponse* resp) override;
  grpc::ServerUnaryReactor* GetPhoto(grpc::CallbackServerContext* ctx,
                                     const v1::GetPhotoRequest* req,
                                     v1::GetPhotoResponse* resp) override;
  grpc::ServerUnaryReactor* GetFaceCrop(grpc::CallbackServerContext* ctx,
                                        const v1::GetFaceCropRequest* req,
                                        v1::GetFaceCropResponse* resp) override;
  grpc::ServerUnaryReactor* SubmitSighting(grpc::CallbackServerContext* ctx,
                                           const v1::SubmitSightingRequest* req,
                                           v1::SubmitSightingResponse* resp) override;
  grpc::ServerUnaryReactor* Search(grpc::CallbackServerContext* ctx, const v1::SearchRequest* req,
                                   v1::SearchResponse* resp) override;
  grpc::ServerUnaryReactor* Compare(grpc::CallbackServerContext* ctx, const v1::CompareRequest* req,
                                    v1::CompareResponse* resp) override;
  grpc::ServerUnaryReactor* GetStats(grpc::CallbackServerContext* ctx,
                                     const v1::GetStatsRequest* req,
                                     v1::GetStatsResponse* resp) override;
  grpc::ServerUnaryReactor* ListLeads(grpc::CallbackServerContext* ctx,
                                      const v1::ListLeadsRequest* req,
                                      v1::ListLeadsResponse* resp) override;
  grpc::ServerUnaryReactor* GetLead(grpc::CallbackServerContext* ctx,
                                    const v1::GetLeadRequest* req, v1::Lead* resp) override;
  grpc::ServerUnaryReactor* ReviewLead(grpc::CallbackServerContext* ctx,
                                       const v1::ReviewLeadRequest* req, v1::Lead* resp) override;

 private:
  // What a call leaves in the audit trail (action empty: not audited).
  struct Audit {
    std::string action, target_type, detail;
    int64_t target_id = 0;
    // Set by a handler whose change wrote this call's entry in its own transaction (from
    // ChangeAudit): Run appends no second one when the call succeeds.
    bool recorded = false;
  };
  // The audit entry of a successful change, for the catalog to write with it (store/catalog.h).
  static store::AuditEntry ChangeAudit(const Caller& caller, const Audit& audit);
  using Handler = std::function<absl::Status(const Caller&, Audit&)>;
  // kPipeline: heavy, and borrows a face-pipeline worker (the pool runs at most as many at once).
  enum class Cost { kLight, kHeavy, kPipeline };

  grpc::ServerUnaryReactor* Run(grpc::CallbackServerContext* ctx, const char* method, Cost cost,
                                Handler handler);
  grpc::ServerUnaryReactor* Run(grpc::CallbackServerContext* ctx, const char* method, bool heavy,
                                Handler handler) {
    return Run(ctx, method, heavy ? Cost::kHeavy : Cost::kLight, std::move(handler));
  }
  absl::StatusOr<Caller> Authenticate(grpc::CallbackServerContext* ctx) const;
  absl::StatusOr<Caller> AuthenticateHeader(std::optional<absl::string_view> authorization) const;

  // The case, if the caller may see it in full (its owner, investigators, admins).
  absl::StatusOr<store::Case> OwnedCase(const Caller& caller, int64_t case_id, const char* what);
  absl::StatusOr<store::FaceAttributes> FaceOf(int64_t face_id);
  // Converts results, blanking the candidate fields the caller may not see.
  // A volunteer's candidates are recorded in grants_ (its thumbnail policy).
  void AddResults(const Caller& caller, const std::vector<gallery::QueryResult>& results,
                  google::protobuf::RepeatedPtrField<v1::QueryResult>* out);

  gallery::Gallery* const gallery_;
  const KeyStore* const keys_;
  const ServiceOptions options_;
  std::atomic<bool> shutting_down_{false};
  std::unique_ptr<internal::WorkerPool> pool_;
  internal::CandidateGrants grants_;  // MISSING/FOUND crops each volunteer was shown
  Metrics metrics_;
};

}  // namespace homeward::server

#endif  // HOMEWARD_SERVER_SERVICE_H_
