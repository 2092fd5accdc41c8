// age_calibrate: fits Homeward's age-aware calibration (distance -> confidence by age-gap band
// and younger-face age band) on FG-NET (genuine pairs across years, child impostors) and LFW
// (adult impostors and same-age genuines), evaluates it with leave-subjects-out
// cross-validation, and writes models/age_calibration_v1.json (read by gallery/calibration.h).
//
//   age_calibrate [--data DIR] [--cache FILE] [--out FILE] [--lfw-identities N]
//                 [--lfw-genuine-pairs N] [--folds K] [--shrink K] [--seed S]
//
// Method (also recorded in the output file):
//   P(same | d, cell) = 1 / (1 + exp(-(a + b d))), b < 0, one (a, b) per cell = gap band x
//   younger-age band, fitted by weighted logistic regression (Newton) with genuine and impostor
//   pairs reweighted to equal total weight in every cell (prior P(same) = 0.5: the confidence is
//   the likelihood ratio read as a probability at even odds). Shrinkage: a cell's fit includes
//   `shrink` pseudo-pairs on a distance grid labelled with its parent's probabilities (cell ->
//   gap band -> global), so a cell with few genuine pairs stays near its parent; the real pairs
//   count with their effective size 4 Ng Ni / (Ng + Ni). The slope is capped at -1 per unit
//   distance so every cell is strictly decreasing in distance.
//
// Descriptors: FacePipeline::ProcessMany, the face nearest the image centre; an image with no
// detected face is described by ProcessBox on a central box (counted). --cache keeps them.
//
// Section (d) measures age-consistent search (issue 12) with gallery/age.h's CheckAge and
// DatedGapYears on synthetic birth and photo dates; it is recorded under
// evaluation.age_consistent_search and does not change the fitted curves. Its ranking (3)
// (CheckAge filter, then distance: the product's ranking) supplies the LARGE_AGE_GAP caveat.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "embed/face_pipeline.h"
#include "base/civil_date.h"
#include "gallery/age.h"

