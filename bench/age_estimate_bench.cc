// Age from the face on fgnet-dev: faceres-deep's raw error by age band, the bias correction
// and its error band fitted with leave-one-subject-out cross-validation, and the tables that
// embed/internal/age_correction.h holds (fitted on every fgnet-dev subject).
//
//   age_estimate_bench [--data DIR] [--age-model PATH] [--recognition-model PATH]
//                      [--padding 0.25,0.4,0.6] [--csv OUT] [--dump-chips DIR --dump FILES]
//                      [--detector hog|cnn] [--yaw-table]
//
// --yaw-table: the shipped estimate (embed/internal/age_correction.h, fitted on these same
// subjects, so its error here is optimistic) by the child's head turn (|yaw| from the
// landmarks): error and how often the band holds the true age. With --detector cnn the turned
// faces HOG misses are in it too.
//
// For each crop padding, every fgnet-dev photo goes through the face pipeline (HOG, landmarks,
// the aligned age crop, the network); the largest face is the child. The correction is a
// piecewise-linear map raw -> age (knots kRawKnots, least squares, a small ridge pulling it
// towards the identity where data are few); the band is the 5th..95th percentile of the
// residuals of the held-out subjects' photos in each corrected-age bin. Only fgnet-dev is
// read: other subjects are held out for an independent check.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "bench/bench_util.h"
#include "embed/face_pipeline.h"

namespace {

namespace fs = std::filesystem;
namespace embed = homeward::embed;
using homeward::bench::FlagValue;
using homeward::bench::ReadFile;

constexpr double kRawKnots[] = {0, 3, 6, 9, 12, 16, 20, 30, 45, 70};
constexpr double kRidge = 1.0;  // weight of the pull towards identity at each knot
constexpr double kBandBins[] = {0, 5, 10, 15, 25, 100};  // corrected-age bins of the band
constexpr double kLowQuantile = 0.05, kHighQuantile = 0.95;

struct Sample {
  std::string file;
  int subject = 0;
  double age = 0;
  double raw = -1;  // -1: no face found
  // The pipeline's own estimate and the face's turn (for --yaw-table).
  double years = -1, min_years = 0, max_years = 0, abs_yaw = 0;
};

const char* BandName(double age) {
  return age < 5 ? "0-4" : age < 10 ? "5-9" : age < 15 ? "10-14" : "15+";
}
const char* const kBands[] = {"0-4", "5-9", "10-14", "15+"};

// Hat-function basis of the piecewise-linear map at x.
std::vector<double> Basis(double x) {
  const int k = std::size(kRawKnots);
  std::vector<double> b(k, 0.0);
  if (x <= kRawKnots[0]) {
    b[0] = 1;
    return b;
  }
  for (int i = 1; i < k; ++i) {
    if (x <= kRawKnots[i]) {
      const double t = (x - kRawKnots[i - 1]) / (kRawKnots[i] - kRawKnots[i - 1]);
      b[i - 1] = 1 - t;
      b[i] = t;
      return b;
    }
  }
  b[k - 1] = 1;
  return b;
}

bool balance_bands = true;  // --unbalanced: every photo weighs the same

// Least squares with a ridge towards y = x at each knot; returns the knot values. With
// balance_bands each true-age band (0-4, 5-9, 10-14, 15+) weighs the same in total, so the
// many adult photos of fgnet-dev do not pull the children's correction.
std::vector<double> FitCorrection(const std::vector<const Sample*>& train) {
  const int k = std::size(kRawKnots);
  std::vector<double> a(k * k, 0.0), rhs(k, 0.0);
  std::map<std::string, int> per_band;
  for (const Sample* s : train) per_band[BandName(s->age)]++;
  for (const Sample* s : train) {
    const std::vector<double> b = Basis(s->raw);
    const double w = balance_bands ? train.size() / (4.0 * per_band[BandName(s->age)]) : 1.0;
    for (int i = 0; i < k; ++i) {
      rhs[i] += w * b[i] * s->age;
      for (int j = 0; j < k; ++j) a[i * k + j] += w * b[i] * b[j];
    }
  }
  for (int i = 0; i < k; ++i) {
    a[i * k + i] += kRidge;
    rhs[i] += kRidge * kRawKnots[i];
  }
  // Gaussian elimination (the system is small, symmetric positive definite).
  for (int c = 0; c < k; ++c) {
    for (int r = c + 1; r < k; ++r) {
      const double f = a[r * k + c] / a[c * k + c];
      for (int j = c; j < k; ++j) a[r * k + j] -= f * a[c * k + j];
      rhs[r] -= f * rhs[c];
    }
  }
  std::vector<double> y(k);
  for (int r = k - 1; r >= 0; --r) {
    double v = rhs[r];
    for (int j = r + 1; j < k; ++j) v -= a[r * k + j] * y[j];
    y[r] = v / a[r * k + r];
  }
  // An age estimate must not fall as the network's estimate rises.
  for (int i = 1; i < k; ++i) y[i] = std::max(y[i], y[i - 1]);
  return y;
}

double Apply(const std::vector<double>& knots, double raw) {
  const std::vector<double> b = Basis(raw);
  double v = 0;
  for (size_t i = 0; i < b.size(); ++i) v += b[i] * knots[i];
  return std::max(0.0, v);
}

double Quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = q * (v.size() - 1);
  const size_t i = static_cast<size_t>(pos);
  if (i + 1 >= v.size()) return v.back();
  return v[i] + (pos - i) * (v[i + 1] - v[i]);
}

