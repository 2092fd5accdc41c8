#include "embed/face_pipeline.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

#include <dlib/dnn.h>
#include <dlib/image_processing.h>
#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/opencv/cv_image.h>
#include <opencv2/calib3d.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "embed/cnn_face_detector.h"
#include "embed/internal/decode.h"
#include "embed/internal/resnet.h"

extern "C" void openblas_set_num_threads(int num_threads);

namespace homeward::embed {
namespace {

using internal::anet_type;
using internal::kChipPadding;
using internal::kChipSize;

constexpr int kDescriptorBatch = 16;
// The CNN's second look at a face (LookAgain): anchors from this score reach its NMS, and a
// box found again must overlap the first one this much.
constexpr float kRecheckFloor = 0.05f;
constexpr double kRecheckIou = 0.3;

// HOG's pyramid levels scanned on LookAgain's crop. With the face scaled to 100 px, levels
// 0-2 report boxes of about 87, 104 and 125 px; from level 3 (150 px) on, no box can overlap
// the 100 px face with the IoU >= 0.5 a refinement needs ((100 / 150)^2 < 0.5). Those levels
// cost about a tenth of the refinement, and their big boxes could only take part in HOG's
// non-max suppression (LFW DevTrain 99.05% -> 99.14%, DevTest 98.90% both; docs/ACCURACY.md).
constexpr unsigned long kRefinePyramidLevels = 3;

// `d` scanning only its first `levels` pyramid levels (the smallest faces).
dlib::frontal_face_detector WithPyramidLevels(const dlib::frontal_face_detector& d,
                                              unsigned long levels) {
  dlib::frontal_face_detector::image_scanner_type scanner;  // not copyable
  scanner.copy_configuration(d.get_scanner());
  scanner.set_max_pyramid_levels(levels);
  std::vector<dlib::frontal_face_detector::feature_vector_type> w;
  for (unsigned long i = 0; i < d.num_detectors(); ++i) w.push_back(d.get_w(i));
  return dlib::frontal_face_detector(scanner, d.get_overlap_tester(), w);
}

struct Worker {
  dlib::frontal_face_detector detector;
  dlib::frontal_face_detector refine_detector;  // LookAgain's: kRefinePyramidLevels levels
  std::unique_ptr<CnnFaceDetector> cnn;  // null unless the CNN detector is chosen
  anet_type net;
  std::unique_ptr<AgeModel> age;  // null without an age model
};

// Library exceptions stop here (dlib throws dlib::error and std::exceptions).
template <typename F>
auto Guarded(const char* what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat(what, ": out of memory"));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(what, ": ", e.what()));
  }
}

// Head yaw from six landmarks and a generic 3D face (the classic solvePnP head-pose
// recipe): a pinhole camera whose focal length is the photo's width, centred on the face so
// the angle is measured against the line of sight (a frontal face at the edge of a wide
// photo is still frontal).
double YawDegrees(const dlib::full_object_detection& shape, int image_width) {
  static const std::vector<cv::Point3d> kModel = {
      {0.0, 0.0, 0.0},          // nose tip (30)
      {0.0, -330.0, -65.0},     // chin (8)
      {-225.0, 170.0, -135.0},  // left eye, outer corner (36)
      {225.0, 170.0, -135.0},   // right eye, outer corner (45)
      {-150.0, -150.0, -125.0}, // mouth, left corner (48)
      {150.0, -150.0, -125.0}}; // mouth, right corner (54)
  std::vector<cv::Point2d> image;
  for (int k : {30, 8, 36, 45, 48, 54}) image.emplace_back(shape.part(k).x(), shape.part(k).y());
  const double f = image_width;
  const cv::Point2d centre = image[0];
  cv::Mat camera = (cv::Mat_<double>(3, 3) << f, 0, centre.x, 0, f, centre.y, 0, 0, 1);
  cv::Mat rvec, tvec, r;
  if (!cv::solvePnP(kModel, image, camera, cv::Mat(), rvec, tvec)) return 90;
  cv::Rodrigues(rvec, r);
  const double sy = std::hypot(r.at<double>(0, 0), r.at<double>(1, 0));
  return std::atan2(-r.at<double>(2, 0), sy) * 180.0 / M_PI;
}

