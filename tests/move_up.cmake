# homeward-move-up (store/move_up.h, tools/move_up.cc): a real data dir built through the
# Gallery from real photos, moved into a real PostgreSQL 15 started by the test, then served by
# the real homeward-server; skips when postgresql-15 or the models are absent.
if(NOT TARGET homeward-server OR NOT TARGET homeward-move-up)
  return()
endif()
homeward_test(move_up_test
  SOURCES move_up_test.cc server_process.cc embed_test_util.cc
  LIBS homeward_service homeward_gallery homeward_catalog_backends SQLite::SQLite3 ${OpenCV_LIBS})
if(TARGET move_up_test)
  add_dependencies(move_up_test homeward-server homeward-move-up)
  target_compile_definitions(move_up_test PRIVATE
    HOMEWARD_SERVER_BINARY="$<TARGET_FILE:homeward-server>"
    HOMEWARD_MOVE_UP_BINARY="$<TARGET_FILE:homeward-move-up>")
endif()
