// The JSON/HTTP gateway end to end: a real homeward-server with --http-listen on a free
// loopback port, real API keys of every role, the real models and demo photos, and
// httplib::Client over real HTTP/1.1.
#include "server/http_gateway.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/strings/str_cat.h"
#include "gallery/gallery.h"
#include "server/auth.h"
#include "server/config.h"
#include "server/server.h"
#include "tests/embed_test_util.h"
#include "tests/test_server.h"

namespace homeward::server {
namespace {

using homeward::testing::Base64;
using homeward::testing::DemoDir;
using homeward::testing::ReadFileOrDie;
using homeward::testing::OneFaceSample2;
using homeward::testing::TestServer;
using Json = nlohmann::json;

constexpr int64_t kMaxRequestBytes = 2 << 20;
constexpr char kOrigin[] = "https://app.example";

class HttpGatewayTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto server = TestServer::Create("hw_http_", {{"vol", Role::kVolunteer},
                                                  {"fam", Role::kFamily},
                                                  {"fam2", Role::kFamily},
                                                  {"inv", Role::kInvestigator},
                                                  {"adm", Role::kAdmin}});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
    ServerConfig& config = server_->config;
    config.http_listen = "127.0.0.1:0";
    config.cors_origin = kOrigin;
    config.max_request_bytes = kMaxRequestBytes;
    // The gateway's behaviour does not depend on calibration: run without one if absent.
    if (!std::filesystem::exists(DefaultCalibration())) config.calibration = "none";
    absl::Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started;
    ASSERT_FALSE(server_->server()->http_address().empty());
  }

  static void TearDownTestSuite() { delete server_; }

  static std::unique_ptr<httplib::Client> Client() {
    auto cli = std::make_unique<httplib::Client>("http://" + server_->server()->http_address());
    cli->set_read_timeout(120, 0);
    cli->set_write_timeout(60, 0);
    return cli;
  }

  // Headers for `who`: a key id, "" for none, "bogus" for a wrong key.
  static httplib::Headers As(const std::string& who) {
    if (who.empty()) return {};
    if (who == "bogus") return {{"Authorization", "Bearer hwk_0000"}};
    return {{"Authorization", "Bearer " + server_->key(who)}};
  }

  static Json Body(const httplib::Result& r) {
    return Json::parse(r->body, nullptr, /*allow_exceptions=*/false);
  }

  static httplib::Result PostJson(const std::string& path, const std::string& who,
                                  const Json& body) {
    return Client()->Post(path.c_str(), As(who), body.dump(), "application/json");
  }

  // A MISSING case owned by `who` with the one-face sample2 photo (tests/embed_test_util.h):
  // {case id, photo id, face id}.
  static std::tuple<std::string, std::string, std::string> MissingCaseWithPhoto(
      const std::string& who) {
    auto created = PostJson("/v1/cases", who,
                            {{"kind", "MISSING"},
                             {"displayName", "Test Child"},
                             {"place", "Springfield"},
                             {"reporterContact", "+1 555 0100"}});
    EXPECT_TRUE(created);
    EXPECT_EQ(created->status, 200) << created->body;
    std::string id = Body(created).value("id", "");
    auto added = PostJson(
        "/v1/cases/" + id + "/photos", who,
        {{"image", Base64(OneFaceSample2())}, {"takenOn", "2023-06-01"}});
    EXPECT_EQ(added->status, 200) << added->body;
    Json a = Body(added);
    std::string face = a["faces"].empty() ? "" : a["faces"][0].value("faceId", "");
    return {id, a.value("photoId", ""), face};
  }

  static void ExpectSecurityHeaders(const httplib::Result& r) {
    ASSERT_TRUE(r);
    EXPECT_EQ(r->get_header_value("X-Content-Type-Options"), "nosniff");
    EXPECT_EQ(r->get_header_value("Referrer-Policy"), "no-referrer");
    EXPECT_EQ(r->get_header_value("X-Frame-Options"), "DENY");
    EXPECT_EQ(r->get_header_value("Cache-Control"), "no-store");
    std::string csp = r->get_header_value("Content-Security-Policy");
    EXPECT_NE(csp.find("default-src 'self'"), std::string::npos) << csp;
    EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
    EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos) << csp;
  }

  static TestServer* server_;
};

