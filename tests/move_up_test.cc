// homeward-move-up (store/move_up.h, tools/move_up.cc) end to end: a real embedded data dir
// built through the Gallery from real photos (cases, a shared photo file, a sighting with its
// cluster, leads with a review, a deleted case, audit rows, candidate grants) is moved into a
// real PostgreSQL 15 started by the test; every table's rows match, the sequences continue
// past every id ever given, and a homeward-server on the database serves the same search
// results as one on the data dir. A non-empty target is refused and left untouched; a failure
// in the middle of the copy leaves the target without a row. Skips when postgresql-15 (or the
// models) are absent.
#include "store/move_up.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "gallery/gallery.h"
#include "homeward/v1/homeward.grpc.pb.h"
#include "store/catalog.h"
#include "tests/embed_test_util.h"
#include "tests/postgres_server.h"
#include "tests/rpc_call.h"
#include "tests/server_process.h"

namespace homeward {
namespace {

namespace fs = std::filesystem;
namespace pb = ::homeward::v1;
using ::homeward::gallery::Gallery;
using ::homeward::gallery::GalleryOptions;
using ::homeward::gallery::PhotoInput;
using ::homeward::store::CaseKind;
using ::homeward::testing::CallRpc;
using ::homeward::testing::DemoDir;
using ::homeward::testing::MakeTempDirOrDie;
using ::homeward::testing::PostgresServer;
using ::homeward::testing::ReadFileOrDie;
using ::homeward::testing::RunCommand;
using ::homeward::testing::ServerOptions;
using ::homeward::testing::ServerProcess;

constexpr char kMoveUp[] = HOMEWARD_MOVE_UP_BINARY;
constexpr char kServer[] = HOMEWARD_SERVER_BINARY;

// The tables compared row by row (photo_bytes is compared with the files).
constexpr const char* kTables[][2] = {{"cases", "id"},
                                      {"photos", "id"},
                                      {"faces", "id"},
                                      {"leads", "id"},
                                      {"lead_evidence", "id"},
                                      {"lead_reviews", "id"},
                                      {"sighting_clusters", "face_id"},
                                      {"candidate_grants", "key_id, face_id"},
                                      {"audit", "id"},
                                      {"changes", "seq"},
                                      {"counters", "name"},
                                      {"kind_counts", "kind"}};

std::string Hex(const void* data, size_t n) {
  std::string s;
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) absl::StrAppendFormat(&s, "%02x", p[i]);
  return s;
}

store::AuditEntry Audit(const std::string& actor, const std::string& action,
                        const std::string& target_type, int64_t target_id) {
  store::AuditEntry e;
  e.actor = actor;
  e.role = "admin";
  e.action = action;
  e.target_type = target_type;
  e.target_id = target_id;
  e.detail = "by the move-up test";
  return e;
}

std::string Real(double v) { return absl::StrFormat("%.17g", v); }

using Rows = std::vector<std::string>;  // one line per row, columns joined by '|'

// PostgreSQL's columns of `table` with their types, in order.
std::vector<std::pair<std::string, std::string>> PgColumns(PGconn* pg, const std::string& table) {
  std::vector<std::pair<std::string, std::string>> cols;
  PGresult* r = PQexec(pg, absl::StrCat("SELECT column_name, data_type FROM "
                                        "information_schema.columns WHERE table_name = '",
                                        table, "' ORDER BY ordinal_position")
                               .c_str());
  for (int i = 0; i < PQntuples(r); ++i)
    cols.emplace_back(PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
  PQclear(r);
  return cols;
}

// Every row of `table` in both databases, normalised to one text form: integers in decimal,
// reals with 17 digits, booleans 0/1, blobs in hex, NULL as "NULL".
void ReadBoth(sqlite3* lite, PGconn* pg, const std::string& table, const std::string& order,
              Rows* lite_rows, Rows* pg_rows) {
  const auto cols = PgColumns(pg, table);
  ASSERT_FALSE(cols.empty()) << table;
  std::vector<std::string> names;
  for (const auto& c : cols) names.push_back(c.first);
  const std::string select =
      absl::StrCat("SELECT ", absl::StrJoin(names, ", "), " FROM ", table, " ORDER BY ", order);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(lite, select.c_str(), -1, &st, nullptr), SQLITE_OK)
      << sqlite3_errmsg(lite) << " in " << select;
  while (sqlite3_step(st) == SQLITE_ROW) {
    std::string row;
    for (size_t i = 0; i < cols.size(); ++i) {
      if (i > 0) row += "|";
      const int c = static_cast<int>(i);
      switch (sqlite3_column_type(st, c)) {
        case SQLITE_NULL:
          row += "NULL";
          break;
        case SQLITE_INTEGER:
          row += cols[i].second == "double precision" ? Real(sqlite3_column_double(st, c))
                                                      : std::to_string(sqlite3_column_int64(st, c));
          break;
        case SQLITE_FLOAT:
          row += Real(sqlite3_column_double(st, c));
          break;
        case SQLITE_BLOB:
          row += Hex(sqlite3_column_blob(st, c), static_cast<size_t>(sqlite3_column_bytes(st, c)));
          break;
        default:
          row += reinterpret_cast<const char*>(sqlite3_column_text(st, c));
      }
    }
    lite_rows->push_back(row);
  }
  sqlite3_finalize(st);
  PGresult* r = PQexec(pg, select.c_str());
  ASSERT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << PQerrorMessage(pg);
  for (int i = 0; i < PQntuples(r); ++i) {
    std::string row;
    for (size_t j = 0; j < cols.size(); ++j) {
      if (j > 0) row += "|";
      const int c = static_cast<int>(j);
      const std::string v = PQgetvalue(r, i, c);
      if (PQgetisnull(r, i, c)) {
        row += "NULL";
      } else if (cols[j].second == "double precision") {
        row += Real(std::strtod(v.c_str(), nullptr));
      } else if (cols[j].second == "boolean") {
        row += v == "t" ? "1" : "0";
      } else if (cols[j].second == "bytea") {
        row += v.substr(2);  // "\x..."
      } else {
        row += v;
      }
    }
    pg_rows->push_back(row);
  }
  PQclear(r);
}

int64_t PgInt(const std::string& url, const std::string& sql) {
  PGconn* conn = PQconnectdb(url.c_str());
  PGresult* r = PQexec(conn, sql.c_str());
  const int64_t v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0
                        ? std::strtoll(PQgetvalue(r, 0, 0), nullptr, 10)
                        : -1;
  PQclear(r);
  PQfinish(conn);
  return v;
}

// Rows in every Homeward table of the database at `url` (-1 for a table that is absent).
int64_t HomewardRows(const std::string& url) {
  int64_t total = 0;
  for (const char* t :
       {"cases", "photo_bytes", "photos", "faces", "leads", "lead_evidence", "lead_reviews",
        "sighting_clusters", "candidate_grants", "audit", "changes"}) {
    const int64_t n = PgInt(url, absl::StrCat("SELECT count(*) FROM ", t));
    if (n < 0) return -1;
    total += n;
  }
  return total + PgInt(url, "SELECT count(*) FROM counters WHERE value <> 0") +
         PgInt(url, "SELECT count(*) FROM kind_counts WHERE cases + photos + faces <> 0");
}

struct Source {
  std::string dir;  // the built data dir (copied per test)
  int64_t deleted_case = 0, reviewed_lead = 0, faces = 0;
};

class MoveUpTest : public ::testing::Test {
 protected:
  // One data dir for the suite: through the Gallery, with real photos.
  static void SetUpTestSuite() {
    if (!PostgresServer::NotInstalledReason().empty() || !::homeward::testing::ModelsInstalled()) {
      return;
    }
    source_ = new Source;
    source_->dir = MakeTempDirOrDie("hw_moveup_src_");
    GalleryOptions o;
    o.data_dir = source_->dir;
    o.pipeline.recognition_model_path = ::homeward::testing::RecognitionModelPath();
    o.pipeline.workers = 1;
    o.today = "2024-01-01";
    auto g = Gallery::Open(o);
    ASSERT_TRUE(g.ok()) << g.status();
    Gallery& gallery = **g;
    store::Catalog& catalog = gallery.catalog();
    auto demo = [](int i) { return ReadFileOrDie(absl::StrCat(DemoDir(), "/sample", i, ".jpg")); };
    const store::AuditEntry audit = Audit("admin-key", "CreateCase", "case", 0);
    auto new_case = [&](CaseKind kind, const std::string& name) {
      store::Case c;
      c.kind = kind;
      c.display_name = name;
      c.date_of_birth = "2010-03-04";
      c.place = "Lagos\twith a tab, a \\ and a\nnewline";  // COPY's escapes
      c.owner_key_id = "family-1";
      auto id = catalog.AddCase(c, &audit);
      EXPECT_TRUE(id.ok()) << id.status();
      return id.ok() ? *id : 0;
    };
    auto add = [&](int64_t case_id, const std::string& bytes) {
      PhotoInput in;
      in.case_id = case_id;
      in.bytes = bytes;
      in.taken_on = "2016-06-01";
      in.face_index = 0;
      in.source = "family";
      auto r = gallery.AddPhoto(in);
      EXPECT_TRUE(r.ok()) << r.status();
    };
    // The same child reported missing and found (one photo file shared by two photo rows):
    // a lead between them.
    const int64_t missing = new_case(CaseKind::kMissing, "Amara");
    add(missing, demo(2));
    const int64_t found = new_case(CaseKind::kFound, "Found child");
    add(found, demo(2));
    for (int i : {1, 3, 4, 5, 6}) {
      const int64_t c =
          new_case(i % 2 ? CaseKind::kFound : CaseKind::kMissing, absl::StrCat("Child ", i));
      add(c, demo(i));
    }
    // A sighting of every face of a group photo (clusters, leads).
    gallery::SightingInput s;
    s.bytes = demo(1);
    s.seen_on = "2023-05-06";
    s.place = "Kano";
    s.reporter_key_id = "volunteer-1";
    auto sighting = gallery.SubmitSighting(s);
    ASSERT_TRUE(sighting.ok()) << sighting.status();
    // A deleted case: its ids are never given again.
    source_->deleted_case = new_case(CaseKind::kMissing, "Deleted");
    add(source_->deleted_case, demo(3));
    ASSERT_TRUE(gallery.DeleteCase(source_->deleted_case, &audit).ok());
    // A reviewed lead.
    auto leads = catalog.ListLeads(store::LeadQuery{});
    ASSERT_TRUE(leads.ok()) << leads.status();
    ASSERT_FALSE(leads->leads.empty());
    source_->reviewed_lead = leads->leads[0].id;
    ASSERT_TRUE(gallery
                    .ReviewLead(source_->reviewed_lead, store::LeadStatus::kConfirmedForDna,
                                "same scar", "investigator-1", "investigator")
                    .ok());
    // A read's audit row and a volunteer's candidate grants.
    ASSERT_TRUE(catalog.AppendAudit(Audit("volunteer-1", "Search", "face", 1)).ok());
    ASSERT_TRUE(catalog.SaveGrants("volunteer-1", {1, 2}, 4102444800000).ok());
    auto n = catalog.CountByKind();
    ASSERT_TRUE(n.ok());
    for (const auto& [kind, counts] : *n) source_->faces += counts.faces;
  }
  static void TearDownTestSuite() {
    if (source_ != nullptr) fs::remove_all(source_->dir);
    delete source_;
    source_ = nullptr;
  }

