#!/usr/bin/env bash
# Builds weft's tests with sanitizers and runs them.
#
#   scripts/sanitize.sh address     [CTEST ARGS...]    AddressSanitizer + UndefinedBehaviorSanitizer
#                                                      over the whole ctest suite (default mode)
#   scripts/sanitize.sh thread      [DOCTEST ARGS...]  ThreadSanitizer over the threaded kernels:
#                                                      one test program of the tests that run them
#   scripts/sanitize.sh thread-full [CTEST ARGS...]    ThreadSanitizer over all of weft_tests,
#                                                      weft_tests_avx2 and weft_tests_scalar (slow)
#
# Any sanitizer report fails the test that triggered it (-fno-sanitize-recover=all, halt_on_error).
# Environment: BUILD_DIR (default build-asan / build-tsan / build-tsan-full), JOBS (default 2),
# SANITIZE_OPT (address: the optimisation level, default -O0), CXX
# (address: default g++; thread: default the newest clang with OpenMP and Archer),
# OMP_NUM_THREADS (thread modes, default 4), TSAN_SOURCES (thread: the test sources, relative to
# tests/, default below), TSAN_TARGETS (thread-full: default weft_tests weft_tests_avx2
# weft_tests_scalar).
#
# What each mode covers:
#   address      every test ctest runs (the doctest programs for the native, AVX2 and scalar code
#                paths, decode_allocations, the example programs on good and bad input, the
#                compile-fail checks) except consumer_* and packaging_*, which build other projects
#                without the sanitizers. Detection includes stack-use-after-return, leaks and
#                initialisation order.
#   thread       weft_tsan_kernels: tests/main.cpp and the test files of every header that runs
#                OpenMP loops (core/threading, cpu/ gemm, gemv, quant_matmul, AMX; expr/ assign,
#                reduce, matmul; nn/ linear, norm, attention, moe; quant/ activation, quantize) plus
#                the whole-model tests that run them all together (Llama f32/f16/bf16, quantized
#                Llama, Llama 4 MoE), built for this machine's ISA (-march=native). The loaders,
#                tokenizers, samplers and chat templates run on one thread and are left to address.
#   thread-full  the three whole doctest programs, as CI did before; about three times the build.
#
# Why clang for TSan: GCC's OpenMP runtime (libgomp) is not built with TSan, so TSan cannot see
# the synchronisation inside it (barriers, the end of a parallel region) and reports races that
# are not there. LLVM's libomp announces its synchronisation through the OMPT interface, and
# Archer (libarcher.so, in Debian's libomp-NN-dev) turns those events into TSan annotations, so
# only real races in weft's own code are reported. Debian/Ubuntu: apt-get install clang libomp-dev
# (libomp-NN-dev for a clang-NN; Debian installs one libomp-NN-dev at a time), or
# scripts/install-deps.sh --hardening.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

mode="${1:-address}"
shift || true
jobs="${JOBS:-2}"
# Build type "Sanitize" has no flags of its own: the flags below (asserts on); the CUDA backend is
# left out (nvcc and the sanitizers do not mix). -g1 (line tables) is all a sanitizer report
# needs for its stack traces, and compiles about a third faster than -g (GCC 12, ASan build of a
# test file: 107 s against 162 s). address builds at -O0 by default: on the 2-core Zen 4 machine
# the whole ASan + UBSan build and run took 9 min 45 s (build 6 1/4 min, tests 3 1/2 min) against
# about 26 min at -O1 -g (build 25 min, tests 70 s), and -O0 keeps every access the source makes.
# With the tests built as unity groups (tests/CMakeLists.txt) the -O0 run takes 7 1/2 min.
common=(-DCMAKE_BUILD_TYPE=Sanitize -DWEFT_BUILD_BENCH=OFF -DWEFT_CUDA=OFF)

# Stack traces need llvm-symbolizer; clang-NN alone does not bring llvm-symbolizer-NN, any version does.
symbolizer=$(compgen -c llvm-symbolizer | sort -V | tail -1 || true)
symbolizer_path=""
[ -n "$symbolizer" ] && symbolizer_path=$(command -v "$symbolizer")

# Sets CXX and llvm_lib to the newest clang whose LLVM directory has OpenMP (omp.h, libomp) and
# Archer, unless CXX is set.
find_tsan_clang() {
    llvm_lib=""
    for candidate in ${CXX:-$(compgen -c clang++ | grep -E '^clang\+\+(-[0-9]+)?$' | sort -u | sort -t- -k2 -rn)}; do
        command -v "$candidate" >/dev/null || continue
        resource=$("$candidate" -print-resource-dir)
        lib=$(cd "$resource/../.." && pwd)   # e.g. /usr/lib/llvm-14/lib
        if [ -f "$resource/include/omp.h" ] && [ -f "$lib/libarcher.so" ]; then
            CXX="$candidate" llvm_lib="$lib"
            return
        fi
    done
    echo "sanitize: no clang with OpenMP and Archer (libarcher.so); install libomp-dev (or libomp-NN-dev for clang-NN)" >&2
    exit 2
}

tsan_environment() {
    export OMP_NUM_THREADS="${OMP_NUM_THREADS:-4}"
    export OMP_TOOL_LIBRARIES="$llvm_lib/libarcher.so"
    export ARCHER_OPTIONS="${ARCHER_OPTIONS:-verbose=1}"
    # libomp itself is not instrumented; Archer supplies its synchronisation.
    export TSAN_OPTIONS="ignore_noninstrumented_modules=1:halt_on_error=1:second_deadlock_stack=1${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
    [ -n "$symbolizer_path" ] && TSAN_OPTIONS="$TSAN_OPTIONS:external_symbolizer_path=$symbolizer_path"
    return 0
}

