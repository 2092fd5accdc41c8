// The access matrix: every RPC of homeward.v1.Homeward and every route of the JSON/HTTP
// gateway, called by every role (volunteer, family, investigator, admin; owner and
// non-owner where a target has an owner) and with no key, a wrong key and a revoked key,
// against the real homeward-server binary. Each cell asserts the exact code; every reply
// (and error message) is checked for the fields the caller may not see; afterwards the
// catalog's audit table must hold one row per audited call with the caller's key id, refuse
// UPDATE/DELETE, and no raw key may appear in the server's output or data dir.
// docs/reliability/access.md describes the policy and the results.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "homeward/v1/homeward.grpc.pb.h"
#include "server/auth.h"
#include "tests/embed_test_util.h"
#include "tests/rpc_call.h"
#include "tests/server_process.h"

namespace homeward::server {
namespace {

namespace fs = std::filesystem;
namespace pb = ::homeward::v1;
using ::homeward::testing::Base64;
using ::homeward::testing::CallRpc;
using ::homeward::testing::DecodeBgr;
using ::homeward::testing::EncodeJpeg;
using ::homeward::testing::FilesUnder;
using ::homeward::testing::MakeTempDirOrDie;
using ::homeward::testing::OneFaceSample2;
using ::homeward::testing::ReadWholeFile;
using ::homeward::testing::Rpc;
using ::homeward::testing::RunCommand;
using ::homeward::testing::ServerOptions;
using ::homeward::testing::ServerProcess;
using Json = nlohmann::json;
using Stub = pb::Homeward::Stub;

constexpr char kBinary[] = HOMEWARD_SERVER_BINARY;

// The columns of the matrix.
enum Col { kVol, kVol2, kFam, kFam2, kInv, kAdm, kNoKey, kWrongKey, kRevokedKey, kCols };
constexpr const char* kColNames[kCols] = {"vol",  "vol2", "fam",    "fam2",   "inv",
                                          "adm",  "none", "wrong", "revoked"};
constexpr const char* kColKeyIds[kCols] = {"vol", "vol2", "fam", "fam2", "inv", "adm",
                                           "",    "",     ""};
constexpr const char* kRevokedId = "rev";  // an admin key, revoked before the matrix
const std::string kWrongKeyText = "hwk_" + std::string(64, '0');

// Grpc codes as ints; HTTP cells use HTTP statuses.
constexpr int OK = grpc::StatusCode::OK;
constexpr int PD = grpc::StatusCode::PERMISSION_DENIED;
constexpr int UA = grpc::StatusCode::UNAUTHENTICATED;
constexpr int NF = grpc::StatusCode::NOT_FOUND;

int HttpOf(int code) {
  switch (code) {
    case OK:
      return 200;
    case PD:
      return 403;
    case UA:
      return 401;
    case NF:
      return 404;
    default:
      return 500;
  }
}

std::string CodeShort(int code, bool http) {
  if (http) return std::to_string(code);
  switch (code) {
    case OK:
      return "OK";
    case PD:
      return "DENIED";
    case UA:
      return "UNAUTH";
    case NF:
      return "NOTFOUND";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID";
    default:
      return "OTHER";
  }
}

struct Outcome {
  int code = -1;
  std::string bytes;  // the serialized reply (or HTTP body) and the error message
};

struct Row {
  std::string name;  // what the cell does
  std::string rpc;   // the RPC it exercises (coverage)
  std::array<int, kCols> expect;
  std::function<Outcome(Col)> run;
};

// The six keyed columns; the three bad-key columns always get UNAUTHENTICATED.
std::array<int, kCols> E(int vol, int vol2, int fam, int fam2, int inv, int adm) {
  return {vol, vol2, fam, fam2, inv, adm, UA, UA, UA};
}
std::array<int, kCols> All(int code) { return E(code, code, code, code, code, code); }

// The fixtures' sensitive strings (unique, so a substring search finds any leak).
constexpr char kMissingName[] = "Amara Quillfeather";
constexpr char kMissingNotes[] = "left school at 3pm, scar on left knee (notes-7731)";
constexpr char kMissingContact[] = "+1 555 0100 ext 7731 (mother)";
constexpr char kMissingPlace[] = "Springfield Elm Park 7731";
constexpr char kSightingNotes[] = "seen with a tall man in a blue jacket (notes-4410)";
constexpr char kSightingPlace[] = "Main Street Bakery 4410";

class AccessMatrixTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!::homeward::testing::ModelsInstalled()) GTEST_SKIP() << "models or demo photos absent";
    dir_ = MakeTempDirOrDie("hw_access_");
    server_ = std::make_unique<ServerProcess>(kBinary, dir_);
    keys_file_ = server_->keys_file();
    data_dir_ = server_->data_dir();
    // Keys are created with the binary, as an operator would.
    for (auto [id, role] : std::vector<std::pair<std::string, std::string>>{
             {"vol", "volunteer"},
             {"vol2", "volunteer"},
             {"fam", "family"},
             {"fam2", "family"},
             {"inv", "investigator"},
             {"adm", "admin"},
             {kRevokedId, "admin"}}) {
      std::string error;
      keys_[id] = server_->AddKey(id, role, &error);  // exit 0 and "hwk_..." printed
      ASSERT_FALSE(keys_[id].empty()) << error;
    }
    struct stat st;
    ASSERT_EQ(stat(keys_file_.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    ServerOptions options;
    options.http = true;
    options.flags = {"--workers", "1", "--lead-min-confidence", "0.05", "--shutdown-grace-ms",
                     "5000"};
    std::string error;
    ASSERT_TRUE(server_->Start(options, &error)) << error;
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    channel_ =
        grpc::CreateCustomChannel(server_->address(), grpc::InsecureChannelCredentials(), args);
    stub_ = pb::Homeward::NewStub(channel_);
  }

  void TearDown() override {
    stub_.reset();
    channel_.reset();
    server_.reset();
    if (!dir_.empty() && !HasFailure()) fs::remove_all(dir_);
  }

  // The raw key column `c` sends ("" for no key).
  std::string RawKey(Col c) const {
    if (c == kNoKey) return "";
    if (c == kWrongKey) return kWrongKeyText;
    if (c == kRevokedKey) return keys_.at(kRevokedId);
    return keys_.at(kColKeyIds[c]);
  }

  void Tally(Col c, const std::string& action) {
    if (c < kNoKey) ++tally_[{kColKeyIds[c], action}];
  }

  // One gRPC call as column `c`, tallied as `action` for the audit check.
  template <typename Req, typename Resp>
  grpc::Status Call(Rpc<Req, Resp> m, Col c, const std::string& action, const Req& req,
                    Resp* resp) {
    grpc::Status s = CallRpc(*stub_, m, RawKey(c), req, resp);
    if (!action.empty()) Tally(c, action);
    return s;
  }

  // A matrix cell running `m` with a fixed request.
  template <typename Req, typename Resp>
  std::function<Outcome(Col)> G(Rpc<Req, Resp> m, const std::string& action, Req req) {
    return [this, m, action, req](Col c) {
      Resp resp;
      grpc::Status s = Call(m, c, action, req, &resp);
      return Outcome{static_cast<int>(s.error_code()),
                     resp.SerializeAsString() + "\n" + s.error_message()};
    };
  }

  // One HTTP request as column `c`.
  Outcome Http(Col c, const std::string& method, const std::string& path,
               const std::string& body = "") {
    httplib::Client cli("http://" + server_->http_address());
    cli.set_read_timeout(120, 0);
    cli.set_write_timeout(60, 0);
    httplib::Headers h;
    if (c != kNoKey) h.emplace("Authorization", "Bearer " + RawKey(c));
    const char* type = "application/json";
    auto send = [&]() -> httplib::Result {
      if (method == "POST") return cli.Post(path.c_str(), h, body, type);
      if (method == "PUT") return cli.Put(path.c_str(), h, body, type);
      if (method == "PATCH") return cli.Patch(path.c_str(), h, body, type);
      if (method == "DELETE") return cli.Delete(path.c_str(), h);
      return cli.Get(path.c_str(), h);
    };
    httplib::Result r = send();
    if (!r) return Outcome{-1, "no HTTP response"};
    return Outcome{r->status, r->body};
  }

  // A route cell; `actions` are the RPCs the route makes (tallied when keyed).
  std::function<Outcome(Col)> H(const std::string& method, const std::string& path,
                                const std::string& body, std::vector<std::string> actions) {
    return [this, method, path, body, actions](Col c) {
      Outcome o = Http(c, method, path, body);
      for (const auto& a : actions) Tally(c, a);
      return o;
    };
  }

  // A MISSING case owned by `owner`, returned by id (optionally with a photo).
  std::string NewCase(Col owner, const std::string& name, pb::CaseKind kind = pb::MISSING) {
    pb::CreateCaseRequest req;
    req.mutable_case_()->set_kind(kind);
    req.mutable_case_()->set_display_name(name);
    pb::Case created;
    grpc::Status s = Call(&Stub::CreateCase, owner, "CreateCase", req, &created);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return created.id();
  }

  // Strings `c` must never receive, and the photo bytes it must never receive raw.
  std::vector<std::pair<std::string, std::string>> Forbidden(Col c) const {
    std::vector<std::pair<std::string, std::string>> out;
    bool may_see_missing = c == kFam || c == kInv || c == kAdm;
    bool may_see_sighting = c == kVol || c == kInv || c == kAdm;
    if (!may_see_missing) {
      out.push_back({"missing name", kMissingName});
      out.push_back({"missing notes", kMissingNotes});
      out.push_back({"missing contact", kMissingContact});
      out.push_back({"missing photo bytes", missing_photo_.substr(missing_photo_.size() / 2, 64)});
    }
    if (c == kVol || c == kVol2) out.push_back({"missing place", kMissingPlace});
    if (!may_see_sighting) {
      out.push_back({"sighting notes", kSightingNotes});
      out.push_back({"sighting photo bytes", sighting_photo_.substr(sighting_photo_.size() / 2, 64)});
    }
    if (c == kVol2 || c == kFam2) out.push_back({"sighting place", kSightingPlace});
    return out;
  }

  // Runs every cell of `rows`, asserting codes and forbidden fields; prints the matrix.
  // Returns {cells, matching cells}.
  std::pair<int, int> RunMatrix(const std::string& title, const std::vector<Row>& rows,
                                bool http, std::map<std::string, int>* outcome_counts) {
    int cells = 0, matching = 0;
    std::string table = "\n" + title + "\n" + std::string(44, ' ');
    for (int c = 0; c < kCols; ++c) {
      char buf[16];
      std::snprintf(buf, sizeof buf, "%-9s", kColNames[c]);
      table += buf;
    }
    table += "\n";
    for (const Row& row : rows) {
      char name[64];
      std::snprintf(name, sizeof name, "%-44.44s", row.name.c_str());
      table += name;
      for (int ci = 0; ci < kCols; ++ci) {
        Col c = static_cast<Col>(ci);
        int want = http ? HttpOf(row.expect[ci]) : row.expect[ci];
        if (http && row.expect[ci] == 404) want = 404;  // route absent for everyone
        Outcome got = row.run(c);
        ++cells;
        ++(*outcome_counts)[CodeShort(got.code, http)];
        bool ok = got.code == want;
        matching += ok;
        EXPECT_EQ(got.code, want) << title << " " << row.name << " as " << kColNames[ci] << ": "
                                  << got.bytes.substr(0, 300);
        for (const auto& [what, needle] : Forbidden(c)) {
          EXPECT_EQ(got.bytes.find(needle), std::string::npos)
              << title << " " << row.name << " as " << kColNames[ci] << " received the " << what;
        }
        for (const auto& [id, key] : keys_) {
          EXPECT_EQ(got.bytes.find(key), std::string::npos)
              << row.name << " echoed the key of " << id;
        }
        char cell[16];
        std::snprintf(cell, sizeof cell, "%-9s", (CodeShort(got.code, http) + (ok ? "" : "!")).c_str());
        table += cell;
      }
      table += "\n";
    }
    std::printf("%s", table.c_str());
    std::fflush(stdout);
    return {cells, matching};
  }

  std::string dir_, keys_file_, data_dir_;
  std::map<std::string, std::string> keys_;  // key id -> raw key
  std::unique_ptr<ServerProcess> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<Stub> stub_;
  std::map<std::pair<std::string, std::string>, int> tally_;  // (actor, action) -> calls
  std::string missing_photo_, sighting_photo_;
};

// The one-face sample2 photo (tests/embed_test_util.h) cropped by 8% per side and re-encoded:
// other bytes, the same child.
std::string ReencodedSample2() {
  cv::Mat img = DecodeBgr(OneFaceSample2());
  int dx = img.cols * 8 / 100, dy = img.rows * 8 / 100;
  return EncodeJpeg(img(cv::Rect(dx, dy, img.cols - 2 * dx, img.rows - 2 * dy)).clone(), 90);
}

// The one-face sample2 photo at 640 px wide: a cheap upload for the many matrix cells that
// analyse a photo.
std::string SmallSample2() {
  cv::Mat img = DecodeBgr(OneFaceSample2());
  cv::Mat small;
  cv::resize(img, small, cv::Size(640, img.rows * 640 / img.cols), 0, 0, cv::INTER_AREA);
  return EncodeJpeg(small, 90);
}

std::string ToJson(const google::protobuf::Message& m) {
  std::string out;
  EXPECT_TRUE(google::protobuf::util::MessageToJsonString(m, &out).ok());
  return out;
}

TEST_F(AccessMatrixTest, EveryRpcAndRouteByEveryCallerGetsItsExpectedCode) {
  // ---- Fixtures: a family's MISSING case with a photo, a volunteer's sighting of the same
  // child (which becomes a lead), and the revoked key.
  missing_photo_ = OneFaceSample2();
  sighting_photo_ = ReencodedSample2();
  const std::string small = SmallSample2();
  std::string m_case, m_photo, m_face, s_case, s_photo, s_face, lead;
  {
    pb::CreateCaseRequest req;
    pb::Case* c = req.mutable_case_();
    c->set_kind(pb::MISSING);
    c->set_display_name(kMissingName);
    c->set_notes(kMissingNotes);
    c->set_reporter_contact(kMissingContact);
    c->set_place(kMissingPlace);
    c->set_event_date("2024-03-01");
    pb::Case created;
    ASSERT_TRUE(Call(&Stub::CreateCase, kFam, "CreateCase", req, &created).ok());
    m_case = created.id();
    pb::AddPhotoRequest add;
    add.set_case_id(m_case);
    add.set_image(missing_photo_);
    add.set_taken_on("2023-06-01");
    pb::AddPhotoResponse added;
    grpc::Status s = Call(&Stub::AddPhoto, kFam, "AddPhoto", add, &added);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_EQ(added.faces_size(), 1);
    m_photo = added.photo_id();
    m_face = added.faces(0).face_id();

    pb::SubmitSightingRequest sr;
    sr.set_image(sighting_photo_);
    sr.set_place(kSightingPlace);
    sr.set_notes(kSightingNotes);
    sr.set_seen_on("2024-04-02");
    pb::SubmitSightingResponse seen;
    s = Call(&Stub::SubmitSighting, kVol, "SubmitSighting", sr, &seen);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_EQ(seen.results_size(), 1);
    s_case = seen.case_id();
    s_photo = seen.photo_id();
    s_face = seen.results(0).query_face().face_id();
    // vol was shown the missing child as a candidate: its crop is vol's to see, not vol2's.
    bool shown = false;
    for (const pb::Candidate& c : seen.results(0).candidates()) shown |= c.face_id() == m_face;
    ASSERT_TRUE(shown) << seen.DebugString();

    pb::ListLeadsRequest lr;
    lr.set_page_size(1000);
    pb::ListLeadsResponse leads;
    ASSERT_TRUE(Call(&Stub::ListLeads, kAdm, "ListLeads", lr, &leads).ok());
    for (const pb::Lead& l : leads.leads()) {
      std::set<std::string> ids = {l.case_a_id(), l.case_b_id()};
      if (ids == std::set<std::string>{m_case, s_case}) lead = l.id();
    }
    ASSERT_FALSE(lead.empty()) << "no lead between the missing case and its sighting: "
                               << leads.DebugString();
  }
  // The key to be revoked works, then is revoked with the binary while the server runs.
  {
    pb::GetCaseRequest req;
    req.set_id(m_case);
    pb::Case got;
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + keys_[kRevokedId]);
    ASSERT_TRUE(stub_->GetCase(&ctx, req, &got).ok());
    ++tally_[{kRevokedId, "GetCase"}];
    std::string out, err;
    ASSERT_EQ(RunCommand({kBinary, "--revoke-key", kRevokedId, "--api-keys", keys_file_}, &out,
                         &err),
              0)
        << err;
    grpc::ClientContext again;
    again.AddMetadata("authorization", "Bearer " + keys_[kRevokedId]);
    grpc::Status s = stub_->GetCase(&again, req, &got);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_NE(s.error_message().find("API key 'rev' was revoked"), std::string::npos)
        << s.error_message();
    EXPECT_EQ(s.error_message().find(keys_[kRevokedId]), std::string::npos);
  }
  pb::Case m_full;  // as an admin sees it: the UpdateCase body that changes nothing
  {
    pb::GetCaseRequest req;
    req.set_id(m_case);
    ASSERT_TRUE(Call(&Stub::GetCase, kAdm, "GetCase", req, &m_full).ok());
    ASSERT_EQ(m_full.reporter_contact(), kMissingContact);
  }

