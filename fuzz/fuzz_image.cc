// Fuzz target: image decode + the face pipeline entry (embed/face_pipeline.h), i.e. the bytes
// of every uploaded photo. Every input goes through ProbeImage and the decoder with the
// production limits (DecodeLimits{}); inputs whose header declares at most kProcessPixels
// also go through FacePipeline::Process once per detector: the CNN (FaceBoxes through OpenCV
// DNN, the server's default) when its model is installed, and dlib's HOG, each followed by
// landmarks, chips, the ResNet and the age network on one worker (tens of milliseconds per
// face).
//
// Outcomes checked: errors are INVALID_ARGUMENT or RESOURCE_EXHAUSTED only; a decoded image
// has the probed size (after EXIF rotation, which may swap the sides); Process agrees with
// the decoder and reports the detector that ran; every face has a box inside the photo, 68
// landmarks, a finite descriptor, a reason iff unusable, non_frontal exactly when its yaw is
// beyond the policy (and then not usable), a CNN score in (0, 1], and (with the age model
// installed) an age estimate inside its band.
//
// Without the models (scripts/setup.sh models) the target decodes only; without the FaceBoxes
// model it runs HOG only.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "embed/face_pipeline.h"
#include "embed/internal/decode.h"
#include "fuzz/fuzz_util.h"

