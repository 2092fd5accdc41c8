// embed_bench: accuracy and speed of the face pipeline, each next to raw dlib doing the
// same work in the same run.
//
//   embed_bench lfw    [--data DIR]              LFW development-view accuracy, with and without mirror
//   embed_bench speed  [--demo DIR]              descriptors/s, detection ms, photos/s vs raw dlib
//   embed_bench detect [--data DIR] [--demo DIR] faces found with and without the small-face policy
//
// Models: $HOMEWARD_RECOGNITION_MODEL (default models/faceapi_1.7.15_resnet.dat).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <dlib/image_processing.h>
#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/opencv/cv_image.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "absl/strings/str_format.h"
#include "embed/face_pipeline.h"
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
  // The same work as FacePipeline::Process: decode, scale, HOG, landmarks, chips, descriptors.
  size_t Photo(const std::string& bytes, double scale) {
    cv::Mat bgr = cv::imdecode(cv::Mat(1, (int)bytes.size(), CV_8UC1, (void*)bytes.data()),
                               cv::IMREAD_COLOR);
    cv::Mat rgb, scan;
    cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    cv::resize(rgb, scan, cv::Size(), scale, scale, scale > 1 ? cv::INTER_LINEAR : cv::INTER_AREA);
    dlib::cv_image<dlib::rgb_pixel> s(scan), img(rgb);
    std::vector<dlib::matrix<dlib::rgb_pixel>> chips;
    for (const auto& r : detector(s)) {
      dlib::rectangle o(r.left() / scale, r.top() / scale, r.right() / scale, r.bottom() / scale);
      auto shape = sp(img, o);
      dlib::matrix<dlib::rgb_pixel> chip;
      dlib::extract_image_chip(img, dlib::get_face_chip_details(shape, 150, 0.25), chip);
      chips.push_back(std::move(chip));
    }
    if (!chips.empty()) net(chips, 16);
    return chips.size();
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

}  // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "lfw") return Lfw(argc, argv);
  if (cmd == "speed") return Speed(argc, argv);
  if (cmd == "detect") return Detect(argc, argv);
  std::fprintf(stderr, "usage: embed_bench lfw|speed|detect [--data DIR] [--demo DIR] [--folder DIR]\n");
  return 2;
}
