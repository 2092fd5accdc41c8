# Crash and full-disk reliability (docs/reliability/crashes.md).
# crash_import_short: the crash harness (bench/crash_import.cc) on 60 photos with 3 kills
# (exit 77 = skipped: no models or LFW data).
if(TARGET crash_import)
  add_test(NAME crash_import_short
    COMMAND crash_import --photos 60 --kills 3 --seed 3 --search-samples 1)
  set_tests_properties(crash_import_short PROPERTIES
    TIMEOUT 600 SKIP_RETURN_CODE 77 RUN_SERIAL TRUE
    ENVIRONMENT "OMP_WAIT_POLICY=PASSIVE")
endif()

# disk_full_test: a small tmpfs as the data directory (skipped when mount is not permitted).
if(TARGET homeward-server)
  homeward_test(disk_full_test
    SOURCES disk_full_test.cc
    LIBS homeward_proto homeward_sha256 homeward_test_process SQLite::SQLite3 ${OpenCV_LIBS} gRPC::grpc++
         absl::strings)
  if(TARGET disk_full_test)
    add_dependencies(disk_full_test homeward-server)
    target_compile_definitions(disk_full_test PRIVATE
      HOMEWARD_SERVER_BIN="$<TARGET_FILE:homeward-server>")
  endif()
endif()
