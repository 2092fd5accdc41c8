// The face pipeline: photo bytes -> decoded image -> detected faces -> 68 landmarks ->
// aligned 150x150 chips -> 128-d descriptors, with quality signals a volunteer can act on.
//
// Owns: the loaded models (HOG detector, 68-point shape predictor, dlib's face-recognition
// ResNet, optionally the faceres-deep age network of embed/age_estimator.h) and a pool of workers, each with its own detector and network copy cloned from
// one loaded prototype (dlib's operator() is not const); the shape predictor is shared.
//
// THREAD SAFETY: every const method may be called from any number of threads at once;
// a call borrows a worker and waits while all workers are busy. Results are returned by
// value and owned by the caller.
//
// Errors: malformed, truncated, unsupported or over-limit images return INVALID_ARGUMENT
// (over-limit ones RESOURCE_EXHAUSTED) with a message that says what to fix. A photo
// without a face is a successful result with zero faces and a reason.
#ifndef HOMEWARD_EMBED_FACE_PIPELINE_H_
#define HOMEWARD_EMBED_FACE_PIPELINE_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "embed/age_estimator.h"

namespace homeward::embed {

inline constexpr int kDescriptorDim = 128;
using Descriptor = std::array<float, kDescriptorDim>;

// dlib's documented same-person threshold for this network (Euclidean distance).
inline constexpr double kSamePersonDistance = 0.6;

struct DecodeLimits {
  int64_t max_bytes = 20 << 20;        // larger bodies are refused before decoding
  int64_t max_pixels = 40'000'000;     // width*height from the header, checked before decoding
};

struct QualityPolicy {
  int min_face_width_px = 40;   // narrower faces give unreliable descriptors
  double min_sharpness = 20.0;  // variance of the Laplacian of the grey 150x150 chip
  double max_abs_yaw_degrees = 40.0;
};

// Which face detector runs (docs/ACCURACY.md, "Face detectors", has the measurements).
enum class DetectorKind {
  kHog,  // dlib's frontal HOG detector with the small-face policy below
  kCnn,  // FaceBoxes (embed/cnn_face_detector.h): turned and small faces, several times faster
};

// "hog" / "cnn" <-> DetectorKind. ParseDetectorKind: INVALID_ARGUMENT naming the choices.
absl::StatusOr<DetectorKind> ParseDetectorKind(std::string_view name);
const char* DetectorKindName(DetectorKind kind);

// dlib's 68-point predictor was trained on HOG's boxes (square, brows to chin); a CNN box is
// mapped to that geometry before the landmarks are placed. With s = sqrt(w x h) of the CNN
// box: centre += (dx, dy) x s, width = sw x s, height = sh x s. Fitted on LFW development
// photos where both detectors found the face (embed_bench fit-box-map).
struct BoxMap {
  double dx = 0, dy = 0, sw = 1, sh = 1;
};

// The fitted map (see BoxMap): least squares in units of s over the 3,510 faces of LFW's
// pairsDevTrain images that HOG (box inside the photo) and FaceBoxes (score >= 0.5, scale
// policy 1 MP / 2x) both found, matched by IoU > 0.3. FaceBoxes' box is taller than wide (h/w
// 1.38); HOG's is square, a little smaller and lower. Median IoU with HOG's box: 0.71 raw,
// 0.82 mapped. Residual rms (x s): dx 0.068, dy 0.040, sw 0.071, sh 0.071. Reproduce with
//   HOMEWARD_SHARED_DATA=/work/shared/data build/bench/embed_bench fit-box-map
// (docs/ACCURACY.md, "Face detectors", has the landmark agreement on DevTest).
inline constexpr BoxMap kFaceBoxesToHog = {-0.0088, 0.0570, 0.9648, 0.9649};

struct PipelineOptions {
  // dlib network file: the converted face-api weights or dlib's official
  // dlib_face_recognition_resnet_model_v1.dat (same network type).
  std::string recognition_model_path;
  std::string landmark_model_path = "/usr/share/dlib/shape_predictor_68_face_landmarks.dat";
  DecodeLimits limits;
  QualityPolicy quality;
  int workers = 0;  // 0: one per hardware thread
  // Small-face policy: the image is scaled by s = min(max_upsample, sqrt(detect_pixel_budget /
  // pixels)) before the HOG detector (whose window is 80 px) runs, so faces down to 80/s px are
  // found at a cost bounded by the budget. 640x480 -> s=2 (40 px faces); 1920x1080 -> s=1.39.
  double max_upsample = 2.0;
  int64_t detect_pixel_budget = 4'000'000;
  double detector_threshold = 0.0;  // added to the HOG detector's score threshold
  // Test-time augmentation: average the descriptors of the chip and its mirror image.
  // Measured on LFW's DevTest: 99.00% with it, 98.80% without (docs/ACCURACY.md); costs one
  // more network pass per face.
  bool mirror_augment = true;
  // The age network (ONNX, embed/age_estimator.h); empty: Face::age stays unknown.
  std::string age_model_path;
  // The crop it sees: a square of (1 + 2 x padding) x the face box (default), or dlib's aligned
  // chip with that padding (age_crop_aligned).
  double age_crop_padding = kAgeCropPadding;
  bool age_crop_aligned = false;
  AgeInput age_input = AgeInput::kCaffeBgr;

