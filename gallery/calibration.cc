#include "gallery/calibration.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace homeward::gallery {
namespace {

using Json = nlohmann::json;

constexpr char kFormat[] = "homeward.age_calibration";
constexpr int kVersion = 1;

absl::Status Bad(const std::string& origin, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("calibration ", origin, ": ", what));
}

// A finite number at j[key]; INVALID_ARGUMENT otherwise.
absl::StatusOr<double> Number(const Json& j, const char* key, const std::string& origin,
                              const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) {
    return Bad(origin, absl::StrCat(where, ": \"", key, "\" is missing or not a number"));
  }
  const double v = it->get<double>();
  if (!std::isfinite(v)) return Bad(origin, absl::StrCat(where, ": \"", key, "\" is not finite"));
  return v;
}

absl::StatusOr<std::vector<double>> Edges(const Json& j, const char* key,
                                          const std::string& origin) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_array() || it->empty()) {
    return Bad(origin, absl::StrCat("\"", key, "\" is missing or not a non-empty array"));
  }
  std::vector<double> edges;
  for (const auto& e : *it) {
    if (!e.is_number() || !std::isfinite(e.get<double>())) {
      return Bad(origin, absl::StrCat("\"", key, "\" holds a non-number"));
    }
    edges.push_back(e.get<double>());
  }
  if (edges[0] != 0) return Bad(origin, absl::StrCat("\"", key, "\" must start at 0"));
  for (size_t i = 1; i < edges.size(); ++i) {
    if (!(edges[i] > edges[i - 1])) {
      return Bad(origin, absl::StrCat("\"", key, "\" must be increasing"));
    }
  }
  return edges;
}

size_t BandOf(const std::vector<double>& edges, double x) {
  size_t b = 0;
  for (size_t i = 0; i < edges.size(); ++i)
    if (x >= edges[i]) b = i;
  return b;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Calibration>> Calibration::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("calibration file '", path, "' cannot be opened: ",
                                            std::generic_category().message(errno)));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return Parse(ss.str(), "'" + path + "'");
}