double Sharpness(const dlib::matrix<dlib::rgb_pixel>& chip) {
  cv::Mat rgb(static_cast<int>(chip.nr()), static_cast<int>(chip.nc()), CV_8UC3,
              const_cast<dlib::rgb_pixel*>(&chip(0, 0)));
  cv::Mat grey, lap;
  cv::cvtColor(rgb, grey, cv::COLOR_RGB2GRAY);
  cv::Laplacian(grey, lap, CV_64F);
  cv::Scalar mean, stddev;
  cv::meanStdDev(lap, mean, stddev);
  return stddev[0] * stddev[0];
}

FaceQuality Assess(const QualityPolicy& policy, int width_px, double sharpness, double yaw) {
  FaceQuality q;
  q.face_width_px = width_px;
  q.sharpness = sharpness;
  q.yaw_degrees = yaw;
  if (width_px < policy.min_face_width_px) {
    q.reason = absl::StrFormat("face too small (%d px wide, need %d): move closer or crop", width_px,
                               policy.min_face_width_px);
  } else if (sharpness < policy.min_sharpness) {
    q.reason = absl::StrFormat("too blurry (sharpness %.0f, need %.0f): hold still and retake",
                               sharpness, policy.min_sharpness);
  } else if (std::abs(yaw) > policy.max_abs_yaw_degrees) {
    q.reason = absl::StrFormat("face turned away (about %.0f degrees): photograph from the front",
                               std::abs(yaw));
  }
  q.non_frontal = std::abs(yaw) > policy.max_abs_yaw_degrees;
  q.usable = q.reason.empty();
  return q;
}

}  // namespace

absl::StatusOr<DetectorKind> ParseDetectorKind(std::string_view name) {
  if (name == "hog") return DetectorKind::kHog;
  if (name == "cnn") return DetectorKind::kCnn;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown face detector '", std::string(name), "': choose cnn (FaceBoxes) or hog (dlib)"));
}

const char* DetectorKindName(DetectorKind kind) {
  return kind == DetectorKind::kCnn ? "cnn" : "hog";
}

double DescriptorDistance(const Descriptor& a, const Descriptor& b) {
  double sum = 0;
  for (int i = 0; i < kDescriptorDim; ++i) {
    const double d = double{a[i]} - b[i];
    sum += d * d;
  }
  return std::sqrt(sum);
}

struct FacePipeline::Impl {
  PipelineOptions options;
  std::string model_id;
  dlib::shape_predictor landmarks;  // const operator(): shared by all workers
  std::vector<std::unique_ptr<Worker>> workers;

  std::mutex mu;
  std::condition_variable cv;
  std::vector<Worker*> idle;  // guarded by mu

