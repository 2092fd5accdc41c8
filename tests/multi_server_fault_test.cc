// Faults of the multi-server deployment (issue 14), with real components: two homeward-server
// processes (tests/server_process.h) on one PostgreSQL 15 catalog started by the test
// (tests/postgres_server.h), following its change log every 200 ms, and real face photos (one
// per person of LFW's development view, read from ../shared/data at run time).
//
// - PostgresRestartUnderLoad: a client thread uploads (CreateCase + AddPhoto, SubmitSighting)
//   and searches through both servers while PostgreSQL is stopped (pg_ctl stop -m fast) for a
//   few seconds and started again. Every failed call is UNAVAILABLE with a message naming
//   PostgreSQL; both servers recover by themselves (same processes) within a few seconds, and a
//   photo added through one server after the restart is found through the other.
// - SigkillOneServerWhileBothTakeUploads: uploads go through both servers at once; one is
//   killed with SIGKILL mid-stream. Every acknowledged photo (through either server) is in the
//   catalog and found by a search through the survivor, which answered every call throughout;
//   the killed server, restarted, finds the photos added while it was down.
//
// The recovery times measured are printed (docs/RELIABILITY.md quotes them).
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "homeward/v1/homeward.grpc.pb.h"
#include "tests/embed_test_util.h"
#include "tests/postgres_server.h"
#include "tests/rpc_call.h"
#include "tests/server_process.h"

