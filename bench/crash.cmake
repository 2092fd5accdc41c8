# crash_import: SIGKILLs the real homeward-server (and the importing CLI) at random points of
# a `homeward import`, restarts, resumes and checks consistency after every restart. See
# docs/reliability/crashes.md. Its short version is a ctest test (tests/crash.cmake).
if(TARGET homeward-server AND TARGET homeward)
  add_executable(crash_import crash_import.cc)
  target_include_directories(crash_import PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_definitions(crash_import PRIVATE
    HOMEWARD_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    HOMEWARD_SERVER_BIN="$<TARGET_FILE:homeward-server>"
    HOMEWARD_CLI_BIN="$<TARGET_FILE:homeward>")
  target_link_libraries(crash_import PRIVATE homeward_embed homeward_proto homeward_sha256
                        homeward_test_process homeward_bench_util
                        SQLite::SQLite3 ${OpenCV_LIBS} nlohmann_json::nlohmann_json
                        absl::strings absl::str_format gRPC::grpc++)
  add_dependencies(crash_import homeward-server homeward)
endif()
