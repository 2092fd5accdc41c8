# scripts/setup.sh, the newcomer's first command (tests/setup_test.sh): a few seconds each, no
# network, no root, nothing written outside a temporary directory, no server started.
find_program(HOMEWARD_BASH bash)
find_program(HOMEWARD_NPM npm)
if(HOMEWARD_BASH AND HOMEWARD_NPM)
  # `setup.sh models` with the npm registry unreachable: npm's error and the offline steps.
  add_test(NAME setup_offline_test
    COMMAND ${HOMEWARD_BASH} ${CMAKE_CURRENT_SOURCE_DIR}/setup_test.sh offline)
  set_tests_properties(setup_offline_test PROPERTIES TIMEOUT 120)
else()
  message(STATUS "setup_offline_test skipped: needs bash and npm (scripts/setup.sh deps)")
endif()
if(HOMEWARD_BASH)
  # `setup.sh run`'s server command line (HOMEWARD_DRY_RUN=1): gRPC, web pages, gateway, URL.
  add_test(NAME setup_run_command_test
    COMMAND ${HOMEWARD_BASH} ${CMAKE_CURRENT_SOURCE_DIR}/setup_test.sh run)
  set_tests_properties(setup_run_command_test PROPERTIES TIMEOUT 60)
endif()
