// The catalog's leads, reviews and sighting clusters (schema version 3), on a real SQLite file.
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/catalog.h"
#include "store/internal/schema.h"

namespace homeward::store {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

int64_t RawInt(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  sqlite3_open(db_path.c_str(), &db);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr);
  int64_t v = -1;
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

class CatalogLeadsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() /
            ("hw_leads_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    fs::remove_all(dir_);
    Open();
  }
  void TearDown() override {
    catalog_.reset();
    fs::remove_all(dir_);
  }
  void Open() {
    catalog_.reset();
    auto c = Catalog::Open(dir_);
    ASSERT_TRUE(c.ok()) << c.status();
    catalog_ = std::move(*c);
  }
  int64_t NewCase(CaseKind kind, const std::string& place = "", const std::string& date = "") {
    Case c;
    c.kind = kind;
    c.display_name = "child";
    c.place = place;
    c.event_date = date;
    auto id = catalog_->AddCase(c);
    EXPECT_TRUE(id.ok()) << id.status();
    return id.ok() ? *id : 0;
  }
  // One photo with one face; the same `bytes` give the same content key.
  int64_t NewFace(int64_t case_id, const std::string& bytes) {
    Photo p;
    p.case_id = case_id;
    Face f;
    f.box_x = 1;
    f.box_y = 2;
    f.box_w = 50;
    f.box_h = 60;
    std::normal_distribution<float> n(0, 1);
    f.descriptor.resize(kDescriptorDim);
    for (float& v : f.descriptor) v = n(rng_);
    auto r = catalog_->AddPhoto(p, bytes, {f});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() && !r->face_ids.empty() ? r->face_ids[0] : 0;
  }
  LeadUpsertResult Upsert(int64_t x, int64_t y, double confidence) {
    auto r = catalog_->UpsertLead(x, y, 1.2 * (1 - confidence), confidence);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : LeadUpsertResult{};
  }
  std::string db_path() const { return dir_ + "/catalog.db"; }

  std::string dir_;
  std::mt19937 rng_{7};
  std::unique_ptr<Catalog> catalog_;
};

TEST_F(CatalogLeadsTest, FreshFileIsAtTheCurrentVersionWithTheLeadTables) {
  catalog_.reset();
  EXPECT_EQ(RawInt(db_path(), "SELECT version FROM schema_version"), internal::kSchemaVersion);
  EXPECT_GE(internal::kSchemaVersion, 3);  // 3 added the lead tables
  for (const char* table : {"leads", "lead_evidence", "lead_reviews", "sighting_clusters"}) {
    EXPECT_EQ(RawInt(db_path(), std::string("SELECT count(*) FROM sqlite_master WHERE name = '") +
                                    table + "'"),
              1)
        << table;
  }
}