namespace {

namespace fs = std::filesystem;
using homeward::embed::Descriptor;
using homeward::embed::FacePipeline;
using homeward::embed::PhotoFaces;
using homeward::embed::PipelineOptions;
using Json = nlohmann::ordered_json;

constexpr int kVersion = 1;
// Lower edges of the bands (years); the last band is open.
constexpr double kGapEdges[] = {0, 3, 6, 11, 21};
constexpr double kYoungEdges[] = {0, 5, 10, 15};
constexpr int kGapBands = 5, kYoungBands = 4;
const char* kGapNames[] = {"0-2", "3-5", "6-10", "11-20", "21+"};
const char* kYoungNames[] = {"0-4", "5-9", "10-14", "15+"};
constexpr double kMaxSlope = -1.0;        // b <= -1: strictly decreasing in distance
constexpr double kThreshold = 0.6;        // dlib's same-person distance
constexpr double kYoungChildAge = 5;      // YOUNG_CHILD: a face under this age
constexpr double kChildImpostorAge = 12;  // impostor rate measured among children under this
// Identification report bins (years between the gallery photo and the probe).
constexpr int kIdBins = 4;
const char* kIdBinNames[] = {"1-3", "4-7", "8-12", "13+"};
int IdBin(int gap) { return gap <= 3 ? 0 : gap <= 7 ? 1 : gap <= 12 ? 2 : 3; }

int GapBand(double gap) {
  int b = 0;
  for (int i = 0; i < kGapBands; ++i)
    if (gap >= kGapEdges[i]) b = i;
  return b;
}
int YoungBand(double age) {
  int b = 0;
  for (int i = 0; i < kYoungBands; ++i)
    if (age >= kYoungEdges[i]) b = i;
  return b;
}

std::string Flag(int argc, char** argv, const std::string& name, const std::string& def) {
  for (int i = 1; i + 1 < argc; ++i)
    if (argv[i] == name) return argv[i + 1];
  return def;
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

// ------------------------------------------------------------------------ descriptor cache
struct Described {
  Descriptor d{};
  bool fallback = false;  // no face detected: central box
};

// Binary cache: records of (u32 path length, path, u8 fallback, 128 floats), appended.
class Cache {
 public:
  explicit Cache(std::string path) : path_(std::move(path)) {
    if (path_.empty()) return;
    std::ifstream in(path_, std::ios::binary);
    for (;;) {
      uint32_t n = 0;
      if (!in.read(reinterpret_cast<char*>(&n), 4) || n > 4096) break;
      std::string key(n, '\0');
      Described v;
      uint8_t fb = 0;
      if (!in.read(key.data(), n) || !in.read(reinterpret_cast<char*>(&fb), 1) ||
          !in.read(reinterpret_cast<char*>(v.d.data()), sizeof(float) * v.d.size()))
        break;
      v.fallback = fb != 0;
      map_[key] = v;
    }
  }
  const Described* Find(const std::string& key) const {
    auto it = map_.find(key);
    return it == map_.end() ? nullptr : &it->second;
  }
  void Put(const std::string& key, const Described& v) {
    map_[key] = v;
    if (path_.empty()) return;
    std::ofstream out(path_, std::ios::binary | std::ios::app);
    uint32_t n = static_cast<uint32_t>(key.size());
    uint8_t fb = v.fallback;
    out.write(reinterpret_cast<const char*>(&n), 4);
    out.write(key.data(), n);
    out.write(reinterpret_cast<const char*>(&fb), 1);
    out.write(reinterpret_cast<const char*>(v.d.data()), sizeof(float) * v.d.size());
  }
  size_t size() const { return map_.size(); }

 private:
  std::string path_;
  std::map<std::string, Described> map_;
};

// Describes `files` (keys relative to `root`), using and filling the cache. Returns false on
// an unreadable image.
bool DescribeAll(const std::string& root, const std::vector<std::string>& files, Cache* cache,
                 std::unique_ptr<FacePipeline>* pipeline, int* computed) {
  std::vector<std::string> todo;
  for (const auto& f : files)
    if (!cache->Find(root + "|" + f)) todo.push_back(f);
  if (todo.empty()) return true;
  if (!*pipeline) {
    PipelineOptions o;
    o.recognition_model_path = ModelPath();
    auto p = FacePipeline::Create(o);
    if (!p.ok()) {
      std::fprintf(stderr, "%s\n", std::string(p.status().message()).c_str());
      return false;
    }
    *pipeline = std::move(*p);
  }
  const auto t0 = std::chrono::steady_clock::now();
  const size_t chunk = 32;
  for (size_t s = 0; s < todo.size(); s += chunk) {
    std::vector<std::string> bytes;
    for (size_t i = s; i < std::min(todo.size(), s + chunk); ++i)
      bytes.push_back(ReadFile(root + "/" + todo[i]));
    std::vector<std::string_view> views(bytes.begin(), bytes.end());
    auto results = (*pipeline)->ProcessMany(views);
    for (size_t i = 0; i < results.size(); ++i) {
      absl::StatusOr<PhotoFaces> r = results[i];
      Described v;
      if (r.ok() && r->faces.empty()) {
        // The face is roughly centred in both sets: describe the central box.
        v.fallback = true;
        const int w = r->width, h = r->height;
        const int side = std::max(8, static_cast<int>(0.45 * std::min(w, h)));
        r = (*pipeline)->ProcessBox(views[i], {(w - side) / 2, (h - side) / 2, side, side});
      }
      if (!r.ok() || r->faces.empty()) {
        std::fprintf(stderr, "%s: %s\n", todo[s + i].c_str(),
                     r.ok() ? "no face" : std::string(r.status().message()).c_str());
        return false;
      }
      const double cx = r->width / 2.0, cy = r->height / 2.0;
      size_t centre = 0;
      double best = 1e18;
      for (size_t k = 0; k < r->faces.size(); ++k) {
        const auto& b = r->faces[k].box;
        const double d = std::hypot(b.x + b.width / 2.0 - cx, b.y + b.height / 2.0 - cy);
        if (d < best) best = d, centre = k;
      }
      v.d = r->faces[centre].descriptor;
      cache->Put(root + "|" + todo[s + i], v);
      ++*computed;
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "\r%zu/%zu images described (%.0f s)", std::min(todo.size(), s + chunk),
                 todo.size(), secs);
  }
  std::fprintf(stderr, "\n");
  return true;
}

// ---------------------------------------------------------------------------------- data
struct Image {
  std::string file;
  int subject = -1;  // FG-NET subject; -1 for LFW
  int age = -1;      // years; -1 unknown (LFW)
  int lfw_identity = -1;
  Descriptor d{};
  bool fallback = false;
};

struct PairRec {
  float d;
  bool same;
  int gap_band, young_band;  // -1: unknown ages (pooled fit only)
  int subj_a, subj_b;        // FG-NET subjects, -1 for LFW
  int gap, younger;          // years (FG-NET), -1 for LFW
};

double Dist(const Descriptor& a, const Descriptor& b) {
  return homeward::embed::DescriptorDistance(a, b);
}

// --------------------------------------------------------------------------------- model
struct Logistic {
  double a = 0, b = kMaxSlope;
  double n_genuine = 0, n_impostor = 0;
  double P(double d) const { return 1 / (1 + std::exp(-(a + b * d))); }
  double Logit(double d) const { return a + b * d; }
};

struct Model {
  Logistic global;
  Logistic gap[kGapBands];
  Logistic cell[kGapBands][kYoungBands];
  const Logistic& For(int gap_band, int young_band) const {
    return gap_band < 0 ? global : cell[gap_band][young_band];
  }
  // The lowest logit of the table at d: the curve for a face of unknown age under the
  // "strictest" policy (no age-drift leniency can be claimed without an age).
  double StrictestLogit(double d) const {
    double lo = global.Logit(d);
    for (const auto& row : cell)
      for (const auto& c : row) lo = std::min(lo, c.Logit(d));
    return lo;
  }
  double UnknownLogit(double d, bool strictest) const {
    return strictest ? StrictestLogit(d) : global.Logit(d);
  }
};

struct WPoint {
  double d, y, w;
};

// Weighted logistic regression with soft labels; slope capped at kMaxSlope.
Logistic FitPoints(const std::vector<WPoint>& pts, Logistic start) {
  double a = start.a, b = std::min(start.b, kMaxSlope);
  auto newton = [&](bool fit_slope) {
    for (int it = 0; it < 100; ++it) {
      double ga = 0, gb = 0, haa = 1e-9, hab = 0, hbb = 1e-9;
      for (const auto& p : pts) {
        const double q = 1 / (1 + std::exp(-(a + b * p.d)));
        const double r = p.w * (q - p.y), s = p.w * q * (1 - q);
        ga += r, gb += r * p.d;
        haa += s, hab += s * p.d, hbb += s * p.d * p.d;
      }
      hbb += 1e-6;  // keeps a separable set finite
      double da, db;
      if (fit_slope) {
        const double det = haa * hbb - hab * hab;
        da = (hbb * ga - hab * gb) / det;
        db = (haa * gb - hab * ga) / det;
      } else {
        da = ga / haa, db = 0;
      }
      const double step =
          std::max(std::abs(da), std::abs(db)) > 5 ? 5 / std::max(std::abs(da), std::abs(db)) : 1;
      a -= step * da, b -= step * db;
      if (std::abs(da) + std::abs(db) < 1e-9) break;
    }
  };
  newton(true);
  if (!(b <= kMaxSlope)) {
    b = kMaxSlope;
    newton(false);
  }
  Logistic out;
  out.a = a, out.b = b;
  return out;
}

// Fits one level: `pairs` (balanced, counted at their effective size) plus `shrink` pseudo-pairs
// labelled by `parent` (none when parent is null).
Logistic FitLevel(const std::vector<const PairRec*>& pairs, const Logistic* parent, double shrink) {
  double ng = 0, ni = 0;
  for (const auto* p : pairs) (p->same ? ng : ni) += 1;
  std::vector<WPoint> pts;
  if (ng > 0 && ni > 0) {
    const double neff = 4 * ng * ni / (ng + ni);
    for (const auto* p : pairs)
      pts.push_back({p->d, p->same ? 1.0 : 0.0, neff / 2 / (p->same ? ng : ni)});
  }
  if (parent != nullptr) {
    const int grid = 17;
    for (int i = 0; i < grid; ++i) {
      const double d = 0.2 + 0.05 * i;
      pts.push_back({d, parent->P(d), shrink / grid});
    }
  }
  Logistic out = parent ? *parent : Logistic{};
  if (!pts.empty()) out = FitPoints(pts, parent ? *parent : Logistic{8, -14});
  out.n_genuine = ng, out.n_impostor = ni;
  return out;
}

Model Fit(const std::vector<PairRec>& pairs, const std::set<int>& held_out, double shrink) {
  auto use = [&](const PairRec& p) {
    return !held_out.count(p.subj_a) && !held_out.count(p.subj_b);
  };
  std::vector<const PairRec*> all, by_gap[kGapBands], by_cell[kGapBands][kYoungBands];
  for (const auto& p : pairs) {
    if (!use(p)) continue;
    all.push_back(&p);
    if (p.gap_band < 0) continue;
    by_gap[p.gap_band].push_back(&p);
    by_cell[p.gap_band][p.young_band].push_back(&p);
  }
  Model m;
  m.global = FitLevel(all, nullptr, 0);
  for (int g = 0; g < kGapBands; ++g) {
    m.gap[g] = FitLevel(by_gap[g], &m.global, shrink);
    for (int y = 0; y < kYoungBands; ++y) m.cell[g][y] = FitLevel(by_cell[g][y], &m.gap[g], shrink);
  }
  return m;
}

// ECE with genuine and impostor pairs reweighted to equal totals (the prior of the model).
struct EceAcc {
  double wg[10] = {}, wi[10] = {}, pg[10] = {}, pi[10] = {};
  double ng = 0, ni = 0;
  void Add(double p, bool same) {
    const int bin = std::min(9, static_cast<int>(p * 10));
    (same ? wg : wi)[bin] += 1;
    (same ? pg : pi)[bin] += p;
    (same ? ng : ni) += 1;
  }
  double Ece() const {
    if (ng == 0 || ni == 0) return NAN;
    double ece = 0;
    for (int i = 0; i < 10; ++i) {
      const double w = 0.5 * wg[i] / ng + 0.5 * wi[i] / ni;
      if (w == 0) continue;
      const double y = 0.5 * wg[i] / ng;
      const double p = 0.5 * pg[i] / ng + 0.5 * pi[i] / ni;
      ece += std::abs(y - p);
    }
    return ece;
  }
};

Json LogisticJson(const Logistic& l) {
  Json j;
  j["a"] = std::round(l.a * 1e6) / 1e6;
  j["b"] = std::round(l.b * 1e6) / 1e6;
  j["genuine_pairs"] = static_cast<int64_t>(l.n_genuine);
  j["impostor_pairs"] = static_cast<int64_t>(l.n_impostor);
  return j;
}

double R4(double x) { return std::isnan(x) ? -1 : std::round(x * 1e4) / 1e4; }

std::vector<std::pair<std::string, int>> ReadSamePairs(const std::string& path, int limit) {
  std::ifstream in(path);
  int n = 0;
  in >> n;
  std::vector<std::pair<std::string, int>> out;
  for (int k = 0; k < n && static_cast<int>(out.size()) / 2 < limit; ++k) {
    std::string p;
    int i, j;
    in >> p >> i >> j;
    out.push_back({p, i});
    out.push_back({p, j});
  }
  return out;
}

// ------------------------------------------------------ (d) age-consistent search (issue 12)
// "Age must never work against the child": gallery/age.h removes candidates whose age cannot be
// the query child's (CheckAge) and measures the gap as the time between dated photos
// (DatedGapYears). FG-NET has ages but no dates, so every subject gets a synthetic birth date
// and every photo a date that matches its age.
using homeward::gallery::AgeCheck;
using homeward::gallery::AgeEvidence;
using homeward::gallery::AgeVerdictCode;
using homeward::gallery::CheckAge;
using homeward::gallery::DatedGapYears;

constexpr char kBirthFirst[] = "1985-01-01", kBirthLast[] = "2008-12-31";
constexpr char kLfwFirst[] = "2002-01-01", kLfwLast[] = "2007-12-31";  // LFW's news photos
constexpr int kLfwAgeMin = 20, kLfwAgeMax = 65;
constexpr int kVolunteerYears = 2;  // the probe's age as a volunteer's +-2-year range
constexpr int kNoRank = 1 << 30;    // the true match was filtered out
// Rankings of (d): distance (photo only); the shipped calibrated ranking with the probe's age
// (undated age difference); distance among age-consistent faces; calibrated with the dated gap
// among age-consistent faces.
constexpr int kRankings = 4;
const char* kRankingNames[kRankings] = {"distance, photo only", "current calibrated",
                                        "age-consistent, distance",
                                        "age-consistent, dated calibrated"};
const char* kRankingKeys[kRankings] = {"distance_photo_only", "current_calibrated",
                                       "consistent_distance", "consistent_dated_calibrated"};
constexpr int kConsistentDistance = 2;  // ranking (3), the one the gallery ships
// Distractor evidence of (d): [0] adults of LFW's years; [kFairness] gallery children's ages.
constexpr int kVariants = 2, kFairness = 1;
// Case scoring of (d): the youngest photo only; the best distance of the case's age-consistent
// photos; the distance of the age-consistent photo closest in age to the query.
constexpr int kCaseScorings = 3;
const char* kCaseNames[kCaseScorings] = {"one photo (youngest)", "two photos, best distance",
                                         "two photos, closest age"};
const char* kCaseKeys[kCaseScorings] = {"one_photo", "two_photos_best_distance",
                                        "two_photos_closest_age"};
constexpr int kRanks[3] = {1, 10, 50};

int64_t Days(const std::string& date) {
  double d = 0;
  homeward::gallery::DaysOf(date, &d);
  return std::llround(d);
}

using homeward::DateOfDays;

// The day `years` calendar years after `day` (29 February becomes 28 February).
int64_t AddYears(int64_t day, int years) {
  std::string s = DateOfDays(day);
  const int y = std::stoi(s.substr(0, 4)) + years;
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (s.substr(5) == "02-29" && !leap) s.replace(8, 2, "28");
  return Days(absl::StrFormat("%04d", y) + s.substr(4));
}

// A photo at `age` whole years of a child born on `birth`: a uniform day in the year the child
// is `age` (true age in [age, age + 1)).
int64_t PhotoDay(int64_t birth, int age, std::mt19937* rng) {
  return AddYears(birth, age) + std::uniform_int_distribution<int>(0, 364)(*rng);
}

AgeEvidence Evidence(int64_t photo_day, double age_min, double age_max, bool estimated) {
  AgeEvidence e;
  e.photo_date = DateOfDays(photo_day);
  e.age_min = age_min, e.age_max = age_max;
  e.age_estimated = estimated;
  return e;
}

// The volunteer's evidence for a probe photographed on `day` at `age` whole years.
AgeEvidence ProbeEvidence(int64_t day, int age) {
  return Evidence(day, std::max(0, age - kVolunteerYears), age + kVolunteerYears, true);
}

// The shipped ranking (gallery.cc GapBetween + Calibration::CurveFor): the gap is the undated
// difference of the ages, its band chosen by the middle of [gap.min, gap.max].
double CurrentLogit(const Model& m, double d, const AgeEvidence& q, const AgeEvidence& c) {
  const double gap_min =
      std::max(0.0, std::max(q.age_min, c.age_min) - std::min(q.age_max, c.age_max));
  const double gap_max = std::max(q.age_max, c.age_max) - std::min(q.age_min, c.age_min);
  const double younger = std::min(q.age_min, c.age_min);
  return m.For(GapBand(std::max(0.0, (gap_min + gap_max) / 2)), YoungBand(younger)).Logit(d);
}

// The date-aware ranking: the gap is the time between the photos (DatedGapYears).
double DatedLogit(const Model& m, double d, const AgeEvidence& q, const AgeEvidence& c) {
  double gap_min = 0, gap_max = 0, younger = 0;
  if (!DatedGapYears(q, c, &gap_min, &gap_max, &younger)) return m.StrictestLogit(d);
  return m.For(GapBand(std::max(0.0, (gap_min + gap_max) / 2)), YoungBand(younger)).Logit(d);
}

// Hit counts of one table: per identification bin, and "all" at index kIdBins.
template <int kColumns>
struct HitTable {
  int probes[kIdBins + 1] = {};
  int hits[kIdBins + 1][kColumns][3] = {};
  void Add(int bin, const int (&rank)[kColumns]) {
    for (int b : {bin, kIdBins}) {
      ++probes[b];
      for (int c = 0; c < kColumns; ++c)
        for (int q = 0; q < 3; ++q) hits[b][c][q] += rank[c] <= kRanks[q];
    }
  }
  double Rate(int b, int c, int q) const {
    return probes[b] ? double(hits[b][c][q]) / probes[b] : 0;
  }
  // One markdown row per bin; columns grouped by rank (rank-1 of every column, then rank-10 ...).
  void Print(const char* const (&names)[kColumns]) const {
    std::printf("| age gap | probes |");
    for (int q = 0; q < 3; ++q)
      for (int c = 0; c < kColumns; ++c) std::printf(" rank-%d %s |", kRanks[q], names[c]);
    std::printf("\n|---|---|");
    for (int i = 0; i < 3 * kColumns; ++i) std::printf("---|");
    std::printf("\n");
    for (int b = 0; b <= kIdBins; ++b) {
      std::printf("| %s | %d |", b < kIdBins ? kIdBinNames[b] : "all", probes[b]);
      for (int q = 0; q < 3; ++q)
        for (int c = 0; c < kColumns; ++c) std::printf(" %.1f%% |", 100 * Rate(b, c, q));
      std::printf("\n");
    }
  }
  Json ToJson(const char* const (&keys)[kColumns]) const {
    Json rows = Json::array();
    for (int b = 0; b <= kIdBins; ++b) {
      Json row = {{"gap_years", b < kIdBins ? kIdBinNames[b] : "all"}, {"probes", probes[b]}};
      for (int c = 0; c < kColumns; ++c)
        for (int q = 0; q < 3; ++q) {
          row[absl::StrFormat("rank%d_%s", kRanks[q], keys[c])] = R4(Rate(b, c, q));
          row[absl::StrFormat("rank%d_%s_hits", kRanks[q], keys[c])] = hits[b][c][q];
        }
      rows.push_back(row);
    }
    return rows;
  }
};

// LARGE_AGE_GAP's band: the band after the largest drop in the rank-10 hit rate between
// consecutive gap bands that have at least 5 probes.
int SharpestDropBand(const int (&probes)[kGapBands], const int (&hits10)[kGapBands]) {
  int band = kGapBands - 1;
  double best_drop = -1;
  int prev = -1;
  for (int g = 0; g < kGapBands; ++g) {
    if (probes[g] < 5) continue;
    if (prev >= 0) {
      const double drop = double(hits10[prev]) / probes[prev] - double(hits10[g]) / probes[g];
      if (drop > best_drop) best_drop = drop, band = g;
    }
    prev = g;
  }
  return band;
}

struct AgeSearchInput {
  const std::vector<Image>* images;
  size_t n_fg = 0, n_distractors = 0;
  const std::map<int, size_t>* gallery_of;  // subject -> youngest photo at age <= 10
  const std::vector<Model>* fold_models;
  const std::map<int, int>* fold_of;
  unsigned seed = 1;
};

// Section (d)'s JSON record, and the rank-10 hits of every ranking by calibration gap band
// (GapBand of the true age gap, the bands of (c)); the LARGE_AGE_GAP caveat reads ranking (3),
// [kFairness][kConsistentDistance].
struct AgeSearchResult {
  Json json;
  int band_probes[kGapBands] = {};
  int band_hits10[kVariants][kRankings][kGapBands] = {};
};

// Runs section (d), prints its tables and returns its record.
AgeSearchResult AgeConsistentSearch(const AgeSearchInput& in) {
  AgeSearchResult result;
  const std::vector<Image>& images = *in.images;
  const size_t n_fg = in.n_fg, n_all = in.n_fg + in.n_distractors;
  // Synthetic dates: a birth date per subject, a date per photo.
  std::vector<int64_t> day(n_all, 0);
  std::map<int, int64_t> birth;
  {
    std::mt19937 rng(in.seed + 10);
    std::uniform_int_distribution<int64_t> born(Days(kBirthFirst), Days(kBirthLast));
    for (size_t i = 0; i < n_fg; ++i)
      if (!birth.count(images[i].subject)) birth[images[i].subject] = 0;
    for (auto& [s, b] : birth) b = born(rng);
    for (size_t i = 0; i < n_fg; ++i)
      day[i] = PhotoDay(birth[images[i].subject], images[i].age, &rng);
  }
  // Evidence per variant: [0] distractors as adults of LFW's years, [1] as gallery children.
  const char* variant_names[kVariants] = {
      "realistic: adults aged 20-65 photographed 2002-2007",
      "fairness: each given a gallery child's age and a birth date in 1985-2008"};
  const char* variant_keys[kVariants] = {"distractors_adults", "distractors_child_ages"};
  std::vector<AgeEvidence> ev[kVariants];
  std::vector<int> gallery_ages;
  for (const auto& [s, i] : *in.gallery_of) gallery_ages.push_back(images[i].age);
  for (int v = 0; v < kVariants; ++v) {
    ev[v].resize(n_all);
    for (size_t i = 0; i < n_fg; ++i)
      ev[v][i] = Evidence(day[i], images[i].age, images[i].age, false);
  }
  {
    std::mt19937 rng(in.seed + 11);
    std::uniform_int_distribution<int> age(kLfwAgeMin, kLfwAgeMax);
    std::uniform_int_distribution<int64_t> when(Days(kLfwFirst), Days(kLfwLast));
    for (size_t i = n_fg; i < n_all; ++i) {
      const int a = age(rng);
      ev[0][i] = Evidence(when(rng), a, a, false);
    }
  }
  {
    std::mt19937 rng(in.seed + 12);
    std::uniform_int_distribution<int64_t> born(Days(kBirthFirst), Days(kBirthLast));
    std::uniform_int_distribution<size_t> pick(0, gallery_ages.size() - 1);
    for (size_t i = n_fg; i < n_all; ++i) {
      const int64_t b = born(rng);
      const int a = gallery_ages[pick(rng)];
      ev[1][i] = Evidence(PhotoDay(b, a, &rng), a, a, false);
    }
  }
  std::vector<size_t> gallery;
  for (const auto& [s, i] : *in.gallery_of) gallery.push_back(i);
  for (size_t i = n_fg; i < n_all; ++i) gallery.push_back(i);

  // ---- faces: rankings 1-4 per variant
  HitTable<kRankings> table[kVariants];
  int judged_out[kVariants][kIdBins + 1] = {};
  int64_t left_out[kVariants][kIdBins + 1] = {};
  std::vector<std::string> judged_out_why[kVariants];
  std::vector<double> dist(n_all);
  for (size_t pi = 0; pi < n_fg; ++pi) {
    const Image& probe = images[pi];
    auto git = in.gallery_of->find(probe.subject);
    if (git == in.gallery_of->end()) continue;
    const size_t t = git->second;
    const int gap = probe.age - images[t].age;
    if (gap < 1) continue;
    const Model& m = (*in.fold_models)[in.fold_of->at(probe.subject)];
    const AgeEvidence q = ProbeEvidence(day[pi], probe.age);
    for (size_t gi : gallery) dist[gi] = Dist(probe.d, images[gi].d);
    const int bin = IdBin(gap), band = GapBand(gap);
    ++result.band_probes[band];
    for (int v = 0; v < kVariants; ++v) {
      const AgeCheck truth_check = CheckAge(q, ev[v][t]);
      const bool truth_ok = truth_check.consistent();
      const double t_current = CurrentLogit(m, dist[t], q, ev[v][t]);
      const double t_dated = DatedLogit(m, dist[t], q, ev[v][t]);
      int rank[kRankings] = {1, 1, 1, 1};
      int out = 0;
      for (size_t gi : gallery) {
        const bool ok = CheckAge(q, ev[v][gi]).consistent();
        out += !ok;
        if (gi == t) continue;
        rank[0] += dist[gi] < dist[t];
        rank[1] += CurrentLogit(m, dist[gi], q, ev[v][gi]) > t_current;
        if (!ok) continue;
        rank[2] += dist[gi] < dist[t];
        rank[3] += DatedLogit(m, dist[gi], q, ev[v][gi]) > t_dated;
      }
      if (!truth_ok) {
        rank[2] = rank[3] = kNoRank;
        for (int b : {bin, kIdBins}) ++judged_out[v][b];
        judged_out_why[v].push_back(absl::StrFormat(
            "%s (subject %d, age %d, %s, range %.0f-%.0f) vs gallery %s (age %d, %s): %s, "
            "tolerance %.2f y",
            probe.file, probe.subject, probe.age, q.photo_date, q.age_min, q.age_max,
            images[t].file, images[t].age, ev[v][t].photo_date, AgeVerdictCode(truth_check.verdict),
            truth_check.tolerance_years));
      }
      for (int b : {bin, kIdBins}) left_out[v][b] += out;
      table[v].Add(bin, rank);
      for (int r = 0; r < kRankings; ++r) result.band_hits10[v][r][band] += rank[r] <= 10;
    }
  }

  std::printf(
      "(d) Age-consistent search (issue 12, \"Age must never work against the child\"). Synthetic "
      "dates (seed %u): each fgnet-dev subject born on a uniform day in %s..%s, each photo at age "
      "a dated birth + a years + 0..364 days. Gallery = %zu subjects' youngest photo at age <= 10 "
      "(evidence: photo date, age a..a whole years) + %zu LFW distractors. Probes = the subjects' "
      "later photos; with the probe's age, the query is (probe's date, age a-%d..a+%d, "
      "estimated). Rankings: (1) %s; (2) %s: the fold model, gap = undated age difference of the "
      "ranges (band by its middle), as gallery.cc ships; (3) %s: CheckAge filter, then distance; "
      "(4) %s: CheckAge filter, then the fold model with the gap from DatedGapYears (time "
      "between the photos) and its younger age. Rank = 1 + gallery faces strictly better; a true "
      "match removed by the filter is a miss.\n\n",
      in.seed, kBirthFirst, kBirthLast, in.gallery_of->size(), in.n_distractors, kVolunteerYears,
      kVolunteerYears, kRankingNames[0], kRankingNames[1], kRankingNames[2], kRankingNames[3]);
  const char* short_names[kRankings] = {"(1)", "(2)", "(3)", "(4)"};
  Json out;
  out["synthetic_birth_dates"] = absl::StrFormat("%s..%s", kBirthFirst, kBirthLast);
  out["probe_age_range_years"] = kVolunteerYears;
  out["gallery_subjects"] = in.gallery_of->size();
  out["distractors"] = in.n_distractors;
  out["rankings"] =
      Json(std::vector<std::string>(std::begin(kRankingKeys), std::end(kRankingKeys)));
  for (int v = 0; v < kVariants; ++v) {
    std::printf("Distractors %s:\n\n", variant_names[v]);
    table[v].Print(short_names);
    std::printf(
        "\nAge filter (%s): true match judged age-inconsistent, and gallery faces left out per "
        "probe (mean, of %zu):\n\n| age gap | probes | true match inconsistent | faces left out "
        "|\n|---|---|---|---|\n",
        variant_keys[v], gallery.size());
    Json filter = Json::array();
    for (int b = 0; b <= kIdBins; ++b) {
      const int n = table[v].probes[b];
      const double mean_out = n ? double(left_out[v][b]) / n : 0;
      std::printf("| %s | %d | %d | %.1f |\n", b < kIdBins ? kIdBinNames[b] : "all", n,
                  judged_out[v][b], mean_out);
      filter.push_back({{"gap_years", b < kIdBins ? kIdBinNames[b] : "all"},
                        {"probes", n},
                        {"true_match_inconsistent", judged_out[v][b]},
                        {"faces_left_out_mean", R4(mean_out)}});
    }
    for (const auto& why : judged_out_why[v])
      std::printf("  inconsistent true match: %s\n", why.c_str());
    std::printf("\n");
    out[variant_keys[v]] = {{"rankings", table[v].ToJson(kRankingKeys)}, {"age_filter", filter}};
  }

  // ---- the acceptance bar: rank-10 of (3) and (4) against (1)
  Json bar = Json::array();
  for (int v = 0; v < kVariants; ++v) {
    const auto& tb = table[v];
    for (int r : {2, 3}) {
      double worst = 1e9;
      int worst_bin = 0;
      for (int b = 0; b <= kIdBins; ++b) {
        if (tb.probes[b] == 0) continue;
        const double diff = 100 * (tb.Rate(b, r, 1) - tb.Rate(b, 0, 1));
        if (diff < worst) worst = diff, worst_bin = b;
      }
      const bool never_below = worst >= 0;
      // Probes with a 4-12 year gap: the 4-7 and 8-12 bins together.
      const int n412 = tb.probes[1] + tb.probes[2];
      const int base412 = tb.hits[1][0][1] + tb.hits[2][0][1];
      const int new412 = tb.hits[1][r][1] + tb.hits[2][r][1];
      const double gain = n412 ? 100.0 * (new412 - base412) / n412 : 0;
      const bool gain_ok = gain >= 5;
      std::printf(
          "%s: ranking (%d) rank-10 never below ranking (1) in any gap band [distractors %s]: "
          "smallest difference %+.1f points (%s)\n",
          never_below ? "PASS" : "FAIL", r + 1, variant_keys[v], worst,
          worst_bin < kIdBins ? kIdBinNames[worst_bin] : "all");
      std::printf(
          "%s: ranking (%d) rank-10 at least 5 points above ranking (1) for 4-12 year gaps "
          "[distractors %s]: %.1f%% (%d/%d) vs %.1f%% (%d/%d), %+.1f points\n",
          gain_ok ? "PASS" : "FAIL", r + 1, variant_keys[v], n412 ? 100.0 * new412 / n412 : 0,
          new412, n412, n412 ? 100.0 * base412 / n412 : 0, base412, n412, gain);
      bar.push_back({{"distractors", variant_keys[v]},
                     {"ranking", kRankingKeys[r]},
                     {"rank10_never_below_distance", never_below},
                     {"smallest_difference_points", R4(worst)},
                     {"gap_4_12_probes", n412},
                     {"gap_4_12_rank10", R4(n412 ? double(new412) / n412 : 0)},
                     {"gap_4_12_rank10_distance", R4(n412 ? double(base412) / n412 : 0)},
                     {"gap_4_12_at_least_5_points", gain_ok}});
    }
  }
  out["acceptance"] = bar;
  std::printf("\n");

  // ---- cases with several photos (distractors realistic, probe's age, filter on)
  // Each subject's case holds its two youngest photos at age <= 10 (one when it has one); a
  // distractor is a case of one photo. Probes: photos of subjects with two, later than both.
  std::map<int, std::vector<size_t>> case_photos;
  for (const auto& [s, first] : *in.gallery_of) {
    std::vector<size_t> young;
    for (size_t i = 0; i < n_fg; ++i)
      if (images[i].subject == s && images[i].age <= 10) young.push_back(i);
    std::stable_sort(young.begin(), young.end(),
                     [&](size_t a, size_t b) { return images[a].age < images[b].age; });
    young.resize(std::min<size_t>(2, young.size()));
    case_photos[s] = young;  // young[0] == first: both take the first youngest in file order
  }
  HitTable<kCaseScorings> cases;
  int case_truth_out = 0, two_photo_cases = 0;
  for (const auto& [s, photos] : case_photos) two_photo_cases += photos.size() == 2;
  const std::vector<AgeEvidence>& evr = ev[0];
  for (size_t pi = 0; pi < n_fg; ++pi) {
    const Image& probe = images[pi];
    auto cit = case_photos.find(probe.subject);
    if (cit == case_photos.end() || cit->second.size() < 2) continue;
    const int gap = probe.age - images[cit->second[1]].age;  // from the older of the two
    if (gap < 1) continue;
    const AgeEvidence q = ProbeEvidence(day[pi], probe.age);
    const double mid = (q.age_min + q.age_max) / 2;
    // Score of a case under each scoring (lower is better; +inf: no age-consistent photo).
    auto score = [&](const std::vector<size_t>& photos, double(&s)[kCaseScorings]) {
      const double inf = std::numeric_limits<double>::infinity();
      s[0] = s[1] = s[2] = inf;
      double closest = inf;
      for (size_t k = 0; k < photos.size(); ++k) {
        const size_t i = photos[k];
        if (!CheckAge(q, evr[i]).consistent()) continue;
        const double d = Dist(probe.d, images[i].d);
        if (k == 0) s[0] = d;
        s[1] = std::min(s[1], d);
        const double age_off = std::abs(evr[i].age_min - mid);
        if (age_off < closest || (age_off == closest && d < s[2])) closest = age_off, s[2] = d;
      }
    };
    double truth[kCaseScorings];
    score(cit->second, truth);
    int rank[kCaseScorings];
    for (int c = 0; c < kCaseScorings; ++c) rank[c] = std::isinf(truth[c]) ? kNoRank : 1;
    case_truth_out += std::isinf(truth[1]);
    double other[kCaseScorings];
    for (const auto& [s, photos] : case_photos) {
      if (s == probe.subject) continue;
      score(photos, other);
      for (int c = 0; c < kCaseScorings; ++c) rank[c] += other[c] < truth[c];
    }
    for (size_t i = n_fg; i < n_all; ++i) {
      score({i}, other);
      for (int c = 0; c < kCaseScorings; ++c) rank[c] += other[c] < truth[c];
    }
    cases.Add(IdBin(gap), rank);
  }
  std::printf(
      "Cases, not faces: %d subjects' cases hold their two youngest photos at age <= 10, %zu "
      "hold one; %zu distractor cases (realistic adults). Probes: photos of the two-photo "
      "subjects later than both (gap from the older); query with the probe's age, age-consistent "
      "filter on; each case ranked once by its score. True case with no age-consistent photo: "
      "%d.\n\n",
      two_photo_cases, case_photos.size() - two_photo_cases, in.n_distractors, case_truth_out);
  cases.Print(kCaseNames);
  std::printf("\n");
  out["cases"] = {{"two_photo_cases", two_photo_cases},
                  {"one_photo_cases", case_photos.size() - two_photo_cases},
                  {"true_case_without_consistent_photo", case_truth_out},
                  {"rankings", cases.ToJson(kCaseKeys)}};
  result.json = std::move(out);
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string data =
      Flag(argc, argv, "--data", std::string(HOMEWARD_SOURCE_DIR) + "/../shared/data");
  const std::string cache_path = Flag(argc, argv, "--cache", "");
  const std::string out_path = Flag(
      argc, argv, "--out", std::string(HOMEWARD_SOURCE_DIR) + "/models/age_calibration_v1.json");
  const int lfw_identities = std::stoi(Flag(argc, argv, "--lfw-identities", "1200"));
  const int lfw_genuine = std::stoi(Flag(argc, argv, "--lfw-genuine-pairs", "300"));
  const int folds = std::stoi(Flag(argc, argv, "--folds", "5"));
  const double shrink = std::stod(Flag(argc, argv, "--shrink", "40"));
  const unsigned seed = static_cast<unsigned>(std::stoul(Flag(argc, argv, "--seed", "1")));
  // How a face of unknown age is scored: "strictest" (lowest curve of the table) or "pooled".
  const std::string unknown_age = Flag(argc, argv, "--unknown-age", "strictest");
  if (unknown_age != "strictest" && unknown_age != "pooled") {
    std::fprintf(stderr, "--unknown-age must be strictest or pooled\n");
    return 2;
  }
  const bool strict_unknown = unknown_age == "strictest";
  std::vector<std::string> args(argv, argv + argc);
  args[0] = fs::path(args[0]).filename().string();
  const std::string command = absl::StrJoin(args, " ");

  // ---- FG-NET
  const std::string fg_root = data + "/fgnet-dev";
  std::vector<Image> images;
  {
    std::ifstream in(fg_root + "/index.csv");
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
      std::stringstream ss(line);
      std::string file, subject, age;
      if (!std::getline(ss, file, ',') || !std::getline(ss, subject, ',') || !std::getline(ss, age))
        continue;
      Image im;
      im.file = "images/" + file;
      im.subject = std::stoi(subject);
      im.age = std::stoi(age);
      images.push_back(im);
    }
  }
  if (images.empty()) {
    std::fprintf(stderr, "no FG-NET index under %s\n", fg_root.c_str());
    return 1;
  }
  const size_t n_fg = images.size();
  // ---- LFW: the first photo of the first N identities (sorted) + the images of the first
  // same-person pairs of pairsDevTrain.
  const std::string lfw_root = data + "/lfw-view1";
  std::vector<std::string> identities;
  for (const auto& e : fs::directory_iterator(lfw_root))
    if (e.is_directory()) identities.push_back(e.path().filename().string());
  std::sort(identities.begin(), identities.end());
  if (lfw_identities > 0 && static_cast<int>(identities.size()) > lfw_identities) {
    std::mt19937 rng(seed);
    std::shuffle(identities.begin(), identities.end(), rng);
    identities.resize(lfw_identities);
    std::sort(identities.begin(), identities.end());
  }
  std::map<std::string, int> identity_id;
  for (size_t i = 0; i < identities.size(); ++i) {
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(lfw_root + "/" + identities[i]))
      files.push_back(e.path().filename().string());
    std::sort(files.begin(), files.end());
    if (files.empty()) continue;
    Image im;
    im.file = identities[i] + "/" + files[0];
    im.lfw_identity = static_cast<int>(i);
    identity_id[identities[i]] = static_cast<int>(i);
    images.push_back(im);
  }
  const size_t n_distractors = images.size() - n_fg;
  std::vector<std::pair<size_t, size_t>> lfw_same;
  {
    auto same = ReadSamePairs(lfw_root + "/pairsDevTrain.txt", lfw_genuine);
    std::map<std::string, size_t> at;
    for (size_t i = n_fg; i < images.size(); ++i) at[images[i].file] = i;
    for (size_t k = 0; k + 1 < same.size(); k += 2) {
      size_t idx[2];
      for (int s = 0; s < 2; ++s) {
        const auto& [person, n] = same[k + s];
        const std::string f = absl::StrFormat("%s/%s_%04d.jpg", person, person, n);
        auto it = at.find(f);
        if (it == at.end()) {
          Image im;
          im.file = f;
          im.lfw_identity = -2;  // not a distractor
          images.push_back(im);
          it = at.emplace(f, images.size() - 1).first;
        }
        idx[s] = it->second;
      }
      lfw_same.push_back({idx[0], idx[1]});
    }
  }

