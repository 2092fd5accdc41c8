// PostgresCatalog: the shared catalog backend (store/catalog.h's Open with a postgresql:// or
// postgres:// URL). Everything is in the database, the photo bytes too (table photo_bytes,
// bytea, one row per distinct SHA-256), so a deletion is one transaction and a second server
// needs no shared disk. Several Catalogs (in one process or in several servers) may use one
// database at a time.
//
// The methods are defined by concern, as in store/sqlite/:
//   catalog.cc  opening, the connection pool, transactions, deletion
//   schema.cc   the schema and its upgrades (schema_version)
//   cases.cc    cases and their counters
//   photos.cc   photos, faces, the index scans and the change log
//   leads.cc    leads, their evidence and reviews, sighting clusters
//   audit.cc    the audit trail and the volunteers' candidate grants
//
// WRITES: every write is one transaction that first takes a transaction-scoped advisory lock
// (kWriteLockKey), so writers are serialized across every server on the database: change
// seqs (an identity column) therefore commit in ascending order, and a follower that has
// read up to seq N never later sees a smaller seq appear. Ids come from identity columns and
// are never reused. READS that make several statements run in one REPEATABLE READ READ ONLY
// transaction (one committed state).
//
// CONNECTIONS: a pool of up to max_read_connections + 1 idle connections, taken per call. A
// lost connection is dropped and the call returns UNAVAILABLE naming PostgreSQL; a call whose
// BEGIN finds its pooled connection dead retries once on a new one, so the catalog recovers by
// itself when PostgreSQL comes back.
//
// THREAD SAFETY: every method may be called concurrently (each call owns its connection).
#ifndef HOMEWARD_STORE_POSTGRES_POSTGRES_CATALOG_H_
#define HOMEWARD_STORE_POSTGRES_POSTGRES_CATALOG_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "store/catalog.h"
#include "store/postgres/pg.h"

namespace homeward::store::internal {

// The PostgreSQL schema version this build writes (store/postgres/schema.cc).
inline constexpr int kPostgresSchemaVersion = 5;
// Upgrades the database behind `conn` to `target` (<= kPostgresSchemaVersion) in one
// transaction, under an advisory lock so that servers starting together upgrade once.
// FAILED_PRECONDITION if the database's schema is newer than this build. Tests use a lower
// target to build an older database.
absl::Status MigratePostgres(pg::Connection& conn, int target = kPostgresSchemaVersion);

// True if `location` names a PostgreSQL database (a postgresql:// or postgres:// URL).
bool IsPostgresLocation(const std::string& location);

class PostgresCatalog final : public Catalog {
 public:
  // Connects, upgrades the schema. See Catalog::Open for the errors.
  static absl::StatusOr<std::unique_ptr<Catalog>> Open(const std::string& conninfo,
                                                       const CatalogOptions& options);
  ~PostgresCatalog() override = default;

  bool orphan_sweep_done() const override { return true; }  // no files: nothing to sweep

  // cases.cc
  absl::StatusOr<int64_t> AddCase(const Case& c, const AuditEntry* audit) override;
  absl::StatusOr<Case> GetCase(int64_t id) override;
  absl::StatusOr<std::vector<Case>> GetCases(const std::vector<int64_t>& ids) override;
  absl::Status UpdateCase(const Case& c, const AuditEntry* audit) override;
  absl::StatusOr<CasePage> ListCases(const CaseQuery& query) override;
  absl::StatusOr<std::map<CaseKind, KindCounts>> CountByKind() override;
  absl::StatusOr<std::map<CaseKind, KindCounts>> CountByKindForOwner(
      const std::string& owner_key_id) override;
  absl::Status DeleteCase(int64_t id, const AuditEntry* audit) override;

  // photos.cc
  absl::StatusOr<AddPhotoResult> AddPhoto(const Photo& meta, const std::string& bytes,
                                          const std::vector<Face>& faces,
                                          const AuditEntry* audit) override;
  absl::StatusOr<std::vector<AddPhotoResult>> AddPhotoBatch(
      const std::vector<PhotoToAdd>& photos) override;
  absl::StatusOr<PhotoWithBytes> GetPhoto(int64_t id) override;
  absl::StatusOr<Photo> GetPhotoInfo(int64_t id) override;
  absl::StatusOr<std::vector<Photo>> ListPhotos(int64_t case_id) override;
  absl::Status DeletePhoto(int64_t id) override;
  absl::StatusOr<std::vector<Face>> ListFaces(int64_t photo_id) override;
  absl::StatusOr<Face> GetFace(int64_t face_id) override;
  absl::StatusOr<int64_t> ForEachFace(
      const std::function<absl::Status(const FaceRecord&)>& fn) override;
  absl::StatusOr<int64_t> ForEachFaceAttributes(
      const std::function<absl::Status(const FaceRecord&)>& fn) override;
  absl::StatusOr<std::vector<FaceAttributes>> GetFaceAttributes(
      const std::vector<int64_t>& ids) override;
  absl::StatusOr<std::vector<Change>> ChangesAfter(int64_t after_seq, int limit) override;
  absl::StatusOr<int64_t> LastChangeSeq() override;
  absl::StatusOr<std::vector<std::pair<int64_t, int64_t>>> CasesUpdatedSince(int64_t since_ms,
                                                                          int limit) override;

