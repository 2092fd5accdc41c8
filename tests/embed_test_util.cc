#include "tests/embed_test_util.h"

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <opencv2/imgcodecs.hpp>

namespace homeward::testing {

std::string RecognitionModelPath() {
  if (const char* env = std::getenv("HOMEWARD_RECOGNITION_MODEL")) return env;
  return std::string(HOMEWARD_DEFAULT_MODELS_DIR) + "/faceapi_1.7.15_resnet.dat";
}

std::string FaceDetectorModelPath() {
  if (const char* env = std::getenv("HOMEWARD_FACE_DETECTOR_MODEL")) return env;
  return std::string(HOMEWARD_DEFAULT_MODELS_DIR) + "/faceboxes_3.0.4.onnx";
}

std::string DemoDir() {
  if (const char* env = std::getenv("HOMEWARD_DEMO_DIR")) return env;
  return std::string(HOMEWARD_DEFAULT_MODELS_DIR) + "/cache/face-api-1.7.15/demo";
}

bool ModelsInstalled() {
  return std::filesystem::exists(RecognitionModelPath()) &&
         std::filesystem::exists("/usr/share/dlib/shape_predictor_68_face_landmarks.dat") &&
         std::filesystem::exists(DemoDir() + "/sample2.jpg");
}

std::string SharedDataDir() {
  if (const char* env = std::getenv("HOMEWARD_SHARED_DATA")) return env;
  return std::string(HOMEWARD_SOURCE_DIR) + "/../shared/data";
}

std::string ReadFileOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path + " (run scripts/setup.sh models)");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string EncodeJpeg(const cv::Mat& bgr, int quality) {
  std::vector<uchar> buf;
  cv::imencode(".jpg", bgr, buf, {cv::IMWRITE_JPEG_QUALITY, quality});
  return std::string(buf.begin(), buf.end());
}

std::string EncodePng(const cv::Mat& img) {
  std::vector<uchar> buf;
  cv::imencode(".png", img, buf);
  return std::string(buf.begin(), buf.end());
}

cv::Mat DecodeBgr(const std::string& bytes) {
  return cv::imdecode(cv::Mat(1, static_cast<int>(bytes.size()), CV_8UC1,
                              const_cast<char*>(bytes.data())),
                      cv::IMREAD_COLOR);
}

std::string OneFaceSample2() {
  const cv::Mat img = DecodeBgr(ReadFileOrDie(DemoDir() + "/sample2.jpg"));
  constexpr int kLeft = 1150;  // the middle woman's face ends at x ~1071, the right one's starts at ~1434
  return EncodeJpeg(img(cv::Rect(kLeft, 0, img.cols - kLeft, img.rows)).clone(), 95);
}

std::string Base64(const std::string& in) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += {kAlphabet[(v >> 18) & 63], kAlphabet[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += {kAlphabet[(v >> 18) & 63], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63], '='};
  }
  return out;
}

const embed::FacePipeline& SharedPipeline() {
  static const embed::FacePipeline* pipeline = [] {
    embed::PipelineOptions o;
    o.recognition_model_path = RecognitionModelPath();
    auto p = embed::FacePipeline::Create(o);
    if (!p.ok()) throw std::runtime_error(std::string(p.status().message()));
    return p->release();
  }();
  return *pipeline;
}

}  // namespace homeward::testing