  // ---- descriptors
  Cache cache(cache_path);
  std::unique_ptr<FacePipeline> pipeline;
  int computed = 0;
  {
    std::vector<std::string> fg_files, lfw_files;
    for (size_t i = 0; i < images.size(); ++i)
      (i < n_fg ? fg_files : lfw_files).push_back(images[i].file);
    if (!DescribeAll(fg_root, fg_files, &cache, &pipeline, &computed) ||
        !DescribeAll(lfw_root, lfw_files, &cache, &pipeline, &computed))
      return 1;
  }
  int fg_fallback = 0, lfw_fallback = 0;
  for (size_t i = 0; i < images.size(); ++i) {
    const Described* v = cache.Find((i < n_fg ? fg_root : lfw_root) + "|" + images[i].file);
    images[i].d = v->d;
    images[i].fallback = v->fallback;
    (i < n_fg ? fg_fallback : lfw_fallback) += v->fallback;
  }
  std::printf(
      "Descriptors: %zu FG-NET images (%d without a detected face: central box), %zu LFW "
      "images (%d central box); %d computed now, the rest from the cache.\n\n",
      n_fg, fg_fallback, images.size() - n_fg, lfw_fallback, computed);

  // ---- pairs
  std::vector<PairRec> pairs;
  for (size_t i = 0; i < n_fg; ++i) {
    for (size_t j = i + 1; j < n_fg; ++j) {
      const Image &x = images[i], &y = images[j];
      PairRec p;
      p.d = static_cast<float>(Dist(x.d, y.d));
      p.same = x.subject == y.subject;
      p.gap = std::abs(x.age - y.age);
      p.younger = std::min(x.age, y.age);
      p.gap_band = GapBand(p.gap);
      p.young_band = YoungBand(p.younger);
      p.subj_a = x.subject, p.subj_b = y.subject;
      pairs.push_back(p);
    }
  }
  const size_t n_fg_pairs = pairs.size();
  // LFW: adults, about the same age: the (0-2, 15+) cell.
  auto lfw_pair = [&](size_t i, size_t j, bool same) {
    PairRec p;
    p.d = static_cast<float>(Dist(images[i].d, images[j].d));
    p.same = same;
    p.gap = -1, p.younger = -1;
    p.gap_band = 0, p.young_band = kYoungBands - 1;
    p.subj_a = p.subj_b = -1;
    pairs.push_back(p);
  };
  for (const auto& [i, j] : lfw_same) lfw_pair(i, j, true);
  {
    std::mt19937 rng(seed + 1);
    std::uniform_int_distribution<size_t> pick(n_fg, n_fg + n_distractors - 1);
    for (size_t i = n_fg; i < n_fg + n_distractors; ++i) {
      for (int k = 0; k < 5; ++k) {
        size_t j = pick(rng);
        if (j != i) lfw_pair(i, j, false);
      }
    }
  }
  int lfw_g = 0, lfw_i = 0, fg_g = 0, fg_i = 0;
  for (size_t k = 0; k < pairs.size(); ++k)
    (k < n_fg_pairs ? (pairs[k].same ? fg_g : fg_i) : (pairs[k].same ? lfw_g : lfw_i)) += 1;
  std::printf(
      "Pairs: FG-NET %d genuine + %d impostor (all pairs); LFW %d genuine (pairsDevTrain) + "
      "%d impostor (random distractor pairs) in the (0-2, 15+) cell.\n\n",
      fg_g, fg_i, lfw_g, lfw_i);

