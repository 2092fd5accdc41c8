# Faults of several homeward-server processes on one PostgreSQL catalog (issue 14): PostgreSQL
# restarted under load, one server killed with SIGKILL while both take uploads. Real binary,
# real PostgreSQL 15 started by the test, real photos; skips when postgresql-15, the models or
# the shared photos are absent.
if(NOT TARGET homeward-server)
  return()
endif()
homeward_test(multi_server_fault_test
  SOURCES multi_server_fault_test.cc server_process.cc embed_test_util.cc
  LIBS homeward_service homeward_catalog_backends ${OpenCV_LIBS})
if(TARGET multi_server_fault_test)
  add_dependencies(multi_server_fault_test homeward-server)
  target_compile_definitions(multi_server_fault_test PRIVATE
    HOMEWARD_SERVER_BINARY="$<TARGET_FILE:homeward-server>")
endif()