namespace homeward::server {
namespace {

namespace fs = std::filesystem;
namespace pb = ::homeward::v1;
using ::homeward::testing::CallRpc;
using ::homeward::testing::MakeTempDirOrDie;
using ::homeward::testing::PostgresServer;
using ::homeward::testing::ReadFileOrDie;
using ::homeward::testing::Rpc;
using ::homeward::testing::ServerOptions;
using ::homeward::testing::ServerProcess;
using ::homeward::testing::SharedDataDir;
using Clock = std::chrono::steady_clock;
using Stub = pb::Homeward::Stub;

constexpr char kBinary[] = HOMEWARD_SERVER_BINARY;
constexpr int kFollowMs = 200;
constexpr double kCallDeadlineS = 20;

// The first column of the first row of `sql` on `url`, as text ("<error: ...>" on failure).
std::string PgValue(const std::string& url, const std::string& sql) {
  PGconn* conn = PQconnectdb(url.c_str());
  PGresult* r = PQexec(conn, sql.c_str());
  std::string v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0
                      ? PQgetvalue(r, 0, 0)
                      : absl::StrCat("<error: ", PQerrorMessage(conn), ">");
  PQclear(r);
  PQfinish(conn);
  return v;
}

// One photo per LFW person (distinct faces, so a search's best candidate is the photo's own
// case), in name order; empty when the shared data is absent.
std::vector<std::string> DistinctFacePaths(size_t n) {
  const fs::path lfw = fs::path(SharedDataDir()) / "lfw-view1";
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(lfw, ec)) {
    if (e.is_directory()) names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  std::vector<std::string> paths;
  for (const std::string& name : names) {
    const fs::path p = lfw / name / (name + "_0001.jpg");
    if (fs::exists(p, ec)) paths.push_back(p.string());
    if (paths.size() == n) break;
  }
  return paths;
}

// One call's outcome, as the client saw it.
struct Event {
  int server = 0;  // 0 = A, 1 = B
  std::string op;
  double begin_s = 0, end_s = 0;  // since the test's start
  grpc::StatusCode code = grpc::StatusCode::OK;
  std::string message;
};

class MultiServerFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = PostgresServer::NotInstalledReason(); !why.empty()) GTEST_SKIP() << why;
    if (!::homeward::testing::ModelsInstalled()) GTEST_SKIP() << "models or demo photos absent";
    photos_ = DistinctFacePaths(200);
    if (photos_.size() < 200) {
      GTEST_SKIP() << "LFW photos absent under " << SharedDataDir()
                   << "/lfw-view1 (set HOMEWARD_SHARED_DATA)";
    }
    auto server = PostgresServer::Shared();
    ASSERT_TRUE(server.ok()) << server.status();
    pg_ = *server;
    auto db = pg_->CreateDatabase();
    ASSERT_TRUE(db.ok()) << db.status();
    database_ = *db;
    url_ = pg_->Url(database_);
    dir_ = MakeTempDirOrDie("hw_multifault_");
    start_ = Clock::now();
  }

  void TearDown() override {
    for (auto& s : servers_) s.reset();
    if (pg_ != nullptr) pg_->DropDatabase(database_).IgnoreError();
    if (!dir_.empty() && !HasFailure()) fs::remove_all(dir_);
  }

  double Now() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }
  Event Begin(int server, const char* op) const {
    Event e;
    e.server = server;
    e.op = op;
    e.begin_s = Now();
    return e;
  }
  void End(const grpc::Status& s, Event* e) const {
    e->end_s = Now();
    e->code = s.error_code();
    e->message = s.error_message();
  }

  // Starts servers A (0) and B (1) on the catalog, each with a data dir of its own, at once
  // (each loads the models for seconds).
  void StartServers() {
    std::string errors[2];
    bool ok[2] = {false, false};
    std::thread starters[2];
    for (int i = 0; i < 2; ++i) {
      const std::string dir = absl::StrCat(dir_, "/server", i);
      fs::create_directories(dir);
      servers_[i] = std::make_unique<ServerProcess>(kBinary, dir);
      starters[i] = std::thread([this, i, &errors, &ok] {
        ServerOptions options;
        options.flags = {"--catalog", url_, "--follow-ms", std::to_string(kFollowMs),
                         "--workers", "1"};
        options.insecure_dev = true;
        ok[i] = servers_[i]->Start(options, &errors[i]);
      });
    }
    for (int i = 0; i < 2; ++i) starters[i].join();
    for (int i = 0; i < 2; ++i) {
      ASSERT_TRUE(ok[i]) << "server "
                         << "AB"[i] << ": " << errors[i];
      Connect(i);
    }
  }
  void Connect(int i) {
    stubs_[i] = pb::Homeward::NewStub(
        grpc::CreateChannel(servers_[i]->address(), grpc::InsecureChannelCredentials()));
  }

  template <typename Req, typename Resp>
  grpc::Status Call(int server, Rpc<Req, Resp> m, const Req& req, Resp* resp) {
    return CallRpc(*stubs_[server], m, "", req, resp,
                   std::chrono::milliseconds(static_cast<int>(kCallDeadlineS * 1000)));
  }

  // A MISSING case with the photo (its first face) through `server`. Records one event per
  // call in *events; returns the photo id when AddPhoto was acknowledged, else "".
  struct Upload {
    std::string case_id, photo_id;
  };
  Upload AddMissingChild(int server, const std::string& image, std::vector<Event>* events) {
    Upload up;
    pb::CreateCaseRequest create;
    create.mutable_case_()->set_kind(pb::MISSING);
    create.mutable_case_()->set_display_name("child");
    pb::Case created;
    Event e = Begin(server, "CreateCase");
    grpc::Status s = Call(server, &Stub::CreateCase, create, &created);
    End(s, &e);
    events->push_back(e);
    if (!s.ok()) return up;
    pb::AddPhotoRequest add;
    add.set_case_id(created.id());
    add.set_image(image);
    add.set_face_index(0);
    add.set_has_face_index(true);
    pb::AddPhotoResponse added;
    e = Begin(server, "AddPhoto");
    s = Call(server, &Stub::AddPhoto, add, &added);
    End(s, &e);
    if (s.ok() && (added.faces_size() == 0 || !added.faces(0).stored())) {
      e.code = grpc::StatusCode::UNKNOWN;  // every LFW photo shows a usable face
      e.message = "no face stored: " + added.no_face_reason();
    }
    events->push_back(e);
    if (e.code == grpc::StatusCode::OK) up = {created.id(), added.photo_id()};
    return up;
  }

  // Searches `image` through `server`; sets *top to the best candidate's case id over the
  // query's faces ("" when none) and returns the call's status.
  grpc::Status SearchTop(int server, const std::string& image, std::string* top) {
    pb::SearchRequest req;
    req.set_image(image);
    req.set_top_k(3);
    pb::SearchResponse resp;
    const grpc::Status s = Call(server, &Stub::Search, req, &resp);
    top->clear();
    float best = 1e9;
    for (const auto& r : resp.results()) {
      if (r.candidates_size() > 0 && r.candidates(0).distance() < best) {
        best = r.candidates(0).distance();
        *top = r.candidates(0).case_().id();
      }
    }
    return s;
  }

  // Seconds until a search of `image` through `server` has `case_id` as its best candidate
  // (polled), or -1 after `timeout_s`.
  double SecondsUntilFound(int server, const std::string& image, const std::string& case_id,
                           double timeout_s) {
    const double t0 = Now();
    while (Now() - t0 < timeout_s) {
      std::string top;
      if (SearchTop(server, image, &top).ok() && top == case_id) return Now() - t0;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return -1;
  }

  PostgresServer* pg_ = nullptr;
  std::string database_, url_, dir_;
  std::vector<std::string> photos_;
  std::unique_ptr<ServerProcess> servers_[2];
  std::unique_ptr<Stub> stubs_[2];
  Clock::time_point start_;
};

