#!/usr/bin/env bash
# bench/cuda/run_gpu_proof.sh — on a machine with an NVIDIA GPU: builds the CUDA tests, benchmark and
# weft-generate / weft-perplexity with --device cuda for that GPU with nvcc and the host C++ compiler
# (no CMake or test framework needed), runs them, and prints the figures the CUDA issue asks for:
# per-op max errors against the CPU, golden-model logits errors, GPU vs CPU programs on the golden
# and demo models, decode tokens/s beside the copy ceiling, prefill GEMM TFLOP/s beside cuBLAS.
#   bench/cuda/run_gpu_proof.sh [OUT_DIR]         (default OUT_DIR: build-cuda-proof)
# Environment: NVCC (default: nvcc on PATH, else /usr/local/cuda/bin/nvcc), CUDA_ARCH (default: the
# first GPU's compute capability, e.g. 90), CXX (default g++), WEFT_BENCH_SHAPES / WEFT_BENCH_DTYPES /
# WEFT_BENCH_TOKENS.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/build-cuda-proof}
mkdir -p "$out"
nvcc=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
[ -x "$nvcc" ] || { echo "run_gpu_proof: no nvcc (set NVCC)"; exit 2; }
if [ -z "${CUDA_ARCH:-}" ]; then
    CUDA_ARCH=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '. ')
fi
CUDA_ARCH=${CUDA_ARCH:-90}
json_dir=""
for d in /usr/include /usr/local/include "$root/third_party"; do [ -f "$d/nlohmann/json.hpp" ] && json_dir=$d; done
[ -n "$json_dir" ] || { echo "run_gpu_proof: nlohmann/json.hpp not found (apt-get install nlohmann-json3-dev)"; exit 2; }

flags=(-std=c++20 -O3 -arch=sm_$CUDA_ARCH -I"$root/include" -I"$json_dir" --diag-suppress=1675,177 -Xcompiler=-Wall,-Wextra
       -DWEFT_SOURCE_DIR="\"$root\"")
echo "== nvcc $("$nvcc" --version | tail -1), sm_$CUDA_ARCH, into $out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true

# Compile the translation units in parallel, timing each one.
compile() {  # source object [extra nvcc flags]
    local t0=$(date +%s%N)
    if "$nvcc" "${flags[@]}" "${@:3}" -c "$root/$1" -o "$out/$2" > "$out/$2.log" 2>&1; then
        local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
        printf "compiled %-32s in %d.%01d s\n" "$1" $((ms / 1000)) $((ms % 1000 / 100))
    else
        echo "FAILED to compile $1:"; cat "$out/$2.log"; return 1
    fi
}
pids=()
compile tests/cuda/main.cu main.o & pids+=($!)
compile tests/cuda/test_cuda.cu test_cuda.o & pids+=($!)
compile tests/cuda/test_cuda_llama.cu test_cuda_llama.o & pids+=($!)
compile bench/cuda/bench_cuda.cu bench_cuda.o & pids+=($!)
compile examples/cuda/device_programs.cu device_programs.o -Xcompiler=-march=native & pids+=($!)
cxx=${CXX:-g++}
cxx_flags=(-std=c++20 -O3 -march=native -fopenmp -I"$root/include" -I"$json_dir" -DWEFT_EXAMPLES_CUDA=1
           -DWEFT_DEMO_MODEL="\"$root/models/demo/kjv-llama.gguf\"")
for program in generate perplexity; do
    ( "$cxx" "${cxx_flags[@]}" -c "$root/examples/$program.cpp" -o "$out/$program.o" > "$out/$program.o.log" 2>&1 \
      && echo "compiled examples/$program.cpp" || { echo "FAILED to compile examples/$program.cpp:"; cat "$out/$program.o.log"; exit 1; } ) &
    pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=1; done
[ $status -eq 0 ] || exit 1
link=(-arch=sm_$CUDA_ARCH -lcublas -lcublasLt)
"$nvcc" "$out/main.o" "$out/test_cuda.o" "$out/test_cuda_llama.o" -o "$out/weft_cuda_tests" "${link[@]}" || exit 1
"$nvcc" "$out/bench_cuda.o" -o "$out/bench_cuda" "${link[@]}" || exit 1
for program in generate perplexity; do
    "$nvcc" "$out/$program.o" "$out/device_programs.o" -o "$out/weft-$program" "${link[@]}" -Xcompiler=-fopenmp || exit 1
done

echo
echo "== tests (every op and the device Llama against the CPU / float64 reference)"
"$out/weft_cuda_tests" 2>&1 | tee "$out/tests.txt"
tests_status=${PIPESTATUS[0]}

echo
echo "== weft-generate --device cuda on a golden model (greedy ids must equal tests/data/llama/gqa-f32-llama3/greedy.txt)"
dir=$root/tests/data/llama/gqa-f32-llama3
"$out/weft-generate" --device cuda -m "$dir" --tokens "$(cat "$dir/tokens.txt")" -n 8 --temp 0 --print-ids 2>&1 | tee "$out/generate.txt"
echo "reference: $(cat "$dir/greedy.txt")"
echo "== the demo GGUF model, greedy, GPU then CPU (the ids should agree)"
for device in cuda cpu; do
    "$out/weft-generate" --device $device -p "And God said" -n 32 --temp 0 --print-ids 2>&1 | tee -a "$out/generate.txt"
done
echo "== weft-perplexity on the demo GGUF model, GPU then CPU"
for device in cuda cpu; do
    "$out/weft-perplexity" --device $device -m "$root/models/demo/kjv-llama.gguf" -f "$root/models/demo/README.md" --ctx 128 2>&1 \
        | tee -a "$out/generate.txt"
done

echo
echo "== benchmark"
"$out/bench_cuda" 2>&1 | tee "$out/bench.txt"
bench_status=${PIPESTATUS[0]}

echo
echo "== summary"
grep -E "^CUDA device|test cases:|FAILED" "$out/tests.txt"
grep -E "max (relative|normwise|per-position)|bit-identical|max error" "$out/tests.txt" | sed 's/^ */  /'
grep -E "^(device|copy|gemm|decode)" "$out/bench.txt"
grep -E "^[0-9]+(,[0-9]+)*$|^perplexity" "$out/generate.txt"
echo "tests exit status: $tests_status, benchmark exit status: $bench_status"
[ "$tests_status" -eq 0 ] && [ "$bench_status" -eq 0 ]
