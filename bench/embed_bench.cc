// embed_bench: accuracy and speed of the face pipeline, each next to raw dlib doing the
// same work in the same run.
//
//   embed_bench lfw    [--data DIR]              LFW development-view accuracy, with and without mirror
//   embed_bench speed  [--demo DIR]              descriptors/s, detection ms, photos/s vs raw dlib
//   embed_bench detect [--data DIR] [--demo DIR] faces found with and without the small-face policy
//   embed_bench detectors [--demo DIR] [--reps N] [--throughput-photos N] [--throughput-reps N]
//                      [--stage-cv-threads N] [--sections latency,stages,throughput]
//                      1920x1080 photos with 3 faces, bytes to descriptors: HOG policy vs CNN
//                      (FaceBoxes), the stages of each, raw dlib / OpenCV DNN doing the same
//                      work, the age estimate per face, and ProcessMany photos/s by workers and
//                      OpenCV thread count (docs/BENCHMARKS.md, "Face detectors")
//
// Models: $HOMEWARD_RECOGNITION_MODEL (default models/faceapi_1.7.15_resnet.dat); detectors
// also reads models/faceboxes_3.0.4.onnx and models/faceres-deep_3.0.4.onnx.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <functional>
#include <thread>

#include <sys/resource.h>

#include <dlib/image_processing.h>
#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/opencv/cv_image.h>
#include <opencv2/core/utility.hpp>
#include <opencv2/dnn.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "absl/strings/str_format.h"
#include "embed/age_estimator.h"
#include "embed/cnn_face_detector.h"
#include "embed/face_pipeline.h"
#include "embed/internal/decode.h"
#include "embed/internal/resnet.h"

extern "C" void openblas_set_num_threads(int num_threads);

