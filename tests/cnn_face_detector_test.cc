// FaceBoxes converted to ONNX (scripts/faceboxes_to_onnx.py) and run by OpenCV's DNN module,
// with the padding, anchors, decoding and NMS of embed/cnn_face_detector.cc, reproduces what
// TF.js computes with the original graph model (tests/data/faceboxes_reference.json, made by
// scripts/tfjs_reference/faceboxes_reference.mjs): every anchor's box and score on a synthetic
// pattern and a real face crop, and the final detections after NMS.
#include "embed/cnn_face_detector.h"
#include "embed/face_pipeline.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "base/sha256.h"
#include "tests/embed_test_util.h"

namespace homeward::embed {
namespace {

using ::homeward::base::Sha256Hex;
using ::homeward::testing::DemoDir;
using ::homeward::testing::FaceDetectorModelPath;
using ::homeward::testing::ReadFileOrDie;
using ::homeward::testing::SharedDataDir;

const nlohmann::json& Reference(const std::string& input) {
  static const nlohmann::json* all = new nlohmann::json(nlohmann::json::parse(
      ReadFileOrDie(std::string(HOMEWARD_SOURCE_DIR) + "/tests/data/faceboxes_reference.json")));
  for (const auto& r : (*all)["inputs"]) {
    if (r["input"] == input) return r;
  }
  ADD_FAILURE() << "no reference for " << input;
  static const nlohmann::json* empty = new nlohmann::json();
  return *empty;
}

std::vector<float> Floats(const nlohmann::json& tensor) {
  return tensor["data"].get<std::vector<float>>();  // {"shape": [...], "data": [...]}
}

std::string Sha(const cv::Mat& rgb) {
  return Sha256Hex(std::string(reinterpret_cast<const char*>(rgb.data), rgb.total() * 3));
}

// The recipes of tests/data/faceboxes_reference.json's input_recipes.
cv::Mat Synthetic() {
  cv::Mat m(256, 256, CV_8UC3);
  for (int y = 0; y < 256; ++y)
    for (int x = 0; x < 256; ++x)
      for (int c = 0; c < 3; ++c)
        m.ptr<uint8_t>(y)[3 * x + c] = (x * 7 + y * 13 + c * 50 + (x * y) % 31) % 256;
  return m;
}
cv::Mat Sample1FaceCrop() {
  cv::Mat bgr = cv::imread(DemoDir() + "/sample1.jpg"), rgb, out;
  if (bgr.empty()) return {};
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  cv::resize(rgb(cv::Rect(264, 204, 512, 512)), out, cv::Size(256, 256), 0, 0, cv::INTER_AREA);
  return out;
}

class CnnFaceDetectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(FaceDetectorModelPath())) {
      GTEST_SKIP() << FaceDetectorModelPath() << " absent: run scripts/setup.sh models";
    }
    auto d = CnnFaceDetector::Load(FaceDetectorModelPath());
    ASSERT_TRUE(d.ok()) << d.status();
    detector_ = std::move(*d);
  }

  // Every anchor's box and score agree with TF.js's.
  void ExpectAnchorsMatch(const cv::Mat& rgb, const std::string& name) {
    const nlohmann::json& ref = Reference(name);
    ASSERT_EQ(Sha(rgb), ref["rgb_sha256"]) << name << ": the input differs from the reference's";
    auto got = detector_->RunAnchors(rgb);
    ASSERT_TRUE(got.ok()) << got.status();
    const std::vector<float> boxes = Floats(ref["per_anchor"]["postprocessing/clip_by_value_1"]);
    const std::vector<float> scores = Floats(ref["per_anchor"]["postprocessing/strided_slice_2"]);
    ASSERT_EQ(got->scores.size(), scores.size()) << name;
    ASSERT_EQ(ref["anchor_count"].get<size_t>(), scores.size());
    double worst_box = 0, worst_score = 0;
    for (size_t i = 0; i < scores.size(); ++i) {
      worst_score = std::max(worst_score, std::abs(double{got->scores[i]} - scores[i]));
      for (int k = 0; k < 4; ++k) {
        worst_box = std::max(worst_box, std::abs(double{got->boxes[i][k]} - boxes[4 * i + k]));
      }
    }
    // The reference is rounded to 6 significant digits.
    EXPECT_LT(worst_box, 2e-5) << name;
    EXPECT_LT(worst_score, 2e-5) << name;
  }

  // The detections after NMS, at the graph's own threshold, are TF.js's, in order.
  void ExpectDetectionsMatch(const cv::Mat& rgb, const std::string& name, size_t compare) {
    const nlohmann::json& ref = Reference(name);
    ASSERT_EQ(Sha(rgb), ref["rgb_sha256"]) << name << ": the input differs from the reference's";
    CnnDetectorOptions o;
    o.score_threshold = 0.05f;
    auto got = detector_->Detect(rgb, o);
    ASSERT_TRUE(got.ok()) << got.status();
    const auto& dets = ref["detections"];
    ASSERT_GE(got->size(), std::min(compare, dets.size())) << name;
    for (size_t i = 0; i < std::min(compare, dets.size()); ++i) {
      const auto& d = dets[i];
      const CnnDetection& g = (*got)[i];
      EXPECT_NEAR(g.score, d["score"].get<double>(), 2e-5) << name << " #" << i;
      EXPECT_NEAR(g.top / rgb.rows, d["box"][0].get<double>(), 2e-5) << name << " #" << i;
      EXPECT_NEAR(g.left / rgb.cols, d["box"][1].get<double>(), 2e-5) << name << " #" << i;
      EXPECT_NEAR(g.bottom / rgb.rows, d["box"][2].get<double>(), 2e-5) << name << " #" << i;
      EXPECT_NEAR(g.right / rgb.cols, d["box"][3].get<double>(), 2e-5) << name << " #" << i;
    }
  }

  std::unique_ptr<CnnFaceDetector> detector_;
};

