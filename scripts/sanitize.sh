#!/usr/bin/env bash
# Builds weft's test suite with sanitizers and runs it.
#
#   scripts/sanitize.sh address [CTEST ARGS...]   AddressSanitizer + UndefinedBehaviorSanitizer, every
#                                                 test (default mode); compiler: $CXX or g++
#   scripts/sanitize.sh thread  [CTEST ARGS...]   ThreadSanitizer over the OpenMP kernels; needs clang
#                                                 with libomp and Archer (see below)
#
# Any sanitizer report fails the test that triggered it (-fno-sanitize-recover=all, halt_on_error).
# Environment: BUILD_DIR (default build-asan / build-tsan), JOBS (default 2), CXX, and for
# thread TSAN_TARGETS (default: weft_tests weft_tests_avx2 weft_tests_scalar).
#
# Why clang for TSan: GCC's OpenMP runtime (libgomp) is not built with TSan, so TSan cannot see
# the synchronisation inside it (barriers, the end of a parallel region) and reports races that
# are not there. LLVM's libomp announces its synchronisation through the OMPT interface, and
# Archer (libarcher.so, in Debian's libomp-NN-dev) turns those events into TSan annotations, so
# only real races in weft's own code are reported. Debian/Ubuntu: apt-get install clang libomp-dev
# (libomp-NN-dev for a clang-NN; Debian installs one libomp-NN-dev at a time).
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-address}"
shift || true
jobs="${JOBS:-2}"
# Build type "Sanitize" has no flags of its own: -O1 -g below (quick to compile, fast enough to
# run, asserts on); the CUDA backend is left out (nvcc and the sanitizers do not mix).
common=(-DCMAKE_BUILD_TYPE=Sanitize -DWEFT_BUILD_BENCH=OFF -DWEFT_BUILD_EXAMPLES=ON -DWEFT_CUDA=OFF)

case "$mode" in
address)
    build="${BUILD_DIR:-build-asan}"
    flags="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
    cmake -S . -B "$build" "${common[@]}" -DCMAKE_CXX_COMPILER="${CXX:-g++}" \
          -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags"
    cmake --build "$build" -j "$jobs"
    export ASAN_OPTIONS="detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1:abort_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
    # The consumer and packaging tests build other projects without the sanitizers: skip them.
    ctest --test-dir "$build" --output-on-failure -j "$jobs" -E "^(consumer|packaging)_" "$@"
    ;;
thread)
    build="${BUILD_DIR:-build-tsan}"
    # The newest clang whose LLVM directory has OpenMP (omp.h, libomp) and Archer, unless CXX is set.
    llvm_lib=""
    for candidate in ${CXX:-$(compgen -c clang++ | grep -E '^clang\+\+(-[0-9]+)?$' | sort -u | sort -t- -k2 -rn)}; do
        command -v "$candidate" >/dev/null || continue
        resource=$("$candidate" -print-resource-dir)
        lib=$(cd "$resource/../.." && pwd)   # e.g. /usr/lib/llvm-14/lib
        if [ -f "$resource/include/omp.h" ] && [ -f "$lib/libarcher.so" ]; then
            CXX="$candidate" llvm_lib="$lib"
            break
        fi
    done
    if [ -z "$llvm_lib" ]; then
        echo "sanitize: no clang with OpenMP and Archer (libarcher.so); install libomp-dev (or libomp-NN-dev for clang-NN)" >&2
        exit 2
    fi
    echo "sanitize: ThreadSanitizer with $("$CXX" --version | head -1), Archer from $llvm_lib"
    # The test programs that run OpenMP kernels (TSAN_TARGETS to choose others).
    read -r -a targets <<<"${TSAN_TARGETS:-weft_tests weft_tests_avx2 weft_tests_scalar}"
    flags="-O1 -g -fsanitize=thread -fno-omit-frame-pointer"
    # clang's -fopenmp links LLVM's libomp (the runtime Archer works with); the rpath makes the
    # tests load the libomp next to libarcher.so.
    cmake -S . -B "$build" "${common[@]}" -DCMAKE_CXX_COMPILER="$CXX" \
          -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags -Wl,-rpath,$llvm_lib"
    cmake --build "$build" -j "$jobs" --target "${targets[@]}"
    export OMP_NUM_THREADS="${OMP_NUM_THREADS:-4}"
    export OMP_TOOL_LIBRARIES="$llvm_lib/libarcher.so"
    export ARCHER_OPTIONS="${ARCHER_OPTIONS:-verbose=1}"
    # libomp itself is not instrumented; Archer supplies its synchronisation.
    export TSAN_OPTIONS="ignore_noninstrumented_modules=1:halt_on_error=1:second_deadlock_stack=1${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
    # Stack traces need llvm-symbolizer; clang-NN alone does not bring llvm-symbolizer-NN, any version does.
    symbolizer=$(compgen -c llvm-symbolizer | sort -V | tail -1 || true)
    [ -n "$symbolizer" ] && TSAN_OPTIONS="$TSAN_OPTIONS:external_symbolizer_path=$(command -v "$symbolizer")"
    regex=$(IFS='|'; echo "^(${targets[*]})\$")
    ctest --test-dir "$build" --output-on-failure -j 1 -R "$regex" "$@"
    ;;
*)
    echo "usage: scripts/sanitize.sh [address|thread] [ctest args...]" >&2
    exit 2
    ;;
esac
