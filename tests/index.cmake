homeward_test(face_index_test SOURCES face_index_test.cc LIBS homeward_index)