TEST_F(CatalogLeadsTest, OneLeadPerCasePairKeepsTheBestPairAndEveryPairAsEvidence) {
  const int64_t missing = NewCase(CaseKind::kMissing);
  const int64_t sighting = NewCase(CaseKind::kSighting);
  const int64_t m1 = NewFace(missing, "m1"), s1 = NewFace(sighting, "s1"),
                s2 = NewFace(sighting, "s2");
  // Either order of the faces: the lead is keyed by (smaller case, larger case).
  LeadUpsertResult first = Upsert(s1, m1, 0.6);
  EXPECT_EQ(first.outcome, LeadUpsert::kCreated);
  LeadUpsertResult again = Upsert(m1, s1, 0.6);
  EXPECT_EQ(again.outcome, LeadUpsert::kUnchanged);
  EXPECT_EQ(again.lead_id, first.lead_id);
  LeadUpsertResult better = Upsert(m1, s2, 0.8);
  EXPECT_EQ(better.outcome, LeadUpsert::kEvidenceAdded);
  EXPECT_EQ(better.lead_id, first.lead_id);

  auto lead = catalog_->GetLead(first.lead_id);
  ASSERT_TRUE(lead.ok()) << lead.status();
  EXPECT_EQ(lead->case_a, missing);
  EXPECT_EQ(lead->case_b, sighting);
  EXPECT_EQ(lead->face_a, m1);
  EXPECT_EQ(lead->face_b, s2);
  EXPECT_DOUBLE_EQ(lead->confidence, 0.8);
  EXPECT_EQ(lead->status, LeadStatus::kOpen);
  ASSERT_THAT(lead->evidence, SizeIs(2));
  EXPECT_EQ(lead->evidence[0].face_b, s1);
  EXPECT_DOUBLE_EQ(lead->evidence[0].confidence, 0.6);
  EXPECT_EQ(lead->evidence[1].face_b, s2);

  EXPECT_EQ(catalog_->UpsertLead(m1, m1 + 100, 0.1, 0.9).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(catalog_->UpsertLead(s1, s2, 0.1, 0.9).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(catalog_->UpsertLead(m1, s1, 0.1, 1.5).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(catalog_->GetLead(first.lead_id + 1).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(CatalogLeadsTest, ListFiltersOrdersByConfidenceAndPages) {
  const int64_t m = NewCase(CaseKind::kMissing, "Lagos", "2015-01-01");
  const int64_t mf = NewFace(m, "m");
  std::vector<int64_t> leads;
  const double conf[] = {0.55, 0.9, 0.7, 0.7, 0.6};
  for (int i = 0; i < 5; ++i) {
    const int64_t s = NewCase(CaseKind::kSighting, i == 1 ? "Accra, Makola" : "Kumasi",
                              i < 2 ? "2020-02-02" : "2021-03-03");
    leads.push_back(Upsert(mf, NewFace(s, "s" + std::to_string(i)), conf[i]).lead_id);
  }
  LeadQuery q;
  q.page_size = 2;
  std::vector<int64_t> seen;
  std::vector<double> confidences;
  for (int pages = 0; pages < 10; ++pages) {
    auto page = catalog_->ListLeads(q);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const Lead& l : page->leads) {
      seen.push_back(l.id);
      confidences.push_back(l.confidence);
    }
    if (page->next_page_token.empty()) break;
    q.page_token = page->next_page_token;
  }
  EXPECT_THAT(seen, ElementsAre(leads[1], leads[2], leads[3], leads[4], leads[0]));
  EXPECT_THAT(confidences, ElementsAre(0.9, 0.7, 0.7, 0.6, 0.55));

  LeadQuery f;
  f.min_confidence = 0.65;
  EXPECT_THAT(catalog_->ListLeads(f)->leads, SizeIs(3));
  f = {};
  f.place_contains = "makola";
  ASSERT_THAT(catalog_->ListLeads(f)->leads, SizeIs(1));
  EXPECT_EQ(catalog_->ListLeads(f)->leads[0].id, leads[1]);
  f = {};
  f.event_from = "2021-01-01";
  EXPECT_THAT(catalog_->ListLeads(f)->leads, SizeIs(3));
  f.event_to = "2021-12-31";
  f.status = LeadStatus::kRejected;
  EXPECT_THAT(catalog_->ListLeads(f)->leads, IsEmpty());
  f = {};
  f.page_token = "garbage";
  EXPECT_EQ(catalog_->ListLeads(f).status().code(), absl::StatusCode::kInvalidArgument);
  f = {};
  f.min_confidence = 2;
  EXPECT_EQ(catalog_->ListLeads(f).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(CatalogLeadsTest, ReviewIsRecordedAndAudited) {
  const int64_t m = NewCase(CaseKind::kMissing), f = NewCase(CaseKind::kFound);
  const int64_t lead = Upsert(NewFace(m, "m"), NewFace(f, "f"), 0.7).lead_id;
  auto reviewed = catalog_->ReviewLead(lead, LeadStatus::kConfirmedForDna, "same scar", "inv-1",
                                       "investigator");
  ASSERT_TRUE(reviewed.ok()) << reviewed.status();
  EXPECT_EQ(reviewed->status, LeadStatus::kConfirmedForDna);
  ASSERT_THAT(reviewed->reviews, SizeIs(1));
  EXPECT_EQ(reviewed->reviews[0].note, "same scar");
  EXPECT_EQ(reviewed->reviews[0].reviewer, "inv-1");
  auto audit = catalog_->ListAudit(0, 100, "lead", lead);
  ASSERT_TRUE(audit.ok());
  ASSERT_THAT(*audit, SizeIs(1));
  EXPECT_EQ((*audit)[0].actor, "inv-1");
  EXPECT_EQ((*audit)[0].action, "ReviewLead");
  EXPECT_EQ((*audit)[0].detail, "decision=confirmed_for_dna");

  EXPECT_EQ(catalog_->ReviewLead(lead, LeadStatus::kOpen, "", "inv-1").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(catalog_->ReviewLead(lead, LeadStatus::kRejected, "", "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(catalog_->ReviewLead(lead + 1, LeadStatus::kRejected, "", "x").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_THAT(*catalog_->ListAudit(0, 100, "lead", lead), SizeIs(1));  // failures left no trace

  // The metrics page's counts by status follow the reviews.
  const int64_t m2 = NewCase(CaseKind::kMissing), f2 = NewCase(CaseKind::kFound);
  Upsert(NewFace(m2, "m2"), NewFace(f2, "f2"), 0.6);
  auto counts = catalog_->LeadCounts();
  ASSERT_TRUE(counts.ok()) << counts.status();
  EXPECT_EQ(*counts, (std::map<LeadStatus, int64_t>{{LeadStatus::kOpen, 1},
                                                    {LeadStatus::kConfirmedForDna, 1}}));
}

TEST_F(CatalogLeadsTest, RejectionSticksUntilNewPhotosArrive) {
  const int64_t m = NewCase(CaseKind::kMissing);
  const int64_t mf = NewFace(m, "missing photo");
  const int64_t s1 = NewCase(CaseKind::kSighting);
  const int64_t lead = Upsert(mf, NewFace(s1, "street photo"), 0.7).lead_id;
  ASSERT_TRUE(catalog_->ReviewLead(lead, LeadStatus::kRejected, "not her", "inv").ok());

  // The same street photo submitted again (a new sighting case): suppressed.
  const int64_t s2 = NewCase(CaseKind::kSighting);
  LeadUpsertResult resubmitted = Upsert(mf, NewFace(s2, "street photo"), 0.7);
  EXPECT_EQ(resubmitted.outcome, LeadUpsert::kSuppressed);
  EXPECT_EQ(resubmitted.lead_id, 0);
  LeadQuery open;
  open.status = LeadStatus::kOpen;
  EXPECT_THAT(catalog_->ListLeads(open)->leads, IsEmpty());

  // A new photo in the rejected case pair reopens it as a new proposal.
  LeadUpsertResult reopened = Upsert(mf, NewFace(s1, "a better street photo"), 0.75);
  EXPECT_EQ(reopened.outcome, LeadUpsert::kReopened);
  EXPECT_EQ(reopened.lead_id, lead);
  auto l = catalog_->GetLead(lead);
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->status, LeadStatus::kOpen);
  EXPECT_THAT(l->evidence, SizeIs(2));
  EXPECT_THAT(l->reviews, SizeIs(1));
}

TEST_F(CatalogLeadsTest, SightingClustersMergeAndDeletingACaseDeletesItsLeads) {
  const int64_t s1 = NewCase(CaseKind::kSighting), s2 = NewCase(CaseKind::kSighting),
                s3 = NewCase(CaseKind::kSighting), s4 = NewCase(CaseKind::kSighting);
  const int64_t f1 = NewFace(s1, "a"), f2 = NewFace(s2, "b"), f3 = NewFace(s3, "c"),
                f4 = NewFace(s4, "d");
  auto c1 = catalog_->ClusterSightingFace(f1, {});
  auto c3 = catalog_->ClusterSightingFace(f3, {});
  ASSERT_TRUE(c1.ok() && c3.ok());
  EXPECT_NE(*c1, *c3);
  ASSERT_TRUE(catalog_->ClusterSightingFace(f2, {f1}).ok());
  EXPECT_THAT(*catalog_->SightingClusterCases(f1), ElementsAre(s1, s2));
  // f4 looks like f2 and f3: the two clusters merge.
  ASSERT_TRUE(catalog_->ClusterSightingFace(f4, {f2, f3}).ok());
  EXPECT_THAT(*catalog_->SightingClusterCases(f3), ElementsAre(s1, s2, s3, s4));
  EXPECT_EQ(catalog_->ClusterSightingFace(f4 + 100, {}).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_THAT(*catalog_->SightingClusterCases(f4 + 100), IsEmpty());

  const int64_t m = NewCase(CaseKind::kMissing);
  const int64_t mf = NewFace(m, "m");
  const int64_t lead1 = Upsert(mf, f1, 0.7).lead_id;
  const int64_t lead2 = Upsert(mf, f2, 0.6).lead_id;
  ASSERT_TRUE(catalog_->ReviewLead(lead1, LeadStatus::kNeedsBetterPhoto, "", "inv").ok());
  ASSERT_TRUE(catalog_->DeleteCase(s1).ok());
  EXPECT_EQ(catalog_->GetLead(lead1).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(catalog_->GetLead(lead2).ok());
  EXPECT_THAT(*catalog_->SightingClusterCases(f2), ElementsAre(s2, s3, s4));
  ASSERT_TRUE(catalog_->DeleteCase(m).ok());
  EXPECT_THAT(catalog_->ListLeads({})->leads, IsEmpty());
  catalog_.reset();
  for (const char* table : {"leads", "lead_evidence", "lead_reviews"}) {
    EXPECT_EQ(RawInt(db_path(), std::string("SELECT count(*) FROM ") + table), 0) << table;
  }
}

TEST_F(CatalogLeadsTest, DeletingAPhotoKeepsTheBestRemainingPair) {
  const int64_t m = NewCase(CaseKind::kMissing), s = NewCase(CaseKind::kSighting);
  const int64_t mf = NewFace(m, "m"), weak = NewFace(s, "weak"), strong = NewFace(s, "strong");
  const int64_t lead = Upsert(mf, weak, 0.6).lead_id;
  Upsert(mf, strong, 0.8);
  auto faces = catalog_->GetFaceAttributes({strong});
  ASSERT_TRUE(faces.ok() && faces->size() == 1);
  ASSERT_TRUE(catalog_->DeletePhoto((*faces)[0].photo_id).ok());
  auto l = catalog_->GetLead(lead);
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->face_b, weak);
  EXPECT_DOUBLE_EQ(l->confidence, 0.6);
  EXPECT_THAT(l->evidence, SizeIs(1));
}

}  // namespace
}  // namespace homeward::store