TestServer* HttpGatewayTest::server_ = nullptr;

TEST_F(HttpGatewayTest, StatsForEveryRoleAndNoneWithoutAValidKey) {
  for (const char* who : {"vol", "fam", "inv", "adm"}) {
    auto r = Client()->Get("/v1/stats", As(who));
    ASSERT_TRUE(r) << who;
    EXPECT_EQ(r->status, 200) << who << " " << r->body;
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
    EXPECT_TRUE(Body(r).contains("indexType")) << r->body;
    ExpectSecurityHeaders(r);
  }
  for (const char* who : {"", "bogus"}) {
    auto r = Client()->Get("/v1/stats", As(who));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401) << r->body;
    EXPECT_EQ(Body(r).value("code", ""), "UNAUTHENTICATED") << r->body;
    EXPECT_EQ(r->get_header_value("WWW-Authenticate"), "Bearer");
  }
  auto r = Client()->Get("/v1/stats", {{"Authorization", "Basic abc"}});
  EXPECT_EQ(r->status, 401);
}

TEST_F(HttpGatewayTest, SecurityHeadersOnPagesErrorsAndUnknownRoutes) {
  auto page = Client()->Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("<html"), std::string::npos);
  EXPECT_EQ(page->body.find("<script>"), std::string::npos) << "no inline script (CSP)";
  ExpectSecurityHeaders(page);
  auto missing = Client()->Get("/v1/nothing-here", As("inv"));
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(Body(missing).value("code", ""), "NOT_FOUND");
  ExpectSecurityHeaders(missing);
  auto denied = Client()->Get("/v1/cases/1", As("vol"));
  ExpectSecurityHeaders(denied);
}