  Worker* Acquire() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [this] { return !idle.empty(); });
    Worker* w = idle.back();
    idle.pop_back();
    return w;
  }
  void Release(Worker* w) {
    {
      std::lock_guard<std::mutex> lock(mu);
      idle.push_back(w);
    }
    cv.notify_one();
  }

  // Borrows a worker for the scope.
  class Lease {
   public:
    explicit Lease(Impl& impl) : impl_(impl), worker_(impl.Acquire()) {}
    ~Lease() { impl_.Release(worker_); }
    Worker& operator*() const { return *worker_; }

   private:
    Impl& impl_;
    Worker* worker_;
  };

  // Runs the descriptor network over `chips` in batches, with optional mirror averaging.
  std::vector<Descriptor> Describe(Worker& w, const std::vector<dlib::matrix<dlib::rgb_pixel>>& chips) {
    std::vector<Descriptor> out(chips.size());
    if (chips.empty()) return out;
    std::vector<dlib::matrix<float, 0, 1>> d = w.net(chips, kDescriptorBatch);
    if (options.mirror_augment) {
      std::vector<dlib::matrix<dlib::rgb_pixel>> mirrored;
      mirrored.reserve(chips.size());
      for (const auto& c : chips) mirrored.push_back(dlib::fliplr(c));
      std::vector<dlib::matrix<float, 0, 1>> m = w.net(mirrored, kDescriptorBatch);
      for (size_t i = 0; i < d.size(); ++i) d[i] = (d[i] + m[i]) * 0.5f;
    }
    for (size_t i = 0; i < d.size(); ++i) {
      std::copy(d[i].begin(), d[i].end(), out[i].begin());
    }
    return out;
  }

  struct Detected {
    dlib::rectangle rect;  // in image coordinates
    double score;
    dlib::full_object_detection shape;
    dlib::matrix<dlib::rgb_pixel> chip;
  };

  // Aligns and crops the face inside `rect` (image coordinates).
  Detected Align(const cv::Mat& rgb, const dlib::rectangle& rect, double score) {
    dlib::cv_image<dlib::rgb_pixel> img(rgb);
    Detected f;
    f.rect = rect;
    f.score = score;
    f.shape = landmarks(img, f.rect);
    dlib::extract_image_chip(img, dlib::get_face_chip_details(f.shape, kChipSize, kChipPadding),
                             f.chip);
    return f;
  }

  // The loose, aligned crop of the face that the age network sees.
  dlib::matrix<dlib::rgb_pixel> AgeChip(const cv::Mat& rgb, const dlib::full_object_detection& shape) {
    dlib::matrix<dlib::rgb_pixel> chip;
    if (options.age_crop_aligned) {
      dlib::cv_image<dlib::rgb_pixel> img(rgb);
      dlib::extract_image_chip(
          img, dlib::get_face_chip_details(shape, kAgeInputSize, options.age_crop_padding), chip);
      return chip;
    }
    // A square of (1 + 2 x padding) x the face box around its centre, black beyond the photo.
    const dlib::rectangle r = shape.get_rect();
    const double side = (1 + 2 * options.age_crop_padding) * std::max(r.width(), r.height());
    const int s = std::max(8, static_cast<int>(std::lround(side)));
    const int x0 = static_cast<int>(std::lround((r.left() + r.right()) / 2.0 - s / 2.0));
    const int y0 = static_cast<int>(std::lround((r.top() + r.bottom()) / 2.0 - s / 2.0));
    cv::Mat square(s, s, CV_8UC3, cv::Scalar(0, 0, 0));
    const cv::Rect inside = cv::Rect(x0, y0, s, s) & cv::Rect(0, 0, rgb.cols, rgb.rows);
    if (inside.area() > 0) rgb(inside).copyTo(square(inside - cv::Point(x0, y0)));
    chip.set_size(kAgeInputSize, kAgeInputSize);
    cv::Mat out(kAgeInputSize, kAgeInputSize, CV_8UC3, &chip(0, 0));
    cv::resize(square, out, out.size(), 0, 0, s > kAgeInputSize ? cv::INTER_AREA : cv::INTER_LINEAR);
    return chip;
  }

  AgeEstimate EstimateAge(Worker& w, const cv::Mat& rgb, const dlib::full_object_detection& shape) {
    if (w.age == nullptr) return {};
    dlib::matrix<dlib::rgb_pixel> chip = AgeChip(rgb, shape);
    const auto* p = reinterpret_cast<const uint8_t*>(&chip(0, 0));
    auto out = w.age->Run(std::vector<uint8_t>(p, p + size_t{kAgeInputSize} * kAgeInputSize * 3));
    if (!out.ok()) {
      std::fprintf(stderr, "homeward: age estimate failed: %s\n", std::string(out.status().message()).c_str());
      return {};
    }
    return CorrectAge(out->expected_years);
  }

  // The scale the detector sees the photo at (its small-face policy).
  double DetectScale(const cv::Mat& rgb) const {
    const double pixels = static_cast<double>(rgb.cols) * rgb.rows;
    if (options.detector == DetectorKind::kCnn) {
      return std::min(options.cnn_max_upsample,
                      std::sqrt(static_cast<double>(options.cnn_pixel_budget) / pixels));
    }
    return std::min(options.max_upsample,
                    std::sqrt(static_cast<double>(options.detect_pixel_budget) / pixels));
  }

  // A CNN box (photo coordinates) in the HOG geometry the landmark predictor expects.
  dlib::rectangle MapCnnBox(const CnnDetection& d) const {
    const BoxMap& m = options.cnn_box_map;
    const double w = d.right - d.left, h = d.bottom - d.top;
    const double side = std::sqrt(std::max(w * h, 1.0));
    const double cx = (d.left + d.right) / 2 + m.dx * side;
    const double cy = (d.top + d.bottom) / 2 + m.dy * side;
    const double mw = m.sw * side, mh = m.sh * side;
    return dlib::rectangle(std::lround(cx - mw / 2), std::lround(cy - mh / 2),
                           std::lround(cx + mw / 2) - 1, std::lround(cy + mh / 2) - 1);
  }

  // The CNN's faces in photo coordinates, best first: `scan` is `rgb` at `scale`; when the
  // photo was upsampled (scale > 1), coarser scans (half the scale each) follow while the
  // last one's shorter side is above cnn_coarse_side, for the faces too big for the finer one.
  // The scans' faces are merged as described below.
  absl::StatusOr<std::vector<CnnDetection>> DetectCnn(Worker& w, const cv::Mat& rgb,
                                                      const cv::Mat& scan, double scale) {
    CnnDetectorOptions o;
    o.score_threshold = options.cnn_score_threshold;
    struct Found {
      CnnDetection d;
      int level;
    };
    std::vector<Found> all;
    cv::Mat level = scan;
    double s = scale;
    for (int k = 0; level.cols >= 8 && level.rows >= 8; ++k) {
      HW_ASSIGN_OR_RETURN(std::vector<CnnDetection> dets, w.cnn->Detect(level, o));
      for (CnnDetection d : dets) {
        // A coarser scan adds only faces that were big at the finer one (side above
        // cnn_coarse_side there): smaller faces are the finer scan's to find.
        const double side = std::sqrt(double{d.right - d.left} * (d.bottom - d.top));
        if (k > 0 && 2 * side < options.cnn_coarse_side) continue;
        d.left /= s, d.top /= s, d.right /= s, d.bottom /= s;
        all.push_back({d, k});
      }
      if (options.cnn_coarse_side <= 0 || scale <= 1 ||
          std::min(level.cols, level.rows) <= options.cnn_coarse_side) {
        break;
      }
      s /= 2;
      cv::resize(rgb, level, cv::Size(), s, s, cv::INTER_AREA);
    }
    // Best first; a box whose centre lies inside a better box, or the other way round, is
    // the same face (an eye, a collar at its edge, or the face again at another scale). When
    // a finer scan saw the same face (IoU above the NMS threshold), its box is kept: it is
    // tighter (the half-scale box of a turned toddler takes in her hair, and the landmarks
    // then read her as frontal).
    std::stable_sort(all.begin(), all.end(),
                     [](const Found& a, const Found& b) { return a.d.score > b.d.score; });
    auto centre_inside = [](const CnnDetection& a, const CnnDetection& b) {
      const float cx = (a.left + a.right) / 2, cy = (a.top + a.bottom) / 2;
      return cx > b.left && cx < b.right && cy > b.top && cy < b.bottom;
    };
    auto rect = [](const CnnDetection& d) {
      return cv::Rect2d(d.left, d.top, d.right - d.left, d.bottom - d.top);
    };
    std::vector<Found> kept;
    for (const Found& f : all) {
      bool duplicate = false;
      for (size_t i = 0; i < kept.size() && !duplicate; ++i) {
        Found& k = kept[i];
        const double inter = (rect(k.d) & rect(f.d)).area();
        const bool same_face = inter / (rect(k.d).area() + rect(f.d).area() - inter) > o.nms_iou;
        duplicate = same_face || centre_inside(f.d, k.d) || centre_inside(k.d, f.d);
        if (same_face && f.level < k.level) {  // the finer scan's box, the better score
          const float score = k.d.score;
          k = f;
          k.d.score = score;
        }
      }
      if (!duplicate) kept.push_back(f);
    }
    std::vector<CnnDetection> out;
    for (const Found& k : kept) out.push_back(k.d);
    return out;
  }

  // A second look at a CNN face, on a crop of the face +- 0.9 x its side scaled so the face is
  // about 100 px wide. HOG's box when dlib's HOG detector finds the face there (see
  // cnn_refine_with_hog); else `mapped` when the CNN finds the face again on the crop with at
  // least cnn_recheck_min_score, or when the check is off or the crop is too small to tell;
  // else nullopt: not a face.
  std::optional<dlib::rectangle> LookAgain(Worker& w, const cv::Mat& rgb, const dlib::rectangle& mapped) {
    constexpr double kFacePx = 100, kContext = 0.9;
    if (!options.cnn_refine_with_hog && options.cnn_recheck_min_score <= 0) return mapped;
    const double side = std::max(mapped.width(), mapped.height());
    const double cx = (mapped.left() + mapped.right()) / 2.0;
    const double cy = (mapped.top() + mapped.bottom()) / 2.0;
    const cv::Rect crop = cv::Rect(static_cast<int>(std::floor(cx - side * (0.5 + kContext))),
                                   static_cast<int>(std::floor(cy - side * (0.5 + kContext))),
                                   static_cast<int>(std::ceil(side * (1 + 2 * kContext))),
                                   static_cast<int>(std::ceil(side * (1 + 2 * kContext)))) &
                          cv::Rect(0, 0, rgb.cols, rgb.rows);
    const double f = kFacePx / side;
    if (crop.area() == 0 || crop.width * f < 80 || crop.height * f < 80) return mapped;
    cv::Mat small;
    cv::resize(rgb(crop), small, cv::Size(), f, f, f < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
    // The mapped box in the crop's pixels.
    const cv::Rect2d face((mapped.left() - crop.x) * f, (mapped.top() - crop.y) * f,
                          mapped.width() * f, mapped.height() * f);
    auto iou = [&face](const cv::Rect2d& r) { return (r & face).area() / (r | face).area(); };
    if (options.cnn_refine_with_hog) {
      dlib::cv_image<dlib::rgb_pixel> img(small);
      std::vector<dlib::rect_detection> dets;
      w.refine_detector(img, dets, options.cnn_refine_threshold);
      const dlib::rect_detection* best = nullptr;
      double best_iou = 0.5;
      for (const auto& d : dets) {
        const double o = iou(cv::Rect2d(d.rect.left(), d.rect.top(), d.rect.width(), d.rect.height()));
        if (o >= best_iou) best = &d, best_iou = o;
      }
      if (best != nullptr) {
        return dlib::rectangle(std::lround(best->rect.left() / f) + crop.x,
                               std::lround(best->rect.top() / f) + crop.y,
                               std::lround(best->rect.right() / f) + crop.x,
                               std::lround(best->rect.bottom() / f) + crop.y);
      }
    }
    if (options.cnn_recheck_min_score <= 0) return mapped;
    CnnDetectorOptions o;
    o.score_threshold = kRecheckFloor;
    auto again = w.cnn->Detect(small, o);
    if (!again.ok()) return mapped;  // no evidence either way: keep the face
    for (const CnnDetection& d : *again) {
      if (d.score >= options.cnn_recheck_min_score &&
          iou(cv::Rect2d(d.left, d.top, d.right - d.left, d.bottom - d.top)) >= kRecheckIou) {
        return mapped;
      }
    }
    return std::nullopt;
  }

  // Detects, aligns and crops every face of `rgb`.
  absl::StatusOr<std::vector<Detected>> DetectAndAlign(Worker& w, const cv::Mat& rgb,
                                                       double* scale_out) {
    const double scale = DetectScale(rgb);
    *scale_out = scale;
    cv::Mat scan = rgb;
    if (std::abs(scale - 1.0) > 1e-3) {
      cv::resize(rgb, scan, cv::Size(), scale, scale, scale > 1 ? cv::INTER_LINEAR : cv::INTER_AREA);
    }
    std::vector<Detected> out;
    if (options.detector == DetectorKind::kCnn) {
      HW_ASSIGN_OR_RETURN(std::vector<CnnDetection> dets, DetectCnn(w, rgb, scan, scale));
      for (const auto& d : dets) {
        std::optional<dlib::rectangle> rect = LookAgain(w, rgb, MapCnnBox(d));
        if (rect) out.push_back(Align(rgb, *rect, d.score));
      }
      return out;
    }
    std::vector<dlib::rect_detection> dets;
    if (scan.cols >= 20 && scan.rows >= 20) {
      dlib::cv_image<dlib::rgb_pixel> scan_img(scan);
      w.detector(scan_img, dets, options.detector_threshold);
    }
    for (const auto& d : dets) {
      dlib::rectangle rect(std::lround(d.rect.left() / scale), std::lround(d.rect.top() / scale),
                           std::lround(d.rect.right() / scale), std::lround(d.rect.bottom() / scale));
      out.push_back(Align(rgb, rect, d.detection_confidence));
    }
    return out;
  }

  static absl::Status CheckBox(const Box& box, const cv::Mat& rgb) {
    if (box.width < 8 || box.height < 8 || box.x < 0 || box.y < 0 ||
        int64_t{box.x} + box.width > rgb.cols || int64_t{box.y} + box.height > rgb.rows) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "face box %dx%d+%d+%d must lie inside the %dx%d photo and be at least 8 px", box.width,
          box.height, box.x, box.y, rgb.cols, rgb.rows));
    }
    return absl::OkStatus();
  }
  static dlib::rectangle ToRect(const Box& box) {
    return dlib::rectangle(box.x, box.y, box.x + box.width - 1, box.y + box.height - 1);
  }

  // Decodes `bytes`, then detects faces, or uses `box` when given.
  absl::StatusOr<PhotoFaces> ProcessOn(Worker& w, std::string_view bytes, const Box* box,
                                       const ProcessRequest& request) {
    ImageInfo info;
    HW_ASSIGN_OR_RETURN(cv::Mat rgb, internal::DecodeRgb(bytes, options.limits, &info));
    if (box != nullptr) HW_RETURN_IF_ERROR(CheckBox(*box, rgb));
    return Guarded("face pipeline", [&]() -> absl::StatusOr<PhotoFaces> {
      PhotoFaces result;
      result.width = rgb.cols;
      result.height = rgb.rows;
      result.format = info.format;
      result.detector = options.detector;
      std::vector<Detected> found;
      if (box == nullptr) {
        HW_ASSIGN_OR_RETURN(found, DetectAndAlign(w, rgb, &result.detect_scale));
      } else {
        found.push_back(Align(rgb, ToRect(*box), 0.0));
      }
      std::vector<dlib::matrix<dlib::rgb_pixel>> chips;
      for (const auto& f : found) chips.push_back(f.chip);
      std::vector<Descriptor> descriptors = Describe(w, chips);
      for (size_t i = 0; i < found.size(); ++i) {
        const Detected& f = found[i];
        Face face;
        // The box inside the photo (a mapped CNN box of a face at the edge can reach past it;
        // the landmarks were placed with the whole box).
        const dlib::rectangle inside =
            f.rect.intersect(dlib::rectangle(0, 0, rgb.cols - 1, rgb.rows - 1));
        face.box = {static_cast<int>(inside.left()), static_cast<int>(inside.top()),
                    static_cast<int>(inside.width()), static_cast<int>(inside.height())};
        face.detector_score = f.score;
        for (unsigned k = 0; k < f.shape.num_parts(); ++k) {
          face.landmarks.push_back(
              {static_cast<float>(f.shape.part(k).x()), static_cast<float>(f.shape.part(k).y())});
        }
        face.quality = Assess(options.quality, static_cast<int>(f.rect.width()), Sharpness(f.chip),
                              YawDegrees(f.shape, rgb.cols));
        face.descriptor = descriptors[i];
        if (request.estimate_age) face.age = EstimateAge(w, rgb, f.shape);
        result.faces.push_back(std::move(face));
      }
      if (result.faces.empty() && options.detector == DetectorKind::kCnn) {
        const int min_face = static_cast<int>(std::ceil(20.0 / result.detect_scale));
        result.no_face_reason = absl::StrCat(
            "no face found (faces narrower than about ", min_face,
            " px, hidden or seen from behind are not detected in this photo)");
      } else if (result.faces.empty()) {
        const int min_face = static_cast<int>(std::ceil(80.0 / result.detect_scale));
        result.no_face_reason = absl::StrCat(
            "no face found (faces narrower than about ", min_face,
            " px or turned more than ~30 degrees are not detected in this photo)");
      }
      return result;
    });
  }
};

