# A seeded corpus of >= 1,000 malformed requests through the real homeward-server binary, over
# gRPC and the JSON/HTTP gateway (docs/reliability/hostile-input.md).
if(NOT TARGET homeward-server)
  message(WARNING "skipping hostile_input_test: no homeward-server target yet")
  return()
endif()


pkg_check_modules(HTTPLIB_HOSTILE REQUIRED IMPORTED_TARGET cpp-httplib)
homeward_test(hostile_input_test
  SOURCES hostile_input_test.cc embed_test_util.cc
  LIBS homeward_proto gRPC::grpc++ homeward_embed homeward_test_process PkgConfig::HTTPLIB_HOSTILE nlohmann_json::nlohmann_json
       SQLite::SQLite3 ${OpenCV_LIBS})
if(TARGET hostile_input_test)
  add_dependencies(hostile_input_test homeward-server)
  target_compile_definitions(hostile_input_test PRIVATE
    HOMEWARD_SERVER_BINARY="$<TARGET_FILE:homeward-server>")
endif()
