// Header probing and decoding. The header parsers read only what they need to learn the
// format and the declared size, so a decompression bomb is refused before OpenCV allocates.
#include <cstring>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "absl/strings/str_cat.h"
#include "embed/face_pipeline.h"
#include "embed/internal/decode.h"

namespace homeward::embed {
namespace {

uint32_t Be16(const unsigned char* p) { return (uint32_t{p[0]} << 8) | p[1]; }
uint32_t Be32(const unsigned char* p) { return (Be16(p) << 16) | Be16(p + 2); }
uint32_t Le16(const unsigned char* p) { return p[0] | (uint32_t{p[1]} << 8); }
uint32_t Le24(const unsigned char* p) { return Le16(p) | (uint32_t{p[2]} << 16); }
uint32_t Le32(const unsigned char* p) { return Le16(p) | (Le16(p + 2) << 16); }

absl::Status Truncated(const char* format) {
  return absl::InvalidArgumentError(
      absl::StrCat("truncated or corrupt ", format, " header: the file is incomplete"));
}

absl::StatusOr<ImageInfo> ProbeJpeg(const unsigned char* p, size_t n) {
  size_t i = 2;
  while (i + 4 <= n) {
    if (p[i] != 0xFF) return absl::InvalidArgumentError("corrupt JPEG: bad marker sequence");
    unsigned char marker = p[i + 1];
    if (marker == 0xFF) {  // fill byte
      ++i;
      continue;
    }
    if (marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7) || marker == 0x01) {
      i += 2;
      continue;
    }
    if (marker == 0xD9 || marker == 0xDA) break;  // end of image / start of scan before SOF
    // libjpeg skips "FF 00" as garbage where this walk would read a length: the SOF it finds
    // could then differ from (and be larger than) the one checked here.
    if (marker == 0x00) return absl::InvalidArgumentError("corrupt JPEG: bad marker sequence");
    uint32_t len = Be16(p + i + 2);
    if (len < 2) return absl::InvalidArgumentError("corrupt JPEG: bad segment length");
    bool sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 &&
               marker != 0xCC;
    if (sof) {
      if (i + 9 > n) return Truncated("JPEG");
      ImageInfo info{"jpeg", Be16(p + i + 7), Be16(p + i + 5)};
      return info;
    }
    i += 2 + len;
  }
  return Truncated("JPEG");
}

absl::StatusOr<ImageInfo> ProbePng(const unsigned char* p, size_t n) {
  if (n < 24 || std::memcmp(p + 12, "IHDR", 4) != 0) return Truncated("PNG");
  return ImageInfo{"png", Be32(p + 16), Be32(p + 20)};
}

absl::StatusOr<ImageInfo> ProbeWebp(const unsigned char* p, size_t n) {
  if (n < 30) return Truncated("WebP");
  if (std::memcmp(p + 12, "VP8 ", 4) == 0) {
    return ImageInfo{"webp", Le16(p + 26) & 0x3FFF, Le16(p + 28) & 0x3FFF};
  }
  if (std::memcmp(p + 12, "VP8L", 4) == 0) {
    uint32_t b = Le32(p + 21);
    return ImageInfo{"webp", 1 + (b & 0x3FFF), 1 + ((b >> 14) & 0x3FFF)};
  }
  if (std::memcmp(p + 12, "VP8X", 4) == 0) {
    return ImageInfo{"webp", 1 + int64_t{Le24(p + 24)}, 1 + int64_t{Le24(p + 27)}};
  }
  return absl::InvalidArgumentError("corrupt WebP: unknown chunk after the RIFF header");
}

absl::StatusOr<ImageInfo> ProbeBmp(const unsigned char* p, size_t n) {
  if (n < 26) return Truncated("BMP");
  if (Le32(p + 14) == 12) {  // OS/2 BITMAPCOREHEADER: 16-bit width and height, as OpenCV reads
    return ImageInfo{"bmp", Le16(p + 18), Le16(p + 20)};
  }
  int32_t w = static_cast<int32_t>(Le32(p + 18));
  int32_t h = static_cast<int32_t>(Le32(p + 22));
  return ImageInfo{"bmp", w < 0 ? -int64_t{w} : w, h < 0 ? -int64_t{h} : h};
}

// A decoder given a truncated JPEG or PNG fills the missing rows with grey and succeeds;
// refuse such files instead, since a half photo gives wrong descriptors.
absl::Status CheckComplete(const ImageInfo& info, std::string_view bytes) {
  if (info.format == "jpeg") {
    // The main image's end-of-image marker follows its first start-of-scan; walk the
    // segments to find that scan (an EXIF thumbnail has its own markers inside APP1).
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    size_t i = 2, sos = std::string_view::npos;
    while (i + 4 <= bytes.size()) {
      if (p[i] != 0xFF) break;
      unsigned char marker = p[i + 1];
      if (marker == 0xFF || marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7)) {
        i += marker == 0xFF ? 1 : 2;
        continue;
      }
      if (marker == 0xDA) {
        sos = i;
        break;
      }
      i += 2 + Be16(p + i + 2);
    }
    size_t eoi = bytes.rfind("\xFF\xD9");
    if (sos == std::string_view::npos || eoi == std::string_view::npos || eoi < sos) {
      return absl::InvalidArgumentError(
          "truncated JPEG: the end-of-image marker is missing (was the upload cut short?)");
    }
  } else if (info.format == "png") {
    if (bytes.rfind("IEND") == std::string_view::npos) {
      return absl::InvalidArgumentError(
          "truncated PNG: the IEND chunk is missing (was the upload cut short?)");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ImageInfo> ProbeImage(std::string_view bytes, const DecodeLimits& limits) {
  if (bytes.empty()) return absl::InvalidArgumentError("empty image: the body has no bytes");
  if (static_cast<int64_t>(bytes.size()) > limits.max_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat("image is ", bytes.size(),
                                                     " bytes; the limit is ", limits.max_bytes));
  }
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  absl::StatusOr<ImageInfo> info;
  if (n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF) {
    info = ProbeJpeg(p, n);
  } else if (n >= 8 && std::memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0) {
    info = ProbePng(p, n);
  } else if (n >= 12 && std::memcmp(p, "RIFF", 4) == 0 && std::memcmp(p + 8, "WEBP", 4) == 0) {
    info = ProbeWebp(p, n);
  } else if (n >= 2 && p[0] == 'B' && p[1] == 'M') {
    info = ProbeBmp(p, n);
  } else {
    return absl::InvalidArgumentError(
        "unsupported image format: send a JPEG, PNG, WebP or BMP photo");
  }
  if (!info.ok()) return info;
  if (info->width <= 0 || info->height <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("image header declares an empty size (",
                                                   info->width, "x", info->height, ")"));
  }
  if (info->width > limits.max_pixels || info->height > limits.max_pixels ||
      info->width * info->height > limits.max_pixels) {  // sides first: no overflow
    return absl::ResourceExhaustedError(absl::StrCat(
        "image declares ", info->width, "x", info->height, " pixels; the limit is ",
        limits.max_pixels, " pixels (resize the photo)"));
  }
  return info;
}

namespace internal {

absl::StatusOr<cv::Mat> DecodeRgb(std::string_view bytes, const DecodeLimits& limits,
                                  ImageInfo* info_out) {
  absl::StatusOr<ImageInfo> info = ProbeImage(bytes, limits);
  if (!info.ok()) return info.status();
  if (absl::Status s = CheckComplete(*info, bytes); !s.ok()) return s;
  cv::Mat decoded;
  try {
    // IMREAD_COLOR converts grey/16-bit/alpha to 8-bit BGR and applies EXIF orientation.
    cv::Mat raw(1, static_cast<int>(bytes.size()), CV_8UC1,
                const_cast<char*>(bytes.data()));
    decoded = cv::imdecode(raw, cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("corrupt ", info->format, " image: ", e.what()));
  }
  if (decoded.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "corrupt or truncated ", info->format, " image: it could not be decoded"));
  }
  cv::Mat rgb;
  cv::cvtColor(decoded, rgb, cv::COLOR_BGR2RGB);
  if (info_out != nullptr) {
    *info_out = *info;
    info_out->width = rgb.cols;
    info_out->height = rgb.rows;
  }
  return rgb;
}

}  // namespace internal
}  // namespace homeward::embed
