# End-to-end tests of the clients against a real homeward-server (started by the tests on a
# free loopback port with a temporary --data-dir and --insecure-dev).
if(NOT TARGET homeward-server)
  message(WARNING "skipping cli_test and python_client_test: no homeward-server target yet")
  return()
endif()

homeward_test(cli_test SOURCES cli_test.cc embed_test_util.cc
  LIBS nlohmann_json::nlohmann_json homeward_embed ${OpenCV_LIBS})
if(TARGET cli_test)
  target_compile_definitions(cli_test PRIVATE
    HOMEWARD_SERVER_BIN="$<TARGET_FILE:homeward-server>"
    HOMEWARD_CLI_BIN="$<TARGET_FILE:homeward>")
  add_dependencies(cli_test homeward homeward-server)
endif()

# The first python3 that has grpcio and protobuf (Debian's python3-grpcio, python3-protobuf);
# a pyenv or venv python earlier on PATH usually lacks them.
find_package(Python3 COMPONENTS Interpreter)
set(HOMEWARD_TEST_PYTHON "")
foreach(py /usr/bin/python3 ${Python3_EXECUTABLE})
  execute_process(COMMAND ${py} -c "import grpc, google.protobuf"
                  RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
  if(rc EQUAL 0)
    set(HOMEWARD_TEST_PYTHON ${py})
    break()
  endif()
endforeach()
if(NOT HOMEWARD_TEST_PYTHON)
  message(WARNING "skipping python_client_test: no python3 with grpc and protobuf")
elseif(TARGET homeward_python_stubs)
  # The one-face photo (tests/embed_test_util.h: sample2.jpg shows three faces to the CNN).
  add_executable(write_one_face_photo write_one_face_photo.cc embed_test_util.cc)
  target_include_directories(write_one_face_photo PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(write_one_face_photo PRIVATE homeward_embed ${OpenCV_LIBS})
  target_compile_definitions(write_one_face_photo PRIVATE
    HOMEWARD_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    HOMEWARD_DEFAULT_MODELS_DIR="${PROJECT_SOURCE_DIR}/models")
  set(one_face_photo ${CMAKE_BINARY_DIR}/test-data/one_face.jpg)
  add_test(NAME one_face_photo COMMAND write_one_face_photo ${one_face_photo})
  set_tests_properties(one_face_photo PROPERTIES FIXTURES_SETUP one_face_photo)
  add_test(NAME python_client_test
    COMMAND ${HOMEWARD_TEST_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/python_client_test.py
            --server-bin $<TARGET_FILE:homeward-server>
            --photo ${one_face_photo})
  set_tests_properties(python_client_test PROPERTIES
    FIXTURES_REQUIRED one_face_photo
    TIMEOUT 600
    ENVIRONMENT "PYTHONPATH=${CMAKE_BINARY_DIR}/python:${PROJECT_SOURCE_DIR}/clients/python;PYTHONDONTWRITEBYTECODE=1;OMP_WAIT_POLICY=PASSIVE")
endif()
