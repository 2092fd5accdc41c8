# service_bench: gRPC and gallery overhead (SubmitSighting, search by face id), catalog bulk
# insert, restart and RSS at 1M faces. See docs/BENCHMARKS.md.
find_package(gRPC CONFIG REQUIRED)
find_package(spdlog CONFIG REQUIRED)
add_executable(service_bench service_bench.cc)
target_compile_definitions(service_bench PRIVATE HOMEWARD_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
target_link_libraries(service_bench PRIVATE homeward_service homeward_gallery homeward_proto
                      homeward_bench_util
                      faiss OpenMP::OpenMP_CXX nlohmann_json::nlohmann_json spdlog::spdlog
                      gRPC::grpc++ absl::status absl::statusor)
