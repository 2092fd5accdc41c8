// embed_bench: accuracy and speed of the face pipeline, each next to raw dlib doing the
// same work in the same run.
//
//   embed_bench lfw    [--detector hog|cnn|both] [--mirror on|off|both] [--yaw-table]
//                                                LFW development-view accuracy (and by head turn)
//   embed_bench speed  [--demo DIR]              descriptors/s, detection ms, photos/s vs raw dlib
//   embed_bench detect [--detector hog|cnn|both] [--montage DIR]
//                                                faces in the demo photos and faces-small: with and
//                                                without the scale policy, or HOG next to the CNN
//   embed_bench fgnet  [--detector hog|cnn|both] fgnet-dev photos without a face
//   embed_bench fit-box-map [--fit-only]         fits kFaceBoxesToHog on LFW DevTrain; landmark and
//                                                descriptor agreement HOG vs CNN on DevTest
//   embed_bench cnn-sweep [--upsample 1,2]       the CNN's no-face / extra-face counts by score
//                                                threshold and upsampling limit
//
//   embed_bench detectors [--demo DIR] [--reps N] [--throughput-photos N] [--throughput-reps N]
//                      [--stage-cv-threads N] [--sections latency,stages,throughput]
//                      1920x1080 photos with 3 faces, bytes to descriptors: HOG policy vs CNN
//                      (FaceBoxes), the stages of each, raw dlib / OpenCV DNN doing the same
//                      work, the age estimate per face, and ProcessMany photos/s by workers and
//                      OpenCV thread count (docs/BENCHMARKS.md, "Face detectors")
//
// Common flags: --data DIR (default $HOMEWARD_SHARED_DATA, else ../shared/data), --demo DIR,
// --workers N (default 2), --cnn-refine on|off and --cnn-coarse-side N (the CNN's HOG
// refinement and coarse scans, PipelineOptions; default on and 256).
// Models: $HOMEWARD_RECOGNITION_MODEL (default models/faceapi_1.7.15_resnet.dat),
// $HOMEWARD_FACE_DETECTOR_MODEL (default models/faceboxes_3.0.4.onnx).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <sstream>
#include <functional>
#include <thread>

#include <sys/resource.h>

#include <dlib/image_processing.h>
#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/opencv/cv_image.h>
#include <opencv2/core/utility.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "embed/age_estimator.h"
#include "embed/cnn_face_detector.h"
#include "embed/face_pipeline.h"
#include "embed/internal/decode.h"
#include "embed/internal/resnet.h"

extern "C" void openblas_set_num_threads(int num_threads);

