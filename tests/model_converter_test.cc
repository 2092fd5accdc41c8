// The converted network against face-api's own TF.js outputs, and the converter's errors.
#include "embed/model_converter.h"

#include <cstdio>
#include <filesystem>

#include "absl/strings/str_format.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "embed/face_pipeline.h"
#include "tests/embed_test_util.h"

namespace homeward::embed {
namespace {

using ::homeward::testing::ReadFileOrDie;

std::string FaceApiModelDir() {
  return ::homeward::testing::DemoDir() + "/../model";
}

// The synthetic chips of scripts/tfjs_reference/reference.mjs, integer arithmetic only.
Chip SyntheticChip(char which) {
  Chip c;
  c.size = 150;
  c.rgb.resize(150 * 150 * 3);
  for (int r = 0; r < 150; ++r)
    for (int col = 0; col < 150; ++col)
      for (int ch = 0; ch < 3; ++ch) {
        int v = which == 'A' ? (r * 3 + col * 5 + ch * 71 + ((r * col) % 23) * 4) % 256
                             : ((r / 10 + col / 10) % 2) * 200 + 20 + ch * 10;
        c.rgb[(r * 150 + col) * 3 + ch] = static_cast<uint8_t>(v);
      }
  return c;
}

// tests/data/tfjs_reference.json was computed once by scripts/tfjs_reference/reference.mjs:
// face-api 1.7.15's FaceRecognitionNet.computeFaceDescriptor on pure-JS TF.js 4.22 (cpu
// backend), fed the two chips above with the input pre-scaled so that face-api's
// (x - mean)/255 equals dlib's (p - mean)/256. It shares no code with the converter.
TEST(ModelConverter, ReproducesFaceApiTfjsDescriptors) {
  auto ref = nlohmann::json::parse(
      ReadFileOrDie(std::string(HOMEWARD_SOURCE_DIR) + "/tests/data/tfjs_reference.json"));
  PipelineOptions o;  // the plain network: no mirror averaging
  o.recognition_model_path = ::homeward::testing::RecognitionModelPath();
  o.mirror_augment = false;
  o.workers = 1;
  auto pipeline = FacePipeline::Create(o);
  ASSERT_TRUE(pipeline.ok()) << pipeline.status();
  auto got = (*pipeline)->DescribeChips({SyntheticChip('A'), SyntheticChip('B')});
  ASSERT_TRUE(got.ok()) << got.status();
  double worst = 0;
  for (int i = 0; i < 2; ++i) {
    const auto& expected = ref["chips"][i == 0 ? "A" : "B"];
    ASSERT_EQ(expected.size(), 128u);
    for (int k = 0; k < 128; ++k) {
      worst = std::max(worst, std::abs(double{(*got)[i][k]} - expected[k].get<double>()));
    }
  }
  RecordProperty("max_abs_diff", absl::StrFormat("%.3g", worst));
  std::printf("largest difference from TF.js: %.3g\n", worst);
  EXPECT_LT(worst, 2e-5) << "largest per-component difference from TF.js";
}

TEST(ModelConverter, RoundTripIsBitIdenticalToInstalledModel) {
  const std::string dir = FaceApiModelDir();
  const std::string out =
      (std::filesystem::temp_directory_path() / "homeward_convert_test.dat").string();
  ASSERT_TRUE(ConvertFaceApiRecognitionModel(
                  ReadFileOrDie(dir + "/face_recognition_model-weights_manifest.json"),
                  ReadFileOrDie(dir + "/face_recognition_model.bin"), out)
                  .ok());
  // Compared as a whole (EXPECT_EQ would diff 20 MB of bytes on failure).
  EXPECT_TRUE(ReadFileOrDie(out) == ReadFileOrDie(::homeward::testing::RecognitionModelPath()))
      << "conversion is not deterministic";
  PipelineOptions o;
  o.recognition_model_path = out;
  o.workers = 1;
  auto reloaded = FacePipeline::Create(o);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  auto a = (*reloaded)->DescribeChips({SyntheticChip('A')});
  auto b = ::homeward::testing::SharedPipeline().DescribeChips({SyntheticChip('A')});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ((*a)[0], (*b)[0]);
  std::remove(out.c_str());
}

TEST(ModelConverter, ManifestErrorsAreInvalidArgument) {
  EXPECT_EQ(ParseTfjsManifest("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseTfjsManifest("{not json").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseTfjsManifest("[]").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseTfjsManifest(R"([{"weights":[{"name":"x","shape":[2],"dtype":"int32"}]}])")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseTfjsManifest(R"([{"weights":[{"name":"x","shape":[-2],"dtype":"float32"}]}])")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      ParseTfjsManifest(
          R"([{"weights":[{"name":"x","shape":[2],"dtype":"float32","quantization":{"dtype":"uint16"}}]}])")
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
}

TEST(ModelConverter, WeightsMustBeConsumedExactly) {
  const std::string dir = FaceApiModelDir();
  const std::string manifest = ReadFileOrDie(dir + "/face_recognition_model-weights_manifest.json");
  std::string bin = ReadFileOrDie(dir + "/face_recognition_model.bin");
  auto tensors = ParseTfjsManifest(manifest);
  ASSERT_TRUE(tensors.ok());
  EXPECT_EQ(tensors->size(), 29u * 4 + 1);  // 29 x (filters, bias, scale, offset) + fc
  EXPECT_TRUE(DecodeTfjsWeights(*tensors, bin).ok());
  EXPECT_EQ(DecodeTfjsWeights(*tensors, std::string_view(bin).substr(0, bin.size() - 1))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeTfjsWeights(*tensors, bin + "x").status().code(),
            absl::StatusCode::kInvalidArgument);
  // A manifest with a tensor missing no longer matches the network's layers.
  auto j = nlohmann::json::parse(manifest);
  j[0]["weights"].erase(j[0]["weights"].begin() + 5);
  EXPECT_EQ(ConvertFaceApiRecognitionModel(j.dump(), bin, "/tmp/never_written.dat").code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace homeward::embed
