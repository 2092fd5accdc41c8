// Writes the seed corpora of the fuzz targets, derived at run time from what the project
// already has (nothing is downloaded and no corpus is committed):
//
//   homeward-fuzz-seeds OUT_DIR   ->  OUT_DIR/<target>/<seed>
//
//   fuzz_image           the face-api demo photos scaled down, as JPEG (baseline, progressive,
//                        with an EXIF orientation), PNG (RGB, grey, 16-bit, RGBA), WebP, BMP
//                        (Windows and OS/2 headers), a truncated JPEG
//   fuzz_index_snapshot  snapshots written by FaceIndex::Save: Flat (with tombstones), HNSW,
//                        IVF, empty, 4-d and 128-d
//   fuzz_calibration     models/age_calibration_v1.json and two small variants
//   fuzz_manifest        face-api's weights manifest (MIT) and small hand-written ones
//   fuzz_service         one valid request per RPC, as [method byte][caller byte][message]
//
// Sources that are absent (the demo photos, the manifest: scripts/setup.sh models) are
// skipped with a note. Exit status 0 unless a directory cannot be written.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_util.h"
#include "homeward/v1/homeward.pb.h"
#include "index/face_index.h"

namespace {

namespace fs = std::filesystem;
namespace pb = ::homeward::v1;
using homeward::fuzz::ReadFile;

fs::path out_dir;
int written = 0;

void Put(const std::string& target, const std::string& name, const std::string& bytes) {
  fs::create_directories(out_dir / target);
  if (!homeward::fuzz::WriteFile((out_dir / target / name).string(), bytes)) {
    std::fprintf(stderr, "cannot write %s/%s\n", target.c_str(), name.c_str());
    std::exit(1);
  }
  ++written;
}

std::string Encode(const char* ext, const cv::Mat& img, const std::vector<int>& params = {}) {
  std::vector<uchar> buf;
  if (!cv::imencode(ext, img, buf, params)) return "";
  return std::string(buf.begin(), buf.end());
}

cv::Mat Scaled(const cv::Mat& img, int width) {
  cv::Mat out;
  cv::resize(img, out, cv::Size(width, img.rows * width / img.cols), 0, 0, cv::INTER_AREA);
  return out;
}

// Inserts an APP1 EXIF segment with Orientation = `orientation` after the JPEG's SOI.
std::string WithExifOrientation(const std::string& jpeg, uint16_t orientation) {
  std::string tiff("MM\0\x2a\0\0\0\x08", 8);          // big-endian TIFF, IFD at 8
  tiff += std::string("\0\x01", 2);                   // one entry
  tiff += std::string("\x01\x12\0\x03\0\0\0\x01", 8);  // Orientation, SHORT, count 1
  tiff += static_cast<char>(orientation >> 8);
  tiff += static_cast<char>(orientation & 0xFF);
  tiff += std::string("\0\0\0\0\0\0", 6);  // padding + next IFD = 0
  const std::string payload = std::string("Exif\0\0", 6) + tiff;
  const size_t len = payload.size() + 2;
  std::string seg = "\xFF\xE1";
  seg += static_cast<char>(len >> 8);
  seg += static_cast<char>(len & 0xFF);
  return jpeg.substr(0, 2) + seg + payload + jpeg.substr(2);
}

// A 4x3 24-bit BMP with the 12-byte OS/2 BITMAPCOREHEADER (16-bit width and height).
std::string Os2Bmp() {
  const int w = 4, h = 3, row = 12;  // 4 px * 3 bytes, already a multiple of 4
  std::string b;
  auto le16 = [&b](uint32_t v) { b += static_cast<char>(v & 0xFF); b += static_cast<char>(v >> 8); };
  auto le32 = [&](uint32_t v) { le16(v & 0xFFFF); le16(v >> 16); };
  b += "BM";
  le32(14 + 12 + row * h);
  le32(0);
  le32(14 + 12);
  le32(12);  // header size
  le16(w);
  le16(h);
  le16(1);   // planes
  le16(24);  // bits per pixel
  for (int i = 0; i < row * h; ++i) b += static_cast<char>(i * 37);
  return b;
}

void ImageSeeds() {
  const std::string demo = homeward::fuzz::DemoDir();
  std::vector<cv::Mat> photos;
  for (int i = 1; i <= 6; ++i) {
    std::string bytes;
    if (!ReadFile(demo + "/sample" + std::to_string(i) + ".jpg", &bytes)) continue;
    photos.push_back(cv::imdecode(
        cv::Mat(1, static_cast<int>(bytes.size()), CV_8UC1, bytes.data()), cv::IMREAD_COLOR));
  }
  const std::string t = "fuzz_image";
  for (size_t i = 0; i < photos.size(); ++i) {
    Put(t, absl::StrCat("sample", i + 1, "_320.jpg"),
        Encode(".jpg", Scaled(photos[i], 320), {cv::IMWRITE_JPEG_QUALITY, 80}));
  }
  if (!photos.empty()) {
    const cv::Mat small = Scaled(photos[1], 160);
    Put(t, "sample2_160.png", Encode(".png", small));
    Put(t, "sample2_160.webp", Encode(".webp", small, {cv::IMWRITE_WEBP_QUALITY, 80}));
    Put(t, "sample2_96.bmp", Encode(".bmp", Scaled(photos[1], 96)));
    Put(t, "sample2_160_progressive.jpg",
        Encode(".jpg", small, {cv::IMWRITE_JPEG_PROGRESSIVE, 1, cv::IMWRITE_JPEG_QUALITY, 70}));
    const std::string jpeg = Encode(".jpg", Scaled(photos[1], 200), {cv::IMWRITE_JPEG_QUALITY, 80});
    Put(t, "sample2_200_exif6.jpg", WithExifOrientation(jpeg, 6));
    Put(t, "sample2_200_exif3.jpg", WithExifOrientation(jpeg, 3));
    Put(t, "sample2_200_truncated.jpg", jpeg.substr(0, jpeg.size() / 2));
    cv::Mat grey, rgba, deep;
    cv::cvtColor(Scaled(photos[0], 120), grey, cv::COLOR_BGR2GRAY);
    Put(t, "sample1_120_grey.png", Encode(".png", grey));
    cv::cvtColor(Scaled(photos[2], 120), rgba, cv::COLOR_BGR2BGRA);
    Put(t, "sample3_120_rgba.png", Encode(".png", rgba));
    Scaled(photos[3], 64).convertTo(deep, CV_16UC3, 257);
    Put(t, "sample4_64_16bit.png", Encode(".png", deep));
  } else {
    std::fprintf(stderr, "note: no demo photos in %s: image seeds are synthetic only\n",
                 demo.c_str());
  }
  cv::Mat noise(48, 64, CV_8UC3);
  cv::randu(noise, 0, 255);
  Put(t, "noise_64.png", Encode(".png", noise));
  Put(t, "noise_64.jpg", Encode(".jpg", noise));
  Put(t, "os2_4x3.bmp", Os2Bmp());
}

void SnapshotSeeds() {
  namespace ix = homeward::index;
  const std::string tmp = homeward::fuzz::MakeTempDir("hw_fuzz_seeds");
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  struct Spec {
    const char* name;
    const char* factory;
    int dim, n, removed;
  };
  for (const Spec& s : {Spec{"flat_empty", "IDMap2,Flat", 4, 0, 0},
                        Spec{"flat_5", "IDMap2,Flat", 4, 5, 0},
                        Spec{"flat_8_tombstones", "IDMap2,Flat", 4, 8, 3},
                        Spec{"flat_128d_3", "IDMap2,Flat", 128, 3, 1},
                        Spec{"hnsw_12", "HNSW4", 4, 12, 2},
                        Spec{"ivf_flat_80", "IVF2,Flat", 4, 80, 2},
                        Spec{"ivf_sq8_80", "IVF2,SQ8", 4, 80, 0}}) {
    ix::IndexOptions o;
    o.factory = s.factory;
    o.dim = s.dim;
    o.auto_compact_fraction = 0;  // keep the tombstones in the snapshot
    auto index = ix::FaceIndex::Create(o);
    if (!index.ok()) {
      std::fprintf(stderr, "FaceIndex::Create(%s): %s\n", s.factory,
                   index.status().ToString().c_str());
      std::exit(1);
    }
    std::vector<float> v(static_cast<size_t>(s.n) * s.dim);
    for (float& x : v) x = normal(rng);
    std::vector<int64_t> ids;
    for (int i = 0; i < s.n; ++i) ids.push_back(100 + 3 * i);
    if (s.n > 0) {
      if (!(*index)->Train(v.data(), s.n).ok() || !(*index)->Add(ids, v.data()).ok()) {
        std::fprintf(stderr, "cannot fill %s\n", s.name);
        std::exit(1);
      }
    }
    if (s.removed > 0) {
      (void)(*index)->Remove(std::vector<int64_t>(ids.begin(), ids.begin() + s.removed));
    }
    const std::string path = tmp + "/" + s.name + ".snap";
    if (!(*index)->Save(path, 42).ok()) std::exit(1);
    std::string bytes;
    ReadFile(path, &bytes);
    Put("fuzz_index_snapshot", std::string(s.name) + ".snap", bytes);
  }
}

void CalibrationSeeds() {
  const std::string t = "fuzz_calibration";
  std::string shipped;
  if (ReadFile(homeward::fuzz::SourceDir() + "/models/age_calibration_v1.json", &shipped)) {
    Put(t, "age_calibration_v1.json", shipped);
  }
  const std::string caveats =
      R"("caveats": {"young_child": {"age_below_years": 5, "measured_on_children_under_years": 12,)"
      R"( "threshold": 0.6, "impostor_rate_below_threshold": 0.1},)"
      R"( "large_age_gap": {"gap_from_years": 6, "rank10_hit_rate": 0.5, "gap_band": "6-10"}})";
  Put(t, "minimal.json",
      R"({"format": "homeward.age_calibration", "version": 1, "gap_band_edges_years": [0],)"
      R"( "younger_age_band_edges_years": [0], "pooled": {"a": 10, "b": -20},)"
      R"( "cells": [[{"a": 11, "b": -21}]], )" + caveats + "}");
  Put(t, "two_by_two_strictest.json",
      R"({"format": "homeward.age_calibration", "version": 1, "created": "x",)"
      R"( "unknown_age": "strictest", "gap_band_edges_years": [0, 6],)"
      R"( "younger_age_band_edges_years": [0, 10], "pooled": {"a": 10, "b": -20},)"
      R"( "cells": [[{"a": 11, "b": -21}, {"a": 12, "b": -22}], [{"a": 9, "b": -15},)"
      R"( {"a": 8.5, "b": -14.25}]], )" + caveats + "}");
}

void ManifestSeeds() {
  const std::string t = "fuzz_manifest";
  std::string faceapi;
  const std::string path = homeward::fuzz::SourceDir() +
                           "/models/cache/face-api-1.7.15/model/"
                           "face_recognition_model-weights_manifest.json";
  if (ReadFile(path, &faceapi)) {
    Put(t, "faceapi_recognition_manifest.json", faceapi);
  } else {
    std::fprintf(stderr, "note: %s absent: manifest seeds are hand-written only\n", path.c_str());
  }
  Put(t, "two_tensors.json",
      R"([{"paths": ["w.bin"], "weights": [{"name": "conv/filters", "shape": [3, 3, 3, 2],)"
      R"( "dtype": "float32"}, {"name": "conv/bias", "shape": [2], "dtype": "float32"}]}])");
  Put(t, "quantized.json",
      R"([{"paths": ["a.bin"], "weights": [{"name": "fc", "shape": [4, 8], "dtype": "float32",)"
      R"( "quantization": {"dtype": "uint8", "scale": 0.0039, "min": -0.5}}]},)"
      R"( {"paths": ["b.bin"], "weights": [{"name": "s", "shape": [], "dtype": "float32"}]}])");
}

enum Caller : char { kNoKey, kBogusKey, kMalformed, kVolunteer, kFamily, kInvestigator, kAdmin };

void Request(const std::string& name, int method, Caller caller,
             const google::protobuf::Message& m) {
  std::string bytes;
  bytes += static_cast<char>(method);
  bytes += static_cast<char>(caller);
  bytes += m.SerializeAsString();
  Put("fuzz_service", name, bytes);
}

void ServiceSeeds() {
  std::string photo, other;
  {
    std::string bytes;
    const std::string demo = homeward::fuzz::DemoDir();
    if (ReadFile(demo + "/sample2.jpg", &bytes)) {
      cv::Mat img = cv::imdecode(
          cv::Mat(1, static_cast<int>(bytes.size()), CV_8UC1, bytes.data()), cv::IMREAD_COLOR);
      photo = Encode(".jpg", Scaled(img, 240), {cv::IMWRITE_JPEG_QUALITY, 75});
    }
    if (ReadFile(demo + "/sample5.jpg", &bytes)) {
      cv::Mat img = cv::imdecode(
          cv::Mat(1, static_cast<int>(bytes.size()), CV_8UC1, bytes.data()), cv::IMREAD_COLOR);
      other = Encode(".jpg", Scaled(img, 240), {cv::IMWRITE_JPEG_QUALITY, 75});
    }
  }
  pb::CreateCaseRequest create;
  pb::Case* c = create.mutable_case_();
  c->set_kind(pb::MISSING);
  c->set_display_name("Ana");
  c->set_sex(pb::FEMALE);
  c->set_birth_year_min(2010);
  c->set_birth_year_max(2012);
  c->set_event_date("2022-02-03");
  c->set_place("Porto");
  c->set_notes("red coat");
  c->set_reporter_contact("+351 000");
  Request("create_case_family", 0, kFamily, create);
  c->set_kind(pb::FOUND);
  Request("create_case_investigator", 0, kInvestigator, create);
  pb::GetCaseRequest get;
  get.set_id("1");
  Request("get_case_admin", 1, kAdmin, get);
  Request("get_case_volunteer", 1, kVolunteer, get);
  Request("get_case_nokey", 1, kNoKey, get);
  pb::UpdateCaseRequest update;
  update.mutable_case_()->set_id("2");
  update.mutable_case_()->set_kind(pb::FOUND);
  update.mutable_case_()->set_display_name("Found Child");
  update.mutable_case_()->set_place("Lyon centre");
  update.mutable_case_()->set_status(pb::OPEN);
  Request("update_case_investigator", 2, kInvestigator, update);
  pb::ListCasesRequest list;
  list.set_kind(pb::MISSING);
  list.set_place_contains("ly");
  list.set_page_size(2);
  Request("list_cases_family", 3, kFamily, list);
  list.set_page_token("2");
  Request("list_cases_admin_page", 3, kAdmin, list);
  pb::DeleteCaseRequest del;
  del.set_id("99");
  Request("delete_case_admin", 4, kAdmin, del);
  pb::GetPhotoRequest get_photo;
  get_photo.set_photo_id("1");
  Request("get_photo_admin", 6, kAdmin, get_photo);
  pb::GetFaceCropRequest crop;
  crop.set_face_id("1");
  crop.set_size(48);
  Request("get_face_crop_investigator", 7, kInvestigator, crop);
  pb::SearchRequest search;
  search.set_face_id("1");
  search.add_kinds(pb::FOUND);
  search.add_kinds(pb::SIGHTING);
  search.set_top_k(3);
  search.mutable_filter()->set_sex(pb::FEMALE);
  search.mutable_filter()->set_age_min_years(5);
  search.mutable_filter()->set_age_max_years(12);
  search.mutable_filter()->set_date_from("2000-01-01");
  search.mutable_filter()->set_place_contains("Lyon");
  search.mutable_query_age()->set_min_years(7);
  search.mutable_query_age()->set_max_years(8);
  search.mutable_query_age()->set_known(true);
  Request("search_face_admin", 9, kAdmin, search);
  search.clear_kinds();
  Request("search_face_family", 9, kFamily, search);
  pb::GetStatsRequest stats;
  Request("get_stats_admin", 11, kAdmin, stats);
  pb::ListLeadsRequest leads;
  leads.set_min_confidence(0.1f);
  leads.set_page_size(5);
  Request("list_leads_investigator", 12, kInvestigator, leads);
  pb::GetLeadRequest lead;
  lead.set_id("1");
  Request("get_lead_investigator", 13, kInvestigator, lead);
  pb::ReviewLeadRequest review;
  review.set_id("1");
  review.set_decision(pb::LEAD_NEEDS_BETTER_PHOTO);
  review.set_note("closer photo please");
  Request("review_lead_investigator", 14, kInvestigator, review);
  pb::CompareRequest compare;
  compare.mutable_a()->set_face_id("1");
  compare.mutable_a()->mutable_age()->set_min_years(8);
  compare.mutable_a()->mutable_age()->set_max_years(8);
  compare.mutable_a()->mutable_age()->set_known(true);
  compare.mutable_b()->set_face_id("2");
  Request("compare_faces_investigator", 10, kInvestigator, compare);
  if (photo.empty()) {
    std::fprintf(stderr, "note: no demo photos: service seeds without images\n");
    return;
  }
  pb::AddPhotoRequest add;
  add.set_case_id("1");
  add.set_image(other);
  add.set_taken_on("2018-07-08");
  add.mutable_age()->set_min_years(6);
  add.mutable_age()->set_max_years(7);
  add.mutable_age()->set_known(true);
  add.set_source("family");
  Request("add_photo_admin", 5, kAdmin, add);
  add.set_has_face_index(true);
  add.set_face_index(0);
  add.mutable_face_box()->set_x(60);
  add.mutable_face_box()->set_y(30);
  add.mutable_face_box()->set_width(80);
  add.mutable_face_box()->set_height(80);
  Request("add_photo_box_investigator", 5, kInvestigator, add);
  pb::SubmitSightingRequest sighting;
  sighting.set_image(photo);
  sighting.set_seen_on("2023-04-05");
  sighting.set_place("Lyon");
  sighting.mutable_estimated_age()->set_min_years(9);
  sighting.mutable_estimated_age()->set_max_years(11);
  sighting.mutable_estimated_age()->set_estimated(true);
  sighting.mutable_estimated_age()->set_known(true);
  sighting.set_top_k(2);
  Request("submit_sighting_volunteer", 8, kVolunteer, sighting);
  pb::SearchRequest by_image;
  by_image.set_image(photo);
  by_image.set_top_k(5);
  by_image.set_min_score(0.2f);
  Request("search_image_volunteer", 9, kVolunteer, by_image);
  pb::CompareRequest cmp_image;
  cmp_image.mutable_a()->set_image(photo);
  cmp_image.mutable_b()->set_face_id("1");
  Request("compare_image_investigator", 10, kInvestigator, cmp_image);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  out_dir = argv[1];
  ImageSeeds();
  SnapshotSeeds();
  CalibrationSeeds();
  ManifestSeeds();
  ServiceSeeds();
  std::printf("wrote %d seeds under %s\n", written, out_dir.c_str());
  return 0;
}