namespace {

using homeward::fuzz::Fail;
namespace embed = homeward::embed;

constexpr int64_t kProcessPixels = 320 * 240;

// The pipelines Process runs on every small input: CNN (when its model is installed), HOG.
std::vector<const embed::FacePipeline*> pipelines;

void CheckError(const char* what, const absl::Status& s) {
  if (s.code() != absl::StatusCode::kInvalidArgument &&
      s.code() != absl::StatusCode::kResourceExhausted) {
    Fail(absl::StrCat(what, " returned ", s.ToString()));
  }
  if (s.message().empty()) Fail(absl::StrCat(what, " returned an error without a message"));
}

void CheckProcess(const embed::FacePipeline& pipeline, std::string_view bytes,
                  const embed::ImageInfo& info, int64_t w, int64_t h) {
  const embed::DetectorKind kind = pipeline.options().detector;
  const std::string name = embed::DetectorKindName(kind);
  auto faces = pipeline.Process(bytes);
  if (!faces.ok()) {
    CheckError(("Process (" + name + ")").c_str(), faces.status());
    return;
  }
  if (faces->width != w || faces->height != h || faces->format != info.format) {
    Fail("Process (" + name + ") and DecodeRgb disagree on the image");
  }
  if (faces->detector != kind) Fail("Process (" + name + ") reports another detector");
  if (faces->faces.empty() == faces->no_face_reason.empty()) {
    Fail("no_face_reason must be set exactly when no face was found");
  }
  const embed::QualityPolicy& policy = pipeline.options().quality;
  for (const embed::Face& f : faces->faces) {
    const embed::Box& b = f.box;
    if (b.x < 0 || b.y < 0 || b.width <= 0 || b.height <= 0 || b.x + b.width > w ||
        b.y + b.height > h) {
      Fail(absl::StrCat(name, " box ", b.width, "x", b.height, "+", b.x, "+", b.y,
                        " is not inside the ", w, "x", h, " photo"));
    }
    if (kind == embed::DetectorKind::kCnn && !(f.detector_score > 0 && f.detector_score <= 1)) {
      Fail(absl::StrCat("CNN face score ", f.detector_score, " is not a probability"));
    }
    if (f.landmarks.size() != 68) Fail(absl::StrCat(f.landmarks.size(), " landmarks"));
    for (float v : f.descriptor) {
      if (!std::isfinite(v)) Fail("a descriptor holds a non-finite value");
    }
    if (f.quality.usable != f.quality.reason.empty()) {
      Fail("quality.reason must be set exactly when the face is not usable");
    }
    if (!std::isfinite(f.quality.yaw_degrees) ||
        f.quality.non_frontal != (std::abs(f.quality.yaw_degrees) > policy.max_abs_yaw_degrees) ||
        (f.quality.non_frontal && f.quality.usable)) {
      Fail(absl::StrCat("yaw ", f.quality.yaw_degrees, " with non_frontal ",
                        f.quality.non_frontal, " and usable ", f.quality.usable));
    }
    if (pipeline.estimates_age() != f.age.known) Fail("a face without its age estimate");
    if (f.age.known && !(std::isfinite(f.age.years) && f.age.min_years >= 0 &&
                         f.age.min_years <= f.age.years && f.age.years <= f.age.max_years &&
                         f.age.max_years < 200)) {
      Fail(absl::StrCat("age estimate out of range: ", f.age.min_years, " <= ", f.age.years,
                        " <= ", f.age.max_years));
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (!homeward::fuzz::ModelsPresent()) {
    std::fprintf(stderr, "fuzz_image: models absent (scripts/setup.sh models): decode only\n");
    return 0;
  }
  embed::PipelineOptions o;
  o.recognition_model_path = homeward::fuzz::RecognitionModelPath();
  o.landmark_model_path = homeward::fuzz::LandmarkModelPath();
  o.workers = 1;
  // Cheaper than production per input (no upsampling, one network pass per face); the code
  // paths are the same.
  o.max_upsample = 1.0;
  o.mirror_augment = false;
  // The age network runs on every face when its model is installed (docs/AGE.md).
  std::error_code ec;
  if (std::filesystem::exists(homeward::fuzz::AgeModelPath(), ec)) {
    o.age_model_path = homeward::fuzz::AgeModelPath();
  } else {
    std::fprintf(stderr, "fuzz_image: age model absent: faces get no age estimate\n");
  }
  if (std::filesystem::exists(homeward::fuzz::FaceDetectorModelPath(), ec)) {
    embed::PipelineOptions cnn = o;
    cnn.detector = embed::DetectorKind::kCnn;
    cnn.face_detector_model_path = homeward::fuzz::FaceDetectorModelPath();
    auto p = embed::FacePipeline::Create(cnn);
    if (!p.ok()) Fail("FacePipeline::Create (cnn): " + p.status().ToString());
    pipelines.push_back(p->release());
  } else {
    std::fprintf(stderr, "fuzz_image: face detector model absent: HOG only\n");
  }
  auto p = embed::FacePipeline::Create(o);
  if (!p.ok()) Fail("FacePipeline::Create (hog): " + p.status().ToString());
  pipelines.push_back(p->release());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const embed::DecodeLimits limits;
  auto info = embed::ProbeImage(bytes, limits);
  if (!info.ok()) {
    CheckError("ProbeImage", info.status());
    return 0;
  }
  if (info->width <= 0 || info->height <= 0 || info->width * info->height > limits.max_pixels) {
    Fail(absl::StrCat("ProbeImage accepted ", info->width, "x", info->height));
  }
  embed::ImageInfo decoded_info;
  auto rgb = embed::internal::DecodeRgb(bytes, limits, &decoded_info);
  if (!rgb.ok()) {
    CheckError("DecodeRgb", rgb.status());
    return 0;
  }
  const int64_t w = rgb->cols, h = rgb->rows;
  if (rgb->channels() != 3 || rgb->depth() != 0 /*CV_8U*/) Fail("DecodeRgb: not 8-bit RGB");
  if (!((w == info->width && h == info->height) || (w == info->height && h == info->width))) {
    Fail(absl::StrCat("the ", info->format, " header declares ", info->width, "x", info->height,
                      " but the decoder produced ", w, "x", h,
                      ": the pixel limit was checked against the wrong size"));
  }
  if (pipelines.empty() || info->width * info->height > kProcessPixels) return 0;
  for (const embed::FacePipeline* pipeline : pipelines) CheckProcess(*pipeline, bytes, *info, w, h);
  return 0;
}