  DetectorKind detector = DetectorKind::kHog;
  // The FaceBoxes ONNX file (scripts/setup.sh models converts it); needed for kCnn.
  std::string face_detector_model_path;
  // The CNN's scale policy: s = min(cnn_max_upsample, sqrt(cnn_pixel_budget / pixels)).
  // FaceBoxes finds faces from about 20 px at the scale it sees.
  double cnn_max_upsample = 2.0;
  int64_t cnn_pixel_budget = 1'000'000;
  float cnn_score_threshold = 0.5f;
  BoxMap cnn_box_map = kFaceBoxesToHog;
  // Close faces in small photos upsampled 2x are missed (FG-NET's scans: 35 of 508 photos
  // without a face at one scale, 3 with these scans; docs/ACCURACY.md). For a photo the
  // policy upsamples (below cnn_pixel_budget), while the scan's shorter side is above
  // cnn_coarse_side px the CNN also runs at half that scale; a coarser scan adds the faces
  // that were bigger than cnn_coarse_side px at the finer one (the same face: IoU > 0.3 or
  // one box's centre inside the other; the finer scan's box wins). Costs at most a third
  // more CNN work on such photos; none on bigger ones. 0: one scale.
  int cnn_coarse_side = 256;
  // Frontal faces get HOG's own box: dlib's HOG detector runs on a crop around each CNN face
  // (2.8 times its side), scaled so the face is about 100 px wide, and its box replaces the mapped
  // one when they overlap (IoU >= 0.5). Turned faces, which HOG does not find, keep the
  // mapped box. LFW DevTest 98.00% -> 98.80-98.90% (HOG 99.00%); ~12 ms per face (a crop of
  // twice the side: ~6 ms, 98.70%).
  bool cnn_refine_with_hog = true;
  // HOG's score threshold on that crop. Below dlib's own 0 because the box must also overlap
  // the CNN's: LFW DevTrain 99.00% -> 99.05%, DevTest 98.80% -> 98.90% at -0.5.
  double cnn_refine_threshold = -0.5;
  // A face HOG does not confirm there is kept only when the CNN finds it again on the same
  // crop (the face at a fixed scale, in context) with at least this probability; 0: kept
  // always. Drops ears, hands, shirts and faces cut off by the frame: person-crowd's shirt
  // patch (0.20), 2 of fgnet-dev's 5 extra faces, while every face of the demo photos and
  // faces-small stays (lowest 0.36, a face cut by the frame) and every central LFW face
  // (lowest 0.78). docs/ACCURACY.md, "A second look".
  float cnn_recheck_min_score = 0.25f;
};

struct Box {
  int x = 0, y = 0, width = 0, height = 0;
};

struct Point {
  float x = 0, y = 0;
};

struct FaceQuality {
  int face_width_px = 0;
  double sharpness = 0;      // variance of the Laplacian of the grey chip; low = blurry
  double yaw_degrees = 0;    // rough, from landmarks; 0 = frontal, + = turned to its left
  // Turned beyond QualityPolicy::max_abs_yaw_degrees: found and kept as evidence, but the
  // descriptor reads it less reliably (search results say NON_FRONTAL).
  bool non_frontal = false;
  bool usable = false;
  std::string reason;        // why not usable, phrased as what to do; empty when usable
};

struct Face {
  Box box;                       // in the (EXIF-rotated) photo's pixel coordinates
  double detector_score = 0;     // HOG confidence, or the CNN's face probability (0..1)
  std::vector<Point> landmarks;  // 68 points, iBUG 300-W order
  FaceQuality quality;
  Descriptor descriptor{};
  AgeEstimate age;               // known only when the pipeline has an age model
};

struct PhotoFaces {
  int width = 0, height = 0;     // after EXIF orientation
  std::string format;            // "jpeg", "png", "webp", "bmp"
  double detect_scale = 1;       // s of the small-face policy (of the detector that ran)
  DetectorKind detector = DetectorKind::kHog;
  std::vector<Face> faces;
  std::string no_face_reason;    // set when faces is empty
};

// A raw RGB chip (row-major, 3 bytes a pixel) of size x size pixels.
struct Chip {
  int size = 0;
  std::vector<uint8_t> rgb;
};

struct ImageInfo {
  std::string format;
  int64_t width = 0, height = 0;
};

// Reads only the header of `bytes`. INVALID_ARGUMENT for empty, unknown or malformed data;
// RESOURCE_EXHAUSTED when the byte or pixel limit is exceeded.
absl::StatusOr<ImageInfo> ProbeImage(std::string_view bytes, const DecodeLimits& limits);

double DescriptorDistance(const Descriptor& a, const Descriptor& b);

// What one call computes besides the faces, their quality and descriptors.
struct ProcessRequest {
  // Each face's age from the age model, when the pipeline has one (~17-25 ms a face). The
  // service asks only where it uses it: a sighting sent without an age.
  bool estimate_age = true;
};

class FacePipeline {
 public:
  // Loads the models once. NOT_FOUND when a model file is missing, INVALID_ARGUMENT when it
  // cannot be read as the expected network.
  static absl::StatusOr<std::unique_ptr<FacePipeline>> Create(const PipelineOptions& options);
  ~FacePipeline();
  FacePipeline(const FacePipeline&) = delete;
  FacePipeline& operator=(const FacePipeline&) = delete;