FacePipeline::FacePipeline(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FacePipeline::~FacePipeline() = default;

absl::StatusOr<std::unique_ptr<FacePipeline>> FacePipeline::Create(const PipelineOptions& options) {
  namespace fs = std::filesystem;
  for (const std::string* path : {&options.recognition_model_path, &options.landmark_model_path}) {
    std::error_code ec;
    if (path->empty() || !fs::is_regular_file(*path, ec)) {
      return absl::NotFoundError(absl::StrCat("model file '", *path,
                                              "' not found (run scripts/setup.sh to fetch models)"));
    }
  }
  if (options.max_upsample <= 0 || options.detect_pixel_budget <= 0) {
    return absl::InvalidArgumentError("max_upsample and detect_pixel_budget must be positive");
  }
  if (options.cnn_max_upsample <= 0 || options.cnn_pixel_budget <= 0 ||
      !(options.cnn_score_threshold > 0 && options.cnn_score_threshold < 1)) {
    return absl::InvalidArgumentError(
        "cnn_max_upsample and cnn_pixel_budget must be positive, cnn_score_threshold in (0,1)");
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  std::error_code ec;
  impl->model_id = absl::StrCat(fs::path(options.recognition_model_path).filename().string(), ":",
                                fs::file_size(options.recognition_model_path, ec));
  anet_type prototype;
  try {
    dlib::deserialize(options.landmark_model_path) >> impl->landmarks;
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("cannot read landmark model '",
                                                   options.landmark_model_path, "': ", e.what()));
  }
  try {
    dlib::deserialize(options.recognition_model_path) >> prototype;
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("cannot read recognition model '",
                                                   options.recognition_model_path, "': ", e.what()));
  }
  std::unique_ptr<AgeModel> age_prototype;
  if (!options.age_model_path.empty()) {
    if (!(options.age_crop_padding >= 0 && options.age_crop_padding <= 2)) {
      return absl::InvalidArgumentError("age_crop_padding must be in 0..2");
    }
    HW_ASSIGN_OR_RETURN(age_prototype, AgeModel::Load(options.age_model_path, options.age_input));
  }
  std::unique_ptr<CnnFaceDetector> cnn_prototype;
  if (options.detector == DetectorKind::kCnn) {
    HW_ASSIGN_OR_RETURN(cnn_prototype, CnnFaceDetector::Load(options.face_detector_model_path));
  }
  // Parallelism comes from the workers; OpenBLAS threads would compete with them.
  openblas_set_num_threads(1);
  int n = options.workers > 0 ? options.workers
                              : std::max(1u, std::thread::hardware_concurrency());
  dlib::frontal_face_detector detector = dlib::get_frontal_face_detector();
  const dlib::frontal_face_detector refine_detector =
      WithPyramidLevels(detector, kRefinePyramidLevels);
  for (int i = 0; i < n; ++i) {
    auto w = std::make_unique<Worker>();
    w->detector = detector;
    w->refine_detector = refine_detector;
    w->net = prototype;
    if (cnn_prototype != nullptr) {
      if (i + 1 < n) {
        HW_ASSIGN_OR_RETURN(w->cnn, cnn_prototype->Clone());
      } else {
        w->cnn = std::move(cnn_prototype);
      }
    }
    if (age_prototype != nullptr) {
      if (i + 1 < n) {
        HW_ASSIGN_OR_RETURN(w->age, age_prototype->Clone());
      } else {
        w->age = std::move(age_prototype);
      }
    }
    impl->idle.push_back(w.get());
    impl->workers.push_back(std::move(w));
  }
  return std::unique_ptr<FacePipeline>(new FacePipeline(std::move(impl)));
}

