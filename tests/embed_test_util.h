// Shared fixtures for the embed tests: model paths, demo photos, image helpers.
#ifndef HOMEWARD_TESTS_EMBED_TEST_UTIL_H_
#define HOMEWARD_TESTS_EMBED_TEST_UTIL_H_

#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "embed/face_pipeline.h"

namespace homeward::testing {

std::string RecognitionModelPath();
std::string FaceDetectorModelPath();  // FaceBoxes ONNX ($HOMEWARD_FACE_DETECTOR_MODEL)
std::string DemoDir();          // face-api's demo/ folder (sample1..6.jpg), fetched at set-up
std::string SharedDataDir();    // ../shared/data, may be absent
// true when the recognition and landmark models and the demo photos are installed.
bool ModelsInstalled();
std::string ReadFileOrDie(const std::string& path);
std::string EncodeJpeg(const cv::Mat& bgr, int quality = 95);
std::string EncodePng(const cv::Mat& img);
cv::Mat DecodeBgr(const std::string& bytes);
// The server tests' one-face "child" photo: sample2.jpg shows three women to the CNN detector
// (dlib's HOG finds only the right-hand face), so it is cut to its right-hand 770 columns,
// where both detectors find exactly that face. JPEG quality 95; the same bytes every call.
std::string OneFaceSample2();
// Standard base64 with padding (the JSON gateway's bytes fields).
std::string Base64(const std::string& bytes);

// One pipeline per test binary (loading models costs ~0.5 s).
const embed::FacePipeline& SharedPipeline();

}  // namespace homeward::testing

#endif  // HOMEWARD_TESTS_EMBED_TEST_UTIL_H_