TEST_F(HttpGatewayTest, CaseLifecycleFollowsTheRoles) {
  auto created = PostJson("/v1/cases", "fam",
                          {{"kind", "MISSING"},
                           {"displayName", "Ana"},
                           {"place", "Lisbon"},
                           {"eventDate", "2024-01-02"},
                           {"reporterContact", "ana-family@example.org"}});
  ASSERT_EQ(created->status, 200) << created->body;
  std::string id = Body(created)["id"];
  EXPECT_EQ(Body(created)["status"], "OPEN");

  EXPECT_EQ(PostJson("/v1/cases", "vol", {{"kind", "MISSING"}, {"displayName", "X"}})->status, 403);
  EXPECT_EQ(PostJson("/v1/cases", "fam", {{"kind", "FOUND"}, {"displayName", "X"}})->status, 403);
  EXPECT_EQ(PostJson("/v1/cases", "inv", {{"kind", "FOUND"}, {"displayName", "Y"}})->status, 200);

  std::map<std::string, int> get_status = {{"fam", 200}, {"fam2", 403}, {"vol", 403},
                                           {"inv", 200}, {"adm", 200},  {"", 401}};
  for (const auto& [who, want] : get_status) {
    auto r = Client()->Get(("/v1/cases/" + id).c_str(), As(who));
    EXPECT_EQ(r->status, want) << who << " " << r->body;
  }
  auto inv_view = Client()->Get(("/v1/cases/" + id).c_str(), As("inv"));
  EXPECT_EQ(Body(inv_view)["reporterContact"], "ana-family@example.org");

  // PATCH merges; PUT replaces.
  auto patched = Client()->Patch(("/v1/cases/" + id).c_str(), As("fam"), R"({"notes": "red coat"})",
                                 "application/json");
  ASSERT_EQ(patched->status, 200) << patched->body;
  EXPECT_EQ(Body(patched)["notes"], "red coat");
  EXPECT_EQ(Body(patched)["displayName"], "Ana");
  EXPECT_EQ(Body(patched)["place"], "Lisbon");
  auto put = Client()->Put(("/v1/cases/" + id).c_str(), As("fam"),
                           R"({"displayName": "Ana M.", "kind": "MISSING", "place": "Lisbon"})",
                           "application/json");
  ASSERT_EQ(put->status, 200) << put->body;
  EXPECT_EQ(Body(put)["notes"], "");  // PUT replaces every editable field
  EXPECT_EQ(
      Client()
          ->Patch(("/v1/cases/" + id).c_str(), As("fam2"), R"({"notes": "x"})", "application/json")
          ->status,
      403);
  EXPECT_EQ(
      Client()
          ->Put(("/v1/cases/" + id).c_str(), As("fam"), R"({"id": "999"})", "application/json")
          ->status,
      400);

  // Lists: families see their own cases only; investigators all; query params map to fields.
  auto mine = Client()->Get("/v1/cases?kind=MISSING&pageSize=1000", As("fam2"));
  ASSERT_EQ(mine->status, 200) << mine->body;
  // (Named: a range-for over a member of a temporary reads freed memory before C++23; ASan.)
  const Json mine_body = Body(mine);
  for (const auto& c : mine_body["cases"]) EXPECT_NE(c["id"], id);
  auto all = Client()->Get("/v1/cases?kind=MISSING&placeContains=lis", As("inv"));
  ASSERT_EQ(all->status, 200) << all->body;
  ASSERT_EQ(Body(all)["cases"].size(), 1u) << all->body;
  EXPECT_EQ(Body(all)["cases"][0]["id"], id);
  EXPECT_EQ(Client()->Get("/v1/cases?kind=PUPPY", As("inv"))->status, 400);
  EXPECT_EQ(Client()->Get("/v1/cases?pageSize=many", As("inv"))->status, 400);

  // Deletion: investigators may not, owners may; afterwards NOT_FOUND.
  EXPECT_EQ(Client()->Delete(("/v1/cases/" + id).c_str(), As("inv"))->status, 403);
  auto deleted = Client()->Delete(("/v1/cases/" + id).c_str(), As("fam"));
  ASSERT_EQ(deleted->status, 200) << deleted->body;
  EXPECT_TRUE(Body(deleted).contains("photosDeleted"));
  auto gone = Client()->Get(("/v1/cases/" + id).c_str(), As("inv"));
  EXPECT_EQ(gone->status, 404);
  EXPECT_EQ(Body(gone)["code"], "NOT_FOUND");
  EXPECT_EQ(Client()->Get("/v1/cases/abc", As("inv"))->status, 400);
}

