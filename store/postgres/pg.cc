#include "store/postgres/pg.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <regex>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"

namespace homeward::store::internal::pg {
namespace {

constexpr char kLossPayload[] = "homeward/postgresql-connection-lost";

// libpq's message on one line: its line breaks and tabs ("server closed the connection
// unexpectedly\n\tThis probably means ...", one line per address tried) become single spaces.
std::string Trimmed(const char* s) {
  if (s == nullptr) return "";
  std::string out;
  for (char c : absl::StripAsciiWhitespace(s)) {
    if (c == '\n' || c == '\t' || c == '\r') c = ' ';
    if (c == ' ' && !out.empty() && out.back() == ' ') continue;
    out += c;
  }
  return out;
}

absl::Status ConnectionLost(absl::string_view what, absl::string_view detail) {
  absl::Status s =
      absl::UnavailableError(absl::StrCat("PostgreSQL connection lost (", what, "): ", detail));
  s.SetPayload(kLossPayload, absl::Cord("1"));
  return s;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

absl::Status Error(PGconn* conn, const PGresult* res, absl::string_view what) {
  const std::string message =
      Trimmed(res != nullptr ? PQresultErrorMessage(res) : PQerrorMessage(conn));
  const std::string state = res != nullptr && PQresultErrorField(res, PG_DIAG_SQLSTATE) != nullptr
                                ? PQresultErrorField(res, PG_DIAG_SQLSTATE)
                                : "";
  if (conn != nullptr && PQstatus(conn) != CONNECTION_OK) {
    return ConnectionLost(what, message.empty() ? Trimmed(PQerrorMessage(conn)) : message);
  }
  const std::string text =
      absl::StrCat("PostgreSQL: ", what, ": ", message,
                   state.empty() ? "" : absl::StrCat(" (SQLSTATE ", state, ")"));
  const absl::string_view cls = absl::string_view(state).substr(0, 2);
  if (state.empty() || cls == "08" || absl::StartsWith(state, "57P")) {
    // No SQLSTATE: libpq could not even send the statement.
    return state.empty() ? ConnectionLost(what, message) : absl::UnavailableError(text);
  }
  if (cls == "53") return absl::ResourceExhaustedError(text);
  if (state == "40001" || state == "40P01" || state == "55P03") return absl::UnavailableError(text);
  if (state == "XX001" || state == "XX002") return absl::DataLossError(text);
  if (cls == "22") return absl::InvalidArgumentError(text);
  if (cls == "23" || state == "P0001") return absl::FailedPreconditionError(text);
  return absl::InternalError(text);
}

bool IsConnectionLoss(const absl::Status& status) {
  return status.GetPayload(kLossPayload).has_value();
}

std::string Redact(const std::string& conninfo) {
  // URL form: scheme://user:password@host -> scheme://user:***@host; keyword form: password=x.
  static const std::regex url_password(R"(^([a-z]+://[^:/@]*):[^@/]*@)");
  static const std::regex kw_password(R"(password\s*=\s*('[^']*'|\S+))");
  std::string out = std::regex_replace(conninfo, url_password, "$1:***@");
  return std::regex_replace(out, kw_password, "password=***");
}

// ---- Params ----------------------------------------------------------------------------------

Params& Params::Int(int64_t v) {
  values_.push_back(absl::StrCat(v));
  null_.push_back(false);
  formats_.push_back(0);
  return *this;
}

Params& Params::Real(double v) {
  values_.push_back(absl::StrFormat("%.17g", v));
  null_.push_back(false);
  formats_.push_back(0);
  return *this;
}

Params& Params::Text(absl::string_view v) {
  values_.emplace_back(v);
  null_.push_back(false);
  formats_.push_back(0);
  return *this;
}

Params& Params::Bytes(absl::string_view v) {
  values_.emplace_back(v);
  null_.push_back(false);
  formats_.push_back(1);
  return *this;
}

Params& Params::Null() {
  values_.emplace_back();
  null_.push_back(true);
  formats_.push_back(0);
  return *this;
}

// ---- Result ----------------------------------------------------------------------------------

int64_t Result::affected() const {
  int64_t n = 0;
  (void)absl::SimpleAtoi(PQcmdTuples(res_.get()), &n);
  return n;
}

int64_t Result::Int(int row, int col) const {
  if (IsNull(row, col)) return 0;
  return std::strtoll(PQgetvalue(res_.get(), row, col), nullptr, 10);
}

double Result::Real(int row, int col) const {
  if (IsNull(row, col)) return 0;
  return std::strtod(PQgetvalue(res_.get(), row, col), nullptr);
}

bool Result::Bool(int row, int col) const {
  if (IsNull(row, col)) return false;
  return PQgetvalue(res_.get(), row, col)[0] == 't';
}

std::string Result::Text(int row, int col) const {
  if (IsNull(row, col)) return "";
  return std::string(PQgetvalue(res_.get(), row, col),
                     static_cast<size_t>(PQgetlength(res_.get(), row, col)));
}

bool Result::Bytes(int row, int col, std::string* out) const {
  out->clear();
  if (IsNull(row, col)) return true;
  const char* s = PQgetvalue(res_.get(), row, col);
  const size_t n = static_cast<size_t>(PQgetlength(res_.get(), row, col));
  if (n < 2 || s[0] != '\\' || s[1] != 'x' || n % 2 != 0) return false;
  out->resize((n - 2) / 2);
  for (size_t i = 0; i < out->size(); ++i) {
    const int hi = HexValue(s[2 + 2 * i]), lo = HexValue(s[3 + 2 * i]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<char>(hi << 4 | lo);
  }
  return true;
}

// ---- Connection ------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Connection>> Connection::Open(const std::string& conninfo) {
  char* parse_error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(conninfo.c_str(), &parse_error);
  if (parsed == nullptr) {
    std::string why = parse_error != nullptr ? Trimmed(parse_error) : "out of memory";
    PQfreemem(parse_error);
    return absl::InvalidArgumentError(
        absl::StrCat("PostgreSQL catalog location ", Redact(conninfo), " does not parse: ", why));
  }
  PQconninfoFree(parsed);
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (conn == nullptr) return absl::ResourceExhaustedError("PostgreSQL: out of memory");
  if (PQstatus(conn) != CONNECTION_OK) {
    const std::string why = Trimmed(PQerrorMessage(conn));
    PQfinish(conn);
    const bool refused_login = absl::StrContains(why, "authentication failed") ||
                               absl::StrContains(why, "does not exist") ||
                               absl::StrContains(why, "no pg_hba.conf entry") ||
                               absl::StrContains(why, "permission denied");
    // A value libpq checks only when connecting (a port that is not a number, ...).
    const bool malformed = absl::StrContains(why, "for connection option");
    const std::string text =
        absl::StrCat("cannot connect to PostgreSQL at ", Redact(conninfo), ": ", why);
    if (malformed) return absl::InvalidArgumentError(text);
    return refused_login ? absl::FailedPreconditionError(text) : absl::UnavailableError(text);
  }
  auto c = std::unique_ptr<Connection>(new Connection(conn));
  // UTC and UTF-8 whatever the server's defaults; no notices on stderr.
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  absl::Status s = c->Script("SET client_encoding = 'UTF8'; SET TIME ZONE 'UTC'");
  if (!s.ok()) return s;
  return c;
}

Connection::~Connection() { PQfinish(conn_); }

bool Connection::in_transaction() const {
  const PGTransactionStatusType t = PQtransactionStatus(conn_);
  return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}

absl::StatusOr<Result> Connection::Exec(absl::string_view sql, const Params& params) {
  const int n = params.size();
  std::vector<const char*> values(n);
  std::vector<int> lengths(n);
  for (int i = 0; i < n; ++i) {
    values[i] = params.null_[i] ? nullptr : params.values_[i].data();
    lengths[i] = static_cast<int>(params.values_[i].size());
  }
  const std::string text(sql);
  // The catalog's statements are a fixed set of texts: each is parsed and planned once per
  // connection (a server-side prepared statement), not on every call. Only SELECT, INSERT,
  // UPDATE, DELETE and WITH can be prepared; the rest (FETCH, ...) go as they are.
  PGresult* res = nullptr;
  const bool preparable = absl::StartsWith(text, "SELECT") || absl::StartsWith(text, "INSERT") ||
                          absl::StartsWith(text, "UPDATE") || absl::StartsWith(text, "DELETE") ||
                          absl::StartsWith(text, "WITH");
  if (preparable) {
    auto it = prepared_.find(text);
    if (it == prepared_.end()) {
      const std::string name = absl::StrCat("hw_", prepared_.size());
      Result prep(PQprepare(conn_, name.c_str(), text.c_str(), 0, nullptr));
      if (PQresultStatus(prep.raw()) != PGRES_COMMAND_OK) {
        const size_t end = std::min<size_t>(text.find_first_of("(\n"), 60);
        return Error(conn_, prep.raw(), text.substr(0, std::min(end, text.size())));
      }
      it = prepared_.emplace(text, name).first;
    }
    res = PQexecPrepared(conn_, it->second.c_str(), n, values.data(), lengths.data(),
                         params.formats_.data(), /*resultFormat=*/0);
  } else {
    res = PQexecParams(conn_, text.c_str(), n, nullptr, values.data(), lengths.data(),
                       params.formats_.data(), /*resultFormat=*/0);
  }
  Result result(res);
  const ExecStatusType st = res != nullptr ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    // The statement's first words say what failed without echoing parameters.
    const size_t end = std::min<size_t>(text.find_first_of("(\n"), 60);
    return Error(conn_, res, text.substr(0, std::min(end, text.size())));
  }
  return result;
}

absl::Status Connection::Script(const char* sql) {
  // PQexec returns the last statement's result; an error stops the script there.
  PGresult* res = PQexec(conn_, sql);
  const ExecStatusType st = res != nullptr ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  absl::Status s = absl::OkStatus();
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK && st != PGRES_EMPTY_QUERY) {
    const std::string text(sql);
    s = Error(conn_, res,
              absl::StripAsciiWhitespace(text.substr(0, std::min<size_t>(text.size(), 40))));
  }
  PQclear(res);
  return s;
}

// ---- COPY ------------------------------------------------------------------------------------

absl::Status Connection::CopyBegin(const std::string& copy_sql) {
  Result r(PQexec(conn_, copy_sql.c_str()));
  if (PQresultStatus(r.raw()) != PGRES_COPY_IN) {
    return Error(conn_, r.raw(), copy_sql.substr(0, std::min<size_t>(copy_sql.size(), 40)));
  }
  return absl::OkStatus();
}

absl::Status Connection::CopyRows(absl::string_view rows) {
  if (rows.empty()) return absl::OkStatus();
  if (PQputCopyData(conn_, rows.data(), static_cast<int>(rows.size())) != 1) {
    return Error(conn_, nullptr, "COPY data");
  }
  return absl::OkStatus();
}

absl::Status Connection::CopyEnd(const char* abort_reason) {
  if (PQputCopyEnd(conn_, abort_reason) != 1) return Error(conn_, nullptr, "COPY end");
  absl::Status s = absl::OkStatus();
  // The COPY's own result, then nothing (libpq's protocol for ending COPY IN).
  while (PGresult* res = PQgetResult(conn_)) {
    Result r(res);
    if (s.ok() && PQresultStatus(res) != PGRES_COMMAND_OK) s = Error(conn_, res, "COPY");
  }
  return s;
}

void CopyText(absl::string_view v, std::string* out) {
  for (char c : v) {
    switch (c) {
      case '\\': out->append("\\\\"); break;
      case '\t': out->append("\\t"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      default: out->push_back(c);
    }
  }
}

void CopyBytea(absl::string_view v, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  const size_t start = out->size();
  out->resize(start + 3 + 2 * v.size());
  char* p = out->data() + start;
  *p++ = '\\';  // COPY's escape for the backslash of bytea's "\x"
  *p++ = '\\';
  *p++ = 'x';
  for (unsigned char c : v) {
    *p++ = kHex[c >> 4];
    *p++ = kHex[c & 15];
  }
}

}  // namespace homeward::store::internal::pg
