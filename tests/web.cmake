# The JSON/HTTP gateway (server/http_gateway.*) over real HTTP, and the web pages in a real
# headless Chromium (tests/browser, playwright-core; `scripts/setup.sh test` installs both).
pkg_check_modules(HTTPLIB_TEST REQUIRED IMPORTED_TARGET cpp-httplib)
homeward_test(http_gateway_test
  SOURCES http_gateway_test.cc embed_test_util.cc test_server.cc
  LIBS homeward_service homeward_test_process PkgConfig::HTTPLIB_TEST nlohmann_json::nlohmann_json ${OpenCV_LIBS})

find_program(HOMEWARD_NODE node)
find_program(HOMEWARD_CHROMIUM chromium PATHS /usr/bin)
if(HOMEWARD_NODE AND HOMEWARD_CHROMIUM)
  add_test(NAME web_browser_test
    COMMAND ${HOMEWARD_NODE} ${CMAKE_CURRENT_SOURCE_DIR}/browser/web_test.js
    WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/browser)
  set_tests_properties(web_browser_test PROPERTIES
    TIMEOUT 600
    ENVIRONMENT "OMP_WAIT_POLICY=PASSIVE;HOMEWARD_SERVER_BINARY=$<TARGET_FILE:homeward-server>;HOMEWARD_CHROMIUM=${HOMEWARD_CHROMIUM};HOMEWARD_DEMO_DIR=${PROJECT_SOURCE_DIR}/models/cache/face-api-1.7.15/demo;HOMEWARD_TEST_OUTPUT=${CMAKE_BINARY_DIR}/test-output/web")
  add_dependencies(http_gateway_test homeward-server)
else()
  message(STATUS "web_browser_test skipped: needs node and chromium (scripts/setup.sh)")
endif()
