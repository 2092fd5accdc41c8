// Fuzz target: the age-calibration file loader (gallery/calibration.h), the file an operator
// passes with --calibration. Any text either fails with INVALID_ARGUMENT or yields a table
// whose documented contract holds: Confidence in [0, 1] and non-increasing in distance,
// Logit finite, MaxLogit an upper bound of every Logit.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "fuzz/fuzz_util.h"
#include "gallery/calibration.h"

namespace {

using homeward::fuzz::Fail;
using homeward::gallery::AgeGap;
using homeward::gallery::Calibration;

constexpr double kDistances[] = {0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.3, 2.0};

void CheckContract(const Calibration& c) {
  AgeGap gaps[] = {AgeGap{}, AgeGap{true, 0, 1, false, 3}, AgeGap{true, 4, 6, true, 8},
                   AgeGap{true, 12, 15, false, 2}, AgeGap{true, 30, 40, false, 16},
                   AgeGap{true, 0, 0, false, -1}, AgeGap{true, -3, 1, false, 100}};
  for (const AgeGap& gap : gaps) {
    double last_conf = 2;
    for (double d : kDistances) {
      const double conf = c.Confidence(d, gap);
      const double logit = c.Logit(d, gap);
      const double max_logit = c.MaxLogit(d);
      const std::string where = absl::StrCat("d=", d, " gap=[", gap.min, ",", gap.max,
                                             "] younger=", gap.younger_age);
      if (!(conf >= 0 && conf <= 1)) Fail(absl::StrCat("Confidence ", conf, " at ", where));
      if (!std::isfinite(logit)) Fail(absl::StrCat("Logit ", logit, " not finite at ", where));
      if (!(max_logit >= logit)) {
        Fail(absl::StrCat("MaxLogit ", max_logit, " < Logit ", logit, " at ", where));
      }
      if (conf > last_conf) Fail(absl::StrCat("Confidence increases with distance at ", where));
      last_conf = conf;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto c = Calibration::Parse(text, "fuzz");
  if (!c.ok()) {
    if (c.status().code() != absl::StatusCode::kInvalidArgument) {
      Fail("Parse returned " + c.status().ToString());
    }
    return 0;
  }
  CheckContract(**c);
  return 0;
}