TEST_F(CnnFaceDetectorTest, EveryAnchorMatchesTfjsOnASyntheticPattern) {
  ExpectAnchorsMatch(Synthetic(), "synthetic");
}

TEST_F(CnnFaceDetectorTest, EveryAnchorMatchesTfjsOnARealFace) {
  cv::Mat crop = Sample1FaceCrop();
  if (crop.empty()) GTEST_SKIP() << "demo photos absent: run scripts/setup.sh models";
  ExpectAnchorsMatch(crop, "sample1_face_256x256.rgb");
}

TEST_F(CnnFaceDetectorTest, DetectionsAfterNmsMatchTfjs) {
  ExpectDetectionsMatch(Synthetic(), "synthetic", 87);
  cv::Mat crop = Sample1FaceCrop();
  if (crop.empty()) GTEST_SKIP() << "demo photos absent";
  ExpectDetectionsMatch(crop, "sample1_face_256x256.rgb", 155);
  // The face is the one confident detection.
  CnnDetectorOptions o;
  auto faces = detector_->Detect(crop, o);
  ASSERT_TRUE(faces.ok());
  ASSERT_EQ(faces->size(), 1u);
  EXPECT_GT((*faces)[0].score, 0.95f);
}

TEST_F(CnnFaceDetectorTest, FindsTheTurnedToddlerThatHogMisses) {
  const std::string path = SharedDataDir() + "/faces-small/Vrooli_unsplash/person-child.jpg";
  cv::Mat bgr = cv::imread(path);
  if (bgr.empty()) GTEST_SKIP() << path << " absent";
  cv::Mat rgb, small;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  cv::resize(rgb, small, cv::Size(680, 1024), 0, 0, cv::INTER_AREA);
  // The top detections (the face first) are TF.js's.
  ExpectDetectionsMatch(small, "person-child_680x1024.rgb", 20);
}

