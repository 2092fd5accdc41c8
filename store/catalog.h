// Catalog: Homeward's source of truth. It owns the cases (MISSING, FOUND, SIGHTING), their
// photos, the faces found in them (with their 128-float descriptors), an append-only audit
// trail, a change log from which the face index is rebuilt or caught up, and the leads
// (proposed cross-collection matches, their evidence and reviews) with the sighting clusters.
// The records are in store/records.h.
//
// Backends: this interface is all the code above store/ sees; Open() chooses by location.
//  - A directory (the embedded default, store/sqlite/): one SQLite database
//    (<data_dir>/catalog.db, WAL, synchronous=FULL) and the photo files under
//    <data_dir>/photos/, named by the SHA-256 of their bytes; no caller-supplied text ever
//    reaches a path. One Catalog per data_dir at a time (a lock file, <data_dir>/LOCK).
//  - A postgresql:// or postgres:// URL (store/postgres/): a PostgreSQL database holding
//    everything, the photo bytes too; several Catalogs (several servers) may share it.
// In every backend a call that returns OK is durable across kill -9 and power loss.
//
// AUDIT: a write that takes an `audit` entry appends it in the same transaction as the change,
// so a change is never stored without its audit row (nor the row without the change). The
// catalog fills a target_id of 0 with the new row's id and appends the change's own facts to
// the detail (" photo=ID faces=N", " photos=N faces=N"). nullptr: no audit row.
//
// THREAD SAFETY: every method may be called concurrently on one Catalog. Writes are
// serialized; reads run in parallel and each call sees one committed state. A ForEachFace
// callback may call other Catalog methods.
// OWNERSHIP: results are returned by value; Open returns the sole owner of the Catalog.
//
// ERRORS (all methods): INVALID_ARGUMENT for malformed input (the message says what to fix);
// NOT_FOUND for an unknown id; RESOURCE_EXHAUSTED when the disk is full; DATA_LOSS for a
// corrupt database or a missing photo file; UNAVAILABLE when the database stays locked past
// busy_timeout_ms, or when PostgreSQL cannot be reached or the connection is lost (the message
// names PostgreSQL; the next call reconnects); INTERNAL for other I/O failures. Dates are
// "YYYY-MM-DD", "" = unknown.
#ifndef HOMEWARD_STORE_CATALOG_H_
#define HOMEWARD_STORE_CATALOG_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "store/records.h"

namespace homeward::store {

struct CatalogOptions {
  int busy_timeout_ms = 5000;    // SQLite: busy timeout; PostgreSQL: lock_timeout
  int max_read_connections = 4;  // idle read connections kept open (PostgreSQL: one more)
  // Remove files under photos/ that no row references, on a thread started by Open (Open does
  // not wait for it; orphan_sweep_done() tells when it has finished).
  bool sweep_orphan_files = true;
};

class Catalog {
 public:
  // `location` a directory: opens or creates <location>/catalog.db, upgrading an older schema
  // in one transaction, then finishes any interrupted deletion and starts the orphan-file
  // sweep in the background. FAILED_PRECONDITION if another Catalog holds the directory or
  // the file's schema is newer than this code.
  // `location` a postgresql:// or postgres:// URL (libpq's URL syntax; PGPASSWORD and the
  // other PG* environment variables fill what it leaves out): connects and upgrades an older
  // schema in one transaction (servers starting together upgrade once). INVALID_ARGUMENT if
  // the URL does not parse, UNAVAILABLE if the server cannot be reached, FAILED_PRECONDITION
  // if it refuses the login, the database does not exist or its schema is newer than this
  // code; each message is one line naming the problem (a password in the URL is masked).
  static absl::StatusOr<std::unique_ptr<Catalog>> Open(const std::string& location,
                                                       const CatalogOptions& options = {});
  // True once the orphan-file sweep started by Open has finished (or was not asked for;
  // always true on PostgreSQL, which keeps no files).
  virtual bool orphan_sweep_done() const = 0;
  virtual ~Catalog() = default;
  Catalog(const Catalog&) = delete;
  Catalog& operator=(const Catalog&) = delete;

