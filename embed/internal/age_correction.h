// The correction of faceres-deep's age estimate, fitted on fgnet-dev by
// bench/age_estimate_bench (docs/AGE.md says how; regenerate these tables with it).
#ifndef HOMEWARD_EMBED_INTERNAL_AGE_CORRECTION_H_
#define HOMEWARD_EMBED_INTERNAL_AGE_CORRECTION_H_

#include <cstddef>

namespace homeward::embed::internal {

struct Knot {
  double x, y;
};

// Piecewise-linear through the knots, constant beyond the first and last.
template <size_t N>
double Interpolate(const Knot (&knots)[N], double x) {
  if (x <= knots[0].x) return knots[0].y;
  for (size_t i = 1; i < N; ++i) {
    if (x <= knots[i].x) {
      const double t = (x - knots[i - 1].x) / (knots[i].x - knots[i - 1].x);
      return knots[i - 1].y + t * (knots[i].y - knots[i - 1].y);
    }
  }
  return knots[N - 1].y;
}

// Fitted by `age_estimate_bench --padding 0.1` (crop: 1.2x the HOG box, caffe input; each
// true-age band weighs the same), on all 41 fgnet-dev subjects.
// raw expected age -> corrected age.
inline constexpr Knot kAgeCorrection[] = {{0, 0.74},   {3, 0.80},   {6, 5.94},   {9, 8.79},
                                          {12, 10.07}, {16, 12.55}, {20, 15.37}, {30, 27.28},
                                          {45, 49.51}, {70, 66.83}};
// corrected age -> how far below / above it the band reaches (years): the 5th and 95th
// percentiles of the residuals in the corrected-age bins 0-5, 5-10, 10-15, 15-25, 25+.
inline constexpr Knot kAgeBandBelow[] = {
    {2.5, 2.62}, {7.5, 4.28}, {12.5, 5.48}, {20, 7.32}, {35, 11.63}};
inline constexpr Knot kAgeBandAbove[] = {
    {2.5, 2.58}, {7.5, 5.41}, {12.5, 11.58}, {20, 12.48}, {35, 11.81}};

}  // namespace homeward::embed::internal

#endif  // HOMEWARD_EMBED_INTERNAL_AGE_CORRECTION_H_
