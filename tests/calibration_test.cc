// The age calibration: the committed table, corrupt files, and a gallery that re-ranks by it.
#include "gallery/calibration.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "gallery/gallery.h"
#include "tests/embed_test_util.h"

namespace homeward::gallery {
namespace {

namespace fs = std::filesystem;
using store::CaseKind;

std::string CommittedPath() {
  return std::string(HOMEWARD_SOURCE_DIR) + "/models/age_calibration_v1.json";
}

AgeGap Gap(double years, double younger) {
  AgeGap g;
  g.known = true;
  g.min = g.max = years;
  g.younger_age = younger;
  return g;
}

// A hand-written table: gap 0-2 is strict (P = 0.5 at d = 0.40), gap 6-10 lenient (at 0.65).
std::string HandTable(double cell_slope = -12) {
  std::ostringstream s;
  s << R"({"format": "homeward.age_calibration", "version": 1,
    "gap_band_edges_years": [0, 3, 6, 11, 21], "younger_age_band_edges_years": [0, 5, 10, 15],
    "pooled": {"a": 6, "b": -10}, "cells": [)";
  const double mid[5] = {0.40, 0.50, 0.65, 0.70, 0.75};
  for (int g = 0; g < 5; ++g) {
    s << (g ? "," : "") << "[";
    for (int y = 0; y < 4; ++y) {
      const double b = (g == 4 && y == 3) ? cell_slope : -12;
      s << (y ? "," : "") << R"({"a": )" << -b * mid[g] << R"(, "b": )" << b << "}";
    }
    s << "]";
  }
  s << R"(], "caveats": {
      "young_child": {"age_below_years": 5, "measured_on_children_under_years": 12,
                      "threshold": 0.6, "impostor_rate_below_threshold": 0.25},
      "large_age_gap": {"gap_from_years": 6, "gap_band": "6-10", "rank10_hit_rate": 0.4}}})";
  return s.str();
}

TEST(CalibrationTest, CommittedFileLoadsAndIsMonotoneInEveryBand) {
  auto c = Calibration::Load(CommittedPath());
  ASSERT_TRUE(c.ok()) << c.status();
  std::vector<AgeGap> gaps = {AgeGap{}};  // unknown: the pooled curve
  for (double years : {0.0, 2.0, 3.0, 5.0, 6.0, 10.0, 11.0, 20.0, 21.0, 40.0})
    for (double younger : {0.0, 4.0, 5.0, 9.0, 10.0, 14.0, 15.0, 40.0})
      gaps.push_back(Gap(years, younger));
  for (const AgeGap& g : gaps) {
    double previous = 2;
    for (double d = 0; d <= 1.6; d += 0.01) {
      const double p = (*c)->Confidence(d, g);
      ASSERT_GE(p, 0);
      ASSERT_LE(p, 1);
      ASSERT_LE(p, previous) << "gap " << g.min << " younger " << g.younger_age << " d " << d;
      previous = p;
    }
    EXPECT_GT((*c)->Confidence(0.3, g), (*c)->Confidence(0.9, g));
  }
  EXPECT_GT((*c)->child_impostor_rate(), 0);
  EXPECT_LT((*c)->child_impostor_rate(), 1);
  EXPECT_GT((*c)->large_gap_years(), 0);
  EXPECT_GE((*c)->large_gap_rank10(), 0);
  EXPECT_LE((*c)->large_gap_rank10(), 1);
}

TEST(CalibrationTest, BandsFollowTheTable) {
  auto c = Calibration::Parse(HandTable(), "hand");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_NEAR((*c)->Confidence(0.40, Gap(1, 3)), 0.5, 1e-9);
  EXPECT_NEAR((*c)->Confidence(0.65, Gap(7, 4)), 0.5, 1e-9);
  EXPECT_NEAR((*c)->Confidence(0.60, AgeGap{}), 0.5, 1e-9);  // unknown: pooled
  AgeGap range = Gap(0, 4);  // 4..10 years apart: the middle, 7, picks the 6-10 band
  range.max = 10;
  range.min = 4;
  EXPECT_NEAR((*c)->Confidence(0.65, range), 0.5, 1e-9);
  EXPECT_GE((*c)->MaxLogit(0.5), (*c)->Logit(0.5, Gap(25, 30)));
}