  // ---- gRPC rows.
  std::vector<Row> g;
  {
    pb::CreateCaseRequest missing, found;
    missing.mutable_case_()->set_kind(pb::MISSING);
    missing.mutable_case_()->set_display_name("matrix child");
    found = missing;
    found.mutable_case_()->set_kind(pb::FOUND);
    g.push_back({"CreateCase MISSING", "CreateCase", E(PD, PD, OK, OK, OK, OK),
                 G(&Stub::CreateCase, "CreateCase", missing)});
    g.push_back({"CreateCase FOUND", "CreateCase", E(PD, PD, PD, PD, OK, OK),
                 G(&Stub::CreateCase, "CreateCase", found)});
    pb::GetCaseRequest get_m, get_s;
    get_m.set_id(m_case);
    get_s.set_id(s_case);
    g.push_back({"GetCase family's MISSING case", "GetCase", E(PD, PD, OK, PD, OK, OK),
                 G(&Stub::GetCase, "GetCase", get_m)});
    g.push_back({"GetCase vol's SIGHTING case", "GetCase", E(OK, PD, PD, PD, OK, OK),
                 G(&Stub::GetCase, "GetCase", get_s)});
    pb::UpdateCaseRequest upd;
    *upd.mutable_case_() = m_full;
    g.push_back({"UpdateCase family's MISSING case", "UpdateCase", E(PD, PD, OK, PD, OK, OK),
                 G(&Stub::UpdateCase, "UpdateCase", upd)});
    pb::ListCasesRequest list;
    list.set_page_size(1000);
    g.push_back({"ListCases", "ListCases", All(OK), G(&Stub::ListCases, "ListCases", list)});
    g.push_back({"DeleteCase a fresh case of fam", "DeleteCase", E(PD, PD, OK, PD, PD, OK),
                 [this](Col c) {
                   pb::DeleteCaseRequest req;
                   req.set_id(NewCase(kFam, "to delete"));
                   pb::DeleteCaseResponse resp;
                   grpc::Status s = Call(&Stub::DeleteCase, c, "DeleteCase", req, &resp);
                   return Outcome{static_cast<int>(s.error_code()),
                                  resp.SerializeAsString() + "\n" + s.error_message()};
                 }});
    pb::ExportCaseRequest exp;
    exp.set_id(m_case);
    g.push_back({"ExportCase family's MISSING case", "ExportCase", E(PD, PD, PD, PD, OK, OK),
                 G(&Stub::ExportCase, "ExportCase", exp)});
    pb::AddPhotoRequest add;
    add.set_case_id(m_case);
    add.set_image(small);
    g.push_back({"AddPhoto to family's MISSING case", "AddPhoto", E(PD, PD, OK, PD, OK, OK),
                 G(&Stub::AddPhoto, "AddPhoto", add)});
    pb::GetPhotoRequest photo_m, photo_s;
    photo_m.set_photo_id(m_photo);
    photo_s.set_photo_id(s_photo);
    g.push_back({"GetPhoto raw MISSING photo", "GetPhoto", E(PD, PD, OK, PD, OK, OK),
                 G(&Stub::GetPhoto, "GetPhoto", photo_m)});
    g.push_back({"GetPhoto raw SIGHTING photo of vol", "GetPhoto", E(OK, PD, PD, PD, OK, OK),
                 G(&Stub::GetPhoto, "GetPhoto", photo_s)});
    pb::GetFaceCropRequest crop_m, crop_s;
    crop_m.set_face_id(m_face);
    crop_s.set_face_id(s_face);
    g.push_back({"GetFaceCrop MISSING face", "GetFaceCrop", E(OK, PD, OK, OK, OK, OK),
                 G(&Stub::GetFaceCrop, "GetFaceCrop", crop_m)});
    g.push_back({"GetFaceCrop SIGHTING face of vol", "GetFaceCrop", E(OK, PD, PD, PD, OK, OK),
                 G(&Stub::GetFaceCrop, "GetFaceCrop", crop_s)});
    pb::SubmitSightingRequest sight;
    sight.set_image(small);
    g.push_back({"SubmitSighting", "SubmitSighting", All(OK),
                 G(&Stub::SubmitSighting, "SubmitSighting", sight)});
    pb::SearchRequest by_image, by_m, by_s;
    by_image.set_image(small);
    by_m.set_face_id(m_face);
    by_s.set_face_id(s_face);
    g.push_back({"Search by image", "Search", E(PD, PD, PD, PD, OK, OK),
                 G(&Stub::Search, "Search", by_image)});
    g.push_back({"Search by MISSING face of fam", "Search", E(PD, PD, OK, PD, OK, OK),
                 G(&Stub::Search, "Search", by_m)});
    g.push_back({"Search by SIGHTING face of vol", "Search", E(OK, PD, PD, PD, OK, OK),
                 G(&Stub::Search, "Search", by_s)});
    pb::CompareRequest cmp;
    cmp.mutable_a()->set_face_id(m_face);
    cmp.mutable_b()->set_face_id(s_face);
    g.push_back({"Compare two face ids", "Compare", E(PD, PD, PD, PD, OK, OK),
                 G(&Stub::Compare, "Compare", cmp)});
    g.push_back({"GetStats", "GetStats", All(OK), G(&Stub::GetStats, "", pb::GetStatsRequest())});
    g.push_back({"ListLeads", "ListLeads", E(PD, PD, PD, PD, OK, OK),
                 G(&Stub::ListLeads, "ListLeads", pb::ListLeadsRequest())});
    pb::GetLeadRequest get_lead;
    get_lead.set_id(lead);
    g.push_back({"GetLead", "GetLead", E(PD, PD, PD, PD, OK, OK),
                 G(&Stub::GetLead, "GetLead", get_lead)});
    pb::ReviewLeadRequest review;
    review.set_id(lead);
    review.set_decision(pb::LEAD_NEEDS_BETTER_PHOTO);
    review.set_note("matrix review");
    g.push_back({"ReviewLead", "ReviewLead", E(PD, PD, PD, PD, OK, OK),
                 [this, review](Col c) {
                   pb::Lead resp;
                   grpc::Status s = Call(&Stub::ReviewLead, c, "ReviewLeadCall", review, &resp);
                   if (s.ok()) Tally(c, "ReviewLead");  // the review's own audit row
                   return Outcome{static_cast<int>(s.error_code()),
                                  resp.SerializeAsString() + "\n" + s.error_message()};
                 }});
  }

