// Thin RAII wrappers over the SQLite C API for the catalog: prepared statements with
// positional binds, IMMEDIATE transactions, and one mapping from SQLite result codes to
// absl::Status. Not thread-safe: a connection and its statements belong to one thread at a time.
#ifndef HOMEWARD_STORE_INTERNAL_SQLITE_H_
#define HOMEWARD_STORE_INTERNAL_SQLITE_H_

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace homeward::store::internal {

// RESOURCE_EXHAUSTED for SQLITE_FULL/NOMEM or ENOSPC, UNAVAILABLE for BUSY/LOCKED,
// DATA_LOSS for CORRUPT/NOTADB, FAILED_PRECONDITION for CONSTRAINT/READONLY/CANTOPEN/PERM,
// INTERNAL otherwise.
absl::Status SqliteError(sqlite3* db, int rc, absl::string_view what);

// Runs SQL text without parameters (DDL, PRAGMAs); may hold several statements.
absl::Status Exec(sqlite3* db, const char* sql);

class StatementCache;

class Statement {
 public:
  static absl::StatusOr<Statement> Prepare(sqlite3* db, absl::string_view sql);
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&&) = delete;
  ~Statement();

  // Binds are 1-based. A failed bind is reported by the next Step/Run.
  Statement& Bind(int i, int64_t v);
  Statement& Bind(int i, int v) { return Bind(i, static_cast<int64_t>(v)); }
  Statement& Bind(int i, double v);
  Statement& BindText(int i, absl::string_view v);
  Statement& BindBlob(int i, const void* data, size_t size);
  Statement& BindNull(int i);
  // Text, or NULL when empty.
  Statement& BindTextOrNull(int i, absl::string_view v) {
    return v.empty() ? BindNull(i) : BindText(i, v);
  }

  // true when a row is available, false when done.
  absl::StatusOr<bool> Step();
  // Steps to completion, ignoring rows.
  absl::Status Run();
  // Ready to re-run with new binds.
  void Reset();

  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  double Real(int col) const { return sqlite3_column_double(stmt_, col); }
  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  int Type(int col) const { return sqlite3_column_type(stmt_, col); }  // SQLITE_INTEGER, ...
  std::string Text(int col) const;  // "" for NULL
  absl::string_view Blob(int col) const;

 private:
  friend class StatementCache;
  Statement(sqlite3* db, sqlite3_stmt* stmt, bool owned = true)
      : db_(db), stmt_(stmt), owned_(owned) {}
  void NoteBind(int rc);
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  bool owned_;  // finalized on destruction; otherwise a cache's, reset and unbound
  int bind_rc_ = SQLITE_OK;
};

// The prepared statements of one connection, kept across calls (parsing and planning a join
// costs more than running it on a point lookup). Get returns a Statement borrowing the cached
// one: reset and unbound when it is destroyed, so one Statement per SQL text may be alive at a
// time. Same thread rule as the connection; finalizes everything on destruction, which must
// come before the connection is closed.
class StatementCache {
 public:
  explicit StatementCache(sqlite3* db) : db_(db) {}
  StatementCache(const StatementCache&) = delete;
  StatementCache& operator=(const StatementCache&) = delete;
  ~StatementCache();

  absl::StatusOr<Statement> Get(absl::string_view sql);

 private:
  sqlite3* const db_;
  std::map<std::string, sqlite3_stmt*, std::less<>> stmts_;
};

// BEGIN IMMEDIATE on construction (check status()); rolls back unless Commit() succeeded.
class Transaction {
 public:
  explicit Transaction(sqlite3* db);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  const absl::Status& status() const { return status_; }
  absl::Status Commit();

 private:
  sqlite3* db_;
  absl::Status status_;
  bool open_ = false;
};

}  // namespace homeward::store::internal

#endif  // HOMEWARD_STORE_INTERNAL_SQLITE_H_