namespace {

namespace fs = std::filesystem;
using homeward::embed::Descriptor;
using homeward::embed::FacePipeline;
using homeward::embed::PhotoFaces;
using homeward::embed::PipelineOptions;
using Clock = std::chrono::steady_clock;

std::string Flag(int argc, char** argv, const std::string& name, const std::string& def) {
  for (int i = 2; i + 1 < argc; ++i)
    if (argv[i] == name) return argv[i + 1];
  return def;
}
bool HasFlag(int argc, char** argv, const std::string& name) {
  for (int i = 2; i < argc; ++i)
    if (argv[i] == name) return true;
  return false;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string ModelPath() {
  if (const char* env = std::getenv("HOMEWARD_RECOGNITION_MODEL")) return env;
  return std::string(HOMEWARD_SOURCE_DIR) + "/models/faceapi_1.7.15_resnet.dat";
}

std::unique_ptr<FacePipeline> MakePipeline(PipelineOptions o) {
  o.recognition_model_path = ModelPath();
  auto p = FacePipeline::Create(o);
  if (!p.ok()) {
    std::fprintf(stderr, "%s\n", std::string(p.status().message()).c_str());
    std::exit(1);
  }
  return std::move(*p);
}

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// ---------------------------------------------------------------------------------- lfw
struct Pair {
  std::string a, b;
  bool same;
};

std::vector<Pair> ReadPairs(const std::string& path) {
  std::ifstream in(path);
  int n = 0;
  in >> n;
  std::vector<Pair> pairs;
  auto name = [](const std::string& person, int i) {
    return absl::StrFormat("%s/%s_%04d.jpg", person, person, i);
  };
  for (int k = 0; k < 2 * n; ++k) {
    std::string p1;
    int i1, i2;
    in >> p1 >> i1;
    if (k < n) {
      in >> i2;
      pairs.push_back({name(p1, i1), name(p1, i2), true});
    } else {
      std::string p2;
      in >> p2 >> i2;
      pairs.push_back({name(p1, i1), name(p2, i2), false});
    }
  }
  return pairs;
}

// ------------------------------------------------------------------------ CNN detector
// Shared by fit-box-map, cnn-sweep, detect and fgnet: the raw FaceBoxes detector at the
// pipeline's CNN scale, boxes in photo coordinates.
using homeward::embed::Box;
using homeward::embed::BoxMap;
using homeward::embed::CnnDetection;
using homeward::embed::CnnFaceDetector;
using homeward::embed::DetectorKind;
using homeward::embed::Face;

std::string CnnModelPath() {
  if (const char* env = std::getenv("HOMEWARD_FACE_DETECTOR_MODEL")) return env;
  return std::string(HOMEWARD_SOURCE_DIR) + "/models/faceboxes_3.0.4.onnx";
}

std::string SharedData(int argc, char** argv) {
  if (const char* env = std::getenv("HOMEWARD_SHARED_DATA"))
    return Flag(argc, argv, "--data", env);
  return Flag(argc, argv, "--data", std::string(HOMEWARD_SOURCE_DIR) + "/../shared/data");
}

int Workers(int argc, char** argv) {
  return std::max(1, std::atoi(Flag(argc, argv, "--workers", "2").c_str()));
}

// "hog", "cnn" or "both" (default `def`).
std::vector<DetectorKind> Detectors(int argc, char** argv, const std::string& def) {
  const std::string d = Flag(argc, argv, "--detector", def);
  if (d == "both") return {DetectorKind::kHog, DetectorKind::kCnn};
  auto k = homeward::embed::ParseDetectorKind(d);
  if (!k.ok()) {
    std::fprintf(stderr, "--detector: %s (or both)\n", std::string(k.status().message()).c_str());
    std::exit(2);
  }
  return {*k};
}

// --cnn-refine on|off and --cnn-coarse-side N (PipelineOptions' cnn_refine_with_hog and
// cnn_coarse_side; the defaults when absent), read once in main.
PipelineOptions g_cnn_flags;

// `o` with the CNN flags of the command line.
PipelineOptions WithCnnFlags(PipelineOptions o) {
  o.cnn_refine_with_hog = g_cnn_flags.cnn_refine_with_hog;
  o.cnn_coarse_side = g_cnn_flags.cnn_coarse_side;
  o.cnn_refine_threshold = g_cnn_flags.cnn_refine_threshold;
  o.cnn_recheck_min_score = g_cnn_flags.cnn_recheck_min_score;
  return o;
}

PipelineOptions DetectorOptions(DetectorKind kind) {
  PipelineOptions o;
  o.detector = kind;
  o.face_detector_model_path = CnnModelPath();
  return WithCnnFlags(o);
}

struct RectD {
  double l = 0, t = 0, r = 0, b = 0;
  double w() const { return r - l; }
  double h() const { return b - t; }
  double cx() const { return (l + r) / 2; }
  double cy() const { return (t + b) / 2; }
};

RectD FromBox(const Box& b) { return {double(b.x), double(b.y), double(b.x + b.width), double(b.y + b.height)}; }

double IoU(const RectD& a, const RectD& b) {
  const double iw = std::max(0.0, std::min(a.r, b.r) - std::max(a.l, b.l));
  const double ih = std::max(0.0, std::min(a.b, b.b) - std::max(a.t, b.t));
  const double inter = iw * ih;
  const double uni = a.w() * a.h() + b.w() * b.h() - inter;
  return uni > 0 ? inter / uni : 0;
}

struct CnnBox {
  RectD rect;  // photo coordinates
  float score;
};

// Raw FaceBoxes on photos at the pipeline's CNN scale, one detector per thread.
class RawCnn {
 public:
  RawCnn(int workers, double max_upsample, int64_t pixel_budget)
      : max_upsample_(max_upsample), pixel_budget_(pixel_budget) {
    auto d = CnnFaceDetector::Load(CnnModelPath());
    if (!d.ok()) {
      std::fprintf(stderr, "%s\n", std::string(d.status().message()).c_str());
      std::exit(1);
    }
    detectors_.push_back(std::move(*d));
    while (static_cast<int>(detectors_.size()) < workers) detectors_.push_back(*detectors_[0]->Clone());
  }
  double Scale(int w, int h) const {
    return std::min(max_upsample_, std::sqrt(double(pixel_budget_) / (double(w) * h)));
  }
  // Faces of every photo with score >= threshold, best first; photo size in *sizes.
  std::vector<std::vector<CnnBox>> Run(const std::vector<std::string>& photos, float threshold,
                                       std::vector<cv::Size>* sizes = nullptr) {
    std::vector<std::vector<CnnBox>> out(photos.size());
    if (sizes) sizes->assign(photos.size(), {});
    std::atomic<size_t> next{0};
    auto run = [&](CnnFaceDetector& det) {
      for (size_t i; (i = next.fetch_add(1)) < photos.size();) {
        auto rgb = homeward::embed::internal::DecodeRgb(photos[i], {});
        if (!rgb.ok()) continue;
        if (sizes) (*sizes)[i] = rgb->size();
        const double s = Scale(rgb->cols, rgb->rows);
        cv::Mat scan = *rgb;
        if (std::abs(s - 1.0) > 1e-3)
          cv::resize(*rgb, scan, cv::Size(), s, s, s > 1 ? cv::INTER_LINEAR : cv::INTER_AREA);
        homeward::embed::CnnDetectorOptions o;
        o.score_threshold = threshold;
        auto dets = det.Detect(scan, o);
        if (!dets.ok()) continue;
        for (const CnnDetection& d : *dets)
          out[i].push_back({{d.left / s, d.top / s, d.right / s, d.bottom / s}, d.score});
      }
    };
    std::vector<std::thread> threads;
    for (size_t t = 1; t < detectors_.size(); ++t) threads.emplace_back(run, std::ref(*detectors_[t]));
    run(*detectors_[0]);
    for (auto& t : threads) t.join();
    return out;
  }

 private:
  double max_upsample_;
  int64_t pixel_budget_;
  std::vector<std::unique_ptr<CnnFaceDetector>> detectors_;
};

// Runs `pipeline` over files in chunks; a failed photo is reported and left empty.
std::vector<PhotoFaces> ProcessFiles(const FacePipeline& pipeline, const std::vector<std::string>& files) {
  std::vector<PhotoFaces> out(files.size());
  const size_t chunk = 64;
  for (size_t s = 0; s < files.size(); s += chunk) {
    std::vector<std::string> bytes;
    for (size_t i = s; i < std::min(files.size(), s + chunk); ++i) bytes.push_back(ReadFile(files[i]));
    std::vector<std::string_view> views(bytes.begin(), bytes.end());
    auto results = pipeline.ProcessMany(views);
    for (size_t i = 0; i < results.size(); ++i) {
      if (results[i].ok()) {
        out[s + i] = std::move(*results[i]);
      } else {
        std::fprintf(stderr, "%s: %s\n", files[s + i].c_str(), std::string(results[i].status().message()).c_str());
      }
    }
  }
  return out;
}

std::vector<std::string> UniqueImages(const std::vector<Pair>& pairs, const std::string& dir) {
  std::vector<std::string> images;
  for (const Pair& p : pairs) images.push_back(dir + "/" + p.a), images.push_back(dir + "/" + p.b);
  std::sort(images.begin(), images.end());
  images.erase(std::unique(images.begin(), images.end()), images.end());
  return images;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double rank = std::ceil(p * v.size()) - 1;  // nearest-rank
  const size_t k = rank <= 0 ? 0 : std::min(v.size() - 1, static_cast<size_t>(rank));
  return v[k];
}
double Mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / v.size();
}

// ------------------------------------------------------------------------- fit-box-map
// Fits kFaceBoxesToHog on pairsDevTrain's images, then measures on pairsDevTest's how the
// landmarks (and descriptors) placed from the mapped CNN box agree with those from HOG's box.
int FitBoxMap(int argc, char** argv) {
  const std::string data = SharedData(argc, argv) + "/lfw-view1";
  const int workers = Workers(argc, argv);
  std::vector<std::string> train = UniqueImages(ReadPairs(data + "/pairsDevTrain.txt"), data);
  std::vector<std::string> test = UniqueImages(ReadPairs(data + "/pairsDevTest.txt"), data);
  if (train.empty() || test.empty()) {
    std::fprintf(stderr, "no LFW pairs under %s\n", data.c_str());
    return 1;
  }
  const PipelineOptions defaults;
  std::printf("Box map fit: %zu DevTrain images; HOG = FacePipeline(kHog) boxes, CNN = raw FaceBoxes "
              "(score >= %.2f, scale min(%.1f, sqrt(%lld/pixels))), matched by IoU > 0.3\n",
              train.size(), defaults.cnn_score_threshold, defaults.cnn_max_upsample,
              static_cast<long long>(defaults.cnn_pixel_budget));
  struct Sample {
    double ccx, ccy, s, hcx, hcy, hw, hh;
    RectD hog, cnn;
  };
  std::vector<Sample> samples;
  int hog_faces = 0, cnn_faces = 0, edge = 0;
  {
    PipelineOptions o = DetectorOptions(DetectorKind::kHog);
    o.workers = workers;
    o.mirror_augment = false;  // only the boxes are used
    auto hog = MakePipeline(o);
    std::vector<PhotoFaces> hog_result = ProcessFiles(*hog, train);
    std::vector<std::string> bytes;
    for (const auto& f : train) bytes.push_back(ReadFile(f));
    RawCnn cnn(workers, defaults.cnn_max_upsample, defaults.cnn_pixel_budget);
    auto cnn_result = cnn.Run(bytes, defaults.cnn_score_threshold);
    for (size_t i = 0; i < train.size(); ++i) {
      const PhotoFaces& p = hog_result[i];
      cnn_faces += cnn_result[i].size();
      std::vector<bool> used(cnn_result[i].size(), false);
      for (const Face& f : p.faces) {
        ++hog_faces;
        // A box clipped to the photo is not HOG's geometry: left out.
        if (f.box.x <= 0 || f.box.y <= 0 || f.box.x + f.box.width >= p.width ||
            f.box.y + f.box.height >= p.height) {
          ++edge;
          continue;
        }
        const RectD h = FromBox(f.box);
        int best = -1;
        double best_iou = 0.3;
        for (size_t k = 0; k < cnn_result[i].size(); ++k) {
          const double iou = IoU(h, cnn_result[i][k].rect);
          if (!used[k] && iou > best_iou) best_iou = iou, best = static_cast<int>(k);
        }
        if (best < 0) continue;
        used[best] = true;
        const RectD& c = cnn_result[i][best].rect;
        samples.push_back({c.cx(), c.cy(), std::sqrt(c.w() * c.h()), h.cx(), h.cy(), h.w(), h.h(), h, c});
      }
    }
  }
  if (samples.empty()) {
    std::fprintf(stderr, "no face found by both detectors\n");
    return 1;
  }
  // Least squares in units of s (each face weighs the same): the means of the ratios.
  BoxMap fit{0, 0, 0, 0};
  double cnn_aspect = 0;
  for (const Sample& x : samples) {
    fit.dx += (x.hcx - x.ccx) / x.s;
    fit.dy += (x.hcy - x.ccy) / x.s;
    fit.sw += x.hw / x.s;
    fit.sh += x.hh / x.s;
    cnn_aspect += x.cnn.h() / x.cnn.w();
  }
  const double n = samples.size();
  fit.dx /= n, fit.dy /= n, fit.sw /= n, fit.sh /= n;
  cnn_aspect /= n;
  std::vector<double> rdx, rdy, rsw, rsh, iou_raw, iou_mapped;
  auto map_box = [](const BoxMap& m, const Sample& x) {
    const double cx = x.ccx + m.dx * x.s, cy = x.ccy + m.dy * x.s;
    return RectD{cx - m.sw * x.s / 2, cy - m.sh * x.s / 2, cx + m.sw * x.s / 2, cy + m.sh * x.s / 2};
  };
  for (const Sample& x : samples) {
    rdx.push_back((x.hcx - x.ccx) / x.s - fit.dx);
    rdy.push_back((x.hcy - x.ccy) / x.s - fit.dy);
    rsw.push_back(x.hw / x.s - fit.sw);
    rsh.push_back(x.hh / x.s - fit.sh);
    iou_raw.push_back(IoU(x.hog, x.cnn));
    iou_mapped.push_back(IoU(x.hog, map_box(fit, x)));
  }
  auto rms = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x * x;
    return std::sqrt(s / v.size());
  };
  auto p95abs = [](std::vector<double> v) {
    for (double& x : v) x = std::abs(x);
    return Percentile(v, 0.95);
  };
  std::printf("HOG faces %d (%d touching the photo's edge, left out), CNN faces %d, matched %zu\n",
              hog_faces, edge, cnn_faces, samples.size());
  std::printf("CNN box aspect h/w: mean %.3f\n\n", cnn_aspect);
  std::printf("| parameter | fitted | residual rms (x s) | residual p95 abs (x s) |\n|---|---|---|---|\n");
  std::printf("| dx | %+.4f | %.4f | %.4f |\n", fit.dx, rms(rdx), p95abs(rdx));
  std::printf("| dy | %+.4f | %.4f | %.4f |\n", fit.dy, rms(rdy), p95abs(rdy));
  std::printf("| sw | %.4f | %.4f | %.4f |\n", fit.sw, rms(rsw), p95abs(rsw));
  std::printf("| sh | %.4f | %.4f | %.4f |\n", fit.sh, rms(rsh), p95abs(rsh));
  std::printf("\nIoU with the HOG box (DevTrain): raw CNN box median %.3f, mapped median %.3f (p5 %.3f)\n",
              Percentile(iou_raw, 0.5), Percentile(iou_mapped, 0.5), Percentile(iou_mapped, 0.05));
  std::printf("inline constexpr BoxMap kFaceBoxesToHog = {%.4f, %.4f, %.4f, %.4f};\n\n", fit.dx, fit.dy,
              fit.sw, fit.sh);
  std::fflush(stdout);
  if (HasFlag(argc, argv, "--fit-only")) return 0;

  // Landmark agreement on DevTest (not used for the fit), pipelines with their defaults.
  std::printf("Landmark agreement on %zu DevTest images: HOG-box landmarks vs CNN-box landmarks of the "
              "same face (CNN face whose box centre is nearest the HOG box's, within half its width)\n\n",
              test.size());
  std::vector<PhotoFaces> hog_result;
  {
    PipelineOptions o = DetectorOptions(DetectorKind::kHog);
    o.workers = workers;
    hog_result = ProcessFiles(*MakePipeline(o), test);
  }
  std::printf("| CNN box map | faces (both) | point error / IOD: mean | p95 | face mean error p95 | "
              "eye-corner (36,45) error mean | descriptor distance HOG vs CNN: median | p95 |\n"
              "|---|---|---|---|---|---|---|---|\n");
  struct MapRow {
    std::string name;
    BoxMap map;
    bool refine;
  };
  const std::vector<MapRow> maps = {
      {"identity {0, 0, 1, 1}", BoxMap{}, false},
      {absl::StrFormat("fitted {%.3f, %.3f, %.3f, %.3f}", fit.dx, fit.dy, fit.sw, fit.sh), fit, false},
      {"fitted, then HOG's box where HOG finds the face (cnn_refine_with_hog)", fit, true}};
  for (const auto& [name, map, refine] : maps) {
    PipelineOptions o = DetectorOptions(DetectorKind::kCnn);
    o.workers = workers;
    o.cnn_box_map = map;
    o.cnn_refine_with_hog = refine;
    std::vector<PhotoFaces> cnn_result = ProcessFiles(*MakePipeline(o), test);
    std::vector<double> point_err, face_err, eye_err, desc_dist;
    for (size_t i = 0; i < test.size(); ++i) {
      for (const Face& h : hog_result[i].faces) {
        const RectD hr = FromBox(h.box);
        const Face* best = nullptr;
        double best_d = 0.5 * hr.w();
        for (const Face& c : cnn_result[i].faces) {
          const RectD cr = FromBox(c.box);
          const double d = std::hypot(cr.cx() - hr.cx(), cr.cy() - hr.cy());
          if (d < best_d) best_d = d, best = &c;
        }
        if (best == nullptr || h.landmarks.size() != 68 || best->landmarks.size() != 68) continue;
        const double iod = std::hypot(h.landmarks[36].x - h.landmarks[45].x, h.landmarks[36].y - h.landmarks[45].y);
        if (iod < 1) continue;
        double sum = 0;
        for (int k = 0; k < 68; ++k) {
          const double e = std::hypot(h.landmarks[k].x - best->landmarks[k].x,
                                      h.landmarks[k].y - best->landmarks[k].y) / iod;
          point_err.push_back(e);
          if (k == 36 || k == 45) eye_err.push_back(e);
          sum += e;
        }
        face_err.push_back(sum / 68);
        desc_dist.push_back(homeward::embed::DescriptorDistance(h.descriptor, best->descriptor));
      }
    }
    std::printf("| %s | %zu | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f |\n", name.c_str(), face_err.size(),
                Mean(point_err), Percentile(point_err, 0.95), Percentile(face_err, 0.95), Mean(eye_err),
                Percentile(desc_dist, 0.5), Percentile(desc_dist, 0.95));
    std::fflush(stdout);
  }
  return 0;
}