  // ---- HTTP rows: every route of the gateway (docs/WEB.md).
  std::vector<Row> h;
  {
    const std::string b64 = Base64(small);
    h.push_back({"POST /v1/cases MISSING", "CreateCase", E(PD, PD, OK, OK, OK, OK),
                 H("POST", "/v1/cases", R"({"kind":"MISSING","displayName":"http child"})",
                   {"CreateCase"})});
    h.push_back({"POST /v1/cases FOUND", "CreateCase", E(PD, PD, PD, PD, OK, OK),
                 H("POST", "/v1/cases", R"({"kind":"FOUND","displayName":"http found"})",
                   {"CreateCase"})});
    h.push_back({"GET /v1/cases", "ListCases", All(OK),
                 H("GET", "/v1/cases?pageSize=1000", "", {"ListCases"})});
    h.push_back({"GET /v1/cases/{missing}", "GetCase", E(PD, PD, OK, PD, OK, OK),
                 H("GET", "/v1/cases/" + m_case, "", {"GetCase"})});
    h.push_back({"GET /v1/cases/{sighting}", "GetCase", E(OK, PD, PD, PD, OK, OK),
                 H("GET", "/v1/cases/" + s_case, "", {"GetCase"})});
    h.push_back({"PUT /v1/cases/{missing}", "UpdateCase", E(PD, PD, OK, PD, OK, OK),
                 H("PUT", "/v1/cases/" + m_case, ToJson(m_full), {"UpdateCase"})});
    h.push_back({"PATCH /v1/cases/{missing}", "UpdateCase", E(PD, PD, OK, PD, OK, OK),
                 [this, m_case](Col c) {
                   Outcome o = Http(c, "PATCH", "/v1/cases/" + m_case,
                                    Json{{"place", kMissingPlace}}.dump());
                   Tally(c, "GetCase");  // PATCH reads the case, then updates it
                   if (o.code == 200) Tally(c, "UpdateCase");
                   return o;
                 }});
    h.push_back({"DELETE /v1/cases/{fresh case of fam}", "DeleteCase", E(PD, PD, OK, PD, PD, OK),
                 [this](Col c) {
                   Outcome o = Http(c, "DELETE", "/v1/cases/" + NewCase(kFam, "to delete"));
                   Tally(c, "DeleteCase");
                   return o;
                 }});
    h.push_back({"GET /v1/cases/{missing}/export", "ExportCase", E(PD, PD, PD, PD, OK, OK),
                 H("GET", "/v1/cases/" + m_case + "/export", "", {"ExportCase"})});
    h.push_back({"POST /v1/cases/{missing}/photos", "AddPhoto", E(PD, PD, OK, PD, OK, OK),
                 H("POST", "/v1/cases/" + m_case + "/photos", Json{{"image", b64}}.dump(),
                   {"AddPhoto"})});
    h.push_back({"POST /v1/sightings", "SubmitSighting", All(OK),
                 H("POST", "/v1/sightings", Json{{"image", b64}}.dump(), {"SubmitSighting"})});
    h.push_back({"POST /v1/search image", "Search", E(PD, PD, PD, PD, OK, OK),
                 H("POST", "/v1/search", Json{{"image", b64}}.dump(), {"Search"})});
    h.push_back({"POST /v1/search faceId MISSING", "Search", E(PD, PD, OK, PD, OK, OK),
                 H("POST", "/v1/search", Json{{"faceId", m_face}}.dump(), {"Search"})});
    h.push_back({"POST /v1/search faceId SIGHTING", "Search", E(OK, PD, PD, PD, OK, OK),
                 H("POST", "/v1/search", Json{{"faceId", s_face}}.dump(), {"Search"})});
    h.push_back({"POST /v1/compare", "Compare", E(PD, PD, PD, PD, OK, OK),
                 H("POST", "/v1/compare",
                   Json{{"a", {{"faceId", m_face}}}, {"b", {{"faceId", s_face}}}}.dump(),
                   {"Compare"})});
    h.push_back({"GET /v1/photos/{missing photo}", "GetPhoto", E(PD, PD, OK, PD, OK, OK),
                 H("GET", "/v1/photos/" + m_photo, "", {"GetPhoto"})});
    h.push_back({"GET /v1/photos/{sighting photo}", "GetPhoto", E(OK, PD, PD, PD, OK, OK),
                 H("GET", "/v1/photos/" + s_photo, "", {"GetPhoto"})});
    // vol2 is still refused m_face: the gRPC rows' SubmitSighting (the small photo, by every
    // caller) showed it the missing case once, by its nearest face, which is the small photo the
    // AddPhoto row added to the case, not m_face. A volunteer sees the crops of the faces it was
    // shown, no other face of the case.
    h.push_back({"GET /v1/faces/{missing}/crop", "GetFaceCrop", E(OK, PD, OK, OK, OK, OK),
                 H("GET", "/v1/faces/" + m_face + "/crop", "", {"GetFaceCrop"})});
    h.push_back({"GET /v1/faces/{sighting}/crop", "GetFaceCrop", E(OK, PD, PD, PD, OK, OK),
                 H("GET", "/v1/faces/" + s_face + "/crop", "", {"GetFaceCrop"})});
    h.push_back({"GET /v1/stats", "GetStats", All(OK), H("GET", "/v1/stats", "", {})});
    h.push_back({"GET /v1/leads", "ListLeads", E(PD, PD, PD, PD, OK, OK),
                 H("GET", "/v1/leads", "", {"ListLeads"})});
    h.push_back({"GET /v1/leads/{lead}", "GetLead", E(PD, PD, PD, PD, OK, OK),
                 H("GET", "/v1/leads/" + lead, "", {"GetLead"})});
    h.push_back({"POST /v1/leads/{lead}:review", "ReviewLead", E(PD, PD, PD, PD, OK, OK),
                 [this, lead](Col c) {
                   Outcome o = Http(c, "POST", "/v1/leads/" + lead + ":review",
                                    R"({"decision":"LEAD_NEEDS_BETTER_PHOTO","note":"http"})");
                   Tally(c, "ReviewLeadCall");
                   if (o.code == 200) Tally(c, "ReviewLead");
                   return o;
                 }});
    // No route reads or alters the audit trail, for anyone.
    std::array<int, kCols> absent;
    absent.fill(404);
    h.push_back({"GET /v1/audit (no such route)", "", absent, H("GET", "/v1/audit", "", {})});
    h.push_back({"DELETE /v1/audit/1 (no such route)", "", absent,
                 H("DELETE", "/v1/audit/1", "", {})});
    h.push_back({"PATCH /v1/audit/1 (no such route)", "", absent,
                 H("PATCH", "/v1/audit/1", R"({"actor":"x"})", {})});
  }

