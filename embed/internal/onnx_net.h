// Reading an ONNX model file into OpenCV's DNN module, shared by the age estimator and the
// CNN face detector (each keeps the file's bytes to Clone() a network per worker thread).
#ifndef HOMEWARD_EMBED_INTERNAL_ONNX_NET_H_
#define HOMEWARD_EMBED_INTERNAL_ONNX_NET_H_

#include <string>
#include <vector>

#include <opencv2/dnn.hpp>

#include "absl/status/statusor.h"

namespace homeward::embed::internal {

// The bytes of the model file at `path`. NOT_FOUND, naming `what` ("age model", "face
// detector model"), when it is missing; the message says scripts/setup.sh makes it.
absl::StatusOr<std::vector<uchar>> ReadModelFile(const std::string& path, const char* what);

// "<file name>:<bytes>", the id stored with results.
std::string ModelId(const std::string& path, size_t bytes);

// A network on OpenCV's own CPU backend. INVALID_ARGUMENT when the bytes are not ONNX that
// OpenCV reads (or hold no network).
absl::StatusOr<cv::dnn::Net> NetFromOnnx(const std::vector<uchar>& bytes, const std::string& path,
                                         const char* what);

}  // namespace homeward::embed::internal

#endif  // HOMEWARD_EMBED_INTERNAL_ONNX_NET_H_