  void SetUp() override {
    if (std::string why = PostgresServer::NotInstalledReason(); !why.empty()) GTEST_SKIP() << why;
    if (!::homeward::testing::ModelsInstalled()) GTEST_SKIP() << "models or demo photos absent";
    ASSERT_NE(source_, nullptr);
    auto server = PostgresServer::Shared();
    ASSERT_TRUE(server.ok()) << server.status();
    pg_ = *server;
    auto db = pg_->CreateDatabase();
    ASSERT_TRUE(db.ok()) << db.status();
    database_ = *db;
    url_ = pg_->Url(database_);
    dir_ = MakeTempDirOrDie("hw_moveup_");
    data_dir_ = dir_ + "/data";
    fs::copy(source_->dir, data_dir_, fs::copy_options::recursive);
  }
  void TearDown() override {
    if (pg_ != nullptr) pg_->DropDatabase(database_).IgnoreError();
    if (!dir_.empty() && !HasFailure()) fs::remove_all(dir_);
  }

  // Runs homeward-move-up; returns its exit code, with its stdout and stderr.
  int RunMoveUp(std::string* out, std::string* err, int verify = 100) {
    return RunCommand({kMoveUp, "--data-dir", data_dir_, "--catalog", url_, "--verify-searches",
                       std::to_string(verify), "--recognition-model",
                       ::homeward::testing::RecognitionModelPath()},
                      out, err);
  }

