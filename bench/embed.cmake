add_executable(embed_bench embed_bench.cc)
target_compile_definitions(embed_bench PRIVATE HOMEWARD_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
target_include_directories(embed_bench PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(embed_bench PRIVATE homeward_embed dlib::dlib ${OpenCV_LIBS}
                                          absl::strings absl::str_format PkgConfig::OPENBLAS)
