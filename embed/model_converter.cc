#include "embed/model_converter.h"

#include <cstdio>
#include <cstring>
#include <algorithm>
#include <fstream>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "embed/internal/resnet.h"

namespace homeward::embed {
namespace {

constexpr int64_t kMaxElements = int64_t{1} << 28;

template <typename T>
struct IsCon : std::false_type {};
template <long N, long R, long C, int SY, int SX, int PY, int PX>
struct IsCon<dlib::con_<N, R, C, SY, SX, PY, PX>> : std::true_type {};

// A parameterised layer of the network: a convolution or the final fc (their
// parameter tensor), or an affine (scale) layer.
struct ParamLayer {
  char kind;  // 'c' con_, 'a' affine_, 'f' fc_no_bias
  dlib::tensor* params = nullptr;
  dlib::affine_* affine = nullptr;
};

}  // namespace

int64_t TfjsTensor::ElementCount() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int64_t TfjsTensor::ByteSize() const { return ElementCount() * (quantized ? 1 : 4); }

absl::StatusOr<std::vector<TfjsTensor>> ParseTfjsManifest(std::string_view manifest_json) {
  nlohmann::json doc = nlohmann::json::parse(manifest_json, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return absl::InvalidArgumentError("manifest is not valid JSON");
  if (!doc.is_array() || doc.empty()) {
    return absl::InvalidArgumentError("manifest must be a non-empty JSON array of weight groups");
  }
  std::vector<TfjsTensor> out;
  for (const auto& group : doc) {
    if (!group.is_object() || !group.contains("weights") || !group["weights"].is_array()) {
      return absl::InvalidArgumentError("manifest group without a 'weights' array");
    }
    for (const auto& w : group["weights"]) {
      if (!w.is_object() || !w.contains("name") || !w["name"].is_string() ||
          !w.contains("shape") || !w["shape"].is_array() || !w.contains("dtype") ||
          !w["dtype"].is_string()) {
        return absl::InvalidArgumentError("manifest weight entry needs name, shape and dtype");
      }
      TfjsTensor t;
      t.name = w["name"].get<std::string>();
      if (w["dtype"].get<std::string>() != "float32") {
        return absl::InvalidArgumentError(absl::StrCat("tensor '", t.name, "': dtype '",
                                                       w["dtype"].get<std::string>(),
                                                       "' is not supported (float32 only)"));
      }
      int64_t elements = 1;
      for (const auto& d : w["shape"]) {
        if (!d.is_number_integer() || d.get<int64_t>() <= 0 || d.get<int64_t>() > kMaxElements) {
          return absl::InvalidArgumentError(absl::StrCat("tensor '", t.name, "': bad shape"));
        }
        t.shape.push_back(d.get<int64_t>());
        elements *= t.shape.back();
        if (elements > kMaxElements) {
          return absl::InvalidArgumentError(absl::StrCat("tensor '", t.name, "': too large"));
        }
      }
      if (w.contains("quantization")) {
        const auto& q = w["quantization"];
        if (!q.is_object() || !q.contains("dtype") || !q["dtype"].is_string() ||
            q["dtype"].get<std::string>() != "uint8" || !q.contains("scale") ||
            !q["scale"].is_number() || !q.contains("min") || !q["min"].is_number()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "tensor '", t.name, "': only uint8 quantization with scale and min is supported"));
        }
        t.quantized = true;
        t.scale = q["scale"].get<double>();
        t.min = q["min"].get<double>();
      }
      out.push_back(std::move(t));
    }
  }
  return out;
}

absl::StatusOr<std::vector<std::vector<float>>> DecodeTfjsWeights(
    const std::vector<TfjsTensor>& tensors, std::string_view weights) {
  std::vector<std::vector<float>> out;
  size_t offset = 0;
  for (const TfjsTensor& t : tensors) {
    const auto bytes = static_cast<size_t>(t.ByteSize());
    if (weights.size() - offset < bytes) {
      return absl::InvalidArgumentError(absl::StrCat("weights file ends inside tensor '", t.name,
                                                     "' (", weights.size(), " bytes)"));
    }
    std::vector<float> values(static_cast<size_t>(t.ElementCount()));
    const char* p = weights.data() + offset;
    if (t.quantized) {
      for (size_t i = 0; i < values.size(); ++i) {
        values[i] = static_cast<float>(static_cast<uint8_t>(p[i]) * t.scale + t.min);
      }
    } else {
      std::memcpy(values.data(), p, bytes);  // little-endian float32, as on x86-64
    }
    offset += bytes;
    out.push_back(std::move(values));
  }
  if (offset != weights.size()) {
    return absl::InvalidArgumentError(absl::StrCat("weights file has ", weights.size() - offset,
                                                   " bytes left over after the last tensor"));
  }
  return out;
}

