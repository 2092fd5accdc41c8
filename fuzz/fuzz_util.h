// Helpers shared by the fuzz targets and the seed generator: where the models and demo
// photos are, temporary directories, whole-file I/O.
//
// A fuzz target defines LLVMFuzzerTestOneInput (and optionally LLVMFuzzerInitialize); it is
// linked either with libFuzzer (clang, HOMEWARD_FUZZ=ON) or with replay_main.cc.
#ifndef HOMEWARD_FUZZ_FUZZ_UTIL_H_
#define HOMEWARD_FUZZ_FUZZ_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace homeward::fuzz {

// The exit code that tells ctest (SKIP_RETURN_CODE) and scripts/fuzz.sh that a target cannot
// run on this machine (e.g. the models are missing).
inline constexpr int kSkipExitCode = 77;

std::string SourceDir();
std::string RecognitionModelPath();  // $HOMEWARD_RECOGNITION_MODEL or models/faceapi_...dat
std::string LandmarkModelPath();     // $HOMEWARD_LANDMARK_MODEL or Debian's libdlib-data file
std::string AgeModelPath();          // $HOMEWARD_AGE_MODEL or models/faceres-deep_3.0.4.onnx
// $HOMEWARD_FACE_DETECTOR_MODEL or models/faceboxes_3.0.4.onnx (the server's default detector)
std::string FaceDetectorModelPath();
std::string DemoDir();               // $HOMEWARD_DEMO_DIR or face-api's demo/ under models/
bool ModelsPresent();

// Prints why and exits with kSkipExitCode.
[[noreturn]] void Skip(const std::string& why);

// A fresh directory under /dev/shm (fsync is free there) or $TMPDIR, removed at exit.
std::string MakeTempDir(const std::string& prefix);

bool ReadFile(const std::string& path, std::string* out);
bool WriteFile(const std::string& path, const std::string& bytes);

// Aborts with a message: a broken invariant is a finding, just like a crash.
[[noreturn]] void Fail(const std::string& what);

}  // namespace homeward::fuzz

#endif  // HOMEWARD_FUZZ_FUZZ_UTIL_H_
