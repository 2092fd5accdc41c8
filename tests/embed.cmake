homeward_test(embed_test
  SOURCES embed_test_util.cc face_pipeline_test.cc model_converter_test.cc image_decode_test.cc
          age_estimator_test.cc cnn_face_detector_test.cc
  LIBS homeward_embed homeward_sha256 ${OpenCV_LIBS} nlohmann_json::nlohmann_json)
