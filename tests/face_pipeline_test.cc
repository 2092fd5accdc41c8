// The pipeline on real photos: face-api's demo photos (fetched at set-up) and, when present,
// ../shared/data.
#include "embed/face_pipeline.h"

#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "tests/embed_test_util.h"

namespace homeward::embed {
namespace {

using ::homeward::testing::DecodeBgr;
using ::homeward::testing::DemoDir;
using ::homeward::testing::EncodeJpeg;
using ::homeward::testing::ReadFileOrDie;
using ::homeward::testing::SharedPipeline;

PhotoFaces ProcessOk(const std::string& bytes) {
  auto r = SharedPipeline().Process(bytes);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : PhotoFaces{};
}

// The face of `faces` whose box centre, mapped through `map`, lands nearest `target`'s centre.
const Face* Nearest(const PhotoFaces& faces, cv::Point2f target,
                    const std::function<cv::Point2f(cv::Point2f)>& map) {
  const Face* best = nullptr;
  double best_d = 1e18;
  for (const Face& f : faces.faces) {
    cv::Point2f c = map({f.box.x + f.box.width / 2.0f, f.box.y + f.box.height / 2.0f});
    double d = cv::norm(c - target);
    if (d < best_d) best_d = d, best = &f;
  }
  return best_d < 60 ? best : nullptr;
}

cv::Point2f Centre(const Face& f) { return {f.box.x + f.box.width / 2.0f, f.box.y + f.box.height / 2.0f}; }

TEST(FacePipeline, DemoPhotosHaveFacesWithLandmarksAndQuality) {
  int total = 0;
  for (int i = 1; i <= 6; ++i) {
    PhotoFaces r = ProcessOk(ReadFileOrDie(DemoDir() + "/sample" + std::to_string(i) + ".jpg"));
    EXPECT_GE(r.faces.size(), 1u) << "sample" << i;
    for (const Face& f : r.faces) {
      EXPECT_EQ(f.landmarks.size(), 68u);
      EXPECT_GT(f.quality.face_width_px, 40);
      EXPECT_GT(f.quality.sharpness, 0);
      double norm = 0;
      for (float v : f.descriptor) norm += v * v;
      EXPECT_GT(norm, 0.3);
      EXPECT_EQ(f.quality.usable, f.quality.reason.empty());
    }
    total += static_cast<int>(r.faces.size());
  }
  EXPECT_GE(total, 15);
}

TEST(FacePipeline, DifferentPeopleInDemoPhotosAreFarApart) {
  // Each demo photo shows different people side by side. Two pairs are known false matches
  // at dlib's 0.6 threshold (with mirror averaging): the two women on the right of sample3
  // (faces 1 and 2, ~0.545) and two women of sample5 (faces 1 and 4, ~0.595). They are
  // pinned so a change in either direction is noticed. The threshold is not a verdict,
  // which is why every result carries the DNA caveat.
  struct KnownPair {
    int photo;
    size_t a, b;
    double distance;
  };
  const KnownPair kLookAlikes[] = {{3, 1, 2, 0.545}, {5, 1, 4, 0.595}};
  int pairs = 0;
  for (int i = 1; i <= 6; ++i) {
    PhotoFaces r = ProcessOk(ReadFileOrDie(DemoDir() + "/sample" + std::to_string(i) + ".jpg"));
    for (size_t a = 0; a < r.faces.size(); ++a)
      for (size_t b = a + 1; b < r.faces.size(); ++b, ++pairs) {
        const double d = DescriptorDistance(r.faces[a].descriptor, r.faces[b].descriptor);
        const KnownPair* known = nullptr;
        for (const KnownPair& k : kLookAlikes)
          if (k.photo == i && k.a == a && k.b == b) known = &k;
        if (known != nullptr) {
          EXPECT_NEAR(d, known->distance, 0.03) << "known look-alike pair moved: sample" << i;
        } else {
          EXPECT_GT(d, 0.6) << "sample" << i << " faces " << a << "," << b;
        }
      }
  }
  EXPECT_GE(pairs, 15);
}

TEST(FacePipeline, SameFaceSurvivesRescaleRecompressionRotationAndMirror) {
  const cv::Mat bgr = DecodeBgr(ReadFileOrDie(DemoDir() + "/sample1.jpg"));
  PhotoFaces base = ProcessOk(EncodeJpeg(bgr, 95));
  ASSERT_GE(base.faces.size(), 3u);
  const cv::Point2f mid(bgr.cols / 2.0f, bgr.rows / 2.0f);
  const cv::Mat rot = cv::getRotationMatrix2D(mid, 8.0, 1.0);
  cv::Mat inv;
  cv::invertAffineTransform(rot, inv);

  struct Variant {
    std::string name;
    cv::Mat image;
    std::function<cv::Point2f(cv::Point2f)> to_base;  // variant coords -> base coords
  };
  std::vector<Variant> variants;
  cv::Mat small, mirrored, rotated;
  cv::resize(bgr, small, cv::Size(), 0.5, 0.5, cv::INTER_AREA);
  variants.push_back({"rescale 0.5", small, [](cv::Point2f p) { return p * 2; }});
  variants.push_back({"jpeg q40", DecodeBgr(EncodeJpeg(bgr, 40)), [](cv::Point2f p) { return p; }});
  cv::flip(bgr, mirrored, 1);
  variants.push_back({"mirror", mirrored, [&](cv::Point2f p) {
                        return cv::Point2f(bgr.cols - 1 - p.x, p.y);
                      }});
  cv::warpAffine(bgr, rotated, rot, bgr.size(), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
  variants.push_back({"rotate 8deg", rotated, [&](cv::Point2f p) {
                        return cv::Point2f(inv.at<double>(0, 0) * p.x + inv.at<double>(0, 1) * p.y +
                                               inv.at<double>(0, 2),
                                           inv.at<double>(1, 0) * p.x + inv.at<double>(1, 1) * p.y +
                                               inv.at<double>(1, 2));
                      }});
  for (const Variant& v : variants) {
    PhotoFaces got = ProcessOk(EncodeJpeg(v.image, 95));
    int matched = 0;
    for (const Face& f : base.faces) {
      const Face* g = Nearest(got, Centre(f), v.to_base);
      if (g == nullptr) continue;
      ++matched;
      EXPECT_LT(DescriptorDistance(f.descriptor, g->descriptor), 0.4) << v.name;
    }
    EXPECT_EQ(matched, static_cast<int>(base.faces.size())) << v.name;
  }
}

// JPEG APP1 segment holding only an EXIF orientation tag.
std::string WithExifOrientation(const std::string& jpeg, uint16_t orientation) {
  std::string tiff = std::string("II*\0", 4) + std::string("\x08\0\0\0", 4);  // header, IFD at 8
  tiff += std::string("\x01\0", 2);                                          // one entry
  tiff += std::string("\x12\x01\x03\0\x01\0\0\0", 8);  // tag 0x0112, SHORT, count 1
  tiff += std::string{static_cast<char>(orientation), 0, 0, 0};
  tiff += std::string("\0\0\0\0", 4);  // no next IFD
  std::string app1 = std::string("Exif\0\0", 6) + tiff;
  const size_t len = app1.size() + 2;
  std::string seg = std::string("\xFF\xE1", 2) + static_cast<char>(len >> 8) +
                    static_cast<char>(len & 0xFF) + app1;
  return jpeg.substr(0, 2) + seg + jpeg.substr(2);
}

TEST(FacePipeline, ExifRotatedJpegGivesTheSameFacesAsUpright) {
  const cv::Mat upright = DecodeBgr(ReadFileOrDie(DemoDir() + "/sample6.jpg"));
  PhotoFaces base = ProcessOk(EncodeJpeg(upright, 95));
  // Stored sideways (rotated 90 degrees counter-clockwise) with orientation 6, a phone's
  // "rotate 90 clockwise to display".
  cv::Mat stored;
  cv::rotate(upright, stored, cv::ROTATE_90_COUNTERCLOCKWISE);
  PhotoFaces got = ProcessOk(WithExifOrientation(EncodeJpeg(stored, 95), 6));
  EXPECT_EQ(got.width, upright.cols);
  EXPECT_EQ(got.height, upright.rows);
  ASSERT_EQ(got.faces.size(), base.faces.size());
  for (const Face& f : base.faces) {
    const Face* g = Nearest(got, Centre(f), [](cv::Point2f p) { return p; });
    ASSERT_NE(g, nullptr);
    EXPECT_LT(DescriptorDistance(f.descriptor, g->descriptor), 0.1);
  }
}

TEST(FacePipeline, SmallFacesAreFoundByUpsampling) {
  // sample1 shrunk so its faces are ~50 px wide: the 80 px HOG window needs the upsample.
  const cv::Mat bgr = DecodeBgr(ReadFileOrDie(DemoDir() + "/sample1.jpg"));
  cv::Mat small;
  const double f = 50.0 / 203.0;
  cv::resize(bgr, small, cv::Size(), f, f, cv::INTER_AREA);
  PhotoFaces r = ProcessOk(EncodeJpeg(small, 95));
  EXPECT_GE(r.detect_scale, 1.9);
  EXPECT_GE(r.faces.size(), 2u);
}

TEST(FacePipeline, ProcessManyMatchesProcessAndRunsConcurrently) {
  std::vector<std::string> photos;
  for (int i = 1; i <= 6; ++i) photos.push_back(ReadFileOrDie(DemoDir() + "/sample" + std::to_string(i) + ".jpg"));
  photos.push_back("garbage");
  std::vector<std::string_view> views(photos.begin(), photos.end());
  auto many = SharedPipeline().ProcessMany(views);
  ASSERT_EQ(many.size(), photos.size());
  for (size_t i = 0; i + 1 < photos.size(); ++i) {
    ASSERT_TRUE(many[i].ok());
    PhotoFaces one = ProcessOk(photos[i]);
    ASSERT_EQ(one.faces.size(), many[i]->faces.size());
    for (size_t k = 0; k < one.faces.size(); ++k)
      EXPECT_EQ(one.faces[k].descriptor, many[i]->faces[k].descriptor);
  }
  EXPECT_EQ(many.back().status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(FacePipeline, MissingModelIsNotFound) {
  PipelineOptions o;
  o.recognition_model_path = "/nonexistent/model.dat";
  EXPECT_EQ(FacePipeline::Create(o).status().code(), absl::StatusCode::kNotFound);
}

TEST(FacePipeline, CorruptModelIsInvalidArgument) {
  const std::string path = (std::filesystem::temp_directory_path() / "hw_bad_model.dat").string();
  { std::ofstream(path) << "this is not a dlib network"; }
  PipelineOptions o;
  o.recognition_model_path = path;
  EXPECT_EQ(FacePipeline::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
  std::filesystem::remove(path);
}

TEST(FacePipeline, SamePersonPairFromSharedData) {
  const std::string dir = ::homeward::testing::SharedDataDir() + "/faces-small/MAX-Facial-Recognizer";
  if (!std::filesystem::exists(dir + "/Paul.jpeg")) GTEST_SKIP() << "../shared/data absent";
  PhotoFaces a = ProcessOk(ReadFileOrDie(dir + "/Paul.jpeg"));
  PhotoFaces b = ProcessOk(ReadFileOrDie(dir + "/Paul2.jpeg"));
  PhotoFaces c = ProcessOk(ReadFileOrDie(dir + "/Chris.jpeg"));
  ASSERT_EQ(a.faces.size(), 1u);
  ASSERT_EQ(b.faces.size(), 1u);
  ASSERT_EQ(c.faces.size(), 1u);
  EXPECT_LT(DescriptorDistance(a.faces[0].descriptor, b.faces[0].descriptor), 0.6);
  EXPECT_GT(DescriptorDistance(a.faces[0].descriptor, c.faces[0].descriptor), 0.6);
}

}  // namespace
}  // namespace homeward::embed