  // Cases. AddCase returns the new id. UpdateCase replaces every caller-set field of case
  // c.id (INVALID_ARGUMENT if c.kind differs from the stored kind).
  virtual absl::StatusOr<int64_t> AddCase(const Case& c, const AuditEntry* audit) = 0;
  absl::StatusOr<int64_t> AddCase(const Case& c) { return AddCase(c, nullptr); }
  virtual absl::StatusOr<Case> GetCase(int64_t id) = 0;
  // The cases of the given ids, in the given order, from one consistent state; unknown (e.g.
  // deleted) ids are skipped. One round trip on PostgreSQL (search results read their cases
  // with it). INVALID_ARGUMENT for more than 10000 ids.
  virtual absl::StatusOr<std::vector<Case>> GetCases(const std::vector<int64_t>& ids) = 0;
  virtual absl::Status UpdateCase(const Case& c, const AuditEntry* audit) = 0;
  absl::Status UpdateCase(const Case& c) { return UpdateCase(c, nullptr); }
  virtual absl::StatusOr<CasePage> ListCases(const CaseQuery& query) = 0;
  virtual absl::StatusOr<std::map<CaseKind, KindCounts>> CountByKind() = 0;  // from counters: O(1)
  // The counts of the cases `owner_key_id` owns (a volunteer's or a family's own).
  virtual absl::StatusOr<std::map<CaseKind, KindCounts>> CountByKindForOwner(
      const std::string& owner_key_id) = 0;
  // Deletes the case, its photos, faces and their files, logging a kRemove change per face;
  // its leads (with their evidence and reviews) and cluster memberships go too.
  // SQLite: rows go in one transaction that also journals the files; the files are unlinked
  // after it commits (a crash in between is finished by the next Open). If an unlink fails,
  // returns that error with the rows already gone; the next deletion or Open retries the
  // unlink. PostgreSQL: rows and photo bytes go in one transaction.
  virtual absl::Status DeleteCase(int64_t id, const AuditEntry* audit) = 0;
  absl::Status DeleteCase(int64_t id) { return DeleteCase(id, nullptr); }

  // Stores `bytes` (any non-empty image bytes; not decoded) and its faces for case
  // `meta.case_id`, logging a kAdd change per face, all in one transaction after the file is
  // durable. If the case already holds identical bytes, returns that photo and its faces with
  // duplicate=true. The same bytes in two cases share one file and get one photo row each.
  // With `audit`, a duplicate (nothing added) still appends the entry.
  virtual absl::StatusOr<AddPhotoResult> AddPhoto(const Photo& meta, const std::string& bytes,
                                                  const std::vector<Face>& faces,
                                                  const AuditEntry* audit) = 0;
  absl::StatusOr<AddPhotoResult> AddPhoto(const Photo& meta, const std::string& bytes,
                                          const std::vector<Face>& faces) {
    return AddPhoto(meta, bytes, faces, nullptr);
  }
  // Bulk AddPhoto (imports, benchmarks): every photo's file is made durable first, then all
  // rows go in ONE transaction, so either every photo is stored or none is. Results are in
  // the given order; a photo whose case already holds its bytes (stored before, or earlier
  // in this batch) gets duplicate=true. INVALID_ARGUMENT names the first malformed entry
  // ("photos[i]: ..."); NOT_FOUND for an unknown case. The write lock is held for the whole
  // batch: keep batches to a few thousand photos.
  struct PhotoToAdd {
    Photo meta;
    std::string bytes;
    std::vector<Face> faces;
  };
  virtual absl::StatusOr<std::vector<AddPhotoResult>> AddPhotoBatch(
      const std::vector<PhotoToAdd>& photos) = 0;
  struct PhotoWithBytes {
    Photo photo;
    std::string bytes;
  };
  virtual absl::StatusOr<PhotoWithBytes> GetPhoto(int64_t id) = 0;
  // The photo's row without its bytes (no file is read); NOT_FOUND if unknown.
  virtual absl::StatusOr<Photo> GetPhotoInfo(int64_t id) = 0;
  virtual absl::StatusOr<std::vector<Photo>> ListPhotos(int64_t case_id) = 0;
  // Like DeleteCase, for one photo: evidence naming its faces goes; a lead keeps its best
  // remaining pair, or goes when none remains.
  virtual absl::Status DeletePhoto(int64_t id) = 0;
  virtual absl::StatusOr<std::vector<Face>> ListFaces(int64_t photo_id) = 0;
  virtual absl::StatusOr<Face> GetFace(int64_t face_id) = 0;  // NOT_FOUND if unknown

