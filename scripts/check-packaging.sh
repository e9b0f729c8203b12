#!/usr/bin/env bash
# Checks weft's packaging without vcpkg or Conan installed (what CI runs), from a build that has
# no test suite, so it takes seconds:
#   - cmake --install into a temporary prefix, then tests/consumer/project (find_package and
#     add_subdirectory) and test_package/ (plain find_package) are built and run against it;
#   - vcpkg.json and ports/weft/vcpkg.json against vcpkg's schema; ports/weft/portfile.cmake run
#     with stand-ins for vcpkg's functions (with and without the openmp feature);
#   - the Conan recipes parse (python3, when installed).
# The same tests run in the main test suite (ctest -L packaging).
#
#   scripts/check-packaging.sh            the checks above
#   scripts/check-packaging.sh --conan    also a real `conan create` (needs conan: pip install conan;
#                                         nlohmann/json comes from the system's headers through
#                                         scripts/conan/nlohmann_json, so no remote is needed)
# Environment: BUILD_DIR (default: a new temporary directory), CONAN_HOME (default: conan's own).
set -euo pipefail
cd "$(dirname "$0")/.."

build="${BUILD_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/weft-packaging.XXXXXX")}"
echo "check-packaging: build directory $build"
cmake -S . -B "$build" -DWEFT_BUILD_TESTS=OFF -DWEFT_BUILD_EXAMPLES=OFF -DWEFT_BUILD_BENCH=OFF \
      -DCMAKE_PROJECT_weft_INCLUDE="$PWD/cmake/PackagingStandalone.cmake" >/dev/null
ctest --test-dir "$build" --output-on-failure -j "${JOBS:-2}"

if [ "${1:-}" = "--conan" ]; then
    command -v conan >/dev/null || { echo "check-packaging: conan not found (pip install conan)" >&2; exit 2; }
    conan profile detect --exist-ok >/dev/null
    # nlohmann_json from this machine's headers, unless the cache already has a 3.11.
    if ! conan list "nlohmann_json/[>=3.11 <3.12]" 2>/dev/null | grep -q "nlohmann_json/3\.11"; then
        conan create scripts/conan/nlohmann_json
    fi
    conan create . -s compiler.cppstd=20 -c tools.build:jobs="${JOBS:-2}"
    conan create . -s compiler.cppstd=20 -c tools.build:jobs="${JOBS:-2}" -o "weft/*:openmp=False"
fi
echo "check-packaging: all packaging checks passed"
