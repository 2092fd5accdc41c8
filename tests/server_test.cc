// homeward-server end to end: a real server on a free loopback port, a temp data dir, the
// real models and demo photos, and a real channel (as gRPC's end2end tests do).
#include "server/server.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <opencv2/imgproc.hpp>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "gallery/gallery.h"
#include "homeward/v1/homeward.grpc.pb.h"
#include "server/auth.h"
#include "server/config.h"
#include "server/internal/convert.h"
#include "tests/embed_test_util.h"
#include "tests/rpc_call.h"
#include "tests/server_process.h"
#include "tests/test_server.h"

namespace homeward::server {
namespace {

namespace pb = ::homeward::v1;
using grpc::StatusCode;
using homeward::testing::CallRpc;
using homeward::testing::DecodeBgr;
using homeward::testing::DemoDir;
using homeward::testing::EncodeJpeg;
using homeward::testing::MakeTempDirOrDie;
using homeward::testing::OneFaceSample2;
using homeward::testing::ReadFileOrDie;
using homeward::testing::ReadWholeFile;
using homeward::testing::Rpc;
using homeward::testing::ServerOptions;
using homeward::testing::ServerProcess;
using homeward::testing::TestServer;

constexpr int64_t kMaxRequestBytes = 2 << 20;

std::string MakeTempDir() { return MakeTempDirOrDie("hw_server_"); }

// The one-face sample2 photo (tests/embed_test_util.h), cropped by 8% on each side and
// re-encoded: other bytes, same child.
std::string ReencodedSample2() {
  cv::Mat img = DecodeBgr(OneFaceSample2());
  int dx = img.cols * 8 / 100, dy = img.rows * 8 / 100;
  cv::Mat crop = img(cv::Rect(dx, dy, img.cols - 2 * dx, img.rows - 2 * dy)).clone();
  return EncodeJpeg(crop, 85);
}

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto server = TestServer::Create("hw_server_", {{"vol", Role::kVolunteer},
                                                    {"vol2", Role::kVolunteer},
                                                    {"fam", Role::kFamily},
                                                    {"fam2", Role::kFamily},
                                                    {"inv", Role::kInvestigator},
                                                    {"adm", Role::kAdmin}});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
    server_->config.max_request_bytes = kMaxRequestBytes;
    absl::Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started;
    channel_ = new std::shared_ptr<grpc::Channel>(server_->NewChannel());
    stub_ = pb::Homeward::NewStub(*channel_).release();
  }

  static void TearDownTestSuite() {
    delete stub_;
    delete channel_;
    delete server_;
  }

  // Calls stub->*method as `who` (a key id, "" for no key, or "bogus" for a wrong key).
  template <typename Req, typename Resp>
  static grpc::Status Call(Rpc<Req, Resp> method, const std::string& who, const Req& req,
                           Resp* resp) {
    const std::string key = who == "bogus" ? "hwk_0000" : who.empty() ? "" : server_->key(who);
    return CallRpc(*stub_, method, key, req, resp, std::chrono::seconds(30));
  }

  // A MISSING case owned by `who` with the one-face sample2 photo; returns {case id, face id}.
  static std::pair<std::string, std::string> MissingCaseWithPhoto(const std::string& who,
                                                                  std::string* photo_id = nullptr) {
    pb::CreateCaseRequest create;
    create.mutable_case_()->set_kind(pb::MISSING);
    create.mutable_case_()->set_display_name("Test Child");
    create.mutable_case_()->set_reporter_contact("+1 555 0100");
    create.mutable_case_()->set_place("Springfield");
    create.mutable_case_()->set_event_date("2024-03-01");
    pb::Case created;
    grpc::Status s = Call(&pb::Homeward::Stub::CreateCase, who, create, &created);
    EXPECT_TRUE(s.ok()) << s.error_message();
    pb::AddPhotoRequest add;
    add.set_case_id(created.id());
    add.set_image(OneFaceSample2());
    add.set_taken_on("2023-06-01");
    pb::AddPhotoResponse added;
    s = Call(&pb::Homeward::Stub::AddPhoto, who, add, &added);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(added.faces_size(), 1);
    if (photo_id) *photo_id = added.photo_id();
    return {created.id(), added.faces_size() > 0 ? added.faces(0).face_id() : ""};
  }

  static TestServer* server_;
  static std::shared_ptr<grpc::Channel>* channel_;
  static pb::Homeward::Stub* stub_;
};

TestServer* ServerTest::server_ = nullptr;
std::shared_ptr<grpc::Channel>* ServerTest::channel_ = nullptr;
pb::Homeward::Stub* ServerTest::stub_ = nullptr;

using Stub = pb::Homeward::Stub;

TEST_F(ServerTest, HealthCheckIsServing) {
  grpc::GenericStub generic(*channel_);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::ByteBuffer request, response;  // HealthCheckRequest{service: ""} is empty
  grpc::Slice empty;
  request = grpc::ByteBuffer(&empty, 1);
  std::promise<grpc::Status> done;
  generic.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                    [&done](grpc::Status s) { done.set_value(s); });
  grpc::Status s = done.get_future().get();
  ASSERT_TRUE(s.ok()) << s.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (auto& sl : slices) bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
  EXPECT_EQ(bytes, std::string("\x08\x01", 2));  // status: SERVING
}