int BandBin(double corrected) {
  for (size_t i = 1; i < std::size(kBandBins); ++i)
    if (corrected < kBandBins[i]) return static_cast<int>(i - 1);
  return static_cast<int>(std::size(kBandBins)) - 2;
}

struct Band {
  std::vector<double> below, above;  // per bin: how far below/above the corrected age
};

// The band from residuals (true - corrected) of `rows`, per corrected-age bin.
Band FitBand(const std::vector<std::pair<double, double>>& rows) {
  const int nb = std::size(kBandBins) - 1;
  std::vector<std::vector<double>> res(nb);
  for (const auto& [corrected, age] : rows) res[BandBin(corrected)].push_back(age - corrected);
  Band band;
  for (int b = 0; b < nb; ++b) {
    // A bin with few photos borrows the neighbours' residuals.
    std::vector<double> r = res[b];
    for (int d = 1; r.size() < 20 && d < nb; ++d) {
      if (b - d >= 0) r.insert(r.end(), res[b - d].begin(), res[b - d].end());
      if (b + d < nb) r.insert(r.end(), res[b + d].begin(), res[b + d].end());
    }
    band.below.push_back(std::max(1.0, -Quantile(r, kLowQuantile)));
    band.above.push_back(std::max(1.0, Quantile(r, kHighQuantile)));
  }
  return band;
}

struct Result {
  double padding = 0;
  int no_face = 0;
  std::map<std::string, std::vector<double>> raw_err, cv_err, cv_signed_raw, cv_signed;
  std::map<std::string, int> covered, total;
  std::map<std::string, std::vector<double>> width;
  std::vector<double> knots;
  Band band;
};

