// faceres-deep converted to ONNX (scripts/faceres_to_onnx.py) and run by OpenCV's DNN module
// reproduces TF.js's own outputs of the original graph model (tests/data/faceres_reference.json,
// computed by scripts/tfjs_reference/faceres_reference.mjs) on a synthetic pattern and on the
// age crops of three real fgnet-dev photos; and the fitted correction behaves.
#include "embed/age_estimator.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "base/sha256.h"
#include "tests/embed_test_util.h"

namespace homeward::embed {
namespace {

using ::homeward::base::Sha256Hex;
using ::homeward::testing::ReadFileOrDie;

std::string AgeModelPath() {
  const char* env = std::getenv("HOMEWARD_AGE_MODEL");
  return env ? env : std::string(HOMEWARD_DEFAULT_MODELS_DIR) + "/faceres-deep_3.0.4.onnx";
}

nlohmann::json References() {
  return nlohmann::json::parse(
      ReadFileOrDie(std::string(HOMEWARD_SOURCE_DIR) + "/tests/data/faceres_reference.json"));
}

// The pattern faceres_reference.mjs calls "synthetic".
std::vector<uint8_t> Synthetic() {
  std::vector<uint8_t> b(224 * 224 * 3);
  for (int y = 0; y < 224; ++y)
    for (int x = 0; x < 224; ++x)
      for (int c = 0; c < 3; ++c)
        b[(y * 224 + x) * 3 + c] = (x * 7 + y * 13 + c * 50 + (x * y) % 31) % 256;
  return b;
}

void ExpectMatches(const AgeModel::Output& got, const nlohmann::json& ref) {
  double worst = 0;
  for (int i = 0; i < kAgeClasses; ++i)
    worst =
        std::max(worst, std::abs(got.probabilities[i] - ref["age_probabilities"][i].get<double>()));
  EXPECT_LT(worst, 1e-5) << ref["crop"];
  EXPECT_NEAR(got.expected_years, ref["expected_age"].get<double>(), 1e-3) << ref["crop"];
}

class AgeEstimatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(AgeModelPath())) {
      GTEST_SKIP() << AgeModelPath() << " absent: run scripts/setup.sh models";
    }
    // The references are of the graph itself: TF.js was fed the crops' RGB values as they are.
    auto m = AgeModel::Load(AgeModelPath(), AgeInput::kRgb255);
    ASSERT_TRUE(m.ok()) << m.status();
    model_ = std::move(*m);
  }
  std::unique_ptr<AgeModel> model_;
};

TEST_F(AgeEstimatorTest, SyntheticInputMatchesTfjs) {
  const nlohmann::json ref = References();
  ASSERT_EQ(ref["crops"][0]["crop"], "synthetic");
  std::vector<uint8_t> rgb = Synthetic();
  ASSERT_EQ(Sha256Hex(absl::string_view(reinterpret_cast<const char*>(rgb.data()), rgb.size())),
            ref["crops"][0]["rgb_sha256"]);
  auto out = model_->Run(rgb);
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectMatches(*out, ref["crops"][0]);
  // A clone computes the same.
  auto clone = model_->Clone();
  ASSERT_TRUE(clone.ok()) << clone.status();
  auto again = (*clone)->Run(rgb);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->expected_years, out->expected_years);
}

TEST_F(AgeEstimatorTest, RealFaceCropsMatchTfjs) {
  const std::string fg = ::homeward::testing::SharedDataDir() + "/fgnet-dev/images/";
  if (!std::filesystem::exists(fg)) GTEST_SKIP() << fg << " absent";
  if (!::homeward::testing::ModelsInstalled()) GTEST_SKIP() << "models absent";
  const nlohmann::json ref = References();
  PipelineOptions o;
  o.recognition_model_path = ::homeward::testing::RecognitionModelPath();
  o.age_model_path = AgeModelPath();
  o.age_crop_padding = ref["crop_padding"].get<double>();
  o.age_crop_aligned = ref["crop_aligned"].get<bool>();
  o.workers = 1;
  auto pipeline = FacePipeline::Create(o);
  ASSERT_TRUE(pipeline.ok()) << pipeline.status();
  int checked = 0;
  for (const auto& r : ref["crops"]) {
    if (r["crop"] == "synthetic") continue;
    auto chips = (*pipeline)->AgeChips(ReadFileOrDie(fg + r["crop"].get<std::string>()));
    ASSERT_TRUE(chips.ok()) << chips.status();
    ASSERT_FALSE(chips->empty()) << r["crop"];
    const Chip& c = chips->front();
    ASSERT_EQ(c.size, kAgeInputSize);
    // The same crop as the one TF.js saw (same decoder, detector, landmarks and resampling).
    ASSERT_EQ(
        Sha256Hex(absl::string_view(reinterpret_cast<const char*>(c.rgb.data()), c.rgb.size())),
        r["rgb_sha256"])
        << r["crop"] << ": the age crop changed; regenerate the references (models/README.md)";
    auto out = model_->Run(c.rgb);
    ASSERT_TRUE(out.ok()) << out.status();
    ExpectMatches(*out, r);
    ++checked;
  }
  EXPECT_EQ(checked, 3);
}

TEST_F(AgeEstimatorTest, RejectsWrongInputSize) {
  EXPECT_EQ(model_->Run(std::vector<uint8_t>(100)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(AgeModelLoad, MissingFileIsNotFoundAndGarbageIsInvalid) {
  EXPECT_EQ(AgeModel::Load("/nonexistent/faceres.onnx").status().code(),
            absl::StatusCode::kNotFound);
  const std::string junk = ::testing::TempDir() + "/junk.onnx";
  std::ofstream(junk) << "not an onnx file";
  EXPECT_EQ(AgeModel::Load(junk).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CorrectAge, BandContainsEstimateAndNeverGoesNegative) {
  for (double raw : {0.0, 2.0, 5.5, 9.0, 14.0, 30.0, 99.0}) {
    AgeEstimate e = CorrectAge(raw);
    EXPECT_TRUE(e.known);
    EXPECT_GE(e.min_years, 0);
    EXPECT_LE(e.min_years, e.years);
    EXPECT_GE(e.max_years, e.years);
    EXPECT_DOUBLE_EQ(e.raw_years, raw);
  }
  EXPECT_LE(CorrectAge(3).years, CorrectAge(10).years);
}

}  // namespace
}  // namespace homeward::embed
