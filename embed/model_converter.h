// Converts the face-recognition weights that ship in the npm package
// @vladmandic/face-api (dlib's public-domain ResNet converted to TF.js, mostly
// uint8-quantized) back into dlib's own network file format, readable by
// dlib::deserialize into the network type of dlib's dnn_face_recognition_ex.cpp.
//
// Thread safety: the functions are pure and may be called concurrently.
#ifndef HOMEWARD_EMBED_MODEL_CONVERTER_H_
#define HOMEWARD_EMBED_MODEL_CONVERTER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace homeward::embed {

// One tensor of a TF.js weights manifest, in manifest (input-to-output) order.
struct TfjsTensor {
  std::string name;
  std::vector<int64_t> shape;
  bool quantized = false;  // uint8: value = q * scale + min
  double scale = 0;
  double min = 0;
  // Number of bytes this tensor occupies in the .bin file.
  int64_t ByteSize() const;
  int64_t ElementCount() const;
};

// Parses a TF.js weights manifest (JSON). Returns INVALID_ARGUMENT with the offending
// entry when the JSON is malformed, a dtype is unsupported or a shape is invalid.
absl::StatusOr<std::vector<TfjsTensor>> ParseTfjsManifest(std::string_view manifest_json);

// Decodes every tensor of `weights` (the .bin contents, tensors back to back) to float.
// Returns INVALID_ARGUMENT unless `weights` is consumed exactly.
absl::StatusOr<std::vector<std::vector<float>>> DecodeTfjsWeights(
    const std::vector<TfjsTensor>& tensors, std::string_view weights);

// Builds the dlib network from the manifest + weights and serializes it to `output_path`
// (written to a temporary file, then renamed). Returns INVALID_ARGUMENT when the tensors
// do not match the network's layers one to one, or an I/O error.
absl::Status ConvertFaceApiRecognitionModel(std::string_view manifest_json,
                                            std::string_view weights,
                                            const std::string& output_path);

}  // namespace homeward::embed

#endif  // HOMEWARD_EMBED_MODEL_CONVERTER_H_
