# The deployment of docs/DEPLOY.md end to end (tests/deploy_e2e_test.sh): PostgreSQL, two
# homeward-server processes on it and nginx in front, all on loopback; skipped (exit 77)
# only where postgresql-15 or nginx is not installed.
if(TARGET homeward-server AND TARGET homeward)
  add_test(NAME deploy_e2e_test COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/deploy_e2e_test.sh)
  set_tests_properties(deploy_e2e_test PROPERTIES
    SKIP_RETURN_CODE 77
    TIMEOUT 900
    ENVIRONMENT "HOMEWARD_BUILD_DIR=${PROJECT_BINARY_DIR};OMP_WAIT_POLICY=PASSIVE")
endif()
