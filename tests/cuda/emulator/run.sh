#!/usr/bin/env bash
# tests/cuda/emulator/run.sh — builds and runs the CUDA test suite (tests/cuda/*.cu) on the CPU with
# the emulator (no GPU, no nvcc: g++ with AddressSanitizer and UBSan), to check kernel logic on a
# machine without a device. Slow (tens of minutes for the whole suite); pass a filter to run less.
#   tests/cuda/emulator/run.sh [TEST_NAME_SUBSTRING]     (build in $WEFT_EMU_DIR, default /tmp/weft-cuda-emu)
# Needs the CUDA toolkit's headers (not its libraries) at $CUDA_HOME (default /usr/local/cuda).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
out=${WEFT_EMU_DIR:-/tmp/weft-cuda-emu}
cuda=${CUDA_HOME:-/usr/local/cuda}
mkdir -p "$out"
rm -rf "$out/include" && mkdir -p "$out/include/weft"
python3 "$here/transform.py" "$root/include/weft" "$out/include/weft"

flags=(-std=c++20 -O1 -g -fsanitize=address,undefined -fno-sanitize=alignment -w -pthread
       -include "$here/emu.hpp" -I"$out/include" -I"$root/include" -I"$cuda/include" -DWEFT_SOURCE_DIR="\"$root\"")
objects=()
for src in main test_cuda test_cuda_llama; do
    echo "compiling tests/cuda/$src.cu (emulated)"
    nice -n 19 g++ "${flags[@]}" -x c++ -c "$root/tests/cuda/$src.cu" -o "$out/$src.o"
    objects+=("$out/$src.o")
done
nice -n 19 g++ -std=c++20 -O1 -g -fsanitize=address,undefined -w -I"$cuda/include" -c "$here/emu_runtime.cpp" -o "$out/emu_runtime.o"
nice -n 19 g++ -fsanitize=address,undefined -pthread "${objects[@]}" "$out/emu_runtime.o" -o "$out/weft_cuda_tests_emulated"

# Fibers switch stacks, which ASan's fake stacks do not follow; leaks are the tests' own.
ASAN_OPTIONS=detect_leaks=0:detect_stack_use_after_return=0 nice -n 19 "$out/weft_cuda_tests_emulated" "$@"