TEST_F(CnnFaceDetectorTest, RejectsImagesItCannotRead) {
  CnnDetectorOptions o;
  EXPECT_EQ(detector_->Detect(cv::Mat(), o).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(detector_->Detect(cv::Mat(4, 4, CV_8UC3), o).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(detector_->Detect(cv::Mat(64, 64, CV_8UC1), o).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Odd sizes pad to 128 and still run.
  auto r = detector_->Detect(cv::Mat(9, 1000, CV_8UC3, cv::Scalar(30, 60, 90)), o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->empty());
}

TEST_F(CnnFaceDetectorTest, LoadRefusesMissingAndForeignFiles) {
  EXPECT_EQ(CnnFaceDetector::Load("/nonexistent/faceboxes.onnx").status().code(),
            absl::StatusCode::kNotFound);
  const std::string age = std::string(HOMEWARD_DEFAULT_MODELS_DIR) + "/faceres-deep_3.0.4.onnx";
  if (std::filesystem::exists(age)) {
    auto d = CnnFaceDetector::Load(age);
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << d.status();
  }
  const std::string junk = ::testing::TempDir() + "/junk.onnx";
  {
    std::FILE* f = std::fopen(junk.c_str(), "wb");
    std::fputs("not an onnx file", f);
    std::fclose(f);
  }
  EXPECT_EQ(CnnFaceDetector::Load(junk).status().code(), absl::StatusCode::kInvalidArgument);
}

// The face pipeline with the CNN: its coarse scans and its HOG refinement of the box.
class CnnPipelineTest : public CnnFaceDetectorTest {
 protected:
  static PipelineOptions Options() {
    PipelineOptions o;
    o.recognition_model_path = ::homeward::testing::RecognitionModelPath();
    o.detector = DetectorKind::kCnn;
    o.face_detector_model_path = FaceDetectorModelPath();
    o.mirror_augment = false;
    o.workers = 1;
    return o;
  }
  static std::unique_ptr<FacePipeline> Make(const PipelineOptions& o) {
    auto p = FacePipeline::Create(o);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? std::move(*p) : nullptr;
  }
  static double Iou(const Box& a, const Box& b) {
    const cv::Rect ra(a.x, a.y, a.width, a.height), rb(b.x, b.y, b.width, b.height);
    const double inter = (ra & rb).area();
    return inter / (ra.area() + rb.area() - inter);
  }
};

// Close faces in small scans (fgnet-dev): at the policy's 2x upsampling FaceBoxes does not
// find them; the coarser scans (1x, then 0.5x) do.
TEST_F(CnnPipelineTest, CloseFacesInSmallScansAreFoundAtACoarserScale) {
  if (!::homeward::testing::ModelsInstalled()) GTEST_SKIP() << "models absent: run scripts/setup.sh models";
  const std::string dir = SharedDataDir() + "/fgnet-dev/images";
  if (!std::filesystem::exists(dir + "/038A00.JPG")) GTEST_SKIP() << dir << " absent";
  PipelineOptions one_scale = Options();
  one_scale.cnn_coarse_side = 0;
  auto single = Make(one_scale);
  auto multi = Make(Options());
  for (const char* name : {"013A21.JPG", "025A15.JPG", "038A00.JPG"}) {
    const std::string bytes = ReadFileOrDie(dir + "/" + name);
    auto one = single->Process(bytes);
    ASSERT_TRUE(one.ok()) << one.status();
    EXPECT_EQ(one->faces.size(), 0u) << name << " found at one scale: it no longer tests the coarse scans";
    auto r = multi->Process(bytes);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->faces.size(), 1u) << name;
    // A face filling much of the scan (these are 350-450 px wide photos).
    EXPECT_GT(r->faces[0].box.width, 100) << name;
  }
}

// One face, one box: no box's centre lies inside another's (person-group's downcast man was
// found twice by two scans; 001A33's eye was a "face" inside the face).
TEST_F(CnnPipelineTest, NoFaceIsReportedTwice) {
  if (!::homeward::testing::ModelsInstalled()) GTEST_SKIP() << "models absent: run scripts/setup.sh models";
  const std::vector<std::pair<std::string, size_t>> photos = {
      {SharedDataDir() + "/faces-small/Vrooli_unsplash/person-group.jpg", 4},
      {SharedDataDir() + "/fgnet-dev/images/001A33.JPG", 1}};
  auto pipeline = Make(Options());
  for (const auto& [path, faces] : photos) {
    if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " absent";
    auto r = pipeline->Process(ReadFileOrDie(path));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->faces.size(), faces) << path;
    for (const Face& a : r->faces) {
      for (const Face& b : r->faces) {
        if (&a == &b) continue;
        const cv::Point2d c(a.box.x + a.box.width / 2.0, a.box.y + a.box.height / 2.0);
        EXPECT_FALSE(cv::Rect2d(b.box.x, b.box.y, b.box.width, b.box.height).contains(c))
            << path << ": a box at " << a.box.x << "," << a.box.y << " lies inside another";
      }
    }
  }
}

// Frontal faces get HOG's own box (the geometry the landmark predictor was trained on);
// without the refinement they keep the mapped CNN box, which is close but not the same.
TEST_F(CnnPipelineTest, FrontalFacesGetHogsBoxAndTurnedOnesTheMappedBox) {
  if (!::homeward::testing::ModelsInstalled()) GTEST_SKIP() << "models absent: run scripts/setup.sh models";
  const std::string bytes = ReadFileOrDie(DemoDir() + "/sample1.jpg");
  PipelineOptions hog_options = Options();
  hog_options.detector = DetectorKind::kHog;
  PipelineOptions mapped_options = Options();
  mapped_options.cnn_refine_with_hog = false;
  auto hog = Make(hog_options)->Process(bytes);
  auto refined = Make(Options())->Process(bytes);
  auto mapped = Make(mapped_options)->Process(bytes);
  ASSERT_TRUE(hog.ok() && refined.ok() && mapped.ok());
  ASSERT_EQ(hog->faces.size(), 3u);
  ASSERT_EQ(refined->faces.size(), 3u);
  ASSERT_EQ(mapped->faces.size(), 3u);
  for (const Face& h : hog->faces) {
    double best_refined = 0, best_mapped = 0;
    for (const Face& f : refined->faces) best_refined = std::max(best_refined, Iou(h.box, f.box));
    for (const Face& f : mapped->faces) best_mapped = std::max(best_mapped, Iou(h.box, f.box));
    // HOG found the face at another scale, so its box can differ by a pyramid step.
    EXPECT_GT(best_refined, 0.85);
    EXPECT_GT(best_refined, best_mapped);
  }
  // The turned toddler: HOG does not find it, so the box is the mapped one.
  const std::string toddler = SharedDataDir() + "/faces-small/Vrooli_unsplash/person-child.jpg";
  if (!std::filesystem::exists(toddler)) GTEST_SKIP() << toddler << " absent";
  const std::string t = ReadFileOrDie(toddler);
  auto t_refined = Make(Options())->Process(t);
  auto t_mapped = Make(mapped_options)->Process(t);
  ASSERT_TRUE(t_refined.ok() && t_mapped.ok());
  ASSERT_EQ(t_refined->faces.size(), 1u);
  ASSERT_EQ(t_mapped->faces.size(), 1u);
  EXPECT_EQ(t_refined->faces[0].box.x, t_mapped->faces[0].box.x);
  EXPECT_EQ(t_refined->faces[0].box.width, t_mapped->faces[0].box.width);
}

// A CNN face that HOG does not confirm must be found again by the CNN on a crop around it.
// person-crowd's yellow shirt patch at the top edge (0.87 at first, 0.20 on the crop) and two
// of fgnet-dev's small false faces go; every real face of those photos stays, and so does the
// turned toddler (FrontalFacesGetHogsBoxAndTurnedOnesTheMappedBox).
TEST_F(CnnPipelineTest, ACnnFaceNeitherHogNorASecondLookFindsIsNotAFace) {
  if (!::homeward::testing::ModelsInstalled()) GTEST_SKIP() << "models absent: run scripts/setup.sh models";
  PipelineOptions no_recheck = Options();
  no_recheck.cnn_recheck_min_score = 0;
  auto without = Make(no_recheck);
  auto with = Make(Options());
  struct Photo {
    std::string path;
    size_t faces;      // real faces
    cv::Rect2d false_face;  // where the false one lies
  };
  const std::vector<Photo> photos = {
      {SharedDataDir() + "/faces-small/Vrooli_unsplash/person-crowd.jpg", 4, {490, 0, 95, 95}},
      {SharedDataDir() + "/fgnet-dev/images/004A63.JPG", 1, {40, 260, 30, 30}},
      {SharedDataDir() + "/fgnet-dev/images/010A07a.JPG", 1, {0, 290, 110, 110}}};
  for (const Photo& p : photos) {
    if (!std::filesystem::exists(p.path)) GTEST_SKIP() << p.path << " absent";
    const std::string bytes = ReadFileOrDie(p.path);
    auto before = without->Process(bytes);
    auto after = with->Process(bytes);
    ASSERT_TRUE(before.ok() && after.ok());
    auto inside = [&p](const Face& f) {
      return p.false_face.contains(cv::Point2d(f.box.x + f.box.width / 2.0, f.box.y + f.box.height / 2.0));
    };
    // Without the second look the false face is there: the photo still tests it.
    EXPECT_EQ(before->faces.size(), p.faces + 1) << p.path;
    EXPECT_EQ(std::count_if(before->faces.begin(), before->faces.end(), inside), 1) << p.path;
    EXPECT_EQ(after->faces.size(), p.faces) << p.path;
    EXPECT_EQ(std::count_if(after->faces.begin(), after->faces.end(), inside), 0) << p.path;
  }
}

}  // namespace
}  // namespace homeward::embed
