// Leads end to end on real FG-NET photos (../shared/data/fgnet-dev), through the gallery: a
// child registered as MISSING at a young age, a later photo of the same child among other
// volunteers' sightings, the lead that cross-matching proposes, its review and its
// suppression. Skipped when ../shared/data is absent.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gallery/gallery.h"
#include "tests/embed_test_util.h"

namespace homeward::gallery {
namespace {

namespace fs = std::filesystem;
using ::homeward::testing::ReadFileOrDie;
using ::homeward::testing::SharedDataDir;
using store::CaseKind;

std::string FgnetDir() { return SharedDataDir() + "/fgnet-dev"; }

// The photos the test uses (FG-NET subject, age in years).
// Subject 010 at 4 and at 12 are 0.47 apart (score 0.61) with the face-api ResNet.
constexpr char kYoungPhoto[] = "010A04.JPG";  // the MISSING registration, at 4
constexpr double kYoungAge = 4;
constexpr char kLaterPhoto[] = "010A12.JPG";  // a volunteer's sighting, at 12
constexpr double kLaterAge = 12;
constexpr const char* kOtherChildren[] = {"024A10.JPG", "020A11.JPG", "031A12.JPG"};

class LeadsE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(FgnetDir() + "/index.csv")) GTEST_SKIP() << "../shared/data absent";
    dir_ = fs::temp_directory_path() /
           ("hw_leads_e2e_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    GalleryOptions o;
    o.data_dir = dir_.string();
    o.pipeline.recognition_model_path = ::homeward::testing::RecognitionModelPath();
    o.lead_min_confidence = 0.5;
    auto g = Gallery::Open(o);
    ASSERT_TRUE(g.ok()) << g.status();
    gallery_ = std::move(*g);
  }
  void TearDown() override {
    gallery_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  static std::string Photo(const std::string& file) {
    return ReadFileOrDie(FgnetDir() + "/images/" + file);
  }

  int64_t RegisterMissing(const std::string& file, double age) {
    store::Case c;
    c.kind = CaseKind::kMissing;
    c.display_name = "Missing child";
    c.place = "Lagos";
    c.event_date = "2010-05-01";
    auto id = gallery_->catalog().AddCase(c);
    EXPECT_TRUE(id.ok()) << id.status();
    PhotoInput in;
    in.case_id = *id;
    in.bytes = Photo(file);
    in.age = AgeInfo{age, age, false};
    in.source = "family";
    auto added = gallery_->AddPhoto(in);
    EXPECT_TRUE(added.ok()) << added.status();
    EXPECT_EQ(added->faces.size(), 1u);
    return *id;
  }

  int64_t Sight(const std::string& file, double age_min, double age_max) {
    SightingInput in;
    in.bytes = Photo(file);
    in.seen_on = "2015-06-01";
    in.place = "Accra";
    in.estimated_age = AgeInfo{age_min, age_max, true};
    in.reporter_key_id = "volunteer-1";
    auto out = gallery_->SubmitSighting(in);
    EXPECT_TRUE(out.ok()) << out.status();
    EXPECT_GT(out->case_id, 0) << file << ": " << out->no_face_reason;
    return out->case_id;
  }

  // The lead joining the two cases, if any.
  std::optional<LeadView> LeadBetween(int64_t x, int64_t y,
                                      std::optional<store::LeadStatus> status = {}) {
    store::LeadQuery q;
    q.status = status;
    q.page_size = 1000;
    auto page = gallery_->ListLeads(q);
    EXPECT_TRUE(page.ok()) << page.status();
    for (const LeadView& v : page->leads) {
      if (v.lead.case_a == std::min(x, y) && v.lead.case_b == std::max(x, y)) return v;
    }
    return std::nullopt;
  }

  static std::set<std::string> Codes(const LeadView& v) {
    std::set<std::string> codes;
    for (const Caveat& c : v.caveats) codes.insert(c.code);
    return codes;
  }

  fs::path dir_;
  std::unique_ptr<Gallery> gallery_;
};

TEST_F(LeadsE2eTest, LaterSightingOfARegisteredChildIsALeadAndARejectionSticks) {
  const int64_t before = Sight(kOtherChildren[0], 8, 10);
  const int64_t missing = RegisterMissing(kYoungPhoto, kYoungAge);
  const int64_t seen = Sight(kLaterPhoto, kLaterAge - 1, kLaterAge + 1);
  const int64_t after1 = Sight(kOtherChildren[1], 9, 11);
  const int64_t after2 = Sight(kOtherChildren[2], 10, 12);
  ASSERT_GT(missing, 0);
  ASSERT_GT(seen, 0);

  std::optional<LeadView> lead = LeadBetween(missing, seen);
  ASSERT_TRUE(lead.has_value()) << "no lead between the registration and the later sighting";
  EXPECT_EQ(lead->lead.status, store::LeadStatus::kOpen);
  EXPECT_GE(lead->lead.confidence, 0.5);
  EXPECT_EQ(lead->a.face.case_id, missing);
  EXPECT_EQ(lead->b.face.case_id, seen);
  EXPECT_GT(lead->a.face.photo_id, 0);
  EXPECT_GT(lead->b.face.photo_id, 0);
  // Ages 4 (exact) and 11-13 (a volunteer's estimate): a 7-9 year gap, estimated.
  ASSERT_TRUE(lead->age_gap.known);
  EXPECT_DOUBLE_EQ(lead->age_gap.min, kLaterAge - 1 - kYoungAge);
  EXPECT_DOUBLE_EQ(lead->age_gap.max, kLaterAge + 1 - kYoungAge);
  EXPECT_TRUE(lead->age_gap.estimated);
  const std::set<std::string> codes = Codes(*lead);
  EXPECT_TRUE(codes.count("ESTIMATED_AGE"));
  EXPECT_TRUE(codes.count("YOUNG_CHILD"));
  EXPECT_TRUE(codes.count("LARGE_AGE_GAP"));
  EXPECT_TRUE(codes.count("DNA_CONFIRMATION_REQUIRED"));
  EXPECT_EQ(lead->sighting_cluster_case_ids, std::vector<int64_t>{seen});
  ASSERT_EQ(lead->lead.evidence.size(), 0u);  // ListLeads leaves the history to GetLead
  auto full = gallery_->GetLead(lead->lead.id);
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_EQ(full->lead.evidence.size(), 1u);
  // Another child may look alike (young children often do), but ranks below the true one.
  for (int64_t other : {before, after1, after2}) {
    std::optional<LeadView> wrong = LeadBetween(missing, other);
    if (wrong.has_value()) {
      EXPECT_LT(wrong->lead.confidence, lead->lead.confidence);
    }
  }

  // The review is recorded and audited.
  auto reviewed = gallery_->ReviewLead(lead->lead.id, store::LeadStatus::kRejected,
                                       "different ears", "inv-1", "investigator");
  ASSERT_TRUE(reviewed.ok()) << reviewed.status();
  EXPECT_EQ(reviewed->lead.status, store::LeadStatus::kRejected);
  ASSERT_EQ(reviewed->lead.reviews.size(), 1u);
  EXPECT_EQ(reviewed->lead.reviews[0].reviewer, "inv-1");
  auto audit = gallery_->catalog().ListAudit(0, 100, "lead", lead->lead.id);
  ASSERT_TRUE(audit.ok());
  ASSERT_EQ(audit->size(), 1u);
  EXPECT_EQ((*audit)[0].actor, "inv-1");
  EXPECT_EQ((*audit)[0].action, "ReviewLead");
  EXPECT_EQ((*audit)[0].detail, "decision=rejected");

  // The same street photo submitted again: a new sighting case, clustered with the first,
  // and no new proposal for this child.
  const int64_t again = Sight(kLaterPhoto, kLaterAge - 1, kLaterAge + 1);
  ASSERT_GT(again, 0);
  EXPECT_FALSE(LeadBetween(missing, again).has_value());
  store::LeadQuery open;
  open.status = store::LeadStatus::kOpen;
  auto open_leads = gallery_->ListLeads(open);
  ASSERT_TRUE(open_leads.ok());
  for (const LeadView& v : open_leads->leads) {
    EXPECT_FALSE(v.lead.case_a == missing && (v.lead.case_b == seen || v.lead.case_b == again))
        << "lead " << v.lead.id;
  }
  auto after = gallery_->GetLead(lead->lead.id);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->lead.status, store::LeadStatus::kRejected);
  EXPECT_EQ(after->sighting_cluster_case_ids, (std::vector<int64_t>{seen, again}));

  // Deleting the missing case deletes its leads.
  ASSERT_TRUE(gallery_->DeleteCase(missing).ok());
  EXPECT_EQ(gallery_->GetLead(lead->lead.id).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(LeadsE2eTest, PastSightingSurfacesWhenTheChildIsRegistered) {
  const int64_t seen = Sight(kLaterPhoto, kLaterAge, kLaterAge);
  EXPECT_FALSE(gallery_->ListLeads({}).value().leads.size() > 0);
  const int64_t missing = RegisterMissing(kYoungPhoto, kYoungAge);
  std::optional<LeadView> lead = LeadBetween(missing, seen);
  ASSERT_TRUE(lead.has_value());
  EXPECT_EQ(lead->lead.status, store::LeadStatus::kOpen);
  EXPECT_DOUBLE_EQ(lead->age_gap.min, kLaterAge - kYoungAge);
}

}  // namespace
}  // namespace homeward::gallery