TEST_F(HttpGatewayTest, PhotosUploadAsJsonOrMultipartAndComeBackUncached) {
  auto [case_id, photo_id, face_id] = MissingCaseWithPhoto("fam");
  ASSERT_FALSE(face_id.empty());
  std::string jpeg = OneFaceSample2();

  // Multipart: the file part `image` plus plain fields named like the JSON fields.
  httplib::MultipartFormDataItems items = {
      {"image", jpeg, "child.jpg", "image/jpeg"},
      {"takenOn", "2022-05-01", "", ""},
      {"age", R"({"minYears": 7, "maxYears": 7, "known": true})", "", ""},
      {"source", "police", "", ""}};
  auto multi = Client()->Post(("/v1/cases/" + case_id + "/photos").c_str(), As("inv"), items);
  ASSERT_EQ(multi->status, 200) << multi->body;
  EXPECT_EQ(Body(multi)["faces"].size(), 1u);
  EXPECT_EQ(Body(multi)["duplicate"], true);  // same bytes as the JSON upload
  httplib::MultipartFormDataItems bad_field = {{"image", jpeg, "c.jpg", "image/jpeg"},
                                               {"shoeSize", "3", "", ""}};
  EXPECT_EQ(
      Client()->Post(("/v1/cases/" + case_id + "/photos").c_str(), As("inv"), bad_field)->status,
      400);
  httplib::MultipartFormDataItems vol_items = {{"image", jpeg, "c.jpg", "image/jpeg"}};
  EXPECT_EQ(
      Client()->Post(("/v1/cases/" + case_id + "/photos").c_str(), As("vol"), vol_items)->status,
      403);

  // The photo's bytes with their content type, for the owner and investigators only.
  auto photo = Client()->Get(("/v1/photos/" + photo_id).c_str(), As("fam"));
  ASSERT_EQ(photo->status, 200) << photo->body;
  EXPECT_EQ(photo->get_header_value("Content-Type"), "image/jpeg");
  EXPECT_EQ(photo->body, jpeg);
  ExpectSecurityHeaders(photo);
  EXPECT_EQ(Client()->Get(("/v1/photos/" + photo_id).c_str(), As("inv"))->status, 200);
  EXPECT_EQ(Client()->Get(("/v1/photos/" + photo_id).c_str(), As("vol"))->status, 403);
  EXPECT_EQ(Client()->Get(("/v1/photos/" + photo_id).c_str(), As("fam2"))->status, 403);
  EXPECT_EQ(Client()->Get("/v1/photos/987654", As("inv"))->status, 404);

  // Face crops: a PNG of the requested size. A volunteer sees only the crops of candidates it
  // was shown (SightingSearchAndCompareFollowTheRoles); nobody showed it this new face.
  EXPECT_EQ(Client()->Get(("/v1/faces/" + face_id + "/crop").c_str(), As("vol"))->status, 403);
  auto crop = Client()->Get(("/v1/faces/" + face_id + "/crop?size=64").c_str(), As("fam2"));
  ASSERT_EQ(crop->status, 200) << crop->body;
  EXPECT_EQ(crop->get_header_value("Content-Type"), "image/png");
  ASSERT_GT(crop->body.size(), 24u);
  EXPECT_EQ(crop->body.substr(1, 3), "PNG");
  auto be32 = [&](size_t at) {
    const auto* p = reinterpret_cast<const unsigned char*>(crop->body.data() + at);
    return (p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3];
  };
  EXPECT_EQ(be32(16), 64);  // IHDR width
  EXPECT_EQ(be32(20), 64);
  ExpectSecurityHeaders(crop);
  EXPECT_EQ(Client()->Get(("/v1/faces/" + face_id + "/crop?size=8").c_str(), As("inv"))->status,
            400);
  EXPECT_EQ(Client()->Get(("/v1/faces/" + face_id + "/crop").c_str(), As(""))->status, 401);
}

