#!/usr/bin/env bash
# Builds weft's libFuzzer targets (fuzz/) with clang and -fsanitize=fuzzer,address,undefined, then
# fuzzes each for SECONDS (default 60), starting from its seeds in fuzz/corpus/<target>/.
#
#   scripts/run-fuzzers.sh [SECONDS] [TARGET...]     e.g. scripts/run-fuzzers.sh 300 safetensors
#
# Targets (fuzz/fuzz_<target>.cpp): safetensors, safetensors_index, hf_config, npy, gguf (the GGUF
# reader and the tokenizer in its metadata), tokenizer_json, sentencepiece_model (tokenizer.model),
# tokenize (encode/decode round trips of the real test tokenizers). Default: all of them.
# Environment: CXX (a clang++; default: the newest clang++-NN on PATH, else clang++),
# BUILD_DIR (default build-fuzz; the corpus each run grows is kept in BUILD_DIR/corpus/<target>
# and reused by the next run), JOBS (build parallelism, default 2).
# Needs clang with libFuzzer: Debian/Ubuntu `apt-get install clang` (clang 14 and later; the
# package libclang-rt-NN-dev holds libFuzzer). Exit status 1 if any target found a crash; each
# crashing input is left in BUILD_DIR/artifacts/ with a command that reproduces it.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(safetensors safetensors_index hf_config npy gguf tokenizer_json sentencepiece_model tokenize)
build="${BUILD_DIR:-build-fuzz}"

if [ -z "${CXX:-}" ]; then
    CXX=$(compgen -c clang++- | grep -E '^clang\+\+-[0-9]+$' | sort -t- -k2 -n | tail -1 || true)
    [ -z "$CXX" ] && CXX=clang++
fi
command -v "$CXX" >/dev/null || { echo "run-fuzzers: $CXX not found; install clang (apt-get install clang)" >&2; exit 2; }
echo "run-fuzzers: $("$CXX" --version | head -1), ${seconds}s per target: ${targets[*]}"
# Stack traces need llvm-symbolizer; clang-NN alone does not bring llvm-symbolizer-NN, any version does.
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ]; then
    symbolizer=$(compgen -c llvm-symbolizer | sort -V | tail -1 || true)
    if [ -n "$symbolizer" ]; then
        ASAN_SYMBOLIZER_PATH=$(command -v "$symbolizer")
        export ASAN_SYMBOLIZER_PATH
    fi
fi

cmake -S fuzz -B "$build" -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_BUILD_TYPE= >/dev/null
cmake --build "$build" -j "${JOBS:-2}" --target "${targets[@]/#/fuzz_}"

# The loaders refuse a file by throwing weft::Error, and with stack-use-after-return detection on
# (the default from clang 15) every throw sweeps ASan's fake stacks: ten times fewer executions.
# scripts/sanitize.sh address keeps that detection on for the test suite.
export ASAN_OPTIONS="detect_stack_use_after_return=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

status=0
mkdir -p "$build/artifacts"
for t in "${targets[@]}"; do
    corpus="$build/corpus/$t"
    mkdir -p "$corpus"
    log="$build/fuzz_$t.log"
    # Longest input: room for the biggest seed (reference.gguf is 12 KB); texts for tokenize stay
    # short (six tokenizers encode and decode each one).
    case "$t" in
        gguf|tokenizer_json|sentencepiece_model) max_len=16384 ;;
        tokenize) max_len=1024 ;;
        *) max_len=8192 ;;
    esac
    echo "run-fuzzers: fuzz_$t for ${seconds}s (log: $log)"
    # corpus first (written to), then the committed seeds (read only).
    if "$build/fuzz_$t" "$corpus" "fuzz/corpus/$t" -dict=fuzz/weft.dict -max_total_time="$seconds" \
           -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 -use_value_profile=1 -print_final_stats=1 \
           -artifact_prefix="$build/artifacts/$t-" >"$log" 2>&1; then
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
        echo "run-fuzzers: fuzz_$t: ok, $execs executions, $cov, corpus $(find "$corpus" -type f | wc -l) inputs"
    else
        status=1
        echo "run-fuzzers: fuzz_$t FOUND A BUG:"
        grep -E "ERROR: |runtime error|invariant broken|SUMMARY|Test unit written" "$log" | head -10
        echo "  reproduce: $build/fuzz_$t <the file named above>   (then add it to fuzz/corpus/$t/ once fixed)"
    fi
done
exit $status