namespace {

namespace fs = std::filesystem;
using homeward::embed::Descriptor;
using homeward::embed::FacePipeline;
using homeward::embed::PhotoFaces;
using homeward::embed::PipelineOptions;
using Clock = std::chrono::steady_clock;

std::string Flag(int argc, char** argv, const std::string& name, const std::string& def) {
  for (int i = 2; i + 1 < argc; ++i)
    if (argv[i] == name) return argv[i + 1];
  return def;
}
bool HasFlag(int argc, char** argv, const std::string& name) {
  for (int i = 2; i < argc; ++i)
    if (argv[i] == name) return true;
  return false;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string ModelPath() {
  if (const char* env = std::getenv("HOMEWARD_RECOGNITION_MODEL")) return env;
  return std::string(HOMEWARD_SOURCE_DIR) + "/models/faceapi_1.7.15_resnet.dat";
}

std::unique_ptr<FacePipeline> MakePipeline(PipelineOptions o) {
  o.recognition_model_path = ModelPath();
  auto p = FacePipeline::Create(o);
  if (!p.ok()) {
    std::fprintf(stderr, "%s\n", std::string(p.status().message()).c_str());
    std::exit(1);
  }
  return std::move(*p);
}

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// ---------------------------------------------------------------------------------- lfw
struct Pair {
  std::string a, b;
  bool same;
};

std::vector<Pair> ReadPairs(const std::string& path) {
  std::ifstream in(path);
  int n = 0;
  in >> n;
  std::vector<Pair> pairs;
  auto name = [](const std::string& person, int i) {
    return absl::StrFormat("%s/%s_%04d.jpg", person, person, i);
  };
  for (int k = 0; k < 2 * n; ++k) {
    std::string p1;
    int i1, i2;
    in >> p1 >> i1;
    if (k < n) {
      in >> i2;
      pairs.push_back({name(p1, i1), name(p1, i2), true});
    } else {
      std::string p2;
      in >> p2 >> i2;
      pairs.push_back({name(p1, i1), name(p2, i2), false});
    }
  }
  return pairs;
}

int Lfw(int argc, char** argv) {
  const std::string data = Flag(argc, argv, "--data", std::string(HOMEWARD_SOURCE_DIR) + "/../shared/data") + "/lfw-view1";
  std::vector<Pair> train = ReadPairs(data + "/pairsDevTrain.txt");
  std::vector<Pair> test = ReadPairs(data + "/pairsDevTest.txt");
  if (train.empty() || test.empty()) {
    std::fprintf(stderr, "no LFW pairs under %s\n", data.c_str());
    return 1;
  }
  std::vector<std::string> images;
  for (const auto* set : {&train, &test})
    for (const Pair& p : *set) images.push_back(p.a), images.push_back(p.b);
  std::sort(images.begin(), images.end());
  images.erase(std::unique(images.begin(), images.end()), images.end());

  std::printf("LFW development view: %zu train pairs, %zu test pairs, %zu images\n\n", train.size(),
              test.size(), images.size());
  std::printf("| augmentation | face choice | no face (fallback box) | threshold (DevTrain) | DevTrain acc | DevTest acc |\n");
  std::printf("|---|---|---|---|---|---|\n");
  for (bool mirror : {false, true}) {
    PipelineOptions o;
    o.mirror_augment = mirror;
    auto pipeline = MakePipeline(o);  // mirror: the default
    // Per image: descriptor of the detected face nearest the centre, and of the largest one.
    std::map<std::string, std::pair<Descriptor, Descriptor>> desc;
    int no_face = 0;
    auto t0 = Clock::now();
    const size_t chunk = 64;
    for (size_t s = 0; s < images.size(); s += chunk) {
      std::vector<std::string> bytes;
      for (size_t i = s; i < std::min(images.size(), s + chunk); ++i)
        bytes.push_back(ReadFile(data + "/" + images[i]));
      std::vector<std::string_view> views(bytes.begin(), bytes.end());
      auto results = pipeline->ProcessMany(views);
      for (size_t i = 0; i < results.size(); ++i) {
        absl::StatusOr<PhotoFaces> r = results[i];
        if (r.ok() && r->faces.empty()) {
          // Evaluation rule: LFW's deep-funneled crops centre the face; describe the central box.
          ++no_face;
          r = pipeline->ProcessBox(views[i], {70, 70, 110, 110});
        }
        if (!r.ok() || r->faces.empty()) {
          std::fprintf(stderr, "%s: %s\n", images[s + i].c_str(),
                       std::string(r.status().message()).c_str());
          return 1;
        }
        const double cx = r->width / 2.0, cy = r->height / 2.0;
        size_t centre = 0, largest = 0;
        double best_d = 1e18;
        for (size_t k = 0; k < r->faces.size(); ++k) {
          const auto& b = r->faces[k].box;
          double d = std::hypot(b.x + b.width / 2.0 - cx, b.y + b.height / 2.0 - cy);
          if (d < best_d) best_d = d, centre = k;
          if (b.width > r->faces[largest].box.width) largest = k;
        }
        desc[images[s + i]] = {r->faces[centre].descriptor, r->faces[largest].descriptor};
      }
    }
    const double secs = Seconds(t0, Clock::now());
    for (int choice = 0; choice < 2; ++choice) {
      auto dist = [&](const Pair& p) {
        const auto& a = desc[p.a];
        const auto& b = desc[p.b];
        return homeward::embed::DescriptorDistance(choice == 0 ? a.first : a.second,
                                                   choice == 0 ? b.first : b.second);
      };
      auto accuracy = [&](const std::vector<Pair>& pairs, double t) {
        int ok = 0;
        for (const Pair& p : pairs) ok += (dist(p) < t) == p.same;
        return double(ok) / pairs.size();
      };
      double best_t = 0.6, best_acc = 0;
      for (double t = 0.30; t <= 0.80; t += 0.0025) {
        double acc = accuracy(train, t);
        if (acc > best_acc) best_acc = acc, best_t = t;
      }
      std::printf("| %s | %s | %d of %zu | %.4f | %.2f%% | %.2f%% |\n", mirror ? "mirror" : "none",
                  choice == 0 ? "nearest centre" : "largest", no_face, images.size(), best_t,
                  100 * best_acc, 100 * accuracy(test, best_t));
    }
    std::fprintf(stderr, "(%s: %.1f s for %zu images, %d workers)\n", mirror ? "mirror" : "plain",
                 secs, images.size(), pipeline->workers());
  }
  return 0;
}

// -------------------------------------------------------------------------------- speed
using homeward::embed::internal::anet_type;

struct RawDlib {
  dlib::frontal_face_detector detector = dlib::get_frontal_face_detector();
  dlib::shape_predictor sp;
  anet_type net;
  RawDlib() {
    dlib::deserialize("/usr/share/dlib/shape_predictor_68_face_landmarks.dat") >> sp;
    dlib::deserialize(ModelPath()) >> net;
  }
  // Landmarks, aligned chips and descriptors (with the mirror pass when `mirror`) of the faces
  // at `rects` in `rgb`.
  size_t Describe(const cv::Mat& rgb, const std::vector<dlib::rectangle>& rects, bool mirror) {
    dlib::cv_image<dlib::rgb_pixel> img(rgb);
    std::vector<dlib::matrix<dlib::rgb_pixel>> chips;
    for (const auto& o : rects) {
      auto shape = sp(img, o);
      dlib::matrix<dlib::rgb_pixel> chip;
      dlib::extract_image_chip(img, dlib::get_face_chip_details(shape, 150, 0.25), chip);
      chips.push_back(std::move(chip));
    }
    if (!chips.empty()) net(chips, 16);
    if (!chips.empty() && mirror) {
      for (auto& c : chips) c = dlib::fliplr(c);
      net(chips, 16);
    }
    return chips.size();
  }
  // The same work as FacePipeline::Process: decode, scale, HOG, landmarks, chips, descriptors.
  size_t Photo(const std::string& bytes, double scale, bool mirror = false) {
    cv::Mat bgr = cv::imdecode(cv::Mat(1, (int)bytes.size(), CV_8UC1, (void*)bytes.data()),
                               cv::IMREAD_COLOR);
    cv::Mat rgb, scan;
    cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    cv::resize(rgb, scan, cv::Size(), scale, scale, scale > 1 ? cv::INTER_LINEAR : cv::INTER_AREA);
    dlib::cv_image<dlib::rgb_pixel> s(scan);
    std::vector<dlib::rectangle> rects;
    for (const auto& r : detector(s)) {
      rects.emplace_back(r.left() / scale, r.top() / scale, r.right() / scale, r.bottom() / scale);
    }
    return Describe(rgb, rects, mirror);
  }
};

double PolicyScale(int w, int h) {
  PipelineOptions o;
  return std::min(o.max_upsample, std::sqrt(double(o.detect_pixel_budget) / (double(w) * h)));
}

template <typename F>
double BestOf(int reps, F&& f) {
  double best = 1e18;
  for (int i = 0; i < reps; ++i) {
    auto t0 = Clock::now();
    f();
    best = std::min(best, Seconds(t0, Clock::now()));
  }
  return best;
}

int Speed(int argc, char** argv) {
  const std::string demo = Flag(argc, argv, "--demo", std::string(HOMEWARD_SOURCE_DIR) + "/models/cache/face-api-1.7.15/demo");
  const std::string folder = Flag(argc, argv, "--folder", demo);
  openblas_set_num_threads(1);
  RawDlib raw;
  // The same work as raw dlib: one network pass per face (no mirror averaging); the cost of
  // mirror averaging, the default, is reported in its own row.
  PipelineOptions o1;
  o1.workers = 1;
  o1.mirror_augment = false;
  auto p1 = MakePipeline(o1);
  PipelineOptions o2 = o1;
  o2.workers = 2;
  auto p2 = MakePipeline(o2);
  PipelineOptions om = o1;
  om.mirror_augment = true;
  auto pm = MakePipeline(om);

  // Chips from the demo photos, replicated to 64.
  std::vector<homeward::embed::Chip> chips;
  for (int i = 1; i <= 6; ++i) {
    auto c = p1->FaceChips(ReadFile(demo + "/sample" + std::to_string(i) + ".jpg"));
    if (c.ok()) chips.insert(chips.end(), c->begin(), c->end());
  }
  while (chips.size() < 64) chips.push_back(chips[chips.size() % 8]);
  chips.resize(64);
  std::vector<dlib::matrix<dlib::rgb_pixel>> mats;
  for (const auto& c : chips) {
    dlib::matrix<dlib::rgb_pixel> m(150, 150);
    std::memcpy(&m(0, 0), c.rgb.data(), c.rgb.size());
    mats.push_back(m);
  }
  std::printf("| measurement | Homeward | raw dlib | ratio |\n|---|---|---|---|\n");
  {
    double ours = BestOf(3, [&] { (void)p1->DescribeChips(chips); });
    double theirs = BestOf(3, [&] { raw.net(mats, 16); });
    std::printf("| descriptors/s, 1 thread (64 chips) | %.1f | %.1f | %.3f |\n", 64 / ours,
                64 / theirs, ours / theirs);
    double mirrored = BestOf(3, [&] { (void)pm->DescribeChips(chips); });
    std::printf("| descriptors/s, 1 thread, mirror averaging (default) | %.1f | %.1f (plain) | %.3f |\n",
                64 / mirrored, 64 / theirs, mirrored / theirs);
  }
  {
    // Two threads: two workers each describing half; raw: two threads each with its own net.
    std::vector<homeward::embed::Chip> half(chips.begin(), chips.begin() + 32);
    double ours = BestOf(3, [&] {
      std::thread t([&] { (void)p2->DescribeChips(half); });
      (void)p2->DescribeChips(half);
      t.join();
    });
    anet_type net2 = raw.net;
    std::vector<dlib::matrix<dlib::rgb_pixel>> mhalf(mats.begin(), mats.begin() + 32);
    double theirs = BestOf(3, [&] {
      std::thread t([&] { net2(mhalf, 16); });
      raw.net(mhalf, 16);
      t.join();
    });
    std::printf("| descriptors/s, 2 threads (64 chips) | %.1f | %.1f | %.3f |\n", 64 / ours,
                64 / theirs, ours / theirs);
  }
  // Detection + landmarks + descriptors for one photo at 640x480 and 1920x1080.
  cv::Mat src = cv::imdecode(cv::Mat(1, 1, CV_8UC1), cv::IMREAD_COLOR);
  std::string s1 = ReadFile(demo + "/sample1.jpg");
  cv::Mat base = cv::imdecode(cv::Mat(1, (int)s1.size(), CV_8UC1, s1.data()), cv::IMREAD_COLOR);
  for (cv::Size size : {cv::Size(640, 480), cv::Size(1920, 1080)}) {
    cv::Mat resized;
    cv::resize(base, resized, size, 0, 0, cv::INTER_AREA);
    std::vector<uchar> buf;
    cv::imencode(".jpg", resized, buf, {cv::IMWRITE_JPEG_QUALITY, 92});
    std::string bytes(buf.begin(), buf.end());
    const double scale = PolicyScale(size.width, size.height);
    size_t nfaces = 0;
    double ours = BestOf(3, [&] { nfaces = p1->Process(bytes)->faces.size(); });
    double theirs = BestOf(3, [&] { raw.Photo(bytes, scale); });
    std::printf("| photo %dx%d, scale %.2f, %zu faces: ms per photo | %.1f | %.1f | %.3f |\n",
                size.width, size.height, scale, nfaces, 1000 * ours, 1000 * theirs, ours / theirs);
  }
  // End to end: a folder of photos on two workers vs two raw threads.
  std::vector<std::string> photos;
  for (const auto& e : fs::directory_iterator(folder)) {
    auto ext = e.path().extension().string();
    if (ext == ".jpg" || ext == ".jpeg" || ext == ".png") photos.push_back(ReadFile(e.path()));
    if (photos.size() >= 200) break;
  }
  std::vector<std::string_view> views(photos.begin(), photos.end());
  double ours = BestOf(2, [&] { (void)p2->ProcessMany(views); });
  RawDlib raw2;
  double theirs = BestOf(2, [&] {
    std::atomic<size_t> next{0};
    auto run = [&](RawDlib& r) {
      for (size_t i; (i = next.fetch_add(1)) < photos.size();) {
        cv::Mat m = cv::imdecode(cv::Mat(1, (int)photos[i].size(), CV_8UC1, photos[i].data()),
                                 cv::IMREAD_COLOR);
        r.Photo(photos[i], PolicyScale(m.cols, m.rows));
      }
    };
    std::thread t([&] { run(raw2); });
    run(raw);
    t.join();
  });
  std::printf("| folder of %zu photos, 2 threads: photos/s | %.2f | %.2f | %.3f |\n", photos.size(),
              photos.size() / ours, photos.size() / theirs, ours / theirs);
  std::printf("\n(ratio = Homeward time / raw dlib time; raw folder loop decodes twice to learn the size)\n");
  return 0;
}

// ------------------------------------------------------------------------------- detect
int Detect(int argc, char** argv) {
  const std::string data = Flag(argc, argv, "--data", std::string(HOMEWARD_SOURCE_DIR) + "/../shared/data");
  const std::string demo = Flag(argc, argv, "--demo", std::string(HOMEWARD_SOURCE_DIR) + "/models/cache/face-api-1.7.15/demo");
  std::vector<std::string> files;
  for (int i = 1; i <= 6; ++i) files.push_back(demo + "/sample" + std::to_string(i) + ".jpg");
  if (fs::exists(data + "/faces-small")) {
    for (const auto& e : fs::recursive_directory_iterator(data + "/faces-small")) {
      auto ext = e.path().extension().string();
      if (ext == ".jpg" || ext == ".jpeg" || ext == ".png") files.push_back(e.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  PipelineOptions policy;
  PipelineOptions none;
  none.max_upsample = 1.0;
  none.detect_pixel_budget = int64_t{1} << 40;  // never scale
  auto with = MakePipeline(policy);
  auto without = MakePipeline(none);
  std::printf("| photo | size | policy scale | faces (policy) | ms | faces (no rescale) | ms | usable (policy) |\n|---|---|---|---|---|---|---|---|\n");
  for (const auto& f : files) {
    std::string bytes = ReadFile(f);
    auto t0 = Clock::now();
    auto a = with->Process(bytes);
    auto t1 = Clock::now();
    auto b = without->Process(bytes);
    auto t2 = Clock::now();
    if (!a.ok() || !b.ok()) {
      std::printf("| %s | error: %s | | | | | | |\n", fs::path(f).filename().c_str(),
                  std::string((a.ok() ? b : a).status().message()).c_str());
      continue;
    }
    int usable = 0;
    for (const auto& face : a->faces) usable += face.quality.usable;
    std::printf("| %s | %dx%d | %.2f | %zu | %.0f | %zu | %.0f | %d |\n", fs::path(f).filename().c_str(),
                a->width, a->height, a->detect_scale, a->faces.size(), 1000 * Seconds(t0, t1),
                b->faces.size(), 1000 * Seconds(t1, t2), usable);
  }
  return 0;
}


// ---------------------------------------------------------------------------- detectors
std::string ModelFile(const std::string& name) {
  return std::string(HOMEWARD_SOURCE_DIR) + "/models/" + name;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

template <typename F>
double TimeIt(F&& f) {
  auto t0 = Clock::now();
  f();
  return Seconds(t0, Clock::now());
}

double CpuSeconds() {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// OpenCV's thread count for its parallel loops (TBB in Debian's 4.6; cv::dnn's layers,
// resize, cvtColor): 0 = the library's default, read before the first change.
int g_cv_default_threads = 0;
void SetCvThreads(int n) { cv::setNumThreads(n > 0 ? n : g_cv_default_threads); }
std::string CvThreadsName(int n) {
  return n > 0 ? std::to_string(n) : absl::StrFormat("default (%d)", g_cv_default_threads);
}

// The FaceBoxes network alone, as a user of OpenCV DNN would run it: the image zero-padded to
// a multiple of 128 (as the graph pads), standardized to [-1, 1] by blobFromImage, the six
// head outputs. No anchors, decoding or NMS (CnnFaceDetector's own work).
struct RawCnn {
  cv::dnn::Net net;
  std::vector<cv::String> outputs = {"cls0", "cls1", "cls2", "box0", "box1", "box2"};
  explicit RawCnn(const std::string& path) : net(cv::dnn::readNetFromONNX(path)) {
    net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
  }
  void Forward(const cv::Mat& rgb) {
    const int ph = (rgb.rows + 127) / 128 * 128, pw = (rgb.cols + 127) / 128 * 128;
    cv::Mat padded;
    cv::copyMakeBorder(rgb, padded, 0, ph - rgb.rows, 0, pw - rgb.cols, cv::BORDER_CONSTANT,
                       cv::Scalar::all(0));
    cv::Mat blob = cv::dnn::blobFromImage(padded, 2.0 / 255, cv::Size(), cv::Scalar::all(127.5),
                                          false, false);
    net.setInput(blob);
    std::vector<cv::Mat> heads;
    net.forward(heads, outputs);
  }
};

// faceres-deep alone on a 224x224 RGB crop (BGR minus the ImageNet means, as AgeModel feeds it).
struct RawAge {
  cv::dnn::Net net;
  explicit RawAge(const std::string& path) : net(cv::dnn::readNetFromONNX(path)) {
    net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
  }
  void Run(const cv::Mat& rgb224) {
    net.setInput(cv::dnn::blobFromImage(rgb224, 1.0, cv::Size(),
                                        cv::Scalar(123.68, 116.779, 103.939), true, false));
    (void)net.forward("age");
  }
};

// The demo photos where both detectors find exactly three faces, resized to 1920x1080 (as
// `speed` does; a centre crop instead gives HOG a fourth, false face in sample1) and encoded as
// JPEG quality 92.
struct HdPhoto {
  std::string name, bytes;
};
std::vector<HdPhoto> HdPhotos(const std::string& demo) {
  std::vector<HdPhoto> out;
  for (const char* name : {"sample1.jpg", "sample3.jpg"}) {
    std::string b = ReadFile(demo + "/" + name);
    cv::Mat m = cv::imdecode(cv::Mat(1, (int)b.size(), CV_8UC1, b.data()), cv::IMREAD_COLOR);
    if (m.empty() || m.cols < 1920 || m.rows < 1080) {
      std::fprintf(stderr, "%s/%s: missing or smaller than 1920x1080\n", demo.c_str(), name);
      std::exit(1);
    }
    cv::Mat hd;
    cv::resize(m, hd, cv::Size(1920, 1080), 0, 0, cv::INTER_AREA);
    std::vector<uchar> buf;
    cv::imencode(".jpg", hd, buf, {cv::IMWRITE_JPEG_QUALITY, 92});
    out.push_back({name, std::string(buf.begin(), buf.end())});
  }
  return out;
}

std::vector<dlib::rectangle> Rects(const PhotoFaces& p) {
  std::vector<dlib::rectangle> r;
  for (const auto& f : p.faces)
    r.emplace_back(f.box.x, f.box.y, f.box.x + f.box.width - 1, f.box.y + f.box.height - 1);
  return r;
}

int Detectors(int argc, char** argv) {
  const std::string demo = Flag(argc, argv, "--demo", std::string(HOMEWARD_SOURCE_DIR) + "/models/cache/face-api-1.7.15/demo");
  const int reps = std::atoi(Flag(argc, argv, "--reps", "7").c_str());
  const int tp_photos = std::atoi(Flag(argc, argv, "--throughput-photos", "8").c_str());
  const int tp_reps = std::atoi(Flag(argc, argv, "--throughput-reps", "3").c_str());
  const int stage_threads = std::atoi(Flag(argc, argv, "--stage-cv-threads", "1").c_str());
  const std::string sections = Flag(argc, argv, "--sections", "latency,stages,throughput");
  auto section = [&](const char* name) { return sections.find(name) != std::string::npos; };
  const std::string cnn_model = ModelFile("faceboxes_3.0.4.onnx");
  const std::string age_model = ModelFile("faceres-deep_3.0.4.onnx");
  g_cv_default_threads = cv::getNumThreads();
  openblas_set_num_threads(1);
  const std::vector<HdPhoto> photos = HdPhotos(demo);

  // Service defaults (mirror averaging on), one worker each.
  PipelineOptions hog_o;
  hog_o.workers = 1;
  PipelineOptions cnn_o = hog_o;
  cnn_o.detector = homeward::embed::DetectorKind::kCnn;
  cnn_o.face_detector_model_path = cnn_model;
  PipelineOptions hog_age_o = hog_o, cnn_age_o = cnn_o;
  hog_age_o.age_model_path = cnn_age_o.age_model_path = age_model;
  auto hog = MakePipeline(hog_o), cnn = MakePipeline(cnn_o);
  auto hog_age = MakePipeline(hog_age_o), cnn_age = MakePipeline(cnn_age_o);
  RawDlib raw_dlib;
  RawCnn raw_cnn(cnn_model);
  RawAge raw_age(age_model);

  const double hog_scale = std::min(hog_o.max_upsample,
                                    std::sqrt(double(hog_o.detect_pixel_budget) / (1920.0 * 1080)));
  const double cnn_scale = std::min(cnn_o.cnn_max_upsample,
                                    std::sqrt(double(cnn_o.cnn_pixel_budget) / (1920.0 * 1080)));
  // The faces each pipeline finds (the raw CNN run places landmarks at the CNN's boxes).
  std::vector<PhotoFaces> hog_found, cnn_found;
  for (const auto& p : photos) {
    hog_found.push_back(*hog->Process(p.bytes));
    cnn_found.push_back(*cnn->Process(p.bytes));
  }
  std::printf("Photos: %s and %s from %s, resized to 1920x1080, JPEG q92 (%zu and %zu bytes).\n",
              photos[0].name.c_str(), photos[1].name.c_str(), demo.c_str(), photos[0].bytes.size(),
              photos[1].bytes.size());
  std::printf("HOG policy scale %.3f (scan %dx%d); CNN scale %.3f (scan %dx%d, padded to %dx%d).\n",
              hog_scale, (int)std::lround(1920 * hog_scale), (int)std::lround(1080 * hog_scale),
              cnn_scale, (int)std::lround(1920 * cnn_scale), (int)std::lround(1080 * cnn_scale),
              ((int)std::lround(1920 * cnn_scale) + 127) / 128 * 128,
              ((int)std::lround(1080 * cnn_scale) + 127) / 128 * 128);
  std::printf("OpenCV %s, parallel framework threads by default: %d; OpenBLAS 1 thread; "
              "hardware threads %u.\n\n", CV_VERSION, g_cv_default_threads,
              std::thread::hardware_concurrency());

  // ---- 1. One photo, bytes to descriptors, one worker: every variant in turn, rotating
  // which goes first, `reps` times; medians.
  struct Variant {
    std::string name;
    int cv_threads;
    std::function<size_t(size_t)> run;  // photo index -> faces
  };
  std::vector<Variant> variants;
  for (int t : {0, 1}) {
    if (!section("latency")) break;
    variants.push_back({"HOG policy pipeline", t, [&](size_t i) { return hog->Process(photos[i].bytes)->faces.size(); }});
    variants.push_back({"CNN pipeline", t, [&](size_t i) { return cnn->Process(photos[i].bytes)->faces.size(); }});
    variants.push_back({"HOG policy pipeline + age", t, [&](size_t i) { return hog_age->Process(photos[i].bytes)->faces.size(); }});
    variants.push_back({"CNN pipeline + age", t, [&](size_t i) { return cnn_age->Process(photos[i].bytes)->faces.size(); }});
    variants.push_back({"raw dlib, HOG policy's work", t, [&](size_t i) { return raw_dlib.Photo(photos[i].bytes, hog_scale, true); }});
    variants.push_back({"raw OpenCV DNN + dlib, CNN pipeline's work", t, [&](size_t i) {
      const std::string& b = photos[i].bytes;
      cv::Mat bgr = cv::imdecode(cv::Mat(1, (int)b.size(), CV_8UC1, (void*)b.data()), cv::IMREAD_COLOR);
      cv::Mat rgb, scan;
      cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
      cv::resize(rgb, scan, cv::Size(), cnn_scale, cnn_scale, cv::INTER_AREA);
      raw_cnn.Forward(scan);
      return raw_dlib.Describe(rgb, Rects(cnn_found[i]), true);
    }});
  }
  const size_t nv = variants.size();
  std::vector<std::vector<std::vector<double>>> ms(nv, std::vector<std::vector<double>>(photos.size()));
  std::vector<std::vector<size_t>> faces(nv, std::vector<size_t>(photos.size()));
  for (auto& v : variants) {  // warm-up
    SetCvThreads(v.cv_threads);
    for (size_t i = 0; i < photos.size(); ++i) v.run(i);
  }
  for (int r = 0; r < reps; ++r) {
    for (size_t i = 0; i < photos.size(); ++i) {
      for (size_t k = 0; k < nv; ++k) {
        const size_t v = r % 2 ? (r + nv - 1 - k) % nv : (r + k) % nv;  // rotate, alternate direction
        SetCvThreads(variants[v].cv_threads);
        ms[v][i].push_back(1000 * TimeIt([&] { faces[v][i] = variants[v].run(i); }));
      }
    }
    std::fprintf(stderr, "latency rep %d/%d done\n", r + 1, reps);
  }
  auto mean_median = [&](size_t v) {
    double s = 0;
    for (size_t i = 0; i < photos.size(); ++i) s += Median(ms[v][i]);
    return s / photos.size();
  };
  if (section("latency")) std::printf("### Bytes to descriptors, one 1920x1080 photo, one worker (median of %d, variants interleaved)\n\n", reps);
  if (section("latency")) std::printf("| variant | OpenCV threads | faces | %s ms | %s ms | mean ms | HOG / this (same age, threads) | this / raw (same threads) |\n",
              photos[0].name.c_str(), photos[1].name.c_str());
  if (section("latency")) std::printf("|---|---|---|---:|---:|---:|---:|---:|\n");
  for (size_t v = 0; v < nv; ++v) {
    const size_t base = v - v % 6;  // the variants of the same thread count
    const size_t idx = v % 6;
    std::string vs_hog, vs_raw;
    if (idx == 1 || idx == 3) vs_hog = absl::StrFormat("**%.2fx**", mean_median(base + idx - 1) / mean_median(v));
    if (idx == 0) vs_raw = absl::StrFormat("%.3f", mean_median(v) / mean_median(base + 4));
    if (idx == 1) vs_raw = absl::StrFormat("%.3f", mean_median(v) / mean_median(base + 5));
    std::printf("| %s | %s | %zu, %zu | %.1f | %.1f | %.1f | %s | %s |\n", variants[v].name.c_str(),
                CvThreadsName(variants[v].cv_threads).c_str(), faces[v][0], faces[v][1],
                Median(ms[v][0]), Median(ms[v][1]), mean_median(v), vs_hog.c_str(), vs_raw.c_str());
  }
  if (section("latency")) std::printf("\n");

  // ---- 2. The stages, as the pipeline runs them, next to the raw library's call.
  if (section("stages")) {
  SetCvThreads(stage_threads);
  auto age_model_1 = homeward::embed::AgeModel::Load(age_model);
  auto cnn_detector = homeward::embed::CnnFaceDetector::Load(cnn_model);
  if (!age_model_1.ok() || !cnn_detector.ok()) {
    std::fprintf(stderr, "cannot load the age or face detector model\n");
    return 1;
  }
  dlib::frontal_face_detector hog_detector = dlib::get_frontal_face_detector();
  std::vector<std::vector<homeward::embed::Chip>> hog_chips, cnn_chips, age_chips;
  for (const auto& p : photos) {
    hog_chips.push_back(*hog->FaceChips(p.bytes));
    cnn_chips.push_back(*cnn->FaceChips(p.bytes));
    age_chips.push_back(*cnn_age->AgeChips(p.bytes));
  }
  enum Stage { kDecode, kScaleHog, kScaleCnn, kDetectHog, kDetectCnn, kAlignHog, kAlignCnn,
               kDescribeHog, kDescribeCnn, kAgeFace, kTotalHog, kTotalCnn, kTotalHogAge,
               kTotalCnnAge, kStages };
  // [stage][rep] mean ms per photo; ours and raw.
  std::vector<std::vector<double>> ours(kStages), raw(kStages);
  homeward::embed::CnnDetectorOptions cnn_opts;
  cnn_opts.score_threshold = cnn_o.cnn_score_threshold;
  for (int r = -1; r < reps; ++r) {  // r = -1: warm-up (first forward at each input size)
    std::vector<double> o(kStages, 0), w(kStages, 0);
    for (size_t i = 0; i < photos.size(); ++i) {
      const std::string& b = photos[i].bytes;
      const bool raw_first = (r + i) % 2;
      cv::Mat rgb, raw_rgb, scan_hog, scan_cnn;  // both decodes keep their RGB image
      auto ours_decode = [&] {
        o[kDecode] += TimeIt([&] { rgb = *homeward::embed::internal::DecodeRgb(b, hog_o.limits); });
      };
      auto raw_decode = [&] {
        w[kDecode] += TimeIt([&] {
          cv::Mat bgr = cv::imdecode(cv::Mat(1, (int)b.size(), CV_8UC1, (void*)b.data()), cv::IMREAD_COLOR);
          cv::cvtColor(bgr, raw_rgb, cv::COLOR_BGR2RGB);
        });
      };
      if (raw_first) raw_decode(), ours_decode(); else ours_decode(), raw_decode();
      o[kScaleHog] += TimeIt([&] { cv::resize(rgb, scan_hog, cv::Size(), hog_scale, hog_scale, cv::INTER_LINEAR); });
      o[kScaleCnn] += TimeIt([&] { cv::resize(rgb, scan_cnn, cv::Size(), cnn_scale, cnn_scale, cv::INTER_AREA); });
      o[kDetectHog] += TimeIt([&] {
        dlib::cv_image<dlib::rgb_pixel> img(scan_hog);
        std::vector<dlib::rect_detection> dets;
        hog_detector(img, dets, 0.0);
      });
      auto ours_cnn = [&] { o[kDetectCnn] += TimeIt([&] { (void)(*cnn_detector)->Detect(scan_cnn, cnn_opts); }); };
      auto raw_cnn_fwd = [&] { w[kDetectCnn] += TimeIt([&] { raw_cnn.Forward(scan_cnn); }); };
      if (raw_first) raw_cnn_fwd(), ours_cnn(); else ours_cnn(), raw_cnn_fwd();
      for (int which = 0; which < 2; ++which) {
        const auto rects = Rects(which == 0 ? hog_found[i] : cnn_found[i]);
        o[which == 0 ? kAlignHog : kAlignCnn] += TimeIt([&] {
          dlib::cv_image<dlib::rgb_pixel> img(rgb);
          for (const auto& rect : rects) {
            auto shape = raw_dlib.sp(img, rect);
            dlib::matrix<dlib::rgb_pixel> chip;
            dlib::extract_image_chip(img, dlib::get_face_chip_details(shape, 150, 0.25), chip);
          }
        });
        const auto& chips = which == 0 ? hog_chips[i] : cnn_chips[i];
        std::vector<dlib::matrix<dlib::rgb_pixel>> mats;
        for (const auto& c : chips) {
          dlib::matrix<dlib::rgb_pixel> m(150, 150);
          std::memcpy(&m(0, 0), c.rgb.data(), c.rgb.size());
          mats.push_back(m);
        }
        const Stage st = which == 0 ? kDescribeHog : kDescribeCnn;
        auto ours_d = [&] { o[st] += TimeIt([&] { (void)(which == 0 ? hog : cnn)->DescribeChips(chips); }); };
        auto raw_d = [&] {
          w[st] += TimeIt([&] {
            raw_dlib.net(mats, 16);
            std::vector<dlib::matrix<dlib::rgb_pixel>> mirrored;
            for (const auto& m : mats) mirrored.push_back(dlib::fliplr(m));
            raw_dlib.net(mirrored, 16);
          });
        };
        if (raw_first) raw_d(), ours_d(); else ours_d(), raw_d();
      }
      for (const auto& c : age_chips[i]) {
        cv::Mat m(224, 224, CV_8UC3, (void*)c.rgb.data());
        auto ours_a = [&] { o[kAgeFace] += TimeIt([&] { (void)(*age_model_1)->Run(c.rgb); }) / age_chips[i].size(); };
        auto raw_a = [&] { w[kAgeFace] += TimeIt([&] { raw_age.Run(m); }) / age_chips[i].size(); };
        if (raw_first) raw_a(), ours_a(); else ours_a(), raw_a();
      }
      o[kTotalHog] += TimeIt([&] { (void)hog->Process(b); });
      o[kTotalCnn] += TimeIt([&] { (void)cnn->Process(b); });
      o[kTotalHogAge] += TimeIt([&] { (void)hog_age->Process(b); });
      o[kTotalCnnAge] += TimeIt([&] { (void)cnn_age->Process(b); });
    }
    if (r < 0) continue;
    for (int s = 0; s < kStages; ++s) {
      ours[s].push_back(1000 * o[s] / photos.size());
      raw[s].push_back(1000 * w[s] / photos.size());
    }
    std::fprintf(stderr, "stage rep %d/%d done\n", r + 1, reps);
  }
  auto m = [&](Stage s) { return Median(ours[s]); };
  auto mr = [&](Stage s) { return Median(raw[s]); };
  std::printf("### Stages per photo (mean of the two photos, median of %d), OpenCV threads %s\n\n",
              reps, CvThreadsName(stage_threads).c_str());
  std::printf("| stage | HOG pipeline ms | CNN pipeline ms | raw library, same work ms | Homeward / raw |\n");
  std::printf("|---|---:|---:|---:|---:|\n");
  std::printf("| decode (JPEG, EXIF, RGB) | %.1f | %.1f | %.1f (cv::imdecode + cvtColor) | %.2f |\n",
              m(kDecode), m(kDecode), mr(kDecode), m(kDecode) / mr(kDecode));
  std::printf("| scale to the detector's policy | %.1f (x%.2f, linear) | %.1f (x%.2f, area) | (the same call) | |\n",
              m(kScaleHog), hog_scale, m(kScaleCnn), cnn_scale);
  std::printf("| detect | %.1f (dlib HOG: the raw call itself) | %.1f (CnnFaceDetector::Detect) | %.1f (Net::forward of the padded input) | %.2f |\n",
              m(kDetectHog), m(kDetectCnn), mr(kDetectCnn), m(kDetectCnn) / mr(kDetectCnn));
  std::printf("| landmarks + align (3 faces) | %.1f | %.1f | (the same calls) | |\n", m(kAlignHog), m(kAlignCnn));
  std::printf("| descriptors, 3 faces, mirror averaging | %.1f | %.1f | %.1f / %.1f (anet_type, 2 passes) | %.2f / %.2f |\n",
              m(kDescribeHog), m(kDescribeCnn), mr(kDescribeHog), mr(kDescribeCnn),
              m(kDescribeHog) / mr(kDescribeHog), m(kDescribeCnn) / mr(kDescribeCnn));
  std::printf("| age estimate, per face | %.1f | %.1f | %.1f (Net::forward, blobFromImage) | %.2f |\n",
              m(kAgeFace), m(kAgeFace), mr(kAgeFace), m(kAgeFace) / mr(kAgeFace));
  const double sum_hog = m(kDecode) + m(kScaleHog) + m(kDetectHog) + m(kAlignHog) + m(kDescribeHog);
  const double sum_cnn = m(kDecode) + m(kScaleCnn) + m(kDetectCnn) + m(kAlignCnn) + m(kDescribeCnn);
  std::printf("| sum of the stages above (without age) | %.1f | %.1f | | |\n", sum_hog, sum_cnn);
  std::printf("| Process(), measured (without age) | %.1f | %.1f | | |\n", m(kTotalHog), m(kTotalCnn));
  std::printf("| rest: quality (sharpness, yaw by solvePnP), copies | %.1f | %.1f | | |\n",
              m(kTotalHog) - sum_hog, m(kTotalCnn) - sum_cnn);
  std::printf("| Process() with the age model, measured | %.1f | %.1f | | |\n", m(kTotalHogAge), m(kTotalCnnAge));
  std::printf("\n");
  }  // stages
  if (!section("throughput")) return 0;

  // ---- 3. Throughput: ProcessMany over the 1920x1080 photos, age model loaded (the server's
  // default), by detector, workers and OpenCV threads; configurations rotated `tp_reps` times.
  PipelineOptions hog_age2_o = hog_age_o, cnn_age2_o = cnn_age_o;
  hog_age2_o.workers = cnn_age2_o.workers = 2;
  auto hog_age2 = MakePipeline(hog_age2_o), cnn_age2 = MakePipeline(cnn_age2_o);
  std::vector<std::string_view> batch;
  for (int k = 0; k < tp_photos; ++k) batch.push_back(photos[k % photos.size()].bytes);
  struct Config {
    std::string detector;
    const FacePipeline* pipeline;
    int workers, cv_threads;
  };
  std::vector<Config> configs;
  for (int t : {0, 1}) {
    configs.push_back({"HOG", hog_age.get(), 1, t});
    configs.push_back({"HOG", hog_age2.get(), 2, t});
    configs.push_back({"CNN", cnn_age.get(), 1, t});
    configs.push_back({"CNN", cnn_age2.get(), 2, t});
  }
  std::vector<std::vector<double>> rate(configs.size()), cpu(configs.size());
  for (const Config& c : configs) {  // warm-up: every worker's networks see the input size once
    SetCvThreads(c.cv_threads);
    (void)c.pipeline->ProcessMany({batch[0], batch[1 % batch.size()]});
  }
  for (int r = 0; r < tp_reps; ++r) {
    for (size_t k = 0; k < configs.size(); ++k) {
      const size_t c = r % 2 ? (configs.size() - 1 - k) : k;
      SetCvThreads(configs[c].cv_threads);
      const double c0 = CpuSeconds();
      const double secs = TimeIt([&] { (void)configs[c].pipeline->ProcessMany(batch); });
      rate[c].push_back(batch.size() / secs);
      cpu[c].push_back((CpuSeconds() - c0) / batch.size());
    }
    std::fprintf(stderr, "throughput rep %d/%d done\n", r + 1, tp_reps);
  }
  std::printf("### ProcessMany, %zu photos of 1920x1080 (3 faces each), age model loaded (median of %d, configurations rotated)\n\n",
              batch.size(), tp_reps);
  std::printf("| detector | workers | OpenCV threads | photos/s | each run | CPU s per photo | vs 1 worker, default threads |\n");
  std::printf("|---|---:|---|---:|---|---:|---:|\n");
  for (size_t c = 0; c < configs.size(); ++c) {
    std::string runs;
    for (double x : rate[c]) runs += absl::StrFormat("%s%.2f", runs.empty() ? "" : ", ", x);
    const size_t base = configs[c].detector == "HOG" ? 0 : 2;
    std::printf("| %s | %d | %s | %.2f | %s | %.3f | %.2f |\n", configs[c].detector.c_str(),
                configs[c].workers, CvThreadsName(configs[c].cv_threads).c_str(), Median(rate[c]),
                runs.c_str(), Median(cpu[c]), Median(rate[c]) / Median(rate[base]));
  }
  SetCvThreads(0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "lfw") return Lfw(argc, argv);
  if (cmd == "speed") return Speed(argc, argv);
  if (cmd == "detect") return Detect(argc, argv);
  if (cmd == "detectors") return Detectors(argc, argv);
  std::fprintf(stderr, "usage: embed_bench lfw|speed|detect|detectors [--data DIR] [--demo DIR] [--folder DIR]\n");
  return 2;
}
