// Bad input never crashes and always gets a specific error; odd but valid input works.
#include <random>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "embed/face_pipeline.h"
#include "tests/embed_test_util.h"

namespace homeward::embed {
namespace {

using ::homeward::testing::DemoDir;
using ::homeward::testing::EncodeJpeg;
using ::homeward::testing::EncodePng;
using ::homeward::testing::ReadFileOrDie;
using ::homeward::testing::SharedPipeline;

absl::StatusCode CodeOf(std::string_view bytes) {
  return SharedPipeline().Process(bytes).status().code();
}

uint32_t Crc32(const unsigned char* p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}

// A PNG whose IHDR declares width x height; the rest is one tiny IDAT and IEND.
std::string PngHeader(uint32_t width, uint32_t height) {
  std::string png = "\x89PNG\r\n\x1a\n";
  auto be32 = [](uint32_t v) {
    return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                       static_cast<char>(v >> 8), static_cast<char>(v)};
  };
  std::string ihdr = "IHDR" + be32(width) + be32(height) + std::string("\x08\x02\x00\x00\x00", 5);
  png += be32(13) + ihdr +
         be32(Crc32(reinterpret_cast<const unsigned char*>(ihdr.data()), ihdr.size()));
  png += be32(0) + "IDAT" + be32(Crc32(reinterpret_cast<const unsigned char*>("IDAT"), 4));
  png += be32(0) + "IEND" + be32(Crc32(reinterpret_cast<const unsigned char*>("IEND"), 4));
  return png;
}

TEST(ImageDecode, EmptyBytesAreInvalidArgument) {
  auto r = SharedPipeline().Process("");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("empty"), std::string_view::npos);
}

TEST(ImageDecode, RandomBytesAreInvalidArgument) {
  std::mt19937 rng(7);
  for (int i = 0; i < 50; ++i) {
    std::string junk(1 + rng() % 5000, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    EXPECT_EQ(CodeOf(junk), absl::StatusCode::kInvalidArgument);
  }
}

TEST(ImageDecode, TruncatedJpegIsInvalidArgument) {
  const std::string jpeg = ReadFileOrDie(DemoDir() + "/sample1.jpg");
  for (double keep : {0.02, 0.3, 0.9, 0.999}) {
    auto r = SharedPipeline().Process(std::string_view(jpeg).substr(0, jpeg.size() * keep));
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << keep;
    EXPECT_NE(r.status().message().find("truncated"), std::string_view::npos)
        << r.status().message();
  }
}

TEST(ImageDecode, TruncatedPngIsInvalidArgument) {
  cv::Mat img(64, 64, CV_8UC3, cv::Scalar(10, 200, 30));
  std::string png = EncodePng(img);
  EXPECT_EQ(CodeOf(png.substr(0, png.size() / 2)), absl::StatusCode::kInvalidArgument);
}

TEST(ImageDecode, PngBombIsRefusedFromItsHeader) {
  auto r = SharedPipeline().Process(PngHeader(30000, 30000));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("30000x30000"), std::string_view::npos);
  auto probe = ProbeImage(PngHeader(30000, 30000), DecodeLimits{});
  EXPECT_EQ(probe.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(ImageDecode, ZeroSizeHeaderIsInvalidArgument) {
  EXPECT_EQ(CodeOf(PngHeader(0, 10)), absl::StatusCode::kInvalidArgument);
}

TEST(ImageDecode, OversizeBodyIsResourceExhausted) {
  DecodeLimits limits;
  limits.max_bytes = 1000;
  cv::Mat img(100, 100, CV_8UC3);
  cv::randu(img, 0, 255);
  EXPECT_EQ(ProbeImage(EncodePng(img), limits).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(ImageDecode, UnsupportedFormatSaysWhatToSend) {
  auto r = SharedPipeline().Process("GIF89a\x01\x00\x01\x00");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("JPEG, PNG, WebP or BMP"), std::string_view::npos);
}

TEST(ImageDecode, OnePixelImageHasZeroFaces) {
  cv::Mat img(1, 1, CV_8UC3, cv::Scalar(1, 2, 3));
  auto r = SharedPipeline().Process(EncodePng(img));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->faces.empty());
  EXPECT_FALSE(r->no_face_reason.empty());
}

TEST(ImageDecode, PhotoWithoutFaceIsZeroFacesWithReason) {
  cv::Mat img(480, 640, CV_8UC3);
  cv::randu(img, 0, 255);
  cv::GaussianBlur(img, img, cv::Size(31, 31), 0);
  auto r = SharedPipeline().Process(EncodeJpeg(img));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->faces.size(), 0u);
  EXPECT_NE(r->no_face_reason.find("no face"), std::string::npos);
}

TEST(ImageDecode, GreySixteenBitAlphaWebpAndBmpAllWork) {
  cv::Mat bgr = ::homeward::testing::DecodeBgr(ReadFileOrDie(DemoDir() + "/sample2.jpg"));
  auto base = SharedPipeline().Process(EncodePng(bgr));
  ASSERT_TRUE(base.ok());
  ASSERT_EQ(base->faces.size(), 1u);

  cv::Mat grey, bgr16, bgra;
  cv::cvtColor(bgr, grey, cv::COLOR_BGR2GRAY);
  bgr.convertTo(bgr16, CV_16UC3, 257.0);
  cv::cvtColor(bgr, bgra, cv::COLOR_BGR2BGRA);
  std::vector<uchar> webp, bmp;
  cv::imencode(".webp", bgr, webp, {cv::IMWRITE_WEBP_QUALITY, 95});
  cv::imencode(".bmp", bgr, bmp);
  const std::vector<std::pair<std::string, std::string>> variants = {
      {"grey png", EncodePng(grey)},
      {"16-bit png", EncodePng(bgr16)},
      {"alpha png", EncodePng(bgra)},
      {"webp", std::string(webp.begin(), webp.end())},
      {"bmp", std::string(bmp.begin(), bmp.end())}};
  for (const auto& [name, bytes] : variants) {
    auto r = SharedPipeline().Process(bytes);
    ASSERT_TRUE(r.ok()) << name << ": " << r.status();
    ASSERT_EQ(r->faces.size(), 1u) << name;
    EXPECT_EQ(r->width, bgr.cols) << name;
    EXPECT_LT(DescriptorDistance(r->faces[0].descriptor, base->faces[0].descriptor), 0.25) << name;
  }
}

}  // namespace
}  // namespace homeward::embed