Result Evaluate(double padding, const std::vector<Sample>& samples) {
  Result r;
  r.padding = padding;
  std::vector<const Sample*> found;
  for (const Sample& s : samples) {
    if (s.raw < 0) {
      ++r.no_face;
    } else {
      found.push_back(&s);
    }
  }
  std::set<int> subjects;
  for (const Sample* s : found) subjects.insert(s->subject);
  // Leave one subject out: the correction and the band are fitted without the subject.
  for (int held : subjects) {
    std::vector<const Sample*> train, test;
    for (const Sample* s : found) (s->subject == held ? test : train).push_back(s);
    const std::vector<double> knots = FitCorrection(train);
    // The band from the training subjects' own held-out residuals would need a nested loop;
    // their in-sample residuals are close enough with ten knots and ~500 photos.
    std::vector<std::pair<double, double>> rows;
    for (const Sample* s : train) rows.push_back({Apply(knots, s->raw), s->age});
    const Band band = FitBand(rows);
    for (const Sample* s : test) {
      const char* name = BandName(s->age);
      const double c = Apply(knots, s->raw);
      r.raw_err[name].push_back(std::abs(s->raw - s->age));
      r.cv_err[name].push_back(std::abs(c - s->age));
      r.cv_signed_raw[name].push_back(s->raw - s->age);
      r.cv_signed[name].push_back(c - s->age);
      const int bin = BandBin(c);
      const double lo = std::max(0.0, c - band.below[bin]), hi = c + band.above[bin];
      r.total[name]++;
      if (s->age >= lo && s->age < hi + 1) r.covered[name]++;  // ages are whole years
      r.width[name].push_back(hi - lo);
    }
  }
  r.knots = FitCorrection(found);
  std::vector<std::pair<double, double>> rows;
  for (const Sample* s : found) rows.push_back({Apply(r.knots, s->raw), s->age});
  r.band = FitBand(rows);
  return r;
}

double Mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / v.size();
}

}  // namespace

// The shipped estimate by the face's |yaw|: photos, mean absolute error, bias, how often the
// band holds the true age; children (true age < 15) and everyone.
std::string YawTable(const char* detector, const std::vector<Sample>& samples) {
  constexpr double kEdges[] = {0, 10, 20, 30, 40, 180};
  constexpr int kBuckets = std::size(kEdges) - 1;
  std::string out = absl::StrFormat(
      "The shipped age estimate by head turn (fgnet-dev, detector %s, largest face; the "
      "correction was fitted on these subjects)\n\n"
      "| |yaw| (degrees) | ages | photos | MAE (years) | bias | band holds true age |\n"
      "|---|---|---|---|---|---|\n",
      detector);
  for (int children = 1; children >= 0; --children) {
    for (int k = 0; k < kBuckets; ++k) {
      int n = 0, held = 0;
      double err = 0, bias = 0;
      for (const Sample& s : samples) {
        if (s.years < 0 || s.abs_yaw < kEdges[k] || s.abs_yaw >= kEdges[k + 1]) continue;
        if (children && s.age >= 15) continue;
        ++n;
        err += std::abs(s.years - s.age);
        bias += s.years - s.age;
        held += s.age >= s.min_years && s.age <= s.max_years;
      }
      absl::StrAppendFormat(&out, "| %.0f-%s | %s | %d | %s | %s | %s |\n", kEdges[k],
                            k + 1 == kBuckets ? "" : absl::StrCat(kEdges[k + 1]),
                            children ? "0-14" : "all", n,
                            n ? absl::StrFormat("%.2f", err / n) : "-",
                            n ? absl::StrFormat("%+.2f", bias / n) : "-",
                            n ? absl::StrFormat("%.0f%%", 100.0 * held / n) : "-");
    }
  }
  return out;
}