TEST_F(ServerTest, FullFlowFindsTheMissingChildAndForgetsItAfterDelete) {
  std::string photo_id;
  auto [case_id, face_id] = MissingCaseWithPhoto("fam", &photo_id);
  ASSERT_FALSE(face_id.empty());

  // A volunteer's street photo of the same child: the missing case comes first.
  pb::SubmitSightingRequest sighting;
  sighting.set_image(ReencodedSample2());
  sighting.set_seen_on("2024-04-02");
  sighting.set_place("Main Street");
  pb::SubmitSightingResponse seen;
  grpc::Status s = Call(&Stub::SubmitSighting, "vol", sighting, &seen);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(seen.results_size(), 1);
  ASSERT_GE(seen.results(0).candidates_size(), 1) << seen.results(0).query_face().DebugString();
  const pb::Candidate& top = seen.results(0).candidates(0);
  EXPECT_EQ(top.case_().id(), case_id);
  EXPECT_LT(top.distance(), 0.6);
  EXPECT_EQ(top.case_().display_name(), "");  // volunteers see case ids only
  EXPECT_EQ(top.case_().place(), "");
  EXPECT_EQ(top.photo_id(), "");
  EXPECT_FALSE(seen.caveats().empty());
  std::string sighting_face = seen.results(0).query_face().face_id();
  ASSERT_FALSE(sighting_face.empty());

  // Investigators search by image and see names.
  pb::SearchRequest by_image;
  by_image.set_image(ReencodedSample2());
  pb::SearchResponse found;
  s = Call(&Stub::Search, "inv", by_image, &found);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(found.results_size(), 1);
  ASSERT_GE(found.results(0).candidates_size(), 1);
  EXPECT_EQ(found.results(0).candidates(0).case_().id(), case_id);
  EXPECT_EQ(found.results(0).candidates(0).case_().display_name(), "Test Child");
  EXPECT_EQ(found.results(0).candidates(0).photo_id(), photo_id);

  // The family searches the sightings with its child's face.
  pb::SearchRequest by_face;
  by_face.set_face_id(face_id);
  by_face.add_kinds(pb::SIGHTING);
  by_face.set_top_k(5);
  s = Call(&Stub::Search, "fam", by_face, &found);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(found.results_size(), 1);
  ASSERT_GE(found.results(0).candidates_size(), 1);
  EXPECT_EQ(found.results(0).candidates(0).case_().id(), seen.case_id());

  pb::CompareRequest compare;
  compare.mutable_a()->set_face_id(face_id);
  compare.mutable_b()->set_image(ReencodedSample2());
  pb::CompareResponse compared;
  s = Call(&Stub::Compare, "inv", compare, &compared);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(compared.possible_match());
  EXPECT_LT(compared.distance(), compared.threshold());

  pb::GetStatsResponse stats;
  s = Call(&Stub::GetStats, "inv", pb::GetStatsRequest(), &stats);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(stats.index_type(), "IDMap2,Flat");
  EXPECT_FALSE(stats.model_id().empty());
  EXPECT_GE(stats.index_size(), 2);
  // A volunteer sees the counts of its own cases only (its one sighting), no totals.
  s = Call(&Stub::GetStats, "vol", pb::GetStatsRequest(), &stats);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(stats.index_size(), 0);
  for (const pb::KindStats& k : stats.kinds()) {
    EXPECT_EQ(k.indexed_faces(), 0);
    EXPECT_EQ(k.cases(), k.kind() == pb::SIGHTING ? 1 : 0) << k.DebugString();
  }

  pb::GetFaceCropRequest crop_req;
  crop_req.set_face_id(face_id);
  crop_req.set_size(64);
  pb::GetFaceCropResponse crop;
  s = Call(&Stub::GetFaceCrop, "vol", crop_req, &crop);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(crop.png().substr(0, 4), "\x89PNG");
  EXPECT_EQ(crop.case_id(), case_id);
  // A sighting's face: its volunteer and investigators may see it, another volunteer not.
  pb::GetFaceCropRequest sighting_crop = crop_req;
  sighting_crop.set_face_id(sighting_face);
  EXPECT_TRUE(Call(&Stub::GetFaceCrop, "vol", sighting_crop, &crop).ok());
  EXPECT_TRUE(Call(&Stub::GetFaceCrop, "inv", sighting_crop, &crop).ok());
  EXPECT_EQ(Call(&Stub::GetFaceCrop, "vol2", sighting_crop, &crop).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  pb::GetPhotoRequest photo_req;
  photo_req.set_photo_id(photo_id);
  pb::GetPhotoResponse photo;
  s = Call(&Stub::GetPhoto, "inv", photo_req, &photo);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(photo.image(), OneFaceSample2());
  EXPECT_EQ(photo.content_type(), "image/jpeg");

  pb::DeleteCaseRequest del;
  del.set_id(case_id);
  pb::DeleteCaseResponse deleted;
  s = Call(&Stub::DeleteCase, "adm", del, &deleted);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(deleted.photos_deleted(), 1);
  EXPECT_EQ(deleted.faces_deleted(), 1);

  s = Call(&Stub::Search, "inv", by_image, &found);
  ASSERT_TRUE(s.ok()) << s.error_message();
  for (const auto& r : found.results()) {
    for (const auto& c : r.candidates()) EXPECT_NE(c.case_().id(), case_id);
  }
  EXPECT_EQ(Call(&Stub::GetPhoto, "inv", photo_req, &photo).error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(Call(&Stub::Search, "inv", by_face, &found).error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(Call(&Stub::GetFaceCrop, "inv", crop_req, &crop).error_code(), StatusCode::NOT_FOUND);

  // The audit trail names who did what.
  auto audit = server_->server()->gallery()->catalog().ListAudit(0, 10000);
  ASSERT_TRUE(audit.ok()) << audit.status();
  std::map<std::string, std::string> actor_of;
  for (const auto& e : *audit) actor_of[e.action] = e.actor + "/" + e.role;
  EXPECT_EQ(actor_of["SubmitSighting"], "vol/volunteer");
  EXPECT_EQ(actor_of["DeleteCase"], "adm/admin");
  EXPECT_EQ(actor_of["GetPhoto"], "inv/investigator");
  EXPECT_EQ(actor_of["GetFaceCrop"], "inv/investigator");
  EXPECT_EQ(actor_of["CreateCase"], "fam/family");
  EXPECT_NE(actor_of["Search"], "");
}

// Issue 12's scenario: a child registered at 3 in 2010, an adult stranger who looks closer (the
// very photo searched with), and a 2018 sighting of a child aged about 10-12. With the age the
// child ranks first and the adult is left out and counted; without it both are listed.
TEST_F(ServerTest, AgeConsistentSearchLeavesOutTheAdultStranger) {
  auto create = [&](const std::string& name, const std::string& birth) {
    pb::CreateCaseRequest req;
    req.mutable_case_()->set_kind(pb::MISSING);
    req.mutable_case_()->set_display_name(name);
    req.mutable_case_()->set_birth_date(birth);
    pb::Case created;
    grpc::Status s = Call(&Stub::CreateCase, "inv", req, &created);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return created.id();
  };
  auto add = [&](const std::string& case_id, const std::string& image, const std::string& taken) {
    pb::AddPhotoRequest req;
    req.set_case_id(case_id);
    req.set_image(image);
    req.set_taken_on(taken);
    pb::AddPhotoResponse added;
    grpc::Status s = Call(&Stub::AddPhoto, "inv", req, &added);
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(added.faces_size(), 1);
  };
  const std::string child = create("Child registered at 3", "2007-02-01");
  add(child, ReencodedSample2(), "2010-03-01");
  const std::string adult = create("Adult stranger", "1970-01-01");
  add(adult, OneFaceSample2(), "2005-06-01");

  pb::SearchRequest req;
  req.set_image(OneFaceSample2());
  req.add_kinds(pb::MISSING);
  req.set_top_k(5);
  pb::SearchResponse photo_only;
  grpc::Status s = Call(&Stub::Search, "inv", req, &photo_only);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(photo_only.results_size(), 1);
  ASSERT_EQ(photo_only.results(0).candidates_size(), 2);
  EXPECT_EQ(photo_only.results(0).candidates(0).case_().id(), adult);  // it looks closer
  EXPECT_EQ(photo_only.results(0).candidates(1).case_().id(), child);
  EXPECT_EQ(photo_only.results(0).age_left_out_size(), 0);  // no age: nothing left out

  req.mutable_query_age()->set_known(true);
  req.mutable_query_age()->set_min_years(10);
  req.mutable_query_age()->set_max_years(12);
  req.mutable_query_age()->set_estimated(true);
  req.set_query_date("2018-05-01");
  pb::SearchResponse with_age;
  s = Call(&Stub::Search, "inv", req, &with_age);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(with_age.results(0).candidates_size(), 1);
  const pb::Candidate& top = with_age.results(0).candidates(0);
  EXPECT_EQ(top.case_().id(), child);
  EXPECT_TRUE(top.age_consistent());
  ASSERT_TRUE(top.projected_age().known());
  EXPECT_NEAR(top.projected_age().min_years(), 11.2, 0.1);  // born 2007-02, seen 2018-05
  EXPECT_NEAR(top.age_gap().min_years(), 8.2, 0.1);         // the time between the photos
  ASSERT_EQ(with_age.results(0).age_left_out_size(), 1);
  EXPECT_EQ(with_age.results(0).age_left_out(0).reason(), "TIME_ORDER");
  EXPECT_EQ(with_age.results(0).age_left_out(0).count(), 1);
  EXPECT_NE(with_age.results(0).age_left_out(0).message().find("1 case"), std::string::npos);
  EXPECT_TRUE(with_age.results(0).credible_match());

  // An investigator may ask for the inconsistent ones: marked, in distance order.
  req.set_include_age_inconsistent(true);
  pb::SearchResponse all;
  s = Call(&Stub::Search, "inv", req, &all);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(all.results(0).candidates_size(), 2);
  const pb::Candidate& stranger = all.results(0).candidates(0);
  EXPECT_EQ(stranger.case_().id(), adult);
  EXPECT_FALSE(stranger.age_consistent());
  bool marked = false;
  for (const auto& c : stranger.caveats()) marked |= c.code() == "AGE_INCONSISTENT";
  EXPECT_TRUE(marked);
  EXPECT_TRUE(all.results(0).candidates(1).age_consistent());
  // A family may not.
  EXPECT_EQ(Call(&Stub::Search, "fam", req, &all).error_code(), StatusCode::PERMISSION_DENIED);
}

// Several photos of one case: one candidate per case, from its nearest photo.
TEST_F(ServerTest, CandidatesAreCasesNotFaces) {
  pb::CreateCaseRequest create;
  create.mutable_case_()->set_kind(pb::MISSING);
  create.mutable_case_()->set_display_name("Two photos");
  pb::Case created;
  ASSERT_TRUE(Call(&Stub::CreateCase, "inv", create, &created).ok());
  std::string nearest_photo;
  for (const std::string& image : {ReencodedSample2(), OneFaceSample2()}) {
    pb::AddPhotoRequest add;
    add.set_case_id(created.id());
    add.set_image(image);
    pb::AddPhotoResponse added;
    ASSERT_TRUE(Call(&Stub::AddPhoto, "inv", add, &added).ok());
    nearest_photo = added.photo_id();  // the second one is the query's own bytes
  }
  pb::SearchRequest req;
  req.set_image(OneFaceSample2());
  pb::SearchResponse found;
  ASSERT_TRUE(Call(&Stub::Search, "inv", req, &found).ok());
  ASSERT_EQ(found.results(0).candidates_size(), 1);
  EXPECT_EQ(found.results(0).candidates(0).photo_id(), nearest_photo);
  EXPECT_EQ(found.results(0).candidates(0).case_faces_matched(), 2);
}

// A volunteer never sees a row of strangers: below the lead threshold the answer is a sentence.
TEST_F(ServerTest, VolunteerGetsNoCredibleMatchInsteadOfStrangers) {
  MissingCaseWithPhoto("fam");  // sample2's child
  int no_match = 0;
  for (const char* other : {"sample1.jpg", "sample3.jpg", "sample4.jpg"}) {
    pb::SubmitSightingRequest req;
    req.set_image(ReadFileOrDie(DemoDir() + "/" + other));
    req.set_seen_on("2024-05-01");
    pb::SubmitSightingResponse seen;
    grpc::Status s = Call(&Stub::SubmitSighting, "vol", req, &seen);
    ASSERT_TRUE(s.ok()) << s.error_message();
    for (const pb::QueryResult& r : seen.results()) {
      if (r.query_face().face_id().empty()) continue;
      if (r.credible_match()) {
        for (const auto& c : r.candidates()) EXPECT_TRUE(c.above_lead_threshold()) << other;
        continue;
      }
      EXPECT_EQ(r.candidates_size(), 0) << other;
      ++no_match;
      EXPECT_NE(r.message().find("No likely match yet"), std::string::npos) << r.message();
      EXPECT_GT(r.lead_threshold(), 0);
    }
  }
  EXPECT_GE(no_match, 1);  // other children than sample2's: no likely match
  // The investigator searching the same photo gets the ranked list, with the threshold marked.
  pb::SearchRequest search;
  search.set_image(ReadFileOrDie(DemoDir() + "/sample1.jpg"));
  pb::SearchResponse found;
  ASSERT_TRUE(Call(&Stub::Search, "inv", search, &found).ok());
  ASSERT_GE(found.results_size(), 1);
  bool listed = false;
  for (const auto& r : found.results()) {
    EXPECT_GT(r.lead_threshold(), 0);
    for (const auto& c : r.candidates()) {
      listed = true;
      EXPECT_EQ(c.above_lead_threshold(), c.confidence() >= r.lead_threshold());
    }
  }
  EXPECT_TRUE(listed);  // the sample2 case and the sightings are listed for the investigator
}

// GetPhoto checks the caller's right before it reads the photo's bytes: with the file gone, a
// caller without the right is refused (PERMISSION_DENIED), not told that the file is lost.
TEST_F(ServerTest, GetPhotoChecksTheRightBeforeReadingTheBytes) {
  std::string photo_id;
  MissingCaseWithPhoto("fam", &photo_id);
  ASSERT_FALSE(photo_id.empty());
  int64_t id = 0;
  ASSERT_TRUE(absl::SimpleAtoi(photo_id, &id));
  auto info = server_->server()->gallery()->catalog().GetPhotoInfo(id);
  ASSERT_TRUE(info.ok()) << info.status();
  const std::string file = server_->dir() + "/data/photos/" + info->file_name;
  ASSERT_TRUE(std::filesystem::remove(file)) << file;
  pb::GetPhotoRequest req;
  req.set_photo_id(photo_id);
  pb::GetPhotoResponse photo;
  EXPECT_EQ(Call(&Stub::GetPhoto, "fam2", req, &photo).error_code(), StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Call(&Stub::GetPhoto, "vol", req, &photo).error_code(), StatusCode::PERMISSION_DENIED);
  // The owner is told the truth about the lost file.
  EXPECT_EQ(Call(&Stub::GetPhoto, "fam", req, &photo).error_code(), StatusCode::DATA_LOSS);
}

// A request whose string field is not UTF-8 cannot be parsed: INVALID_ARGUMENT with a message
// (gRPC alone answers UNIMPLEMENTED with none). A method the service lacks stays UNIMPLEMENTED.
TEST_F(ServerTest, InvalidUtf8IsInvalidArgumentWithAMessage) {
  auto raw_call = [&](const std::string& method, const std::string& bytes) {
    grpc::GenericStub generic(*channel_);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    ctx.AddMetadata("authorization", "Bearer " + server_->key("inv"));
    grpc::Slice slice(bytes);
    grpc::ByteBuffer request(&slice, 1), response;
    std::promise<grpc::Status> done;
    generic.UnaryCall(&ctx, method, grpc::StubOptions(), &request, &response,
                      [&done](grpc::Status s) { done.set_value(s); });
    return done.get_future().get();
  };
  // GetCaseRequest{id: "\xc3\x28"} and SearchRequest{face_id: "\xff"}: invalid UTF-8.
  for (const auto& [method, bytes] : std::vector<std::pair<std::string, std::string>>{
           {"/homeward.v1.Homeward/GetCase", std::string("\x0a\x02\xc3\x28", 4)},
           {"/homeward.v1.Homeward/Search", std::string("\x12\x01\xff", 3)}}) {
    grpc::Status s = raw_call(method, bytes);
    EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT) << method;
    EXPECT_NE(s.error_message().find("UTF-8"), std::string::npos) << s.error_message();
  }
  // The same call with valid text reaches the handler.
  EXPECT_EQ(raw_call("/homeward.v1.Homeward/GetCase", std::string("\x0a\x03" "999", 5)).error_code(),
            StatusCode::NOT_FOUND);
  EXPECT_EQ(raw_call("/homeward.v1.Homeward/NoSuchMethod", "").error_code(),
            StatusCode::UNIMPLEMENTED);
}

TEST_F(ServerTest, UnknownOrMissingKeysAreUnauthenticated) {
  pb::GetStatsResponse stats;
  EXPECT_EQ(Call(&Stub::GetStats, "", pb::GetStatsRequest(), &stats).error_code(),
            StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Call(&Stub::GetStats, "bogus", pb::GetStatsRequest(), &stats).error_code(),
            StatusCode::UNAUTHENTICATED);
}

TEST_F(ServerTest, EachRoleIsRefusedWhereItMustBe) {
  std::string photo_id;
  auto [case_id, face_id] = MissingCaseWithPhoto("fam", &photo_id);
  ASSERT_FALSE(face_id.empty());
  const auto denied = StatusCode::PERMISSION_DENIED;

  pb::CreateCaseRequest create;
  create.mutable_case_()->set_kind(pb::MISSING);
  create.mutable_case_()->set_display_name("X");
  pb::Case c;
  EXPECT_EQ(Call(&Stub::CreateCase, "vol", create, &c).error_code(), denied);
  create.mutable_case_()->set_kind(pb::FOUND);
  EXPECT_EQ(Call(&Stub::CreateCase, "fam", create, &c).error_code(), denied);
  EXPECT_TRUE(Call(&Stub::CreateCase, "inv", create, &c).ok());

  pb::GetCaseRequest get;
  get.set_id(case_id);
  EXPECT_EQ(Call(&Stub::GetCase, "vol", get, &c).error_code(), denied);
  EXPECT_EQ(Call(&Stub::GetCase, "fam2", get, &c).error_code(), denied);
  ASSERT_TRUE(Call(&Stub::GetCase, "fam", get, &c).ok());
  EXPECT_EQ(c.reporter_contact(), "+1 555 0100");
  EXPECT_EQ(c.photo_count(), 1);
  ASSERT_TRUE(Call(&Stub::GetCase, "inv", get, &c).ok());
  EXPECT_EQ(c.reporter_contact(), "+1 555 0100");

  pb::UpdateCaseRequest update;
  *update.mutable_case_() = c;
  update.mutable_case_()->set_notes("seen near the station");
  EXPECT_EQ(Call(&Stub::UpdateCase, "fam2", update, &c).error_code(), denied);
  ASSERT_TRUE(Call(&Stub::UpdateCase, "fam", update, &c).ok());
  EXPECT_EQ(c.notes(), "seen near the station");

  pb::ListCasesRequest list;
  pb::ListCasesResponse listed;
  ASSERT_TRUE(Call(&Stub::ListCases, "fam2", list, &listed).ok());
  EXPECT_EQ(listed.cases_size(), 0);  // fam2 owns nothing
  ASSERT_TRUE(Call(&Stub::ListCases, "fam", list, &listed).ok());
  for (const auto& lc : listed.cases()) EXPECT_EQ(lc.kind(), pb::MISSING);
  EXPECT_GE(listed.cases_size(), 1);

  pb::AddPhotoRequest add;
  add.set_case_id(case_id);
  add.set_image(OneFaceSample2());
  pb::AddPhotoResponse added;
  EXPECT_EQ(Call(&Stub::AddPhoto, "vol", add, &added).error_code(), denied);
  EXPECT_EQ(Call(&Stub::AddPhoto, "fam2", add, &added).error_code(), denied);

  pb::GetPhotoRequest photo_req;
  photo_req.set_photo_id(photo_id);
  pb::GetPhotoResponse photo;
  EXPECT_EQ(Call(&Stub::GetPhoto, "vol", photo_req, &photo).error_code(), denied);
  EXPECT_EQ(Call(&Stub::GetPhoto, "fam2", photo_req, &photo).error_code(), denied);
  EXPECT_TRUE(Call(&Stub::GetPhoto, "fam", photo_req, &photo).ok());

  pb::SearchRequest by_image;
  by_image.set_image(ReencodedSample2());
  pb::SearchResponse found;
  EXPECT_EQ(Call(&Stub::Search, "vol", by_image, &found).error_code(), denied);
  EXPECT_EQ(Call(&Stub::Search, "fam", by_image, &found).error_code(), denied);
  pb::SearchRequest by_face;
  by_face.set_face_id(face_id);
  EXPECT_EQ(Call(&Stub::Search, "fam2", by_face, &found).error_code(), denied);
  EXPECT_EQ(Call(&Stub::Search, "vol", by_face, &found).error_code(), denied);

  pb::CompareRequest compare;
  compare.mutable_a()->set_face_id(face_id);
  compare.mutable_b()->set_face_id(face_id);
  pb::CompareResponse compared;
  EXPECT_EQ(Call(&Stub::Compare, "vol", compare, &compared).error_code(), denied);
  EXPECT_EQ(Call(&Stub::Compare, "fam", compare, &compared).error_code(), denied);

  // A volunteer searches with its own sighting's face, and sees no names.
  pb::SubmitSightingRequest sighting;
  sighting.set_image(ReencodedSample2());
  pb::SubmitSightingResponse seen;
  ASSERT_TRUE(Call(&Stub::SubmitSighting, "vol2", sighting, &seen).ok());
  ASSERT_EQ(seen.results_size(), 1);
  pb::SearchRequest own;
  own.set_face_id(seen.results(0).query_face().face_id());
  ASSERT_TRUE(Call(&Stub::Search, "vol2", own, &found).ok());
  ASSERT_EQ(found.results_size(), 1);
  ASSERT_GE(found.results(0).candidates_size(), 1);
  for (const auto& cand : found.results(0).candidates()) {
    EXPECT_EQ(cand.case_().display_name(), "");
    EXPECT_EQ(cand.photo_id(), "");
  }
  EXPECT_EQ(Call(&Stub::Search, "vol", own, &found).error_code(), denied);  // not vol's
  own.add_kinds(pb::SIGHTING);
  EXPECT_EQ(Call(&Stub::Search, "vol2", own, &found).error_code(), denied);

  pb::DeleteCaseRequest del;
  del.set_id(case_id);
  pb::DeleteCaseResponse deleted;
  EXPECT_EQ(Call(&Stub::DeleteCase, "vol", del, &deleted).error_code(), denied);
  EXPECT_EQ(Call(&Stub::DeleteCase, "fam2", del, &deleted).error_code(), denied);
  EXPECT_EQ(Call(&Stub::DeleteCase, "inv", del, &deleted).error_code(), denied);
  ASSERT_TRUE(Call(&Stub::DeleteCase, "fam", del, &deleted).ok());  // the owner may
}

TEST_F(ServerTest, BadRequestsGetExactCodes) {
  const auto invalid = StatusCode::INVALID_ARGUMENT;
  pb::SearchRequest search;
  pb::SearchResponse found;
  EXPECT_EQ(Call(&Stub::Search, "inv", search, &found).error_code(), invalid);  // no query
  search.set_image("");
  EXPECT_EQ(Call(&Stub::Search, "inv", search, &found).error_code(), invalid);  // empty image
  search.set_image("this is not a photo at all, just some garbage bytes");
  EXPECT_EQ(Call(&Stub::Search, "inv", search, &found).error_code(), invalid);
  search.set_image(ReencodedSample2());
  search.set_top_k(1000);
  EXPECT_EQ(Call(&Stub::Search, "inv", search, &found).error_code(), invalid);
  search.set_top_k(-1);
  EXPECT_EQ(Call(&Stub::Search, "inv", search, &found).error_code(), invalid);
  search.set_top_k(5);
  search.set_min_score(1.5);
  EXPECT_EQ(Call(&Stub::Search, "inv", search, &found).error_code(), invalid);
  search.set_min_score(0);
  search.mutable_filter()->set_date_from("2024-13-01");
  EXPECT_EQ(Call(&Stub::Search, "inv", search, &found).error_code(), invalid);
  search.clear_filter();
  search.set_face_id("12abc");
  EXPECT_EQ(Call(&Stub::Search, "inv", search, &found).error_code(), invalid);
  search.set_face_id("987654321");
  EXPECT_EQ(Call(&Stub::Search, "inv", search, &found).error_code(), StatusCode::NOT_FOUND);

  pb::ListCasesRequest list;
  list.set_page_size(-1);
  pb::ListCasesResponse listed;
  EXPECT_EQ(Call(&Stub::ListCases, "inv", list, &listed).error_code(), invalid);
  list.set_page_size(1001);
  EXPECT_EQ(Call(&Stub::ListCases, "inv", list, &listed).error_code(), invalid);

  pb::GetCaseRequest get;
  pb::Case c;
  for (const char* id : {"", "abc", "-5", "+5", " 5", "05", "99999999999999999999"}) {
    get.set_id(id);
    EXPECT_EQ(Call(&Stub::GetCase, "inv", get, &c).error_code(), invalid) << id;
  }
  get.set_id("987654321");
  EXPECT_EQ(Call(&Stub::GetCase, "inv", get, &c).error_code(), StatusCode::NOT_FOUND);

  pb::GetFaceCropRequest crop;
  crop.set_face_id("1");
  crop.set_size(10);
  pb::GetFaceCropResponse cropped;
  EXPECT_EQ(Call(&Stub::GetFaceCrop, "inv", crop, &cropped).error_code(), invalid);

  pb::CreateCaseRequest create;
  create.mutable_case_()->set_kind(pb::MISSING);
  EXPECT_EQ(Call(&Stub::CreateCase, "inv", create, &c).error_code(), invalid);  // no name
  create.mutable_case_()->set_display_name("Y");
  create.mutable_case_()->set_birth_date("2020-02-30");
  EXPECT_EQ(Call(&Stub::CreateCase, "inv", create, &c).error_code(), invalid);
  create.mutable_case_()->set_birth_date("");
  create.mutable_case_()->set_kind(pb::SIGHTING);
  EXPECT_EQ(Call(&Stub::CreateCase, "inv", create, &c).error_code(), invalid);

  pb::AddPhotoRequest add;
  add.set_case_id("987654321");
  pb::AddPhotoResponse added;
  EXPECT_EQ(Call(&Stub::AddPhoto, "inv", add, &added).error_code(), invalid);  // no image
  add.set_image("garbage");
  EXPECT_EQ(Call(&Stub::AddPhoto, "inv", add, &added).error_code(), StatusCode::NOT_FOUND);

  pb::SubmitSightingRequest sighting;
  pb::SubmitSightingResponse seen;
  EXPECT_EQ(Call(&Stub::SubmitSighting, "vol", sighting, &seen).error_code(), invalid);
  sighting.set_image("\xff\xd8\xff garbage that claims to be a JPEG");
  EXPECT_EQ(Call(&Stub::SubmitSighting, "vol", sighting, &seen).error_code(), invalid);

  // A message over --max-request-bytes is refused by gRPC itself.
  sighting.set_image(std::string(kMaxRequestBytes + 1024, 'x'));
  EXPECT_EQ(Call(&Stub::SubmitSighting, "vol", sighting, &seen).error_code(),
            StatusCode::RESOURCE_EXHAUSTED);
}

TEST_F(ServerTest, ExpiredDeadlineIsNotServed) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() - std::chrono::seconds(1));
  ctx.AddMetadata("authorization", "Bearer " + server_->key("inv"));
  pb::GetStatsResponse stats;
  EXPECT_EQ(stub_->GetStats(&ctx, pb::GetStatsRequest(), &stats).error_code(),
            StatusCode::DEADLINE_EXCEEDED);
}

