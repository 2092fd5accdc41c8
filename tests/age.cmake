# Age-aware calibration (gallery/calibration.h) and the gallery's calibrated ranking.
homeward_test(calibration_test
  SOURCES calibration_test.cc embed_test_util.cc
  LIBS homeward_gallery ${OpenCV_LIBS})
# Age consistency rules (gallery/age.h): pure functions, no model needed.
homeward_test(age_test
  SOURCES age_test.cc
  LIBS homeward_gallery)