// ---------------------------------------------------------------------------------- lfw
// --yaw-table: DevTrain + DevTest pairs by the larger |yaw| of their two faces (the pipeline's
// landmark estimate, FaceQuality::yaw_degrees): how often a genuine pair is missed and an
// impostor pair passes at the DevTrain threshold. Evidence for the NON_FRONTAL caveat's angle.
std::string YawTable(const std::string& title, const std::vector<Pair>& train,
                     const std::vector<Pair>& test,
                     const std::function<double(const Pair&)>& dist,
                     const std::map<std::string, double>& yaw, double threshold) {
  constexpr double kEdges[] = {0, 10, 15, 20, 25, 30, 40, 180};
  constexpr int kBuckets = std::size(kEdges) - 1;
  struct Bucket {
    int genuine = 0, missed = 0, impostor = 0, passed = 0;
    double genuine_dist = 0;
  } b[kBuckets];
  for (const auto* set : {&train, &test}) {
    for (const Pair& p : *set) {
      const double y = std::max(yaw.at(p.a), yaw.at(p.b));
      int k = 0;
      while (k + 1 < kBuckets && y >= kEdges[k + 1]) ++k;
      const double d = dist(p);
      if (p.same) {
        ++b[k].genuine;
        b[k].genuine_dist += d;
        b[k].missed += d >= threshold;
      } else {
        ++b[k].impostor;
        b[k].passed += d < threshold;
      }
    }
  }
  std::string out = absl::StrFormat(
      "Pairs by the more turned face's |yaw| (%s, DevTrain + DevTest, threshold %.4f)\n\n"
      "| |yaw| (degrees) | genuine pairs | mean genuine distance | genuine missed | impostor pairs | impostors passed |\n"
      "|---|---|---|---|---|---|\n",
      title, threshold);
  for (int k = 0; k < kBuckets; ++k) {
    const Bucket& x = b[k];
    absl::StrAppendFormat(
        &out, "| %.0f-%s | %d | %s | %s | %d | %s |\n", kEdges[k],
        k + 1 == kBuckets ? "" : absl::StrCat(kEdges[k + 1]), x.genuine,
        x.genuine ? absl::StrFormat("%.3f", x.genuine_dist / x.genuine) : "-",
        x.genuine ? absl::StrFormat("%d (%.1f%%)", x.missed, 100.0 * x.missed / x.genuine) : "-",
        x.impostor,
        x.impostor ? absl::StrFormat("%d (%.1f%%)", x.passed, 100.0 * x.passed / x.impostor) : "-");
  }
  return out;
}

