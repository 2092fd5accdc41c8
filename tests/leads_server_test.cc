// The leads RPCs on a real homeward-server (free loopback port, temp data dir, real models):
// who may call them, what a lead carries, and that a review is audited with the reviewer.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <opencv2/imgproc.hpp>
#include <string>

#include "gallery/gallery.h"
#include "homeward/v1/homeward.grpc.pb.h"
#include "server/auth.h"
#include "server/config.h"
#include "server/server.h"
#include "tests/embed_test_util.h"
#include "tests/rpc_call.h"
#include "tests/test_server.h"

namespace homeward::server {
namespace {

namespace pb = ::homeward::v1;
using grpc::StatusCode;
using homeward::testing::CallRpc;
using homeward::testing::DecodeBgr;
using homeward::testing::DemoDir;
using homeward::testing::EncodeJpeg;
using homeward::testing::OneFaceSample2;
using homeward::testing::ReadFileOrDie;
using homeward::testing::Rpc;
using homeward::testing::TestServer;

class LeadsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = TestServer::Create("hw_leads_srv_", {{"vol", Role::kVolunteer},
                                                       {"fam", Role::kFamily},
                                                       {"inv", Role::kInvestigator},
                                                       {"adm", Role::kAdmin}});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    server_->config.calibration = "none";  // confidence = score: this test is about the RPCs
    absl::Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started;
    stub_ = server_->NewStub();
  }
  void TearDown() override {
    stub_.reset();
    server_.reset();
  }

  template <typename Req, typename Resp>
  grpc::Status Call(Rpc<Req, Resp> method, const std::string& who, const Req& req, Resp* resp) {
    return CallRpc(*stub_, method, server_->key(who), req, resp, std::chrono::seconds(60));
  }

  std::unique_ptr<TestServer> server_;
  std::unique_ptr<pb::Homeward::Stub> stub_;
};

TEST_F(LeadsServerTest, InvestigatorsReviewTheLeadOfASightingOthersAreDenied) {
  // A family registers its child; a volunteer photographs the same child (other bytes).
  pb::CreateCaseRequest create;
  create.mutable_case_()->set_kind(pb::MISSING);
  create.mutable_case_()->set_display_name("Test Child");
  create.mutable_case_()->set_place("Springfield");
  pb::Case missing;
  ASSERT_TRUE(Call(&pb::Homeward::Stub::CreateCase, "fam", create, &missing).ok());
  pb::AddPhotoRequest add;
  add.set_case_id(missing.id());
  add.set_image(OneFaceSample2());
  add.mutable_age()->set_known(true);
  add.mutable_age()->set_min_years(7);
  add.mutable_age()->set_max_years(7);
  pb::AddPhotoResponse added;
  grpc::Status s = Call(&pb::Homeward::Stub::AddPhoto, "fam", add, &added);
  ASSERT_TRUE(s.ok()) << s.error_message();
  cv::Mat img = DecodeBgr(add.image());
  const int dx = img.cols * 8 / 100, dy = img.rows * 8 / 100;
  pb::SubmitSightingRequest sight;
  sight.set_image(
      EncodeJpeg(img(cv::Rect(dx, dy, img.cols - 2 * dx, img.rows - 2 * dy)).clone(), 85));
  sight.set_place("Shelbyville");
  pb::SubmitSightingResponse sighting;
  s = Call(&pb::Homeward::Stub::SubmitSighting, "vol", sight, &sighting);
  ASSERT_TRUE(s.ok()) << s.error_message();

  pb::ListLeadsRequest list;
  pb::ListLeadsResponse leads;
  for (const char* who : {"vol", "fam"}) {
    EXPECT_EQ(Call(&pb::Homeward::Stub::ListLeads, who, list, &leads).error_code(),
              StatusCode::PERMISSION_DENIED)
        << who;
  }
  s = Call(&pb::Homeward::Stub::ListLeads, "inv", list, &leads);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(leads.leads_size(), 1);
  const pb::Lead& lead = leads.leads(0);
  EXPECT_EQ(lead.case_a_id(), missing.id());
  EXPECT_EQ(lead.case_b_id(), sighting.case_id());
  EXPECT_EQ(lead.a().case_().display_name(), "Test Child");
  EXPECT_EQ(lead.a().face_id(), added.faces(0).face_id());
  EXPECT_EQ(lead.b().photo_id(), sighting.photo_id());
  EXPECT_EQ(lead.status(), pb::LEAD_OPEN);
  EXPECT_GT(lead.confidence(), 0.5f);
  EXPECT_EQ(lead.sighting_cluster_case_ids_size(), 1);
  EXPECT_FALSE(lead.caveats().empty());

  pb::GetLeadRequest get;
  get.set_id(lead.id());
  pb::Lead got;
  EXPECT_EQ(Call(&pb::Homeward::Stub::GetLead, "vol", get, &got).error_code(),
            StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(Call(&pb::Homeward::Stub::GetLead, "adm", get, &got).ok());
  EXPECT_EQ(got.evidence_size(), 1);
  get.set_id("0042x");
  EXPECT_EQ(Call(&pb::Homeward::Stub::GetLead, "inv", get, &got).error_code(),
            StatusCode::INVALID_ARGUMENT);
  get.set_id("999999");
  EXPECT_EQ(Call(&pb::Homeward::Stub::GetLead, "inv", get, &got).error_code(),
            StatusCode::NOT_FOUND);

  pb::ReviewLeadRequest review;
  review.set_id(lead.id());
  review.set_decision(pb::LEAD_CONFIRMED_FOR_DNA);
  review.set_note("same birthmark");
  pb::Lead reviewed;
  EXPECT_EQ(Call(&pb::Homeward::Stub::ReviewLead, "fam", review, &reviewed).error_code(),
            StatusCode::PERMISSION_DENIED);
  review.set_decision(pb::LEAD_OPEN);
  EXPECT_EQ(Call(&pb::Homeward::Stub::ReviewLead, "inv", review, &reviewed).error_code(),
            StatusCode::INVALID_ARGUMENT);
  review.set_decision(pb::LEAD_CONFIRMED_FOR_DNA);
  s = Call(&pb::Homeward::Stub::ReviewLead, "inv", review, &reviewed);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(reviewed.status(), pb::LEAD_CONFIRMED_FOR_DNA);
  ASSERT_EQ(reviewed.reviews_size(), 1);
  EXPECT_EQ(reviewed.reviews(0).reviewer(), "inv");
  EXPECT_EQ(reviewed.reviews(0).note(), "same birthmark");

  int64_t lead_id = std::stoll(lead.id());
  auto audit = server_->server()->gallery()->catalog().ListAudit(0, 1000, "lead", lead_id);
  ASSERT_TRUE(audit.ok());
  int reviews = 0;
  for (const store::AuditEntry& e : *audit) {
    if (e.action == "ReviewLead") {
      ++reviews;
      EXPECT_EQ(e.actor, "inv");
      EXPECT_EQ(e.role, "investigator");
      EXPECT_EQ(e.detail, "decision=confirmed_for_dna");
    }
  }
  EXPECT_EQ(reviews, 1);
}

}  // namespace
}  // namespace homeward::server