// A volunteer's thumbnail grants are kept in the catalog with their expiry: after a restart
// (a deploy) the crops of the candidates it was shown still open, and only those.
TEST(ServerRestart, VolunteerCandidateGrantsSurviveARestart) {
  auto created_server = TestServer::Create(
      "hw_server_", {{"vol", Role::kVolunteer}, {"vol2", Role::kVolunteer}, {"fam", Role::kFamily}});
  ASSERT_TRUE(created_server.ok()) << created_server.status();
  TestServer& server = **created_server;
  server.config.workers = 1;
  auto call = [&](const std::string& who, auto method, const auto& req, auto* resp) {
    return CallRpc(*server.NewStub(), method, server.key(who), req, resp, std::chrono::seconds(60));
  };
  std::string face_id;
  {
    absl::Status started = server.Start();
    ASSERT_TRUE(started.ok()) << started;
    pb::CreateCaseRequest create;
    create.mutable_case_()->set_kind(pb::MISSING);
    create.mutable_case_()->set_display_name("Grant Child");
    pb::Case created;
    ASSERT_TRUE(call("fam", &Stub::CreateCase, create, &created).ok());
    pb::AddPhotoRequest add;
    add.set_case_id(created.id());
    add.set_image(OneFaceSample2());
    pb::AddPhotoResponse added;
    ASSERT_TRUE(call("fam", &Stub::AddPhoto, add, &added).ok());
    ASSERT_EQ(added.faces_size(), 1);
    face_id = added.faces(0).face_id();
    pb::SubmitSightingRequest sighting;
    sighting.set_image(ReencodedSample2());
    pb::SubmitSightingResponse seen;
    grpc::Status s = call("vol", &Stub::SubmitSighting, sighting, &seen);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_EQ(seen.results_size(), 1);
    ASSERT_GE(seen.results(0).candidates_size(), 1);
    ASSERT_EQ(seen.results(0).candidates(0).face_id(), face_id);
    pb::GetFaceCropRequest crop;
    crop.set_face_id(face_id);
    pb::GetFaceCropResponse png;
    EXPECT_TRUE(call("vol", &Stub::GetFaceCrop, crop, &png).ok());
    server.Stop();  // the server stops here
  }
  absl::Status restarted = server.Start();
  ASSERT_TRUE(restarted.ok()) << restarted;
  pb::GetFaceCropRequest crop;
  crop.set_face_id(face_id);
  pb::GetFaceCropResponse png;
  grpc::Status s = call("vol", &Stub::GetFaceCrop, crop, &png);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(png.png().substr(0, 4), "\x89PNG");
  EXPECT_EQ(call("vol2", &Stub::GetFaceCrop, crop, &png).error_code(),
            StatusCode::PERMISSION_DENIED);
}