TEST_F(HttpGatewayTest, SightingSearchAndCompareFollowTheRoles) {
  auto [case_id, photo_id, face_id] = MissingCaseWithPhoto("fam");
  ASSERT_FALSE(face_id.empty());
  std::string jpeg = OneFaceSample2();

  // A volunteer's street photo, as a phone form would send it.
  httplib::MultipartFormDataItems items = {
      {"image", jpeg, "street.jpg", "image/jpeg"},
      {"seenOn", "2024-04-02", "", ""},
      {"place", "Main Street", "", ""},
      {"estimatedAge", R"({"minYears": 6, "maxYears": 9, "estimated": true, "known": true})", "",
       ""},
      {"topK", "5", "", ""}};
  auto seen = Client()->Post("/v1/sightings", As("vol"), items);
  ASSERT_EQ(seen->status, 200) << seen->body;
  Json s = Body(seen);
  ASSERT_EQ(s["results"].size(), 1u) << seen->body;
  ASSERT_GE(s["results"][0]["candidates"].size(), 1u);
  // Other tests registered the same child too: the new case is among the best, all identical.
  Json top;
  for (const auto& c : s["results"][0]["candidates"]) {
    if (c["case"]["id"] == case_id) top = c;
  }
  ASSERT_FALSE(top.is_null()) << seen->body;
  EXPECT_LT(top["distance"].get<double>(), 0.6);
  EXPECT_EQ(top["case"]["displayName"], "");  // volunteers see case ids only
  EXPECT_EQ(top["photoId"], "");
  // The candidate's crop is now the volunteer's to see (the thumbnail policy).
  EXPECT_EQ(top["faceId"], face_id);
  EXPECT_EQ(Client()->Get(("/v1/faces/" + face_id + "/crop").c_str(), As("vol"))->status, 200);
  EXPECT_FALSE(s["caveats"].empty());
  EXPECT_TRUE(s["results"][0]["queryFace"]["quality"].contains("usable"));

  // Search by image: investigators yes, volunteers no.
  Json search = {{"image", Base64(jpeg)}, {"topK", 5}};
  EXPECT_EQ(PostJson("/v1/search", "vol", search)->status, 403);
  auto found = PostJson("/v1/search", "inv", search);
  ASSERT_EQ(found->status, 200) << found->body;
  Json f = Body(found);
  ASSERT_GE(f["results"][0]["candidates"].size(), 1u);
  EXPECT_EQ(f["results"][0]["candidates"][0]["case"]["displayName"], "Test Child");
  // By face id, as multipart fields too.
  httplib::MultipartFormDataItems by_face = {{"faceId", face_id, "", ""},
                                             {"kinds", "SIGHTING", "", ""}};
  auto by_face_r = Client()->Post("/v1/search", As("inv"), by_face);
  ASSERT_EQ(by_face_r->status, 200) << by_face_r->body;
  EXPECT_GE(Body(by_face_r)["results"][0]["candidates"].size(), 1u) << by_face_r->body;

  Json compare = {{"a", {{"faceId", face_id}}}, {"b", {{"image", Base64(jpeg)}}}};
  EXPECT_EQ(PostJson("/v1/compare", "fam", compare)->status, 403);
  auto cmp = PostJson("/v1/compare", "inv", compare);
  ASSERT_EQ(cmp->status, 200) << cmp->body;
  EXPECT_EQ(Body(cmp)["possibleMatch"], true);
  EXPECT_EQ(
      PostJson("/v1/compare", "inv", {{"a", {{"faceId", "424242"}}}, {"b", {{"faceId", face_id}}}})
          ->status,
      404);
}

TEST_F(HttpGatewayTest, BadBodiesGetJsonErrors) {
  auto malformed = Client()->Post("/v1/search", As("inv"), "{\"topK\": 5,", "application/json");
  ASSERT_EQ(malformed->status, 400);
  EXPECT_EQ(Body(malformed)["code"], "INVALID_ARGUMENT");
  EXPECT_FALSE(Body(malformed)["message"].get<std::string>().empty());
  EXPECT_EQ(Client()->Post("/v1/search", As("inv"), R"({"tpoK": 5})", "application/json")->status,
            400);
  EXPECT_EQ(
      Client()->Post("/v1/search", As("inv"), R"({"image": "***"})", "application/json")->status,
      400);
  auto empty_image = Client()->Post("/v1/search", As("inv"), "{}", "application/json");
  EXPECT_EQ(empty_image->status, 400) << empty_image->body;

  auto wrong_type = Client()->Post("/v1/search", As("inv"), "topK=5", "text/plain");
  ASSERT_EQ(wrong_type->status, 415);
  EXPECT_EQ(Body(wrong_type)["code"], "INVALID_ARGUMENT");
  httplib::MultipartFormDataItems form = {{"displayName", "Z", "", ""}};
  EXPECT_EQ(Client()->Post("/v1/cases", As("fam"), form)->status, 415);

  // A body over the limit (2 MB images; 4/3 of it as JSON): 413 before it reaches gRPC.
  std::string huge(kMaxRequestBytes / 3 * 4 + (256 << 10), 'A');
  auto over =
      Client()->Post("/v1/search", As("inv"), "{\"image\": \"" + huge + "\"}", "application/json");
  ASSERT_TRUE(over) << "connection: " << httplib::to_string(over.error());
  EXPECT_EQ(over->status, 413);
  // An image over the limit inside an accepted body: the service's RESOURCE_EXHAUSTED.
  std::string big_image(kMaxRequestBytes + 1000, '\xff');
  httplib::MultipartFormDataItems big = {{"image", big_image, "big.jpg", "image/jpeg"}};
  auto too_big = Client()->Post("/v1/sightings", As("vol"), big);
  ASSERT_TRUE(too_big);
  EXPECT_EQ(too_big->status, 413) << too_big->body;
  EXPECT_EQ(Body(too_big)["code"], "RESOURCE_EXHAUSTED") << too_big->body;
}