int main(int argc, char** argv) {
  const char* env_data = std::getenv("HOMEWARD_SHARED_DATA");
  std::string data = env_data ? env_data : "../shared/data";
  const char* env_age = std::getenv("HOMEWARD_AGE_MODEL");
  std::string age_model = env_age ? env_age : "models/faceres-deep_3.0.4.onnx";
  const char* env_rec = std::getenv("HOMEWARD_RECOGNITION_MODEL");
  std::string recognition = env_rec ? env_rec : "models/faceapi_1.7.15_resnet.dat";
  std::string paddings = absl::StrCat(embed::kAgeCropPadding);
  std::string csv, dump_dir, dump_files;
  bool aligned = false, rgb255 = false, yaw_table = false;
  embed::DetectorKind detector = embed::DetectorKind::kHog;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--data")
      data = FlagValue(argc, argv, &i);
    else if (a == "--age-model")
      age_model = FlagValue(argc, argv, &i);
    else if (a == "--recognition-model")
      recognition = FlagValue(argc, argv, &i);
    else if (a == "--padding")
      paddings = FlagValue(argc, argv, &i);
    else if (a == "--csv")
      csv = FlagValue(argc, argv, &i);
    else if (a == "--aligned")
      aligned = true;
    else if (a == "--rgb255")
      rgb255 = true;
    else if (a == "--unbalanced")
      balance_bands = false;
    else if (a == "--dump-chips")
      dump_dir = FlagValue(argc, argv, &i);
    else if (a == "--dump")
      dump_files = FlagValue(argc, argv, &i);
    else if (a == "--yaw-table")
      yaw_table = true;
    else if (a == "--detector") {
      auto kind = embed::ParseDetectorKind(FlagValue(argc, argv, &i));
      if (!kind.ok()) {
        std::fprintf(stderr, "%s\n", std::string(kind.status().message()).c_str());
        return 2;
      }
      detector = *kind;
    }
    else {
      std::fprintf(stderr,
                   "unknown flag %s (see the comment at the top of age_estimate_bench.cc)\n",
                   a.c_str());
      return 2;
    }
  }
  const std::string root = data + "/fgnet-dev";
  std::vector<Sample> base;
  {
    std::ifstream in(root + "/index.csv");
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
      std::vector<std::string> f = absl::StrSplit(line, ',');
      if (f.size() != 3) continue;
      Sample s;
      s.file = f[0];
      s.subject = std::stoi(f[1]);
      s.age = std::stoi(f[2]);
      base.push_back(s);
    }
  }
  if (base.empty()) {
    std::fprintf(stderr, "no fgnet-dev index at %s/index.csv\n", root.c_str());
    return 1;
  }
  std::vector<std::string> bytes;
  for (const Sample& s : base) bytes.push_back(ReadFile(root + "/images/" + s.file));

  std::vector<Result> results;
  std::vector<std::string> yaw_tables;
  std::FILE* csv_out = csv.empty() ? nullptr : std::fopen(csv.c_str(), "w");
  if (csv_out) std::fprintf(csv_out, "padding,file,subject,age,raw\n");
  for (absl::string_view p : absl::StrSplit(paddings, ',')) {
    embed::PipelineOptions o;
    o.recognition_model_path = recognition;
    o.age_model_path = age_model;
    o.age_crop_padding = std::stod(std::string(p));
    o.age_crop_aligned = aligned;
    o.age_input = rgb255 ? embed::AgeInput::kRgb255 : embed::AgeInput::kCaffeBgr;
    o.mirror_augment = false;  // descriptors are not used here
    o.detector = detector;
    if (detector == embed::DetectorKind::kCnn) {
      const char* env_det = std::getenv("HOMEWARD_FACE_DETECTOR_MODEL");
      o.face_detector_model_path = env_det ? env_det : "models/faceboxes_3.0.4.onnx";
    }
    auto pipeline = embed::FacePipeline::Create(o);
    if (!pipeline.ok()) {
      std::fprintf(stderr, "%s\n", std::string(pipeline.status().message()).c_str());
      return 1;
    }
    if (!dump_dir.empty()) {
      // The age crops of the named photos as raw 224x224 RGB (the references' inputs).
      fs::create_directories(dump_dir);
      for (absl::string_view file : absl::StrSplit(dump_files, ',', absl::SkipEmpty())) {
        auto chips = (*pipeline)->AgeChips(ReadFile(root + "/images/" + std::string(file)));
        if (!chips.ok() || chips->empty()) {
          std::fprintf(stderr, "%s: no face\n", std::string(file).c_str());
          return 1;
        }
        std::ofstream(absl::StrCat(dump_dir, "/", file, ".rgb"), std::ios::binary)
            .write(reinterpret_cast<const char*>(chips->front().rgb.data()),
                   chips->front().rgb.size());
      }
      return 0;
    }
    std::vector<std::string_view> views(bytes.begin(), bytes.end());
    const auto t0 = homeward::bench::Clock::now();
    auto faces = (*pipeline)->ProcessMany(views);
    const double secs = homeward::bench::Seconds(t0);
    std::vector<Sample> samples = base;
    for (size_t i = 0; i < samples.size(); ++i) {
      if (!faces[i].ok() || faces[i]->faces.empty()) continue;
      const embed::Face* best = &faces[i]->faces[0];
      for (const auto& f : faces[i]->faces)
        if (f.box.width > best->box.width) best = &f;
      if (best->age.known) {
        samples[i].raw = best->age.raw_years;
        samples[i].years = best->age.years;
        samples[i].min_years = best->age.min_years;
        samples[i].max_years = best->age.max_years;
        samples[i].abs_yaw = std::abs(best->quality.yaw_degrees);
      }
      if (csv_out) {
        std::fprintf(csv_out, "%s,%s,%d,%.0f,%.4f\n", std::string(p).c_str(),
                     samples[i].file.c_str(), samples[i].subject, samples[i].age, samples[i].raw);
      }
    }
    std::fprintf(stderr, "padding %s: %zu photos in %.0f s\n", std::string(p).c_str(), views.size(),
                 secs);
    results.push_back(Evaluate(o.age_crop_padding, samples));
    if (yaw_table) yaw_tables.push_back(YawTable(embed::DetectorKindName(detector), samples));
  }
  if (csv_out) std::fclose(csv_out);

  std::vector<std::string> args(argv, argv + argc);
  args[0] = fs::path(args[0]).filename().string();
  std::printf("Age from the face, fgnet-dev (%zu photos, %d subjects), leave-one-subject-out\n",
              base.size(),
              static_cast<int>(std::set<int>([&] {
                                 std::set<int> s;
                                 for (const Sample& x : base) s.insert(x.subject);
                                 return s;
                               }())
                                   .size()));
  std::printf("command: %s\n\n", absl::StrJoin(args, " ").c_str());
  std::printf(
      "| crop padding | true age | photos | MAE raw | bias raw | MAE corrected | bias corrected | "
      "band holds true age | mean band width |\n|---|---|---|---|---|---|---|---|---|\n");
  for (const Result& r : results) {
    for (const char* b : kBands) {
      auto it = r.cv_err.find(b);
      if (it == r.cv_err.end()) continue;
      std::printf("| %.2f | %s | %zu | %.2f | %+.2f | %.2f | %+.2f | %.0f%% | %.1f |\n", r.padding,
                  b, it->second.size(), Mean(r.raw_err.at(b)), Mean(r.cv_signed_raw.at(b)),
                  Mean(it->second), Mean(r.cv_signed.at(b)),
                  100.0 * r.covered.at(b) / r.total.at(b), Mean(r.width.at(b)));
    }
    std::printf("| %.2f | (no face found: %d photos) | | | | | | | |\n", r.padding, r.no_face);
  }
  // The tables of the last padding, for embed/internal/age_correction.h.
  const Result& r = results.back();
  std::printf(
      "\nembed/internal/age_correction.h for padding %.2f (fitted on every fgnet-dev subject):\n",
      r.padding);
  std::vector<std::string> knots, below, above;
  for (size_t i = 0; i < r.knots.size(); ++i)
    knots.push_back(absl::StrFormat("{%g, %.2f}", kRawKnots[i], r.knots[i]));
  for (size_t b = 0; b + 1 < std::size(kBandBins); ++b) {
    const double centre =
        b + 2 < std::size(kBandBins) ? (kBandBins[b] + kBandBins[b + 1]) / 2 : kBandBins[b] + 10;
    below.push_back(absl::StrFormat("{%g, %.2f}", centre, r.band.below[b]));
    above.push_back(absl::StrFormat("{%g, %.2f}", centre, r.band.above[b]));
  }
  std::printf("inline constexpr Knot kAgeCorrection[] = {%s};\n",
              absl::StrJoin(knots, ", ").c_str());
  std::printf("inline constexpr Knot kAgeBandBelow[] = {%s};\n",
              absl::StrJoin(below, ", ").c_str());
  std::printf("inline constexpr Knot kAgeBandAbove[] = {%s};\n",
              absl::StrJoin(above, ", ").c_str());
  for (const std::string& t : yaw_tables) std::printf("\n%s", t.c_str());
  return 0;
}
