#!/usr/bin/env bash
# Installs weft's build dependencies from Debian/Ubuntu packages (nothing is downloaded by CMake).
#   scripts/install-deps.sh          what the library and examples need (nlohmann/json)
#   scripts/install-deps.sh --tests  also doctest, Google Benchmark, Eigen, OpenBLAS and python3 (recipe checks)
set -euo pipefail
packages="cmake g++ make nlohmann-json3-dev"
if [ "${1:-}" = "--tests" ]; then
    packages="$packages doctest-dev libbenchmark-dev libeigen3-dev libopenblas-dev python3"
fi
missing=""
for p in $packages; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
[ -z "$missing" ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends $missing
