#include "embed/age_estimator.h"

#include <algorithm>
#include <cmath>
#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "embed/internal/age_correction.h"
#include "embed/internal/onnx_net.h"

namespace homeward::embed {

AgeEstimate CorrectAge(double raw_years) {
  AgeEstimate e;
  e.known = true;
  e.raw_years = raw_years;
  e.years = std::max(0.0, internal::Interpolate(internal::kAgeCorrection, raw_years));
  e.min_years = std::max(0.0, e.years - internal::Interpolate(internal::kAgeBandBelow, e.years));
  e.max_years = e.years + internal::Interpolate(internal::kAgeBandAbove, e.years);
  return e;
}

struct AgeModel::Impl {
  std::string id;
  AgeInput input = AgeInput::kCaffeBgr;
  std::vector<uchar> bytes;  // the file, kept for Clone()
  mutable cv::dnn::Net net;  // forward() is not const
};

AgeModel::AgeModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AgeModel::~AgeModel() = default;

absl::StatusOr<std::unique_ptr<AgeModel>> AgeModel::Load(const std::string& onnx_path,
                                                         AgeInput input) {
  auto impl = std::make_unique<Impl>();
  impl->input = input;
  HW_ASSIGN_OR_RETURN(impl->bytes, internal::ReadModelFile(onnx_path, "age model"));
  impl->id = internal::ModelId(onnx_path, impl->bytes.size());
  auto net = internal::NetFromOnnx(impl->bytes, onnx_path, "age model");
  if (!net.ok()) return net.status();
  impl->net = *net;
  std::unique_ptr<AgeModel> model(new AgeModel(std::move(impl)));
  // One pass proves the file maps the input to 100 probabilities.
  auto probe = model->Run(std::vector<uint8_t>(size_t{kAgeInputSize} * kAgeInputSize * 3, 128));
  if (!probe.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "age model '", onnx_path, "' is not faceres-deep: ", probe.status().message()));
  }
  return model;
}

absl::StatusOr<std::unique_ptr<AgeModel>> AgeModel::Clone() const {
  auto impl = std::make_unique<Impl>();
  impl->id = impl_->id;
  impl->input = impl_->input;
  impl->bytes = impl_->bytes;
  auto net = internal::NetFromOnnx(impl->bytes, impl->id, "age model");
  if (!net.ok()) return net.status();
  impl->net = *net;
  return std::unique_ptr<AgeModel>(new AgeModel(std::move(impl)));
}

absl::StatusOr<AgeModel::Output> AgeModel::Run(const std::vector<uint8_t>& rgb) const {
  constexpr size_t kPlane = size_t{kAgeInputSize} * kAgeInputSize;
  if (rgb.size() != kPlane * 3) {
    return absl::InvalidArgumentError(absl::StrCat("age input must be ", kAgeInputSize, "x",
                                                   kAgeInputSize, " RGB (", rgb.size(),
                                                   " bytes given)"));
  }
  try {
    const int shape[] = {1, 3, kAgeInputSize, kAgeInputSize};
    cv::Mat blob(4, shape, CV_32F);
    float* dst = blob.ptr<float>();
    if (impl_->input == AgeInput::kRgb255) {
      for (size_t i = 0; i < kPlane; ++i) {
        for (int c = 0; c < 3; ++c) dst[c * kPlane + i] = rgb[i * 3 + c];
      }
    } else {
      // Keras' preprocess_input(mode="caffe"): channel 0 = B - 103.939, 1 = G - 116.779,
      // 2 = R - 123.68.
      constexpr float kMean[3] = {103.939f, 116.779f, 123.68f};
      for (size_t i = 0; i < kPlane; ++i) {
        for (int c = 0; c < 3; ++c) dst[c * kPlane + i] = rgb[i * 3 + (2 - c)] - kMean[c];
      }
    }
    impl_->net.setInput(blob);
    cv::Mat age = impl_->net.forward("age");
    if (age.total() != kAgeClasses || age.type() != CV_32F) {
      return absl::InvalidArgumentError(absl::StrCat("the network's 'age' output has ", age.total(),
                                                     " values, not ", kAgeClasses));
    }
    Output out;
    const float* p = age.ptr<float>();
    for (int i = 0; i < kAgeClasses; ++i) {
      out.probabilities[i] = p[i];
      out.expected_years += double{p[i]} * i;
    }
    if (!std::isfinite(out.expected_years)) {
      return absl::InternalError("age network returned a non-finite value");
    }
    return out;
  } catch (const cv::Exception& e) {
    return absl::InternalError(absl::StrCat("age network: ", e.what()));
  }
}

const std::string& AgeModel::model_id() const { return impl_->id; }

}  // namespace homeward::embed
