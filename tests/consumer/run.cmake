# cmake -DMODE=package|subdirectory -DENTMAX_BUILD_DIR=... -DENTMAX_SOURCE_DIR=... -DWORK_DIR=...
#       -DGENERATOR=... -DCXX=... -DBUILD_TYPE=... -P run.cmake
# package: installs the entmax build tree into WORK_DIR/prefix, then configures, builds and runs
# tests/consumer against that prefix alone. subdirectory: the same through add_subdirectory.
foreach(var MODE ENTMAX_SOURCE_DIR WORK_DIR GENERATOR CXX)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run.cmake: ${var} is not set")
  endif()
endforeach()

function(step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer test (${MODE}) failed: ${ARGN}\n${out}")
  endif()
  message(STATUS "${out}")
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
set(consumer_args -S "${ENTMAX_SOURCE_DIR}/tests/consumer" -B "${WORK_DIR}/build" -G "${GENERATOR}"
    -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_BUILD_TYPE=${BUILD_TYPE} -DENTMAX_CONSUMER_MODE=${MODE})
if(MODE STREQUAL "package")
  step("${CMAKE_COMMAND}" --install "${ENTMAX_BUILD_DIR}" --prefix "${WORK_DIR}/prefix")
  # Only the fresh prefix: the build tree is not registered and must not be found.
  step("${CMAKE_COMMAND}" ${consumer_args} "-DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix"
       "-DENTMAX_EXPECTED_PREFIX=${WORK_DIR}/prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
else()
  step("${CMAKE_COMMAND}" ${consumer_args} "-DENTMAX_SOURCE_DIR=${ENTMAX_SOURCE_DIR}")
endif()
step("${CMAKE_COMMAND}" --build "${WORK_DIR}/build")
step("${WORK_DIR}/build/consumer")