int Lfw(int argc, char** argv) {
  const std::string data = SharedData(argc, argv) + "/lfw-view1";
  std::vector<Pair> train = ReadPairs(data + "/pairsDevTrain.txt");
  std::vector<Pair> test = ReadPairs(data + "/pairsDevTest.txt");
  if (train.empty() || test.empty()) {
    std::fprintf(stderr, "no LFW pairs under %s\n", data.c_str());
    return 1;
  }
  std::vector<std::string> images;
  for (const auto* set : {&train, &test})
    for (const Pair& p : *set) images.push_back(p.a), images.push_back(p.b);
  std::sort(images.begin(), images.end());
  images.erase(std::unique(images.begin(), images.end()), images.end());

  std::printf("LFW development view: %zu train pairs, %zu test pairs, %zu images\n\n", train.size(),
              test.size(), images.size());
  const std::string mirror_flag = Flag(argc, argv, "--mirror", "both");
  std::vector<bool> mirrors;
  if (mirror_flag != "on") mirrors.push_back(false);
  if (mirror_flag != "off") mirrors.push_back(true);
  std::vector<std::string> yaw_tables;  // --yaw-table
  std::printf("| detector | augmentation | face choice | no face (fallback box) | threshold (DevTrain) | DevTrain acc | DevTest acc |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  for (DetectorKind kind : Detectors(argc, argv, "hog"))
  for (bool mirror : mirrors) {
    PipelineOptions o = DetectorOptions(kind);
    o.workers = Workers(argc, argv);
    o.mirror_augment = mirror;
    auto pipeline = MakePipeline(o);  // mirror: the default
    // Per image: descriptor of the detected face nearest the centre, and of the largest one.
    std::map<std::string, std::pair<Descriptor, Descriptor>> desc;
    std::map<std::string, double> yaw;  // |yaw| of the face nearest the centre
    int no_face = 0;
    auto t0 = Clock::now();
    const size_t chunk = 64;
    for (size_t s = 0; s < images.size(); s += chunk) {
      std::vector<std::string> bytes;
      for (size_t i = s; i < std::min(images.size(), s + chunk); ++i)
        bytes.push_back(ReadFile(data + "/" + images[i]));
      std::vector<std::string_view> views(bytes.begin(), bytes.end());
      auto results = pipeline->ProcessMany(views);
      for (size_t i = 0; i < results.size(); ++i) {
        absl::StatusOr<PhotoFaces> r = results[i];
        if (r.ok() && r->faces.empty()) {
          // Evaluation rule: LFW's deep-funneled crops centre the face; describe the central box.
          ++no_face;
          if (HasFlag(argc, argv, "--pairs-out")) std::fprintf(stderr, "no face: %s\n", images[s + i].c_str());
          r = pipeline->ProcessBox(views[i], {70, 70, 110, 110});
        }
        if (!r.ok() || r->faces.empty()) {
          std::fprintf(stderr, "%s: %s\n", images[s + i].c_str(),
                       std::string(r.status().message()).c_str());
          return 1;
        }
        const double cx = r->width / 2.0, cy = r->height / 2.0;
        size_t centre = 0, largest = 0;
        double best_d = 1e18;
        for (size_t k = 0; k < r->faces.size(); ++k) {
          const auto& b = r->faces[k].box;
          double d = std::hypot(b.x + b.width / 2.0 - cx, b.y + b.height / 2.0 - cy);
          if (d < best_d) best_d = d, centre = k;
          if (b.width > r->faces[largest].box.width) largest = k;
        }
        desc[images[s + i]] = {r->faces[centre].descriptor, r->faces[largest].descriptor};
        yaw[images[s + i]] = std::abs(r->faces[centre].quality.yaw_degrees);
      }
    }
    const double secs = Seconds(t0, Clock::now());
    for (int choice = 0; choice < 2; ++choice) {
      auto dist = [&](const Pair& p) {
        const auto& a = desc[p.a];
        const auto& b = desc[p.b];
        return homeward::embed::DescriptorDistance(choice == 0 ? a.first : a.second,
                                                   choice == 0 ? b.first : b.second);
      };
      auto accuracy = [&](const std::vector<Pair>& pairs, double t) {
        int ok = 0;
        for (const Pair& p : pairs) ok += (dist(p) < t) == p.same;
        return double(ok) / pairs.size();
      };
      double best_t = 0.6, best_acc = 0;
      for (double t = 0.30; t <= 0.80; t += 0.0025) {
        double acc = accuracy(train, t);
        if (acc > best_acc) best_acc = acc, best_t = t;
      }
      // --pairs-out PREFIX: every DevTest pair's distance, for comparing two detectors' errors.
      const std::string pairs_out = Flag(argc, argv, "--pairs-out", "");
      if (!pairs_out.empty()) {
        const std::string path = absl::StrCat(pairs_out, "-", homeward::embed::DetectorKindName(kind), "-",
                                              mirror ? "mirror" : "none", "-", choice == 0 ? "centre" : "largest",
                                              ".tsv");
        if (FILE* f = std::fopen(path.c_str(), "w")) {
          std::fprintf(f, "# threshold %.4f\n", best_t);
          for (const Pair& p : test) std::fprintf(f, "%s\t%s\t%d\t%.5f\n", p.a.c_str(), p.b.c_str(), p.same, dist(p));
          std::fclose(f);
        }
      }
      std::printf("| %s | %s | %s | %d of %zu | %.4f | %.2f%% | %.2f%% |\n",
                  homeward::embed::DetectorKindName(kind), mirror ? "mirror" : "none",
                  choice == 0 ? "nearest centre" : "largest", no_face, images.size(), best_t,
                  100 * best_acc, 100 * accuracy(test, best_t));
      if (choice == 0 && HasFlag(argc, argv, "--yaw-table")) yaw_tables.push_back(YawTable(
          absl::StrCat(homeward::embed::DetectorKindName(kind), ", ", mirror ? "mirror" : "none"),
          train, test, dist, yaw, best_t));
    }
    std::fprintf(stderr, "(%s, %s: %.1f s for %zu images, %d workers)\n",
                 homeward::embed::DetectorKindName(kind), mirror ? "mirror" : "plain", secs,
                 images.size(), pipeline->workers());
    std::fflush(stdout);
  }
  for (const std::string& t : yaw_tables) std::printf("\n%s", t.c_str());
  return 0;
}

// -------------------------------------------------------------------------------- speed
using homeward::embed::internal::anet_type;

struct RawDlib {
  dlib::frontal_face_detector detector = dlib::get_frontal_face_detector();
  dlib::shape_predictor sp;
  anet_type net;
  RawDlib() {
    dlib::deserialize("/usr/share/dlib/shape_predictor_68_face_landmarks.dat") >> sp;
    dlib::deserialize(ModelPath()) >> net;
  }
  // Landmarks, aligned chips and descriptors (with the mirror pass when `mirror`) of the faces
  // at `rects` in `rgb`.
  size_t Describe(const cv::Mat& rgb, const std::vector<dlib::rectangle>& rects, bool mirror) {
    dlib::cv_image<dlib::rgb_pixel> img(rgb);
    std::vector<dlib::matrix<dlib::rgb_pixel>> chips;
    for (const auto& o : rects) {
      auto shape = sp(img, o);
      dlib::matrix<dlib::rgb_pixel> chip;
      dlib::extract_image_chip(img, dlib::get_face_chip_details(shape, 150, 0.25), chip);
      chips.push_back(std::move(chip));
    }
    if (!chips.empty()) net(chips, 16);
    if (!chips.empty() && mirror) {
      for (auto& c : chips) c = dlib::fliplr(c);
      net(chips, 16);
    }
    return chips.size();
  }
  // The same work as FacePipeline::Process: decode, scale, HOG, landmarks, chips, descriptors.
  size_t Photo(const std::string& bytes, double scale, bool mirror = false) {
    cv::Mat bgr = cv::imdecode(cv::Mat(1, (int)bytes.size(), CV_8UC1, (void*)bytes.data()),
                               cv::IMREAD_COLOR);
    cv::Mat rgb, scan;
    cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    cv::resize(rgb, scan, cv::Size(), scale, scale, scale > 1 ? cv::INTER_LINEAR : cv::INTER_AREA);
    dlib::cv_image<dlib::rgb_pixel> s(scan);
    std::vector<dlib::rectangle> rects;
    for (const auto& r : detector(s)) {
      rects.emplace_back(r.left() / scale, r.top() / scale, r.right() / scale, r.bottom() / scale);
    }
    return Describe(rgb, rects, mirror);
  }
};

double PolicyScale(int w, int h) {
  PipelineOptions o;
  return std::min(o.max_upsample, std::sqrt(double(o.detect_pixel_budget) / (double(w) * h)));
}

template <typename F>
double BestOf(int reps, F&& f) {
  double best = 1e18;
  for (int i = 0; i < reps; ++i) {
    auto t0 = Clock::now();
    f();
    best = std::min(best, Seconds(t0, Clock::now()));
  }
  return best;
}

int Speed(int argc, char** argv) {
  const std::string demo = Flag(argc, argv, "--demo", std::string(HOMEWARD_SOURCE_DIR) + "/models/cache/face-api-1.7.15/demo");
  const std::string folder = Flag(argc, argv, "--folder", demo);
  openblas_set_num_threads(1);
  RawDlib raw;
  // The same work as raw dlib: one network pass per face (no mirror averaging); the cost of
  // mirror averaging, the default, is reported in its own row.
  PipelineOptions o1;
  o1.workers = 1;
  o1.mirror_augment = false;
  auto p1 = MakePipeline(o1);
  PipelineOptions o2 = o1;
  o2.workers = 2;
  auto p2 = MakePipeline(o2);
  PipelineOptions om = o1;
  om.mirror_augment = true;
  auto pm = MakePipeline(om);

  // Chips from the demo photos, replicated to 64.
  std::vector<homeward::embed::Chip> chips;
  for (int i = 1; i <= 6; ++i) {
    auto c = p1->FaceChips(ReadFile(demo + "/sample" + std::to_string(i) + ".jpg"));
    if (c.ok()) chips.insert(chips.end(), c->begin(), c->end());
  }
  while (chips.size() < 64) chips.push_back(chips[chips.size() % 8]);
  chips.resize(64);
  std::vector<dlib::matrix<dlib::rgb_pixel>> mats;
  for (const auto& c : chips) {
    dlib::matrix<dlib::rgb_pixel> m(150, 150);
    std::memcpy(&m(0, 0), c.rgb.data(), c.rgb.size());
    mats.push_back(m);
  }
  std::printf("| measurement | Homeward | raw dlib | ratio |\n|---|---|---|---|\n");
  {
    double ours = BestOf(3, [&] { (void)p1->DescribeChips(chips); });
    double theirs = BestOf(3, [&] { raw.net(mats, 16); });
    std::printf("| descriptors/s, 1 thread (64 chips) | %.1f | %.1f | %.3f |\n", 64 / ours,
                64 / theirs, ours / theirs);
    double mirrored = BestOf(3, [&] { (void)pm->DescribeChips(chips); });
    std::printf("| descriptors/s, 1 thread, mirror averaging (default) | %.1f | %.1f (plain) | %.3f |\n",
                64 / mirrored, 64 / theirs, mirrored / theirs);
  }
  {
    // Two threads: two workers each describing half; raw: two threads each with its own net.
    std::vector<homeward::embed::Chip> half(chips.begin(), chips.begin() + 32);
    double ours = BestOf(3, [&] {
      std::thread t([&] { (void)p2->DescribeChips(half); });
      (void)p2->DescribeChips(half);
      t.join();
    });
    anet_type net2 = raw.net;
    std::vector<dlib::matrix<dlib::rgb_pixel>> mhalf(mats.begin(), mats.begin() + 32);
    double theirs = BestOf(3, [&] {
      std::thread t([&] { net2(mhalf, 16); });
      raw.net(mhalf, 16);
      t.join();
    });
    std::printf("| descriptors/s, 2 threads (64 chips) | %.1f | %.1f | %.3f |\n", 64 / ours,
                64 / theirs, ours / theirs);
  }
  // Detection + landmarks + descriptors for one photo at 640x480 and 1920x1080.
  cv::Mat src = cv::imdecode(cv::Mat(1, 1, CV_8UC1), cv::IMREAD_COLOR);
  std::string s1 = ReadFile(demo + "/sample1.jpg");
  cv::Mat base = cv::imdecode(cv::Mat(1, (int)s1.size(), CV_8UC1, s1.data()), cv::IMREAD_COLOR);
  for (cv::Size size : {cv::Size(640, 480), cv::Size(1920, 1080)}) {
    cv::Mat resized;
    cv::resize(base, resized, size, 0, 0, cv::INTER_AREA);
    std::vector<uchar> buf;
    cv::imencode(".jpg", resized, buf, {cv::IMWRITE_JPEG_QUALITY, 92});
    std::string bytes(buf.begin(), buf.end());
    const double scale = PolicyScale(size.width, size.height);
    size_t nfaces = 0;
    double ours = BestOf(3, [&] { nfaces = p1->Process(bytes)->faces.size(); });
    double theirs = BestOf(3, [&] { raw.Photo(bytes, scale); });
    std::printf("| photo %dx%d, scale %.2f, %zu faces: ms per photo | %.1f | %.1f | %.3f |\n",
                size.width, size.height, scale, nfaces, 1000 * ours, 1000 * theirs, ours / theirs);
  }
  // End to end: a folder of photos on two workers vs two raw threads.
  std::vector<std::string> photos;
  for (const auto& e : fs::directory_iterator(folder)) {
    auto ext = e.path().extension().string();
    if (ext == ".jpg" || ext == ".jpeg" || ext == ".png") photos.push_back(ReadFile(e.path()));
    if (photos.size() >= 200) break;
  }
  std::vector<std::string_view> views(photos.begin(), photos.end());
  double ours = BestOf(2, [&] { (void)p2->ProcessMany(views); });
  RawDlib raw2;
  double theirs = BestOf(2, [&] {
    std::atomic<size_t> next{0};
    auto run = [&](RawDlib& r) {
      for (size_t i; (i = next.fetch_add(1)) < photos.size();) {
        cv::Mat m = cv::imdecode(cv::Mat(1, (int)photos[i].size(), CV_8UC1, photos[i].data()),
                                 cv::IMREAD_COLOR);
        r.Photo(photos[i], PolicyScale(m.cols, m.rows));
      }
    };
    std::thread t([&] { run(raw2); });
    run(raw);
    t.join();
  });
  std::printf("| folder of %zu photos, 2 threads: photos/s | %.2f | %.2f | %.3f |\n", photos.size(),
              photos.size() / ours, photos.size() / theirs, ours / theirs);
  std::printf("\n(ratio = Homeward time / raw dlib time; raw folder loop decodes twice to learn the size)\n");
  return 0;
}

// ------------------------------------------------------------------------------- detect
// The demo photos and faces-small, sorted by path.
std::vector<std::string> DetectPhotos(int argc, char** argv) {
  const std::string data = SharedData(argc, argv);
  const std::string demo = Flag(argc, argv, "--demo", std::string(HOMEWARD_SOURCE_DIR) + "/models/cache/face-api-1.7.15/demo");
  std::vector<std::string> files;
  for (int i = 1; i <= 6; ++i) files.push_back(demo + "/sample" + std::to_string(i) + ".jpg");
  if (fs::exists(data + "/faces-small")) {
    for (const auto& e : fs::recursive_directory_iterator(data + "/faces-small")) {
      auto ext = e.path().extension().string();
      if (ext == ".jpg" || ext == ".jpeg" || ext == ".png") files.push_back(e.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

// The photo with every face's box drawn (HOG green, CNN red, score above), at most 1600 px wide.
void WriteMontage(const std::string& dir, const std::string& file,
                  const std::vector<std::pair<DetectorKind, PhotoFaces>>& results) {
  auto rgb = homeward::embed::internal::DecodeRgb(ReadFile(file), {});
  if (!rgb.ok()) return;
  cv::Mat bgr;
  cv::cvtColor(*rgb, bgr, cv::COLOR_RGB2BGR);
  const int thick = std::max(2, bgr.cols / 500);
  for (const auto& [kind, r] : results) {
    const bool cnn = kind == DetectorKind::kCnn;
    const cv::Scalar colour = cnn ? cv::Scalar(0, 0, 255) : cv::Scalar(0, 200, 0);
    for (const Face& f : r.faces) {
      cv::rectangle(bgr, cv::Rect(f.box.x, f.box.y, f.box.width, f.box.height), colour, thick);
      const std::string label = absl::StrFormat("%s %.2f", cnn ? "cnn" : "hog", f.detector_score);
      cv::putText(bgr, label, cv::Point(f.box.x, std::max(12, f.box.y - 4 - (cnn ? 0 : 14 * thick / 2))),
                  cv::FONT_HERSHEY_SIMPLEX, 0.4 * thick, colour, std::max(1, thick / 2));
    }
  }
  if (bgr.cols > 1600) cv::resize(bgr, bgr, cv::Size(), 1600.0 / bgr.cols, 1600.0 / bgr.cols, cv::INTER_AREA);
  fs::create_directories(dir);
  cv::imwrite(dir + "/" + fs::path(file).stem().string() + ".png", bgr);
}

int Detect(int argc, char** argv) {
  std::vector<std::string> files = DetectPhotos(argc, argv);
  const std::vector<DetectorKind> kinds = Detectors(argc, argv, "hog");
  const std::string montage = Flag(argc, argv, "--montage", "");
  if (kinds.size() == 2) {
    // Side by side, each with its own scale policy.
    auto hog = MakePipeline(DetectorOptions(DetectorKind::kHog));
    auto cnn = MakePipeline(DetectorOptions(DetectorKind::kCnn));
    std::printf("| photo | size | HOG scale | HOG faces | ms | CNN scale | CNN faces | ms | CNN scores |\n"
                "|---|---|---|---|---|---|---|---|---|\n");
    int total_hog = 0, total_cnn = 0;
    for (const auto& f : files) {
      std::string bytes = ReadFile(f);
      auto t0 = Clock::now();
      auto a = hog->Process(bytes);
      auto t1 = Clock::now();
      auto b = cnn->Process(bytes);
      auto t2 = Clock::now();
      if (!a.ok() || !b.ok()) {
        std::printf("| %s | error: %s | | | | | | | |\n", fs::path(f).filename().c_str(),
                    std::string((a.ok() ? b : a).status().message()).c_str());
        continue;
      }
      std::string scores;
      for (const Face& face : b->faces) scores += absl::StrFormat("%s%.2f", scores.empty() ? "" : " ", face.detector_score);
      total_hog += a->faces.size();
      total_cnn += b->faces.size();
      std::printf("| %s | %dx%d | %.2f | %zu | %.0f | %.2f | %zu | %.0f | %s |\n", fs::path(f).filename().c_str(),
                  a->width, a->height, a->detect_scale, a->faces.size(), 1000 * Seconds(t0, t1),
                  b->detect_scale, b->faces.size(), 1000 * Seconds(t1, t2), scores.c_str());
      if (!montage.empty()) WriteMontage(montage, f, {{DetectorKind::kHog, *a}, {DetectorKind::kCnn, *b}});
      if (HasFlag(argc, argv, "--faces")) {  // each face of both pipelines, one line each
        for (const auto* r : {&*a, &*b}) {
          for (const Face& face : r->faces) {
            std::printf("|   %s %dx%d+%d+%d | score %.3f | yaw %.1f | sharpness %.0f | %s |\n",
                        homeward::embed::DetectorKindName(r->detector), face.box.width, face.box.height,
                        face.box.x, face.box.y, face.detector_score, face.quality.yaw_degrees,
                        face.quality.sharpness, face.quality.usable ? "usable" : face.quality.reason.c_str());
          }
        }
      }
    }
    std::printf("\n%zu photos: HOG %d faces, CNN %d faces\n", files.size(), total_hog, total_cnn);
    return 0;
  }
  PipelineOptions policy = DetectorOptions(kinds[0]);
  PipelineOptions none = policy;
  none.max_upsample = none.cnn_max_upsample = 1.0;
  none.detect_pixel_budget = none.cnn_pixel_budget = int64_t{1} << 40;  // never scale
  auto with = MakePipeline(policy);
  auto without = MakePipeline(none);
  std::printf("%s detector\n\n", homeward::embed::DetectorKindName(kinds[0]));
  std::printf("| photo | size | policy scale | faces (policy) | ms | faces (no rescale) | ms | usable (policy) |\n|---|---|---|---|---|---|---|---|\n");
  for (const auto& f : files) {
    std::string bytes = ReadFile(f);
    auto t0 = Clock::now();
    auto a = with->Process(bytes);
    auto t1 = Clock::now();
    auto b = without->Process(bytes);
    auto t2 = Clock::now();
    if (!a.ok() || !b.ok()) {
      std::printf("| %s | error: %s | | | | | | |\n", fs::path(f).filename().c_str(),
                  std::string((a.ok() ? b : a).status().message()).c_str());
      continue;
    }
    int usable = 0;
    for (const auto& face : a->faces) usable += face.quality.usable;
    std::printf("| %s | %dx%d | %.2f | %zu | %.0f | %zu | %.0f | %d |\n", fs::path(f).filename().c_str(),
                a->width, a->height, a->detect_scale, a->faces.size(), 1000 * Seconds(t0, t1),
                b->faces.size(), 1000 * Seconds(t1, t2), usable);
    if (!montage.empty()) WriteMontage(montage, f, {{kinds[0], *a}});
  }
  return 0;
}

// -------------------------------------------------------------------------------- fgnet
// Photos of fgnet-dev with no face (and with more than one) for each detector.
int Fgnet(int argc, char** argv) {
  const std::string dir = SharedData(argc, argv) + "/fgnet-dev/images";
  std::vector<std::string> files;
  if (fs::exists(dir))
    for (const auto& e : fs::directory_iterator(dir)) files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::fprintf(stderr, "no photos under %s\n", dir.c_str());
    return 1;
  }
  std::printf("| detector | photos | no face | more than one face | photos with no face | photos with more than one |\n"
              "|---|---|---|---|---|---|\n");
  for (DetectorKind kind : Detectors(argc, argv, "both")) {
    PipelineOptions o = DetectorOptions(kind);
    o.workers = Workers(argc, argv);
    o.mirror_augment = false;  // only detection is counted
    std::vector<PhotoFaces> r = ProcessFiles(*MakePipeline(o), files);
    int none = 0, many = 0;
    std::string list, many_list;
    for (size_t i = 0; i < r.size(); ++i) {
      const std::string name = fs::path(files[i]).filename().string();
      if (r[i].faces.empty()) ++none, list += (list.empty() ? "" : " ") + name;
      if (r[i].faces.size() > 1) ++many, many_list += (many_list.empty() ? "" : " ") + name;
    }
    std::printf("| %s | %zu | %d (%.1f%%) | %d | %s | %s |\n", homeward::embed::DetectorKindName(kind),
                files.size(), none, 100.0 * none / files.size(), many, list.c_str(), many_list.c_str());
    std::fflush(stdout);
  }
  return 0;
}

// ---------------------------------------------------------------------------- cnn-sweep
// The raw CNN at every score threshold and upsampling limit: photos without a face and with
// more than one on LFW (all 4,992 development images) and fgnet-dev, faces in the demo photos
// and faces-small. The detector runs once at the lowest threshold: greedy NMS keeps a box
// only against higher-scoring ones, so its result filtered by a higher threshold equals
// running at that threshold.
int CnnSweep(int argc, char** argv) {
  const std::string shared = SharedData(argc, argv);
  const int workers = Workers(argc, argv);
  const std::string lfw = shared + "/lfw-view1";
  std::vector<Pair> pairs = ReadPairs(lfw + "/pairsDevTrain.txt");
  std::vector<Pair> test = ReadPairs(lfw + "/pairsDevTest.txt");
  pairs.insert(pairs.end(), test.begin(), test.end());
  std::vector<std::string> lfw_files = UniqueImages(pairs, lfw), fgnet_files;
  const std::string fgnet = shared + "/fgnet-dev/images";
  if (fs::exists(fgnet))
    for (const auto& e : fs::directory_iterator(fgnet)) fgnet_files.push_back(e.path().string());
  std::sort(fgnet_files.begin(), fgnet_files.end());
  std::vector<std::string> small_files = DetectPhotos(argc, argv);
  auto read_all = [](const std::vector<std::string>& files) {
    std::vector<std::string> bytes;
    for (const auto& f : files) bytes.push_back(ReadFile(f));
    return bytes;
  };
  const std::vector<std::string> lfw_bytes = read_all(lfw_files), fgnet_bytes = read_all(fgnet_files),
                                 small_bytes = read_all(small_files);
  const std::vector<float> thresholds = {0.3f, 0.4f, 0.5f, 0.6f, 0.7f};
  std::vector<double> upsamples;
  for (absl::string_view u : absl::StrSplit(Flag(argc, argv, "--upsample", "1,2"), ','))
    upsamples.push_back(std::atof(std::string(u).c_str()));
  const PipelineOptions defaults;

  // HOG (the pipeline's policy) for reference on the small set.
  std::vector<size_t> hog_faces;
  {
    PipelineOptions o = DetectorOptions(DetectorKind::kHog);
    o.workers = workers;
    o.mirror_augment = false;
    for (const PhotoFaces& p : ProcessFiles(*MakePipeline(o), small_files)) hog_faces.push_back(p.faces.size());
  }
  std::printf("CNN pixel budget %lld; LFW %zu images, fgnet-dev %zu, demo + faces-small %zu photos\n\n",
              static_cast<long long>(defaults.cnn_pixel_budget), lfw_files.size(), fgnet_files.size(),
              small_files.size());
  std::printf("| max upsample | threshold | LFW no face | LFW > 1 face | fgnet no face | fgnet > 1 face | demo + faces-small faces (HOG: %zu) |\n"
              "|---|---|---|---|---|---|---|\n",
              std::accumulate(hog_faces.begin(), hog_faces.end(), size_t{0}));
  std::map<double, std::vector<std::vector<CnnBox>>> small_by_upsample;
  for (double up : upsamples) {
    RawCnn cnn(workers, up, defaults.cnn_pixel_budget);
    auto t0 = Clock::now();
    auto lfw_r = cnn.Run(lfw_bytes, thresholds.front());
    const double lfw_secs = Seconds(t0, Clock::now());
    auto fgnet_r = cnn.Run(fgnet_bytes, thresholds.front());
    auto small_r = cnn.Run(small_bytes, thresholds.front());
    auto count = [](const std::vector<CnnBox>& v, float t) {
      return std::count_if(v.begin(), v.end(), [t](const CnnBox& b) { return b.score >= t; });
    };
    for (float t : thresholds) {
      int lfw_none = 0, lfw_many = 0, fg_none = 0, fg_many = 0, small = 0;
      for (const auto& v : lfw_r) lfw_none += count(v, t) == 0, lfw_many += count(v, t) > 1;
      for (const auto& v : fgnet_r) fg_none += count(v, t) == 0, fg_many += count(v, t) > 1;
      for (const auto& v : small_r) small += count(v, t);
      std::printf("| %.1f | %.1f | %d | %d | %d (%.1f%%) | %d | %d |\n", up, t, lfw_none, lfw_many, fg_none,
                  100.0 * fg_none / std::max<size_t>(1, fgnet_files.size()), fg_many, small);
    }
    std::fprintf(stderr, "(max upsample %.1f: LFW %.1f s, %d threads)\n", up, lfw_secs, workers);
    std::fflush(stdout);
    small_by_upsample[up] = std::move(small_r);
  }
  // Per photo, at the pipeline's max upsample.
  const double up = small_by_upsample.count(defaults.cnn_max_upsample) ? defaults.cnn_max_upsample
                                                                       : small_by_upsample.begin()->first;
  const auto& small_r = small_by_upsample[up];
  std::printf("\nPer photo (CNN max upsample %.1f): faces at each threshold, and every score >= %.1f\n\n"
              "| photo | HOG | 0.3 | 0.4 | 0.5 | 0.6 | 0.7 | scores |\n|---|---|---|---|---|---|---|---|\n",
              up, thresholds.front());
  for (size_t i = 0; i < small_files.size(); ++i) {
    std::string row = absl::StrFormat("| %s | %zu |", fs::path(small_files[i]).filename().string(), hog_faces[i]);
    for (float t : thresholds) {
      row += absl::StrFormat(" %d |", static_cast<int>(std::count_if(
                                          small_r[i].begin(), small_r[i].end(),
                                          [t](const CnnBox& b) { return b.score >= t; })));
    }
    std::string scores;
    for (const CnnBox& b : small_r[i]) scores += absl::StrFormat("%s%.2f", scores.empty() ? "" : " ", b.score);
    std::printf("%s %s |\n", row.c_str(), scores.c_str());
  }
  return 0;
}


// ---------------------------------------------------------------------------- detectors
std::string ModelFile(const std::string& name) {
  return std::string(HOMEWARD_SOURCE_DIR) + "/models/" + name;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

template <typename F>
double TimeIt(F&& f) {
  auto t0 = Clock::now();
  f();
  return Seconds(t0, Clock::now());
}

double CpuSeconds() {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// OpenCV's thread count for its parallel loops (TBB in Debian's 4.6; cv::dnn's layers,
// resize, cvtColor): 0 = the library's default, read before the first change.
int g_cv_default_threads = 0;
void SetCvThreads(int n) { cv::setNumThreads(n > 0 ? n : g_cv_default_threads); }
std::string CvThreadsName(int n) {
  return n > 0 ? std::to_string(n) : absl::StrFormat("default (%d)", g_cv_default_threads);
}

// The FaceBoxes network alone, as a user of OpenCV DNN would run it: the image zero-padded to
// a multiple of 128 (as the graph pads), standardized to [-1, 1] by blobFromImage, the six
// head outputs. No anchors, decoding or NMS (CnnFaceDetector's own work).
struct RawCnnForward {
  cv::dnn::Net net;
  std::vector<cv::String> outputs = {"cls0", "cls1", "cls2", "box0", "box1", "box2"};
  explicit RawCnnForward(const std::string& path) : net(cv::dnn::readNetFromONNX(path)) {
    net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
  }
  void Forward(const cv::Mat& rgb) {
    const int ph = (rgb.rows + 127) / 128 * 128, pw = (rgb.cols + 127) / 128 * 128;
    cv::Mat padded;
    cv::copyMakeBorder(rgb, padded, 0, ph - rgb.rows, 0, pw - rgb.cols, cv::BORDER_CONSTANT,
                       cv::Scalar::all(0));
    cv::Mat blob = cv::dnn::blobFromImage(padded, 2.0 / 255, cv::Size(), cv::Scalar::all(127.5),
                                          false, false);
    net.setInput(blob);
    std::vector<cv::Mat> heads;
    net.forward(heads, outputs);
  }
};

// faceres-deep alone on a 224x224 RGB crop (BGR minus the ImageNet means, as AgeModel feeds it).
struct RawAge {
  cv::dnn::Net net;
  explicit RawAge(const std::string& path) : net(cv::dnn::readNetFromONNX(path)) {
    net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
  }
  void Run(const cv::Mat& rgb224) {
    net.setInput(cv::dnn::blobFromImage(rgb224, 1.0, cv::Size(),
                                        cv::Scalar(123.68, 116.779, 103.939), true, false));
    (void)net.forward("age");
  }
};

// The demo photos where both detectors find exactly three faces, resized to 1920x1080 (as
// `speed` does; a centre crop instead gives HOG a fourth, false face in sample1) and encoded as
// JPEG quality 92.
struct HdPhoto {
  std::string name, bytes;
};
std::vector<HdPhoto> HdPhotos(const std::string& demo) {
  std::vector<HdPhoto> out;
  for (const char* name : {"sample1.jpg", "sample3.jpg"}) {
    std::string b = ReadFile(demo + "/" + name);
    cv::Mat m = cv::imdecode(cv::Mat(1, (int)b.size(), CV_8UC1, b.data()), cv::IMREAD_COLOR);
    if (m.empty() || m.cols < 1920 || m.rows < 1080) {
      std::fprintf(stderr, "%s/%s: missing or smaller than 1920x1080\n", demo.c_str(), name);
      std::exit(1);
    }
    cv::Mat hd;
    cv::resize(m, hd, cv::Size(1920, 1080), 0, 0, cv::INTER_AREA);
    std::vector<uchar> buf;
    cv::imencode(".jpg", hd, buf, {cv::IMWRITE_JPEG_QUALITY, 92});
    out.push_back({name, std::string(buf.begin(), buf.end())});
  }
  return out;
}

std::vector<dlib::rectangle> Rects(const PhotoFaces& p) {
  std::vector<dlib::rectangle> r;
  for (const auto& f : p.faces)
    r.emplace_back(f.box.x, f.box.y, f.box.x + f.box.width - 1, f.box.y + f.box.height - 1);
  return r;
}

int Detectors(int argc, char** argv) {
  const std::string demo = Flag(argc, argv, "--demo", std::string(HOMEWARD_SOURCE_DIR) + "/models/cache/face-api-1.7.15/demo");
  const int reps = std::atoi(Flag(argc, argv, "--reps", "7").c_str());
  const int tp_photos = std::atoi(Flag(argc, argv, "--throughput-photos", "8").c_str());
  const int tp_reps = std::atoi(Flag(argc, argv, "--throughput-reps", "3").c_str());
  const int stage_threads = std::atoi(Flag(argc, argv, "--stage-cv-threads", "1").c_str());
  const std::string sections = Flag(argc, argv, "--sections", "latency,stages,throughput");
  auto section = [&](const char* name) { return sections.find(name) != std::string::npos; };
  const std::string cnn_model = ModelFile("faceboxes_3.0.4.onnx");
  const std::string age_model = ModelFile("faceres-deep_3.0.4.onnx");
  g_cv_default_threads = cv::getNumThreads();
  openblas_set_num_threads(1);
  const std::vector<HdPhoto> photos = HdPhotos(demo);

  // Service defaults (mirror averaging on), one worker each.
  PipelineOptions hog_o;
  hog_o.workers = 1;
  PipelineOptions cnn_o = WithCnnFlags(hog_o);
  cnn_o.detector = homeward::embed::DetectorKind::kCnn;
  cnn_o.face_detector_model_path = cnn_model;
  PipelineOptions hog_age_o = hog_o, cnn_age_o = cnn_o;
  hog_age_o.age_model_path = cnn_age_o.age_model_path = age_model;
  auto hog = MakePipeline(hog_o), cnn = MakePipeline(cnn_o);
  auto hog_age = MakePipeline(hog_age_o), cnn_age = MakePipeline(cnn_age_o);
  RawDlib raw_dlib;
  RawCnnForward raw_cnn(cnn_model);
  RawAge raw_age(age_model);

  const double hog_scale = std::min(hog_o.max_upsample,
                                    std::sqrt(double(hog_o.detect_pixel_budget) / (1920.0 * 1080)));
  const double cnn_scale = std::min(cnn_o.cnn_max_upsample,
                                    std::sqrt(double(cnn_o.cnn_pixel_budget) / (1920.0 * 1080)));
  // The faces each pipeline finds (the raw CNN run places landmarks at the CNN's boxes).
  std::vector<PhotoFaces> hog_found, cnn_found;
  for (const auto& p : photos) {
    hog_found.push_back(*hog->Process(p.bytes));
    cnn_found.push_back(*cnn->Process(p.bytes));
  }
  std::printf("Photos: %s and %s from %s, resized to 1920x1080, JPEG q92 (%zu and %zu bytes).\n",
              photos[0].name.c_str(), photos[1].name.c_str(), demo.c_str(), photos[0].bytes.size(),
              photos[1].bytes.size());
  std::printf("HOG policy scale %.3f (scan %dx%d); CNN scale %.3f (scan %dx%d, padded to %dx%d).\n",
              hog_scale, (int)std::lround(1920 * hog_scale), (int)std::lround(1080 * hog_scale),
              cnn_scale, (int)std::lround(1920 * cnn_scale), (int)std::lround(1080 * cnn_scale),
              ((int)std::lround(1920 * cnn_scale) + 127) / 128 * 128,
              ((int)std::lround(1080 * cnn_scale) + 127) / 128 * 128);
  std::printf("OpenCV %s, parallel framework threads by default: %d; OpenBLAS 1 thread; "
              "hardware threads %u.\n\n", CV_VERSION, g_cv_default_threads,
              std::thread::hardware_concurrency());

  // ---- 1. One photo, bytes to descriptors, one worker: every variant in turn, rotating
  // which goes first, `reps` times; medians.
  struct Variant {
    std::string name;
    int cv_threads;
    std::function<size_t(size_t)> run;  // photo index -> faces
  };
  std::vector<Variant> variants;
  for (int t : {0, 1}) {
    if (!section("latency")) break;
    variants.push_back({"HOG policy pipeline", t, [&](size_t i) { return hog->Process(photos[i].bytes)->faces.size(); }});
    variants.push_back({"CNN pipeline", t, [&](size_t i) { return cnn->Process(photos[i].bytes)->faces.size(); }});
    variants.push_back({"HOG policy pipeline + age", t, [&](size_t i) { return hog_age->Process(photos[i].bytes)->faces.size(); }});
    variants.push_back({"CNN pipeline + age", t, [&](size_t i) { return cnn_age->Process(photos[i].bytes)->faces.size(); }});
    variants.push_back({"raw dlib, HOG policy's work", t, [&](size_t i) { return raw_dlib.Photo(photos[i].bytes, hog_scale, true); }});
    variants.push_back({"raw OpenCV DNN + dlib, CNN pipeline's work", t, [&](size_t i) {
      const std::string& b = photos[i].bytes;
      cv::Mat bgr = cv::imdecode(cv::Mat(1, (int)b.size(), CV_8UC1, (void*)b.data()), cv::IMREAD_COLOR);
      cv::Mat rgb, scan;
      cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
      cv::resize(rgb, scan, cv::Size(), cnn_scale, cnn_scale, cv::INTER_AREA);
      raw_cnn.Forward(scan);
      return raw_dlib.Describe(rgb, Rects(cnn_found[i]), true);
    }});
  }
  const size_t nv = variants.size();
  std::vector<std::vector<std::vector<double>>> ms(nv, std::vector<std::vector<double>>(photos.size()));
  std::vector<std::vector<size_t>> faces(nv, std::vector<size_t>(photos.size()));
  for (auto& v : variants) {  // warm-up
    SetCvThreads(v.cv_threads);
    for (size_t i = 0; i < photos.size(); ++i) v.run(i);
  }
  for (int r = 0; r < reps; ++r) {
    for (size_t i = 0; i < photos.size(); ++i) {
      for (size_t k = 0; k < nv; ++k) {
        const size_t v = r % 2 ? (r + nv - 1 - k) % nv : (r + k) % nv;  // rotate, alternate direction
        SetCvThreads(variants[v].cv_threads);
        ms[v][i].push_back(1000 * TimeIt([&] { faces[v][i] = variants[v].run(i); }));
      }
    }
    std::fprintf(stderr, "latency rep %d/%d done\n", r + 1, reps);
  }
  auto mean_median = [&](size_t v) {
    double s = 0;
    for (size_t i = 0; i < photos.size(); ++i) s += Median(ms[v][i]);
    return s / photos.size();
  };
  if (section("latency")) std::printf("### Bytes to descriptors, one 1920x1080 photo, one worker (median of %d, variants interleaved)\n\n", reps);
  if (section("latency")) std::printf("| variant | OpenCV threads | faces | %s ms | %s ms | mean ms | HOG / this (same age, threads) | this / raw (same threads) |\n",
              photos[0].name.c_str(), photos[1].name.c_str());
  if (section("latency")) std::printf("|---|---|---|---:|---:|---:|---:|---:|\n");
  for (size_t v = 0; v < nv; ++v) {
    const size_t base = v - v % 6;  // the variants of the same thread count
    const size_t idx = v % 6;
    std::string vs_hog, vs_raw;
    if (idx == 1 || idx == 3) vs_hog = absl::StrFormat("**%.2fx**", mean_median(base + idx - 1) / mean_median(v));
    if (idx == 0) vs_raw = absl::StrFormat("%.3f", mean_median(v) / mean_median(base + 4));
    if (idx == 1) vs_raw = absl::StrFormat("%.3f", mean_median(v) / mean_median(base + 5));
    std::printf("| %s | %s | %zu, %zu | %.1f | %.1f | %.1f | %s | %s |\n", variants[v].name.c_str(),
                CvThreadsName(variants[v].cv_threads).c_str(), faces[v][0], faces[v][1],
                Median(ms[v][0]), Median(ms[v][1]), mean_median(v), vs_hog.c_str(), vs_raw.c_str());
  }
  if (section("latency")) std::printf("\n");

  // ---- 2. The stages, as the pipeline runs them, next to the raw library's call.
  if (section("stages")) {
  SetCvThreads(stage_threads);
  auto age_model_1 = homeward::embed::AgeModel::Load(age_model);
  auto cnn_detector = homeward::embed::CnnFaceDetector::Load(cnn_model);
  if (!age_model_1.ok() || !cnn_detector.ok()) {
    std::fprintf(stderr, "cannot load the age or face detector model\n");
    return 1;
  }
  dlib::frontal_face_detector hog_detector = dlib::get_frontal_face_detector();
  std::vector<std::vector<homeward::embed::Chip>> hog_chips, cnn_chips, age_chips;
  for (const auto& p : photos) {
    hog_chips.push_back(*hog->FaceChips(p.bytes));
    cnn_chips.push_back(*cnn->FaceChips(p.bytes));
    age_chips.push_back(*cnn_age->AgeChips(p.bytes));
  }
  enum Stage { kDecode, kScaleHog, kScaleCnn, kDetectHog, kDetectCnn, kAlignHog, kAlignCnn,
               kDescribeHog, kDescribeCnn, kAgeFace, kTotalHog, kTotalCnn, kTotalHogAge,
               kTotalCnnAge, kStages };
  // [stage][rep] mean ms per photo; ours and raw.
  std::vector<std::vector<double>> ours(kStages), raw(kStages);
  homeward::embed::CnnDetectorOptions cnn_opts;
  cnn_opts.score_threshold = cnn_o.cnn_score_threshold;
  for (int r = -1; r < reps; ++r) {  // r = -1: warm-up (first forward at each input size)
    std::vector<double> o(kStages, 0), w(kStages, 0);
    for (size_t i = 0; i < photos.size(); ++i) {
      const std::string& b = photos[i].bytes;
      const bool raw_first = (r + i) % 2;
      cv::Mat rgb, raw_rgb, scan_hog, scan_cnn;  // both decodes keep their RGB image
      auto ours_decode = [&] {
        o[kDecode] += TimeIt([&] { rgb = *homeward::embed::internal::DecodeRgb(b, hog_o.limits); });
      };
      auto raw_decode = [&] {
        w[kDecode] += TimeIt([&] {
          cv::Mat bgr = cv::imdecode(cv::Mat(1, (int)b.size(), CV_8UC1, (void*)b.data()), cv::IMREAD_COLOR);
          cv::cvtColor(bgr, raw_rgb, cv::COLOR_BGR2RGB);
        });
      };
      if (raw_first) raw_decode(), ours_decode(); else ours_decode(), raw_decode();
      o[kScaleHog] += TimeIt([&] { cv::resize(rgb, scan_hog, cv::Size(), hog_scale, hog_scale, cv::INTER_LINEAR); });
      o[kScaleCnn] += TimeIt([&] { cv::resize(rgb, scan_cnn, cv::Size(), cnn_scale, cnn_scale, cv::INTER_AREA); });
      o[kDetectHog] += TimeIt([&] {
        dlib::cv_image<dlib::rgb_pixel> img(scan_hog);
        std::vector<dlib::rect_detection> dets;
        hog_detector(img, dets, 0.0);
      });
      auto ours_cnn = [&] { o[kDetectCnn] += TimeIt([&] { (void)(*cnn_detector)->Detect(scan_cnn, cnn_opts); }); };
      auto raw_cnn_fwd = [&] { w[kDetectCnn] += TimeIt([&] { raw_cnn.Forward(scan_cnn); }); };
      if (raw_first) raw_cnn_fwd(), ours_cnn(); else ours_cnn(), raw_cnn_fwd();
      for (int which = 0; which < 2; ++which) {
        const auto rects = Rects(which == 0 ? hog_found[i] : cnn_found[i]);
        o[which == 0 ? kAlignHog : kAlignCnn] += TimeIt([&] {
          dlib::cv_image<dlib::rgb_pixel> img(rgb);
          for (const auto& rect : rects) {
            auto shape = raw_dlib.sp(img, rect);
            dlib::matrix<dlib::rgb_pixel> chip;
            dlib::extract_image_chip(img, dlib::get_face_chip_details(shape, 150, 0.25), chip);
          }
        });
        const auto& chips = which == 0 ? hog_chips[i] : cnn_chips[i];
        std::vector<dlib::matrix<dlib::rgb_pixel>> mats;
        for (const auto& c : chips) {
          dlib::matrix<dlib::rgb_pixel> m(150, 150);
          std::memcpy(&m(0, 0), c.rgb.data(), c.rgb.size());
          mats.push_back(m);
        }
        const Stage st = which == 0 ? kDescribeHog : kDescribeCnn;
        auto ours_d = [&] { o[st] += TimeIt([&] { (void)(which == 0 ? hog : cnn)->DescribeChips(chips); }); };
        auto raw_d = [&] {
          w[st] += TimeIt([&] {
            raw_dlib.net(mats, 16);
            std::vector<dlib::matrix<dlib::rgb_pixel>> mirrored;
            for (const auto& m : mats) mirrored.push_back(dlib::fliplr(m));
            raw_dlib.net(mirrored, 16);
          });
        };
        if (raw_first) raw_d(), ours_d(); else ours_d(), raw_d();
      }
      for (const auto& c : age_chips[i]) {
        cv::Mat m(224, 224, CV_8UC3, (void*)c.rgb.data());
        auto ours_a = [&] { o[kAgeFace] += TimeIt([&] { (void)(*age_model_1)->Run(c.rgb); }) / age_chips[i].size(); };
        auto raw_a = [&] { w[kAgeFace] += TimeIt([&] { raw_age.Run(m); }) / age_chips[i].size(); };
        if (raw_first) raw_a(), ours_a(); else ours_a(), raw_a();
      }
      o[kTotalHog] += TimeIt([&] { (void)hog->Process(b); });
      o[kTotalCnn] += TimeIt([&] { (void)cnn->Process(b); });
      o[kTotalHogAge] += TimeIt([&] { (void)hog_age->Process(b); });
      o[kTotalCnnAge] += TimeIt([&] { (void)cnn_age->Process(b); });
    }
    if (r < 0) continue;
    for (int s = 0; s < kStages; ++s) {
      ours[s].push_back(1000 * o[s] / photos.size());
      raw[s].push_back(1000 * w[s] / photos.size());
    }
    std::fprintf(stderr, "stage rep %d/%d done\n", r + 1, reps);
  }
  auto m = [&](Stage s) { return Median(ours[s]); };
  auto mr = [&](Stage s) { return Median(raw[s]); };
  std::printf("### Stages per photo (mean of the two photos, median of %d), OpenCV threads %s\n\n",
              reps, CvThreadsName(stage_threads).c_str());
  std::printf("| stage | HOG pipeline ms | CNN pipeline ms | raw library, same work ms | Homeward / raw |\n");
  std::printf("|---|---:|---:|---:|---:|\n");
  std::printf("| decode (JPEG, EXIF, RGB) | %.1f | %.1f | %.1f (cv::imdecode + cvtColor) | %.2f |\n",
              m(kDecode), m(kDecode), mr(kDecode), m(kDecode) / mr(kDecode));
  std::printf("| scale to the detector's policy | %.1f (x%.2f, linear) | %.1f (x%.2f, area) | (the same call) | |\n",
              m(kScaleHog), hog_scale, m(kScaleCnn), cnn_scale);
  std::printf("| detect | %.1f (dlib HOG: the raw call itself) | %.1f (CnnFaceDetector::Detect) | %.1f (Net::forward of the padded input) | %.2f |\n",
              m(kDetectHog), m(kDetectCnn), mr(kDetectCnn), m(kDetectCnn) / mr(kDetectCnn));
  std::printf("| landmarks + align (3 faces) | %.1f | %.1f | (the same calls) | |\n", m(kAlignHog), m(kAlignCnn));
  std::printf("| descriptors, 3 faces, mirror averaging | %.1f | %.1f | %.1f / %.1f (anet_type, 2 passes) | %.2f / %.2f |\n",
              m(kDescribeHog), m(kDescribeCnn), mr(kDescribeHog), mr(kDescribeCnn),
              m(kDescribeHog) / mr(kDescribeHog), m(kDescribeCnn) / mr(kDescribeCnn));
  std::printf("| age estimate, per face | %.1f | %.1f | %.1f (Net::forward, blobFromImage) | %.2f |\n",
              m(kAgeFace), m(kAgeFace), mr(kAgeFace), m(kAgeFace) / mr(kAgeFace));
  const double sum_hog = m(kDecode) + m(kScaleHog) + m(kDetectHog) + m(kAlignHog) + m(kDescribeHog);
  const double sum_cnn = m(kDecode) + m(kScaleCnn) + m(kDetectCnn) + m(kAlignCnn) + m(kDescribeCnn);
  std::printf("| sum of the stages above (without age) | %.1f | %.1f | | |\n", sum_hog, sum_cnn);
  std::printf("| Process(), measured (without age) | %.1f | %.1f | | |\n", m(kTotalHog), m(kTotalCnn));
  std::printf("| rest: quality (sharpness, yaw by solvePnP), copies | %.1f | %.1f | | |\n",
              m(kTotalHog) - sum_hog, m(kTotalCnn) - sum_cnn);
  std::printf("| Process() with the age model, measured | %.1f | %.1f | | |\n", m(kTotalHogAge), m(kTotalCnnAge));
  std::printf("\n");
  }  // stages
  if (!section("throughput")) return 0;

  // ---- 3. Throughput: ProcessMany over the 1920x1080 photos, age model loaded (the server's
  // default), by detector, workers and OpenCV threads; configurations rotated `tp_reps` times.
  PipelineOptions hog_age2_o = hog_age_o, cnn_age2_o = cnn_age_o;
  hog_age2_o.workers = cnn_age2_o.workers = 2;
  auto hog_age2 = MakePipeline(hog_age2_o), cnn_age2 = MakePipeline(cnn_age2_o);
  std::vector<std::string_view> batch;
  for (int k = 0; k < tp_photos; ++k) batch.push_back(photos[k % photos.size()].bytes);
  struct Config {
    std::string detector;
    const FacePipeline* pipeline;
    int workers, cv_threads;
  };
  std::vector<Config> configs;
  for (int t : {0, 1}) {
    configs.push_back({"HOG", hog_age.get(), 1, t});
    configs.push_back({"HOG", hog_age2.get(), 2, t});
    configs.push_back({"CNN", cnn_age.get(), 1, t});
    configs.push_back({"CNN", cnn_age2.get(), 2, t});
  }
  std::vector<std::vector<double>> rate(configs.size()), cpu(configs.size());
  for (const Config& c : configs) {  // warm-up: every worker's networks see the input size once
    SetCvThreads(c.cv_threads);
    (void)c.pipeline->ProcessMany({batch[0], batch[1 % batch.size()]});
  }
  for (int r = 0; r < tp_reps; ++r) {
    for (size_t k = 0; k < configs.size(); ++k) {
      const size_t c = r % 2 ? (configs.size() - 1 - k) : k;
      SetCvThreads(configs[c].cv_threads);
      const double c0 = CpuSeconds();
      const double secs = TimeIt([&] { (void)configs[c].pipeline->ProcessMany(batch); });
      rate[c].push_back(batch.size() / secs);
      cpu[c].push_back((CpuSeconds() - c0) / batch.size());
    }
    std::fprintf(stderr, "throughput rep %d/%d done\n", r + 1, tp_reps);
  }
  std::printf("### ProcessMany, %zu photos of 1920x1080 (3 faces each), age model loaded (median of %d, configurations rotated)\n\n",
              batch.size(), tp_reps);
  std::printf("| detector | workers | OpenCV threads | photos/s | each run | CPU s per photo | vs 1 worker, default threads |\n");
  std::printf("|---|---:|---|---:|---|---:|---:|\n");
  for (size_t c = 0; c < configs.size(); ++c) {
    std::string runs;
    for (double x : rate[c]) runs += absl::StrFormat("%s%.2f", runs.empty() ? "" : ", ", x);
    const size_t base = configs[c].detector == "HOG" ? 0 : 2;
    std::printf("| %s | %d | %s | %.2f | %s | %.3f | %.2f |\n", configs[c].detector.c_str(),
                configs[c].workers, CvThreadsName(configs[c].cv_threads).c_str(), Median(rate[c]),
                runs.c_str(), Median(cpu[c]), Median(rate[c]) / Median(rate[base]));
  }
  SetCvThreads(0);
  return 0;
}

}  // namespace

// ------------------------------------------------------------------------------ recheck
// Each CNN face of the pipeline, looked at again on a crop around it: does dlib HOG find it
// (the refinement's test), and what does the CNN score on the crop at a canonical scale?
int Recheck(int argc, char** argv) {
  std::vector<std::string> files;
  const std::string set = Flag(argc, argv, "--set", "demo");
  if (set == "demo") {
    files = DetectPhotos(argc, argv);
  } else {
    const std::string dir = SharedData(argc, argv) + "/" + set;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
      auto ext = e.path().extension().string();
      if (ext == ".jpg" || ext == ".JPG" || ext == ".png") files.push_back(e.path().string());
    }
    std::sort(files.begin(), files.end());
  }
  const int limit = std::atoi(Flag(argc, argv, "--limit", "100000").c_str());
  if (static_cast<int>(files.size()) > limit) files.resize(limit);
  PipelineOptions o = DetectorOptions(DetectorKind::kCnn);
  o.mirror_augment = false;
  o.workers = Workers(argc, argv);
  std::vector<PhotoFaces> r = ProcessFiles(*MakePipeline(o), files);
  auto det = CnnFaceDetector::Load(CnnModelPath());
  if (!det.ok()) return 1;
  dlib::frontal_face_detector hog = dlib::get_frontal_face_detector();
  const double face_px = std::atof(Flag(argc, argv, "--face-px", "100").c_str());
  const double context = std::atof(Flag(argc, argv, "--context", "0.9").c_str());
  std::printf("| photo | faces | box | score | yaw | HOG on crop | CNN on crop |\n|---|---|---|---|---|---|---|\n");
  for (size_t i = 0; i < files.size(); ++i) {
    auto rgb = homeward::embed::internal::DecodeRgb(ReadFile(files[i]), {});
    if (!rgb.ok()) continue;
    for (const Face& f : r[i].faces) {
      const double side = std::max(f.box.width, f.box.height);
      const double cx = f.box.x + f.box.width / 2.0, cy = f.box.y + f.box.height / 2.0;
      const cv::Rect want(std::floor(cx - side * (0.5 + context)), std::floor(cy - side * (0.5 + context)),
                          std::ceil(side * (1 + 2 * context)), std::ceil(side * (1 + 2 * context)));
      const cv::Rect crop = want & cv::Rect(0, 0, rgb->cols, rgb->rows);
      const double k = face_px / side;
      cv::Mat small;
      cv::resize((*rgb)(crop), small, cv::Size(), k, k, k < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
      const cv::Rect2d face_in_crop((f.box.x - crop.x) * k, (f.box.y - crop.y) * k, f.box.width * k,
                                    f.box.height * k);
      double hog_best = -9;
      {
        dlib::cv_image<dlib::rgb_pixel> img(small);
        std::vector<dlib::rect_detection> dets;
        hog(img, dets, -0.5);
        for (const auto& d : dets) {
          cv::Rect2d b(d.rect.left(), d.rect.top(), d.rect.width(), d.rect.height());
          if ((b & face_in_crop).area() / (b | face_in_crop).area() >= 0.3) hog_best = std::max(hog_best, d.detection_confidence);
        }
      }
      double cnn_best = 0;
      homeward::embed::CnnDetectorOptions co;
      co.score_threshold = 0.05f;
      auto cd = (*det)->Detect(small, co);
      if (cd.ok()) {
        for (const auto& d : *cd) {
          cv::Rect2d b(d.left, d.top, d.right - d.left, d.bottom - d.top);
          if ((b & face_in_crop).area() / (b | face_in_crop).area() >= 0.3) cnn_best = std::max<double>(cnn_best, d.score);
        }
      }
      std::printf("| %s | %zu | %dx%d+%d+%d | %.3f | %.1f | %.3f | %.3f |\n", fs::path(files[i]).filename().c_str(),
                  r[i].faces.size(), f.box.width, f.box.height, f.box.x, f.box.y, f.detector_score,
                  f.quality.yaw_degrees, hog_best, cnn_best);
    }
  }
  return 0;
}

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  const std::string refine = Flag(argc, argv, "--cnn-refine", "on");
  if (refine != "on" && refine != "off") {
    std::fprintf(stderr, "--cnn-refine: on or off, not '%s'\n", refine.c_str());
    return 2;
  }
  g_cnn_flags.cnn_refine_with_hog = refine == "on";
  g_cnn_flags.cnn_coarse_side =
      std::atoi(Flag(argc, argv, "--cnn-coarse-side", std::to_string(g_cnn_flags.cnn_coarse_side)).c_str());
  g_cnn_flags.cnn_refine_threshold =
      std::atof(Flag(argc, argv, "--cnn-refine-threshold", std::to_string(g_cnn_flags.cnn_refine_threshold)).c_str());
  g_cnn_flags.cnn_recheck_min_score =
      std::atof(Flag(argc, argv, "--cnn-recheck", std::to_string(g_cnn_flags.cnn_recheck_min_score)).c_str());
  if (cmd == "lfw") return Lfw(argc, argv);
  if (cmd == "speed") return Speed(argc, argv);
  if (cmd == "detect") return Detect(argc, argv);
  if (cmd == "fit-box-map") return FitBoxMap(argc, argv);
  if (cmd == "cnn-sweep") return CnnSweep(argc, argv);
  if (cmd == "fgnet") return Fgnet(argc, argv);
  if (cmd == "detectors") return Detectors(argc, argv);
  if (cmd == "recheck") return Recheck(argc, argv);
  std::fprintf(stderr, "usage: embed_bench lfw|speed|detect|detectors|fgnet|fit-box-map|cnn-sweep [--data DIR] [--demo DIR] "
                       "[--folder DIR] [--detector hog|cnn|both] [--workers N]\n");
  return 2;
}