TEST(CalibrationTest, UnknownAgesFollowThePolicy) {
  std::string table = HandTable();
  table.insert(table.find("\"pooled\""), "\"unknown_age\": \"strictest\", ");
  auto strict = Calibration::Parse(table, "hand");
  ASSERT_TRUE(strict.ok()) << strict.status();
  // The lowest curve at 0.5 is gap 0-2's (P = 0.5 at 0.40), below the pooled one (0.5 at 0.60).
  EXPECT_NEAR((*strict)->Logit(0.5, AgeGap{}), (*strict)->Logit(0.5, Gap(1, 3)), 1e-9);
  EXPECT_LT((*strict)->Confidence(0.5, AgeGap{}), 0.5);
  table.replace(table.find("strictest"), 9, "lenient");
  EXPECT_EQ(Calibration::Parse(table, "hand").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CalibrationTest, MissingFileIsNotFound) {
  auto c = Calibration::Load("/nonexistent/age_calibration_v1.json");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound);
}

TEST(CalibrationTest, CorruptFilesAreInvalidArgument) {
  const std::string good = HandTable();
  std::string no_cells = good;
  no_cells.replace(no_cells.find("\"cells\""), 7, "\"cellz\"");
  std::string wrong_version = good;
  wrong_version.replace(wrong_version.find("\"version\": 1"), 12, "\"version\": 9");
  std::string nan_slope = good;
  nan_slope.replace(nan_slope.find("\"b\": -10"), 8, "\"b\": \"x\"");
  std::string bad_edges = good;
  bad_edges.replace(bad_edges.find("[0, 3, 6"), 8, "[0, 6, 3");
  const std::string cases[] = {"",
                               "\x89PNG\r\n\x1a\n garbage",
                               good.substr(0, good.size() / 2),
                               "[1, 2, 3]",
                               R"({"format": "something else", "version": 1})",
                               no_cells,
                               wrong_version,
                               nan_slope,
                               bad_edges};
  for (const std::string& text : cases) {
    auto c = Calibration::Parse(text, "test");
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << text.substr(0, 60);
  }
  // The same through a file.
  const fs::path path =
      fs::temp_directory_path() / ("hw_calib_" + std::to_string(::getpid()) + ".json");
  std::ofstream(path) << good.substr(0, good.size() / 3);
  auto c = Calibration::Load(path.string());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  fs::remove(path);
}

TEST(CalibrationTest, NonMonotoneCurveIsInvalidArgument) {
  for (double slope : {0.0, 3.0}) {
    auto c = Calibration::Parse(HandTable(slope), "test");
    ASSERT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(c.status().message().find("not negative"), std::string::npos) << c.status();
  }
}

// A gallery with synthetic descriptors: the query child photographed at 4 in 2010; a FOUND
// child photographed at 4 in 2017 at distance 0.45 (a same-age look-alike, but born in 2013,
// so not yet born in 2010) and the true child photographed at 11 in 2017 at distance 0.55.
// By distance alone the look-alike wins; with the dates it is left out, and the true child's
// confidence is calibrated for the 7-year gap between the photos.
class CalibratedGalleryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("hw_calib_gallery_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    table_ = dir_.string() + ".json";
    std::ofstream(table_) << HandTable();
  }
  void TearDown() override {
    gallery_.reset();
    catalog_.reset();
    fs::remove_all(dir_);
    fs::remove(table_);
  }
  absl::Status Open(const std::string& calibration) {
    gallery_.reset();
    catalog_.reset();
    GalleryOptions o;
    o.data_dir = dir_.string();
    o.pipeline.recognition_model_path = ::homeward::testing::RecognitionModelPath();
    o.pipeline.workers = 1;
    o.calibration_path = calibration;
    auto g = Gallery::Open(o);
    if (!g.ok()) return g.status();
    gallery_ = std::move(*g);
    return absl::OkStatus();
  }
  // Stores one face with descriptor `d` for a new case, straight into the catalog (before any
  // gallery opens it, so the gallery builds its indexes from it); returns the face id.
  int64_t AddFace(CaseKind kind, const std::string& name, double age, const std::vector<float>& d,
                  const std::string& taken_on = "") {
    if (catalog_ == nullptr) {
      auto opened = store::Catalog::Open(dir_.string());
      EXPECT_TRUE(opened.ok()) << opened.status();
      if (!opened.ok()) return 0;
      catalog_ = std::move(*opened);
    }
    store::Case c;
    c.kind = kind;
    c.display_name = name;
    auto id = catalog_->AddCase(c);
    EXPECT_TRUE(id.ok()) << id.status();
    store::Photo p;
    p.case_id = *id;
    p.age_min = p.age_max = age;
    p.date_taken = taken_on;
    store::Face f;
    f.box_w = f.box_h = 120;
    f.width_px = 120;
    f.sharpness = 100;
    f.descriptor = d;
    f.model_id = "synthetic";
    auto added = catalog_->AddPhoto(p, "bytes of " + name, {f});
    EXPECT_TRUE(added.ok()) << added.status();
    return added.ok() && !added->face_ids.empty() ? added->face_ids[0] : 0;
  }
  static std::vector<float> Vec(double x0, double x1, double x2) {
    std::vector<float> v(embed::kDescriptorDim, 0.0f);
    v[0] = static_cast<float>(x0), v[1] = static_cast<float>(x1), v[2] = static_cast<float>(x2);
    return v;
  }

  fs::path dir_;
  std::string table_;
  std::unique_ptr<store::Catalog> catalog_;
  std::unique_ptr<Gallery> gallery_;
};

