# Data minimisation (issue 15, docs/PRIVACY.md): the catalog's expiry of SIGHTING cases on a
# real SQLite file and a real PostgreSQL database, and expiry and export end to end through the real server binary with its
# clock moved forward by --test-only-clock-offset-days (skipped without models and photos).
homeward_test(catalog_retention_test SOURCES catalog_retention_test.cc
  LIBS homeward_store homeward_catalog_backends absl::strings)
if(TARGET homeward-server)
  pkg_check_modules(HTTPLIB_RETENTION REQUIRED IMPORTED_TARGET cpp-httplib)
  homeward_test(retention_test
    SOURCES retention_test.cc server_process.cc embed_test_util.cc
    LIBS homeward_service homeward_sha256 PkgConfig::HTTPLIB_RETENTION
         nlohmann_json::nlohmann_json SQLite::SQLite3 ${OpenCV_LIBS})
  if(TARGET retention_test)
    add_dependencies(retention_test homeward-server)
    target_compile_definitions(retention_test PRIVATE
      HOMEWARD_SERVER_BINARY="$<TARGET_FILE:homeward-server>")
  endif()
endif()

# The export's ustar writer, read back by GNU tar.
homeward_test(tar_writer_test
  SOURCES tar_writer_test.cc ${PROJECT_SOURCE_DIR}/server/internal/tar_writer.cc
  LIBS absl::status absl::strings)