absl::StatusOr<std::unique_ptr<Calibration>> Calibration::Parse(const std::string& text,
                                                                const std::string& origin) {
  const Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Bad(origin, "not a JSON object");
  auto format = j.find("format");
  if (format == j.end() || !format->is_string() || format->get<std::string>() != kFormat) {
    return Bad(origin, absl::StrCat("\"format\" must be \"", kFormat, "\""));
  }
  auto version = j.find("version");
  if (version == j.end() || !version->is_number_integer() || version->get<int>() != kVersion) {
    return Bad(origin, absl::StrCat("unsupported \"version\" (this build reads ", kVersion, ")"));
  }
  std::unique_ptr<Calibration> c(new Calibration());
  c->version_ = kVersion;
  if (auto it = j.find("created"); it != j.end() && it->is_string())
    c->created_ = it->get<std::string>();
  auto gap_edges = Edges(j, "gap_band_edges_years", origin);
  if (!gap_edges.ok()) return gap_edges.status();
  auto young_edges = Edges(j, "younger_age_band_edges_years", origin);
  if (!young_edges.ok()) return young_edges.status();
  c->gap_edges_ = *gap_edges;
  c->young_edges_ = *young_edges;

  auto curve = [&](const Json& obj, const std::string& where) -> absl::StatusOr<Curve> {
    if (!obj.is_object()) return Bad(origin, absl::StrCat(where, " is not an object"));
    auto a = Number(obj, "a", origin, where);
    if (!a.ok()) return a.status();
    auto b = Number(obj, "b", origin, where);
    if (!b.ok()) return b.status();
    // Fitted curves have |a|, |b| in the tens; beyond 1e6, a + b * d can overflow to -inf and
    // Logit would no longer be finite.
    if (std::abs(*a) > 1e6 || std::abs(*b) > 1e6) {
      return Bad(origin, absl::StrCat(where, ": a and b must be within [-1e6, 1e6]"));
    }
    if (!(*b < 0)) {
      return Bad(origin, absl::StrCat(where, ": slope b = ", *b,
                                      " is not negative, so confidence would not decrease with "
                                      "distance"));
    }
    return Curve{*a, *b};
  };
  auto pooled = j.find("pooled");
  if (pooled == j.end()) return Bad(origin, "\"pooled\" is missing");
  auto pc = curve(*pooled, "pooled");
  if (!pc.ok()) return pc.status();
  c->pooled_ = *pc;
  if (auto it = j.find("unknown_age"); it != j.end()) {
    if (!it->is_string() || (*it != "pooled" && *it != "strictest")) {
      return Bad(origin, "\"unknown_age\" must be \"pooled\" or \"strictest\"");
    }
    c->strictest_unknown_ = *it == "strictest";
  }
  auto cells = j.find("cells");
  if (cells == j.end() || !cells->is_array() || cells->size() != c->gap_edges_.size()) {
    return Bad(origin, "\"cells\" must hold one row per gap band");
  }
  for (size_t g = 0; g < cells->size(); ++g) {
    const Json& row = (*cells)[g];
    if (!row.is_array() || row.size() != c->young_edges_.size()) {
      return Bad(origin,
                 absl::StrCat("\"cells\" row ", g, " must hold one curve per younger-age band"));
    }
    std::vector<Curve> curves;
    for (size_t y = 0; y < row.size(); ++y) {
      auto cc = curve(row[y], absl::StrCat("cells[", g, "][", y, "]"));
      if (!cc.ok()) return cc.status();
      curves.push_back(*cc);
    }
    c->cells_.push_back(std::move(curves));
  }
  auto caveats = j.find("caveats");
  if (caveats == j.end() || !caveats->is_object()) return Bad(origin, "\"caveats\" is missing");
  auto young = caveats->find("young_child");
  auto large = caveats->find("large_age_gap");
  if (young == caveats->end() || large == caveats->end() || !young->is_object() ||
      !large->is_object()) {
    return Bad(origin, "\"caveats\" needs \"young_child\" and \"large_age_gap\"");
  }
  struct Field {
    const Json& obj;
    const char* key;
    double* out;
  };
  for (const Field& f : {Field{*young, "age_below_years", &c->young_child_age_},
                         Field{*young, "measured_on_children_under_years", &c->child_impostor_age_},
                         Field{*young, "threshold", &c->child_impostor_threshold_},
                         Field{*young, "impostor_rate_below_threshold", &c->child_impostor_rate_},
                         Field{*large, "gap_from_years", &c->large_gap_years_},
                         Field{*large, "rank10_hit_rate", &c->large_gap_rank10_}}) {
    auto v = Number(f.obj, f.key, origin, "caveats");
    if (!v.ok()) return v.status();
    *f.out = *v;
  }
  if (!(c->child_impostor_rate_ >= 0 && c->child_impostor_rate_ <= 1 && c->large_gap_rank10_ >= 0 &&
        c->large_gap_rank10_ <= 1)) {
    return Bad(origin, "caveat rates must be in [0, 1]");
  }
  if (auto it = large->find("gap_band"); it != large->end() && it->is_string()) {
    c->large_gap_band_ = it->get<std::string>();
  }
  return c;
}

const Calibration::Curve& Calibration::CurveFor(const AgeGap& gap) const {
  const double years = std::max(0.0, (gap.min + gap.max) / 2);
  return cells_[BandOf(gap_edges_, years)][BandOf(young_edges_, gap.younger_age)];
}

double Calibration::Logit(double distance, const AgeGap& gap) const {
  if (!gap.known || gap.younger_age < 0) {
    double logit = pooled_.a + pooled_.b * distance;
    if (!strictest_unknown_) return logit;
    for (const auto& row : cells_)
      for (const Curve& c : row) logit = std::min(logit, c.a + c.b * distance);
    return logit;
  }
  const Curve& c = CurveFor(gap);
  return c.a + c.b * distance;
}

double Calibration::MaxLogit(double distance) const {
  double best = pooled_.a + pooled_.b * distance;
  for (const auto& row : cells_)
    for (const Curve& c : row) best = std::max(best, c.a + c.b * distance);
  return best;
}

double Calibration::Confidence(double distance, const AgeGap& gap) const {
  return 1.0 / (1.0 + std::exp(-Logit(distance, gap)));
}

}  // namespace homeward::gallery
