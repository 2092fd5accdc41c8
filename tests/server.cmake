homeward_test(server_test
  SOURCES server_test.cc embed_test_util.cc test_server.cc
  LIBS homeward_service homeward_test_process ${OpenCV_LIBS})
if(TARGET server_test)
  add_dependencies(server_test homeward-server)
  target_compile_definitions(server_test PRIVATE
    HOMEWARD_SERVER_BINARY="$<TARGET_FILE:homeward-server>")
endif()

homeward_test(candidate_grants_test SOURCES candidate_grants_test.cc LIBS Threads::Threads)
