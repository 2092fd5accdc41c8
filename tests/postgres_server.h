// PostgresServer: a real PostgreSQL 15 for the tests, started once per test process: initdb
// into a fresh temp dir owned by the `postgres` system user (tests run as root, and
// PostgreSQL refuses to run as root: the commands go through `runuser -u postgres`), pg_ctl
// start on a free loopback port with its socket in that dir, stopped and removed at exit.
// Each test takes a database of its own (CreateDatabase) and drops it when done.
//
// THREAD SAFETY: Shared() may be called from any thread; the rest from one test at a time.
#ifndef HOMEWARD_TESTS_POSTGRES_SERVER_H_
#define HOMEWARD_TESTS_POSTGRES_SERVER_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace homeward::testing {

class PostgresServer {
 public:
  // Where Debian's postgresql-15 puts initdb and pg_ctl.
  static constexpr char kBinDir[] = "/usr/lib/postgresql/15/bin";

  // "" when postgresql-15's binaries are installed; otherwise why not (a test skips then).
  static std::string NotInstalledReason();

  // The process-wide server, started on first use; an error if it cannot start (a test
  // fails then: the binaries are there, so something is wrong).
  static absl::StatusOr<PostgresServer*> Shared();

  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  int port() const { return port_; }
  // postgresql://postgres@127.0.0.1:<port>/<database>
  std::string Url(const std::string& database) const;
  // A new, empty database with a unique name; returns its name.
  absl::StatusOr<std::string> CreateDatabase();
  // Drops it (connections still open to it are terminated).
  absl::Status DropDatabase(const std::string& name);

  // Stops PostgreSQL (fast shutdown: clients are disconnected) and starts it again on the
  // same port, for the fault tests.
  absl::Status Stop();
  absl::Status Start();

 private:
  PostgresServer(std::string dir, int port) : dir_(std::move(dir)), port_(port) {}
  // Runs `command` (a PostgreSQL binary and its arguments, shell-quoted by the caller) as the
  // postgres user; output goes to <dir>/commands.log.
  absl::Status RunAsPostgres(const std::string& command) const;

  std::string dir_;
  int port_ = 0;
  int64_t next_db_ = 0;
};

}  // namespace homeward::testing

#endif  // HOMEWARD_TESTS_POSTGRES_SERVER_H_