  // Index support. ForEachFace visits every face (ascending id) from one consistent snapshot
  // and returns the change seq that snapshot includes: replay ChangesAfter(seq) to catch up.
  // A non-OK status from `fn` stops the scan and is returned.
  virtual absl::StatusOr<int64_t> ForEachFace(
      const std::function<absl::Status(const FaceRecord&)>& fn) = 0;
  // The same scan without the descriptors (FaceRecord::descriptor is null).
  virtual absl::StatusOr<int64_t> ForEachFaceAttributes(
      const std::function<absl::Status(const FaceRecord&)>& fn) = 0;
  // Attributes of the given faces, in the given order; unknown (e.g. deleted) ids are skipped.
  virtual absl::StatusOr<std::vector<FaceAttributes>> GetFaceAttributes(
      const std::vector<int64_t>& ids) = 0;
  // Up to `limit` (1..100000) changes with seq > after_seq, ascending. Readers that follow
  // the log (gallery follow_ms) rely on this: once a change is visible, every change with a
  // smaller seq is visible too (a backend with concurrent writers must assign seqs in commit
  // order), so a reader that has seen seq S never later finds a new change below S.
  virtual absl::StatusOr<std::vector<Change>> ChangesAfter(int64_t after_seq, int limit) = 0;
  virtual absl::StatusOr<int64_t> LastChangeSeq() = 0;
  // Cases created or changed at or after since_ms (their updated_ms, the writer's clock):
  // up to `limit` (1..100000) (id, updated_ms) pairs, ascending updated_ms then id. A gallery
  // following a shared catalog reloads those cases' age keys (edits through another server).
  virtual absl::StatusOr<std::vector<std::pair<int64_t, int64_t>>> CasesUpdatedSince(
      int64_t since_ms, int limit) = 0;  // 0 when there has been no change

  // Leads. UpsertLead records that faces x and y (of two different cases) match at
  // `distance`/`confidence` (finite, confidence in 0..1), keyed by their case pair. A face
  // pair whose photo content (photo SHA-256 and face box, both sides) is evidence of a
  // rejected lead is suppressed, so re-uploading a rejected photo proposes nothing; any other
  // new pair reopens a rejected or needs-better-photo lead. NOT_FOUND for an unknown face,
  // INVALID_ARGUMENT when both faces belong to one case.
  virtual absl::StatusOr<LeadUpsertResult> UpsertLead(int64_t face_x, int64_t face_y,
                                                      double distance, double confidence) = 0;
  virtual absl::StatusOr<LeadPage> ListLeads(const LeadQuery& query) = 0;
  virtual absl::StatusOr<Lead> GetLead(int64_t id) = 0;  // with evidence and reviews
  // How many leads have each status (statuses with none are absent); for the metrics page.
  virtual absl::StatusOr<std::map<LeadStatus, int64_t>> LeadCounts() = 0;
  // Sets the lead's status to `decision` (not kOpen: INVALID_ARGUMENT) and appends the review
  // and an audit entry (actor = reviewer, action "ReviewLead") in one transaction. Returns
  // the updated lead. INVALID_ARGUMENT if reviewer is empty.
  virtual absl::StatusOr<Lead> ReviewLead(int64_t id, LeadStatus decision, const std::string& note,
                                          const std::string& reviewer,
                                          const std::string& role = "") = 0;