tsan_flags="-O1 -g -fsanitize=thread -fno-omit-frame-pointer"

case "$mode" in
address)
    build="${BUILD_DIR:-build-asan}"
    flags="${SANITIZE_OPT:--O0} -g1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
    cmake -S . -B "$build" "${common[@]}" -DWEFT_BUILD_EXAMPLES=ON -DCMAKE_CXX_COMPILER="${CXX:-g++}" \
          -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags"
    cmake --build "$build" -j "$jobs"
    export ASAN_OPTIONS="detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1:abort_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
    [ -n "$symbolizer_path" ] && export ASAN_SYMBOLIZER_PATH="${ASAN_SYMBOLIZER_PATH:-$symbolizer_path}"
    # The consumer and packaging tests build other projects without the sanitizers: skip them.
    ctest --test-dir "$build" --output-on-failure -j "$jobs" -E "^(consumer|packaging)_" "$@"
    ;;
thread)
    build="${BUILD_DIR:-build-tsan}"
    find_tsan_clang
    echo "sanitize: ThreadSanitizer with $("$CXX" --version | head -1), Archer from $llvm_lib"
    read -r -a sources <<<"${TSAN_SOURCES:-cpu/test_*.cpp expr/test_*.cpp nn/test_*.cpp quant/test_quantize.cpp models/test_llama.cpp models/test_llama_quantized.cpp models/test_llama4.cpp}"
    files=()
    for s in "${sources[@]}"; do
        for f in tests/$s; do
            [ -f "$f" ] || { echo "sanitize: TSAN_SOURCES names $s, which matches no file under tests/" >&2; exit 2; }
            files+=("$root/$f")
        done
    done
    # A small project beside the build: weft's targets (as a subproject) and one test program of
    # the chosen sources, compiled like weft_tests (weft::openmp, weft_dev_flags, doctest).
    project="$build/project"
    mkdir -p "$project"
    cat >"$project/CMakeLists.txt.new" <<EOF
# Written by scripts/sanitize.sh thread.
cmake_minimum_required(VERSION 3.25)
project(weft_tsan LANGUAGES CXX)
add_subdirectory("$root" weft EXCLUDE_FROM_ALL)
find_package(doctest REQUIRED)
add_executable(weft_tsan_kernels "$root/tests/main.cpp" $(printf '"%s" ' "${files[@]}"))
target_link_libraries(weft_tsan_kernels PRIVATE weft::openmp weft_dev_flags doctest::doctest)
target_compile_definitions(weft_tsan_kernels PRIVATE WEFT_SOURCE_DIR="$root")
# Unity build, as weft_tests (tests/CMakeLists.txt): the whole models in one group, the rest in another.
set_target_properties(weft_tsan_kernels PROPERTIES UNITY_BUILD ON UNITY_BUILD_MODE GROUP)
set_source_files_properties("$root/tests/main.cpp" PROPERTIES SKIP_UNITY_BUILD_INCLUSION ON)
$(for f in "${files[@]}"; do [[ "$f" =~ /tests/(models|nn)/ ]] && g=models || g=kernels; printf 'set_source_files_properties("%s" PROPERTIES UNITY_GROUP %s)\n' "$f" "$g"; done)
EOF
    # Rewritten only when it changes, so an unchanged rebuild stays incremental.
    cmp -s "$project/CMakeLists.txt.new" "$project/CMakeLists.txt" || mv "$project/CMakeLists.txt.new" "$project/CMakeLists.txt"
    rm -f "$project/CMakeLists.txt.new"
    # clang's -fopenmp links LLVM's libomp (the runtime Archer works with); the rpath makes the
    # program load the libomp next to libarcher.so.
    cmake -S "$project" -B "$build" "${common[@]}" -DCMAKE_CXX_COMPILER="$CXX" \
          -DCMAKE_CXX_FLAGS="$tsan_flags" -DCMAKE_EXE_LINKER_FLAGS="$tsan_flags -Wl,-rpath,$llvm_lib"
    cmake --build "$build" -j "$jobs" --target weft_tsan_kernels
    tsan_environment
    echo "sanitize: $build/weft_tsan_kernels $*  (OMP_NUM_THREADS=$OMP_NUM_THREADS)"
    "$build/weft_tsan_kernels" --duration=true "$@"
    ;;
thread-full)
    build="${BUILD_DIR:-build-tsan-full}"
    find_tsan_clang
    echo "sanitize: ThreadSanitizer with $("$CXX" --version | head -1), Archer from $llvm_lib"
    # The test programs that run OpenMP kernels (TSAN_TARGETS to choose others).
    read -r -a targets <<<"${TSAN_TARGETS:-weft_tests weft_tests_avx2 weft_tests_scalar}"
    cmake -S . -B "$build" "${common[@]}" -DWEFT_BUILD_EXAMPLES=OFF -DCMAKE_CXX_COMPILER="$CXX" \
          -DCMAKE_CXX_FLAGS="$tsan_flags" -DCMAKE_EXE_LINKER_FLAGS="$tsan_flags -Wl,-rpath,$llvm_lib"
    cmake --build "$build" -j "$jobs" --target "${targets[@]}"
    tsan_environment
    regex=$(IFS='|'; echo "^(${targets[*]})\$")
    ctest --test-dir "$build" --output-on-failure -j 1 -R "$regex" "$@"
    ;;
*)
    echo "usage: scripts/sanitize.sh [address|thread|thread-full] [ctest or doctest args...]" >&2
    exit 2
    ;;
esac