TEST(ServerConfig, InsecureDevOnlyOnLoopback) {
  ServerConfig c;
  c.insecure_dev = true;
  for (const char* ok : {"127.0.0.1:0", "localhost:5000", "[::1]:5000", "127.1.2.3:1"}) {
    c.listen = ok;
    EXPECT_TRUE(ValidateConfig(c).ok()) << ok;
  }
  for (const char* bad : {"0.0.0.0:5000", "[::]:5000", "10.0.0.1:5000", "example.org:5000"}) {
    c.listen = bad;
    EXPECT_EQ(ValidateConfig(c).code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  c.insecure_dev = false;
  c.listen = "0.0.0.0:5000";
  EXPECT_EQ(ValidateConfig(c).code(), absl::StatusCode::kInvalidArgument);  // no keys file
  c.api_keys_file = "keys.jsonl";
  EXPECT_TRUE(ValidateConfig(c).ok());
  c.tls_cert = "cert.pem";
  EXPECT_EQ(ValidateConfig(c).code(), absl::StatusCode::kInvalidArgument);  // half a pair
}

TEST(ServerConfig, FollowMsIsOffDefaultOrAPeriod) {
  ServerConfig c;
  c.insecure_dev = true;
  c.listen = "127.0.0.1:0";
  for (int ok : {-1, 0, 500, 3600000}) {
    c.follow_ms = ok;
    EXPECT_TRUE(ValidateConfig(c).ok()) << ok;
  }
  for (int bad : {-2, 3600001}) {
    c.follow_ms = bad;
    EXPECT_EQ(ValidateConfig(c).code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(ServerKeys, MalformedKeyFilesAreRefusedWithTheLine) {
  std::string dir = MakeTempDir();
  std::string path = dir + "/keys.jsonl";
  FILE* f = fopen(path.c_str(), "w");
  fputs("# comment\n{\"key_id\":\"a\",\"role\":\"wizard\",\"key_sha256\":\"00\"}\n", f);
  fclose(f);
  auto keys = KeyStore::Load(path);
  EXPECT_EQ(keys.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(keys.status().message().find(":2:"), std::string::npos) << keys.status();
  EXPECT_EQ(KeyStore::Load(dir + "/absent").status().code(), absl::StatusCode::kNotFound);
  auto key = AddKey(dir + "/new.jsonl", "ok-id", Role::kFamily);
  ASSERT_TRUE(key.ok()) << key.status();
  auto loaded = KeyStore::Load(dir + "/new.jsonl");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  auto caller = loaded->Authenticate(*key);
  ASSERT_TRUE(caller.ok());
  EXPECT_EQ(caller->key_id, "ok-id");
  EXPECT_EQ(caller->role, Role::kFamily);
  EXPECT_EQ(AddKey(dir + "/new.jsonl", "ok-id", Role::kAdmin).status().code(),
            absl::StatusCode::kInvalidArgument);  // repeated id
  std::filesystem::remove_all(dir);
}

TEST(ServerStatus, CodesMatchOneToOne) {
  for (int code = 0; code <= 16; ++code) {
    grpc::Status s = internal::ToGrpcStatus(
        absl::Status(static_cast<absl::StatusCode>(code), code == 0 ? "" : "why"));
    EXPECT_EQ(static_cast<int>(s.error_code()), code);
  }
}

// The binary: prints one `listening on` line, serves in --insecure-dev, stops on SIGTERM.
TEST(ServerBinary, ListensThenStopsCleanlyOnSigterm) {
  std::string dir = MakeTempDir();
  ServerProcess server(HOMEWARD_SERVER_BINARY, dir);
  ServerOptions options;
  options.insecure_dev = true;
  options.flags = {"--workers", "1"};
  std::string error;
  ASSERT_TRUE(server.Start(options, &error)) << error;
  const std::string out = ReadWholeFile(server.out_path());
  ASSERT_EQ(out.rfind("listening on 127.0.0.1:", 0), 0u) << out;
  std::string address = server.address();

  auto stub =
      pb::Homeward::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;  // no key: --insecure-dev makes the caller admin "dev"
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  pb::GetStatsResponse stats;
  grpc::Status s = stub->GetStats(&ctx, pb::GetStatsRequest(), &stats);
  EXPECT_TRUE(s.ok()) << s.error_message();
  stub.reset();  // an idle client connection would only delay the server's exit

  EXPECT_EQ(server.Stop(), 0);  // SIGTERM: exited, with code 0
  std::filesystem::remove_all(dir);
}


// Issue 13: a face turned beyond what the descriptor reads reliably is found by the CNN, stored
// as evidence with a NON_FRONTAL verdict and searchable; HOG finds no face in the same photo.
// person-child.jpg (HOMEWARD_SHARED_DATA): a toddler turned about 46 degrees.
class ServerDetectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    photo_ = homeward::testing::SharedDataDir() + "/faces-small/Vrooli_unsplash/person-child.jpg";
    if (!std::filesystem::exists(photo_)) GTEST_SKIP() << photo_ << " absent (HOMEWARD_SHARED_DATA)";
  }

  // A server with `detector` ("cnn" or "hog"); its stub; keys "vol" and "inv".
  void StartServer(const std::string& detector) {
    stub_.reset();
    auto server = TestServer::Create("hw_detector_", {{"vol", Role::kVolunteer},
                                                      {"inv", Role::kInvestigator}});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    server_->config.detector = detector;
    absl::Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started;
    stub_ = server_->NewStub();
  }

  template <typename Req, typename Resp>
  grpc::Status Call(Rpc<Req, Resp> method, const std::string& who, const Req& req, Resp* resp) {
    return CallRpc(*stub_, method, server_->key(who), req, resp, std::chrono::seconds(60));
  }

  std::string photo_;
  std::unique_ptr<TestServer> server_;
  std::unique_ptr<pb::Homeward::Stub> stub_;
};

const pb::Caveat* FindCaveat(const google::protobuf::RepeatedPtrField<pb::Caveat>& caveats,
                             const std::string& code) {
  for (const pb::Caveat& c : caveats) {
    if (c.code() == code) return &c;
  }
  return nullptr;
}

TEST_F(ServerDetectorTest, CnnStoresTheTurnedToddlerAsEvidence) {
  StartServer("cnn");
  pb::SubmitSightingRequest req;
  req.set_image(ReadFileOrDie(photo_));
  req.set_seen_on("2024-05-01");
  pb::SubmitSightingResponse seen;
  grpc::Status s = Call(&Stub::SubmitSighting, "vol", req, &seen);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_FALSE(seen.case_id().empty());
  EXPECT_FALSE(seen.photo_id().empty());
  EXPECT_EQ(seen.no_face_reason(), "");
  ASSERT_EQ(seen.results_size(), 1);
  const pb::DetectedFace& face = seen.results(0).query_face();
  EXPECT_TRUE(face.stored());
  EXPECT_FALSE(face.face_id().empty());
  EXPECT_EQ(face.not_stored_reason(), "");
  // With the fitted box map the toddler's turn reads ~33 degrees: past the NON_FRONTAL caveat
  // (25) and within the usable limit (40). Either way the face is kept, and the flag and the
  // verdict agree with the yaw.
  const bool turned_far = std::abs(face.quality().yaw_degrees()) > 40;
  EXPECT_GT(std::abs(face.quality().yaw_degrees()), 25);
  EXPECT_EQ(face.quality().non_frontal(), turned_far);
  EXPECT_EQ(face.quality().usable(), !turned_far);
  EXPECT_GE(face.quality().face_width_px(), 40);
  if (turned_far) {
    EXPECT_NE(face.quality().reason().find("from the front"), std::string::npos);
  }

  // Searchable: the investigator's search of the same photo among sightings finds it, with
  // the caveats that say the score is to be treated with caution and what photo to ask for.
  pb::SearchRequest search;
  search.set_image(ReadFileOrDie(photo_));
  search.add_kinds(pb::SIGHTING);
  pb::SearchResponse found;
  s = Call(&Stub::Search, "inv", search, &found);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(found.results_size(), 1);
  EXPECT_EQ(found.results(0).query_face().quality().non_frontal(), turned_far);
  ASSERT_GE(found.results(0).candidates_size(), 1);
  const pb::Candidate& c = found.results(0).candidates(0);
  EXPECT_EQ(c.case_().id(), seen.case_id());
  EXPECT_EQ(c.face_id(), face.face_id());
  EXPECT_LT(c.distance(), 0.05);  // the same photo
  if (turned_far) {
    const pb::Caveat* low = FindCaveat(c.caveats(), "LOW_QUALITY_FACE");
    ASSERT_NE(low, nullptr);
    EXPECT_NE(low->message().find("frontal photo"), std::string::npos) << low->message();
  }
  const pb::Caveat* turned = FindCaveat(c.caveats(), "NON_FRONTAL");
  ASSERT_NE(turned, nullptr);
  EXPECT_NE(turned->message().find("compare with a frontal photo"), std::string::npos)
      << turned->message();

  // Searched by its id, the stored face still says it is turned.
  pb::SearchRequest by_id;
  by_id.set_face_id(face.face_id());
  pb::SearchResponse again;
  s = Call(&Stub::Search, "inv", by_id, &again);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(again.results_size(), 1);
  EXPECT_EQ(again.results(0).query_face().quality().non_frontal(), turned_far);
}

TEST_F(ServerDetectorTest, HogFindsNoFaceAndSaysWhy) {
  StartServer("hog");
  pb::SubmitSightingRequest req;
  req.set_image(ReadFileOrDie(photo_));
  pb::SubmitSightingResponse seen;
  grpc::Status s = Call(&Stub::SubmitSighting, "vol", req, &seen);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(seen.results_size(), 0);
  EXPECT_EQ(seen.case_id(), "");  // nothing stored
  EXPECT_NE(seen.no_face_reason().find("no face found"), std::string::npos)
      << seen.no_face_reason();
  EXPECT_NE(seen.no_face_reason().find("turned"), std::string::npos) << seen.no_face_reason();
}

// `--detector` takes cnn or hog; anything else stops the binary with one line and exit 1,
// before anything is loaded.
TEST(ServerBinary, RefusesAnUnknownDetectorInOneLine) {
  std::string dir = MakeTempDir();
  std::string out, err;
  const int rc = homeward::testing::RunCommand(
      {HOMEWARD_SERVER_BINARY, "--insecure-dev", "--listen", "127.0.0.1:0", "--data-dir",
       dir + "/data", "--detector", "foo"},
      &out, &err);
  EXPECT_EQ(rc, 1) << err;
  EXPECT_EQ(out, "");
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_NE(err.find("cannot start: INVALID_ARGUMENT: --detector \"foo\""), std::string::npos)
      << err;
  EXPECT_NE(err.find("cnn"), std::string::npos) << err;
  EXPECT_NE(err.find("hog"), std::string::npos) << err;
  std::filesystem::remove_all(dir);
}

// A FaceBoxes model that was asked for and is missing stops the start (no silent fall back to
// HOG), with a message naming the file, the flag and the two ways out.
TEST(ServerBinary, MissingFaceDetectorModelStopsTheStart) {
  const std::string missing = "/nonexistent/faceboxes.onnx";
  for (const std::vector<std::string>& flags :
       {std::vector<std::string>{"--detector", "cnn", "--face-detector-model", missing},
        std::vector<std::string>{"--face-detector-model", missing}}) {
    std::string dir = MakeTempDir();
    std::vector<std::string> argv = {HOMEWARD_SERVER_BINARY, "--insecure-dev", "--listen",
                                     "127.0.0.1:0", "--data-dir", dir + "/data"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    std::string out, err;
    const int rc = homeward::testing::RunCommand(argv, &out, &err);
    EXPECT_EQ(rc, 1) << err;
    EXPECT_EQ(out.find("listening on"), std::string::npos) << out;
    const size_t line = err.find("cannot start: NOT_FOUND:");
    ASSERT_NE(line, std::string::npos) << err;
    const std::string message = err.substr(line, err.find('\n', line) - line);
    EXPECT_NE(message.find(missing), std::string::npos) << message;
    EXPECT_NE(message.find("--face-detector-model"), std::string::npos) << message;
    EXPECT_NE(message.find("--detector hog"), std::string::npos) << message;
    std::filesystem::remove_all(dir);
  }
}

}  // namespace
}  // namespace homeward::server
