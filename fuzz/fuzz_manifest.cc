// Fuzz target: the model converter's TF.js manifest parser (embed/model_converter.h), fed by
// tools/homeward-convert-model. Any text either fails with INVALID_ARGUMENT or yields tensors
// whose shapes are positive and whose sizes add up; a manifest of at most 1 MiB of weights is
// then decoded from a synthetic .bin of exactly that size (must succeed) and from one byte
// less and one byte more (must fail cleanly).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "embed/model_converter.h"
#include "fuzz/fuzz_util.h"

using homeward::fuzz::Fail;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  auto tensors = homeward::embed::ParseTfjsManifest(json);
  if (!tensors.ok()) {
    if (tensors.status().code() != absl::StatusCode::kInvalidArgument) {
      Fail("ParseTfjsManifest returned " + tensors.status().ToString());
    }
    return 0;
  }
  constexpr int64_t kMaxDecodeBytes = 1 << 20;
  int64_t total = 0;
  for (const auto& t : *tensors) {
    if (t.ElementCount() <= 0 || t.ByteSize() <= 0) {
      Fail(absl::StrCat("tensor '", t.name, "' has ", t.ElementCount(), " elements"));
    }
    for (int64_t d : t.shape) {
      if (d <= 0) Fail(absl::StrCat("tensor '", t.name, "' has dimension ", d));
    }
    total += t.ByteSize();
    if (total > kMaxDecodeBytes) return 0;
  }
  std::string weights(static_cast<size_t>(total), '\0');
  for (size_t i = 0; i < weights.size(); ++i) weights[i] = static_cast<char>(i * 131 + 7);
  auto decoded = homeward::embed::DecodeTfjsWeights(*tensors, weights);
  if (!decoded.ok()) Fail("exact-size weights rejected: " + decoded.status().ToString());
  if (decoded->size() != tensors->size()) Fail("DecodeTfjsWeights lost tensors");
  for (size_t i = 0; i < decoded->size(); ++i) {
    if (static_cast<int64_t>((*decoded)[i].size()) != (*tensors)[i].ElementCount()) {
      Fail("DecodeTfjsWeights returned the wrong element count");
    }
  }
  if (total > 0) {
    auto shorter = homeward::embed::DecodeTfjsWeights(
        *tensors, std::string_view(weights).substr(0, weights.size() - 1));
    if (shorter.ok()) Fail("a weights file one byte short was accepted");
  }
  weights.push_back('\0');
  if (homeward::embed::DecodeTfjsWeights(*tensors, weights).ok()) {
    Fail("a weights file one byte long was accepted");
  }
  return 0;
}