  // Every RPC of the service has rows in both tables: a new RPC must join the matrix.
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName("homeward.v1.Homeward");
  ASSERT_NE(service, nullptr);
  std::set<std::string> grpc_rpcs, http_rpcs;
  for (const Row& r : g) grpc_rpcs.insert(r.rpc);
  for (const Row& r : h) http_rpcs.insert(r.rpc);
  for (int i = 0; i < service->method_count(); ++i) {
    const std::string name = service->method(i)->name();
    EXPECT_TRUE(grpc_rpcs.count(name)) << name << " has no gRPC row";
    EXPECT_TRUE(http_rpcs.count(name)) << name << " has no HTTP route row";
    EXPECT_EQ(name.find("Audit"), std::string::npos) << name << ": no RPC touches the audit";
  }
  EXPECT_EQ(service->method_count(), 16);

  std::map<std::string, int> grpc_counts, http_counts;
  auto [g_cells, g_ok] = RunMatrix("gRPC (code per caller)", g, false, &grpc_counts);
  auto [h_cells, h_ok] = RunMatrix("HTTP (status per caller)", h, true, &http_counts);
  std::printf("\ngRPC: %zu rows x %d callers = %d cells, %d as expected;", g.size(), kCols,
              g_cells, g_ok);
  for (const auto& [code, n] : grpc_counts) std::printf(" %s=%d", code.c_str(), n);
  std::printf("\nHTTP: %zu rows x %d callers = %d cells, %d as expected;", h.size(), kCols,
              h_cells, h_ok);
  for (const auto& [code, n] : http_counts) std::printf(" %s=%d", code.c_str(), n);
  std::printf("\n");

