// Thin RAII wrappers over libpq for the PostgreSQL catalog: a connection, parameters bound by
// position ($1, $2, ...; text, or binary for bytea), results read by row and column, and one
// mapping from PostgreSQL errors (SQLSTATE) to absl::Status. Not thread-safe: a connection
// belongs to one thread at a time (the catalog's pool hands it out).
#ifndef HOMEWARD_STORE_POSTGRES_PG_H_
#define HOMEWARD_STORE_POSTGRES_PG_H_

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace homeward::store::internal::pg {

// Every message names PostgreSQL. UNAVAILABLE when the connection is lost or the server is
// shutting down / refusing connections (SQLSTATE classes 08, 57P); RESOURCE_EXHAUSTED for
// class 53 (disk full, out of memory, too many connections); UNAVAILABLE for serialization
// failures and deadlocks (40001, 40P01) and lock timeouts (55P03); DATA_LOSS for XX001/XX002;
// INVALID_ARGUMENT for data exceptions (class 22, e.g. text that is not UTF-8);
// FAILED_PRECONDITION for integrity violations (class 23) and raised exceptions (P0001, the
// audit trail's append-only trigger); INTERNAL otherwise.
absl::Status Error(PGconn* conn, const PGresult* res, absl::string_view what);

// Positional parameters of one statement.
class Params {
 public:
  Params& Int(int64_t v);
  Params& Real(double v);
  Params& Bool(bool v) { return Text(v ? "true" : "false"); }
  Params& Text(absl::string_view v);
  Params& TextOrNull(absl::string_view v) { return v.empty() ? Null() : Text(v); }
  Params& Bytes(absl::string_view v);  // bytea, sent in binary
  Params& Null();
  int size() const { return static_cast<int>(values_.size()); }

 private:
  friend class Connection;
  std::vector<std::string> values_;
  std::vector<bool> null_;
  std::vector<int> formats_;
};

// The rows of one statement, in text format.
class Result {
 public:
  explicit Result(PGresult* res) : res_(res, &PQclear) {}
  int rows() const { return PQntuples(res_.get()); }
  int64_t affected() const;  // rows changed by INSERT/UPDATE/DELETE
  bool IsNull(int row, int col) const { return PQgetisnull(res_.get(), row, col) != 0; }
  int64_t Int(int row, int col) const;       // 0 for NULL
  double Real(int row, int col) const;       // 0 for NULL
  bool Bool(int row, int col) const;         // false for NULL
  std::string Text(int row, int col) const;  // "" for NULL
  const PGresult* raw() const { return res_.get(); }
  // A bytea column decoded from its hex text form into `out` (cleared first); false if the
  // text is not hex bytea.
  bool Bytes(int row, int col, std::string* out) const;

 private:
  std::unique_ptr<PGresult, void (*)(PGresult*)> res_;
};

class Connection {
 public:
  // Connects with a libpq connection string or URL. UNAVAILABLE if the server cannot be
  // reached, INVALID_ARGUMENT if the string does not parse, FAILED_PRECONDITION if the
  // server refuses the login or the database does not exist; the message names the problem.
  static absl::StatusOr<std::unique_ptr<Connection>> Open(const std::string& conninfo);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // One statement with parameters; SELECT/INSERT/UPDATE/DELETE/WITH statements are prepared
  // on first use and reused by text for the connection's life.
  absl::StatusOr<Result> Exec(absl::string_view sql, const Params& params = Params());
  // SQL text without parameters; may hold several statements (DDL, BEGIN, COMMIT).
  absl::Status Script(const char* sql);

  // Bulk load: `copy_sql` is a COPY ... FROM STDIN statement; CopyRows sends rows in COPY's
  // text format (tab-separated, \N for NULL, one line per row; see CopyText/CopyBytea), and
  // CopyEnd finishes the COPY (a row PostgreSQL refuses is reported there), or with
  // `abort_reason` makes it fail (the transaction is then aborted). Between CopyBegin and
  // CopyEnd nothing else may be sent on the connection.
  absl::Status CopyBegin(const std::string& copy_sql);
  absl::Status CopyRows(absl::string_view rows);
  absl::Status CopyEnd(const char* abort_reason = nullptr);

  // False once the connection is lost; such a connection is not reused.
  bool healthy() const { return PQstatus(conn_) == CONNECTION_OK; }
  // True between BEGIN and COMMIT/ROLLBACK (also in a failed transaction).
  bool in_transaction() const;
  PGconn* raw() const { return conn_; }

 private:
  explicit Connection(PGconn* conn) : conn_(conn) {}
  PGconn* const conn_;
  std::unordered_map<std::string, std::string> prepared_;  // SQL text -> statement name
};

// Appends a value in COPY's text format: text with backslash, tab, newline and carriage
// return escaped; bytea as \\x and hex digits.
void CopyText(absl::string_view v, std::string* out);
void CopyBytea(absl::string_view v, std::string* out);

// True if `status` came from a lost connection (one worth retrying on a new connection when
// nothing of the transaction had been sent yet).
bool IsConnectionLoss(const absl::Status& status);

// The location with any password replaced by "***", for messages and logs.
std::string Redact(const std::string& conninfo);

}  // namespace homeward::store::internal::pg

#endif  // HOMEWARD_STORE_POSTGRES_PG_H_