TEST_F(HttpGatewayTest, CorsPreflightOnlyForTheConfiguredOrigin) {
  httplib::Headers preflight = {{"Origin", kOrigin},
                                {"Access-Control-Request-Method", "POST"},
                                {"Access-Control-Request-Headers", "authorization,content-type"}};
  auto ok = Client()->Options("/v1/search", preflight);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 204);
  EXPECT_EQ(ok->get_header_value("Access-Control-Allow-Origin"), kOrigin);
  EXPECT_NE(ok->get_header_value("Access-Control-Allow-Methods").find("POST"), std::string::npos);
  EXPECT_NE(ok->get_header_value("Access-Control-Allow-Headers").find("Authorization"),
            std::string::npos);
  ExpectSecurityHeaders(ok);

  auto evil = Client()->Options("/v1/search", {{"Origin", "https://evil.example"},
                                               {"Access-Control-Request-Method", "POST"}});
  EXPECT_EQ(evil->status, 403);
  EXPECT_FALSE(evil->has_header("Access-Control-Allow-Origin"));

  httplib::Headers simple = As("inv");
  simple.emplace("Origin", kOrigin);
  auto get = Client()->Get("/v1/stats", simple);
  EXPECT_EQ(get->status, 200);
  EXPECT_EQ(get->get_header_value("Access-Control-Allow-Origin"), kOrigin);
  httplib::Headers cross = As("inv");
  cross.emplace("Origin", "https://evil.example");
  auto other = Client()->Get("/v1/stats", cross);
  EXPECT_FALSE(other->has_header("Access-Control-Allow-Origin"));
}

TEST_F(HttpGatewayTest, CallsAreAuditedAsTheCallersKey) {
  auto before = server_->server()->gallery()->catalog().ListAudit(0, 10000);
  ASSERT_TRUE(before.ok());
  int64_t after_id = before->empty() ? 0 : before->back().id;
  auto created = PostJson("/v1/cases", "inv", {{"kind", "FOUND"}, {"displayName", "Audited"}});
  ASSERT_EQ(created->status, 200);
  std::string id = Body(created)["id"];
  EXPECT_EQ(Client()->Get(("/v1/cases/" + id).c_str(), As("vol"))->status, 403);
  auto rows = server_->server()->gallery()->catalog().ListAudit(after_id, 100);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].actor, "inv");
  EXPECT_EQ((*rows)[0].action, "CreateCase");
  EXPECT_EQ((*rows)[1].actor, "vol");
  EXPECT_EQ((*rows)[1].action, "GetCase");
  EXPECT_NE((*rows)[1].detail.find("PERMISSION_DENIED"), std::string::npos);
}