  // Sighting clusters: a SIGHTING face joins the cluster of its near neighbours (merging
  // their clusters; unclustered neighbours join too), or starts its own. Returns the cluster
  // id. NOT_FOUND if face_id is unknown.
  virtual absl::StatusOr<int64_t> ClusterSightingFace(
      int64_t face_id, const std::vector<int64_t>& neighbour_face_ids) = 0;
  // The case ids of the faces in face_id's cluster, ascending; {} when it has none.
  virtual absl::StatusOr<std::vector<int64_t>> SightingClusterCases(int64_t face_id) = 0;

  // Candidate grants (the volunteers' thumbnail policy, server/internal/candidate_grants.h):
  // SaveGrants records that `key_id` was shown `face_ids` until `expires_ms` (Unix ms; a later
  // grant of the same face replaces the expiry); LoadGrants deletes the grants expired at
  // `now_ms` and returns the others.
  struct Grant {
    std::string key_id;
    int64_t face_id = 0, expires_ms = 0;
  };
  virtual absl::Status SaveGrants(const std::string& key_id, const std::vector<int64_t>& face_ids,
                                  int64_t expires_ms) = 0;
  virtual absl::StatusOr<std::vector<Grant>> LoadGrants(int64_t now_ms) = 0;

  // Data minimisation (retention of SIGHTING cases). A sighting is protected while any of its
  // leads is open, confirmed for DNA or needs a better photo. Otherwise its retention clock runs
  // from the latest of: its creation or last update, its newest photo, the last change of any of
  // its leads (e.g. the last rejection), and the moment a lead of it went away with the other
  // case or photo. MISSING and FOUND cases never expire.
  //
  // Up to `limit` (1..10000) ids, ascending, of the unprotected sightings whose clock is older
  // than now_ms - retention_ms (Unix ms; retention_ms > 0, else INVALID_ARGUMENT).
  virtual absl::StatusOr<std::vector<int64_t>> ListExpiredSightings(int64_t now_ms,
                                                                    int64_t retention_ms,
                                                                    int limit) = 0;
  // Deletes sighting `id` exactly as DeleteCase does, after checking, inside the deleting
  // transaction, that it is still expired at now_ms (a lead may have appeared since the
  // listing), and counts it in ExpiredSightingCount in the same transaction. `audit` (may be
  // null) is appended with the counts. Returns the ids of the faces removed (for the index).
  // NOT_FOUND if the case is gone; FAILED_PRECONDITION if it is not a SIGHTING or is no
  // longer expired (nothing changed); INVALID_ARGUMENT if retention_ms <= 0.
  virtual absl::StatusOr<std::vector<int64_t>> ExpireSighting(int64_t id, int64_t now_ms,
                                                              int64_t retention_ms,
                                                              const AuditEntry* audit) = 0;
  // How many sightings ExpireSighting has deleted in this catalog's life (kept with the data).
  virtual absl::StatusOr<int64_t> ExpiredSightingCount() = 0;
  // Every lead naming case `case_id` (either side), ascending id, with evidence and reviews;
  // {} for a case without leads or an unknown id.
  virtual absl::StatusOr<std::vector<Lead>> LeadsOfCase(int64_t case_id) = 0;

  // Audit trail: append-only; no method (and no SQL: triggers refuse) updates or deletes it.
  // INVALID_ARGUMENT if actor or action is empty.
  virtual absl::StatusOr<int64_t> AppendAudit(const AuditEntry& entry) = 0;
  // Up to `limit` (1..10000) entries with id > after_id, ascending; target_type "" = all.
  virtual absl::StatusOr<std::vector<AuditEntry>> ListAudit(int64_t after_id, int limit,
                                                            const std::string& target_type = "",
                                                            int64_t target_id = 0) = 0;

 protected:
  Catalog() = default;
};

}  // namespace homeward::store

#endif  // HOMEWARD_STORE_CATALOG_H_
