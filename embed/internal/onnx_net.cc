#include "embed/internal/onnx_net.h"

#include <filesystem>
#include <fstream>
#include <iterator>

#include "absl/strings/str_cat.h"

namespace homeward::embed::internal {

absl::StatusOr<std::vector<uchar>> ReadModelFile(const std::string& path, const char* what) {
  std::error_code ec;
  if (path.empty() || !std::filesystem::is_regular_file(path, ec)) {
    return absl::NotFoundError(
        absl::StrCat(what, " '", path, "' not found (scripts/setup.sh models converts it)"));
  }
  std::ifstream in(path, std::ios::binary);
  return std::vector<uchar>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string ModelId(const std::string& path, size_t bytes) {
  return absl::StrCat(std::filesystem::path(path).filename().string(), ":", bytes);
}

absl::StatusOr<cv::dnn::Net> NetFromOnnx(const std::vector<uchar>& bytes, const std::string& path,
                                         const char* what) {
  try {
    cv::dnn::Net net = cv::dnn::readNetFromONNX(bytes);
    if (net.empty()) return absl::InvalidArgumentError(absl::StrCat("'", path, "' holds no network"));
    net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    return net;
  } catch (const cv::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read ", what, " '", path, "' as ONNX: ", e.what()));
  }
}

}  // namespace homeward::embed::internal