  // ---- subject folds
  std::vector<int> subjects;
  for (size_t i = 0; i < n_fg; ++i) subjects.push_back(images[i].subject);
  std::sort(subjects.begin(), subjects.end());
  subjects.erase(std::unique(subjects.begin(), subjects.end()), subjects.end());
  std::map<int, int> fold_of;
  {
    std::vector<int> s = subjects;
    std::mt19937 rng(seed + 2);
    std::shuffle(s.begin(), s.end(), rng);
    for (size_t i = 0; i < s.size(); ++i) fold_of[s[i]] = static_cast<int>(i % folds);
  }
  std::vector<Model> fold_models(folds);
  for (int f = 0; f < folds; ++f) {
    std::set<int> held;
    for (int s : subjects)
      if (fold_of[s] == f) held.insert(s);
    fold_models[f] = Fit(pairs, held, shrink);
  }

  // ---- (a) ECE per cell (test pairs: both subjects in the held-out fold)
  EceAcc cal_cell[kGapBands][kYoungBands], raw_cell[kGapBands][kYoungBands], cal_gap[kGapBands],
      raw_gap[kGapBands], cal_young[kYoungBands], cal_all, raw_all;
  for (size_t k = 0; k < n_fg_pairs; ++k) {
    const PairRec& p = pairs[k];
    if (fold_of[p.subj_a] != fold_of[p.subj_b]) continue;
    const Model& m = fold_models[fold_of[p.subj_a]];
    const double pc = m.For(p.gap_band, p.young_band).P(p.d);
    const double pr = std::clamp(1 - p.d / 1.2, 0.0, 1.0);
    cal_cell[p.gap_band][p.young_band].Add(pc, p.same);
    raw_cell[p.gap_band][p.young_band].Add(pr, p.same);
    cal_gap[p.gap_band].Add(pc, p.same);
    raw_gap[p.gap_band].Add(pr, p.same);
    cal_young[p.young_band].Add(pc, p.same);
    cal_all.Add(pc, p.same);
    raw_all.Add(pr, p.same);
  }
  std::printf(
      "(a) Expected calibration error, %d-fold leave-subjects-out on fgnet-dev (test pairs: "
      "both faces from held-out subjects; genuine and impostor reweighted to 50/50, the "
      "model's prior; 10 bins). Cell: ECE calibrated / ECE of score=1-d/1.2 (genuine pairs)\n\n",
      folds);
  std::printf("| gap \\ younger age |");
  for (int y = 0; y < kYoungBands; ++y) std::printf(" %s |", kYoungNames[y]);
  std::printf(" whole gap band |\n|---|---|---|---|---|---|\n");
  Json ece_json;
  for (int g = 0; g < kGapBands; ++g) {
    std::printf("| %s |", kGapNames[g]);
    for (int y = 0; y < kYoungBands; ++y) {
      const auto& c = cal_cell[g][y];
      if (c.ng == 0 || c.ni == 0) {
        std::printf(" n/a (%.0f) |", c.ng);
      } else {
        std::printf(" %.3f / %.3f (%.0f) |", c.Ece(), raw_cell[g][y].Ece(), c.ng);
      }
      ece_json[kGapNames[g]][kYoungNames[y]] = {{"ece", R4(c.Ece())},
                                                {"ece_raw_score", R4(raw_cell[g][y].Ece())},
                                                {"genuine_pairs", c.ng},
                                                {"impostor_pairs", c.ni}};
    }
    std::printf(" %.3f / %.3f (%.0f) |\n", cal_gap[g].Ece(), raw_gap[g].Ece(), cal_gap[g].ng);
    ece_json[kGapNames[g]]["all"] = {{"ece", R4(cal_gap[g].Ece())},
                                     {"ece_raw_score", R4(raw_gap[g].Ece())}};
  }
  std::printf("| whole younger band |");
  for (int y = 0; y < kYoungBands; ++y)
    std::printf(" %.3f (%.0f) |", cal_young[y].Ece(), cal_young[y].ng);
  std::printf(" all: %.3f / %.3f (%.0f) |\n\n", cal_all.Ece(), raw_all.Ece(), cal_all.ng);
  ece_json["all"] = {{"ece", R4(cal_all.Ece())}, {"ece_raw_score", R4(raw_all.Ece())}};

