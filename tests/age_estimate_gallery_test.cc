// A sighting sent without an age gets the age the face shows (embed/age_estimator.h), stored
// as an estimated range marked as from the face, and age-consistent search uses it; a
// volunteer's range wins over it, and so do the birth years an investigator enters later.
// Real fgnet-dev photos through the real pipeline; skipped without ../shared/data or the models.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "gallery/gallery.h"
#include "tests/embed_test_util.h"

namespace homeward::gallery {
namespace {

namespace fs = std::filesystem;
using ::homeward::testing::ReadFileOrDie;
using store::CaseKind;

std::string AgeModelPath() {
  const char* env = std::getenv("HOMEWARD_AGE_MODEL");
  return env ? env : std::string(HOMEWARD_DEFAULT_MODELS_DIR) + "/faceres-deep_3.0.4.onnx";
}

class AgeEstimateGalleryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fg_ = ::homeward::testing::SharedDataDir() + "/fgnet-dev/images/";
    if (!fs::exists(fg_)) GTEST_SKIP() << fg_ << " absent";
    Prepare();
  }
  // The models, a fresh data directory and the gallery (HOG, with the age model).
  void Prepare() {
    if (!::homeward::testing::ModelsInstalled() || !fs::exists(AgeModelPath())) {
      GTEST_SKIP() << "models absent: run scripts/setup.sh models";
    }
    dir_ = fs::temp_directory_path() /
           ("hw_agegallery_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    Open(AgeModelPath());
  }
  void TearDown() override {
    gallery_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  void Open(const std::string& age_model, embed::DetectorKind detector = embed::DetectorKind::kHog) {
    gallery_.reset();
    GalleryOptions o;
    o.data_dir = dir_.string();
    o.pipeline.recognition_model_path = ::homeward::testing::RecognitionModelPath();
    o.pipeline.age_model_path = age_model;
    o.pipeline.detector = detector;
    if (detector == embed::DetectorKind::kCnn) {
      o.pipeline.face_detector_model_path = ::homeward::testing::FaceDetectorModelPath();
    }
    o.pipeline.workers = 1;
    auto g = Gallery::Open(o);
    ASSERT_TRUE(g.ok()) << g.status();
    gallery_ = std::move(*g);
  }
  // A MISSING case born on `dob` with the photo `in` (its case_id is filled in); its id, 0 when
  // it could not be made. last_face_ = the photo's first stored face.
  int64_t AddMissing(const std::string& name, const std::string& dob, PhotoInput in) {
    store::Case c;
    c.kind = CaseKind::kMissing;
    c.display_name = name;
    c.date_of_birth = dob;
    auto id = gallery_->catalog().AddCase(c);
    EXPECT_TRUE(id.ok()) << id.status();
    if (!id.ok()) return 0;
    in.case_id = *id;
    auto r = gallery_->AddPhoto(in);
    EXPECT_TRUE(r.ok()) << r.status();
    last_face_ = r.ok() && !r->faces.empty() ? r->faces[0].face_id : 0;
    return *id;
  }
  // A MISSING case born on `dob` with fgnet-dev photo `file`, taken five years later (the
  // photos used are of the child at 5).
  int64_t Missing(const std::string& name, const std::string& dob, const std::string& file) {
    PhotoInput in;
    in.bytes = ReadFileOrDie(fg_ + file);
    in.taken_on = std::to_string(std::stoi(dob.substr(0, 4)) + 5) + dob.substr(4);
    return AddMissing(name, dob, std::move(in));
  }
  SightingOutcome Sight(const std::string& file, AgeInfo age = {}) {
    SightingInput s;
    s.bytes = ReadFileOrDie(fg_ + file);
    s.seen_on = "2026-06-01";
    s.estimated_age = age;
    s.include_age_inconsistent = false;
    auto r = gallery_->SubmitSighting(s);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : SightingOutcome{};
  }
  static bool Found(const SightingOutcome& r, int64_t case_id) {
    for (const auto& q : r.results)
      for (const auto& c : q.candidates)
        if (c.face.case_id == case_id) return true;
    return false;
  }
  static int LeftOut(const SightingOutcome& r) {
    int n = 0;
    for (const auto& q : r.results)
      for (const auto& l : q.age_left_out) n += l.count;
    return n;
  }

  std::string fg_;
  int64_t last_face_ = 0;  // the face of Missing()'s photo
  fs::path dir_;
  std::unique_ptr<Gallery> gallery_;
};

// Subject 002 of fgnet-dev at 7 (the sighting) and at 5 (the family's photo).
constexpr char kSighting[] = "002A07.JPG";
constexpr char kFamilyPhoto[] = "002A05.JPG";

TEST_F(AgeEstimateGalleryTest, SightingWithoutAgeIsAgedFromTheFaceAndSearchedByIt) {
  // The same child's photo in two MISSING cases: one whose child would be 7-8 at the sighting,
  // one whose child would be 46.
  const int64_t young = Missing("Young", "2019-01-01", kFamilyPhoto);
  const int64_t old = Missing("Old", "1980-01-01", kFamilyPhoto);
  SightingOutcome r = Sight(kSighting);
  ASSERT_GT(r.photo_id, 0);
  ASSERT_TRUE(r.age.known());
  EXPECT_TRUE(r.age.estimated);
  EXPECT_TRUE(r.age.from_face);
  EXPECT_LE(r.age.min, 7);
  EXPECT_GE(r.age.max, 7);
  EXPECT_LT(r.age.max, 30);
  // Stored with the photo, marked as from the face.
  auto photo = gallery_->catalog().GetPhotoInfo(r.photo_id);
  ASSERT_TRUE(photo.ok()) << photo.status();
  EXPECT_TRUE(photo->age_estimated);
  EXPECT_TRUE(photo->age_from_face);
  EXPECT_DOUBLE_EQ(photo->age_min, r.age.min);
  // Age-consistent search: the 46-year-old is left out, the child is found with the caveat
  // that says the face gave the age.
  EXPECT_TRUE(Found(r, young));
  EXPECT_FALSE(Found(r, old));
  EXPECT_GE(LeftOut(r), 1);
  bool caveat = false;
  std::string codes;
  for (const auto& q : r.results)
    for (const auto& c : q.candidates)
      for (const auto& cv : c.caveats) {
        codes += cv.code + " ";
        caveat |=
            cv.code == "ESTIMATED_AGE" && cv.message.find("from the face") != std::string::npos;
      }
  EXPECT_TRUE(caveat) << codes;
}

// The age model runs only where its answer is used (it costs ~17-25 ms a face): for a
// sighting sent without an age. A family's photo, a sighting with the volunteer's range and a
// search by image do not run it; the pipeline itself still does by default.
TEST_F(AgeEstimateGalleryTest, TheAgeModelRunsOnlyForASightingWithoutAnAge) {
  const int64_t young = Missing("Young", "2019-01-01", kFamilyPhoto);
  store::Case c;
  c.kind = CaseKind::kMissing;
  c.display_name = "Another";
  auto id = gallery_->catalog().AddCase(c);
  ASSERT_TRUE(id.ok());
  PhotoInput in;
  in.case_id = *id;
  in.bytes = ReadFileOrDie(fg_ + kSighting);
  auto added = gallery_->AddPhoto(in);
  ASSERT_TRUE(added.ok()) << added.status();
  ASSERT_EQ(added->faces.size(), 1u);
  EXPECT_FALSE(added->faces[0].face.age.known) << "AddPhoto ran the age model";

  SightingOutcome given = Sight(kSighting, {6, 9, true});
  ASSERT_EQ(given.results.size(), 1u);
  EXPECT_FALSE(given.results[0].query.face.age.known) << "ran although the volunteer gave an age";
  EXPECT_TRUE(Found(given, young));

  SightingOutcome without = Sight(kSighting);
  ASSERT_EQ(without.results.size(), 1u);
  EXPECT_TRUE(without.results[0].query.face.age.known);

  SearchQuery q;
  auto searched = gallery_->SearchImage(ReadFileOrDie(fg_ + kSighting), q);
  ASSERT_TRUE(searched.ok()) << searched.status();
  ASSERT_EQ(searched->results.size(), 1u);
  EXPECT_FALSE(searched->results[0].query.face.age.known);
  EXPECT_FALSE(searched->results[0].candidates.empty());

  auto direct = gallery_->pipeline().Process(ReadFileOrDie(fg_ + kSighting));
  ASSERT_TRUE(direct.ok()) << direct.status();
  ASSERT_EQ(direct->faces.size(), 1u);
  EXPECT_TRUE(direct->faces[0].age.known);
}

TEST_F(AgeEstimateGalleryTest, VolunteersRangeWins) {
  const int64_t old = Missing("Old", "1980-01-01", kFamilyPhoto);
  SightingOutcome r = Sight(kSighting, {44, 48, true});
  ASSERT_TRUE(r.age.known());
  EXPECT_FALSE(r.age.from_face);
  EXPECT_DOUBLE_EQ(r.age.min, 44);
  EXPECT_TRUE(Found(r, old));
  auto photo = gallery_->catalog().GetPhotoInfo(r.photo_id);
  ASSERT_TRUE(photo.ok());
  EXPECT_FALSE(photo->age_from_face);
}

TEST_F(AgeEstimateGalleryTest, InvestigatorsBirthYearsReplaceTheFaceAge) {
  SightingOutcome r = Sight(kSighting);
  ASSERT_TRUE(r.age.from_face);
  // The investigator learns the sighted child was born in 1980-1981.
  auto c = gallery_->catalog().GetCase(r.case_id);
  ASSERT_TRUE(c.ok());
  c->birth_year_min = 1980;
  c->birth_year_max = 1981;
  ASSERT_TRUE(gallery_->UpdateCase(*c).ok());
  // A MISSING child born in 1980 now matches the sighting; a child born in 2019 does not.
  Missing("Old", "1980-06-01", kFamilyPhoto);
  const int64_t old_face = last_face_;
  Missing("Young", "2019-01-01", kFamilyPhoto);
  const int64_t young_face = last_face_;
  SearchQuery q;
  q.kinds = {CaseKind::kSighting};
  auto found_old = gallery_->SearchFace(old_face, q);
  auto found_young = gallery_->SearchFace(young_face, q);
  ASSERT_TRUE(found_old.ok()) << found_old.status();
  ASSERT_TRUE(found_young.ok()) << found_young.status();
  auto has_sighting = [&](const QueryResult& o) {
    for (const auto& cand : o.candidates)
      if (cand.face.case_id == r.case_id) return true;
    return false;
  };
  EXPECT_TRUE(has_sighting(*found_old));
  EXPECT_FALSE(has_sighting(*found_young));
}

// The demo photos only (no ../shared/data needed), with the CNN detector. demo sample5.jpg has
// four usable adults, whose bands span about 12-48 years, and one face turned ~47 degrees.
class AgeEstimateDemoTest : public AgeEstimateGalleryTest {
 protected:
  void SetUp() override {
    if (!fs::exists(::homeward::testing::FaceDetectorModelPath())) {
      GTEST_SKIP() << "the face detector model is absent: run scripts/setup.sh models";
    }
    Prepare();
    if (HasFatalFailure() || IsSkipped()) return;
    Open(AgeModelPath(), embed::DetectorKind::kCnn);
    bytes_ = ReadFileOrDie(::homeward::testing::DemoDir() + "/sample5.jpg");
  }
  // The faces of `bytes`, aged: the turned one (if any), the usable face with the lowest band
  // top, and the top of the usable faces' span.
  void Analyse(const std::string& bytes) {
    auto analysed = gallery_->pipeline().Process(bytes);
    ASSERT_TRUE(analysed.ok()) << analysed.status();
    faces_ = analysed->faces;
    turned_ = youngest_ = nullptr;
    span_max_ = 0;
    for (const embed::Face& f : faces_) {
      if (f.quality.non_frontal && !f.quality.usable) turned_ = &f;
      if (!f.quality.usable) continue;
      ASSERT_TRUE(f.age.known);
      span_max_ = std::max(span_max_, f.age.max_years);
      if (youngest_ == nullptr || f.age.max_years < youngest_->age.max_years) youngest_ = &f;
    }
    ASSERT_NE(youngest_, nullptr);
  }
  // A MISSING case whose photo (taken 2024-06-01) is the face in `box` of `bytes`.
  int64_t MissingWithFace(const std::string& name, const std::string& dob,
                          const std::string& bytes, const embed::Box& box) {
    PhotoInput in;
    in.bytes = bytes;
    in.taken_on = "2024-06-01";
    in.face_box = box;
    return AddMissing(name, dob, std::move(in));
  }
  // An adult `adult_age` at the sighting (2026-06-01) whose photo is the youngest-looking face:
  // inside the span of the bands, well beyond that face's own band and its tolerance (15% of
  // the band's middle + 0.5 years).
  int AdultAge() const { return static_cast<int>((youngest_->age.max_years + span_max_) / 2); }
  absl::StatusOr<SightingOutcome> Sighting(const std::string& bytes) {
    SightingInput s;
    s.bytes = bytes;
    s.seen_on = "2026-06-01";
    s.include_age_inconsistent = false;
    return gallery_->SubmitSighting(s);
  }
  size_t LeadsOf(int64_t case_id) {
    auto leads = gallery_->catalog().LeadsOfCase(case_id);
    EXPECT_TRUE(leads.ok()) << leads.status();
    return leads.ok() ? leads->size() : 0;
  }

  std::string bytes_;
  std::vector<embed::Face> faces_;
  const embed::Face* turned_ = nullptr;
  const embed::Face* youngest_ = nullptr;
  double span_max_ = 0;
};

// A face kept only as evidence (turned beyond the policy) is not aged: its age estimate is not
// measured (fgnet-dev has 2 faces turned that far), and the photo's one age, a span of the other
// faces' bands, would be a guess for it. A MISSING case holds sample5's turned face as a
// 3-year-old's photo: with the span the sighting hid it as age-inconsistent; now the photo's age
// is unknown, the turned face is searched and cross-matched without an age, and the case is
// found (with UNKNOWN_AGE), made a lead and found again by a later search of the stored face.
TEST_F(AgeEstimateDemoTest, ATurnedFaceIsNotAgedAndTheOthersKeepTheirOwnBands) {
  ASSERT_NO_FATAL_FAILURE(Analyse(bytes_));
  ASSERT_NE(turned_, nullptr) << "sample5.jpg's turned face is no longer flagged";
  ASSERT_GE(span_max_ - youngest_->age.max_years, 10) << "sample5.jpg's age bands changed";
  const int64_t toddler = MissingWithFace("Toddler", "2023-06-01", bytes_, turned_->box);
  const int64_t adult =
      MissingWithFace("Adult", std::to_string(2026 - AdultAge()) + "-06-01", bytes_, youngest_->box);
  ASSERT_GT(toddler, 0);
  ASSERT_GT(adult, 0);

  auto r = Sighting(bytes_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->age.known()) << r->age.min << "-" << r->age.max;
  auto info = gallery_->catalog().GetPhotoInfo(r->photo_id);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_FALSE(info->age_from_face);
  EXPECT_FALSE(info->age_estimated);

  int64_t turned_face = 0;
  for (const QueryResult& q : r->results) {
    ASSERT_GT(q.query.face_id, 0) << "a sighting stores each of these faces";
    if (q.query.face.quality.usable) continue;
    turned_face = q.query.face_id;
    bool found = false, unknown_age = false;
    for (const Candidate& c : q.candidates) {
      if (c.face.case_id != toddler) continue;
      found = true;
      for (const auto& cv : c.caveats) unknown_age |= cv.code == "UNKNOWN_AGE";
    }
    EXPECT_TRUE(found) << "the turned face's match was left out as age-inconsistent";
    EXPECT_TRUE(unknown_age);
  }
  ASSERT_GT(turned_face, 0);
  // Cross-matching made the lead, and a later search of the stored face finds the case.
  EXPECT_EQ(LeadsOf(toddler), 1u);
  SearchQuery q;
  q.kinds = {CaseKind::kMissing};
  auto again = gallery_->SearchFace(turned_face, q);
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_FALSE(again->candidates.empty());
  EXPECT_EQ(again->candidates[0].face.case_id, toddler);
  // The youngest-looking face was cross-matched with its own band: the adult is no lead.
  EXPECT_EQ(LeadsOf(adult), 0u) << "adult of " << AdultAge() << ", own band up to "
                                << youngest_->age.max_years;
}

// Several usable children in one street photo (sample5 with the turned face painted over): the
// photo stores the span of their bands, and each face is searched and cross-matched with its
// own band. An adult whose age is inside the span but beyond the youngest-looking face's band
// is neither a candidate of that face nor a lead; matched with the span, it was a lead.
TEST_F(AgeEstimateDemoTest, EachFaceOfAStreetPhotoIsCrossMatchedWithItsOwnBand) {
  ASSERT_NO_FATAL_FAILURE(Analyse(bytes_));
  ASSERT_NE(turned_, nullptr);
  cv::Mat bgr = ::homeward::testing::DecodeBgr(bytes_);
  const embed::Box& t = turned_->box;
  cv::rectangle(bgr, cv::Rect(t.x, t.y, t.width, t.height), cv::Scalar(0, 0, 0), cv::FILLED);
  const std::string painted = ::homeward::testing::EncodeJpeg(bgr);
  ASSERT_NO_FATAL_FAILURE(Analyse(painted));
  ASSERT_EQ(turned_, nullptr) << "the painted-over face is still found";
  ASSERT_GE(span_max_ - youngest_->age.max_years, 10) << "sample5.jpg's age bands changed";
  const int64_t adult =
      MissingWithFace("Adult", std::to_string(2026 - AdultAge()) + "-06-01", painted, youngest_->box);
  ASSERT_GT(adult, 0);

  auto r = Sighting(painted);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->age.known());
  EXPECT_TRUE(r->age.from_face);
  EXPECT_GE(r->age.max, span_max_ - 1e-6);  // the span is stored
  int searched = 0;
  for (const QueryResult& q : r->results) {
    const embed::Box& b = q.query.face.box;
    if (b.x != youngest_->box.x || b.y != youngest_->box.y) continue;
    ++searched;
    for (const Candidate& c : q.candidates) EXPECT_NE(c.face.case_id, adult) << "searched with the span";
  }
  EXPECT_EQ(searched, 1);
  EXPECT_EQ(LeadsOf(adult), 0u) << "cross-matched with the span: adult of " << AdultAge()
                                << ", own band up to " << youngest_->age.max_years;
}

TEST_F(AgeEstimateGalleryTest, WithoutTheAgeModelNothingIsEstimated) {
  Open("");
  SightingOutcome r = Sight(kSighting);
  ASSERT_GT(r.photo_id, 0);
  EXPECT_FALSE(r.age.known());
  auto photo = gallery_->catalog().GetPhotoInfo(r.photo_id);
  ASSERT_TRUE(photo.ok());
  EXPECT_FALSE(photo->age_from_face);
  EXPECT_LT(photo->age_min, 0);
}

}  // namespace
}  // namespace homeward::gallery
