#include "embed/cnn_face_detector.h"

#include <algorithm>
#include <cmath>
#include <iterator>

#include <opencv2/dnn.hpp>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "embed/internal/onnx_net.h"

namespace homeward::embed {
namespace {

// The graph's constants, as `scripts/faceboxes_to_onnx.py constants` prints them (stored as
// float16 in the model, hence the odd digits).
constexpr float kInputScale = 0.0039215087890625f;  // mul/y: ~1/255
constexpr float kStandardizeMul = 2.0f;             // standardize_input/mul/x
constexpr float kStandardizeSub = 1.0f;             // standardize_input/sub/y
constexpr int kPadMultiple = 128;                   // image_padding/mul/x
// ty, tx, th, tw are divided by these (1 / decode_predictions/truediv*_recip).
constexpr double kScaleY = 10.002442002442002, kScaleX = 10.002442002442002;
constexpr double kScaleH = 5.001221001221001, kScaleW = 5.001221001221001;
// The NMS loop's prefilter (nms/map/while/GreaterEqual/y): anchors below it never reach NMS.
constexpr float kGraphScoreFloor = 0.04998779296875f;

// The anchor generator of the graph: per head, its stride and (size, density) pairs. Each cell
// holds, per pair, density x density anchors of that size spaced size/density apart around the
// cell centre, x outer and y inner.
struct AnchorSpec {
  int size;
  int density;
};
struct Head {
  int stride;
  std::vector<AnchorSpec> anchors;
  int count() const {
    int n = 0;
    for (const auto& a : anchors) n += a.density * a.density;
    return n;
  }
};
const std::vector<Head>& Heads() {
  static const std::vector<Head> kHeads = {
      {32, {{32, 4}, {64, 2}, {128, 1}}}, {64, {{256, 1}}}, {128, {{512, 1}}}};
  return kHeads;
}
const char* const kOutputs[] = {"cls0", "cls1", "cls2", "box0", "box1", "box2"};

}  // namespace

struct CnnFaceDetector::Impl {
  std::string id;
  std::vector<uchar> bytes;  // the file, kept for Clone()
  mutable cv::dnn::Net net;  // forward() is not const
};

CnnFaceDetector::CnnFaceDetector(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CnnFaceDetector::~CnnFaceDetector() = default;

absl::StatusOr<std::unique_ptr<CnnFaceDetector>> CnnFaceDetector::Load(const std::string& onnx_path) {
  auto impl = std::make_unique<Impl>();
  HW_ASSIGN_OR_RETURN(impl->bytes, internal::ReadModelFile(onnx_path, "face detector model"));
  impl->id = internal::ModelId(onnx_path, impl->bytes.size());
  auto net = internal::NetFromOnnx(impl->bytes, onnx_path, "face detector");
  if (!net.ok()) return net.status();
  impl->net = *net;
  std::unique_ptr<CnnFaceDetector> d(new CnnFaceDetector(std::move(impl)));
  // One pass proves the file has FaceBoxes' heads with the anchor counts this code expects.
  auto probe = d->RunAnchors(cv::Mat(128, 128, CV_8UC3, cv::Scalar(128, 128, 128)));
  if (!probe.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("face detector '", onnx_path,
                                                   "' is not FaceBoxes: ", probe.status().message()));
  }
  return d;
}

absl::StatusOr<std::unique_ptr<CnnFaceDetector>> CnnFaceDetector::Clone() const {
  auto impl = std::make_unique<Impl>();
  impl->id = impl_->id;
  impl->bytes = impl_->bytes;
  auto net = internal::NetFromOnnx(impl->bytes, impl->id, "face detector");
  if (!net.ok()) return net.status();
  impl->net = *net;
  return std::unique_ptr<CnnFaceDetector>(new CnnFaceDetector(std::move(impl)));
}

const std::string& CnnFaceDetector::model_id() const { return impl_->id; }

absl::StatusOr<CnnFaceDetector::Anchors> CnnFaceDetector::RunAnchors(const cv::Mat& rgb) const {
  if (rgb.empty() || rgb.type() != CV_8UC3 || rgb.cols < 8 || rgb.rows < 8) {
    return absl::InvalidArgumentError("the face detector needs an RGB image of at least 8x8 pixels");
  }
  const int h = rgb.rows, w = rgb.cols;
  const int ph = (h + kPadMultiple - 1) / kPadMultiple * kPadMultiple;
  const int pw = (w + kPadMultiple - 1) / kPadMultiple * kPadMultiple;
  // The graph: x * scale, zero padding below and to the right, then x * 2 - 1; NCHW here.
  const int shape[] = {1, 3, ph, pw};
  cv::Mat blob(4, shape, CV_32F, cv::Scalar(-kStandardizeSub));
  const size_t plane = static_cast<size_t>(ph) * pw;
  float* out = blob.ptr<float>();
  for (int y = 0; y < h; ++y) {
    const uint8_t* row = rgb.ptr<uint8_t>(y);
    for (int x = 0; x < w; ++x) {
      for (int c = 0; c < 3; ++c) {
        out[c * plane + static_cast<size_t>(y) * pw + x] =
            static_cast<float>(row[3 * x + c]) * kInputScale * kStandardizeMul - kStandardizeSub;
      }
    }
  }
  std::vector<cv::Mat> heads;
  try {
    impl_->net.setInput(blob);
    impl_->net.forward(heads, std::vector<cv::String>(std::begin(kOutputs), std::end(kOutputs)));
  } catch (const cv::Exception& e) {
    return absl::InternalError(absl::StrCat("face detector: OpenCV failed: ", e.what()));
  }
  Anchors result;
  const double sy = static_cast<double>(h) / ph, sx = static_cast<double>(w) / pw;
  for (size_t k = 0; k < Heads().size(); ++k) {
    const Head& head = Heads()[k];
    const cv::Mat& cls = heads[k];
    const cv::Mat& box = heads[k + 3];
    const int fh = ph / head.stride, fw = pw / head.stride, a = head.count();
    if (cls.dims != 4 || cls.size[1] != 2 * a || cls.size[2] != fh || cls.size[3] != fw ||
        box.dims != 4 || box.size[1] != 4 * a || box.size[2] != fh || box.size[3] != fw) {
      return absl::InvalidArgumentError(absl::StrCat(
          "head ", k, " has an unexpected shape (want ", 2 * a, "x", fh, "x", fw, " scores)"));
    }
    const float* cp = cls.ptr<float>();
    const float* bp = box.ptr<float>();
    const size_t fplane = static_cast<size_t>(fh) * fw;
    for (int i = 0; i < fh; ++i) {
      for (int j = 0; j < fw; ++j) {
        const size_t cell = static_cast<size_t>(i) * fw + j;
        int n = 0;
        for (const AnchorSpec& spec : head.anchors) {
          const double step = static_cast<double>(spec.size) / spec.density;
          for (int c = 0; c < spec.density; ++c) {
            for (int r = 0; r < spec.density; ++r, ++n) {
              // The anchor, normalized to the padded image and clipped to it, as the graph does.
              const double cy = head.stride * (i + 0.5) + (r - (spec.density - 1) / 2.0) * step;
              const double cx = head.stride * (j + 0.5) + (c - (spec.density - 1) / 2.0) * step;
              const double y0 = std::clamp((cy - spec.size / 2.0) / ph, 0.0, 1.0);
              const double x0 = std::clamp((cx - spec.size / 2.0) / pw, 0.0, 1.0);
              const double y1 = std::clamp((cy + spec.size / 2.0) / ph, 0.0, 1.0);
              const double x1 = std::clamp((cx + spec.size / 2.0) / pw, 0.0, 1.0);
              const double ya = (y0 + y1) / 2, xa = (x0 + x1) / 2, ha = y1 - y0, wa = x1 - x0;
              const double ty = bp[(4 * n + 0) * fplane + cell] / kScaleY;
              const double tx = bp[(4 * n + 1) * fplane + cell] / kScaleX;
              const double th = bp[(4 * n + 2) * fplane + cell] / kScaleH;
              const double tw = bp[(4 * n + 3) * fplane + cell] / kScaleW;
              const double bh = std::exp(th) * ha, bw = std::exp(tw) * wa;
              const double yc = ty * ha + ya, xc = tx * wa + xa;
              auto to_image = [](double v, double s) {
                return static_cast<float>(std::clamp(std::clamp(v, 0.0, 1.0) / s, 0.0, 1.0));
              };
              result.boxes.push_back({to_image(yc - bh / 2, sy), to_image(xc - bw / 2, sx),
                                      to_image(yc + bh / 2, sy), to_image(xc + bw / 2, sx)});
              const double l0 = cp[(2 * n) * fplane + cell], l1 = cp[(2 * n + 1) * fplane + cell];
              result.scores.push_back(static_cast<float>(1.0 / (1.0 + std::exp(l0 - l1))));
            }
          }
        }
      }
    }
  }
  return result;
}

absl::StatusOr<std::vector<CnnDetection>> CnnFaceDetector::Detect(
    const cv::Mat& rgb, const CnnDetectorOptions& options) const {
  auto anchors = RunAnchors(rgb);
  if (!anchors.ok()) return anchors.status();
  const float floor = std::max(options.score_threshold, kGraphScoreFloor);
  std::vector<cv::Rect2d> rects;
  std::vector<float> scores;
  for (size_t i = 0; i < anchors->scores.size(); ++i) {
    if (anchors->scores[i] < floor) continue;
    const auto& b = anchors->boxes[i];
    rects.emplace_back(b[1] * rgb.cols, b[0] * rgb.rows, (b[3] - b[1]) * rgb.cols,
                       (b[2] - b[0]) * rgb.rows);
    scores.push_back(anchors->scores[i]);
  }
  std::vector<int> keep;
  try {
    cv::dnn::NMSBoxes(rects, scores, floor, options.nms_iou, keep);
  } catch (const cv::Exception& e) {
    return absl::InternalError(absl::StrCat("face detector: NMS failed: ", e.what()));
  }
  std::sort(keep.begin(), keep.end(), [&](int a, int b) { return scores[a] > scores[b]; });
  std::vector<CnnDetection> out;
  for (int i : keep) {
    if (static_cast<int>(out.size()) >= options.max_faces) break;
    const cv::Rect2d& r = rects[i];
    if (r.width < 1 || r.height < 1) continue;
    out.push_back({static_cast<float>(r.x), static_cast<float>(r.y),
                   static_cast<float>(r.x + r.width), static_cast<float>(r.y + r.height), scores[i]});
  }
  return out;
}

}  // namespace homeward::embed
