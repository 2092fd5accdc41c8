# homeward-server on a PostgreSQL catalog (--catalog), against the real binary and a real
# PostgreSQL 15 started by the test; skips when postgresql-15 or the models are absent.
if(NOT TARGET homeward-server)
  return()
endif()
homeward_test(postgres_catalog_server_test
  SOURCES postgres_catalog_server_test.cc server_process.cc embed_test_util.cc
  LIBS homeward_service homeward_catalog_backends ${OpenCV_LIBS})
if(TARGET postgres_catalog_server_test)
  add_dependencies(postgres_catalog_server_test homeward-server)
  target_compile_definitions(postgres_catalog_server_test PRIVATE
    HOMEWARD_SERVER_BINARY="$<TARGET_FILE:homeward-server>")
endif()
