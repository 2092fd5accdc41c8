// homeward-convert-model MANIFEST.json WEIGHTS.bin OUTPUT.dat
//
// Converts face-api's TF.js face_recognition_model into dlib's network format.
#include <fstream>
#include <iostream>
#include <sstream>

#include "embed/model_converter.h"

namespace {

bool ReadFile(const char* path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: homeward-convert-model MANIFEST.json WEIGHTS.bin OUTPUT.dat\n";
    return 2;
  }
  std::string manifest, weights;
  if (!ReadFile(argv[1], &manifest) || !ReadFile(argv[2], &weights)) {
    std::cerr << "homeward-convert-model: cannot read " << argv[1] << " or " << argv[2] << "\n";
    return 1;
  }
  absl::Status s = homeward::embed::ConvertFaceApiRecognitionModel(manifest, weights, argv[3]);
  if (!s.ok()) {
    std::cerr << "homeward-convert-model: " << s.message() << "\n";
    return 1;
  }
  std::cout << "wrote " << argv[3] << "\n";
  return 0;
}