  // ---- Field-level checks beyond the per-cell scan.
  {
    // A volunteer's sighting search: candidates without names, places, dates, photo ids.
    pb::SubmitSightingRequest sr;
    sr.set_image(small);
    pb::SubmitSightingResponse seen;
    ASSERT_TRUE(Call(&Stub::SubmitSighting, kVol2, "SubmitSighting", sr, &seen).ok());
    int candidates = 0;
    bool found_missing = false;
    for (const auto& r : seen.results()) {
      for (const auto& c : r.candidates()) {
        ++candidates;
        found_missing |= c.case_().id() == m_case;
        EXPECT_EQ(c.case_().display_name(), "");
        EXPECT_EQ(c.case_().place(), "");
        EXPECT_EQ(c.case_().event_date(), "");
        EXPECT_EQ(c.case_().sex(), pb::SEX_UNSPECIFIED);
        EXPECT_EQ(c.photo_id(), "");
        EXPECT_EQ(c.taken_on(), "");
        EXPECT_EQ(c.case_().kind() == pb::SIGHTING, false) << "volunteers never get sightings";
      }
    }
    EXPECT_TRUE(found_missing) << "the missing child should be a candidate: " << seen.DebugString();
    // ... while an investigator sees the name.
    pb::SearchRequest by_s;
    by_s.set_face_id(s_face);
    pb::SearchResponse inv_view;
    ASSERT_TRUE(Call(&Stub::Search, kInv, "Search", by_s, &inv_view).ok());
    bool inv_sees_name = false;
    for (const auto& r : inv_view.results())
      for (const auto& c : r.candidates())
        inv_sees_name |= c.case_().display_name() == kMissingName;
    EXPECT_TRUE(inv_sees_name);
    // A volunteer may not search the SIGHTING collection at all.
    pb::SearchRequest vol_sightings = by_s;
    vol_sightings.add_kinds(pb::SIGHTING);
    pb::SearchResponse denied;
    EXPECT_EQ(Call(&Stub::Search, kVol, "Search", vol_sightings, &denied).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
    // ListCases as a volunteer or non-owner family never lists the others' cases.
    for (Col c : {kVol2, kFam2, kVol}) {
      pb::ListCasesRequest lr;
      lr.set_page_size(1000);
      pb::ListCasesResponse listed;
      ASSERT_TRUE(Call(&Stub::ListCases, c, "ListCases", lr, &listed).ok());
      for (const auto& cs : listed.cases()) {
        EXPECT_NE(cs.id(), m_case);
        if (c != kVol) {
          EXPECT_NE(cs.id(), s_case);
        }
      }
    }
    // The MISSING photo reaches a volunteer only as the aligned crop of a candidate it was
    // shown: a PNG of at most 512 x 512, never the uploaded JPEG.
    for (int size : {0, 512}) {
      pb::GetFaceCropRequest cr;
      cr.set_face_id(m_face);
      cr.set_size(size);
      pb::GetFaceCropResponse crop;
      ASSERT_TRUE(Call(&Stub::GetFaceCrop, kVol, "GetFaceCrop", cr, &crop).ok());
      ASSERT_EQ(crop.png().rfind("\x89PNG", 0), 0u);
      cv::Mat img = cv::imdecode(std::vector<uchar>(crop.png().begin(), crop.png().end()),
                                 cv::IMREAD_UNCHANGED);
      EXPECT_EQ(img.cols, size == 0 ? 150 : size);
      EXPECT_EQ(img.rows, size == 0 ? 150 : size);
    }
    pb::GetFaceCropRequest too_big;
    too_big.set_face_id(m_face);
    too_big.set_size(1024);
    pb::GetFaceCropResponse none;
    EXPECT_EQ(Call(&Stub::GetFaceCrop, kVol2, "GetFaceCrop", too_big, &none).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }

  // ---- Stop, then read the audit trail from the catalog file.
  ASSERT_EQ(server_->Stop(), 0);
  const std::string log = server_->Log() + ReadWholeFile(server_->out_path());
  EXPECT_NE(log.find("rpc method=Search key_id=inv role=investigator code=OK"), std::string::npos);

  // Keys never appear in the output or the data dir (nor in the key file itself).
  std::vector<std::string> files = FilesUnder(data_dir_);
  files.push_back(keys_file_);
  for (const auto& [id, key] : keys_) {
    EXPECT_EQ(log.find(key.substr(4)), std::string::npos) << "the log holds the key of " << id;
    for (const std::string& f : files) {
      EXPECT_EQ(ReadWholeFile(f).find(key.substr(4)), std::string::npos)
          << f << " holds the key of " << id;
    }
  }
  EXPECT_EQ(log.find(kWrongKeyText), std::string::npos);
  EXPECT_EQ(ReadWholeFile(keys_file_).find(Sha256Hex(keys_[kRevokedId])) != std::string::npos,
            true);

  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2((data_dir_ + "/catalog.db").c_str(), &db, SQLITE_OPEN_READWRITE,
                            nullptr),
            SQLITE_OK);
  std::map<std::pair<std::string, std::string>, int> audited;
  int64_t rows = 0, max_id = 0;
  {
    sqlite3_stmt* q = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT actor, action, count(*) FROM audit GROUP BY 1, 2", -1,
                                 &q, nullptr),
              SQLITE_OK);
    while (sqlite3_step(q) == SQLITE_ROW) {
      audited[{reinterpret_cast<const char*>(sqlite3_column_text(q, 0)),
               reinterpret_cast<const char*>(sqlite3_column_text(q, 1))}] =
          sqlite3_column_int(q, 2);
    }
    sqlite3_finalize(q);
    ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT count(*), max(id) FROM audit", -1, &q, nullptr),
              SQLITE_OK);
    ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
    rows = sqlite3_column_int64(q, 0);
    max_id = sqlite3_column_int64(q, 1);
    sqlite3_finalize(q);
  }
  // One row per audited call, by the caller's key id; nothing for calls without a valid key.
  EXPECT_EQ(audited, tally_);
  for (const char* action : {"Search", "GetPhoto", "GetFaceCrop", "SubmitSighting", "Compare"}) {
    for (int c = kVol; c <= kAdm; ++c) {
      EXPECT_GT((audited[{kColKeyIds[c], action}]), 0) << kColKeyIds[c] << " " << action;
    }
  }
  EXPECT_EQ((audited[{kRevokedId, "GetCase"}]), 1) << "only the call before the revocation";
  // Nothing was ever removed: ids run 1..n without a gap, and the rows of deleted cases stay.
  EXPECT_EQ(rows, max_id);
  {
    sqlite3_stmt* q = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db,
                                 "SELECT count(*) FROM audit WHERE action = 'DeleteCase' AND "
                                 "detail LIKE 'code=OK%' AND target_id NOT IN (SELECT id FROM "
                                 "cases)",
                                 -1, &q, nullptr),
              SQLITE_OK);
    ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
    // fam and adm, over gRPC and HTTP; their ids were not given to a later case.
    EXPECT_EQ(sqlite3_column_int(q, 0), 4);
    sqlite3_finalize(q);
  }
  // The triggers refuse direct UPDATE and DELETE.
  for (const char* sql : {"UPDATE audit SET actor = 'mallory' WHERE id = 1",
                          "DELETE FROM audit WHERE id = 1", "DELETE FROM audit"}) {
    char* err = nullptr;
    EXPECT_NE(sqlite3_exec(db, sql, nullptr, nullptr, &err), SQLITE_OK) << sql;
    EXPECT_NE(std::string(err ? err : "").find("append-only"), std::string::npos) << sql;
    sqlite3_free(err);
  }
  {
    sqlite3_stmt* q = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT count(*) FROM audit", -1, &q, nullptr), SQLITE_OK);
    ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
    EXPECT_EQ(sqlite3_column_int64(q, 0), rows);
    sqlite3_finalize(q);
  }
  sqlite3_close(db);
}