TEST_F(CalibratedGalleryTest, DatesLeaveOutTheLookAlikeAndTheConfidenceIsCalibrated) {
  if (!fs::exists(::homeward::testing::RecognitionModelPath()))
    GTEST_SKIP() << "no recognition model";
  const int64_t query = AddFace(CaseKind::kMissing, "query", 4, Vec(0.5, 0, 0), "2010-06-01");
  const int64_t lookalike =
      AddFace(CaseKind::kFound, "look-alike", 4, Vec(0.5, 0.45, 0), "2017-06-01");
  const int64_t truth = AddFace(CaseKind::kFound, "true child", 11, Vec(0.5, 0, 0.55), "2017-06-01");
  for (int i = 0; i < 6; ++i) {  // children of the query's age, far away
    AddFace(CaseKind::kFound, "far " + std::to_string(i), 4, Vec(0.5, 0, 0.9 + 0.05 * i),
            "2010-03-01");
  }
  ASSERT_TRUE(Open("").ok());  // no snapshots yet: the indexes are built from the catalog

  // Without the age rules (asked for) and without a calibration: the look-alike is nearer.
  SearchQuery q;
  q.top_k = 1;
  q.include_age_inconsistent = true;
  auto undated = gallery_->SearchFace(query, q);
  ASSERT_TRUE(undated.ok()) << undated.status();
  ASSERT_EQ(undated->candidates.size(), 1u);
  EXPECT_EQ(undated->candidates[0].face.face_id, lookalike);
  EXPECT_DOUBLE_EQ(undated->candidates[0].confidence, undated->candidates[0].score);

  // The stored face's own evidence (photo date and age): the look-alike was born after the
  // query photo, so it is left out and counted; the true child comes first.
  q = SearchQuery();
  q.top_k = 1;
  ASSERT_TRUE(Open(table_).ok());
  auto cal = gallery_->SearchFace(query, q);
  ASSERT_TRUE(cal.ok()) << cal.status();
  ASSERT_EQ(cal->candidates.size(), 1u);
  EXPECT_EQ(cal->candidates[0].face.face_id, truth);
  EXPECT_NEAR(cal->candidates[0].distance, 0.55, 1e-4);
  EXPECT_NEAR(cal->candidates[0].age_gap.min, 7.0, 0.01);  // the time between the photos
  EXPECT_GT(cal->candidates[0].confidence, 0.5);           // the 6-10 year curve at 0.55
  EXPECT_TRUE(cal->candidates[0].above_lead_threshold);
  EXPECT_TRUE(cal->credible_match);
  ASSERT_EQ(cal->age_left_out.size(), 1u);
  EXPECT_EQ(cal->age_left_out[0].reason, "TOO_YOUNG");
  EXPECT_EQ(cal->age_left_out[0].count, 1);

  q.top_k = 8;
  auto all = gallery_->SearchFace(query, q);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->candidates.size(), 7u);  // every case but the look-alike's
  for (size_t i = 1; i < all->candidates.size(); ++i) {
    EXPECT_LE(all->candidates[i - 1].distance, all->candidates[i].distance);
    EXPECT_NE(all->candidates[i].face.face_id, lookalike);
  }
  std::set<std::string> codes;
  for (const Caveat& c : all->candidates[0].caveats) codes.insert(c.code);
  EXPECT_TRUE(codes.count("YOUNG_CHILD"));
  EXPECT_TRUE(codes.count("LARGE_AGE_GAP"));
  EXPECT_TRUE(codes.count("DNA_CONFIRMATION_REQUIRED"));
  for (const Caveat& c : all->candidates[0].caveats) {
    if (c.code == "YOUNG_CHILD") {
      EXPECT_NE(c.message.find("25%"), std::string::npos) << c.message;
    }
    if (c.code == "LARGE_AGE_GAP") {
      EXPECT_NE(c.message.find("40%"), std::string::npos) << c.message;
    }
  }

  // Asked for, the look-alike comes back in distance order, marked.
  q.include_age_inconsistent = true;
  auto marked = gallery_->SearchFace(query, q);
  ASSERT_TRUE(marked.ok()) << marked.status();
  ASSERT_EQ(marked->candidates.size(), 8u);
  EXPECT_EQ(marked->candidates[0].face.face_id, lookalike);
  EXPECT_FALSE(marked->candidates[0].age_check.consistent());
  bool flagged = false;
  for (const Caveat& c : marked->candidates[0].caveats) flagged |= c.code == "AGE_INCONSISTENT";
  EXPECT_TRUE(flagged);
  EXPECT_TRUE(marked->age_left_out.empty());
}