absl::StatusOr<PhotoFaces> FacePipeline::Process(std::string_view image_bytes,
                                                 const ProcessRequest& request) const {
  Impl::Lease w(*impl_);
  return impl_->ProcessOn(*w, image_bytes, nullptr, request);
}

absl::StatusOr<PhotoFaces> FacePipeline::ProcessBox(std::string_view image_bytes, const Box& box,
                                                    const ProcessRequest& request) const {
  Impl::Lease w(*impl_);
  return impl_->ProcessOn(*w, image_bytes, &box, request);
}

std::vector<absl::StatusOr<PhotoFaces>> FacePipeline::ProcessMany(
    const std::vector<std::string_view>& images) const {
  std::vector<absl::StatusOr<PhotoFaces>> results(images.size(),
                                                  absl::UnknownError("not processed"));
  std::atomic<size_t> next{0};
  auto run = [&] {
    for (size_t i; (i = next.fetch_add(1)) < images.size();) results[i] = Process(images[i]);
  };
  const size_t n = std::min(images.size(), impl_->workers.size());
  std::vector<std::thread> threads;
  for (size_t t = 1; t < n; ++t) threads.emplace_back(run);
  run();
  for (auto& t : threads) t.join();
  return results;
}

absl::StatusOr<std::vector<Descriptor>> FacePipeline::DescribeChips(
    const std::vector<Chip>& chips) const {
  std::vector<dlib::matrix<dlib::rgb_pixel>> mats;
  for (const Chip& c : chips) {
    if (c.size != kChipSize || c.rgb.size() != size_t{kChipSize} * kChipSize * 3) {
      return absl::InvalidArgumentError(
          absl::StrCat("a chip must be ", kChipSize, "x", kChipSize, " RGB (", c.size, " given)"));
    }
    dlib::matrix<dlib::rgb_pixel> m(kChipSize, kChipSize);
    std::memcpy(&m(0, 0), c.rgb.data(), c.rgb.size());
    mats.push_back(std::move(m));
  }
  Impl::Lease w(*impl_);
  return Guarded("descriptor network", [&]() -> absl::StatusOr<std::vector<Descriptor>> {
    return impl_->Describe(*w, mats);
  });
}

