# load_bench: the reliability load test (many concurrent clients for minutes against the real
# homeward-server binary over a >= 100k-face gallery). See docs/reliability/load.md.
# It drives the binaries, so it links only the generated client code.
find_package(gRPC CONFIG REQUIRED)
add_executable(load_bench load_bench.cc)
target_compile_definitions(load_bench PRIVATE
  HOMEWARD_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
  HOMEWARD_SERVER_BINARY="$<TARGET_FILE:homeward-server>"
  HOMEWARD_SERVICE_BENCH_BINARY="$<TARGET_FILE:service_bench>")
target_link_libraries(load_bench PRIVATE homeward_proto homeward_bench_util homeward_test_process
                      gRPC::grpc++ Threads::Threads)
add_dependencies(load_bench homeward-server service_bench)
