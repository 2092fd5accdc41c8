#include "fuzz/fuzz_util.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <system_error>
#include <vector>

namespace homeward::fuzz {
namespace {

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

std::mutex temp_mu;
std::vector<std::string>* temp_dirs = nullptr;

void RemoveTempDirs() {
  std::lock_guard<std::mutex> lock(temp_mu);
  if (temp_dirs == nullptr) return;
  std::error_code ec;
  for (const std::string& d : *temp_dirs) std::filesystem::remove_all(d, ec);
}

}  // namespace

std::string SourceDir() { return HOMEWARD_SOURCE_DIR; }

std::string RecognitionModelPath() {
  return EnvOr("HOMEWARD_RECOGNITION_MODEL",
               std::string(HOMEWARD_DEFAULT_MODELS_DIR) + "/faceapi_1.7.15_resnet.dat");
}

std::string LandmarkModelPath() {
  return EnvOr("HOMEWARD_LANDMARK_MODEL", "/usr/share/dlib/shape_predictor_68_face_landmarks.dat");
}

std::string AgeModelPath() {
  return EnvOr("HOMEWARD_AGE_MODEL",
               std::string(HOMEWARD_DEFAULT_MODELS_DIR) + "/faceres-deep_3.0.4.onnx");
}

std::string FaceDetectorModelPath() {
  return EnvOr("HOMEWARD_FACE_DETECTOR_MODEL",
               std::string(HOMEWARD_DEFAULT_MODELS_DIR) + "/faceboxes_3.0.4.onnx");
}

std::string DemoDir() {
  return EnvOr("HOMEWARD_DEMO_DIR",
               std::string(HOMEWARD_DEFAULT_MODELS_DIR) + "/cache/face-api-1.7.15/demo");
}

bool ModelsPresent() {
  std::error_code ec;
  return std::filesystem::exists(RecognitionModelPath(), ec) &&
         std::filesystem::exists(LandmarkModelPath(), ec);
}

void Skip(const std::string& why) {
  std::fprintf(stderr, "SKIPPED: %s\n", why.c_str());
  std::fflush(stderr);
  std::_Exit(kSkipExitCode);
}

std::string MakeTempDir(const std::string& prefix) {
  std::string base = "/dev/shm";
  if (::access(base.c_str(), W_OK) != 0) base = EnvOr("TMPDIR", "/tmp");
  std::string tmpl = base + "/" + prefix + "_XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) Fail("mkdtemp " + tmpl);
  std::lock_guard<std::mutex> lock(temp_mu);
  if (temp_dirs == nullptr) {
    temp_dirs = new std::vector<std::string>();
    std::atexit(RemoveTempDirs);
  }
  temp_dirs->push_back(tmpl);
  return tmpl;
}

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

bool WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(out);
}

void Fail(const std::string& what) {
  std::fprintf(stderr, "FUZZ INVARIANT BROKEN: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace homeward::fuzz