  // ---- (b) identification
  // Gallery: each subject's youngest photo at age <= 10, plus the LFW distractors (unknown age:
  // pooled fit). Probes: the subject's photos taken later (gap >= 1).
  std::vector<size_t> gallery;
  std::map<int, size_t> gallery_of;
  for (size_t i = 0; i < n_fg; ++i) {
    if (images[i].age > 10) continue;
    auto it = gallery_of.find(images[i].subject);
    if (it == gallery_of.end() || images[i].age < images[it->second].age)
      gallery_of[images[i].subject] = i;
  }
  for (const auto& [s, i] : gallery_of) gallery.push_back(i);
  for (size_t i = n_fg; i < n_fg + n_distractors; ++i) gallery.push_back(i);
  const int ks[3] = {1, 10, 50};
  int hits_raw[kIdBins][3] = {}, hits_cal[kIdBins][3] = {}, probes_in[kIdBins] = {};
  int band_hits_raw[kGapBands] = {}, band_hits_cal[kGapBands] = {}, band_probes[kGapBands] = {};
  // Diagnostics: who outranks the true child (LFW adults of unknown age vs other children), and
  // the calibrated ranking with unknown-age faces scored on the strictest curve instead.
  int64_t above_lfw[kIdBins] = {}, above_child[kIdBins] = {};
  int hits_strict[kIdBins][3] = {};
  // Fairness check: every distractor given an age drawn from the gallery children's ages, so a
  // ranking cannot separate them from the true children by whether an age is known.
  int hits_aged[kIdBins][3] = {}, band_hits_aged[kGapBands] = {};
  std::vector<int> assigned_age(images.size(), -1);
  {
    std::vector<int> gallery_ages;
    for (const auto& [s, i] : gallery_of) gallery_ages.push_back(images[i].age);
    std::mt19937 rng(seed + 3);
    std::uniform_int_distribution<size_t> pick(0, gallery_ages.size() - 1);
    for (size_t i = n_fg; i < n_fg + n_distractors; ++i) assigned_age[i] = gallery_ages[pick(rng)];
  }
  for (size_t pi = 0; pi < n_fg; ++pi) {
    const Image& probe = images[pi];
    auto git = gallery_of.find(probe.subject);
    if (git == gallery_of.end()) continue;
    const Image& truth = images[git->second];
    const int gap = probe.age - truth.age;
    if (gap < 1) continue;
    const Model& m = fold_models[fold_of[probe.subject]];
    auto key = [&](size_t gi) {
      const Image& g = images[gi];
      const double d = Dist(probe.d, g.d);
      if (g.age < 0) return std::make_pair(d, m.UnknownLogit(d, strict_unknown));
      return std::make_pair(
          d, m.For(GapBand(std::abs(probe.age - g.age)), YoungBand(std::min(probe.age, g.age)))
                 .Logit(d));
    };
    const auto t = key(git->second);
    int rank_raw = 1, rank_cal = 1, rank_strict = 1, rank_aged = 1;
    const int bin = IdBin(gap);
    for (size_t gi : gallery) {
      if (gi == git->second) continue;
      const auto k = key(gi);
      rank_raw += k.first < t.first;
      rank_cal += k.second > t.second;
      const double strict =
          images[gi].age < 0 ? m.UnknownLogit(k.first, !strict_unknown) : k.second;
      rank_strict += strict > t.second;
      if (k.second > t.second) ++(images[gi].age < 0 ? above_lfw : above_child)[bin];
      if (images[gi].age < 0) {
        const int a = assigned_age[gi];
        rank_aged += m.For(GapBand(std::abs(probe.age - a)), YoungBand(std::min(probe.age, a)))
                         .Logit(k.first) > t.second;
      } else {
        rank_aged += k.second > t.second;
      }
    }
    for (int q = 0; q < 3; ++q) hits_aged[bin][q] += rank_aged <= ks[q];
    band_hits_aged[GapBand(gap)] += rank_aged <= 10;
    for (int q = 0; q < 3; ++q) hits_strict[bin][q] += rank_strict <= ks[q];
    ++probes_in[bin];
    for (int q = 0; q < 3; ++q) {
      hits_raw[bin][q] += rank_raw <= ks[q];
      hits_cal[bin][q] += rank_cal <= ks[q];
    }
    const int band = GapBand(gap);
    ++band_probes[band];
    band_hits_raw[band] += rank_raw <= 10;
    band_hits_cal[band] += rank_cal <= 10;
  }
  std::printf(
      "(b) Identification: gallery = %zu fgnet-dev subjects' youngest photo at age <= 10 + %zu "
      "LFW distractors (one photo per identity, age unknown); probes = the subjects' later "
      "photos. Calibrated ranking uses the fold model fitted without the probe's subject.\n\n",
      gallery_of.size(), n_distractors);
  std::printf(
      "| age gap | probes | rank-1 raw | rank-1 calibrated | rank-10 raw | rank-10 calibrated | "
      "rank-50 raw | rank-50 calibrated |\n|---|---|---|---|---|---|---|---|\n");
  Json id_json = Json::array();
  int tot[2][3] = {}, tot_probes = 0;
  for (int b = 0; b < kIdBins; ++b) {
    const double n = std::max(1, probes_in[b]);
    std::printf("| %s | %d |", kIdBinNames[b], probes_in[b]);
    for (int q = 0; q < 3; ++q) {
      std::printf(" %.1f%% | %.1f%% |", 100 * hits_raw[b][q] / n, 100 * hits_cal[b][q] / n);
      tot[0][q] += hits_raw[b][q], tot[1][q] += hits_cal[b][q];
    }
    tot_probes += probes_in[b];
    std::printf("\n");
    id_json.push_back({{"gap_years", kIdBinNames[b]},
                       {"probes", probes_in[b]},
                       {"rank1_raw", R4(hits_raw[b][0] / n)},
                       {"rank1_calibrated", R4(hits_cal[b][0] / n)},
                       {"rank10_raw", R4(hits_raw[b][1] / n)},
                       {"rank10_calibrated", R4(hits_cal[b][1] / n)},
                       {"rank50_raw", R4(hits_raw[b][2] / n)},
                       {"rank50_calibrated", R4(hits_cal[b][2] / n)}});
  }
  {
    const double n = std::max(1, tot_probes);
    std::printf("| all | %d |", tot_probes);
    for (int q = 0; q < 3; ++q)
      std::printf(" %.1f%% | %.1f%% |", 100 * tot[0][q] / n, 100 * tot[1][q] / n);
    std::printf("\n\n");
  }
  const char* other = strict_unknown ? "pooled" : "strictest";
  std::printf(
      "Unknown ages (the LFW distractors) are scored on the %s curve. Diagnostic: faces ranked "
      "above the true child by the calibrated ranking, per probe (LFW adults of unknown age / "
      "other children), and the calibrated ranking with unknown ages on the %s curve instead.\n\n"
      "| age gap | above: LFW | above: children | rank-1 %s | rank-10 %s | rank-50 %s |\n"
      "|---|---|---|---|---|---|\n",
      unknown_age.c_str(), other, other, other, other);
  for (int b = 0; b < kIdBins; ++b) {
    const double n = std::max(1, probes_in[b]);
    std::printf("| %s | %.1f | %.1f | %.1f%% | %.1f%% | %.1f%% |\n", kIdBinNames[b],
                above_lfw[b] / n, above_child[b] / n, 100 * hits_strict[b][0] / n,
                100 * hits_strict[b][1] / n, 100 * hits_strict[b][2] / n);
  }
  std::printf(
      "\nFairness check: each LFW distractor given an age drawn from the gallery children's "
      "ages (so the ranking cannot tell distractors by a missing age):\n\n"
      "| age gap | rank-1 raw | rank-1 calibrated | rank-10 raw | rank-10 calibrated | rank-50 raw "
      "| "
      "rank-50 calibrated |\n|---|---|---|---|---|---|---|\n");
  Json aged_json = Json::array();
  for (int b = 0; b < kIdBins; ++b) {
    const double n = std::max(1, probes_in[b]);
    std::printf("| %s |", kIdBinNames[b]);
    for (int q = 0; q < 3; ++q)
      std::printf(" %.1f%% | %.1f%% |", 100 * hits_raw[b][q] / n, 100 * hits_aged[b][q] / n);
    std::printf("\n");
    aged_json.push_back({{"gap_years", kIdBinNames[b]},
                         {"probes", probes_in[b]},
                         {"rank1_calibrated", R4(hits_aged[b][0] / n)},
                         {"rank10_calibrated", R4(hits_aged[b][1] / n)},
                         {"rank50_calibrated", R4(hits_aged[b][2] / n)}});
  }
  std::printf("\n");

