#!/usr/bin/env bash
# Installs weft's build dependencies from Debian/Ubuntu packages (nothing is downloaded by CMake).
#   scripts/install-deps.sh          what the library and examples need (nlohmann/json)
#   scripts/install-deps.sh --tests  also doctest, Google Benchmark, Eigen, OpenBLAS and python3 (recipe checks)
#   scripts/install-deps.sh --hardening  also what scripts/run-fuzzers.sh and scripts/sanitize.sh need:
#                                    doctest, the default clang with its libFuzzer and sanitizer
#                                    runtimes (libclang-rt-dev), LLVM's OpenMP with Archer for
#                                    ThreadSanitizer (libomp-dev) and llvm-symbolizer (llvm).
#                                    GCC's ASan/UBSan runtimes come with g++. Debian 12: clang 14.
set -euo pipefail
packages="cmake g++ make nlohmann-json3-dev"
if [ "${1:-}" = "--tests" ]; then
    packages="$packages doctest-dev libbenchmark-dev libeigen3-dev libopenblas-dev python3"
elif [ "${1:-}" = "--hardening" ]; then
    packages="$packages doctest-dev clang libclang-rt-dev libomp-dev llvm"
fi
missing=""
for p in $packages; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
[ -z "$missing" ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends $missing
