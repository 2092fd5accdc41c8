homeward_test(gallery_test
  SOURCES gallery_test.cc embed_test_util.cc
  LIBS homeward_gallery ${OpenCV_LIBS})

homeward_test(age_estimate_gallery_test
  SOURCES age_estimate_gallery_test.cc embed_test_util.cc
  LIBS homeward_gallery ${OpenCV_LIBS})
