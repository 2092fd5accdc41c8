// What the bench programs share: the flag loop's value reader, whole-file and photo-folder
// reading, and the synthetic face descriptors (identities as clusters, optionally seeded from
// real dlib descriptors) that index_bench indexes and service_bench populates a catalog with.
//
// THREAD SAFETY: the functions are thread-safe; a FaceGenerator is used from one thread.
#ifndef HOMEWARD_BENCH_BENCH_UTIL_H_
#define HOMEWARD_BENCH_BENCH_UTIL_H_

#include <chrono>
#include <random>
#include <string>
#include <vector>

namespace homeward::bench {

using Clock = std::chrono::steady_clock;

// Seconds from `since` to now.
double Seconds(Clock::time_point since);

// In a `for (int i = 1; i < argc; ++i)` flag loop: the value after the flag argv[*i], with *i
// moved onto it. When there is none: "<flag> needs a value" on stderr and exit(2).
std::string FlagValue(int argc, char** argv, int* i);

// The whole file ("" when it cannot be read).
std::string ReadFile(const std::string& path);
// The bytes of every .jpg, .jpeg and .png (any case) under each folder, recursively; per
// folder in path order.
std::vector<std::string> ReadPhotos(const std::vector<std::string>& folders);

// ---- synthetic face descriptors -----------------------------------------------------------

inline constexpr int kDim = 128;  // dlib's face descriptor

// The 128-float "descriptor" of each JSON line of `path` (`homeward embed --json` output);
// none when the path is "" or unreadable. Lines without one are skipped.
std::vector<std::vector<float>> LoadSeeds(const std::string& path);
// Adds Gaussian noise of expected norm `norm` to the kDim floats at v.
void AddNoise(std::mt19937_64& rng, float norm, float* v);

// Identities as clusters of 1..9 samples: centres are seed descriptors (real dlib ones) plus
// noise 0.5, or random around a shared mean (noise 0.75) plus 0.65 without seeds; samples add
// noise 0.28. Seeded with 42: the same sequence on every run.
class FaceGenerator {
 public:
  // keep_centres: remember every identity's centre (centres()), e.g. to draw queries.
  explicit FaceGenerator(std::vector<std::vector<float>> seeds, bool keep_centres = false);
  // The next sample; a new identity starts when the current one has no samples left.
  std::vector<float> Next();
  std::mt19937_64& rng() { return rng_; }
  // The centres of the identities begun so far, kDim floats each (with keep_centres).
  const std::vector<float>& centres() const { return centres_; }

 private:
  std::mt19937_64 rng_{42};
  std::vector<std::vector<float>> seeds_;
  std::vector<float> mean_, centre_;
  int left_ = 0;
  bool keep_centres_;
  std::vector<float> centres_;
};

}  // namespace homeward::bench

#endif  // HOMEWARD_BENCH_BENCH_UTIL_H_
