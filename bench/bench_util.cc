#include "bench/bench_util.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "nlohmann/json.hpp"

namespace homeward::bench {
namespace fs = std::filesystem;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

std::string FlagValue(int argc, char** argv, int* i) {
  if (*i + 1 >= argc) {
    std::fprintf(stderr, "%s needs a value\n", argv[*i]);
    std::exit(2);
  }
  return argv[++*i];
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> ReadPhotos(const std::vector<std::string>& folders) {
  std::vector<std::string> out;
  for (const auto& folder : folders) {
    std::error_code ec;
    std::vector<fs::path> paths;
    for (auto it = fs::recursive_directory_iterator(folder, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      std::string ext = it->path().extension().string();
      for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (ext == ".jpg" || ext == ".jpeg" || ext == ".png") paths.push_back(it->path());
    }
    std::sort(paths.begin(), paths.end());
    for (const auto& p : paths) out.push_back(ReadFile(p.string()));
  }
  return out;
}

std::vector<std::vector<float>> LoadSeeds(const std::string& path) {
  std::vector<std::vector<float>> seeds;
  if (path.empty()) return seeds;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("descriptor")) continue;
    auto d = j["descriptor"].get<std::vector<float>>();
    if (d.size() == static_cast<size_t>(kDim)) seeds.push_back(std::move(d));
  }
  return seeds;
}

void AddNoise(std::mt19937_64& rng, float norm, float* v) {
  std::normal_distribution<float> g(0.0f, norm / std::sqrt(static_cast<float>(kDim)));
  for (int j = 0; j < kDim; ++j) v[j] += g(rng);
}

FaceGenerator::FaceGenerator(std::vector<std::vector<float>> seeds, bool keep_centres)
    : seeds_(std::move(seeds)), keep_centres_(keep_centres) {
  mean_.assign(kDim, 0.0f);
  AddNoise(rng_, 0.75f, mean_.data());
}

std::vector<float> FaceGenerator::Next() {
  if (left_ == 0) {
    if (!seeds_.empty()) {
      centre_ = seeds_[rng_() % seeds_.size()];
      AddNoise(rng_, 0.5f, centre_.data());
    } else {
      centre_ = mean_;
      AddNoise(rng_, 0.65f, centre_.data());
    }
    if (keep_centres_) centres_.insert(centres_.end(), centre_.begin(), centre_.end());
    left_ = std::uniform_int_distribution<int>(1, 9)(rng_);
  }
  --left_;
  std::vector<float> v = centre_;
  AddNoise(rng_, 0.28f, v.data());
  return v;
}

}  // namespace homeward::bench