absl::StatusOr<std::string> FacePipeline::FaceCropPng(std::string_view image_bytes,
                                                      const Box& box, int size) const {
  if (size < 32 || size > 512) {
    return absl::InvalidArgumentError(absl::StrCat("crop size ", size, " must be in 32..512"));
  }
  HW_ASSIGN_OR_RETURN(cv::Mat rgb, internal::DecodeRgb(image_bytes, impl_->options.limits));
  HW_RETURN_IF_ERROR(Impl::CheckBox(box, rgb));
  return Guarded("face crop", [&]() -> absl::StatusOr<std::string> {
    Impl::Detected f = impl_->Align(rgb, Impl::ToRect(box), 0.0);
    cv::Mat chip(kChipSize, kChipSize, CV_8UC3, &f.chip(0, 0)), bgr, out;
    cv::cvtColor(chip, bgr, cv::COLOR_RGB2BGR);
    cv::resize(bgr, out, cv::Size(size, size), 0, 0, size < kChipSize ? cv::INTER_AREA : cv::INTER_CUBIC);
    std::vector<uchar> png;
    cv::imencode(".png", out, png);
    return std::string(png.begin(), png.end());
  });
}

absl::StatusOr<std::vector<Chip>> FacePipeline::FaceChips(std::string_view image_bytes) const {
  HW_ASSIGN_OR_RETURN(cv::Mat rgb, internal::DecodeRgb(image_bytes, impl_->options.limits));
  Impl::Lease w(*impl_);
  return Guarded("face chips", [&]() -> absl::StatusOr<std::vector<Chip>> {
    double scale;
    std::vector<Chip> chips;
    HW_ASSIGN_OR_RETURN(auto found, impl_->DetectAndAlign(*w, rgb, &scale));
    for (const auto& f : found) {
      Chip c;
      c.size = kChipSize;
      c.rgb.assign(reinterpret_cast<const uint8_t*>(&f.chip(0, 0)),
                   reinterpret_cast<const uint8_t*>(&f.chip(0, 0)) + kChipSize * kChipSize * 3);
      chips.push_back(std::move(c));
    }
    return chips;
  });
}