TEST_F(MultiServerFaultTest, PostgresRestartUnderLoad) {
  StartServers();
  const pid_t pids[2] = {servers_[0]->pid(), servers_[1]->pid()};

  // The load: uploads and searches through A and B in turn until told to stop.
  std::mutex mu;
  std::vector<Event> events;                  // guarded by mu
  std::vector<std::pair<Upload, int>> acked;  // (upload, server); guarded by mu
  std::atomic<bool> stop{false};
  std::thread load([&] {
    for (int i = 0; !stop; ++i) {
      const int server = i % 2;
      const std::string image = ReadFileOrDie(photos_[i % 150]);
      std::vector<Event> mine;
      if (i % 3 == 2) {
        pb::SubmitSightingRequest req;
        req.set_image(image);
        req.set_place("market");
        req.set_top_k(3);
        pb::SubmitSightingResponse resp;
        Event e = Begin(server, "SubmitSighting");
        const grpc::Status s = Call(server, &Stub::SubmitSighting, req, &resp);
        End(s, &e);
        mine.push_back(e);
      } else {
        Upload up = AddMissingChild(server, image, &mine);
        std::lock_guard<std::mutex> l(mu);
        if (!up.photo_id.empty()) acked.push_back({up, server});
      }
      std::string top;
      Event e = Begin(server, "Search");
      const grpc::Status s = SearchTop(server, ReadFileOrDie(photos_[i / 2 % 150]), &top);
      End(s, &e);
      mine.push_back(e);
      bool failed = false;
      {
        std::lock_guard<std::mutex> l(mu);
        for (const Event& m : mine) {
          failed = failed || m.code != grpc::StatusCode::OK;
          events.push_back(m);
        }
      }
      // While the catalog is down, calls fail fast: do not spin.
      if (failed) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  auto uploads_ok_since = [&](int server, double since) {
    std::lock_guard<std::mutex> l(mu);
    for (const Event& e : events) {
      if (e.server == server && e.op == "AddPhoto" && e.begin_s >= since &&
          e.code == grpc::StatusCode::OK) {
        return true;
      }
    }
    return false;
  };
  // Warm-up: an upload through each server went through.
  const double t_load = Now();
  while (!(uploads_ok_since(0, t_load) && uploads_ok_since(1, t_load)) && Now() - t_load < 60) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  const double t_stop = Now();
  absl::Status st = pg_->Stop();
  ASSERT_TRUE(st.ok()) << st;
  const double t_stopped = Now();
  std::this_thread::sleep_for(std::chrono::seconds(3));
  const double t_start = Now();
  st = pg_->Start();
  ASSERT_TRUE(st.ok()) << st;
  const double t_started = Now();

  // Recovery, probed: the first CreateCase through each server that succeeds after pg_ctl
  // start returned (PostgreSQL accepts connections again).
  double first_write_s[2] = {-1, -1};
  while ((first_write_s[0] < 0 || first_write_s[1] < 0) && Now() - t_started < 30) {
    for (int i = 0; i < 2; ++i) {
      if (first_write_s[i] >= 0) continue;
      pb::CreateCaseRequest create;
      create.mutable_case_()->set_kind(pb::FOUND);
      create.mutable_case_()->set_display_name("probe");
      pb::Case created;
      const grpc::Status s = Call(i, &Stub::CreateCase, create, &created);
      if (s.ok()) {
        first_write_s[i] = Now() - t_started;
      } else {
        std::lock_guard<std::mutex> l(mu);
        Event e = Begin(i, "CreateCase (probe)");
        End(s, &e);
        events.push_back(e);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // And an upload through each server that began after that went through.
  while (!(uploads_ok_since(0, t_started) && uploads_ok_since(1, t_started)) &&
         Now() - t_started < 30) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));  // a little more load after it
  stop = true;
  load.join();

  // Every failure was UNAVAILABLE naming PostgreSQL; some calls did fail while it was down;
  // after the restart each server recovered (its first good upload, counted from pg_ctl start
  // returning) within a few seconds.
  int failed_down = 0, failed_after = 0, ok_total = 0;
  double recovered_s[2] = {-1, -1};
  double last_failure_s[2] = {-1, -1};
  for (const Event& e : events) {
    if (e.code == grpc::StatusCode::OK) {
      ++ok_total;
      if (e.op == "AddPhoto" && e.begin_s >= t_started && recovered_s[e.server] < 0) {
        recovered_s[e.server] = e.end_s - t_started;
      }
      continue;
    }
    EXPECT_EQ(e.code, grpc::StatusCode::UNAVAILABLE)
        << e.op << " via "
        << "AB"[e.server] << " at " << e.begin_s << " s: " << e.message;
    EXPECT_TRUE(absl::StrContains(e.message, "PostgreSQL")) << e.op << " via "
                                                            << "AB"[e.server] << ": " << e.message;
    EXPECT_EQ(e.message.find('\n'), std::string::npos) << "not one line: " << e.message;
    if (e.begin_s >= t_stopped && e.end_s <= t_start) ++failed_down;
    if (e.begin_s >= t_started) ++failed_after;
    last_failure_s[e.server] = std::max(last_failure_s[e.server], e.end_s);
  }
  std::printf(
      "PostgreSQL stopped at %.2f s (pg_ctl stop took %.2f s), started at %.2f s (pg_ctl start "
      "took %.2f s); %zu calls, %d OK, %d failed while down, %d failed after the restart; first "
      "write after the restart: A %.2f s, B %.2f s; first upload (of the load thread) after "
      "it: A %.2f s, B %.2f s; last failure A %.2f s, B %.2f s\n",
      t_stop, t_stopped - t_stop, t_start, t_started - t_start, events.size(), ok_total,
      failed_down, failed_after, first_write_s[0], first_write_s[1], recovered_s[0], recovered_s[1],
      last_failure_s[0], last_failure_s[1]);
  for (const Event& e : events) {
    if (e.code != grpc::StatusCode::OK && e.begin_s >= t_started) {
      std::printf("  after restart: %s via %c at %.2f s: %s\n", e.op.c_str(), "AB"[e.server],
                  e.begin_s, e.message.c_str());
    }
  }
  std::set<std::string> shown;  // what a client saw, one line per RPC
  for (const Event& e : events) {
    if (e.code != grpc::StatusCode::OK && shown.insert(e.op).second) {
      std::printf("  %s: %s\n", e.op.c_str(), e.message.c_str());
    }
  }
  // What the operator sees in the server's log.
  bool said_failed = false, said_again = false;
  for (absl::string_view line : absl::StrSplit(servers_[0]->Log(), '\n')) {
    const bool failed = absl::StrContains(line, "following the change log failed");
    const bool again = absl::StrContains(line, "following the change log again");
    if ((failed && !said_failed) || (again && !said_again)) {
      std::printf("  A's log: %s\n", std::string(line).c_str());
    }
    said_failed = said_failed || failed;
    said_again = said_again || again;
  }
  EXPECT_TRUE(said_failed && said_again) << servers_[0]->Log();
  EXPECT_GT(failed_down, 0) << "no call ran while PostgreSQL was down";
  for (int i = 0; i < 2; ++i) {
    EXPECT_GE(first_write_s[i], 0) << "AB"[i] << " never recovered";
    EXPECT_LT(first_write_s[i], 3) << "AB"[i];
    EXPECT_GE(recovered_s[i], 0) << "AB"[i] << " took no upload after the restart";
    EXPECT_LT(recovered_s[i], 10) << "AB"[i];
  }
  EXPECT_EQ(failed_after, 0) << "calls failed after PostgreSQL was back";

  // Same processes, still serving; every acknowledged photo is in the catalog.
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(servers_[i]->running()) << "AB"[i];
    EXPECT_EQ(servers_[i]->pid(), pids[i]);
  }
  for (const auto& [up, server] : acked) {
    EXPECT_EQ(PgValue(url_, "SELECT count(*) FROM photos WHERE id = " + up.photo_id), "1")
        << "photo " << up.photo_id << " acked via "
        << "AB"[server];
  }
  std::printf("%zu AddPhoto acknowledged, all checked in the catalog\n", acked.size());

  // After the restart: added through one server, found through the other within 2 s.
  for (int from = 0; from < 2; ++from) {
    const std::string image = ReadFileOrDie(photos_[180 + from]);
    std::vector<Event> ev;
    const Upload up = AddMissingChild(from, image, &ev);
    ASSERT_FALSE(up.photo_id.empty()) << ev.back().message;
    const double seen = SecondsUntilFound(1 - from, image, up.case_id, 10);
    std::printf("added via %c, found via %c after %.2f s\n", "AB"[from], "AB"[1 - from], seen);
    EXPECT_GE(seen, 0);
    EXPECT_LT(seen, 2);
  }
}

TEST_F(MultiServerFaultTest, SigkillOneServerWhileBothTakeUploads) {
  StartServers();
  // Photos 0..99 go through A, 100..199 through B.
  struct Acked {
    Upload up;
    int server;
    std::string path;
    double at_s;
  };
  std::mutex mu;
  std::vector<Acked> acked;  // guarded by mu
  std::vector<Event> events[2];
  std::atomic<bool> stop[2] = {false, false};
  std::atomic<int> acked_by[2] = {0, 0};
  // ServerProcess belongs to the main thread (it kills and reaps A); the uploaders only call.
  std::thread a([&] {
    for (int i = 0; !stop[0] && i < 100; ++i) {
      const std::string path = photos_[i];
      const Upload up = AddMissingChild(0, ReadFileOrDie(path), &events[0]);
      if (!up.photo_id.empty()) {
        std::lock_guard<std::mutex> l(mu);
        acked.push_back({up, 0, path, Now()});
        ++acked_by[0];
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  });
  std::thread b([&] {
    for (int i = 0; !stop[1] && i < 100; ++i) {
      const std::string path = photos_[100 + i];
      const Upload up = AddMissingChild(1, ReadFileOrDie(path), &events[1]);
      if (!up.photo_id.empty()) {
        std::lock_guard<std::mutex> l(mu);
        acked.push_back({up, 1, path, Now()});
        ++acked_by[1];
      }
    }
  });

  // SIGKILL A mid-stream, once it acknowledged a few uploads (its next call is in flight).
  const double t0 = Now();
  while (acked_by[0] < 3 && Now() - t0 < 60) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GE(acked_by[0], 3);
  const double t_kill = Now();
  servers_[0]->Kill();
  const double t_dead = Now();  // reaped
  const int b_at_kill = acked_by[1];
  // B keeps taking uploads while A is dead.
  while (acked_by[1] < b_at_kill + 5 && Now() - t_kill < 60) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  stop[0] = stop[1] = true;
  a.join();
  b.join();
  const double t_stopped = Now();

  // The survivor answered every call; A's calls after the kill failed, as they must.
  for (const Event& e : events[1]) {
    EXPECT_EQ(e.code, grpc::StatusCode::OK)
        << e.op << " via B at " << e.begin_s << " s (kill at " << t_kill << " s): " << e.message;
  }
  // A's calls after the kill failed UNAVAILABLE (the one in flight too); none succeeded.
  int a_failed = 0, a_in_flight = 0;
  for (const Event& e : events[0]) {
    if (e.begin_s < t_kill && e.end_s > t_kill) ++a_in_flight;
    if (e.begin_s > t_dead) {
      EXPECT_NE(e.code, grpc::StatusCode::OK) << e.op << " via dead A";
    }
    if (e.code == grpc::StatusCode::OK) continue;
    ++a_failed;
    EXPECT_EQ(e.code, grpc::StatusCode::UNAVAILABLE) << e.op << " via A: " << e.message;
  }
  int acked_a_before = 0, acked_b_during = 0;
  for (const Acked& k : acked) {
    if (k.server == 0) ++acked_a_before;
    if (k.server == 1 && k.at_s > t_kill) ++acked_b_during;
  }

  // Every acknowledged photo is in the catalog and found through the survivor.
  int in_catalog = 0, found_b = 0;
  double slowest_b = 0;
  for (const Acked& k : acked) {
    const bool there =
        PgValue(url_, "SELECT count(*) FROM photos WHERE id = " + k.up.photo_id) == "1";
    EXPECT_TRUE(there) << "photo " << k.up.photo_id << " acked via "
                       << "AB"[k.server];
    in_catalog += there;
    const double seen = SecondsUntilFound(1, ReadFileOrDie(k.path), k.up.case_id, 5);
    EXPECT_GE(seen, 0) << k.path << " (case " << k.up.case_id << ", acked via "
                       << "AB"[k.server] << ") not found via B";
    found_b += seen >= 0;
    slowest_b = std::max(slowest_b, seen);
  }

  const double t_checked_b = Now();
  // A restarts on its data dir and catches up: it finds the photos added while it was down.
  std::string error;
  const double t_restart = Now();
  ASSERT_TRUE(servers_[0]->Restart(&error)) << error;
  const double restart_s = Now() - t_restart;
  Connect(0);
  int found_a = 0, missed_by_a = 0;
  for (const Acked& k : acked) {
    if (k.server != 1 || k.at_s <= t_kill) continue;
    ++missed_by_a;
    const double seen = SecondsUntilFound(0, ReadFileOrDie(k.path), k.up.case_id, 5);
    EXPECT_GE(seen, 0) << k.path << " added via B while A was down: not found via A";
    found_a += seen >= 0;
  }
  std::printf(
      "SIGKILL of A at %.2f s after %d acked uploads via A; uploads stopped at %.2f s; %d of A's "
      "calls in flight at the kill, %d failed; B: %zu calls, all checked OK, %d uploads acked "
      "while A was "
      "down; acked %zu, in the catalog %d, found via B %d (slowest %.2f s); A restarted in %.2f s "
      "and found %d of the %d photos added while it was down\n",
      t_kill, acked_a_before, t_stopped, a_in_flight, a_failed, events[1].size(), acked_b_during,
      acked.size(), in_catalog, found_b, slowest_b, restart_s, found_a, missed_by_a);
  std::printf(
      "phases: servers up and uploads until %.2f s, searches via B %.2f s, restart and "
      "searches via A %.2f s\n",
      t_stopped, t_checked_b - t_stopped, Now() - t_checked_b);
  EXPECT_GE(acked_b_during, 5);
  EXPECT_EQ(servers_[0]->Stop(), 0);
  EXPECT_EQ(servers_[1]->Stop(), 0);
}

}  // namespace
}  // namespace homeward::server
