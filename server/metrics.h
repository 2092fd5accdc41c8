// Metrics: what an operator's Prometheus scrapes from `GET /metrics` (docs/DEPLOY.md,
// docs/API.md). The service records each finished call (method, status code, latency) and
// each stored photo here; the gauges (faces per collection, index sizes, leads by status,
// queue depth, change-log position) are read from the gallery when the page is rendered.
//
// The text is Prometheus' exposition format 0.0.4: `# HELP` and `# TYPE` before each family,
// label values escaped, histograms with cumulative `le` buckets, `_sum` and `_count`.
//
// THREAD SAFETY: every method may be called from any thread.
#ifndef HOMEWARD_SERVER_METRICS_H_
#define HOMEWARD_SERVER_METRICS_H_

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace homeward::server {

// Upper bounds (seconds) of the latency histogram's buckets; +Inf is implied.
inline constexpr std::array<double, 14> kLatencyBuckets = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

// One sample of a gauge family: its labels (name, value) and its value.
struct GaugeSample {
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
};
struct GaugeFamily {
  std::string name, help;
  std::vector<GaugeSample> samples;
};

class Metrics {
 public:
  void RecordCall(const std::string& method, absl::StatusCode code, double seconds);
  void AddPhotosIngested(int64_t n);
  void AddFacesIngested(int64_t n);

  // The whole page: the counters and histograms kept here, then `gauges`.
  std::string Render(const std::vector<GaugeFamily>& gauges) const;

 private:
  struct Histogram {
    std::array<int64_t, kLatencyBuckets.size()> buckets{};  // not cumulative
    int64_t count = 0;
    double sum = 0;
  };
  mutable absl::Mutex mu_;
  std::map<std::pair<std::string, std::string>, int64_t> calls_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Histogram> latency_ ABSL_GUARDED_BY(mu_);
  int64_t photos_ingested_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t faces_ingested_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace homeward::server

#endif  // HOMEWARD_SERVER_METRICS_H_
