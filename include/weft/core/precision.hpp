// weft/core/precision.hpp — how prefill multiplies f32 activations by 16-bit (f16/bf16) weights.
// A process-wide setting, like the thread count. Decoding (batches of up to 8 rows) is bound by
// reading the weights and always multiplies exactly; only larger batches (prompts) are affected.
#pragma once

#include <atomic>

namespace weft {

enum class MatmulPrecision {
    // Exact products summed in f32 (the default): AMX-BF16 tiles on split activations where the
    // build targets them and the CPU has them, else weights widened to f32 and the f32 GEMM. The
    // test models' logits stay within 1e-6 of a float64 reference run on the same 16-bit weights.
    exact,
    // Where the build targets AVX512-BF16 (e.g. -march=native on AMD Zen 4 and later, Intel Cooper
    // Lake and later) and no AMX tiles are used: activations (and f16 weights) rounded to bf16 and
    // bf16 dot products summed in f32 (cpu/gemm_bf16.hpp), about twice the exact path's rate.
    // Each product carries up to 2^-9 relative error per rounded factor, as in llama.cpp's bf16
    // path and in bf16 frameworks (for f16 weights llama.cpp rounds x to f16 instead, which is
    // finer): measured 5e-3 (bf16) and 1.1e-2 (f16) per-position relative L2 error on the test
    // models' prompt logits. Elsewhere the same as exact.
    fast,
};

namespace detail {
inline std::atomic<MatmulPrecision> matmul_precision{MatmulPrecision::exact};
}  // namespace detail

inline MatmulPrecision matmul_precision() { return detail::matmul_precision.load(std::memory_order_relaxed); }
inline void set_matmul_precision(MatmulPrecision p) { detail::matmul_precision.store(p, std::memory_order_relaxed); }

}  // namespace weft
