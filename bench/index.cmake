add_executable(index_bench index_bench.cc)
target_link_libraries(index_bench PRIVATE homeward_index homeward_bench_util faiss OpenMP::OpenMP_CXX
                      nlohmann_json::nlohmann_json absl::strings absl::str_format)