absl::StatusOr<std::vector<Chip>> FacePipeline::AgeChips(std::string_view image_bytes) const {
  HW_ASSIGN_OR_RETURN(cv::Mat rgb, internal::DecodeRgb(image_bytes, impl_->options.limits));
  Impl::Lease w(*impl_);
  return Guarded("age chips", [&]() -> absl::StatusOr<std::vector<Chip>> {
    double scale;
    std::vector<Chip> chips;
    HW_ASSIGN_OR_RETURN(auto found, impl_->DetectAndAlign(*w, rgb, &scale));
    for (const auto& f : found) {
      dlib::matrix<dlib::rgb_pixel> m = impl_->AgeChip(rgb, f.shape);
      Chip c;
      c.size = kAgeInputSize;
      const auto* p = reinterpret_cast<const uint8_t*>(&m(0, 0));
      c.rgb.assign(p, p + size_t{kAgeInputSize} * kAgeInputSize * 3);
      chips.push_back(std::move(c));
    }
    return chips;
  });
}

bool FacePipeline::estimates_age() const { return impl_->workers.back()->age != nullptr; }

const PipelineOptions& FacePipeline::options() const { return impl_->options; }
const std::string& FacePipeline::model_id() const { return impl_->model_id; }
int FacePipeline::workers() const { return static_cast<int>(impl_->workers.size()); }

}  // namespace homeward::embed