  // ---- (d) age-consistent search (issue 12), before (c): the LARGE_AGE_GAP caveat cites its
  // ranking (3)
  AgeSearchInput age_in;
  age_in.images = &images;
  age_in.n_fg = n_fg;
  age_in.n_distractors = n_distractors;
  age_in.gallery_of = &gallery_of;
  age_in.fold_models = &fold_models;
  age_in.fold_of = &fold_of;
  age_in.seed = seed;
  const AgeSearchResult age_search = AgeConsistentSearch(age_in);

  // ---- (c) caveat numbers
  int child_imp = 0, child_imp_below = 0, child_gen = 0, child_gen_below = 0;
  for (size_t k = 0; k < n_fg_pairs; ++k) {
    const PairRec& p = pairs[k];
    if (p.younger + p.gap >= kChildImpostorAge) continue;  // both faces under 12
    (p.same ? child_gen : child_imp) += 1;
    (p.same ? child_gen_below : child_imp_below) += p.d < kThreshold;
  }
  const double child_rate = child_imp ? double(child_imp_below) / child_imp : 0;
  std::printf(
      "(c) Impostor pairs of two different children both under %.0f (fgnet-dev): %d of %d "
      "below %.1f = %.1f%% (genuine pairs of children under %.0f below %.1f: %d of %d = %.1f%%).\n",
      kChildImpostorAge, child_imp_below, child_imp, kThreshold, 100 * child_rate,
      kChildImpostorAge, kThreshold, child_gen_below, child_gen,
      child_gen ? 100.0 * child_gen_below / child_gen : 0.0);
  std::printf(
      "\nRank-10 hit rate by gap band (same identification scenario; last column: the fairness "
      "check, distractors with child ages, LARGE_AGE_GAP's source before the age-consistent "
      "ranking):\n\n"
      "| gap band | probes | raw | calibrated | calibrated, distractors with ages "
      "|\n|---|---|---|---|---|\n");
  Json band_json = Json::array();
  for (int g = 0; g < kGapBands; ++g) {
    const double n = std::max(1, band_probes[g]);
    std::printf("| %s | %d | %.1f%% | %.1f%% | %.1f%% |\n", kGapNames[g], band_probes[g],
                100 * band_hits_raw[g] / n, 100 * band_hits_cal[g] / n,
                100 * band_hits_aged[g] / n);
    band_json.push_back({{"gap_band", kGapNames[g]},
                         {"probes", band_probes[g]},
                         {"rank10_raw", R4(band_hits_raw[g] / n)},
                         {"rank10_calibrated", R4(band_hits_cal[g] / n)},
                         {"rank10_calibrated_distractors_with_ages", R4(band_hits_aged[g] / n)}});
  }
  // The old rule's input, kept for comparison: the calibrated ranking of (b), fairness check.
  const int old_band = SharpestDropBand(band_probes, band_hits_aged);
  const double old_rate =
      band_probes[old_band] ? double(band_hits_aged[old_band]) / band_probes[old_band] : 0;
  std::printf(
      "\nOld LARGE_AGE_GAP source (calibrated ranking, distractors with ages; no longer cited): "
      "the sharpest drop is into the %s band: a gap of %.0f years (rank-10 hit rate there "
      "%.1f%%).\n\n",
      kGapNames[old_band], kGapEdges[old_band], 100 * old_rate);

