// SqliteCatalog: the embedded catalog backend (store/catalog.h's Open). One SQLite database,
// <data_dir>/catalog.db (WAL, synchronous=FULL, secure_delete), the photo files under
// <data_dir>/photos/ (store/internal/files.h) and a lock file, <data_dir>/LOCK.
//
// The methods are defined by concern, each file readable alone:
//   catalog.cc  opening, connections, recovery (deletion journal, orphan sweep), deletion
//   cases.cc    cases and their counters
//   photos.cc   photos, faces, the index scans and the change log
//   leads.cc    leads, their evidence and reviews, sighting clusters
//   audit.cc    the audit trail and the volunteers' candidate grants
//   retention.cc  expiry of SIGHTING cases (data minimisation)
// rows.h maps rows to records and back.
//
// THREAD SAFETY: writes hold write_mu_ on the one writer connection; reads take a pooled
// read connection each (AcquireReader) and run in parallel.
#ifndef HOMEWARD_STORE_SQLITE_SQLITE_CATALOG_H_
#define HOMEWARD_STORE_SQLITE_SQLITE_CATALOG_H_

#include <sqlite3.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "store/catalog.h"
#include "store/internal/sqlite.h"

namespace homeward::store::internal {

class SqliteCatalog final : public Catalog {
 public:
  // Takes ownership of the lock file descriptor and the writer connection.
  SqliteCatalog(std::string data_dir, const CatalogOptions& options, int lock_fd, sqlite3* writer);
  ~SqliteCatalog() override;

  // Catalog::Open for a data directory.
  static absl::StatusOr<std::unique_ptr<Catalog>> Open(const std::string& data_dir,
                                                       const CatalogOptions& options);

  // Upgrades the schema, finishes interrupted deletions, starts the orphan sweep.
  absl::Status Start();

  bool orphan_sweep_done() const override { return sweep_done_; }

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
  absl::StatusOr<Lead> ReviewLead(int64_t id, LeadStatus decision, const std::string& note,
                                  const std::string& reviewer, const std::string& role) override;
  absl::StatusOr<int64_t> ClusterSightingFace(
      int64_t face_id, const std::vector<int64_t>& neighbour_face_ids) override;
  absl::StatusOr<std::vector<int64_t>> SightingClusterCases(int64_t face_id) override;

  absl::StatusOr<std::vector<Lead>> LeadsOfCase(int64_t case_id) override;

  // retention.cc
  absl::StatusOr<std::vector<int64_t>> ListExpiredSightings(int64_t now_ms, int64_t retention_ms,
                                                            int limit) override;
  absl::StatusOr<std::vector<int64_t>> ExpireSighting(int64_t id, int64_t now_ms,
                                                      int64_t retention_ms,
                                                      const AuditEntry* audit) override;
  absl::StatusOr<int64_t> ExpiredSightingCount() override;

  // audit.cc
  absl::Status SaveGrants(const std::string& key_id, const std::vector<int64_t>& face_ids,
                          int64_t expires_ms) override;
  absl::StatusOr<std::vector<Grant>> LoadGrants(int64_t now_ms) override;
  absl::StatusOr<int64_t> AppendAudit(const AuditEntry& entry) override;
  absl::StatusOr<std::vector<AuditEntry>> ListAudit(int64_t after_id, int limit,
                                                    const std::string& target_type,
                                                    int64_t target_id) override;

 private:
  // A pooled read connection and its prepared statements.
  struct ReadConnection {
    explicit ReadConnection(sqlite3* d) : db(d), cache(std::make_unique<StatementCache>(d)) {}
    ~ReadConnection() {
      cache.reset();  // statements before their connection
      sqlite3_close_v2(db);
    }
    sqlite3* const db;
    std::unique_ptr<StatementCache> cache;
  };

  // A read connection for the duration of one call; returned to the pool by the destructor.
  class Reader {
   public:
    Reader(SqliteCatalog* catalog, std::unique_ptr<ReadConnection> conn)
        : catalog_(catalog), conn_(std::move(conn)) {}
    Reader(Reader&& o) noexcept = default;
    ~Reader() {
      if (conn_ != nullptr) catalog_->ReleaseReader(std::move(conn_));
    }
    sqlite3* db() const { return conn_->db; }
    // A statement prepared once per connection (see StatementCache).
    absl::StatusOr<Statement> Cached(absl::string_view sql) const { return conn_->cache->Get(sql); }

   private:
    SqliteCatalog* catalog_;
    std::unique_ptr<ReadConnection> conn_;
  };

  absl::StatusOr<Reader> AcquireReader();
  void ReleaseReader(std::unique_ptr<ReadConnection> conn);

  // Every face (ascending id) from one read transaction, with its descriptor or without it
  // (FaceRecord::descriptor null); returns the change seq that transaction includes.
  absl::StatusOr<int64_t> ScanFaces(bool with_descriptor,
                                    const std::function<absl::Status(const FaceRecord&)>& fn);

  absl::Status SweepOrphans();
  absl::Status DrainUnlinkJournal() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // Deletes the photos selected by `photo_where` (a fixed SQL fragment on table p with one
  // parameter, `id`), their faces, and the case too when delete_case; `audit` (may be null)
  // goes in the same transaction with the counts appended. `in_txn` (may be empty) runs inside
  // the transaction once the row is known to exist, on the writer connection: an error from it
  // rolls everything back and is returned. `face_ids` (may be null) receives the faces deleted.
  absl::Status DeleteRows(int64_t id, const char* photo_where, bool delete_case,
                          const AuditEntry* audit,
                          const std::function<absl::Status(sqlite3*)>& in_txn = nullptr,
                          std::vector<int64_t>* face_ids = nullptr);

  const std::string data_dir_, photos_dir_, db_path_;
  const CatalogOptions options_;
  const int lock_fd_;

  absl::Mutex write_mu_;
  sqlite3* const writer_ ABSL_PT_GUARDED_BY(write_mu_);

  absl::Mutex pool_mu_;
  std::vector<std::unique_ptr<ReadConnection>> idle_readers_ ABSL_GUARDED_BY(pool_mu_);

  std::atomic<bool> stop_sweep_{false}, sweep_done_{false};
  std::thread sweeper_;  // SweepOrphans after Start; joined by the destructor
};

}  // namespace homeward::store::internal

#endif  // HOMEWARD_STORE_SQLITE_SQLITE_CATALOG_H_