TEST_F(HttpGatewayTest, LeadsAreListedOpenedAndReviewedByInvestigatorsOnly) {
  auto [case_id, photo_id, face_id] = MissingCaseWithPhoto("fam");
  ASSERT_FALSE(face_id.empty());
  httplib::MultipartFormDataItems items = {
      {"image", OneFaceSample2(), "street.jpg", "image/jpeg"},
      {"place", "Harbour Road", "", ""}};
  auto seen = Client()->Post("/v1/sightings", As("vol"), items);
  ASSERT_EQ(seen->status, 200) << seen->body;
  std::string sighting_case = Body(seen)["caseId"];

  EXPECT_EQ(Client()->Get("/v1/leads", As("vol"))->status, 403);
  EXPECT_EQ(Client()->Get("/v1/leads", As("fam"))->status, 403);
  auto listed = Client()->Get("/v1/leads?status=LEAD_OPEN&placeContains=harbour", As("inv"));
  ASSERT_EQ(listed->status, 200) << listed->body;
  Json leads = Body(listed)["leads"];
  ASSERT_GE(leads.size(), 1u) << listed->body;
  std::string lead_id;
  for (const auto& l : leads) {
    if (l["caseAId"] == sighting_case || l["caseBId"] == sighting_case) lead_id = l["id"];
  }
  ASSERT_FALSE(lead_id.empty()) << listed->body;
  EXPECT_EQ(Client()->Get("/v1/leads?status=NOPE", As("inv"))->status, 400);

  auto got = Client()->Get(("/v1/leads/" + lead_id).c_str(), As("adm"));
  ASSERT_EQ(got->status, 200) << got->body;
  EXPECT_EQ(Body(got)["status"], "LEAD_OPEN");
  EXPECT_FALSE(Body(got)["a"]["faceId"].get<std::string>().empty());
  EXPECT_EQ(Client()->Get(("/v1/leads/" + lead_id).c_str(), As("vol"))->status, 403);
  EXPECT_EQ(Client()->Get("/v1/leads/777777", As("inv"))->status, 404);

  std::string path = "/v1/leads/" + lead_id + ":review";
  EXPECT_EQ(
      Client()
          ->Post(path.c_str(), As("vol"), R"({"decision": "LEAD_REJECTED"})", "application/json")
          ->status,
      403);
  EXPECT_EQ(Client()
                ->Post(path.c_str(), As("inv"), R"({"decision": "LEAD_OPEN"})", "application/json")
                ->status,
            400);
  auto before = server_->server()->gallery()->catalog().ListAudit(0, 10000);
  ASSERT_TRUE(before.ok());
  int64_t after_id = before->empty() ? 0 : before->back().id;
  auto reviewed = Client()->Post(path.c_str(), As("inv"),
                                 R"({"decision": "LEAD_CONFIRMED_FOR_DNA", "note": "DNA kit"})",
                                 "application/json");
  ASSERT_EQ(reviewed->status, 200) << reviewed->body;
  Json r = Body(reviewed);
  EXPECT_EQ(r["status"], "LEAD_CONFIRMED_FOR_DNA");
  ASSERT_EQ(r["reviews"].size(), 1u);
  EXPECT_EQ(r["reviews"][0]["reviewer"], "inv");
  EXPECT_EQ(r["reviews"][0]["note"], "DNA kit");
  auto rows = server_->server()->gallery()->catalog().ListAudit(after_id, 100);
  ASSERT_TRUE(rows.ok());
  bool audited = false;
  for (const auto& row : *rows) {
    if (row.actor == "inv" && row.action == "ReviewLead") audited = true;
  }
  EXPECT_TRUE(audited) << "no ReviewLead audit row by inv";
}

// The value of one sample line of a Prometheus page (`name{labels} value`), -1 if absent.
double Sample(const std::string& page, const std::string& series) {
  size_t at = 0;
  while ((at = page.find(series + " ", at)) != std::string::npos) {
    if (at == 0 || page[at - 1] == '\n') return std::stod(page.substr(at + series.size() + 1));
    at += series.size();
  }
  return -1;
}

