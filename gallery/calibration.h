// Calibration: turns a descriptor distance into the confidence a person reads, taking the
// age gap between the two photos and the younger face's age into account (descriptors drift
// as children grow, and young children look alike to the network).
//
// The table is fitted by bench/age_calibration.cc and shipped as
// models/age_calibration_v1.json: one logistic curve P(same | d) = 1 / (1 + exp(-(a + b d)))
// per cell of gap band (0-2, 3-5, 6-10, 11-20, 21+ years) x younger-age band (0-4, 5-9,
// 10-14, 15+ years), every slope b < 0, plus a pooled curve. A face of unknown age is scored as
// the file's "unknown_age" says: "strictest" (v1's choice: the lowest curve of the table at that
// distance, so a face without an age claims no age-drift leniency; measured in docs/AGE.md) or
// "pooled" (the default when the key is absent). The
// confidence is the probability at even prior odds (the file's "prior_same", 0.5): ranking
// by it does not depend on the prior. The file also carries the measured numbers the
// YOUNG_CHILD and LARGE_AGE_GAP caveats cite.
//
// THREAD SAFETY: immutable after Load; every method may be called concurrently.
// OWNERSHIP: Load returns a unique_ptr owned by the caller.
#ifndef HOMEWARD_GALLERY_CALIBRATION_H_
#define HOMEWARD_GALLERY_CALIBRATION_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gallery/gallery.h"

namespace homeward::gallery {

class Calibration {
 public:
  // Loads and checks a calibration file. NOT_FOUND when the file does not exist or cannot be
  // read; INVALID_ARGUMENT when it is not JSON, has the wrong format/version, misses a field,
  // has band edges that are not increasing from 0, or a curve that is not strictly decreasing
  // in distance (b >= 0), not finite or beyond 1e6 in absolute value.
  static absl::StatusOr<std::unique_ptr<Calibration>> Load(const std::string& path);

  // Same checks, from the file's text (`origin` names it in messages).
  static absl::StatusOr<std::unique_ptr<Calibration>> Parse(const std::string& json,
                                                            const std::string& origin);

  // P(same person) in [0, 1], non-increasing in distance for every gap. The gap band is
  // chosen by the middle of [gap.min, gap.max], the younger-age band by gap.younger_age;
  // an unknown gap (gap.known == false) uses the unknown-age policy above.
  double Confidence(double distance, const AgeGap& gap) const;

  // The logit of Confidence (finite, so ranking never ties on a saturated probability).
  double Logit(double distance, const AgeGap& gap) const;

  // The largest Logit over every band at this distance (non-increasing in distance): no face
  // farther than `distance` can score above it, whatever its age.
  double MaxLogit(double distance) const;

  // Numbers measured by the fitting program, for the caveats.
  double young_child_age() const { return young_child_age_; }          // e.g. 5
  double child_impostor_rate() const { return child_impostor_rate_; }  // at the threshold
  double child_impostor_age() const { return child_impostor_age_; }    // children under ...
  double child_impostor_threshold() const { return child_impostor_threshold_; }
  double large_gap_years() const { return large_gap_years_; }    // caveat from here
  double large_gap_rank10() const { return large_gap_rank10_; }  // hit rate there
  const std::string& large_gap_band() const { return large_gap_band_; }
  const std::string& created() const { return created_; }
  int version() const { return version_; }

 private:
  struct Curve {
    double a = 0, b = -1;
  };
  Calibration() = default;
  const Curve& CurveFor(const AgeGap& gap) const;  // known ages only

  int version_ = 0;
  std::string created_;
  std::vector<double> gap_edges_, young_edges_;
  Curve pooled_;
  bool strictest_unknown_ = false;
  std::vector<std::vector<Curve>> cells_;  // [gap band][younger band]
  double young_child_age_ = 5, child_impostor_rate_ = 0, child_impostor_age_ = 12;
  double child_impostor_threshold_ = 0.6;
  double large_gap_years_ = 6, large_gap_rank10_ = 0;
  std::string large_gap_band_;
};

}  // namespace homeward::gallery

#endif  // HOMEWARD_GALLERY_CALIBRATION_H_
