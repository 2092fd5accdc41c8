// Age consistency (gallery/age.h): birth windows from each kind of evidence, the tolerance
// edges, the time order, and the gap between dated photos.
#include "gallery/age.h"

#include <gtest/gtest.h>

namespace homeward::gallery {
namespace {

constexpr double kYear = kDaysPerYear;

AgeEvidence Dated(const std::string& date, double min, double max, bool estimated = false) {
  AgeEvidence e;
  e.photo_date = date;
  e.age_min = min;
  e.age_max = max;
  e.age_estimated = estimated;
  return e;
}

double Days(const std::string& date) {
  double d = 0;
  EXPECT_TRUE(DaysOf(date, &d)) << date;
  return d;
}

TEST(AgeTest, DaysOfParsesAndRejects) {
  EXPECT_DOUBLE_EQ(Days("1970-01-01"), 0);
  EXPECT_DOUBLE_EQ(Days("2000-03-01") - Days("2000-02-28"), 2);  // 2000 is a leap year
  double d = 0;
  EXPECT_FALSE(DaysOf("", &d));
  EXPECT_FALSE(DaysOf("2010-13-01", &d));
  EXPECT_FALSE(DaysOf("2010-1-01", &d));
  EXPECT_FALSE(DaysOf("20x0-01-01", &d));
  EXPECT_FALSE(DaysOf("2007-02-31", &d));  // not a day of the calendar
  EXPECT_FALSE(DaysOf("2007-02-29", &d));
  EXPECT_TRUE(DaysOf("2008-02-29", &d));
}

TEST(AgeTest, ExactBirthDateWinsOverEverythingElse) {
  AgeEvidence e = Dated("2010-06-01", 30, 30);  // a wrong photo age is ignored
  e.date_of_birth = "2007-06-01";
  const BirthWindow w = BirthWindowOf(e);
  ASSERT_TRUE(w.known);
  EXPECT_DOUBLE_EQ(w.earliest, Days("2007-06-01"));
  EXPECT_DOUBLE_EQ(w.latest, Days("2007-06-01"));
  EXPECT_STREQ(w.basis, "birth date");
  EXPECT_DOUBLE_EQ(w.tolerance_years, 0);
}

TEST(AgeTest, WholeYearAgeCoversTheWholeYear) {
  const BirthWindow w = BirthWindowOf(Dated("2010-06-01", 3, 3));
  ASSERT_TRUE(w.known);
  EXPECT_NEAR(w.latest, Days("2010-06-01") - 3 * kYear, 1e-9);
  EXPECT_NEAR(w.earliest, Days("2010-06-01") - 4 * kYear, 1e-9);  // 3.99 years old
  AgeEvidence exact = Dated("2010-06-01", 3.25, 3.25);
  exact.age_exact = true;
  const BirthWindow x = BirthWindowOf(exact);
  EXPECT_NEAR(x.latest - x.earliest, 0, 1e-9);
}

TEST(AgeTest, BirthYearsWhenThePhotoHasNoAge) {
  AgeEvidence e;
  e.birth_year_min = 2004;
  e.birth_year_max = 2006;
  const BirthWindow w = BirthWindowOf(e);
  ASSERT_TRUE(w.known);
  EXPECT_DOUBLE_EQ(w.earliest, Days("2004-01-01"));
  EXPECT_DOUBLE_EQ(w.latest, Days("2006-12-31"));
}

TEST(AgeTest, UndatedPhotoUsesTheCaseDateAndMissingPhotosMayBeOlder) {
  AgeEvidence found;
  found.age_min = found.age_max = 5;
  found.case_date = "2012-01-01";
  const BirthWindow f = BirthWindowOf(found);
  ASSERT_TRUE(f.known);
  EXPECT_STREQ(f.basis, "case date and age");
  EXPECT_NEAR(f.latest, Days("2012-01-01") - (5 - kUndatedSlackYears) * kYear, 1e-9);
  EXPECT_NEAR(f.earliest, Days("2012-01-01") - (6 + kUndatedSlackYears) * kYear, 1e-9);
  AgeEvidence missing = found;
  missing.photo_may_predate_case = true;
  const BirthWindow m = BirthWindowOf(missing);
  EXPECT_NEAR(m.earliest, f.earliest - kUndatedPhotoYears * kYear, 1e-9);
  EXPECT_DOUBLE_EQ(m.latest, f.latest);
}

TEST(AgeTest, NoEvidenceIsUnknownAndRulesNothingOut) {
  AgeEvidence none;
  EXPECT_FALSE(BirthWindowOf(none).known);
  AgeEvidence age_only;  // an age without any date cannot be placed in time
  age_only.age_min = age_only.age_max = 7;
  EXPECT_FALSE(BirthWindowOf(age_only).known);
  const AgeCheck c = CheckAge(Dated("2018-05-01", 10, 12, true), none);
  EXPECT_EQ(c.verdict, AgeVerdict::kUnknown);
  EXPECT_TRUE(c.consistent());
}

// The scenario: a child registered at 3 in 2010 and an adult stranger photographed at
// 35, against a 2018 sighting of a child about 10-12.
TEST(AgeTest, ProjectsTheCandidateToTheQueryDate) {
  const AgeEvidence sighting = Dated("2018-05-01", 10, 12, true);
  AgeEvidence child;
  child.date_of_birth = "2007-02-01";
  child.photo_date = "2010-03-01";
  child.age_min = child.age_max = 3;
  const AgeCheck ok = CheckAge(sighting, child);
  EXPECT_EQ(ok.verdict, AgeVerdict::kConsistent);
  ASSERT_TRUE(ok.projected_known);
  EXPECT_NEAR(ok.projected_min, 11.24, 0.01);
  EXPECT_NEAR(ok.projected_max, 11.24, 0.01);

  // The adult's earlier photo already shows someone older than the sighted child.
  const AgeCheck adult = CheckAge(sighting, Dated("2004-07-01", 35, 35));
  EXPECT_EQ(adult.verdict, AgeVerdict::kTimeOrder);
  EXPECT_FALSE(adult.consistent());
  EXPECT_GT(adult.projected_min, 48);

  // A child of 8 in 2010 would be 16-17 in 2018.
  const AgeCheck teen = CheckAge(sighting, Dated("2010-05-01", 8, 8));
  EXPECT_EQ(teen.verdict, AgeVerdict::kTooOld);
  EXPECT_NEAR(teen.projected_min, 16, 0.01);

  const AgeCheck baby = CheckAge(sighting, Dated("2017-01-01", 1, 1));
  EXPECT_EQ(baby.verdict, AgeVerdict::kTooYoung);
}

TEST(AgeTest, TimeOrderAnEarlierPhotoCannotShowAnOlderChild) {
  const AgeEvidence sighting = Dated("2018-05-01", 10, 12, true);
  // A MISSING photo of a 16-year-old taken in 2010, eight years before a 10-12-year-old: older
  // at the earlier photo than the sighted child's 13 plus the 2.15-year tolerance.
  const AgeCheck earlier_older = CheckAge(sighting, Dated("2010-05-01", 16, 16));
  EXPECT_EQ(CheckAge(sighting, Dated("2010-05-01", 15, 15)).verdict, AgeVerdict::kTooOld);
  EXPECT_EQ(earlier_older.verdict, AgeVerdict::kTimeOrder);
  // A later photo showing a younger child.
  const AgeCheck later_younger = CheckAge(sighting, Dated("2020-05-01", 4, 4));
  EXPECT_EQ(later_younger.verdict, AgeVerdict::kTimeOrder);
  // Too old by projection, but not by the photos' own order: the photo is later.
  const AgeCheck later_older = CheckAge(sighting, Dated("2025-05-01", 30, 30));
  EXPECT_EQ(later_older.verdict, AgeVerdict::kTooOld);
  EXPECT_STREQ(AgeVerdictCode(AgeVerdict::kTimeOrder), "TIME_ORDER");
}

TEST(AgeTest, ToleranceEdgesExactEvidence) {
  // Query: exact birth 2000-01-01. Candidate: exact birth dates around it.
  AgeEvidence q;
  q.date_of_birth = "2000-01-01";
  q.photo_date = "2010-01-01";
  q.age_min = q.age_max = 10;
  const double born = Days("2000-01-01");
  auto with_birth = [&](double days) {
    AgeEvidence c;
    c.photo_date = "2012-01-01";
    c.age_exact = true;
    c.age_min = c.age_max = (Days("2012-01-01") - days) / kYear;
    return CheckAge(q, c);
  };
  const double tol = kBaseToleranceYears * kYear;
  EXPECT_EQ(with_birth(born + tol - 1).verdict, AgeVerdict::kConsistent);
  EXPECT_EQ(with_birth(born + tol + 1).verdict, AgeVerdict::kTooYoung);
  EXPECT_EQ(with_birth(born - tol + 1).verdict, AgeVerdict::kConsistent);
  EXPECT_EQ(with_birth(born - tol - 1).verdict, AgeVerdict::kTooOld);
  EXPECT_DOUBLE_EQ(with_birth(born).tolerance_years, kBaseToleranceYears);
}

TEST(AgeTest, EstimatedAgesWidenTheToleranceWithAge) {
  // A volunteer's "10" (estimated): the tolerance is max(1, 0.15 x 10) = 1.5 years on top of the
  // base, so a child whose projected age is 11 + 1.5 + 0.5 - a day still fits, a day more not.
  const AgeEvidence q = Dated("2020-01-01", 10, 10, true);
  auto projected = [&](double age) {
    AgeEvidence c;
    c.date_of_birth = "";
    c.photo_date = "2020-01-01";
    c.age_exact = true;
    c.age_min = c.age_max = age;
    return CheckAge(q, c);
  };
  const double tol = kBaseToleranceYears + std::max(kEstimatedMinYears, kEstimatedFraction * 10);
  EXPECT_DOUBLE_EQ(projected(10.5).tolerance_years, tol);
  EXPECT_EQ(projected(11 + tol - 0.01).verdict, AgeVerdict::kConsistent);
  EXPECT_EQ(projected(11 + tol + 0.01).verdict, AgeVerdict::kTooOld);
  EXPECT_EQ(projected(10 - tol + 0.01).verdict, AgeVerdict::kConsistent);
  EXPECT_EQ(projected(10 - tol - 0.01).verdict, AgeVerdict::kTooYoung);
  // A young child's estimate gets the 1-year floor.
  const AgeEvidence toddler = Dated("2020-01-01", 2, 2, true);
  AgeEvidence c = Dated("2020-01-01", 2, 2);
  EXPECT_DOUBLE_EQ(CheckAge(toddler, c).tolerance_years, kBaseToleranceYears + kEstimatedMinYears);
}

TEST(AgeTest, DatedGapIsTheTimeBetweenThePhotos) {
  double lo = 0, hi = 0, younger = 0;
  // Undirected ages of a stranger (35) and a child (10-12) would give a 23-25 year "gap"; with
  // dates the gap is the time between the photos and the younger age is the earlier photo's.
  ASSERT_TRUE(DatedGapYears(Dated("2018-05-01", 10, 12, true), Dated("2010-05-01", 3, 3), &lo,
                            &hi, &younger));
  EXPECT_NEAR(lo, 8.0, 0.01);
  EXPECT_NEAR(hi, 8.0, 0.01);
  EXPECT_DOUBLE_EQ(younger, 3);
  // Without dates: the difference of the ages.
  AgeEvidence a, b;
  a.age_min = a.age_max = 4;
  b.age_min = 9;
  b.age_max = 11;
  ASSERT_TRUE(DatedGapYears(a, b, &lo, &hi, &younger));
  EXPECT_DOUBLE_EQ(lo, 5);
  EXPECT_DOUBLE_EQ(hi, 7);
  EXPECT_DOUBLE_EQ(younger, 4);
  EXPECT_FALSE(DatedGapYears(AgeEvidence{}, b, &lo, &hi, &younger));
}

}  // namespace
}  // namespace homeward::gallery