// Revocation reaches a running server through the file's change (no signal), and SIGHUP
// re-reads a file whose stamp (inode, size, mtime) did not change; a file that no longer
// parses keeps the keys loaded before.
TEST_F(AccessMatrixTest, RevocationAndSighupReachARunningServer) {
  auto stats = [this](const std::string& key) {
    pb::GetStatsResponse resp;
    return CallRpc(*stub_, &Stub::GetStats, key, pb::GetStatsRequest(), &resp,
                   std::chrono::seconds(30));
  };
  ASSERT_TRUE(stats(keys_["vol"]).ok());
  ASSERT_TRUE(stats(keys_["fam"]).ok());

  // 1. An in-place edit that keeps size and mtime: the server does not notice...
  std::string text = ReadWholeFile(keys_file_);
  const std::string old_hash = Sha256Hex(keys_["fam"]);
  size_t at = text.find(old_hash);
  ASSERT_NE(at, std::string::npos);
  struct stat before;
  ASSERT_EQ(stat(keys_file_.c_str(), &before), 0);
  text.replace(at, old_hash.size(), Sha256Hex("some other key"));
  {
    std::fstream f(keys_file_, std::ios::in | std::ios::out | std::ios::binary);
    f.write(text.data(), static_cast<std::streamsize>(text.size()));
  }
  struct timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(utimensat(AT_FDCWD, keys_file_.c_str(), times, 0), 0);
  EXPECT_TRUE(stats(keys_["fam"]).ok()) << "the stamp did not change: no re-read expected";
  // ... until SIGHUP.
  server_->Signal(SIGHUP);
  grpc::Status s;
  for (int i = 0; i < 200; ++i) {
    s = stats(keys_["fam"]);
    if (!s.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(stats(keys_["vol"]).ok());

  // 2. --revoke-key on the running server's file: refused from the next call on.
  std::string out, err;
  ASSERT_EQ(RunCommand({kBinary, "--revoke-key", "vol", "--api-keys", keys_file_}, &out, &err), 0)
      << err;
  s = stats(keys_["vol"]);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(s.error_message().rfind("API key 'vol' was revoked", 0), 0u) << s.error_message();
  // Over HTTP as well.
  httplib::Client cli("http://" + server_->http_address());
  auto r = cli.Get("/v1/stats", {{"Authorization", "Bearer " + keys_["vol"]}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_NE(r->body.find("API key 'vol' was revoked"), std::string::npos) << r->body;
  EXPECT_EQ(r->body.find(keys_["vol"]), std::string::npos);
  // Revoking again is a no-op; unknown ids and a missing --api-keys are errors.
  EXPECT_EQ(RunCommand({kBinary, "--revoke-key", "vol", "--api-keys", keys_file_}, &out, &err), 0);
  EXPECT_NE(err.find("already revoked"), std::string::npos) << err;
  EXPECT_EQ(RunCommand({kBinary, "--revoke-key", "nobody", "--api-keys", keys_file_}, &out, &err),
            1);
  EXPECT_EQ(RunCommand({kBinary, "--revoke-key", "vol"}, &out, &err), 2);
  // A revoked id is never reused.
  EXPECT_EQ(RunCommand({kBinary, "--add-key", "admin", "--key-id", "vol", "--api-keys", keys_file_},
                       &out, &err),
            1);

  // 3. A malformed file is logged and the previous keys stay in force; fixing it applies.
  {
    std::ofstream f(keys_file_, std::ios::app);
    f << "{not json\n";
  }
  EXPECT_TRUE(stats(keys_["inv"]).ok());
  EXPECT_EQ(stats(keys_["vol"]).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  std::string fixed = ReadWholeFile(keys_file_);
  fixed = fixed.substr(0, fixed.find("{not json"));
  fixed += Json{{"revoke", "inv"}}.dump() + "\n";
  {
    std::ofstream f(keys_file_, std::ios::trunc);
    f << fixed;
  }
  EXPECT_EQ(stats(keys_["inv"]).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(stats(keys_["adm"]).ok());

  ASSERT_EQ(server_->Stop(), 0);
  const std::string log = server_->Log();
  EXPECT_NE(log.find("cannot reload the API keys"), std::string::npos);
  EXPECT_NE(log.find("reloaded the API keys"), std::string::npos);
  for (const auto& [id, key] : keys_) {
    EXPECT_EQ(log.find(key.substr(4)), std::string::npos) << "the log holds the key of " << id;
  }
}

// The key file format without a server: revocation lines, the revoked field, errors.
TEST(KeyFile, RevocationLinesAndTheRevokedField) {
  std::string dir = MakeTempDirOrDie("hw_keys_");
  std::string path = dir + "/keys.jsonl";
  auto a = AddKey(path, "a", Role::kVolunteer);
  auto b = AddKey(path, "b", Role::kAdmin);
  ASSERT_TRUE(a.ok() && b.ok());
  auto keys = KeyStore::Load(path);
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(keys->size(), 2u);
  EXPECT_TRUE(keys->Authenticate(*a).ok());
  ASSERT_TRUE(RevokeKey(path, "a").ok());
  EXPECT_EQ(*RevokeKey(path, "a"), false);
  EXPECT_EQ(RevokeKey(path, "zz").status().code(), absl::StatusCode::kNotFound);
  auto refused = keys->Authenticate(*a);  // the same KeyStore notices the change
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(refused.status().message().rfind("API key 'a' was revoked", 0), 0u);
  EXPECT_EQ(keys->size(), 1u);
  EXPECT_EQ(keys->revoked(), 1u);
  EXPECT_TRUE(keys->Authenticate(*b).ok());

  std::ofstream(dir + "/field.jsonl")
      << Json{{"key_id", "c"}, {"role", "family"}, {"key_sha256", Sha256Hex("k")},
              {"revoked", true}}
             .dump()
      << "\n";
  auto field = KeyStore::Load(dir + "/field.jsonl");
  ASSERT_TRUE(field.ok()) << field.status();
  EXPECT_EQ(field->Authenticate("k").status().code(), absl::StatusCode::kUnauthenticated);

  std::ofstream(dir + "/bad.jsonl") << Json{{"revoke", "ghost"}}.dump() << "\n";
  auto bad = KeyStore::Load(dir + "/bad.jsonl");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find(":1:"), std::string::npos) << bad.status();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace homeward::server