  static Source* source_;
  PostgresServer* pg_ = nullptr;
  std::string database_, url_, dir_, data_dir_;
};

Source* MoveUpTest::source_ = nullptr;

// Search{face_id} over every collection, as "case/face/distance" per candidate.
std::vector<std::string> SearchByFace(pb::Homeward::Stub& stub, const std::string& face_id) {
  pb::SearchRequest req;
  req.set_face_id(face_id);
  req.add_kinds(pb::MISSING);
  req.add_kinds(pb::FOUND);
  req.add_kinds(pb::SIGHTING);
  req.set_top_k(20);
  req.mutable_filter()->set_include_closed(true);
  req.set_include_age_inconsistent(true);
  pb::SearchResponse resp;
  const grpc::Status s = CallRpc(stub, &pb::Homeward::Stub::Search, "", req, &resp,
                                 std::chrono::seconds(60));
  std::vector<std::string> out;
  if (!s.ok()) return {absl::StrCat("error ", s.error_code(), ": ", s.error_message())};
  for (const auto& r : resp.results()) {
    for (const auto& c : r.candidates()) {
      out.push_back(absl::StrFormat("%s/%s/%.6f", c.case_().id(), c.face_id(), c.distance()));
    }
  }
  return out;
}

TEST_F(MoveUpTest, CopiesEveryTableAndServesTheSameSearches) {
  std::string out, err;
  ASSERT_EQ(RunMoveUp(&out, &err), 0) << out << err;
  const std::string searched = std::to_string(std::min<int64_t>(100, source_->faces));
  EXPECT_NE(out.find("searches: " + searched + " of " + searched +
                     " sampled faces return the same candidates"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("| faces | " + std::to_string(source_->faces) + " | " +
                     std::to_string(source_->faces) + " |"),
            std::string::npos)
      << out;

  sqlite3* lite = nullptr;
  ASSERT_EQ(
      sqlite3_open_v2((data_dir_ + "/catalog.db").c_str(), &lite, SQLITE_OPEN_READONLY, nullptr),
      SQLITE_OK);
  PGconn* pg = PQconnectdb(url_.c_str());
  ASSERT_EQ(PQstatus(pg), CONNECTION_OK) << PQerrorMessage(pg);
  for (const auto& [table, order] : kTables) {
    Rows a, b;
    ReadBoth(lite, pg, table, order, &a, &b);
    EXPECT_EQ(a, b) << table;
    if (std::string(table) != "sighting_clusters" && std::string(table) != "counters") {
      EXPECT_FALSE(a.empty()) << table << " should hold rows in this data dir";
    }
  }
  // photo_bytes: one row per distinct file, holding its bytes.
  {
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(
        sqlite3_prepare_v2(lite, "SELECT DISTINCT sha256, file_name FROM photos", -1, &st, nullptr),
        SQLITE_OK);
    int files = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
      const std::string sha = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
      const std::string file = reinterpret_cast<const char*>(sqlite3_column_text(st, 1));
      const std::string bytes = ReadFileOrDie(data_dir_ + "/photos/" + file);
      PGresult* r = PQexec(
          pg,
          absl::StrCat("SELECT encode(bytes, 'hex') FROM photo_bytes WHERE sha256 = '", sha, "'")
              .c_str());
      ASSERT_EQ(PQntuples(r), 1) << sha;
      EXPECT_EQ(PQgetvalue(r, 0, 0), Hex(bytes.data(), bytes.size())) << file;
      PQclear(r);
      ++files;
    }
    sqlite3_finalize(st);
    EXPECT_EQ(PgInt(url_, "SELECT count(*) FROM photo_bytes"), files);
    EXPECT_LT(files, PgInt(url_, "SELECT count(*) FROM photos"));  // one file shared by two rows
  }
  // The append-only audit trail stays append-only.
  PGresult* r = PQexec(pg, "UPDATE audit SET actor = 'x'");
  EXPECT_EQ(PQresultStatus(r), PGRES_FATAL_ERROR);
  PQclear(r);
  PQfinish(pg);
  sqlite3_close(lite);

  // New ids continue past every id the data dir ever gave (the deleted case's included).
  {
    auto catalog = store::Catalog::Open(url_);
    ASSERT_TRUE(catalog.ok()) << catalog.status();
    store::Case c;
    c.kind = CaseKind::kMissing;
    c.display_name = "after the move";
    auto id = (*catalog)->AddCase(c);
    ASSERT_TRUE(id.ok()) << id.status();
    EXPECT_EQ(*id, source_->deleted_case + 1);
    auto audit = (*catalog)->AppendAudit(Audit("admin-key", "Check", "", 0));
    ASSERT_TRUE(audit.ok()) << audit.status();
    auto lead = (*catalog)->GetLead(source_->reviewed_lead);
    ASSERT_TRUE(lead.ok()) << lead.status();
    ASSERT_EQ(lead->reviews.size(), 1u);
    EXPECT_EQ(lead->reviews[0].reviewer, "investigator-1");
    ASSERT_TRUE((*catalog)->DeleteCase(*id).ok());
  }

  // A server on the data dir and one on the database answer every search alike.
  fs::create_directories(dir_ + "/before");
  fs::create_directories(dir_ + "/after");
  ServerProcess before(kServer, dir_ + "/before"), after(kServer, dir_ + "/after");
  ServerOptions o;
  o.flags = {"--workers", "1"};
  o.insecure_dev = true;
  o.data_dir = data_dir_;
  std::string error;
  ASSERT_TRUE(before.Start(o, &error)) << error;
  o.data_dir = dir_ + "/after/data";  // index snapshots only
  o.flags.insert(o.flags.end(), {"--catalog", url_});
  ASSERT_TRUE(after.Start(o, &error)) << error;
  auto stub_before = pb::Homeward::NewStub(
      grpc::CreateChannel(before.address(), grpc::InsecureChannelCredentials()));
  auto stub_after = pb::Homeward::NewStub(
      grpc::CreateChannel(after.address(), grpc::InsecureChannelCredentials()));
  for (int64_t face = 1; face <= source_->faces + 2; ++face) {
    const std::vector<std::string> a = SearchByFace(*stub_before, std::to_string(face));
    EXPECT_EQ(a, SearchByFace(*stub_after, std::to_string(face))) << "face " << face;
  }
  EXPECT_GT(SearchByFace(*stub_after, "1").size(), 1u);
}

TEST_F(MoveUpTest, NonEmptyTargetIsRefusedAndLeftUntouched) {
  {
    auto catalog = store::Catalog::Open(url_);
    ASSERT_TRUE(catalog.ok()) << catalog.status();
    store::Case c;
    c.kind = CaseKind::kFound;
    c.display_name = "already here";
    ASSERT_TRUE((*catalog)->AddCase(c).ok());
  }
  const int64_t rows = HomewardRows(url_);
  std::string out, err;
  EXPECT_EQ(RunMoveUp(&out, &err), 1) << out << err;
  EXPECT_NE(err.find("is not empty: its Homeward table \"cases\" holds data"), std::string::npos)
      << err;
  EXPECT_EQ(HomewardRows(url_), rows);
  EXPECT_EQ(PgInt(url_, "SELECT count(*) FROM cases WHERE display_name = 'already here'"), 1);

  // A database that holds something else: refused, and no Homeward table is created.
  auto other = pg_->CreateDatabase();
  ASSERT_TRUE(other.ok()) << other.status();
  const std::string other_url = pg_->Url(*other);
  PGconn* conn = PQconnectdb(other_url.c_str());
  PQclear(PQexec(conn, "CREATE TABLE orders (id int)"));
  PQfinish(conn);
  EXPECT_EQ(RunCommand({kMoveUp, "--data-dir", data_dir_, "--catalog", other_url}, &out, &err), 1);
  EXPECT_NE(err.find("it holds table \"orders\", which is not one of Homeward's"),
            std::string::npos)
      << err;
  EXPECT_EQ(PgInt(other_url,
                  "SELECT count(*) FROM information_schema.tables WHERE table_name = "
                  "'schema_version'"),
            0);
  pg_->DropDatabase(*other).IgnoreError();
}

TEST_F(MoveUpTest, FailureMidCopyLeavesTheTargetEmpty) {
  // A photo file gone from the data dir: found while loading, after the cases were sent.
  std::string victim;
  for (const auto& e : fs::recursive_directory_iterator(data_dir_ + "/photos")) {
    if (e.is_regular_file()) victim = e.path().string();
  }
  ASSERT_FALSE(victim.empty());
  const std::string saved = ReadFileOrDie(victim);
  fs::remove(victim);
  std::string out, err;
  EXPECT_EQ(RunMoveUp(&out, &err, 0), 1) << out << err;
  EXPECT_NE(err.find("FAILED, nothing was committed"), std::string::npos) << err;
  EXPECT_NE(err.find("cannot be read"), std::string::npos) << err;
  EXPECT_NE(out.find("cases: "), std::string::npos) << out;  // the cases had been sent
  EXPECT_EQ(HomewardRows(url_), 0);

  // A failure after the last table (in-process, through the test hook): nothing either.
  std::ofstream(victim, std::ios::binary) << saved;
  store::MoveUpOptions options;
  options.after_table_for_test = [](absl::string_view table) {
    return table == "counters" ? absl::AbortedError("injected after the last table")
                               : absl::OkStatus();
  };
  auto failed = store::MoveUp(data_dir_, url_, options);
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kAborted) << failed.status();
  EXPECT_EQ(HomewardRows(url_), 0);
  // The trigger that counts faces is back on (ALTER TABLE was rolled back with the rest).
  EXPECT_EQ(PgInt(url_,
                  "SELECT count(*) FROM pg_trigger WHERE tgname = 'faces_count' AND "
                  "tgenabled = 'O'"),
            1);

  // Then a clean run succeeds on the same (still empty) database.
  auto report = store::MoveUp(data_dir_, url_);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(PgInt(url_, "SELECT count(*) FROM faces"), source_->faces);
  EXPECT_EQ(PgInt(url_, "SELECT sum(faces) FROM kind_counts"), source_->faces);
}

}  // namespace
}  // namespace homeward
