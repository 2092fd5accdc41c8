// The catalog test suites run against every backend (store/catalog.h): a TEST_P fixture
// over {sqlite, postgresql}. CatalogLocation is one fresh, empty place for a catalog (a temp
// data dir, or a new database on the tests' PostgreSQL server, tests/postgres_server.h) with
// raw SQL access to what the backend stores, for setting up old schemas and for trying what
// the API does not offer.
#ifndef HOMEWARD_TESTS_CATALOG_BACKENDS_H_
#define HOMEWARD_TESTS_CATALOG_BACKENDS_H_

#include <cstdint>
#include <memory>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "store/catalog.h"

namespace homeward::testing {

enum class Backend { kSqlite, kPostgres };
std::string BackendName(const ::testing::TestParamInfo<Backend>& info);

class CatalogLocation {
 public:
  // A fresh location. *skip_reason is set (and nullptr returned) when the backend cannot run
  // here (PostgreSQL not installed); an error if it should and cannot.
  static absl::StatusOr<std::unique_ptr<CatalogLocation>> Create(Backend backend,
                                                                 std::string* skip_reason);
  ~CatalogLocation();  // removes the directory / drops the database

  Backend backend() const { return backend_; }
  // What Catalog::Open takes: the data dir or the postgresql:// URL.
  const std::string& location() const { return location_; }
  // The SQLite data dir ("" for PostgreSQL).
  const std::string& dir() const { return dir_; }

  // Runs SQL on a connection of its own; the error carries the database's message.
  absl::Status RawExec(const std::string& sql) const;
  // The first column of the first row as an integer; -1 on error or no row.
  int64_t RawInt(const std::string& sql) const;
  // The photo contents the backend holds, as the file names Photo::file_name reports:
  // SQLite, every file under photos/ (stray ones too); PostgreSQL, one per photo_bytes row.
  std::set<std::string> StoredPhotos() const;

 private:
  CatalogLocation(Backend b, std::string location, std::string dir, std::string database)
      : backend_(b),
        location_(std::move(location)),
        dir_(std::move(dir)),
        database_(std::move(database)) {}
  Backend backend_;
  std::string location_, dir_, database_;
};

// The fixture of a catalog suite: a fresh location per test and a Catalog opened on it.
class CatalogFixture : public ::testing::Test {
 protected:
  virtual Backend backend() const = 0;
  void SetUp() override;
  void TearDown() override;
  // (Re)opens catalog_ on the test's location.
  void OpenCatalog();
  CatalogLocation& location() const { return *location_; }
  absl::Status RawExec(const std::string& sql) const { return location_->RawExec(sql); }
  int64_t RawInt(const std::string& sql) const { return location_->RawInt(sql); }
  std::set<std::string> StoredPhotos() const { return location_->StoredPhotos(); }
  bool sqlite() const { return backend() == Backend::kSqlite; }

  std::unique_ptr<CatalogLocation> location_;
  std::unique_ptr<store::Catalog> catalog_;
};

// Runs once per backend: INSTANTIATE_TEST_SUITE_P(Backends, Suite, AllBackends(), BackendName).
class CatalogBackendTest : public CatalogFixture, public ::testing::WithParamInterface<Backend> {
 protected:
  Backend backend() const override { return GetParam(); }
};
inline auto AllBackends() { return ::testing::Values(Backend::kSqlite, Backend::kPostgres); }

// For what only one backend has (files, WAL, the lock file; PostgreSQL's own schema).
class SqliteCatalogFixture : public CatalogFixture {
 protected:
  Backend backend() const override { return Backend::kSqlite; }
};
class PostgresCatalogFixture : public CatalogFixture {
 protected:
  Backend backend() const override { return Backend::kPostgres; }
};

}  // namespace homeward::testing

#endif  // HOMEWARD_TESTS_CATALOG_BACKENDS_H_
