// homeward embed [--json] PHOTO...: faces and descriptors of local photos, in-process.
// Models load once per call; photos are processed in parallel chunks, printed in order.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "absl/strings/str_format.h"
#include "clients/commands.h"
#include "embed/face_pipeline.h"

namespace homeward::cli {
namespace {

namespace fs = std::filesystem;

struct EmbedOptions {
  std::vector<std::string> photos;
  std::string recognition_model;
  std::string landmark_model;
  int workers = 0;
  bool no_mirror = false;
  std::string detector = "cnn";
  std::string face_detector_model;
  std::string age_model;  // empty: no age estimate
  double cnn_max_upsample = embed::PipelineOptions().cnn_max_upsample;
  int64_t cnn_pixel_budget = embed::PipelineOptions().cnn_pixel_budget;
};

std::string DefaultFaceDetectorModel() {
  if (const char* env = std::getenv("HOMEWARD_FACE_DETECTOR_MODEL")) return env;
  return std::string(HOMEWARD_DEFAULT_MODELS_DIR) + "/faceboxes_3.0.4.onnx";
}

std::string DefaultRecognitionModel() {
  if (const char* env = std::getenv("HOMEWARD_RECOGNITION_MODEL")) return env;
  return std::string(HOMEWARD_DEFAULT_MODELS_DIR) + "/faceapi_1.7.15_resnet.dat";
}

absl::StatusOr<std::string> ReadPhoto(const std::string& path, int64_t max_bytes) {
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  if (ec) return absl::NotFoundError("cannot read file: " + ec.message());
  if (static_cast<int64_t>(size) > max_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("file is %d bytes; the limit is %d", size, max_bytes));
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (!in && !in.eof()) return absl::NotFoundError("cannot read file");
  return ss.str();
}

nlohmann::json FaceJson(const std::string& path, size_t index, size_t count,
                        const embed::Face& f) {
  nlohmann::json j;
  j["path"] = path;
  j["face"] = index;
  j["faces"] = count;
  j["box"] = {{"x", f.box.x}, {"y", f.box.y}, {"width", f.box.width}, {"height", f.box.height}};
  j["score"] = f.detector_score;
  j["quality"] = {{"face_width_px", f.quality.face_width_px},
                  {"sharpness", f.quality.sharpness},
                  {"yaw_degrees", f.quality.yaw_degrees},
                  {"non_frontal", f.quality.non_frontal},
                  {"usable", f.quality.usable},
                  {"reason", f.quality.reason}};
  if (f.age.known) {
    j["age"] = {{"years", f.age.years}, {"min_years", f.age.min_years},
                {"max_years", f.age.max_years}};
  }
  j["descriptor"] = std::vector<float>(f.descriptor.begin(), f.descriptor.end());
  return j;
}

int RunEmbed(const EmbedOptions& opt, const GlobalOptions& global) {
  embed::PipelineOptions po;
  po.recognition_model_path = opt.recognition_model;
  if (!opt.landmark_model.empty()) po.landmark_model_path = opt.landmark_model;
  po.workers = opt.workers;
  po.mirror_augment = !opt.no_mirror;
  auto detector = embed::ParseDetectorKind(opt.detector);
  if (!detector.ok()) {
    std::cerr << "homeward embed: " << detector.status().message() << "\n";
    return 2;
  }
  po.detector = *detector;
  po.face_detector_model_path = opt.face_detector_model;
  po.cnn_max_upsample = opt.cnn_max_upsample;
  po.cnn_pixel_budget = opt.cnn_pixel_budget;
  po.age_model_path = opt.age_model;
  auto pipeline = embed::FacePipeline::Create(po);
  if (!pipeline.ok()) {
    std::cerr << "homeward embed: " << pipeline.status().message() << "\n";
    return 1;
  }
  const size_t chunk = 8 * static_cast<size_t>((*pipeline)->workers());
  int failures = 0;
  for (size_t start = 0; start < opt.photos.size(); start += chunk) {
    const size_t end = std::min(opt.photos.size(), start + chunk);
    std::vector<absl::StatusOr<std::string>> bytes;
    std::vector<std::string_view> views;
    for (size_t i = start; i < end; ++i) {
      bytes.push_back(ReadPhoto(opt.photos[i], po.limits.max_bytes));
      views.push_back(bytes.back().ok() ? std::string_view(*bytes.back()) : std::string_view());
    }
    std::vector<absl::StatusOr<embed::PhotoFaces>> results = (*pipeline)->ProcessMany(views);
    for (size_t i = start; i < end; ++i) {
      const std::string& path = opt.photos[i];
      absl::Status status = bytes[i - start].ok() ? results[i - start].status()
                                                  : bytes[i - start].status();
      if (!status.ok()) {
        ++failures;
        if (global.json) {
          nlohmann::json j = {{"path", path},
                              {"error", std::string(status.message())},
                              {"code", absl::StatusCodeToString(status.code())}};
          std::cout << j.dump() << "\n";
        } else {
          std::cerr << path << ": error: " << status.message() << "\n";
        }
        continue;
      }
      const embed::PhotoFaces& r = *results[i - start];
      if (r.faces.empty()) {
        if (global.json) {
          std::cout << nlohmann::json{{"path", path}, {"faces", 0}, {"reason", r.no_face_reason}}
                           .dump()
                    << "\n";
        } else {
          std::cout << path << ": 0 faces (" << r.no_face_reason << ")\n";
        }
        continue;
      }
      for (size_t k = 0; k < r.faces.size(); ++k) {
        const embed::Face& f = r.faces[k];
        if (global.json) {
          std::cout << FaceJson(path, k, r.faces.size(), f).dump() << "\n";
        } else {
          const std::string age =
              f.age.known ? absl::StrFormat("  age from the face %.0f-%.0f", f.age.min_years,
                                            f.age.max_years)
                          : "";
          std::cout << absl::StrFormat(
              "%s: face %d of %d  box %dx%d+%d+%d  score %.2f%s  %s%s\n", path, k, r.faces.size(),
              f.box.width, f.box.height, f.box.x, f.box.y, f.detector_score, age,
              f.quality.usable ? "usable" : "NOT usable: " + f.quality.reason,
              f.quality.non_frontal ? " (NON_FRONTAL: kept as evidence)" : "");
        }
      }
    }
    std::cout.flush();
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace

Runner RegisterEmbed(CLI::App& app, const GlobalOptions& global) {
  auto opt = std::make_shared<EmbedOptions>();
  CLI::App* sub = app.add_subcommand(
      "embed", "find faces in local photos and print their descriptors (no server needed)");
  sub->add_option("photos", opt->photos, "photo files")->required();
  opt->recognition_model = DefaultRecognitionModel();
  sub->add_option("--recognition-model", opt->recognition_model,
                  "dlib face-recognition network (.dat)")->capture_default_str();
  sub->add_option("--landmark-model", opt->landmark_model, "dlib 68-point shape predictor");
  sub->add_option("--detector", opt->detector,
                  "face detector: cnn (FaceBoxes: turned and small faces, faster) or hog (dlib)")
      ->capture_default_str();
  opt->face_detector_model = DefaultFaceDetectorModel();
  sub->add_option("--face-detector-model", opt->face_detector_model,
                  "FaceBoxes ONNX for --detector cnn")->capture_default_str();
  sub->add_option("--cnn-max-upsample", opt->cnn_max_upsample,
                  "largest scale-up of a small photo before the CNN")->capture_default_str();
  sub->add_option("--cnn-pixel-budget", opt->cnn_pixel_budget,
                  "pixels the CNN sees (photos are scaled toward this)")->capture_default_str();
  sub->add_option("--age-model", opt->age_model,
                  "estimate each face's age with this ONNX (models/faceres-deep_3.0.4.onnx)");
  sub->add_option("--workers", opt->workers, "worker threads (0 = one per core)");
  sub->add_flag("--no-mirror", opt->no_mirror,
                "skip averaging each descriptor with its mirror image's (faster, less accurate)");
  sub->add_flag("--json", const_cast<GlobalOptions&>(global).json, "one JSON object per face");
  return [opt, &global] { return RunEmbed(*opt, global); };
}

}  // namespace homeward::cli
