// SqliteCatalog: opening, connections, recovery and deletion (see sqlite_catalog.h).
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "store/internal/files.h"
#include "store/internal/schema.h"
#include "store/internal/validate.h"
#include "store/sqlite/rows.h"
#include "store/sqlite/sqlite_catalog.h"

namespace homeward::store::internal {

SqliteCatalog::SqliteCatalog(std::string data_dir, const CatalogOptions& options, int lock_fd,
                             sqlite3* writer)
    : data_dir_(std::move(data_dir)),
      photos_dir_(data_dir_ + "/photos"),
      db_path_(data_dir_ + "/catalog.db"),
      options_(options),
      lock_fd_(lock_fd),
      writer_(writer) {}

SqliteCatalog::~SqliteCatalog() {
  stop_sweep_ = true;
  if (sweeper_.joinable()) sweeper_.join();
  {
    absl::MutexLock l(&pool_mu_);
    idle_readers_.clear();
  }
  {
    absl::MutexLock l(&write_mu_);
    sqlite3_close_v2(writer_);
  }
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

absl::StatusOr<SqliteCatalog::Reader> SqliteCatalog::AcquireReader() {
  {
    absl::MutexLock l(&pool_mu_);
    if (!idle_readers_.empty()) {
      std::unique_ptr<ReadConnection> conn = std::move(idle_readers_.back());
      idle_readers_.pop_back();
      return Reader(this, std::move(conn));
    }
  }
  HW_ASSIGN_OR_RETURN(sqlite3 * db, OpenConnection(db_path_, options_, /*reader=*/true));
  return Reader(this, std::make_unique<ReadConnection>(db));
}

void SqliteCatalog::ReleaseReader(std::unique_ptr<ReadConnection> conn) {
  if (!sqlite3_get_autocommit(conn->db)) {
    sqlite3_exec(conn->db, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  absl::MutexLock l(&pool_mu_);
  if (static_cast<int>(idle_readers_.size()) < options_.max_read_connections) {
    idle_readers_.push_back(std::move(conn));
  }  // else closed here
}

absl::StatusOr<int64_t> SqliteCatalog::ScanFaces(
    bool with_descriptor, const std::function<absl::Status(const FaceRecord&)>& fn) {
  HW_ASSIGN_OR_RETURN(Reader r, AcquireReader());
  HW_RETURN_IF_ERROR(internal::Exec(r.db(), "BEGIN"));
  HW_ASSIGN_OR_RETURN(const int64_t seq, LastSeqIn(r.db()));
  HW_ASSIGN_OR_RETURN(
      Statement q,
      Statement::Prepare(r.db(), absl::StrCat(AttributesSelect(with_descriptor), "ORDER BY f.id")));
  float descriptor[kDescriptorDim];
  while (true) {
    HW_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    if (!with_descriptor) {
      HW_RETURN_IF_ERROR(fn(FaceRecord{ReadAttributes(q), nullptr}));
      continue;
    }
    const absl::string_view blob = q.Blob(14);
    if (blob.size() != sizeof(descriptor)) {
      return absl::DataLossError(
          absl::StrCat("face ", q.Int(0), " has a ", blob.size(), "-byte descriptor"));
    }
    std::memcpy(descriptor, blob.data(), sizeof(descriptor));
    HW_RETURN_IF_ERROR(fn(FaceRecord{ReadAttributes(q), descriptor}));
  }
  return seq;
}

// Opening steps: upgrade the schema, finish interrupted deletions (the journal),
// then sweep orphan files on a thread of their own, so that a catalog with a million photo
// files serves at once. Orphans come only from a crash between a photo's file and its row;
// nothing waits for them.
absl::Status SqliteCatalog::Start() {
  {
    absl::MutexLock l(&write_mu_);
    HW_RETURN_IF_ERROR(Migrate(writer_));
  }
  {
    absl::MutexLock l(&write_mu_);
    HW_RETURN_IF_ERROR(DrainUnlinkJournal());
  }
  if (!options_.sweep_orphan_files) {
    sweep_done_ = true;
    return absl::OkStatus();
  }
  sweeper_ = std::thread([this] {
    absl::Status s = SweepOrphans();
    if (!s.ok()) {
      std::fprintf(stderr, "homeward: the orphan photo sweep stopped: %s\n",
                   std::string(s.message()).c_str());
    }
    sweep_done_ = true;
  });
  return absl::OkStatus();
}

// Removes the files under photos/ that no row names. A file is judged under write_mu_: every
// write holds it from the file's creation to the commit of the row that names it, so a file
// of a photo being added is never taken for an orphan. The lock is taken per batch of files,
// so writers wait at most one batch.
absl::Status SqliteCatalog::SweepOrphans() {
  std::vector<std::string> files;
  HW_RETURN_IF_ERROR(
      internal::WalkFiles(photos_dir_, [&](const std::string& rel) { files.push_back(rel); }));
  constexpr size_t kBatch = 256;
  for (size_t begin = 0; begin < files.size() && !stop_sweep_; begin += kBatch) {
    absl::MutexLock l(&write_mu_);
    HW_ASSIGN_OR_RETURN(
        Statement q, Statement::Prepare(writer_, "SELECT 1 FROM photos WHERE sha256 = ? LIMIT 1"));
    for (size_t i = begin; i < std::min(files.size(), begin + kBatch); ++i) {
      const std::string& rel = files[i];
      const size_t slash = rel.rfind('/');
      const std::string base = slash == std::string::npos ? rel : rel.substr(slash + 1);
      bool keep = false;
      if (internal::IsSha256Hex(base) && internal::FileNameForHash(base) == rel) {
        q.Reset();
        HW_ASSIGN_OR_RETURN(keep, q.BindText(1, base).Step());
      }
      if (!keep) HW_RETURN_IF_ERROR(internal::UnlinkDurably(photos_dir_, rel));
    }
  }
  return absl::OkStatus();
}

// Unlinks every journaled file no photo row references, then clears its journal row.
absl::Status SqliteCatalog::DrainUnlinkJournal() {
  std::vector<std::string> names;
  {
    HW_ASSIGN_OR_RETURN(Statement q,
                        Statement::Prepare(writer_, "SELECT file_name FROM pending_unlink"));
    while (true) {
      HW_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      names.push_back(q.Text(0));
    }
  }
  if (names.empty()) return absl::OkStatus();
  HW_ASSIGN_OR_RETURN(Statement ref,
                      Statement::Prepare(writer_, "SELECT 1 FROM photos WHERE file_name = ?"));
  HW_ASSIGN_OR_RETURN(
      Statement del, Statement::Prepare(writer_, "DELETE FROM pending_unlink WHERE file_name = ?"));
  for (const std::string& name : names) {
    ref.Reset();
    HW_ASSIGN_OR_RETURN(bool referenced, ref.BindText(1, name).Step());
    // Only names this code wrote are journaled; re-check anyway before touching the disk.
    const size_t slash = name.rfind('/');
    const std::string base = slash == std::string::npos ? name : name.substr(slash + 1);
    if (!referenced && internal::IsSha256Hex(base) && internal::FileNameForHash(base) == name) {
      HW_RETURN_IF_ERROR(internal::UnlinkDurably(photos_dir_, name));
    }
    del.Reset();
    HW_RETURN_IF_ERROR(del.BindText(1, name).Run());
  }
  return absl::OkStatus();
}

// Deletes the photos selected by `photo_where` (a fixed SQL fragment on table p with one
// parameter, `id`), their faces, and the case too when delete_case. Rows, 'remove' changes
// and the unlink journal commit together; files are unlinked after.
absl::Status SqliteCatalog::DeleteRows(int64_t id, const char* photo_where, bool delete_case,
                                       const AuditEntry* audit,
                                       const std::function<absl::Status(sqlite3*)>& in_txn,
                                       std::vector<int64_t>* face_ids) {
  if (audit != nullptr) HW_RETURN_IF_ERROR(ValidateAudit(*audit));
  absl::MutexLock l(&write_mu_);
  {
    Transaction txn(writer_);
    HW_RETURN_IF_ERROR(txn.status());
    {
      HW_ASSIGN_OR_RETURN(
          Statement q,
          Statement::Prepare(writer_, delete_case ? "SELECT 1 FROM cases WHERE id = ?"
                                                  : "SELECT 1 FROM photos WHERE id = ?"));
      HW_ASSIGN_OR_RETURN(bool found, q.Bind(1, id).Step());
      if (!found) {
        return absl::NotFoundError(
            absl::StrCat(delete_case ? "case " : "photo ", id, " does not exist"));
      }
    }
    if (in_txn) HW_RETURN_IF_ERROR(in_txn(writer_));
    if (face_ids != nullptr) {
      face_ids->clear();
      HW_ASSIGN_OR_RETURN(
          Statement q,
          Statement::Prepare(writer_, absl::StrCat("SELECT f.id FROM faces f JOIN photos p ON "
                                                   "p.id = f.photo_id WHERE ",
                                                   photo_where, " ORDER BY f.id")));
      q.Bind(1, id);
      while (true) {
        HW_ASSIGN_OR_RETURN(bool row, q.Step());
        if (!row) break;
        face_ids->push_back(q.Int(0));
      }
    }
    if (audit != nullptr) {  // with what goes: counted inside the deleting transaction
      HW_ASSIGN_OR_RETURN(
          Statement q,
          Statement::Prepare(writer_, absl::StrCat("SELECT count(DISTINCT p.id), count(f.id) "
                                                   "FROM photos p LEFT JOIN faces f ON "
                                                   "f.photo_id = p.id WHERE ",
                                                   photo_where)));
      HW_ASSIGN_OR_RETURN(bool row, q.Bind(1, id).Step());
      AuditEntry entry = *audit;
      if (entry.target_id == 0) entry.target_id = id;
      absl::StrAppend(&entry.detail, entry.detail.empty() ? "" : " ", "photos=", row ? q.Int(0) : 0,
                      " faces=", row ? q.Int(1) : 0);
      HW_RETURN_IF_ERROR(InsertAuditRow(writer_, entry).status());
    }
    std::vector<std::pair<std::string, std::string>> files;  // (sha256, file_name)
    {
      HW_ASSIGN_OR_RETURN(
          Statement q, Statement::Prepare(writer_, absl::StrCat("SELECT DISTINCT sha256, file_name "
                                                                "FROM photos p WHERE ",
                                                                photo_where)));
      q.Bind(1, id);
      while (true) {
        HW_ASSIGN_OR_RETURN(bool row, q.Step());
        if (!row) break;
        files.emplace_back(q.Text(0), q.Text(1));
      }
    }
    // Leads first (they reference faces and cases): evidence naming a deleted face goes, a
    // lead keeps its best remaining pair or goes with its reviews when none remains.
    const std::string face_ids = absl::StrCat(
        "SELECT f.id FROM faces f JOIN photos p ON p.id = f.photo_id WHERE ", photo_where);
    std::vector<std::string> lead_sql = {
        absl::StrCat("DELETE FROM sighting_clusters WHERE face_id IN (", face_ids, ")"),
        absl::StrCat("DELETE FROM lead_evidence WHERE face_a IN (", face_ids, ") OR face_b IN (",
                     face_ids, ")"),
        absl::StrCat("UPDATE leads SET (face_a, face_b, distance, confidence) = (SELECT "
                     "e.face_a, e.face_b, e.distance, e.confidence FROM lead_evidence e WHERE "
                     "e.lead_id = leads.id ORDER BY e.confidence DESC, e.id LIMIT 1) WHERE "
                     "(face_a IN (",
                     face_ids, ") OR face_b IN (", face_ids,
                     ")) AND EXISTS (SELECT 1 FROM lead_evidence e WHERE e.lead_id = leads.id)")};
    if (delete_case) {
      lead_sql.push_back(
          "DELETE FROM lead_evidence WHERE lead_id IN (SELECT id FROM leads WHERE case_a = ?1 "
          "OR case_b = ?1)");
    }
    for (const std::string& sql : lead_sql) {
      HW_ASSIGN_OR_RETURN(Statement q, Statement::Prepare(writer_, sql));
      HW_RETURN_IF_ERROR(q.Bind(1, id).Run());
    }
    {
      // A sighting whose lead goes away here (with the other case or photo) starts its
      // retention clock again now if that lead still protected it, else from the lead's last
      // change (its rejection): retention.cc.
      constexpr char kGone[] = "NOT EXISTS (SELECT 1 FROM lead_evidence e WHERE e.lead_id = l.id)";
      HW_ASSIGN_OR_RETURN(
          Statement q,
          Statement::Prepare(
              writer_,
              absl::StrCat("UPDATE cases SET lead_ended_ms = max(coalesce(lead_ended_ms, 0), "
                           "(SELECT max(CASE WHEN l.status IN (1, 2, 4) THEN ?1 ELSE "
                           "l.updated_ms END) FROM leads l WHERE (l.case_a = cases.id OR "
                           "l.case_b = cases.id) AND ",
                           kGone, ")) WHERE kind = 3 AND id IN (SELECT case_a FROM leads l WHERE ",
                           kGone, " UNION SELECT case_b FROM leads l WHERE ", kGone, ")")));
      HW_RETURN_IF_ERROR(q.Bind(1, NowMs()).Run());
    }
    for (const char* sql :
         {"DELETE FROM lead_reviews WHERE lead_id IN (SELECT l.id FROM leads l WHERE NOT "
          "EXISTS (SELECT 1 FROM lead_evidence e WHERE e.lead_id = l.id))",
          "DELETE FROM leads WHERE NOT EXISTS (SELECT 1 FROM lead_evidence e WHERE "
          "e.lead_id = leads.id)"}) {
      HW_RETURN_IF_ERROR(internal::Exec(writer_, sql));
    }
    const std::string photo_ids = absl::StrCat("SELECT p.id FROM photos p WHERE ", photo_where);
    for (const std::string& sql :
         {absl::StrCat("INSERT INTO changes (op, face_id, kind) SELECT 'remove', f.id, c.kind "
                       "FROM faces f JOIN photos p ON p.id = f.photo_id JOIN cases c ON "
                       "c.id = p.case_id WHERE ",
                       photo_where, " ORDER BY f.id"),
          absl::StrCat("DELETE FROM faces WHERE photo_id IN (", photo_ids, ")"),
          absl::StrCat("DELETE FROM photos WHERE id IN (", photo_ids, ")")}) {
      HW_ASSIGN_OR_RETURN(Statement q, Statement::Prepare(writer_, sql));
      HW_RETURN_IF_ERROR(q.Bind(1, id).Run());
    }
    if (delete_case) {
      HW_ASSIGN_OR_RETURN(Statement q,
                          Statement::Prepare(writer_, "DELETE FROM cases WHERE id = ?"));
      HW_RETURN_IF_ERROR(q.Bind(1, id).Run());
    }
    // A file shared with another case's photo stays.
    HW_ASSIGN_OR_RETURN(Statement ref,
                        Statement::Prepare(writer_, "SELECT 1 FROM photos WHERE sha256 = ?"));
    HW_ASSIGN_OR_RETURN(
        Statement journal,
        Statement::Prepare(writer_, "INSERT OR IGNORE INTO pending_unlink (file_name) VALUES (?)"));
    for (const auto& [sha, name] : files) {
      ref.Reset();
      HW_ASSIGN_OR_RETURN(bool shared, ref.BindText(1, sha).Step());
      if (shared) continue;
      journal.Reset();
      HW_RETURN_IF_ERROR(journal.BindText(1, name).Run());
    }
    HW_RETURN_IF_ERROR(txn.Commit());
  }
  HW_RETURN_IF_ERROR(DrainUnlinkJournal());
  // Move the zeroed (secure_delete) pages into the database file and truncate the WAL, so
  // the deleted rows linger in neither. A read in flight holds an older snapshot that
  // pins both: wait for it up to busy_timeout_ms (reads are short); if one outlasts that,
  // the rows stay until the next checkpoint or close (tests/deletion_trace_test.cc).
  sqlite3_wal_checkpoint_v2(writer_, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Catalog>> SqliteCatalog::Open(const std::string& data_dir,
                                                             const CatalogOptions& options) {
  if (data_dir.empty()) return absl::InvalidArgumentError("data_dir is empty");
  if (options.busy_timeout_ms < 0 || options.max_read_connections < 0) {
    return absl::InvalidArgumentError("busy_timeout_ms and max_read_connections must be >= 0");
  }
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) {
    return ec.value() == ENOSPC
               ? absl::ResourceExhaustedError(ec.message())
               : absl::InternalError(absl::StrCat("create ", data_dir, ": ", ec.message()));
  }
  HW_RETURN_IF_ERROR(EnsureDir(data_dir + "/photos"));

  const std::string lock_path = data_dir + "/LOCK";
  const int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0) {
    return absl::InternalError(absl::StrCat("open ", lock_path, ": ", std::strerror(errno)));
  }
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd);
    return absl::FailedPreconditionError(
        absl::StrCat(data_dir, " is in use by another Catalog (", lock_path, " is locked)"));
  }
  absl::StatusOr<sqlite3*> writer = OpenConnection(data_dir + "/catalog.db", options, false);
  if (!writer.ok()) {
    ::close(lock_fd);
    return writer.status();
  }
  // From here the catalog owns the lock and the connection.
  auto catalog = std::make_unique<SqliteCatalog>(data_dir, options, lock_fd, *writer);
  HW_RETURN_IF_ERROR(catalog->Start());
  return std::unique_ptr<Catalog>(std::move(catalog));
}

}  // namespace homeward::store::internal