absl::Status ConvertFaceApiRecognitionModel(std::string_view manifest_json,
                                            std::string_view weights,
                                            const std::string& output_path) {
  HW_ASSIGN_OR_RETURN(std::vector<TfjsTensor> tensors, ParseTfjsManifest(manifest_json));
  HW_ASSIGN_OR_RETURN(std::vector<std::vector<float>> values, DecodeTfjsWeights(tensors, weights));

  internal::anet_type net;
  // affine_ layers default to FC mode; the network is convolutional.
  dlib::visit_computational_layers(net, [](auto& layer) {
    using L = std::decay_t<decltype(layer)>;
    if constexpr (std::is_same_v<L, dlib::affine_>) layer = dlib::affine_(dlib::CONV_MODE);
  });
  // One forward pass allocates every layer's parameters.
  dlib::matrix<dlib::rgb_pixel> dummy(internal::kChipSize, internal::kChipSize);
  dlib::assign_all_pixels(dummy, dlib::rgb_pixel(128, 128, 128));
  net(dummy);

  std::vector<ParamLayer> layers;  // output-to-input order
  dlib::visit_computational_layers(net, [&layers](auto& layer) {
    using L = std::decay_t<decltype(layer)>;
    if constexpr (std::is_same_v<L, dlib::affine_>) {
      layers.push_back({'a', nullptr, &layer});
    } else if constexpr (std::is_same_v<L, dlib::fc_<128, dlib::FC_NO_BIAS>>) {
      layers.push_back({'f', &layer.get_layer_params(), nullptr});
    } else if constexpr (IsCon<L>::value) {
      layers.push_back({'c', &layer.get_layer_params(), nullptr});
    }
  });
  std::reverse(layers.begin(), layers.end());  // manifest order: input to output

  size_t ti = 0;
  auto next = [&](const char* what) -> absl::StatusOr<size_t> {
    if (ti >= tensors.size()) {
      return absl::InvalidArgumentError(absl::StrCat("manifest ran out of tensors at ", what));
    }
    return ti++;
  };
  auto copy_into = [](const std::vector<float>& src, float* dst, size_t n, const TfjsTensor& t)
      -> absl::Status {
    if (src.size() != n) {
      return absl::InvalidArgumentError(absl::StrCat("tensor '", t.name, "' has ", src.size(),
                                                     " values, the layer needs ", n));
    }
    std::copy(src.begin(), src.end(), dst);
    return absl::OkStatus();
  };

  for (const ParamLayer& layer : layers) {
    if (layer.kind == 'c') {
      // con_ parameters: (out, in, h, w) filters, then the biases.
      dlib::tensor& params = *layer.params;
      HW_ASSIGN_OR_RETURN(size_t fi, next("a convolution's filters"));
      HW_ASSIGN_OR_RETURN(size_t bi, next("a convolution's bias"));
      const TfjsTensor& ft = tensors[fi];
      if (ft.shape.size() != 4) {
        return absl::InvalidArgumentError(absl::StrCat("tensor '", ft.name, "' is not HWIO"));
      }
      const int64_t kh = ft.shape[0], kw = ft.shape[1], cin = ft.shape[2], cout = ft.shape[3];
      const int64_t nfilter = kh * kw * cin * cout;
      if (static_cast<int64_t>(params.size()) != nfilter + cout) {
        return absl::InvalidArgumentError(absl::StrCat("tensor '", ft.name,
                                                       "' does not fit its convolution layer"));
      }
      float* dst = params.host();
      const std::vector<float>& src = values[fi];
      for (int64_t o = 0; o < cout; ++o)
        for (int64_t i = 0; i < cin; ++i)
          for (int64_t y = 0; y < kh; ++y)
            for (int64_t x = 0; x < kw; ++x)
              dst[((o * cin + i) * kh + y) * kw + x] = src[((y * kw + x) * cin + i) * cout + o];
      HW_RETURN_IF_ERROR(copy_into(values[bi], dst + nfilter, cout, tensors[bi]));
    } else if (layer.kind == 'a') {
      HW_ASSIGN_OR_RETURN(size_t gi, next("a scale layer's weights"));
      HW_ASSIGN_OR_RETURN(size_t bi, next("a scale layer's biases"));
      auto gamma = layer.affine->get_gamma();
      auto beta = layer.affine->get_beta();
      HW_RETURN_IF_ERROR(copy_into(values[gi], gamma.host(), gamma.size(), tensors[gi]));
      HW_RETURN_IF_ERROR(copy_into(values[bi], beta.host(), beta.size(), tensors[bi]));
    } else {
      HW_ASSIGN_OR_RETURN(size_t fi, next("the final fc"));
      HW_RETURN_IF_ERROR(
          copy_into(values[fi], layer.params->host(), layer.params->size(), tensors[fi]));
    }
  }
  if (ti != tensors.size()) {
    return absl::InvalidArgumentError(absl::StrCat("manifest has ", tensors.size() - ti,
                                                   " tensors more than the network"));
  }

  net.clean();  // drop the dummy pass's cached outputs: the file holds parameters only
  const std::string tmp = output_path + ".tmp";
  try {
    dlib::serialize(tmp) << net;
  } catch (const std::exception& e) {
    std::remove(tmp.c_str());
    return absl::InternalError(absl::StrCat("cannot write '", tmp, "': ", e.what()));
  }
  if (std::rename(tmp.c_str(), output_path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return absl::InternalError(absl::StrCat("cannot rename to '", output_path, "'"));
  }
  return absl::OkStatus();
}

}  // namespace homeward::embed
