#include "server/metrics.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace homeward::server {
namespace {

// A label value in the exposition format: backslash, double quote and newline escaped.
std::string Escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Labels(const std::vector<std::pair<std::string, std::string>>& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    absl::StrAppend(&out, i ? "," : "", labels[i].first, "=\"", Escape(labels[i].second), "\"");
  }
  return out + "}";
}

std::string Number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return absl::StrFormat("%.0f", v);
  return absl::StrFormat("%.9g", v);
}

void Header(std::string* out, const std::string& name, const char* type, const std::string& help) {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
}

}  // namespace

void Metrics::RecordCall(const std::string& method, absl::StatusCode code, double seconds) {
  absl::MutexLock l(&mu_);
  ++calls_[{method, absl::StatusCodeToString(code)}];
  Histogram& h = latency_[method];
  size_t b = 0;
  while (b < kLatencyBuckets.size() && seconds > kLatencyBuckets[b]) ++b;
  if (b < kLatencyBuckets.size()) ++h.buckets[b];
  ++h.count;
  h.sum += seconds;
}

void Metrics::AddPhotosIngested(int64_t n) {
  absl::MutexLock l(&mu_);
  photos_ingested_ += n;
}

void Metrics::AddFacesIngested(int64_t n) {
  absl::MutexLock l(&mu_);
  faces_ingested_ += n;
}

std::string Metrics::Render(const std::vector<GaugeFamily>& gauges) const {
  std::string out;
  {
    absl::MutexLock l(&mu_);
    Header(&out, "homeward_rpc_calls_total", "counter",
           "Calls finished, by RPC and gRPC status code (refused and failed calls included).");
    for (const auto& [key, n] : calls_) {
      absl::StrAppend(&out, "homeward_rpc_calls_total",
                      Labels({{"method", key.first}, {"code", key.second}}), " ", n, "\n");
    }
    Header(&out, "homeward_rpc_latency_seconds", "histogram",
           "Time from a call's arrival to its answer, by RPC.");
    for (const auto& [method, h] : latency_) {
      int64_t cumulative = 0;
      for (size_t b = 0; b < kLatencyBuckets.size(); ++b) {
        cumulative += h.buckets[b];
        absl::StrAppend(&out, "homeward_rpc_latency_seconds_bucket",
                        Labels({{"method", method}, {"le", Number(kLatencyBuckets[b])}}), " ",
                        cumulative, "\n");
      }
      absl::StrAppend(&out, "homeward_rpc_latency_seconds_bucket",
                      Labels({{"method", method}, {"le", "+Inf"}}), " ", h.count, "\n");
      absl::StrAppend(&out, "homeward_rpc_latency_seconds_sum", Labels({{"method", method}}), " ",
                      Number(h.sum), "\n");
      absl::StrAppend(&out, "homeward_rpc_latency_seconds_count", Labels({{"method", method}}),
                      " ", h.count, "\n");
    }
    Header(&out, "homeward_photos_ingested_total", "counter",
           "Photos stored by this server since it started (AddPhoto and SubmitSighting; "
           "duplicates not counted). rate() of it is the ingest rate in photos per second.");
    absl::StrAppend(&out, "homeward_photos_ingested_total ", photos_ingested_, "\n");
    Header(&out, "homeward_faces_ingested_total", "counter",
           "Faces stored with those photos since this server started.");
    absl::StrAppend(&out, "homeward_faces_ingested_total ", faces_ingested_, "\n");
  }
  for (const GaugeFamily& g : gauges) {
    Header(&out, g.name, "gauge", g.help);
    for (const GaugeSample& s : g.samples) {
      absl::StrAppend(&out, g.name, Labels(s.labels), " ", Number(s.value), "\n");
    }
  }
  return out;
}

}  // namespace homeward::server
