add_executable(age_calibrate age_calibration.cc)
target_compile_definitions(age_calibrate PRIVATE HOMEWARD_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
target_include_directories(age_calibrate PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(age_calibrate PRIVATE homeward_embed homeward_gallery
                                            nlohmann_json::nlohmann_json absl::strings
                                            absl::str_format)

# Age from the face (faceres-deep): error by age band and the fitted correction (docs/AGE.md).
add_executable(age_estimate_bench age_estimate_bench.cc)
target_include_directories(age_estimate_bench PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(age_estimate_bench PRIVATE homeward_embed homeward_bench_util absl::strings
                                                 absl::str_format)
