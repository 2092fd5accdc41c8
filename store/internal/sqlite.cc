#include "store/internal/sqlite.h"

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"

namespace homeward::store::internal {

absl::Status SqliteError(sqlite3* db, int rc, absl::string_view what) {
  const char* msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  const int sys_errno = db != nullptr ? sqlite3_system_errno(db) : 0;
  std::string text = absl::StrCat(what, ": ", msg, " (sqlite ", rc, ")");
  constexpr absl::string_view kDiskFull =
      " (the data directory's disk is full: free space, then retry)";
  switch (rc & 0xff) {
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(absl::StrCat(text, kDiskFull));
    case SQLITE_NOMEM:
      return absl::ResourceExhaustedError(text);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(text);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(text);
    case SQLITE_CONSTRAINT:
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
      return absl::FailedPreconditionError(text);
    default:
      if (sys_errno == ENOSPC || sys_errno == EDQUOT) {
        return absl::ResourceExhaustedError(absl::StrCat(text, kDiskFull));
      }
      return absl::InternalError(text);
  }
}

absl::Status Exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  sqlite3_free(err);
  if (rc != SQLITE_OK) return SqliteError(db, rc, "exec");
  return absl::OkStatus();
}

absl::StatusOr<Statement> Statement::Prepare(sqlite3* db, absl::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return SqliteError(db, rc, "prepare");
  }
  return Statement(db, stmt);
}

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_),
      stmt_(std::exchange(other.stmt_, nullptr)),
      owned_(other.owned_),
      bind_rc_(other.bind_rc_) {}

Statement::~Statement() {
  if (owned_) {
    sqlite3_finalize(stmt_);
  } else if (stmt_ != nullptr) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
}

StatementCache::~StatementCache() {
  for (auto& [sql, stmt] : stmts_) sqlite3_finalize(stmt);
}

absl::StatusOr<Statement> StatementCache::Get(absl::string_view sql) {
  auto it = stmts_.find(sql);
  if (it == stmts_.end()) {
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(stmt);
      return SqliteError(db_, rc, "prepare");
    }
    it = stmts_.emplace(std::string(sql), stmt).first;
  }
  return Statement(db_, it->second, /*owned=*/false);
}

void Statement::NoteBind(int rc) {
  if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
}

Statement& Statement::Bind(int i, int64_t v) {
  NoteBind(sqlite3_bind_int64(stmt_, i, v));
  return *this;
}
Statement& Statement::Bind(int i, double v) {
  NoteBind(sqlite3_bind_double(stmt_, i, v));
  return *this;
}
Statement& Statement::BindText(int i, absl::string_view v) {
  NoteBind(sqlite3_bind_text64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
  return *this;
}
Statement& Statement::BindBlob(int i, const void* data, size_t size) {
  NoteBind(sqlite3_bind_blob64(stmt_, i, size == 0 ? "" : data, size, SQLITE_TRANSIENT));
  return *this;
}
Statement& Statement::BindNull(int i) {
  NoteBind(sqlite3_bind_null(stmt_, i));
  return *this;
}

absl::StatusOr<bool> Statement::Step() {
  if (bind_rc_ != SQLITE_OK) return SqliteError(db_, bind_rc_, "bind");
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteError(db_, rc, "step");
}

absl::Status Statement::Run() {
  while (true) {
    absl::StatusOr<bool> row = Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::OkStatus();
  }
}

void Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bind_rc_ = SQLITE_OK;
}

std::string Statement::Text(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  if (p == nullptr) return std::string();
  return std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(stmt_, col));
}

absl::string_view Statement::Blob(int col) const {
  const void* p = sqlite3_column_blob(stmt_, col);
  if (p == nullptr) return absl::string_view();
  return absl::string_view(static_cast<const char*>(p), sqlite3_column_bytes(stmt_, col));
}

Transaction::Transaction(sqlite3* db) : db_(db) {
  status_ = Exec(db_, "BEGIN IMMEDIATE");
  open_ = status_.ok();
}

Transaction::~Transaction() {
  if (open_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

absl::Status Transaction::Commit() {
  if (!open_) return status_.ok() ? absl::InternalError("transaction not open") : status_;
  absl::Status s = Exec(db_, "COMMIT");
  // A failed COMMIT may leave the transaction open (e.g. SQLITE_BUSY); the destructor rolls
  // it back. If SQLite already rolled back, ROLLBACK is a harmless error.
  if (s.ok()) open_ = false;
  return s;
}

}  // namespace homeward::store::internal
