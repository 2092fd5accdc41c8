#include "tests/catalog_backends.h"

#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "store/internal/files.h"
#include "tests/postgres_server.h"

namespace homeward::testing {
namespace {

namespace fs = std::filesystem;

// One statement on its own libpq connection; *value gets the first column of the first row.
absl::Status PgExec(const std::string& url, const std::string& sql, std::string* value) {
  PGconn* conn = PQconnectdb(url.c_str());
  absl::Status s;
  if (PQstatus(conn) != CONNECTION_OK) {
    s = absl::UnavailableError(PQerrorMessage(conn));
  } else {
    PGresult* r = PQexec(conn, sql.c_str());
    const ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      s = absl::FailedPreconditionError(PQresultErrorMessage(r));
    } else if (value != nullptr) {
      if (PQntuples(r) == 0) {
        s = absl::NotFoundError("no row");
      } else {
        *value = PQgetvalue(r, 0, 0);
      }
    }
    PQclear(r);
  }
  PQfinish(conn);
  return s;
}

}  // namespace

std::string BackendName(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kSqlite ? "sqlite" : "postgresql";
}

absl::StatusOr<std::unique_ptr<CatalogLocation>> CatalogLocation::Create(Backend backend,
                                                                         std::string* skip_reason) {
  if (backend == Backend::kSqlite) {
    std::string tmpl = (fs::temp_directory_path() / "catalog_test.XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) return absl::InternalError("mkdtemp failed");
    return std::unique_ptr<CatalogLocation>(new CatalogLocation(backend, tmpl, tmpl, ""));
  }
  *skip_reason = PostgresServer::NotInstalledReason();
  if (!skip_reason->empty()) return nullptr;
  absl::StatusOr<PostgresServer*> server = PostgresServer::Shared();
  if (!server.ok()) return server.status();
  absl::StatusOr<std::string> db = (*server)->CreateDatabase();
  if (!db.ok()) return db.status();
  return std::unique_ptr<CatalogLocation>(
      new CatalogLocation(backend, (*server)->Url(*db), "", *db));
}

CatalogLocation::~CatalogLocation() {
  if (backend_ == Backend::kSqlite) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
    return;
  }
  absl::StatusOr<PostgresServer*> server = PostgresServer::Shared();
  if (server.ok()) (*server)->DropDatabase(database_).IgnoreError();
}

absl::Status CatalogLocation::RawExec(const std::string& sql) const {
  if (backend_ == Backend::kPostgres) return PgExec(location_, sql, nullptr);
  sqlite3* db = nullptr;
  int rc = sqlite3_open((dir_ + "/catalog.db").c_str(), &db);
  if (rc == SQLITE_OK) rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
  absl::Status s = rc == SQLITE_OK ? absl::OkStatus()
                                   : absl::FailedPreconditionError(absl::StrCat(
                                         sqlite3_errmsg(db), " (SQLite code ", rc & 0xff, ")"));
  sqlite3_close(db);
  return s;
}

int64_t CatalogLocation::RawInt(const std::string& sql) const {
  if (backend_ == Backend::kPostgres) {
    std::string v;
    if (!PgExec(location_, sql, &v).ok()) return -1;
    return std::strtoll(v.c_str(), nullptr, 10);
  }
  sqlite3* db = nullptr;
  sqlite3_open((dir_ + "/catalog.db").c_str(), &db);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr);
  int64_t v = -1;
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

std::set<std::string> CatalogLocation::StoredPhotos() const {
  std::set<std::string> out;
  if (backend_ == Backend::kSqlite) {
    const fs::path photos = fs::path(dir_) / "photos";
    std::error_code ec;
    if (!fs::exists(photos, ec)) return out;
    for (const auto& e : fs::recursive_directory_iterator(photos)) {
      if (e.is_regular_file()) out.insert(fs::relative(e.path(), photos).string());
    }
    return out;
  }
  PGconn* conn = PQconnectdb(location_.c_str());
  PGresult* r = PQexec(conn, "SELECT sha256 FROM photo_bytes");
  if (PQresultStatus(r) == PGRES_TUPLES_OK) {
    for (int i = 0; i < PQntuples(r); ++i) {
      out.insert(store::internal::FileNameForHash(PQgetvalue(r, i, 0)));
    }
  } else {
    out.insert(absl::StrCat("<error: ", PQerrorMessage(conn), ">"));
  }
  PQclear(r);
  PQfinish(conn);
  return out;
}

void CatalogFixture::SetUp() {
  std::string skip;
  absl::StatusOr<std::unique_ptr<CatalogLocation>> loc = CatalogLocation::Create(backend(), &skip);
  if (!skip.empty()) GTEST_SKIP() << skip;
  ASSERT_TRUE(loc.ok()) << loc.status();
  location_ = *std::move(loc);
}

void CatalogFixture::TearDown() {
  catalog_.reset();
  location_.reset();
}

void CatalogFixture::OpenCatalog() {
  catalog_.reset();
  auto c = store::Catalog::Open(location_->location());
  ASSERT_TRUE(c.ok()) << c.status();
  catalog_ = *std::move(c);
}

}  // namespace homeward::testing
