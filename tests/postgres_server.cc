#include "tests/postgres_server.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace homeward::testing {
namespace {

namespace fs = std::filesystem;

int FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

std::string Tail(const std::string& path, size_t n = 2000) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string s = ss.str();
  return s.size() > n ? s.substr(s.size() - n) : s;
}

// Runs one SQL statement on the server's maintenance database.
absl::Status AdminExec(int port, const std::string& sql) {
  const std::string conninfo =
      absl::StrCat("host=127.0.0.1 port=", port, " user=postgres dbname=postgres");
  PGconn* conn = PQconnectdb(conninfo.c_str());
  absl::Status s;
  if (PQstatus(conn) != CONNECTION_OK) {
    s = absl::UnavailableError(absl::StrCat("connect: ", PQerrorMessage(conn)));
  } else {
    PGresult* r = PQexec(conn, sql.c_str());
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
      s = absl::InternalError(absl::StrCat(sql, ": ", PQerrorMessage(conn)));
    }
    PQclear(r);
  }
  PQfinish(conn);
  return s;
}

std::unique_ptr<PostgresServer> shared_server;

}  // namespace

std::string PostgresServer::NotInstalledReason() {
  for (const char* tool : {"initdb", "pg_ctl", "postgres"}) {
    const std::string path = absl::StrCat(kBinDir, "/", tool);
    if (::access(path.c_str(), X_OK) != 0) {
      return absl::StrCat(path, " is not installed (Debian package postgresql-15; ",
                          "scripts/setup.sh deps installs it)");
    }
  }
  if (::geteuid() == 0 && ::getpwnam("postgres") == nullptr) {
    return "running as root and there is no `postgres` user to run PostgreSQL as";
  }
  return "";
}

absl::Status PostgresServer::RunAsPostgres(const std::string& command) const {
  const std::string log = dir_ + "/commands.log";
  const std::string full = absl::StrCat(::geteuid() == 0 ? "runuser -u postgres -- " : "", kBinDir,
                                        "/", command, " >>", log, " 2>&1");
  const int rc = std::system(full.c_str());
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("`", full, "` failed (", rc, "):\n", Tail(log),
                                            "\nserver log:\n", Tail(dir_ + "/server.log")));
  }
  return absl::OkStatus();
}

absl::StatusOr<PostgresServer*> PostgresServer::Shared() {
  static std::mutex mu;
  static absl::Status failed = absl::OkStatus();
  std::lock_guard<std::mutex> l(mu);
  if (shared_server != nullptr) return shared_server.get();
  if (!failed.ok()) return failed;
  const std::string reason = NotInstalledReason();
  if (!reason.empty()) return absl::FailedPreconditionError(reason);

  std::string tmpl = (fs::temp_directory_path() / "homeward_pg.XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) return absl::InternalError("mkdtemp failed");
  if (::geteuid() == 0) {
    const passwd* pw = ::getpwnam("postgres");
    if (::chown(tmpl.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      return absl::InternalError(absl::StrCat("chown ", tmpl, " failed"));
    }
  }
  const int port = FreeLoopbackPort();
  if (port <= 0) return absl::InternalError("no free loopback port");
  auto server = std::unique_ptr<PostgresServer>(new PostgresServer(tmpl, port));
  absl::Status s = server->RunAsPostgres(absl::StrCat(
      "initdb -D ", tmpl, "/data -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync"));
  if (s.ok()) s = server->Start();
  if (!s.ok()) {
    failed = s;
    return s;
  }
  // Stopped and removed by shared_server's destructor at exit (forked test children leave
  // through _exit and skip it).
  shared_server = std::move(server);
  return shared_server.get();
}

absl::Status PostgresServer::Start() {
  return RunAsPostgres(
      absl::StrCat("pg_ctl -D ", dir_, "/data -l ", dir_, "/server.log -w -t 60 -o \"-p ", port_,
                   " -k ", dir_, " -c listen_addresses=127.0.0.1 -c max_connections=200\" start"));
}

absl::Status PostgresServer::Stop() {
  return RunAsPostgres(absl::StrCat("pg_ctl -D ", dir_, "/data -w -t 60 -m fast stop"));
}

PostgresServer::~PostgresServer() {
  Stop().IgnoreError();
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::string PostgresServer::Url(const std::string& database) const {
  return absl::StrCat("postgresql://postgres@127.0.0.1:", port_, "/", database);
}

absl::StatusOr<std::string> PostgresServer::CreateDatabase() {
  const std::string name = absl::StrCat("homeward_", ::getpid(), "_", next_db_++);
  absl::Status s = AdminExec(port_, absl::StrCat("CREATE DATABASE ", name));
  if (!s.ok()) return s;
  return name;
}

absl::Status PostgresServer::DropDatabase(const std::string& name) {
  return AdminExec(port_, absl::StrCat("DROP DATABASE IF EXISTS ", name, " WITH (FORCE)"));
}

}  // namespace homeward::testing
