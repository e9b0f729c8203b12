# Registers weft's packaging and consumer tests in a build that has no test suite, for
# scripts/check-packaging.sh:
#   cmake -S . -B B -DWEFT_BUILD_TESTS=OFF -DCMAKE_PROJECT_weft_INCLUDE=<this file> && ctest --test-dir B
# (CMake includes this right after weft's project() call.)
enable_testing()
add_subdirectory(${PROJECT_SOURCE_DIR}/tests/consumer ${PROJECT_BINARY_DIR}/tests/consumer)
include(${CMAKE_CURRENT_LIST_DIR}/PackagingTests.cmake)
