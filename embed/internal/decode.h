// Image decoding behind the pipeline (OpenCV stays inside embed/).
#ifndef HOMEWARD_EMBED_INTERNAL_DECODE_H_
#define HOMEWARD_EMBED_INTERNAL_DECODE_H_

#include <string_view>

#include <opencv2/core.hpp>

#include "absl/status/statusor.h"
#include "embed/face_pipeline.h"

namespace homeward::embed::internal {

// Decodes `bytes` into an 8-bit, 3-channel RGB image with the EXIF orientation applied.
// Greyscale, 16-bit and alpha inputs are converted (alpha is dropped). The header is checked
// against `limits` before any pixel is decoded. `info`, when given, receives the header.
absl::StatusOr<cv::Mat> DecodeRgb(std::string_view bytes, const DecodeLimits& limits,
                                  ImageInfo* info = nullptr);

}  // namespace homeward::embed::internal

#endif  // HOMEWARD_EMBED_INTERNAL_DECODE_H_