  // Processes one photo on one worker.
  absl::StatusOr<PhotoFaces> Process(std::string_view image_bytes,
                                     const ProcessRequest& request = {}) const;

  // Skips detection: aligns and describes the face inside `box` (photo coordinates), e.g. a
  // face the caller marked by hand. INVALID_ARGUMENT when the box lies outside the photo.
  absl::StatusOr<PhotoFaces> ProcessBox(std::string_view image_bytes, const Box& box,
                                        const ProcessRequest& request = {}) const;

  // Processes many photos on all workers in parallel; results in input order.
  std::vector<absl::StatusOr<PhotoFaces>> ProcessMany(
      const std::vector<std::string_view>& images) const;

  // Descriptors of already aligned chips (size must be 150). INVALID_ARGUMENT otherwise.
  absl::StatusOr<std::vector<Descriptor>> DescribeChips(const std::vector<Chip>& chips) const;

  // The face inside `box`, aligned by its landmarks and scaled to size x size (32..512),
  // encoded as PNG: what a reviewer sees side by side.
  absl::StatusOr<std::string> FaceCropPng(std::string_view image_bytes, const Box& box,
                                          int size) const;

  // The aligned 150x150 chip of each face found in the photo (same order as Process).
  absl::StatusOr<std::vector<Chip>> FaceChips(std::string_view image_bytes) const;

  // The 224x224 crops the age network sees, one per face found (same order as Process).
  absl::StatusOr<std::vector<Chip>> AgeChips(std::string_view image_bytes) const;

  // True when an age model was loaded (PipelineOptions::age_model_path).
  bool estimates_age() const;

  const PipelineOptions& options() const;
  // Identifies the recognition model (file name + size), stored with every descriptor.
  const std::string& model_id() const;
  int workers() const;

 private:
  struct Impl;
  explicit FacePipeline(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace homeward::embed

#endif  // HOMEWARD_EMBED_FACE_PIPELINE_H_
