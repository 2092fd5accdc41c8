// Data minimisation end to end, through the real homeward-server binary (docs/PRIVACY.md):
// - expiry of SIGHTING cases with the sweep's clock moved forward by restarting the server
//   with --test-only-clock-offset-days (no sleeps): an unmatched sighting leaves the catalog,
//   the disk and the index; a sighting in an open lead stays; a sighting whose only lead was
//   rejected expires after the period counted from the rejection; the audit row holds the case
//   id and the reason only; GetStats counts it;
// - ExportCase round-tripped through GNU tar: case.json, every photo byte-identical, the leads
//   and audit rows, nothing of another case; volunteers and families refused; the HTTP route;
// - kill -9 during the expiry sweep: no half-deleted case, the deletion journal finishes it.
// Real photos: LFW (../shared/data/lfw-view1); skipped without models or data.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/sha256.h"
#include "homeward/v1/homeward.grpc.pb.h"
#include "server/auth.h"
#include "tests/embed_test_util.h"
#include "tests/rpc_call.h"
#include "tests/server_process.h"

namespace homeward::server {
namespace {

namespace fs = std::filesystem;
namespace pb = ::homeward::v1;
using ::homeward::base::Sha256Hex;
using ::homeward::testing::CallRpc;
using ::homeward::testing::DecodeBgr;
using ::homeward::testing::EncodeJpeg;
using ::homeward::testing::FilesUnder;
using ::homeward::testing::MakeTempDirOrDie;
using ::homeward::testing::ReadFileOrDie;
using ::homeward::testing::ReadWholeFile;
using ::homeward::testing::Rpc;
using ::homeward::testing::RunCommand;
using ::homeward::testing::ServerOptions;
using ::homeward::testing::ServerProcess;
using ::homeward::testing::SharedDataDir;
using Stub = pb::Homeward::Stub;

constexpr char kBinary[] = HOMEWARD_SERVER_BINARY;
constexpr char kStreetNotes[] = "boy selling gum at the bus stop (retention-notes-4417)";
constexpr char kStreetPlace[] = "Calle Retention 4417";

std::string Lfw(const std::string& name, int i) {
  char file[256];
  std::snprintf(file, sizeof(file), "%s/lfw-view1/%s/%s_%04d.jpg", SharedDataDir().c_str(),
                name.c_str(), name.c_str(), i);
  return file;
}

// The same photo with different bytes (re-encoded), as a second camera would give.
std::string Reencoded(const std::string& jpeg, int quality) {
  return EncodeJpeg(DecodeBgr(jpeg), quality);
}

int64_t SqlInt(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return -1;
  }
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt* q = nullptr;
  int64_t v = -1;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &q, nullptr) == SQLITE_OK &&
      sqlite3_step(q) == SQLITE_ROW) {
    v = sqlite3_column_int64(q, 0);
  }
  sqlite3_finalize(q);
  sqlite3_close(db);
  return v;
}

int SqlExec(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  sqlite3_open(db_path.c_str(), &db);
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
  sqlite3_close(db);
  return rc;
}

class RetentionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!::homeward::testing::ModelsInstalled() ||
        !fs::exists(SharedDataDir() + "/lfw-view1/Aaron_Peirsol/Aaron_Peirsol_0001.jpg")) {
      GTEST_SKIP() << "models, demo photos or ../shared/data/lfw-view1 absent";
    }
    dir_ = MakeTempDirOrDie("hw_retention_e2e_");
    data_dir_ = dir_ + "/data";
    for (auto [id, role] :
         {std::pair{"vol", Role::kVolunteer}, std::pair{"fam", Role::kFamily},
          std::pair{"inv", Role::kInvestigator}, std::pair{"adm", Role::kAdmin}}) {
      auto key = AddKey(dir_ + "/keys.jsonl", id, role);
      ASSERT_TRUE(key.ok()) << key.status();
      keys_[id] = *key;
    }
  }

  void TearDown() override {
    stub_.reset();
    server_.reset();
    if (!dir_.empty() && !HasFailure()) fs::remove_all(dir_);
  }

  // How ServerProcess starts the server: --listen 127.0.0.1:0, --data-dir data_dir_ and the
  // run directory's copy of the keys file are its own; these are the rest.
  ServerOptions Args(int offset_days, const std::vector<std::string>& extra = {}) {
    ServerOptions o;
    o.data_dir = data_dir_;
    o.flags = {"--workers", "1", "--test-only-clock-offset-days", std::to_string(offset_days)};
    o.flags.insert(o.flags.end(), extra.begin(), extra.end());
    return o;
  }

  // A fresh directory per start, so each run's log is its own; it gets the keys file.
  std::string NextLogDir() {
    const std::string d = dir_ + "/run" + std::to_string(++runs_);
    fs::create_directories(d);
    fs::copy_file(dir_ + "/keys.jsonl", d + "/keys.jsonl");
    return d;
  }

  void StartServer(int offset_days, const std::vector<std::string>& extra = {}, bool http = false) {
    stub_.reset();
    server_ = std::make_unique<ServerProcess>(kBinary, NextLogDir());
    std::string error;
    ServerOptions options = Args(offset_days, extra);
    options.http = http;
    ASSERT_TRUE(server_->Start(options, &error)) << error;
    Connect();
  }

  void Connect() {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(300 << 20);
    stub_ = pb::Homeward::NewStub(
        grpc::CreateCustomChannel(server_->address(), grpc::InsecureChannelCredentials(), args));
  }

  void StopServer() {
    stub_.reset();
    ASSERT_EQ(server_->Stop(), 0);
  }

  template <typename Req, typename Resp>
  grpc::Status Call(Rpc<Req, Resp> m, const std::string& who, const Req& req, Resp* resp) {
    return CallRpc(*stub_, m, keys_.at(who), req, resp);
  }

  // A MISSING case of `who` with the given photos (one face each); returns its id.
  std::string MissingCase(const std::string& who, const std::string& name,
                          const std::vector<std::string>& photos, const std::string& notes = "",
                          const std::string& contact = "") {
    pb::CreateCaseRequest create;
    create.mutable_case_()->set_kind(pb::MISSING);
    create.mutable_case_()->set_display_name(name);
    create.mutable_case_()->set_notes(notes);
    create.mutable_case_()->set_reporter_contact(contact);
    pb::Case created;
    grpc::Status s = Call(&Stub::CreateCase, who, create, &created);
    EXPECT_TRUE(s.ok()) << s.error_message();
    for (const std::string& photo : photos) {
      pb::AddPhotoRequest add;
      add.set_case_id(created.id());
      add.set_image(photo);
      add.set_taken_on("2020-05-01");
      pb::AddPhotoResponse added;
      s = Call(&Stub::AddPhoto, who, add, &added);
      EXPECT_TRUE(s.ok()) << s.error_message();
      EXPECT_EQ(added.faces_size(), 1);
    }
    return created.id();
  }

  // A volunteer's sighting; returns its case id.
  std::string Sighting(const std::string& photo) {
    pb::SubmitSightingRequest req;
    req.set_image(photo);
    req.set_seen_on("2024-03-01");
    req.set_place(kStreetPlace);
    req.set_notes(kStreetNotes);
    pb::SubmitSightingResponse resp;
    grpc::Status s = Call(&Stub::SubmitSighting, "vol", req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_GE(resp.results_size(), 1);
    return resp.case_id();
  }

  // Every lead (admin's view).
  std::vector<pb::Lead> Leads() {
    pb::ListLeadsRequest req;
    req.set_page_size(1000);
    pb::ListLeadsResponse resp;
    grpc::Status s = Call(&Stub::ListLeads, "adm", req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return {resp.leads().begin(), resp.leads().end()};
  }
  std::string LeadBetween(const std::string& a, const std::string& b) {
    for (const pb::Lead& l : Leads()) {
      if ((l.case_a_id() == a && l.case_b_id() == b) ||
          (l.case_a_id() == b && l.case_b_id() == a)) {
        return l.id();
      }
    }
    return "";
  }
  bool HasLead(const std::string& c) {
    for (const pb::Lead& l : Leads()) {
      if (l.case_a_id() == c || l.case_b_id() == c) return true;
    }
    return false;
  }

  grpc::StatusCode CaseCode(const std::string& id) {
    pb::GetCaseRequest req;
    req.set_id(id);
    pb::Case resp;
    return Call(&Stub::GetCase, "adm", req, &resp).error_code();
  }

  // SIGHTING cases an admin's search by `image` returns.
  std::set<std::string> SightingsMatching(const std::string& image) {
    pb::SearchRequest req;
    req.set_image(image);
    req.add_kinds(pb::SIGHTING);
    req.set_top_k(100);
    pb::SearchResponse resp;
    grpc::Status s = Call(&Stub::Search, "adm", req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    std::set<std::string> ids;
    for (const auto& r : resp.results())
      for (const auto& c : r.candidates()) ids.insert(c.case_().id());
    return ids;
  }

  pb::GetStatsResponse Stats(const std::string& who) {
    pb::GetStatsRequest req;
    pb::GetStatsResponse resp;
    grpc::Status s = Call(&Stub::GetStats, who, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }

  // Whether a file named by the SHA-256 of `bytes` is in the photo store.
  bool PhotoFileExists(const std::string& bytes) {
    const std::string sha = Sha256Hex(bytes);
    for (const std::string& f : FilesUnder(data_dir_ + "/photos")) {
      if (fs::path(f).filename() == sha) return true;
    }
    return false;
  }

  std::string db() const { return data_dir_ + "/catalog.db"; }

  std::string dir_, data_dir_;
  int runs_ = 0;
  std::map<std::string, std::string> keys_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<Stub> stub_;
};

TEST_F(RetentionTest, SightingsExpireThroughTheServerUnlessALeadProtectsThem) {
  const std::string child = ReadFileOrDie(Lfw("Aaron_Peirsol", 1));
  const std::string stranger = ReadFileOrDie(Lfw("Aaron_Sorkin", 1));
  const std::string seen_again = Reencoded(child, 90);  // the missing child, in the street
  const std::string seen_twice = Reencoded(child, 80);
  StartServer(0);
  const std::string missing = MissingCase("fam", "Aaron Retention-Child", {child});
  const std::string unmatched = Sighting(stranger);
  const std::string in_lead = Sighting(seen_again);
  const std::string rejected = Sighting(seen_twice);
  ASSERT_FALSE(HasLead(unmatched)) << "the stranger must match no missing child";
  ASSERT_FALSE(LeadBetween(missing, in_lead).empty());
  const std::string rejected_lead = LeadBetween(missing, rejected);
  ASSERT_FALSE(rejected_lead.empty());
  EXPECT_EQ(SightingsMatching(stranger).count(unmatched), 1u);
  EXPECT_TRUE(PhotoFileExists(stranger));
  EXPECT_EQ(Stats("adm").sighting_retention_days(), 90);
  EXPECT_EQ(Stats("adm").expired_sightings(), 0);
  StopServer();

  // The two matched sightings are 200 days old: their open leads keep them.
  const int64_t old_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count() -
                         200LL * 24 * 3600 * 1000;
  for (const std::string& c : {in_lead, rejected}) {
    for (const std::string& sql :
         {"UPDATE cases SET created_ms = " + std::to_string(old_ms) +
              ", updated_ms = " + std::to_string(old_ms) + " WHERE id = " + c,
          "UPDATE photos SET created_ms = " + std::to_string(old_ms) + " WHERE case_id = " + c,
          "UPDATE leads SET updated_ms = " + std::to_string(old_ms) + " WHERE case_a = " + c +
              " OR case_b = " + c}) {
      ASSERT_EQ(SqlExec(db(), sql), SQLITE_OK) << sql;
    }
  }
  StartServer(0);
  EXPECT_EQ(CaseCode(in_lead), grpc::StatusCode::OK);
  EXPECT_EQ(CaseCode(rejected), grpc::StatusCode::OK);
  // Rejected today: from now on only the period since the rejection counts.
  {
    pb::ReviewLeadRequest req;
    req.set_id(rejected_lead);
    req.set_decision(pb::LEAD_REJECTED);
    req.set_note("a different child");
    pb::Lead resp;
    ASSERT_TRUE(Call(&Stub::ReviewLead, "inv", req, &resp).ok());
  }
  StopServer();

  // 89 days on: nothing has run out (the rejected one would have, counted from its creation).
  StartServer(89);
  for (const std::string& c : {missing, unmatched, in_lead, rejected}) {
    EXPECT_EQ(CaseCode(c), grpc::StatusCode::OK) << "case " << c << " at 89 days";
  }
  EXPECT_EQ(Stats("adm").expired_sightings(), 0);
  StopServer();

  // 91 days on: the unmatched sighting and the rejected one are gone; the open lead's stays.
  StartServer(91, {}, /*http=*/true);
  EXPECT_EQ(CaseCode(unmatched), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(CaseCode(rejected), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(CaseCode(in_lead), grpc::StatusCode::OK);
  EXPECT_EQ(CaseCode(missing), grpc::StatusCode::OK);
  EXPECT_FALSE(LeadBetween(missing, in_lead).empty());
  EXPECT_TRUE(LeadBetween(missing, rejected).empty());
  // Gone from the disk and from the index, not only from the catalog's case list.
  EXPECT_FALSE(PhotoFileExists(stranger));
  EXPECT_FALSE(PhotoFileExists(seen_twice));
  EXPECT_TRUE(PhotoFileExists(seen_again));
  const std::set<std::string> found = SightingsMatching(stranger);
  EXPECT_EQ(found.count(unmatched), 0u);
  EXPECT_EQ(SightingsMatching(child).count(rejected), 0u);
  EXPECT_EQ(SightingsMatching(child).count(in_lead), 1u);
  for (const std::string& c : {unmatched, rejected}) {
    EXPECT_EQ(SqlInt(db(), "SELECT count(*) FROM photos WHERE case_id = " + c), 0);
    EXPECT_EQ(SqlInt(db(),
                     "SELECT count(*) FROM sighting_clusters s JOIN faces f ON f.id = "
                     "s.face_id JOIN photos p ON p.id = f.photo_id WHERE p.case_id = " +
                         c),
              0);
  }
  // GetStats counts them for investigators and admins; other roles see the period only.
  EXPECT_EQ(Stats("adm").expired_sightings(), 2);
  EXPECT_EQ(Stats("inv").expired_sightings(), 2);
  EXPECT_EQ(Stats("vol").expired_sightings(), 0);
  EXPECT_EQ(Stats("vol").sighting_retention_days(), 90);
  {  // and so does /metrics
    const std::string http = server_->http_address();
    httplib::Client cli(http.substr(0, http.rfind(':')),
                        std::stoi(http.substr(http.rfind(':') + 1)));
    auto r = cli.Get("/metrics", httplib::Headers{{"Authorization", "Bearer " + keys_.at("inv")}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_NE(r->body.find("\nhomeward_sightings_expired 2\n"), std::string::npos) << r->body;
    EXPECT_NE(r->body.find("\nhomeward_sighting_retention_seconds 7776000\n"), std::string::npos);
  }
  StopServer();

  // The audit rows: the case id and the reason, no personal data.
  for (const std::string& c : {unmatched, rejected}) {
    EXPECT_EQ(SqlInt(db(),
                     "SELECT count(*) FROM audit WHERE action = 'expire' AND actor = "
                     "'retention' AND target_type = 'case' AND target_id = " +
                         c +
                         " AND detail = 'sighting retention 90 days, no open lead "
                         "photos=1 faces=1'"),
              1)
        << "case " << c;
  }
  EXPECT_EQ(SqlInt(db(), "SELECT count(*) FROM audit WHERE action = 'expire'"), 2);
  EXPECT_EQ(SqlInt(db(), "SELECT count(*) FROM audit WHERE detail LIKE '%4417%'"), 0);
  // The counter survives the restart.
  StartServer(0);
  EXPECT_EQ(Stats("adm").expired_sightings(), 2);
}

TEST_F(RetentionTest, RetentionZeroKeepsSightingsForever) {
  StartServer(0, {"--sighting-retention-days", "0"});
  const std::string s = Sighting(ReadFileOrDie(Lfw("Aaron_Sorkin", 1)));
  StopServer();
  StartServer(3650, {"--sighting-retention-days", "0"});
  EXPECT_EQ(CaseCode(s), grpc::StatusCode::OK);
  EXPECT_EQ(Stats("adm").sighting_retention_days(), 0);
  EXPECT_EQ(Stats("adm").expired_sightings(), 0);
}

TEST_F(RetentionTest, ExportHoldsTheCaseItsPhotosLeadsAndAuditAndNothingElse) {
  const std::string photo1 = ReadFileOrDie(Lfw("Aaron_Peirsol", 1));
  const std::string photo2 = ReadFileOrDie(Lfw("Aaron_Peirsol", 2));
  const std::string other_photo = ReadFileOrDie(Lfw("Aaron_Sorkin", 1));
  StartServer(0, {}, /*http=*/true);
  const std::string c = MissingCase("fam", "Aaron Export-Child", {photo1, photo2},
                                    "scar on the left knee", "+1 555 0100 (mother)");
  const std::string other =
      MissingCase("fam", "Zed Other-Family-Child", {other_photo}, "other-notes-9921");
  const std::string sighting = Sighting(Reencoded(photo1, 90));
  const std::string lead = LeadBetween(c, sighting);
  ASSERT_FALSE(lead.empty());
  {
    pb::ReviewLeadRequest req;
    req.set_id(lead);
    req.set_decision(pb::LEAD_NEEDS_BETTER_PHOTO);
    req.set_note("ask the volunteer for a frontal photo");
    pb::Lead resp;
    ASSERT_TRUE(Call(&Stub::ReviewLead, "inv", req, &resp).ok());
  }

  pb::ExportCaseRequest req;
  req.set_id(c);
  pb::ExportCaseResponse resp;
  for (const char* who : {"vol", "fam"}) {
    grpc::Status s = Call(&Stub::ExportCase, who, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << who;
  }
  pb::ExportCaseRequest unknown;
  unknown.set_id("999999");
  EXPECT_EQ(Call(&Stub::ExportCase, "inv", unknown, &resp).error_code(),
            grpc::StatusCode::NOT_FOUND);
  unknown.set_id("not-an-id");
  EXPECT_EQ(Call(&Stub::ExportCase, "inv", unknown, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  grpc::Status s = Call(&Stub::ExportCase, "inv", req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.photos(), 2);
  EXPECT_EQ(resp.file_name(), "case-" + c + ".tar");

  // Unpacked by GNU tar.
  const std::string x = dir_ + "/export";
  fs::create_directories(x);
  {
    std::FILE* f = std::fopen((dir_ + "/export.tar").c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fwrite(resp.archive().data(), 1, resp.archive().size(), f);
    std::fclose(f);
  }
  std::string out, err;
  ASSERT_EQ(RunCommand({"/bin/tar", "-xf", dir_ + "/export.tar", "-C", x}, &out, &err), 0) << err;
  std::set<std::string> files;
  for (const std::string& f : FilesUnder(x)) files.insert(fs::relative(f, x).string());
  ASSERT_EQ(files.size(), 3u);  // case.json and the two photos, nothing else
  ASSERT_EQ(files.count("case.json"), 1u);

  const nlohmann::json doc = nlohmann::json::parse(ReadWholeFile(x + "/case.json"));
  EXPECT_EQ(doc["format"], "homeward-case-export-1");
  EXPECT_EQ(doc["case"]["id"], c);
  EXPECT_EQ(doc["case"]["display_name"], "Aaron Export-Child");
  EXPECT_EQ(doc["case"]["notes"], "scar on the left knee");
  EXPECT_EQ(doc["case"]["reporter_contact"], "+1 555 0100 (mother)");
  EXPECT_EQ(doc["case"]["kind"], "MISSING");
  ASSERT_EQ(doc["photos"].size(), 2u);
  std::set<std::string> originals = {photo1, photo2};
  std::set<std::string> face_ids;
  for (const auto& p : doc["photos"]) {
    const std::string file = p["file"];
    ASSERT_EQ(files.count(file), 1u) << file;
    const std::string bytes = ReadWholeFile(x + "/" + file);
    EXPECT_EQ(originals.count(bytes), 1u) << file << " is not byte-identical to an upload";
    originals.erase(bytes);
    EXPECT_EQ(p["sha256"], Sha256Hex(bytes));
    EXPECT_EQ(p["date_taken"], "2020-05-01");
    ASSERT_EQ(p["faces"].size(), 1u);
    const auto& face = p["faces"][0];
    EXPECT_GT(face["box"]["width"].get<int>(), 20);
    EXPECT_GT(face["sharpness"].get<double>(), 0);
    EXPECT_EQ(face["descriptor"].size(), 128u);
    face_ids.insert(face["id"].get<std::string>());
  }
  EXPECT_TRUE(originals.empty());
  // The lead, this case's side only, with its review.
  ASSERT_EQ(doc["leads"].size(), 1u);
  const auto& l = doc["leads"][0];
  EXPECT_EQ(l["id"], lead);
  EXPECT_EQ(l["status"], "LEAD_NEEDS_BETTER_PHOTO");
  EXPECT_EQ(face_ids.count(l["face_id"].get<std::string>()), 1u);
  // The other side (the sighting) is not named: no case id, face or photo of it.
  for (const char* key : {"case_a", "case_b", "case_a_id", "case_b_id", "face_a", "face_b"}) {
    EXPECT_FALSE(l.contains(key)) << key;
  }
  ASSERT_EQ(l["reviews"].size(), 1u);
  EXPECT_EQ(l["reviews"][0]["note"], "ask the volunteer for a frontal photo");
  EXPECT_EQ(l["reviews"][0]["reviewer"], "inv");
  for (const auto& e : l["evidence"])
    EXPECT_EQ(face_ids.count(e["face_id"].get<std::string>()), 1u);
  // The audit rows naming the case: its creation, its photos, the review of its lead.
  std::multiset<std::string> actions;
  for (const auto& a : doc["audit"]) {
    actions.insert(a["action"].get<std::string>());
    const std::string type = a["target_type"], id = a["target_id"];
    EXPECT_TRUE((type == "case" && id == c) || type == "photo" || type == "face" ||
                (type == "lead" && id == lead))
        << type << " " << id;
  }
  EXPECT_EQ(actions.count("CreateCase"), 1u);
  EXPECT_EQ(actions.count("AddPhoto"), 2u);
  EXPECT_GE(actions.count("ReviewLead"), 1u);
  // Nothing of another case: not the other family's child, not the sighting's details.
  const std::string json_text = ReadWholeFile(x + "/case.json");
  for (const std::string& needle :
       {std::string("Zed Other-Family-Child"), std::string("other-notes-9921"),
        std::string(kStreetNotes), std::string(kStreetPlace), Sha256Hex(other_photo)}) {
    EXPECT_EQ(json_text.find(needle), std::string::npos) << needle;
  }
  EXPECT_EQ(resp.archive().find(other_photo.substr(other_photo.size() / 2, 64)), std::string::npos);

  // And the other family's archive holds nothing of this case.
  {
    pb::ExportCaseRequest other_req;
    other_req.set_id(other);
    pb::ExportCaseResponse other_resp;
    ASSERT_TRUE(Call(&Stub::ExportCase, "adm", other_req, &other_resp).ok());
    EXPECT_EQ(other_resp.photos(), 1);
    EXPECT_EQ(other_resp.archive().find("Aaron Export-Child"), std::string::npos);
    EXPECT_EQ(other_resp.archive().find("scar on the left knee"), std::string::npos);
    EXPECT_EQ(other_resp.archive().find(photo1.substr(photo1.size() / 2, 64)), std::string::npos);
    EXPECT_NE(other_resp.archive().find(other_photo), std::string::npos);
  }

  // The export is itself audited.
  EXPECT_EQ(SqlInt(db(),
                   "SELECT count(*) FROM audit WHERE action = 'ExportCase' AND actor = "
                   "'inv' AND target_id = " +
                       c + " AND detail LIKE 'code=OK%'"),
            1);
  EXPECT_EQ(SqlInt(db(),
                   "SELECT count(*) FROM audit WHERE action = 'ExportCase' AND actor = "
                   "'vol' AND detail LIKE 'code=PERMISSION_DENIED%'"),
            1);

  // The HTTP route gives the same archive as a tar download.
  const std::string http = server_->http_address();
  httplib::Client cli(http.substr(0, http.rfind(':')), std::stoi(http.substr(http.rfind(':') + 1)));
  cli.set_read_timeout(120, 0);
  auto r = cli.Get("/v1/cases/" + c + "/export",
                   httplib::Headers{{"Authorization", "Bearer " + keys_.at("adm")}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/x-tar");
  EXPECT_NE(r->get_header_value("Content-Disposition").find("case-" + c + ".tar"),
            std::string::npos);
  // The same archive plus the audit rows written since (the first export and the volunteer's
  // refused one name the case): never smaller, and at most a few tar blocks more.
  EXPECT_GE(r->body.size(), resp.archive().size());
  EXPECT_LE(r->body.size(), resp.archive().size() + 4 * 512);
  auto denied = cli.Get("/v1/cases/" + c + "/export",
                        httplib::Headers{{"Authorization", "Bearer " + keys_.at("vol")}});
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->status, 403);
}

// SIGKILL while the start-up sweep deletes expired sightings: at the next start every sighting
// is whole or wholly gone (rows, file, index), the journal is empty and the counter and the
// audit rows agree with what went.
TEST_F(RetentionTest, Kill9DuringTheExpirySweepLeavesNoHalfDeletedCase) {
  std::vector<std::string> people;
  for (const auto& e : fs::directory_iterator(SharedDataDir() + "/lfw-view1")) {
    if (e.is_directory() && fs::exists(Lfw(e.path().filename().string(), 1))) {
      people.push_back(e.path().filename().string());
    }
  }
  std::sort(people.begin(), people.end());
  ASSERT_GE(people.size(), 60u);
  StartServer(0);
  std::map<std::string, std::string> photo_of;  // case id -> bytes
  for (size_t i = 0; i < 60; ++i) {
    const std::string bytes = ReadFileOrDie(Lfw(people[i], 1));
    pb::SubmitSightingRequest req;
    req.set_image(bytes);
    pb::SubmitSightingResponse resp;
    ASSERT_TRUE(Call(&Stub::SubmitSighting, "vol", req, &resp).ok());
    if (resp.case_id().empty()) continue;  // no face found: nothing stored
    photo_of[resp.case_id()] = bytes;
  }
  ASSERT_GE(photo_of.size(), 40u);
  StopServer();
  std::map<std::string, int64_t> faces_of;  // a photo may hold no usable face: then 0
  for (const auto& [id, bytes] : photo_of) {
    faces_of[id] = SqlInt(db(),
                          "SELECT count(*) FROM faces f JOIN photos p ON p.id = "
                          "f.photo_id WHERE p.case_id = " +
                              id);
  }

  // Rounds: start 91 days on and SIGKILL the server a few milliseconds (0, 2, 4, ...) after the
  // sweep logged its first deletion, so the kills land at different points of a deletion (in
  // its transaction, between its commit and the unlink of its file, in the checkpoint). After
  // each kill, a restart with the real clock (only the recovery runs, no new expiry) must show
  // every sighting whole or wholly gone.
  int journal_hits = 0;
  size_t total_logged = 0;
  for (int round = 0; round < 4; ++round) {
    server_ = std::make_unique<ServerProcess>(kBinary, NextLogDir());
    std::string error;
    auto started = std::async(std::launch::async,
                              [&] {
                                ServerOptions options = Args(91);
                                options.timeout_s = 120;
                                return server_->Start(options, &error);
                              });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    bool seen = false;
    while (!seen && std::chrono::steady_clock::now() < deadline) {
      seen = server_->Log().find("retention: expired sighting case") != std::string::npos;
      if (!seen) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    ASSERT_TRUE(seen) << server_->Log();
    std::this_thread::sleep_for(std::chrono::milliseconds(2 * round));
    server_->Signal(SIGKILL);
    const bool ready = started.get();
    const std::string killed_log = server_->Log();
    size_t logged = 0;
    for (size_t at = 0;
         (at = killed_log.find("retention: expired sighting case", at)) != std::string::npos;
         ++at) {
      ++logged;
    }
    total_logged += logged;
    const int64_t journal = SqlInt(db(), "SELECT count(*) FROM pending_unlink");
    journal_hits += journal > 0;
    std::printf("round %d: killed after %zu logged expiries (sweep %s); journal rows: %lld\n",
                round, logged, ready ? "had finished" : "in progress",
                static_cast<long long>(journal));
    ASSERT_FALSE(ready) << "the sweep finished before the kill: the round proved nothing";
    server_.reset();

    StartServer(0);
    int64_t gone = 0;
    for (const auto& [id, bytes] : photo_of) {
      const grpc::StatusCode code = CaseCode(id);
      const int64_t photos = SqlInt(db(), "SELECT count(*) FROM photos WHERE case_id = " + id);
      const int64_t faces = SqlInt(db(),
                                   "SELECT count(*) FROM faces f JOIN photos p ON p.id = "
                                   "f.photo_id WHERE p.case_id = " +
                                       id);
      if (code == grpc::StatusCode::NOT_FOUND) {
        ++gone;
        EXPECT_EQ(photos, 0) << "case " << id << " lost its row but kept a photo";
        EXPECT_EQ(faces, 0) << "case " << id;
        EXPECT_FALSE(PhotoFileExists(bytes)) << "case " << id << "'s photo file is still there";
        EXPECT_EQ(SightingsMatching(bytes).count(id), 0u) << "case " << id << " still in the index";
      } else {
        ASSERT_EQ(code, grpc::StatusCode::OK);
        EXPECT_EQ(photos, 1) << "case " << id << " is half deleted";
        EXPECT_EQ(faces, faces_of[id]) << "case " << id << " is half deleted";
        EXPECT_TRUE(PhotoFileExists(bytes)) << "case " << id << " lost its photo file";
      }
    }
    EXPECT_GE(gone, static_cast<int64_t>(total_logged));
    EXPECT_LT(gone, static_cast<int64_t>(photo_of.size()));
    EXPECT_EQ(SqlInt(db(), "SELECT count(*) FROM pending_unlink"), 0);
    EXPECT_EQ(Stats("adm").expired_sightings(), gone);
    EXPECT_EQ(SqlInt(db(), "SELECT count(*) FROM audit WHERE action = 'expire'"), gone);
    // Exactly the files the remaining photo rows name are on disk.
    EXPECT_EQ(static_cast<int64_t>(FilesUnder(data_dir_ + "/photos").size()),
              SqlInt(db(), "SELECT count(DISTINCT sha256) FROM photos"));
    StopServer();
  }
  std::printf("%d of 4 kills left journal rows that the next start finished\n", journal_hits);

  // The next sweep finishes the job.
  StartServer(91);
  for (const auto& [id, bytes] : photo_of) EXPECT_EQ(CaseCode(id), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Stats("adm").expired_sightings(), static_cast<int64_t>(photo_of.size()));
  EXPECT_TRUE(FilesUnder(data_dir_ + "/photos").empty());
}

}  // namespace
}  // namespace homeward::server