// The age check runs from in-memory keys when no other filter applies: it must agree with the
// catalog-read path, and follow a case update (a birth date added later) at once.
TEST_F(CalibratedGalleryTest, InMemoryAgeKeysAgreeWithTheCatalogAndFollowUpdates) {
  if (!fs::exists(::homeward::testing::RecognitionModelPath()))
    GTEST_SKIP() << "no recognition model";
  const int64_t query = AddFace(CaseKind::kMissing, "query", 4, Vec(0.5, 0, 0), "2010-06-01");
  const int64_t lookalike =
      AddFace(CaseKind::kFound, "look-alike", 4, Vec(0.5, 0.45, 0), "2017-06-01");
  for (int i = 0; i < 6; ++i) {
    AddFace(CaseKind::kFound, "older " + std::to_string(i), 12 + i, Vec(0.5, 0, 0.5 + 0.05 * i),
            "2010-03-01");
    AddFace(CaseKind::kFound, "same age " + std::to_string(i), 4, Vec(0.5, 0, 0.6 + 0.05 * i),
            "2010-03-01");
  }
  ASSERT_TRUE(Open(table_).ok());
  for (int i = 0; i < 200 && !gallery_->age_keys_loaded(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(gallery_->age_keys_loaded());
  SearchQuery fast;
  fast.top_k = 5;
  SearchQuery slow = fast;
  slow.date_from = "1900-01-01";  // keeps every face, but takes the catalog-read path
  auto a = gallery_->SearchFace(query, fast);
  auto b = gallery_->SearchFace(query, slow);
  ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
  ASSERT_EQ(a->candidates.size(), 5u);
  ASSERT_EQ(a->candidates.size(), b->candidates.size());
  for (size_t i = 0; i < a->candidates.size(); ++i) {
    EXPECT_EQ(a->candidates[i].face.face_id, b->candidates[i].face.face_id) << i;
  }
  auto counts = [](const QueryResult& r) {
    std::map<std::string, int> m;
    for (const auto& l : r.age_left_out) m[l.reason] = l.count;
    return m;
  };
  EXPECT_EQ(counts(*a), counts(*b));
  EXPECT_EQ(counts(*a)["TOO_YOUNG"], 1);  // the look-alike
  EXPECT_GE(counts(*a)["TOO_OLD"] + counts(*a)["TIME_ORDER"], 1);  // the older children

  // The family adds the look-alike's birth date (2006): it was 4 in 2010, like the query.
  auto attrs = gallery_->catalog().GetFaceAttributes({lookalike});
  ASSERT_TRUE(attrs.ok() && attrs->size() == 1u);
  auto c = gallery_->catalog().GetCase((*attrs)[0].case_id);
  ASSERT_TRUE(c.ok()) << c.status();
  c->date_of_birth = "2006-01-01";
  ASSERT_TRUE(gallery_->UpdateCase(*c).ok());
  auto after = gallery_->SearchFace(query, fast);
  ASSERT_TRUE(after.ok()) << after.status();
  ASSERT_FALSE(after->candidates.empty());
  EXPECT_EQ(after->candidates[0].face.face_id, lookalike);
  EXPECT_EQ(counts(*after)["TOO_YOUNG"], 0);

  // Closing the case takes it out of the results and of the counts alike.
  c->status = store::CaseStatus::kClosed;
  c->date_of_birth = "2013-01-01";
  ASSERT_TRUE(gallery_->UpdateCase(*c).ok());
  auto closed = gallery_->SearchFace(query, fast);
  ASSERT_TRUE(closed.ok()) << closed.status();
  for (const auto& cand : closed->candidates) EXPECT_NE(cand.face.face_id, lookalike);
  EXPECT_EQ(counts(*closed)["TOO_YOUNG"], 0);
}

TEST_F(CalibratedGalleryTest, UnusableCalibrationFailsOpen) {
  if (!fs::exists(::homeward::testing::RecognitionModelPath()))
    GTEST_SKIP() << "no recognition model";
  EXPECT_EQ(Open(dir_.string() + "/missing.json").code(), absl::StatusCode::kNotFound);
  std::ofstream(table_) << HandTable(/*cell_slope=*/1.0);
  EXPECT_EQ(Open(table_).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace homeward::gallery
