add_executable(age_calibrate age_calibration.cc)
target_compile_definitions(age_calibrate PRIVATE HOMEWARD_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
target_include_directories(age_calibrate PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(age_calibrate PRIVATE homeward_embed homeward_gallery
                                            nlohmann_json::nlohmann_json absl::strings
                                            absl::str_format)