  // leads.cc
  absl::StatusOr<LeadUpsertResult> UpsertLead(int64_t face_x, int64_t face_y, double distance,
                                              double confidence) override;
  absl::StatusOr<LeadPage> ListLeads(const LeadQuery& query) override;
  absl::StatusOr<Lead> GetLead(int64_t id) override;
  absl::StatusOr<std::map<LeadStatus, int64_t>> LeadCounts() override;
  absl::StatusOr<std::vector<int64_t>> ListExpiredSightings(int64_t now_ms, int64_t retention_ms,
                                                            int limit) override;
  absl::StatusOr<std::vector<int64_t>> ExpireSighting(int64_t id, int64_t now_ms,
                                                      int64_t retention_ms,
                                                      const AuditEntry* audit) override;
  absl::StatusOr<int64_t> ExpiredSightingCount() override;
  absl::StatusOr<std::vector<Lead>> LeadsOfCase(int64_t case_id) override;
  absl::StatusOr<Lead> ReviewLead(int64_t id, LeadStatus decision, const std::string& note,
                                  const std::string& reviewer, const std::string& role) override;
  absl::StatusOr<int64_t> ClusterSightingFace(
      int64_t face_id, const std::vector<int64_t>& neighbour_face_ids) override;
  absl::StatusOr<std::vector<int64_t>> SightingClusterCases(int64_t face_id) override;

  // audit.cc
  absl::Status SaveGrants(const std::string& key_id, const std::vector<int64_t>& face_ids,
                          int64_t expires_ms) override;
  absl::StatusOr<std::vector<Grant>> LoadGrants(int64_t now_ms) override;
  absl::StatusOr<int64_t> AppendAudit(const AuditEntry& entry) override;
  absl::StatusOr<std::vector<AuditEntry>> ListAudit(int64_t after_id, int limit,
                                                    const std::string& target_type,
                                                    int64_t target_id) override;

 private:
  PostgresCatalog(std::string conninfo, const CatalogOptions& options)
      : conninfo_(std::move(conninfo)), options_(options) {}

  using Body = std::function<absl::Status(pg::Connection&)>;
  // Runs `body` in one write transaction holding the write lock; commits if it returns OK,
  // rolls back otherwise. `durable` false commits without waiting for the WAL flush
  // (synchronous_commit = off: audit rows of reads, grants).
  absl::Status Write(const Body& body, bool durable = true);
  // Runs `body` in one REPEATABLE READ READ ONLY transaction.
  absl::Status Read(const Body& body);
  // Runs one statement outside any transaction (single-statement reads).
  absl::StatusOr<pg::Result> Query(absl::string_view sql, const pg::Params& params = pg::Params());

  // A pooled connection for one call; returned to the pool unless lost or mid-transaction.
  // A lost one empties the pool: its idle connections went down with the same server.
  absl::StatusOr<std::unique_ptr<pg::Connection>> Acquire();
  void Release(std::unique_ptr<pg::Connection> conn);
  // Closes every idle connection (after a lost one: PostgreSQL restarted or went away).
  void DropIdle();
  absl::Status Transact(const char* begin, const Body& body, const char* before_commit);

  absl::StatusOr<int64_t> ScanFaces(bool with_descriptor,
                                    const std::function<absl::Status(const FaceRecord&)>& fn);
  // `in_txn` (may be empty) runs first inside the deleting transaction and may refuse it;
  // `face_ids` (may be null) receives the ids of the faces that go.
  absl::Status DeleteRows(int64_t id, bool delete_case, const AuditEntry* audit,
                          const Body& in_txn = nullptr, std::vector<int64_t>* face_ids = nullptr);

  const std::string conninfo_;
  const CatalogOptions options_;
  absl::Mutex pool_mu_;
  std::vector<std::unique_ptr<pg::Connection>> idle_ ABSL_GUARDED_BY(pool_mu_);
};

}  // namespace homeward::store::internal

#endif  // HOMEWARD_STORE_POSTGRES_POSTGRES_CATALOG_H_