TEST_F(HttpGatewayTest, MetricsArePrometheusTextForInvestigatorsAndAdmins) {
  EXPECT_EQ(Client()->Get("/metrics")->status, 401);
  EXPECT_EQ(Client()->Get("/metrics", As("bogus"))->status, 401);
  for (const char* who : {"vol", "fam"}) {
    auto r = Client()->Get("/metrics", As(who));
    EXPECT_EQ(r->status, 403) << who << ": the page holds totals of everyone's cases";
  }
  auto before = Client()->Get("/metrics", As("inv"));
  ASSERT_EQ(before->status, 200) << before->body;
  EXPECT_EQ(before->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");

  auto [case_id, photo_id, face_id] = MissingCaseWithPhoto("fam");
  ASSERT_FALSE(photo_id.empty());
  EXPECT_EQ(Client()->Get("/v1/cases/987654321", As("inv"))->status, 404);

  auto after = Client()->Get("/metrics", As("adm"));
  ASSERT_EQ(after->status, 200) << after->body;
  const std::string& a = after->body;
  const std::string& b = before->body;
  auto delta = [&](const std::string& series) {
    return Sample(a, series) - std::max(0.0, Sample(b, series));
  };
  EXPECT_EQ(delta(R"(homeward_rpc_calls_total{method="CreateCase",code="OK"})"), 1) << a;
  EXPECT_EQ(delta(R"(homeward_rpc_calls_total{method="AddPhoto",code="OK"})"), 1);
  EXPECT_EQ(delta(R"(homeward_rpc_calls_total{method="GetCase",code="NOT_FOUND"})"), 1);
  EXPECT_EQ(delta(R"(homeward_rpc_latency_seconds_count{method="AddPhoto"})"), 1);
  EXPECT_EQ(delta("homeward_photos_ingested_total"), 1);
  EXPECT_GE(delta("homeward_faces_ingested_total"), 1);
  EXPECT_GE(delta(R"(homeward_faces{collection="missing"})"), 1);
  EXPECT_EQ(delta(R"(homeward_index_faces{collection="missing"})"),
            delta(R"(homeward_faces{collection="missing"})"));
  EXPECT_GE(Sample(a, R"(homeward_leads{status="open"})"), 0);
  EXPECT_EQ(Sample(a, "homeward_pipeline_queue_depth"), 0);
  EXPECT_GT(Sample(a, "homeward_change_log_last_seq"), 0);
  EXPECT_EQ(Sample(a, R"(homeward_change_log_lag{collection="missing"})"), 0);

  // The histogram's buckets are cumulative and end at the count.
  double last = 0;
  for (const char* le : {"0.001", "0.01", "0.1", "1", "10", "30", "+Inf"}) {
    const double n =
        Sample(a, absl::StrCat(R"(homeward_rpc_latency_seconds_bucket{method="AddPhoto",le=")", le,
                               "\"}"));
    EXPECT_GE(n, last) << le;
    last = n;
  }
  EXPECT_EQ(last, Sample(a, R"(homeward_rpc_latency_seconds_count{method="AddPhoto"})"));
  // Scrapes are not audited (they name no case); the calls they count are.
  auto rows = server_->server()->gallery()->catalog().ListAudit(0, 10000);
  ASSERT_TRUE(rows.ok());
  for (const auto& row : *rows) EXPECT_NE(row.action, "Metrics");
}

// Debian's promtool (package prometheus, installed by scripts/setup.sh) accepts the page.
TEST_F(HttpGatewayTest, PromtoolAcceptsTheMetricsPage) {
  if (!std::filesystem::exists("/usr/bin/promtool")) {
    GTEST_SKIP() << "promtool is not installed (Debian package prometheus; scripts/setup.sh deps)";
  }
  MissingCaseWithPhoto("fam");
  EXPECT_EQ(Client()->Get("/v1/cases/987654321", As("inv"))->status, 404);
  auto page = Client()->Get("/metrics", As("adm"));
  ASSERT_EQ(page->status, 200);
  const std::string file = server_->dir() + "/metrics.txt";
  const std::string out = server_->dir() + "/promtool.out";
  {
    std::ofstream f(file, std::ios::binary);
    f << page->body;
  }
  const int rc = std::system(("/usr/bin/promtool check metrics < " + file + " > " + out + " 2>&1").c_str());
  std::ifstream o(out);
  const std::string said((std::istreambuf_iterator<char>(o)), std::istreambuf_iterator<char>());
  EXPECT_EQ(rc, 0) << said << "\n" << page->body;
  EXPECT_EQ(said, "") << "promtool's lint findings";
}

TEST(HttpGatewayConfigTest, BadHttpListenIsRefused) {
  ServerConfig config;
  config.insecure_dev = true;
  config.http_listen = "nonsense";
  EXPECT_EQ(ValidateConfig(config).code(), absl::StatusCode::kInvalidArgument);
  config.http_listen = "0.0.0.0:8080";
  EXPECT_EQ(ValidateConfig(config).code(), absl::StatusCode::kInvalidArgument);
  config.http_listen = "127.0.0.1:8080";
  EXPECT_TRUE(ValidateConfig(config).ok());
}

}  // namespace
}  // namespace homeward::server
