# Access control, audit, TLS and deletion traces against the real homeward-server binary
# (docs/reliability/access.md). Each test starts the binary on free loopback ports with a
# temporary data dir; all skip when the models are absent.
if(NOT TARGET homeward-server)
  message(WARNING "skipping the access tests: no homeward-server target yet")
  return()
endif()

pkg_check_modules(HTTPLIB_ACCESS REQUIRED IMPORTED_TARGET cpp-httplib)
foreach(t access_matrix_test tls_test deletion_trace_test)
  homeward_test(${t}
    SOURCES ${t}.cc embed_test_util.cc
    LIBS homeward_service homeward_test_process PkgConfig::HTTPLIB_ACCESS nlohmann_json::nlohmann_json
         SQLite::SQLite3 ${OpenCV_LIBS})
  if(TARGET ${t})
    add_dependencies(${t} homeward-server)
    target_compile_definitions(${t} PRIVATE
      HOMEWARD_SERVER_BINARY="$<TARGET_FILE:homeward-server>")
  endif()
endforeach()