  // LARGE_AGE_GAP cites the product's ranking: (d)'s ranking (3), gallery faces consistent with
  // the query's age (CheckAge on dates), then distance; query with the probe's age; distractors
  // given child ages and birth dates (the fairness variant: every gallery face has an age, as in
  // the product, and adult distractors would be filtered out and flatter it). Same rule as
  // before: the band after the sharpest drop in rank-10 between consecutive gap bands.
  const int(&large_hits)[kGapBands] = age_search.band_hits10[kFairness][kConsistentDistance];
  const int large_band = SharpestDropBand(age_search.band_probes, large_hits);
  const int large_probes = age_search.band_probes[large_band];
  const double large_rate = large_probes ? double(large_hits[large_band]) / large_probes : 0;
  std::printf(
      "(c) LARGE_AGE_GAP: rank-10 by gap band, age-consistent ranking ((d)'s ranking (3): "
      "CheckAge filter, then distance; query with the probe's age; last column: distractors "
      "with child ages and dates, used for LARGE_AGE_GAP):\n\n"
      "| gap band | probes | distance, photo only | age-consistent, adult distractors | "
      "age-consistent, distractors with ages |\n|---|---|---|---|---|\n");
  Json consistent_band_json = Json::array();
  for (int g = 0; g < kGapBands; ++g) {
    const int n = age_search.band_probes[g];
    auto rate = [&](int v, int r) {
      return n ? double(age_search.band_hits10[v][r][g]) / n : 0.0;
    };
    std::printf("| %s | %d | %.1f%% | %.1f%% | %.1f%% |\n", kGapNames[g], n, 100 * rate(0, 0),
                100 * rate(0, kConsistentDistance), 100 * rate(kFairness, kConsistentDistance));
    consistent_band_json.push_back(
        {{"gap_band", kGapNames[g]},
         {"probes", n},
         {"rank10_distance_photo_only", R4(rate(0, 0))},
         {"rank10_consistent_distance_distractors_adults", R4(rate(0, kConsistentDistance))},
         {"rank10_consistent_distance_distractors_child_ages",
          R4(rate(kFairness, kConsistentDistance))}});
  }
  std::printf(
      "\nLARGE_AGE_GAP (cited): the sharpest drop of the age-consistent ranking (distractors with "
      "ages) is into the %s band: caveat from a gap of %.0f years (rank-10 hit rate there %.1f%%, "
      "%d/%d probes).\n\n",
      kGapNames[large_band], kGapEdges[large_band], 100 * large_rate, large_hits[large_band],
      large_probes);

