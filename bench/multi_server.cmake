# multi_server_bench: several real homeward-server processes on one real PostgreSQL (started by
# the bench as the postgres user): visibility and deletion lag between servers, ingest with one
# and two servers next to SQLite, search by face id at 100k and 1M faces on both catalogs.
# See docs/BENCHMARKS.md. It drives the binaries, so it links only the generated client code.
find_package(gRPC CONFIG REQUIRED)
add_executable(multi_server_bench multi_server_bench.cc ${PROJECT_SOURCE_DIR}/tests/postgres_server.cc)
target_compile_definitions(multi_server_bench PRIVATE
  HOMEWARD_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
  HOMEWARD_SERVER_BINARY="$<TARGET_FILE:homeward-server>"
  HOMEWARD_SERVICE_BENCH_BINARY="$<TARGET_FILE:service_bench>")
target_link_libraries(multi_server_bench PRIVATE homeward_proto homeward_bench_util
                      homeward_test_process PostgreSQL::PostgreSQL absl::strings absl::status
                      absl::statusor gRPC::grpc++ Threads::Threads)
add_dependencies(multi_server_bench homeward-server service_bench)