  // ---- final fit on everything and the file
  const Model final_model = Fit(pairs, {}, shrink);
  std::printf("Final fit (all subjects): P(same) = 1/(1+exp(-(a+b*d))), d at P=0.5 = -a/b\n\n");
  std::printf("| gap \\ younger age |");
  for (int y = 0; y < kYoungBands; ++y) std::printf(" %s |", kYoungNames[y]);
  std::printf(" whole gap band |\n|---|---|---|---|---|---|\n");
  for (int g = 0; g < kGapBands; ++g) {
    std::printf("| %s |", kGapNames[g]);
    for (int y = 0; y < kYoungBands; ++y) {
      const auto& l = final_model.cell[g][y];
      std::printf(" %.3f (%.0f gen) |", -l.a / l.b, l.n_genuine);
    }
    std::printf(" %.3f |\n", -final_model.gap[g].a / final_model.gap[g].b);
  }
  std::printf("| pooled (unknown ages) | %.3f |\n\n", -final_model.global.a / final_model.global.b);

  char date[64];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  Json j;
  j["format"] = "homeward.age_calibration";
  j["version"] = kVersion;
  j["created"] = date;
  j["command"] = command;
  j["recognition_model"] = fs::path(ModelPath()).filename().string();
  j["method"] =
      "Per cell (age-gap band x younger-face age band): P(same|d) = 1/(1+exp(-(a+b*d))), d = "
      "Euclidean descriptor distance, b <= -1 (strictly decreasing). Weighted logistic regression, "
      "genuine and impostor pairs reweighted to equal totals (prior_same = 0.5), counted at their "
      "effective size 4*Ng*Ni/(Ng+Ni); shrinkage: each cell is fitted with `shrink` pseudo-pairs "
      "on "
      "d = 0.20..1.00 labelled by its gap band's fit, each gap band toward the pooled fit. Unknown "
      "ages (either face) use the curve named by unknown_age: strictest = the lowest curve of the "
      "table "
      "at that distance (no age-drift leniency without an age), pooled = the fit on all pairs. LFW "
      "pairs (ages unknown, adults) count in the (0-2, 15+) cell. Caveats: young_child = share "
      "of fgnet-dev impostor pairs of two children under measured_on_children_under_years closer "
      "than threshold; large_age_gap = the gap band after the sharpest drop in rank-10 hit rate "
      "between consecutive gap bands of the age-consistent ranking (evaluation."
      "age_consistent_search ranking consistent_distance: gallery faces whose age is consistent "
      "with the query's by gallery::CheckAge on synthetic dates, ranked by distance; query with "
      "the probe's age; distractors given child ages and dates), the ranking the gallery ships.";
  j["unknown_age"] = unknown_age;
  j["prior_same"] = 0.5;
  j["prior_note"] =
      "Confidence is the probability at even prior odds (a likelihood ratio read as a "
      "probability). "
      "In a gallery search the true match is one among many: the posterior of one candidate is "
      "lower; ranking does not depend on the prior.";
  j["shrink_pseudo_pairs"] = shrink;
  j["data"] = {{"fgnet_dev",
                {{"images", n_fg},
                 {"subjects", subjects.size()},
                 {"central_box_images", fg_fallback},
                 {"genuine_pairs", fg_g},
                 {"impostor_pairs", fg_i}}},
               {"lfw_view1",
                {{"images", images.size() - n_fg},
                 {"identities", n_distractors},
                 {"central_box_images", lfw_fallback},
                 {"genuine_pairs_pairsDevTrain", lfw_g},
                 {"impostor_pairs", lfw_i}}}};
  j["gap_band_edges_years"] = Json(std::vector<double>(std::begin(kGapEdges), std::end(kGapEdges)));
  j["younger_age_band_edges_years"] =
      Json(std::vector<double>(std::begin(kYoungEdges), std::end(kYoungEdges)));
  j["pooled"] = LogisticJson(final_model.global);
  j["gap_bands"] = Json::array();
  j["cells"] = Json::array();
  for (int g = 0; g < kGapBands; ++g) {
    j["gap_bands"].push_back(LogisticJson(final_model.gap[g]));
    Json row = Json::array();
    for (int y = 0; y < kYoungBands; ++y) row.push_back(LogisticJson(final_model.cell[g][y]));
    j["cells"].push_back(row);
  }
  j["caveats"] = {
      {"young_child",
       {{"age_below_years", kYoungChildAge},
        {"measured_on_children_under_years", kChildImpostorAge},
        {"threshold", kThreshold},
        {"impostor_pairs", child_imp},
        {"impostor_rate_below_threshold", R4(child_rate)}}},
      {"large_age_gap",
       {{"gap_from_years", kGapEdges[large_band]},
        {"gap_band", kGapNames[large_band]},
        {"probes", large_probes},
        {"rank10_hit_rate", R4(large_rate)},
        {"ranking",
         "age-consistent: CheckAge filter, then distance; query with the probe's age "
         "(evaluation.age_consistent_search, consistent_distance, distractors_child_ages)"},
        {"gallery",
         absl::StrFormat("%zu children + %zu LFW distractors given child ages and birth dates",
                         gallery_of.size(), n_distractors)}}}};
  j["evaluation"] = {{"folds", folds},
                     {"ece", ece_json},
                     {"identification", id_json},
                     {"identification_distractors_with_child_ages", aged_json},
                     {"rank10_by_gap_band", band_json},
                     {"rank10_by_gap_band_age_consistent", consistent_band_json},
                     {"age_consistent_search", age_search.json}};
  std::ofstream out(out_path);
  out << j.dump(1) << "\n";
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", out_path.c_str());
    return 1;
  }
  std::printf("Wrote %s\n", out_path.c_str());
  return 0;
}
